"""Domain results -> Key Protect JSON (reference §3, §4).

Times are RFC 3339 UTC with ``Z`` and whole seconds, as Key Protect sends them. Every key
carries ``type``, ``id``, ``state``, ``extractable``, ``keyRingID``, ``keyVersion`` and ``crn``;
``payload`` only when the route passes the material.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from kyok.kms.keys import KeyView
from kyok.kms.results import RewrapResult, UnwrapResult, WrapResult

__all__ = [
    "ALIAS_TYPE",
    "KEY_RING_TYPE",
    "KEY_TYPE",
    "KEY_VERSION_TYPE",
    "alias_resource",
    "b64",
    "collection",
    "crn",
    "key_resource",
    "key_ring_resource",
    "rewrap_result",
    "rfc3339",
    "unwrap_result",
    "version_resource",
    "wrap_result",
]

KEY_TYPE = "application/vnd.ibm.kms.key+json"
KEY_VERSION_TYPE = "application/vnd.ibm.kms.key.version+json"
KEY_RING_TYPE = "application/vnd.ibm.kms.key_ring+json"
ALIAS_TYPE = "application/vnd.ibm.kms.alias+json"


class _Version(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class _Ring(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...


class _Alias(Protocol):
    @property
    def key_id(self) -> str: ...
    @property
    def alias(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...


def rfc3339(moment: datetime) -> str:
    """``2026-01-01T00:00:00Z``.

    Args:
        moment: a timezone-aware time.

    Returns:
        The RFC 3339 text in UTC, whole seconds.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def crn(region: str, instance_id: str, key_id: str) -> str:
    """A key's CRN in Key Protect's shape (the account is the instance).

    Args:
        region: the configured region.
        instance_id: the key's instance.
        key_id: the key.

    Returns:
        ``crn:v1:bluemix:public:kms:<region>:a/<instance>:<instance>:key:<id>``.
    """
    return f"crn:v1:bluemix:public:kms:{region}:a/{instance_id}:{instance_id}:key:{key_id}"


def collection(
    kind: str, resources: Sequence[dict[str, Any]], *, total: int | None = None
) -> dict[str, Any]:
    """A response collection.

    Args:
        kind: the collection type.
        resources: its elements.
        total: ``totalCount`` (all matches), when asked for.

    Returns:
        ``{"metadata": {...}, "resources": [...]}``.
    """
    metadata: dict[str, Any] = {"collectionType": kind, "collectionTotal": len(resources)}
    if total is not None:
        metadata["totalCount"] = total
    return {"metadata": metadata, "resources": list(resources)}


def key_resource(view: KeyView, *, region: str, payload: bytes | None = None) -> dict[str, Any]:
    """A key as Key Protect shows it.

    Args:
        view: the key.
        region: for the CRN.
        payload: a standard key's material, when the route returns it.

    Returns:
        The key resource.
    """
    r = view.record
    bits = r.bit_length or 256
    out: dict[str, Any] = {
        "type": KEY_TYPE,
        "id": r.id,
        "name": r.name,
        "aliases": list(view.aliases),
        "tags": list(r.tags),
        "state": int(view.state),
        "extractable": r.extractable,
        "crn": crn(region, r.instance_id, r.id),
        "imported": r.imported,
        "keyRingID": r.key_ring_id,
        "creationDate": rfc3339(r.created_at),
        "createdBy": r.created_by,
        "algorithmType": "AES",
        "algorithmMetadata": {"bitLength": str(bits), "mode": "Deprecated"},
        "algorithmBitSize": bits,
        "algorithmMode": "Deprecated",
        "lastUpdateDate": rfc3339(r.updated_at),
        "keyVersion": {"id": view.version_id, "creationDate": rfc3339(view.version_created_at)},
        "dualAuthDelete": {"enabled": False},
        "deleted": view.deleted,
    }
    if r.description is not None:
        out["description"] = r.description
    if r.expires_at is not None:
        out["expirationDate"] = rfc3339(r.expires_at)
    if r.last_rotated_at is not None:
        out["lastRotateDate"] = rfc3339(r.last_rotated_at)
    if r.state_reason is not None:
        out["nonactiveStateReason"] = r.state_reason
    if view.deleted:
        if r.deleted_at is not None:
            out["deletionDate"] = rfc3339(r.deleted_at)
        if r.deleted_by is not None:
            out["deletedBy"] = r.deleted_by
        out["restoreAllowed"] = view.restore_allowed
        out["purgeAllowed"] = view.purge_allowed
        for name, moment in (
            ("restoreExpirationDate", view.restore_expires_at),
            ("purgeAllowedFrom", view.purge_allowed_from),
            ("purgeScheduledOn", view.purge_scheduled_on),
        ):
            if moment is not None:
                out[name] = rfc3339(moment)
    if payload is not None:
        out["payload"] = b64(payload)
    return out


def version_resource(version: _Version) -> dict[str, Any]:
    """A key version in a versions list."""
    return {"id": version.id, "creationDate": rfc3339(version.created_at)}


def key_ring_resource(ring: _Ring) -> dict[str, Any]:
    """A key ring in a key-ring list."""
    return {"id": ring.id, "creationDate": rfc3339(ring.created_at), "createdBy": ring.created_by}


def alias_resource(alias: _Alias) -> dict[str, Any]:
    """An alias, as alias creation returns it."""
    return {
        "keyId": alias.key_id,
        "alias": alias.alias,
        "createdBy": alias.created_by,
        "creationDate": rfc3339(alias.created_at),
    }


def wrap_result(result: WrapResult) -> dict[str, Any]:
    """``{"ciphertext", "keyVersion": {"id"}}`` plus ``plaintext`` for a generated DEK."""
    out: dict[str, Any] = {
        "ciphertext": b64(result.ciphertext),
        "keyVersion": {"id": result.key_version_id},
    }
    if result.dek is not None:
        out["plaintext"] = b64(result.dek)
    return out


def unwrap_result(result: UnwrapResult) -> dict[str, Any]:
    """``{"plaintext", "keyVersion"}`` plus ``ciphertext``/``rewrappedKeyVersion`` when stale."""
    out: dict[str, Any] = {
        "plaintext": b64(result.plaintext),
        "keyVersion": {"id": result.key_version_id},
    }
    if result.rewrapped is not None and result.rewrapped_version_id is not None:
        out["ciphertext"] = b64(result.rewrapped)
        out["rewrappedKeyVersion"] = {"id": result.rewrapped_version_id}
    return out


def rewrap_result(result: RewrapResult) -> dict[str, Any]:
    """``{"ciphertext", "keyVersion", "rewrappedKeyVersion"}``."""
    return {
        "ciphertext": b64(result.ciphertext),
        "keyVersion": {"id": result.key_version_id},
        "rewrappedKeyVersion": {"id": result.rewrapped_version_id},
    }
