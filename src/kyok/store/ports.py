"""What the domain needs from persistence, as Protocols (no SQLAlchemy here).

Every method runs inside the :class:`UnitOfWork` that owns the repository; nothing is durable
until ``commit()``. Leaving the ``with`` block without committing rolls back.
Errors: ``kyok.errors.AlreadyExists`` for a taken unique id/name, ``kyok.errors.VersionConflict``
when an optimistic update finds ``row_version`` changed. A backend may raise them at the
statement (SQL) or at ``commit()`` (the in-memory store); callers handle both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from kyok.store.records import (
    AliasRecord,
    ApiKeyRecord,
    AuditCheckpointRecord,
    AuditEntryRecord,
    AuditHeadRecord,
    AuditQuery,
    AuditSettingsRecord,
    BlobRecord,
    DeletionAuthorizationRecord,
    ImportTokenRecord,
    InstancePolicyRecord,
    InstanceRecord,
    KeyPolicyRecord,
    KeyQuery,
    KeyRecord,
    KeyRingRecord,
    KeyVersionRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RegistrationQuery,
    RegistrationRecord,
    RoleBindingRecord,
)


class InstanceRepository(Protocol):
    def add(self, record: InstanceRecord) -> None: ...
    def get(self, instance_id: str) -> InstanceRecord | None: ...
    def list(self) -> list[InstanceRecord]: ...


class KeyRepository(Protocol):
    def add(self, record: KeyRecord) -> None: ...

    def get(self, instance_id: str, key_id: str) -> KeyRecord | None: ...

    def update(self, record: KeyRecord, expected_row_version: int) -> KeyRecord:
        """Write ``record`` if the stored row still has ``expected_row_version``.

        Returns the record as stored (``row_version = expected_row_version + 1``).
        Raises ``VersionConflict`` otherwise (or if the key is gone).
        """
        ...

    def delete(self, instance_id: str, key_id: str) -> None: ...

    def find(self, query: KeyQuery) -> list[KeyRecord]:
        """One page of the keys matching ``query``, in its sort order."""
        ...

    def count(self, query: KeyQuery, *, cap: int | None = None) -> int:
        """How many keys match ``query`` ignoring its limit, offset and sort.

        With ``cap`` (>= 0), counting stops at ``cap``: the answer is ``min(matches, cap)``.
        """
        ...

    def expiring(self, now: datetime, limit: int) -> list[KeyRecord]:
        """Keys in state 1 or 2 whose ``expires_at`` <= ``now`` (any instance), oldest first."""
        ...

    def count_in_ring(
        self, instance_id: str, key_ring_id: str, states: frozenset[int] | None = None
    ) -> int: ...

    def move_ring(
        self, instance_id: str, from_ring: str, to_ring: str, states: frozenset[int]
    ) -> int:
        """Move keys in ``states`` from one ring to another; returns how many moved."""
        ...


class KeyVersionRepository(Protocol):
    def add(self, record: KeyVersionRecord) -> None: ...
    def get(self, instance_id: str, version_id: str) -> KeyVersionRecord | None: ...

    def list_for_key(
        self, instance_id: str, key_id: str, limit: int, offset: int
    ) -> list[KeyVersionRecord]:
        """Newest first."""
        ...

    def count_for_key(self, instance_id: str, key_id: str) -> int: ...
    def delete_for_key(self, instance_id: str, key_id: str) -> int: ...


class BlobRepository(Protocol):
    def add(self, record: BlobRecord) -> None: ...
    def get(self, instance_id: str, blob_id: str) -> BlobRecord | None: ...
    def get_many(self, instance_id: str, blob_ids: Sequence[str]) -> dict[str, BlobRecord]: ...
    def delete_for_owner(self, instance_id: str, owner_id: str) -> int: ...


class AliasRepository(Protocol):
    def add(self, record: AliasRecord) -> None: ...
    def get(self, instance_id: str, alias: str) -> AliasRecord | None: ...
    def list_for_key(self, instance_id: str, key_id: str) -> list[AliasRecord]: ...
    def list_for_keys(self, instance_id: str, key_ids: Sequence[str]) -> dict[str, list[str]]: ...
    def delete(self, instance_id: str, alias: str) -> bool: ...
    def delete_for_key(self, instance_id: str, key_id: str) -> int: ...
    def count_for_instance(self, instance_id: str) -> int: ...


class KeyRingRepository(Protocol):
    def add(self, record: KeyRingRecord) -> None: ...
    def get(self, instance_id: str, key_ring_id: str) -> KeyRingRecord | None: ...
    def list(self, instance_id: str, limit: int, offset: int) -> list[KeyRingRecord]: ...
    def count(self, instance_id: str) -> int: ...
    def delete(self, instance_id: str, key_ring_id: str) -> bool: ...


class ImportTokenRepository(Protocol):
    """Import tokens, at most one per instance (``instance_id`` is the key)."""

    def get(self, instance_id: str) -> ImportTokenRecord | None: ...

    def put(self, record: ImportTokenRecord) -> None:
        """Store the instance's token, replacing any earlier one (``row_version`` as given)."""
        ...

    def update(self, record: ImportTokenRecord, expected_row_version: int) -> ImportTokenRecord:
        """Write ``record`` if the stored token is the same token (same ``id``) still at
        ``expected_row_version``; returns it with ``row_version`` + 1. Raises
        ``VersionConflict`` otherwise (replaced, deleted or changed meanwhile)."""
        ...

    def delete(self, instance_id: str) -> bool: ...

    def expired(self, now: datetime, limit: int) -> list[ImportTokenRecord]:
        """Up to ``limit`` tokens (any instance) whose ``expires_at`` <= ``now``, oldest first."""
        ...


class KeyPolicyRepository(Protocol):
    """Key policies; ``(instance_id, key_id, policy_type)`` is the key."""

    def get(self, instance_id: str, key_id: str, policy_type: str) -> KeyPolicyRecord | None: ...

    def list_for_key(self, instance_id: str, key_id: str) -> list[KeyPolicyRecord]:
        """Ordered by ``policy_type``."""
        ...

    def list_for_keys(
        self, instance_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[KeyPolicyRecord]]:
        """The policies of several keys (keys without any are absent from the result)."""
        ...

    def put(self, record: KeyPolicyRecord) -> None:
        """Insert or replace the policy."""
        ...

    def delete_for_key(self, instance_id: str, key_id: str) -> int: ...

    def rotation_due(self, now: datetime, limit: int) -> list[KeyPolicyRecord]:
        """Up to ``limit`` enabled rotation policies (any instance) whose
        ``next_rotation_at`` <= ``now``, earliest first."""
        ...


class DeletionAuthorizationRepository(Protocol):
    """Dual-authorisation approvals, at most one per key."""

    def get(self, instance_id: str, key_id: str) -> DeletionAuthorizationRecord | None: ...

    def put(self, record: DeletionAuthorizationRecord) -> None:
        """Insert or replace the key's approval."""
        ...

    def delete(self, instance_id: str, key_id: str) -> bool: ...


class InstancePolicyRepository(Protocol):
    """Instance policies; ``(instance_id, policy_type)`` is the key."""

    def get(self, instance_id: str, policy_type: str) -> InstancePolicyRecord | None: ...

    def list(self, instance_id: str) -> list[InstancePolicyRecord]:
        """Ordered by ``policy_type``."""
        ...

    def put(self, record: InstancePolicyRecord) -> None:
        """Insert or replace the policy."""
        ...


class RegistrationRepository(Protocol):
    """Registrations; ``(instance_id, key_id, resource_crn)`` is the key."""

    def add(self, record: RegistrationRecord) -> None:
        """Raises ``AlreadyExists`` if the key already has a registration for the CRN."""
        ...

    def get(
        self, instance_id: str, key_id: str, resource_crn: str
    ) -> RegistrationRecord | None: ...

    def update(self, record: RegistrationRecord) -> bool:
        """Replace the stored registration; False if there is none."""
        ...

    def delete(self, instance_id: str, key_id: str, resource_crn: str) -> bool: ...

    def find(self, query: RegistrationQuery) -> list[RegistrationRecord]:
        """Matching registrations ordered by (key_id, resource_crn), paged."""
        ...

    def count(self, query: RegistrationQuery) -> int:
        """How many match ``query`` ignoring its limit and offset."""
        ...

    def delete_for_key(self, instance_id: str, key_id: str) -> int: ...


class AuditAppender(Protocol):
    """What appending to the ledger needs (a unit of work's ``audit``, or the SQL store's
    dedicated group-commit writer)."""

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord: ...

    def append(
        self,
        entries: Sequence[AuditEntryRecord],
        head: AuditHeadRecord,
        expected_next_seq: int,
    ) -> None: ...

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None: ...


class AuditAppendTarget(Protocol):
    """A transaction the ledger can append in: a unit of work, or a group-commit batch."""

    @property
    def audit(self) -> AuditAppender: ...


class AuditRepository(Protocol):
    """The audit ledger: entries, heads, checkpoints and the forwarders' cursors.

    Appending is serialised per instance: :meth:`head` with ``lock=True`` locks the head row
    until the unit of work ends (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock;
    the in-memory store re-checks the head at commit and raises ``VersionConflict``).
    """

    def head(self, instance_id: str, *, lock: bool = False) -> AuditHeadRecord | None: ...

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord:
        """The instance's head, locked; ``genesis`` is stored first if it has none yet."""
        ...

    def append(
        self,
        entries: Sequence[AuditEntryRecord],
        head: AuditHeadRecord,
        expected_next_seq: int,
    ) -> None:
        """Insert ``entries`` and move the head from ``expected_next_seq`` to ``head``."""
        ...

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None: ...

    def entries(self, query: AuditQuery) -> list[AuditEntryRecord]: ...

    def checkpoints(
        self, instance_id: str, from_seq: int | None, to_seq: int | None, limit: int = 1000
    ) -> list[AuditCheckpointRecord]:
        """Checkpoints with ``from_seq <= seq <= to_seq`` (None: open end), by seq."""
        ...

    def instance_ids(self) -> list[str]:
        """Instances with a ledger, sorted."""
        ...

    def cursor(self, sink: str, instance_id: str) -> int | None: ...

    def save_cursor(self, sink: str, instance_id: str, seq: int) -> None:
        """Set the cursor (it never moves backwards)."""
        ...

    def settings(self, instance_id: str) -> AuditSettingsRecord | None: ...

    def put_settings(self, record: AuditSettingsRecord) -> None:
        """Insert or replace the instance's audit settings."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository."""

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

    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per call.

    ``read_only`` units of work take no write locks (on SQLite: a deferred ``BEGIN`` rather
    than ``BEGIN IMMEDIATE``; on PostgreSQL a READ ONLY transaction), so reads never serialise
    behind writers; they refuse writes.
    """

    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...


# ---------------------------------------------------------------- credentials (kyok.auth)


class PrincipalRepository(Protocol):
    """Principals; ``(instance_id, id)`` is the key and ``(instance_id, name)`` is unique."""

    def add(self, record: PrincipalRecord) -> None: ...
    def get(self, instance_id: str, principal_id: str) -> PrincipalRecord | None: ...
    def get_by_name(self, instance_id: str, name: str) -> PrincipalRecord | None: ...

    def list(self, instance_id: str) -> list[PrincipalRecord]:
        """The instance's principals, oldest first (then by id)."""
        ...

    def count(self, instance_id: str) -> int: ...
    def delete(self, instance_id: str, principal_id: str) -> bool: ...


class ApiKeyRepository(Protocol):
    """API keys; ``lookup`` is the key (across instances), ``(instance_id, id)`` is unique."""

    def add(self, record: ApiKeyRecord) -> None: ...

    def get_by_lookup(self, lookup: str) -> ApiKeyRecord | None:
        """The key whose hashed secret is ``lookup``, in whatever instance."""
        ...

    def get(self, instance_id: str, api_key_id: str) -> ApiKeyRecord | None: ...

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[ApiKeyRecord]:
        """Oldest first (then by id)."""
        ...

    def delete(self, instance_id: str, api_key_id: str) -> bool: ...
    def delete_for_principal(self, instance_id: str, principal_id: str) -> int: ...


class RoleBindingRepository(Protocol):
    """Role bindings; ``(instance_id, id)`` is the key and ``(instance_id, principal_id,
    role, scope)`` is unique."""

    def add(self, record: RoleBindingRecord) -> None: ...
    def get(self, instance_id: str, binding_id: str) -> RoleBindingRecord | None: ...

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[RoleBindingRecord]:
        """Oldest first (then by id)."""
        ...

    def list_for_role(
        self, instance_id: str, role: str, *, lock: bool = False
    ) -> list[RoleBindingRecord]:
        """The instance's bindings of ``role``, oldest first.

        With ``lock`` the rows stay locked until the unit of work ends (``FOR UPDATE`` on
        PostgreSQL; on SQLite the writer already holds the database lock; the in-memory store
        refuses the commit with ``VersionConflict`` if one of them changed meanwhile), so a
        check such as "another administrator remains" holds until commit.
        """
        ...

    def delete(self, instance_id: str, binding_id: str) -> bool: ...
    def delete_for_principal(self, instance_id: str, principal_id: str) -> int: ...


class RefreshTokenRepository(Protocol):
    """Refresh tokens; ``lookup`` is the key (across instances)."""

    def add(self, record: RefreshTokenRecord) -> None: ...
    def get(self, lookup: str) -> RefreshTokenRecord | None: ...

    def consume(self, lookup: str) -> bool:
        """Delete the token; True if this unit of work removed it (single use: of two
        concurrent callers at most one gets True)."""
        ...

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int: ...
    def delete_for_api_key(self, instance_id: str, api_key_id: str) -> int: ...

    def delete_expired(self, now: datetime, limit: int) -> int:
        """Remove up to ``limit`` tokens whose ``expires_at`` <= ``now`` (any instance)."""
        ...
