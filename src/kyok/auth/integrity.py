"""MACs over credential rows, made and checked by the instance's crypto unit.

Whoever can write the database (the operator) must not be able to mint a credential. So every
row that grants access (principal, API key, role binding, refresh token) carries ``mac`` =
hex HMAC-SHA256 under a key only the instance's crypto unit holds (``unit.secret_hmac(label,
…)``, one key per label) over the row's security-relevant fields, length-prefixed
(:func:`kyok.crypto.encoding.lp`) so no two field lists encode alike. A row that fails its MAC
is treated as absent (and logged); it cannot be moved to another instance, principal or role,
because those are covered.

What a MAC does not give: freshness. The operator can still delete rows (denial of service)
or put back a row that was once valid (a revoked role binding, a deleted API key or
principal, from a backup), as they can roll the whole database back. See ``docs`` of the
auth service (:mod:`kyok.auth.service`).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from kyok.auth.ports import SecretUnit
from kyok.crypto.encoding import lp
from kyok.store.records import (
    ApiKeyRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RoleBindingRecord,
)

__all__ = [
    "LABEL_ACCESS_TOKEN",
    "LABEL_API_KEY",
    "LABEL_PRINCIPAL",
    "LABEL_REFRESH_TOKEN",
    "LABEL_ROLE_BINDING",
    "api_key_mac",
    "mac_hex",
    "mac_ok",
    "principal_mac",
    "refresh_token_mac",
    "role_binding_mac",
]

LABEL_API_KEY = "api-key"
LABEL_PRINCIPAL = "principal"
LABEL_ROLE_BINDING = "role-binding"
LABEL_REFRESH_TOKEN = "refresh-token"  # noqa: S105 (a label, not a token)
LABEL_ACCESS_TOKEN = "access-token"  # noqa: S105 (a label, not a token)

_DOMAIN = b"kyok/v1/credential/"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> bytes:
    return str((when.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)).encode()


def mac_hex(unit: SecretUnit, label: str, *fields: str | bytes) -> str:
    """Hex HMAC of ``fields`` under the unit's key for ``label``.

    Raises:
        UnitSealed: the unit is sealed.
    """
    parts = [f if isinstance(f, bytes) else f.encode("utf-8") for f in fields]
    return unit.secret_hmac(label, lp(_DOMAIN + label.encode(), *parts)).hex()


def mac_ok(expected: str, actual: str) -> bool:
    """Constant-time comparison of two hex MACs."""
    return hmac.compare_digest(
        expected.encode("ascii", "replace"), actual.encode("ascii", "replace")
    )


def principal_mac(unit: SecretUnit, record: PrincipalRecord) -> str:
    """The MAC of a principal row: instance, id, name, kind."""
    return mac_hex(unit, LABEL_PRINCIPAL, record.instance_id, record.id, record.name, record.kind)


def api_key_mac(unit: SecretUnit, record: ApiKeyRecord) -> str:
    """The MAC of an API-key row: instance, id, principal, lookup."""
    return mac_hex(
        unit, LABEL_API_KEY, record.instance_id, record.id, record.principal_id, record.lookup
    )


def role_binding_mac(unit: SecretUnit, record: RoleBindingRecord) -> str:
    """The MAC of a role-binding row: instance, id, principal, role, scope."""
    return mac_hex(
        unit,
        LABEL_ROLE_BINDING,
        record.instance_id,
        record.id,
        record.principal_id,
        record.role,
        record.scope,
    )


def refresh_token_mac(unit: SecretUnit, record: RefreshTokenRecord) -> str:
    """The MAC of a refresh-token row: instance, id, principal, API key, lookup, expiry."""
    return mac_hex(
        unit,
        LABEL_REFRESH_TOKEN,
        record.instance_id,
        record.id,
        record.principal_id,
        record.api_key_id,
        record.lookup,
        _micros(record.expires_at),
    )
