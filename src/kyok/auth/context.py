"""The authenticated caller of one request, and the one place that answers "may they?".

The HTTP adapter authenticates (token -> :class:`AuthContext`) and then asks ``require``; no
other code decides access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from kyok.auth.principals import Principal
from kyok.auth.roles import KEY_SCOPED, RING_SCOPED, ROLE_PERMISSIONS, Permission, Role
from kyok.errors import Forbidden


class ScopeKind(StrEnum):
    INSTANCE = "instance"
    KEY_RING = "key_ring"
    KEY = "key"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a binding covers: the instance, one key ring (by id) or one key (by id)."""

    kind: ScopeKind
    id: str | None = None  # None for the instance scope

    def __post_init__(self) -> None:
        if (self.kind is ScopeKind.INSTANCE) != (self.id is None):
            raise ValueError("the instance scope has no id; key-ring and key scopes need one")

    def __str__(self) -> str:
        return self.kind.value if self.id is None else f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``instance``, ``key_ring:<id>`` or ``key:<id>``."""
        kind, _, ident = text.partition(":")
        try:
            scope_kind = ScopeKind(kind)
        except ValueError:
            raise ValueError("scope is instance, key_ring:<id> or key:<id>") from None
        return cls(scope_kind, ident or None)


INSTANCE_SCOPE = Scope(ScopeKind.INSTANCE)


@dataclass(frozen=True, slots=True)
class Grant:
    """One role on one scope."""

    role: Role
    scope: Scope = INSTANCE_SCOPE


class NotAllowed(Forbidden):
    """The caller lacks the permission for this resource."""

    code = "FORBIDDEN_ERR"

    def __init__(self, permission: Permission) -> None:
        super().__init__(f"Forbidden: the caller lacks {permission.value} on this resource")
        self.permission = permission


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling, in which instance, with which grants."""

    principal: Principal
    instance_id: str
    grants: tuple[Grant, ...] = ()
    token_id: str | None = field(default=None, repr=False)

    def allows(
        self, permission: Permission, *, key_ring_id: str | None = None, key_id: str | None = None
    ) -> bool:
        """True when a grant covers ``permission`` on the resource.

        Args:
            permission: what is asked.
            key_ring_id: the ring of the key (or the ring itself) the request is about, if any.
            key_id: the key the request is about, if any.
        """
        for grant in self.grants:
            if permission not in ROLE_PERMISSIONS[grant.role]:
                continue
            scope = grant.scope
            if scope.kind is ScopeKind.INSTANCE:
                return True
            if (
                scope.kind is ScopeKind.KEY_RING
                and key_ring_id == scope.id
                and permission in RING_SCOPED
            ):
                return True
            if scope.kind is ScopeKind.KEY and key_id == scope.id and permission in KEY_SCOPED:
                return True
        return False

    def allows_instance_wide(self, permission: Permission) -> bool:
        """True when an instance-scope grant covers ``permission`` (no resource lookup needed)."""
        return self.allows(permission)

    def require(
        self, permission: Permission, *, key_ring_id: str | None = None, key_id: str | None = None
    ) -> None:
        """Raise :class:`NotAllowed` unless :meth:`allows`."""
        if not self.allows(permission, key_ring_id=key_ring_id, key_id=key_id):
            raise NotAllowed(permission)
