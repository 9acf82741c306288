"""Role bindings as data: checking what a caller asks to grant, and turning stored bindings into
:class:`~kyok.auth.context.Grant`\\ s.

A scope is ``instance``, ``key_ring:<id>`` or ``key:<id>`` (:class:`~kyok.auth.context.Scope`).
The key ring or key need not exist yet (a binding may be made before the key). Key ids are
UUIDs and are stored in canonical (lower-case) form, which is how keys are identified when
access is checked; key-ring ids follow Key Protect's rule (2-100 of ``a-z 0-9 -``).
``KyokInstanceAdmin`` only means something on the instance scope, so it is refused elsewhere.
"""

from __future__ import annotations

import re
import uuid

from kyok.auth.context import Grant, Scope, ScopeKind
from kyok.auth.errors import InvalidAuthField
from kyok.auth.principals import PrincipalKind
from kyok.auth.roles import Role
from kyok.store.records import RoleBindingRecord

__all__ = [
    "API_KEY_NAME_MAX",
    "PRINCIPAL_NAME_MAX",
    "PRINCIPAL_NAME_MIN",
    "check_grantable",
    "grant_of",
    "parse_kind",
    "parse_role",
    "parse_scope",
    "validate_api_key_name",
    "validate_principal_name",
]

PRINCIPAL_NAME_MIN = 2
PRINCIPAL_NAME_MAX = 64
API_KEY_NAME_MAX = 64
_KEY_RING_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,99}")
_ROLES = {role.value.lower(): role for role in Role}
_KINDS = {
    PrincipalKind.USER.value: PrincipalKind.USER,
    PrincipalKind.SERVICE.value: PrincipalKind.SERVICE,
}


def _text(value: object, target: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise InvalidAuthField(target, "must be a string")
    if not low <= len(value) <= high:
        raise InvalidAuthField(target, f"must be {low} to {high} characters")
    if not value.isprintable() or value != value.strip():
        raise InvalidAuthField(
            target, "must be printable characters without leading or trailing spaces"
        )
    return value


def validate_principal_name(value: object) -> str:
    """A principal's name: 2-64 printable characters, no surrounding spaces."""
    return _text(value, "name", PRINCIPAL_NAME_MIN, PRINCIPAL_NAME_MAX)


def validate_api_key_name(value: object) -> str:
    """An API key's name: 1-64 printable characters, no surrounding spaces."""
    return _text(value, "name", 1, API_KEY_NAME_MAX)


def parse_kind(value: object) -> PrincipalKind:
    """``user`` or ``service`` (any case)."""
    kind = _KINDS.get(value.lower()) if isinstance(value, str) else None
    if kind is None:
        raise InvalidAuthField("kind", "must be 'user' or 'service'")
    return kind


def parse_role(value: object) -> Role:
    """A role name (any case): Reader, ReaderPlus, Writer, Manager, KeyPurge, KyokInstanceAdmin."""
    role = _ROLES.get(value.lower()) if isinstance(value, str) else None
    if role is None:
        names = ", ".join(r.value for r in Role)
        raise InvalidAuthField("role", f"must be one of {names}")
    return role


def parse_scope(value: object) -> Scope:
    """``instance``, ``key_ring:<id>`` or ``key:<uuid>``, checked and made canonical."""
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidAuthField("scope", "must be instance, key_ring:<id> or key:<id>")
    try:
        scope = Scope.parse(value)
    except ValueError:
        raise InvalidAuthField("scope", "must be instance, key_ring:<id> or key:<id>") from None
    if scope.kind is ScopeKind.KEY_RING:
        assert scope.id is not None
        if _KEY_RING_RE.fullmatch(scope.id) is None:
            raise InvalidAuthField(
                "scope", "a key ring id is 2 to 100 characters of a-z, 0-9 and '-'"
            )
    elif scope.kind is ScopeKind.KEY:
        try:
            scope = Scope(ScopeKind.KEY, str(uuid.UUID(scope.id)))
        except (ValueError, TypeError):
            raise InvalidAuthField("scope", "a key is named by its id (a UUID)") from None
        if len(value) != len("key:") + 36:
            raise InvalidAuthField("scope", "a key is named by its id (a UUID)")
    return scope


def check_grantable(role: Role, scope: Scope) -> None:
    """Refuse combinations that grant nothing (``KyokInstanceAdmin`` or ``KyokAuditor`` below
    the instance)."""
    if role in (Role.INSTANCE_ADMIN, Role.AUDITOR) and scope.kind is not ScopeKind.INSTANCE:
        raise InvalidAuthField("scope", f"{role.value} is granted on the instance scope only")


def grant_of(record: RoleBindingRecord) -> Grant | None:
    """The grant a stored binding gives, or None if its role or scope is not understood."""
    role = _ROLES.get(record.role.lower())
    if role is None or role.value != record.role:
        return None
    try:
        scope = Scope.parse(record.scope)
    except ValueError:
        return None
    return Grant(role, scope)
