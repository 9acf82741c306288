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
    BlobRecord,
    InstanceRecord,
    KeyQuery,
    KeyRecord,
    KeyRingRecord,
    KeyVersionRecord,
    PrincipalRecord,
    RefreshTokenRecord,
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

    def find(self, query: KeyQuery) -> list[KeyRecord]: ...

    def count(self, query: KeyQuery) -> int:
        """How many keys match ``query`` ignoring its limit, offset and sort."""
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
