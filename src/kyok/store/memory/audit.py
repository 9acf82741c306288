"""The in-memory audit ledger (the reference for :mod:`kyok.store.sql.audit`).

Events and checkpoints are partitioned by instance with the zero-padded seq as row id, so a
partition sorts by seq. The head is the row ``""`` of ``audit_heads``; reading it with ``lock``
guards it, so a unit of work that appended after a head another unit of work has moved since
fails at commit with ``VersionConflict`` (the SQL stores make the second writer wait instead).
Cursors are partitioned by sink.
"""

from __future__ import annotations

from collections.abc import Sequence

from kyok.errors import AlreadyExists, VersionConflict
from kyok.store._audit import MAX_READ, check_audit_query
from kyok.store._times import aware_utc, normalize_record
from kyok.store.memory._session import Session
from kyok.store.memory.repositories import _add
from kyok.store.records import (
    AuditCheckpointRecord,
    AuditEntryRecord,
    AuditHeadRecord,
    AuditQuery,
    AuditSettingsRecord,
)

__all__ = ["MemoryAuditRepository"]

_HEAD = ""


def _row_id(seq: int) -> str:
    return f"{seq:020d}"


def _moved() -> VersionConflict:
    return VersionConflict("the audit ledger moved on")


class MemoryAuditRepository:
    """The audit ledger of one in-memory unit of work."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def head(self, instance_id: str, *, lock: bool = False) -> AuditHeadRecord | None:
        table = self._s.state.audit_heads
        pk = (instance_id, _HEAD)
        if not lock:
            return self._s.get(table, pk)
        self._s.require_writable()
        with self._s.state.lock:
            self._s.guard(table, pk, _moved)
            return self._s.get(table, pk)

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord:
        head = self.head(genesis.instance_id, lock=True)
        if head is not None:
            return head
        self._s.set(self._s.state.audit_heads, (genesis.instance_id, _HEAD), genesis)
        return genesis

    def append(
        self,
        entries: Sequence[AuditEntryRecord],
        head: AuditHeadRecord,
        expected_next_seq: int,
    ) -> None:
        current = self.head(head.instance_id, lock=True)
        if current is None or current.next_seq != expected_next_seq:
            raise _moved()
        for entry in entries:
            try:
                _add(
                    self._s,
                    self._s.state.audit_events,
                    (entry.instance_id, _row_id(entry.seq)),
                    normalize_record(entry),
                    "audit event",
                )
            except AlreadyExists:
                # Another writer took this seq first (two writers that both started from a
                # ledger with no head yet, or a commit between the check above and here): the
                # head moved, as the SQL stores' head lock reports it, and the caller retries.
                raise _moved() from None
        self._s.set(self._s.state.audit_heads, (head.instance_id, _HEAD), normalize_record(head))

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None:
        _add(
            self._s,
            self._s.state.audit_checkpoints,
            (record.instance_id, _row_id(record.seq)),
            normalize_record(record),
            "audit checkpoint",
        )

    def entries(self, query: AuditQuery) -> list[AuditEntryRecord]:
        check_audit_query(query)
        rows = sorted(
            self._s.scan(self._s.state.audit_events, query.instance_id), key=lambda e: e.seq
        )
        since = None if query.since is None else aware_utc(query.since)
        until = None if query.until is None else aware_utc(query.until)
        out: list[AuditEntryRecord] = []
        for entry in rows:
            if query.after_seq is not None and entry.seq <= query.after_seq:
                continue
            if query.until_seq is not None and entry.seq > query.until_seq:
                break
            if since is not None and entry.event_time < since:
                continue
            if until is not None and entry.event_time >= until:
                continue
            if query.actions and entry.action not in query.actions:
                continue
            if query.outcome is not None and entry.outcome != query.outcome:
                continue
            out.append(entry)
            if len(out) >= query.limit:
                break
        return out

    def checkpoints(
        self, instance_id: str, from_seq: int | None, to_seq: int | None, limit: int = 1000
    ) -> list[AuditCheckpointRecord]:
        rows = sorted(
            self._s.scan(self._s.state.audit_checkpoints, instance_id), key=lambda c: c.seq
        )
        chosen = [
            c
            for c in rows
            if (from_seq is None or c.seq >= from_seq) and (to_seq is None or c.seq <= to_seq)
        ]
        return chosen[: max(1, min(limit, MAX_READ))]

    def instance_ids(self) -> list[str]:
        return sorted({head.instance_id for head in self._s.scan_all(self._s.state.audit_heads)})

    def cursor(self, sink: str, instance_id: str) -> int | None:
        return self._s.get(self._s.state.audit_cursors, (sink, instance_id))

    def save_cursor(self, sink: str, instance_id: str, seq: int) -> None:
        current = self.cursor(sink, instance_id)
        if current is None or seq > current:
            self._s.set(self._s.state.audit_cursors, (sink, instance_id), seq)

    def settings(self, instance_id: str) -> AuditSettingsRecord | None:
        return self._s.get(self._s.state.audit_settings, (instance_id, _HEAD))

    def put_settings(self, record: AuditSettingsRecord) -> None:
        self._s.set(
            self._s.state.audit_settings, (record.instance_id, _HEAD), normalize_record(record)
        )
