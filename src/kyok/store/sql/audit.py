"""The audit ledger in SQL: ``audit_events``, ``audit_heads``, ``audit_checkpoints`` and
``audit_cursors``.

Appends are serialised per instance by the head row: :meth:`SqlAuditRepository.ensure_head`
inserts the genesis head if there is none (``ON CONFLICT DO NOTHING``) and then reads it
``FOR UPDATE`` (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the database's write
lock), so a second writer waits until the first commits and then sees the moved head.
:meth:`~SqlAuditRepository.append` moves the head with ``UPDATE ... WHERE next_seq = :expected``
as a last guard (``VersionConflict`` if another writer got there first). This is the path of
changes, which append inside their own unit of work; the data plane's group commits take the
same locks through :mod:`kyok.store.sql.ledger_writer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, select, update

from kyok.errors import InternalError, VersionConflict
from kyok.store._audit import MAX_READ, check_audit_query
from kyok.store._times import aware_utc
from kyok.store.records import (
    AuditCheckpointRecord,
    AuditEntryRecord,
    AuditHeadRecord,
    AuditQuery,
    AuditSettingsRecord,
)
from kyok.store.sql._transaction import Transaction, insert_ignoring_conflicts, upsert_statement
from kyok.store.sql.tables import (
    audit_checkpoints,
    audit_cursors,
    audit_events,
    audit_heads,
    audit_settings,
)

__all__ = ["SqlAuditRepository"]


# Built once: SQLAlchemy then reuses the statements' cache keys and compiled forms.
_HEAD = select(audit_heads).where(audit_heads.c.instance_id == bindparam("instance_id"))
_HEAD_FOR_UPDATE = _HEAD.with_for_update()  # rendered on PostgreSQL; SQLite holds the DB lock
_MOVE_HEAD = (
    update(audit_heads)
    .where(
        audit_heads.c.instance_id == bindparam("head_instance_id"),
        audit_heads.c.next_seq == bindparam("expected_next_seq"),
    )
    .values(
        {
            c: bindparam(f"new_{c.name}", type_=c.type)
            for c in (
                audit_heads.c.next_seq,
                audit_heads.c.hash,
                audit_heads.c.checkpoint_seq,
                audit_heads.c.checkpoint_at,
            )
        }
    )
)


def _entry(row: Row[Any]) -> AuditEntryRecord:
    return AuditEntryRecord(
        instance_id=row.instance_id,
        seq=int(row.seq),
        event_time=row.event_time,
        action=row.action,
        outcome=row.outcome,
        body=row.body,
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
    )


def _head(row: Row[Any]) -> AuditHeadRecord:
    return AuditHeadRecord(
        instance_id=row.instance_id,
        next_seq=int(row.next_seq),
        hash=bytes(row.hash),
        checkpoint_seq=None if row.checkpoint_seq is None else int(row.checkpoint_seq),
        checkpoint_at=row.checkpoint_at,
    )


def _checkpoint(row: Row[Any]) -> AuditCheckpointRecord:
    return AuditCheckpointRecord(
        instance_id=row.instance_id, seq=int(row.seq), issued_at=row.issued_at, body=row.body
    )


def _head_values(head: AuditHeadRecord) -> dict[str, Any]:
    return {
        "instance_id": head.instance_id,
        "next_seq": head.next_seq,
        "hash": bytes(head.hash),
        "checkpoint_seq": head.checkpoint_seq,
        "checkpoint_at": None if head.checkpoint_at is None else aware_utc(head.checkpoint_at),
    }


class SqlAuditRepository:
    """The audit ledger of one SQL unit of work."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def head(self, instance_id: str, *, lock: bool = False) -> AuditHeadRecord | None:
        stmt = _HEAD
        if lock:
            if self._tx.read_only:
                raise InternalError("locking rows in a read-only unit of work")
            stmt = _HEAD_FOR_UPDATE
        row = self._tx.execute(stmt, {"instance_id": instance_id}).first()
        return None if row is None else _head(row)

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord:
        head = self.head(genesis.instance_id, lock=True)
        if head is not None:
            return head
        self._tx.write(
            insert_ignoring_conflicts(self._tx.dialect_name, audit_heads),
            _head_values(genesis),
            what="audit head",
        )
        head = self.head(genesis.instance_id, lock=True)
        if head is None:  # pragma: no cover - the row was just inserted or found
            raise InternalError("the audit head vanished")
        return head

    def append(
        self,
        entries: Sequence[AuditEntryRecord],
        head: AuditHeadRecord,
        expected_next_seq: int,
    ) -> None:
        if entries:
            self._tx.insert_many(
                audit_events,
                [
                    {
                        "instance_id": e.instance_id,
                        "seq": e.seq,
                        "event_time": aware_utc(e.event_time),
                        "action": e.action,
                        "outcome": e.outcome,
                        "body": e.body,
                        "prev_hash": bytes(e.prev_hash),
                        "hash": bytes(e.hash),
                    }
                    for e in entries
                ],
                what="audit event",
            )
        values = {f"new_{k}": v for k, v in _head_values(head).items() if k != "instance_id"}
        values["head_instance_id"] = head.instance_id
        values["expected_next_seq"] = expected_next_seq
        moved = self._tx.write(_MOVE_HEAD, values, what="audit head")
        if moved.rowcount != 1:
            raise VersionConflict("the audit ledger moved on")

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None:
        self._tx.insert_new(
            audit_checkpoints,
            {
                "instance_id": record.instance_id,
                "seq": record.seq,
                "issued_at": aware_utc(record.issued_at),
                "body": record.body,
            },
            what="audit checkpoint",
        )

    def entries(self, query: AuditQuery) -> list[AuditEntryRecord]:
        check_audit_query(query)
        t = audit_events
        stmt = select(t).where(t.c.instance_id == query.instance_id)
        if query.after_seq is not None:
            stmt = stmt.where(t.c.seq > query.after_seq)
        if query.until_seq is not None:
            stmt = stmt.where(t.c.seq <= query.until_seq)
        if query.since is not None:
            stmt = stmt.where(t.c.event_time >= aware_utc(query.since))
        if query.until is not None:
            stmt = stmt.where(t.c.event_time < aware_utc(query.until))
        if query.actions:
            stmt = stmt.where(t.c.action.in_(query.actions))
        if query.outcome is not None:
            stmt = stmt.where(t.c.outcome == query.outcome)
        stmt = stmt.order_by(t.c.seq).limit(query.limit)
        return [_entry(row) for row in self._tx.execute(stmt)]

    def checkpoints(
        self, instance_id: str, from_seq: int | None, to_seq: int | None, limit: int = 1000
    ) -> list[AuditCheckpointRecord]:
        t = audit_checkpoints
        stmt = select(t).where(t.c.instance_id == instance_id)
        if from_seq is not None:
            stmt = stmt.where(t.c.seq >= from_seq)
        if to_seq is not None:
            stmt = stmt.where(t.c.seq <= to_seq)
        stmt = stmt.order_by(t.c.seq).limit(max(1, min(limit, MAX_READ)))
        return [_checkpoint(row) for row in self._tx.execute(stmt)]

    def instance_ids(self) -> list[str]:
        t = audit_heads
        return [
            row[0] for row in self._tx.execute(select(t.c.instance_id).order_by(t.c.instance_id))
        ]

    def cursor(self, sink: str, instance_id: str) -> int | None:
        t = audit_cursors
        row = self._tx.execute(
            select(t.c.seq).where(t.c.sink == sink, t.c.instance_id == instance_id)
        ).first()
        return None if row is None else int(row[0])

    def save_cursor(self, sink: str, instance_id: str, seq: int) -> None:
        current = self.cursor(sink, instance_id)
        if current is not None and current >= seq:
            return
        statement = upsert_statement(
            self._tx.dialect_name,
            audit_cursors,
            {"sink": sink, "instance_id": instance_id, "seq": seq},
        )
        if statement is None:  # pragma: no cover - SQLite and PostgreSQL have upserts
            raise InternalError("no upsert on this database")
        self._tx.write(statement, what="audit cursor")

    def settings(self, instance_id: str) -> AuditSettingsRecord | None:
        t = audit_settings
        row = self._tx.execute(select(t).where(t.c.instance_id == instance_id)).first()
        if row is None:
            return None
        return AuditSettingsRecord(
            row.instance_id, bool(row.fail_open), row.updated_at, row.updated_by
        )

    def put_settings(self, record: AuditSettingsRecord) -> None:
        self._tx.upsert(
            audit_settings,
            {
                "instance_id": record.instance_id,
                "fail_open": record.fail_open,
                "updated_at": aware_utc(record.updated_at),
                "updated_by": record.updated_by,
            },
            what="audit settings",
        )
