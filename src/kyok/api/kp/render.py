"""Domain results -> Key Protect JSON (reference §2.3-§2.5, §2.8, §3, §4).

Times are RFC 3339 UTC with ``Z`` and whole seconds, as Key Protect sends them. Every key
carries ``type``, ``id``, ``state``, ``extractable``, ``keyRingID``, ``keyVersion``, ``crn`` and
``dualAuthDelete`` (``rotation`` when it has a rotation policy); ``payload`` only when the route
passes the material.

Key policies have no id of their own in kyok: a policy resource's ``id`` is a name-based UUID
(v5) of the key and the policy type(s), stable across reads.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from kyok.kms.imports import ImportTokenView
from kyok.kms.keys import KeyView
from kyok.kms.registrations import RegistrationView
from kyok.kms.results import RewrapResult, UnwrapResult, WrapResult

__all__ = [
    "ALIAS_TYPE",
    "ALLOWED_IP_METADATA_TYPE",
    "KEY_RING_TYPE",
    "KEY_TYPE",
    "KEY_VERSION_TYPE",
    "POLICY_TYPE",
    "REGISTRATION_TYPE",
    "alias_resource",
    "b64",
    "collection",
    "crn",
    "import_token",
    "instance_policy_resource",
    "key_policy_resources",
    "key_resource",
    "key_ring_resource",
    "registration_resource",
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
POLICY_TYPE = "application/vnd.ibm.kms.policy+json"
REGISTRATION_TYPE = "application/vnd.ibm.kms.registration+json"
ALLOWED_IP_METADATA_TYPE = "application/vnd.ibm.kms.allowed_ip_metadata+json"

_POLICY_IDS = uuid.UUID("6d0f5a3c-2b1e-4c7a-9f5e-8a3b1c2d4e5f")  # namespace of policy ids


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


class _KeyPolicy(Protocol):
    """A stored key policy (``KeyPolicyRecord``)."""

    @property
    def instance_id(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def policy_type(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def interval_months(self) -> int | None: ...


class _InstancePolicy(Protocol):
    """A stored instance policy (``InstancePolicyRecord``)."""

    @property
    def policy_type(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def attributes(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def updated_by(self) -> str: ...


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
        "dualAuthDelete": _dual_auth(view),
        "deleted": view.deleted,
    }
    policies = view.policies
    if policies.rotation_enabled or policies.rotation_months is not None:
        rotation: dict[str, Any] = {"enabled": policies.rotation_enabled}
        if policies.rotation_months is not None:
            rotation["interval_month"] = policies.rotation_months
        out["rotation"] = rotation
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


def _dual_auth(view: KeyView) -> dict[str, Any]:
    """``{"enabled"}``, plus ``keySetForDeletion`` and ``authExpiration`` when enabled."""
    policies = view.policies
    out: dict[str, Any] = {"enabled": policies.dual_auth_delete}
    if policies.dual_auth_delete:
        out["keySetForDeletion"] = policies.set_for_deletion
        if policies.auth_expires_at is not None:
            out["authExpiration"] = rfc3339(policies.auth_expires_at)
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


def import_token(view: ImportTokenView, *, with_keys: bool) -> dict[str, Any]:
    """An import token (flat, not a collection: reference §1.4).

    Args:
        view: the token.
        with_keys: add ``payload`` (base64 of the PEM public key), ``nonce`` (base64) and
            ``kyokHybridPublicKey`` (base64; kyok's extension), as a retrieval does.

    Returns:
        ``{"id", "creationDate", "expirationDate", "expiration", "maxAllowedRetrievals",
        "remainingRetrievals"[, "payload", "nonce", "kyokHybridPublicKey"]}``.
    """
    r = view.record
    out: dict[str, Any] = {
        "id": r.id,
        "creationDate": rfc3339(r.created_at),
        "expirationDate": rfc3339(r.expires_at),
        "expiration": int((r.expires_at - r.created_at).total_seconds()),
        "maxAllowedRetrievals": r.max_retrievals,
        "remainingRetrievals": r.remaining_retrievals,
    }
    if with_keys:
        out["payload"] = b64(view.public_key_pem)
        out["nonce"] = b64(view.nonce)
        out["kyokHybridPublicKey"] = b64(view.hybrid_public_key)
    return out


def _policy_data(policy: _KeyPolicy) -> tuple[str, dict[str, Any]]:
    if policy.policy_type == "rotation":
        data: dict[str, Any] = {"enabled": policy.enabled}
        if policy.interval_months is not None:
            data["interval_month"] = policy.interval_months
        return "rotation", data
    return policy.policy_type, {"enabled": policy.enabled}


def key_policy_resources(
    policies: Sequence[_KeyPolicy], *, region: str, combine: bool
) -> list[dict[str, Any]]:
    """A key's policies as ``GET /keys/{id}/policies`` lists them (reference §2.3).

    Args:
        policies: the key's policies (all of one key).
        region: for the key's CRN.
        combine: put every policy in one resource (no ``?policy=``), as Key Protect's
            ``GetMultipleKeyPoliciesResource``; else one resource per policy.

    Returns:
        The resources (none without policies).
    """
    groups = [list(policies)] if combine and policies else [[p] for p in policies]
    out: list[dict[str, Any]] = []
    for group in groups:
        first = min(group, key=lambda p: p.created_at)
        last = max(group, key=lambda p: p.updated_at)
        types = ",".join(sorted(p.policy_type for p in group))
        resource: dict[str, Any] = {
            "id": str(uuid.uuid5(_POLICY_IDS, f"{first.instance_id}/{first.key_id}/{types}")),
            "crn": crn(region, first.instance_id, first.key_id),
            "type": POLICY_TYPE,
            "createdBy": first.created_by,
            "creationDate": rfc3339(first.created_at),
            "updatedBy": last.updated_by,
            "lastUpdateDate": rfc3339(last.updated_at),
        }
        for policy in sorted(group, key=lambda p: p.policy_type):
            name, data = _policy_data(policy)
            resource[name] = data
        out.append(resource)
    return out


def instance_policy_resource(policy: _InstancePolicy) -> dict[str, Any]:
    """An instance policy as ``GET /instance/policies`` lists it (reference §2.4).

    ``policy_data.attributes`` appears when the policy has any (enabled policies of the types
    that take attributes; ``keyCreateImportAccess`` always lists all five).
    """
    data: dict[str, Any] = {"enabled": policy.enabled}
    attributes = json.loads(policy.attributes or "{}")
    if attributes:
        data["attributes"] = attributes
    return {
        "creationDate": rfc3339(policy.created_at),
        "createdBy": policy.created_by,
        "updatedBy": policy.updated_by,
        "lastUpdated": rfc3339(policy.updated_at),
        "policy_type": policy.policy_type,
        "policy_data": data,
    }


def registration_resource(view: RegistrationView) -> dict[str, Any]:
    """A registration (reference §2.8); ``description`` and ``registrationMetadata`` when set."""
    r = view.record
    version: dict[str, Any] = {"id": r.key_version_id}
    if view.key_version_created_at is not None:
        version["creationDate"] = rfc3339(view.key_version_created_at)
    out: dict[str, Any] = {
        "keyId": r.key_id,
        "keyName": view.key_name,
        "resourceCrn": r.resource_crn,
        "createdBy": r.created_by,
        "creationDate": rfc3339(r.created_at),
        "updatedBy": r.updated_by,
        "lastUpdated": rfc3339(r.updated_at),
        "preventKeyDeletion": r.prevent_key_deletion,
        "keyVersion": version,
    }
    if r.description is not None:
        out["description"] = r.description
    if r.registration_metadata is not None:
        out["registrationMetadata"] = r.registration_metadata
    return out
