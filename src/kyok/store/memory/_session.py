"""Committed tables and per-unit-of-work overlays of the in-memory store.

A :class:`MemoryState` holds the committed rows. Each unit of work writes into a private
:class:`Session` overlay that other units of work cannot see; ``commit`` re-checks, under the
store's lock, every assumption the overlay made (a new id was still free, a key still had the
row version the update expected) and then applies the overlay at once. Reads see committed
rows plus the unit of work's own changes (read committed, as on PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

from kyok.errors import InternalError, KyokError
from kyok.store.records import (
    AliasRecord,
    ApiKeyRecord,
    AuditCheckpointRecord,
    AuditEntryRecord,
    AuditHeadRecord,
    AuditSettingsRecord,
    BlobRecord,
    DeletionAuthorizationRecord,
    ImportTokenRecord,
    InstancePolicyRecord,
    InstanceRecord,
    KeyPolicyRecord,
    KeyRecord,
    KeyRingRecord,
    KeyVersionRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RegistrationRecord,
    RoleBindingRecord,
    TranscriptRecord,
)

R = TypeVar("R")

#: Returned by :meth:`Session.pending` for a row the unit of work has not written.
MISSING = object()

#: A row's id within its partition: a string, or a tuple of strings for a composite key.
RowId = str | tuple[str, ...]

#: (partition, id): the partition is the instance id ("" for the instances table itself).
Pk = tuple[str, RowId]


class Table(Generic[R]):
    """Committed rows of one table, partitioned by instance. Guarded by the state's lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._parts: dict[str, dict[RowId, R]] = {}

    def get(self, pk: Pk) -> R | None:
        part = self._parts.get(pk[0])
        return None if part is None else part.get(pk[1])

    def partition(self, part: str) -> dict[RowId, R]:
        return dict(self._parts.get(part, {}))

    def partitions(self) -> list[str]:
        return list(self._parts)

    def rows(self) -> Iterator[R]:
        for part in self._parts.values():
            yield from part.values()

    def put(self, pk: Pk, row: R) -> None:
        self._parts.setdefault(pk[0], {})[pk[1]] = row

    def remove(self, pk: Pk) -> None:
        part = self._parts.get(pk[0])
        if part is not None:
            part.pop(pk[1], None)
            if not part:
                del self._parts[pk[0]]


class UnitRow:
    """A crypto unit: its instance, creation time and transcript."""

    __slots__ = ("created_at", "instance_id", "transcript")

    def __init__(self, instance_id: str, created_at: datetime) -> None:
        self.instance_id = instance_id
        self.created_at = created_at
        self.transcript: list[TranscriptRecord] = []


class MemoryState:
    """Everything the in-memory store has committed, and the lock that guards it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.instances: Table[InstanceRecord] = Table("instances")
        self.key_rings: Table[KeyRingRecord] = Table("key_rings")
        self.keys: Table[KeyRecord] = Table("keys")
        self.versions: Table[KeyVersionRecord] = Table("key_versions")
        self.blobs: Table[BlobRecord] = Table("blobs")
        self.aliases: Table[AliasRecord] = Table("aliases")
        self.units: dict[str, UnitRow] = {}
        # credentials (kyok.auth); API keys and refresh tokens live in partition "" by lookup
        self.principals: Table[PrincipalRecord] = Table("principals")
        self.api_keys: Table[ApiKeyRecord] = Table("api_keys")
        self.role_bindings: Table[RoleBindingRecord] = Table("role_bindings")
        self.refresh_tokens: Table[RefreshTokenRecord] = Table("refresh_tokens")
        # import tokens (row id ""), policies, deletion authorisations and registrations;
        # composite keys within the instance are tuples
        self.import_tokens: Table[ImportTokenRecord] = Table("import_tokens")
        self.key_policies: Table[KeyPolicyRecord] = Table("key_policies")
        self.deletion_authorizations: Table[DeletionAuthorizationRecord] = Table(
            "deletion_authorizations"
        )
        self.instance_policies: Table[InstancePolicyRecord] = Table("instance_policies")
        self.registrations: Table[RegistrationRecord] = Table("registrations")
        # the audit ledger: events and checkpoints by zero-padded seq, the head at row "",
        # forwarder cursors (last delivered seq) partitioned by sink
        self.audit_events: Table[AuditEntryRecord] = Table("audit_events")
        self.audit_heads: Table[AuditHeadRecord] = Table("audit_heads")
        self.audit_checkpoints: Table[AuditCheckpointRecord] = Table("audit_checkpoints")
        self.audit_cursors: Table[int] = Table("audit_cursors")
        self.audit_settings: Table[AuditSettingsRecord] = Table("audit_settings")


class Session:
    """The private overlay of one unit of work.

    Every primitive raises ``RuntimeError`` outside the ``with`` block of its unit of work, and
    every write raises ``InternalError`` in a read-only one.
    """

    def __init__(self, state: MemoryState, *, read_only: bool) -> None:
        self.state = state
        self.read_only = read_only
        self._open = False
        self._closed = False
        self._writes: dict[Table[Any], dict[Pk, Any]] = {}
        self._guarded: set[tuple[str, Pk]] = set()
        self._checks: list[Callable[[], None]] = []

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        if self._open or self._closed:
            raise RuntimeError("a unit of work can be entered only once")
        self._open = True

    def close(self) -> None:
        self.discard()
        self._open = False
        self._closed = True

    def require_open(self) -> None:
        if not self._open:
            raise RuntimeError("use the unit of work inside its 'with' block")

    def require_writable(self) -> None:
        self.require_open()
        if self.read_only:
            raise InternalError("write attempted in a read-only unit of work")

    def discard(self) -> None:
        self._writes.clear()
        self._guarded.clear()
        self._checks.clear()

    def commit(self) -> None:
        """Re-check every assumption, then apply the overlay atomically."""
        self.require_open()
        try:
            with self.state.lock:
                for check in self._checks:
                    check()
                for table, rows in self._writes.items():
                    for pk, row in rows.items():
                        if row is None:
                            table.remove(pk)
                        else:
                            table.put(pk, row)
        finally:
            self.discard()

    # ------------------------------------------------------------ reads

    def get(self, table: Table[R], pk: Pk) -> R | None:
        self.require_open()
        overlay = self._writes.get(table)
        if overlay is not None and pk in overlay:
            row: R | None = overlay[pk]
            return row
        with self.state.lock:
            return table.get(pk)

    def scan(self, table: Table[R], part: str) -> list[R]:
        """Rows of one partition: committed rows with this unit of work's changes on top."""
        self.require_open()
        with self.state.lock:
            rows = table.partition(part)
        overlay = self._writes.get(table)
        if overlay:
            for pk, row in overlay.items():
                if pk[0] != part:
                    continue
                if row is None:
                    rows.pop(pk[1], None)
                else:
                    rows[pk[1]] = row
        return list(rows.values())

    def scan_all(self, table: Table[R]) -> list[R]:
        """Rows of every partition."""
        self.require_open()
        with self.state.lock:
            parts = set(table.partitions())
        parts.update(pk[0] for pk in self._writes.get(table, {}))
        rows: list[R] = []
        for part in sorted(parts):
            rows.extend(self.scan(table, part))
        return rows

    def pending(self, table: Table[Any], pk: Pk) -> object:
        """What this unit of work has written at ``pk`` (``None`` if deleted), else ``MISSING``."""
        return self._writes.get(table, {}).get(pk, MISSING)

    def overlay_pks(self, table: Table[Any]) -> set[Pk]:
        """Primary keys this unit of work has written (changed or deleted) in ``table``."""
        return set(self._writes.get(table, {}))

    # ------------------------------------------------------------ writes

    def set(self, table: Table[R], pk: Pk, row: R | None) -> None:
        """Write (or with ``None`` delete) a row in the overlay."""
        self.require_writable()
        self._writes.setdefault(table, {})[pk] = row

    def guard(self, table: Table[Any], pk: Pk, error: Callable[[], KyokError]) -> None:
        """At commit, raise ``error()`` unless the committed row at ``pk`` is the one there now.

        Only the first guard per row counts: it records what this unit of work first relied on.
        Call with the state's lock held, together with the check it protects.
        """
        if (table.name, pk) in self._guarded:
            return
        self._guarded.add((table.name, pk))
        seen = table.get(pk)

        def check() -> None:
            if table.get(pk) is not seen:
                raise error()

        self._checks.append(check)

    def on_commit(self, check: Callable[[], None]) -> None:
        """Run ``check`` (under the lock) before this unit of work's changes are applied."""
        self._checks.append(check)
