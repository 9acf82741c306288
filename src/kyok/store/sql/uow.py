"""The SQL unit of work: one connection, one transaction, every repository."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Engine

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
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.aliases import SqlAliasRepository
from kyok.store.sql.audit import SqlAuditRepository
from kyok.store.sql.blobs import SqlBlobRepository
from kyok.store.sql.credentials import (
    SqlApiKeyRepository,
    SqlPrincipalRepository,
    SqlRefreshTokenRepository,
    SqlRoleBindingRepository,
)
from kyok.store.sql.instances import SqlInstanceRepository
from kyok.store.sql.key_rings import SqlKeyRingRepository
from kyok.store.sql.keys import SqlKeyRepository
from kyok.store.sql.policies import (
    SqlDeletionAuthorizationRepository,
    SqlImportTokenRepository,
    SqlInstancePolicyRepository,
    SqlKeyPolicyRepository,
    SqlRegistrationRepository,
)
from kyok.store.sql.versions import SqlKeyVersionRepository


class SqlUnitOfWork:
    """A context manager over one connection and its transaction.

    Nothing is durable until :meth:`commit`; leaving the ``with`` block without committing
    rolls back (also on an exception). After ``commit`` the unit of work may go on and commit
    again. On SQLite a unit of work that may write takes the write lock at its first statement
    (``BEGIN IMMEDIATE``); ``read_only`` ones do not, and refuse writes with ``InternalError``.

    Args:
        engine: from :func:`kyok.store.sql.engine.create_engine_for`.
        read_only: the unit of work only reads.
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

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._tx = Transaction(engine, read_only=read_only)
        self.instances = SqlInstanceRepository(self._tx)
        self.keys = SqlKeyRepository(self._tx)
        self.versions = SqlKeyVersionRepository(self._tx)
        self.blobs = SqlBlobRepository(self._tx)
        self.aliases = SqlAliasRepository(self._tx)
        self.key_rings = SqlKeyRingRepository(self._tx)
        self.principals = SqlPrincipalRepository(self._tx)
        self.api_keys = SqlApiKeyRepository(self._tx)
        self.role_bindings = SqlRoleBindingRepository(self._tx)
        self.refresh_tokens = SqlRefreshTokenRepository(self._tx)
        self.import_tokens = SqlImportTokenRepository(self._tx)
        self.key_policies = SqlKeyPolicyRepository(self._tx)
        self.deletion_authorizations = SqlDeletionAuthorizationRepository(self._tx)
        self.instance_policies = SqlInstancePolicyRepository(self._tx)
        self.registrations = SqlRegistrationRepository(self._tx)
        self.audit = SqlAuditRepository(self._tx)

    def __enter__(self) -> Self:
        self._tx.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx.close()

    def commit(self) -> None:
        """Commit everything done since the last commit or rollback."""
        self._tx.commit()

    def rollback(self) -> None:
        """Discard everything done since the last commit or rollback."""
        self._tx.rollback()
