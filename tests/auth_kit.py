"""A real authentication stack for tests: a store, dev-sealed crypto units, the key service
(to create instances) and the auth service, with helpers to make principals and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyok.auth import SYSTEM, AuthContext, AuthService, Role, TokenGrant
from kyok.auth.context import Scope
from kyok.clock import FakeClock
from kyok.kms.service import KeyService
from kyok.store.memory import MemoryStore
from kyok.unit.directory import UnitDirectory
from kyok.unit.seal import DevSeal, SealProvider, SharesSeal

__all__ = ["STORES", "AuthHarness", "bearer", "make_store"]

#: The stores the auth tests run on.
STORES = ["memory", "sqlite"]


def make_store(kind: str, tmp_path: Path, clock: FakeClock) -> Any:
    """A fresh store of ``kind`` (``memory`` or ``sqlite``)."""
    if kind == "memory":
        return MemoryStore(clock)
    if kind == "sqlite":
        from kyok.store.sql import open_store

        return open_store(f"sqlite:///{tmp_path}/kyok.db", clock=clock)
    raise ValueError(kind)


def bearer(grant: TokenGrant | str) -> str:
    """The Authorization header value for a token."""
    token = grant if isinstance(grant, str) else grant.access_token
    return f"Bearer {token}"


class AuthHarness:
    """Store + units + services, and shortcuts the tests share."""

    def __init__(self, store: Any, data_dir: Path, clock: Any, *, cache_ttl: float = 5.0) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.clock = clock
        self.seals: dict[str, SealProvider] = {"dev": DevSeal(data_dir), "shares": SharesSeal()}
        self.units = UnitDirectory(store.units, self.seals, clock)
        self.kms = KeyService(store.uow, self.units, clock)
        self.auth = AuthService(store.uow, self.units, clock, cache_ttl=cache_ttl)

    def new_instance(self, name: str = "test instance") -> str:
        """A new dev-sealed instance (no principals yet)."""
        return self.kms.create_instance(SYSTEM, name).id

    def admin_key(self, instance_id: str) -> str:
        """Bootstrap the instance's administrator; returns its API key."""
        return self.auth.bootstrap_admin(instance_id)

    def token(self, api_key: str) -> TokenGrant:
        return self.auth.issue_token(api_key)

    def ctx(self, api_key: str, instance_id: str) -> AuthContext:
        """The AuthContext a request with a fresh token of ``api_key`` gets."""
        return self.auth.authenticate(bearer(self.token(api_key)), instance_id)

    def principal_with(
        self,
        admin: AuthContext,
        name: str,
        grants: list[tuple[Role, str]] | None = None,
        kind: str = "service",
    ) -> tuple[str, str]:
        """A new principal with ``grants`` and an API key; returns (principal id, API key)."""
        principal = self.auth.create_principal(admin, name, kind)
        for role, scope in grants or []:
            self.auth.grant(admin, principal.id, role, Scope.parse(scope))
        _, secret = self.auth.create_api_key(admin, principal.id, "test key")
        return principal.id, secret.reveal()

    def seal(self, instance_id: str) -> None:
        self.units.for_instance(instance_id).seal()

    def reopen(self, instance_id: str) -> None:
        """Forget the unit so the directory opens (and the dev seal unseals) it again."""
        self.units.forget(self.units.for_instance(instance_id).unit_id)

    def close(self) -> None:
        for unit in self.units.loaded():
            unit.seal()
        self.store.close()
