"""The in-memory store and its unit of work."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from kyok.clock import Clock
from kyok.store.memory._session import MemoryState, Session
from kyok.store.memory.audit import MemoryAuditRepository
from kyok.store.memory.credentials import (
    MemoryApiKeyRepository,
    MemoryPrincipalRepository,
    MemoryRefreshTokenRepository,
    MemoryRoleBindingRepository,
)
from kyok.store.memory.policies import (
    MemoryDeletionAuthorizationRepository,
    MemoryImportTokenRepository,
    MemoryInstancePolicyRepository,
    MemoryKeyPolicyRepository,
    MemoryRegistrationRepository,
)
from kyok.store.memory.repositories import (
    MemoryAliasRepository,
    MemoryBlobRepository,
    MemoryInstanceRepository,
    MemoryKeyRepository,
    MemoryKeyRingRepository,
    MemoryKeyVersionRepository,
)
from kyok.store.memory.units import MemoryUnitStateStore
from kyok.store.ports import (
    AliasRepository,
    ApiKeyRepository,
    AuditRepository,
    BlobRepository,
    DeletionAuthorizationRepository,
    ImportTokenRepository,
    InstancePolicyRepository,
    InstanceRepository,
    KeyPolicyRepository,
    KeyRepository,
    KeyRingRepository,
    KeyVersionRepository,
    PrincipalRepository,
    RefreshTokenRepository,
    RegistrationRepository,
    RoleBindingRepository,
)


class MemoryUnitOfWork:
    """One "transaction" over the in-memory repositories.

    Changes are private until :meth:`commit`; leaving the ``with`` block without committing
    discards them. ``commit`` raises ``AlreadyExists`` or ``VersionConflict`` if another unit
    of work committed a conflicting change first (the SQL backends raise these at the
    statement instead); the unit of work's changes are then discarded.
    """

    instances: InstanceRepository
    keys: KeyRepository
    versions: KeyVersionRepository
    blobs: BlobRepository
    aliases: AliasRepository
    key_rings: KeyRingRepository
    principals: PrincipalRepository
    api_keys: ApiKeyRepository
    role_bindings: RoleBindingRepository
    refresh_tokens: RefreshTokenRepository
    import_tokens: ImportTokenRepository
    key_policies: KeyPolicyRepository
    deletion_authorizations: DeletionAuthorizationRepository
    instance_policies: InstancePolicyRepository
    registrations: RegistrationRepository
    audit: AuditRepository

    def __init__(self, state: MemoryState, *, read_only: bool = False) -> None:
        self._session = Session(state, read_only=read_only)
        self.instances = MemoryInstanceRepository(self._session)
        self.keys = MemoryKeyRepository(self._session)
        self.versions = MemoryKeyVersionRepository(self._session)
        self.blobs = MemoryBlobRepository(self._session)
        self.aliases = MemoryAliasRepository(self._session)
        self.key_rings = MemoryKeyRingRepository(self._session)
        self.principals = MemoryPrincipalRepository(self._session)
        self.api_keys = MemoryApiKeyRepository(self._session)
        self.role_bindings = MemoryRoleBindingRepository(self._session)
        self.refresh_tokens = MemoryRefreshTokenRepository(self._session)
        self.import_tokens = MemoryImportTokenRepository(self._session)
        self.key_policies = MemoryKeyPolicyRepository(self._session)
        self.deletion_authorizations = MemoryDeletionAuthorizationRepository(self._session)
        self.instance_policies = MemoryInstancePolicyRepository(self._session)
        self.registrations = MemoryRegistrationRepository(self._session)
        self.audit = MemoryAuditRepository(self._session)

    def __enter__(self) -> Self:
        self._session.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._session.close()

    def commit(self) -> None:
        """Make this unit of work's changes visible to everyone."""
        self._session.commit()

    def rollback(self) -> None:
        """Discard this unit of work's uncommitted changes."""
        self._session.require_open()
        self._session.discard()


class MemoryStore:
    """In-memory implementation of every store port; the reference for the SQL backends.

    Thread-safe. ``uow()`` opens a unit of work (``kyok.store.ports.UnitOfWork``); ``units`` is
    the crypto unit's ``UnitStateStore``. Nothing survives the process.

    Args:
        clock: source of the units' creation times (default: the system clock).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._state = MemoryState()
        self.units = MemoryUnitStateStore(self._state, clock)

    def uow(self, *, read_only: bool = False) -> MemoryUnitOfWork:
        """A new unit of work. ``read_only`` ones refuse writes with ``InternalError``."""
        return MemoryUnitOfWork(self._state, read_only=read_only)

    def close(self) -> None:
        """Nothing to release; present so every store can be closed the same way."""
