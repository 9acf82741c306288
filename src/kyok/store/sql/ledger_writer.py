"""The audit ledger's group-commit writer: one dedicated connection, plain DB-API statements.

Every data-plane call (wrap, unwrap, rewrap) ends in one group commit, so the fixed cost of a
commit is paid thousands of times a second. Through a unit of work it was ~0.4 ms of CPU per
batch (sixteen repositories, a pooled connection, four statements built and cache-keyed by
SQLAlchemy's expression layer); here a batch is BEGIN, a SELECT of the head, one executemany,
one UPDATE and COMMIT on a connection the writer keeps (bench/wrap.sh measures the effect).

The statements and the locking are those of :class:`kyok.store.sql.audit.SqlAuditRepository`:
on SQLite ``BEGIN IMMEDIATE`` takes the write lock, on PostgreSQL the head row is read
``FOR UPDATE``; the head moves with ``UPDATE ... WHERE next_seq = <expected>``. Values are
stored exactly as the SQLAlchemy types store them (SQLite: naive UTC text times), so either
path reads what the other wrote. Only the append path lives here; reading stays in the
repository.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from kyok.errors import VersionConflict
from kyok.store._times import aware_utc
from kyok.store.records import AuditCheckpointRecord, AuditEntryRecord, AuditHeadRecord
from kyok.store.sql.write_gate import gate_of

__all__ = ["SqlLedgerWriter"]


# Constant statements with qmark parameters (sqlite3); psycopg takes %s.
_SELECT_HEAD = (
    "SELECT next_seq, hash, checkpoint_seq, checkpoint_at FROM audit_heads WHERE instance_id = ?"
)
_INSERT_HEAD = (
    "INSERT INTO audit_heads (instance_id, next_seq, hash, checkpoint_seq, checkpoint_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_EVENTS = (
    "INSERT INTO audit_events (instance_id, seq, event_time, action, outcome, body, prev_hash,"
    " hash) VALUES "
)
_EVENT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
#: Rows per INSERT: one statement (one step, one release of the GIL) per chunk instead of one
#: per row; 8 parameters a row stay far below SQLite's 32,766 and PostgreSQL's 65,535.
_ROWS_PER_INSERT = 500
_MOVE_HEAD = (
    "UPDATE audit_heads SET next_seq = ?, hash = ?, checkpoint_seq = ?, checkpoint_at = ?"
    " WHERE instance_id = ? AND next_seq = ?"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (instance_id, seq, issued_at, body) VALUES (?, ?, ?, ?)"
)


def _as_is(sql: str) -> str:
    return sql


def _for_postgresql(sql: str) -> str:
    return sql.replace("?", "%s")


class _Batch:
    """The append operations of one transaction (what :class:`kyok.kms.ledger.Ledger` uses)."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cur = cursor
        self._pg = dialect == "postgresql"
        sql = _for_postgresql if self._pg else _as_is
        self._sql = sql
        self._inserts: dict[int, str] = {}
        self._select_head = sql(_SELECT_HEAD + (" FOR UPDATE" if self._pg else ""))
        self._insert_head = sql(_INSERT_HEAD)
        self._move_head = sql(_MOVE_HEAD)
        self._insert_checkpoint = sql(_INSERT_CHECKPOINT)

    def _insert_rows(self, count: int) -> str:
        statement = self._inserts.get(count)
        if statement is None:
            rows = ", ".join([_EVENT_ROW] * count)
            statement = self._sql(_INSERT_EVENTS + rows)
            if len(self._inserts) < 64:
                self._inserts[count] = statement
        return statement

    def _time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        utc = aware_utc(value)
        # SQLite: the text SQLAlchemy's DateTime writes (YYYY-MM-DD HH:MM:SS.ffffff)
        return utc if self._pg else utc.replace(tzinfo=None).isoformat(" ", "microseconds")

    def _read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    def head(self, instance_id: str) -> AuditHeadRecord | None:
        """The instance's head, locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE holds the lock)."""
        self._cur.execute(self._select_head, (instance_id,))
        row = self._cur.fetchone()
        if row is None:
            return None
        next_seq, digest, checkpoint_seq, checkpoint_at = row
        return AuditHeadRecord(
            instance_id,
            int(next_seq),
            bytes(digest),
            None if checkpoint_seq is None else int(checkpoint_seq),
            self._read_time(checkpoint_at),
        )

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord:
        head = self.head(genesis.instance_id)
        if head is not None:
            return head
        self._cur.execute(
            self._insert_head,
            (genesis.instance_id, genesis.next_seq, bytes(genesis.hash), None, None),
        )
        head = self.head(genesis.instance_id)
        if head is None:  # pragma: no cover - just inserted or found
            raise VersionConflict("the audit head vanished")
        return head

    def append(
        self, entries: Sequence[AuditEntryRecord], head: AuditHeadRecord, expected_next_seq: int
    ) -> None:
        for start in range(0, len(entries), _ROWS_PER_INSERT):
            chunk = entries[start : start + _ROWS_PER_INSERT]
            params: list[Any] = []
            for e in chunk:
                params += (
                    e.instance_id,
                    e.seq,
                    self._time(e.event_time),
                    e.action,
                    e.outcome,
                    e.body,
                    bytes(e.prev_hash),
                    bytes(e.hash),
                )
            self._cur.execute(self._insert_rows(len(chunk)), params)
        self._cur.execute(
            self._move_head,
            (
                head.next_seq,
                bytes(head.hash),
                head.checkpoint_seq,
                self._time(head.checkpoint_at),
                head.instance_id,
                expected_next_seq,
            ),
        )
        if self._cur.rowcount != 1:
            raise VersionConflict("the audit ledger moved on")

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None:
        self._cur.execute(
            self._insert_checkpoint,
            (record.instance_id, record.seq, self._time(record.issued_at), record.body),
        )


class _Target:
    """What :meth:`kyok.kms.ledger.Ledger.append` writes through: ``target.audit``."""

    def __init__(self, batch: _Batch) -> None:
        self.audit = batch


class SqlLedgerWriter:
    """A dedicated connection for the ledger's group commits (one writer thread uses it).

    Args:
        engine: the store's engine (its connect hooks set SQLite's pragmas on the connection).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        return self._conn

    @contextmanager
    def batch(self) -> Iterator[_Target]:
        """One transaction: BEGIN, the appends, COMMIT (ROLLBACK and a fresh connection next
        time if anything fails)."""
        with self._lock:
            conn = self._connection()
            cursor = conn.cursor()
            gate = gate_of(self._engine)
            if gate is not None:
                gate.acquire(self)
            try:
                if self._dialect == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")  # the sqlite3 module leaves BEGIN to us
                yield _Target(_Batch(cursor, self._dialect))
                if self._dialect == "sqlite":
                    cursor.execute("COMMIT")
                else:
                    conn.commit()
            except BaseException:
                self._discard()
                raise
            finally:
                if gate is not None:
                    gate.release(self)
                with contextlib.suppress(Exception):
                    cursor.close()

    def _discard(self) -> None:
        """Roll back and drop the connection (the next batch opens a fresh one)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # dropped either way
            if self._dialect == "sqlite":
                conn.cursor().execute("ROLLBACK")
            else:
                conn.rollback()
        with contextlib.suppress(Exception):
            conn.invalidate()

    def close(self) -> None:
        """Return the connection."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
