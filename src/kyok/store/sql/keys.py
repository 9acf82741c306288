"""Key metadata, with optimistic concurrency on ``row_version``.

Triggers on ``keys`` keep ``key_buckets`` (migration 0006) in every write's transaction, and
lock the bucket rows they change. :meth:`SqlKeyRepository.add_many` inserts in bucket order and
kyok changes the state of (or deletes) one key per transaction: see 0006 for why these locks
then cannot deadlock."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, update

from kyok.errors import VersionConflict
from kyok.store._keyquery import check_page, check_query
from kyok.store._times import aware_utc, normalize_record
from kyok.store.records import KeyQuery, KeyRecord
from kyok.store.sql import key_query
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import keys as t

_PK = ("instance_id", "id")
_EXPIRING_STATES = (1, 2)


def key_from_row(row: Row[Any]) -> KeyRecord:
    """Build a :class:`KeyRecord` from a row of ``keys``."""
    return KeyRecord(
        instance_id=row.instance_id,
        id=row.id,
        name=row.name,
        description=row.description,
        extractable=bool(row.extractable),
        imported=bool(row.imported),
        state=row.state,
        key_ring_id=row.key_ring_id,
        tags=tuple(row.tags),
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        last_action_at=row.last_action_at,
        current_version_id=row.current_version_id,
        version_count=row.version_count,
        bit_length=row.bit_length,
        last_rotated_at=row.last_rotated_at,
        expires_at=row.expires_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
        state_reason=row.state_reason,
        last_synced_at=row.last_synced_at,
        row_version=row.row_version,
    )


_FIELDS = tuple(f.name for f in dataclasses.fields(KeyRecord))


def key_values(record: KeyRecord) -> dict[str, Any]:
    """The column values of ``record`` (every field of the record is a column)."""
    values = {name: getattr(record, name) for name in _FIELDS}
    values["tags"] = tuple(record.tags)
    values["extractable"] = bool(record.extractable)
    values["imported"] = bool(record.imported)
    return values


def _bucket_order(record: KeyRecord) -> tuple[str, int, str]:
    """Sort key of the ``key_buckets`` row a key counts in (ids compare by code point, as
    the byte-wise ``C`` collation does; a prefix orders its ids as the ids themselves)."""
    return (record.instance_id, record.state, record.id)


class SqlKeyRepository:
    """``KeyRepository`` over the ``keys`` table."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: KeyRecord) -> None:
        self._tx.insert_new(t, key_values(normalize_record(record)), what="key")

    def add_many(self, records: Sequence[KeyRecord]) -> None:
        """Insert new keys with one statement (their ids are fresh: see ``insert_many``).

        The time columns' type converts to UTC (and refuses naive values) as it binds them.
        The rows go in ``key_buckets`` order (instance, state, id): each insert's trigger then
        locks its bucket row after those of the rows before it, so two batches never wait for
        each other's bucket rows in a cycle (migration 0006).
        """
        ordered = sorted(records, key=_bucket_order)
        self._tx.insert_many(t, [key_values(r) for r in ordered], what="key")

    def get(self, instance_id: str, key_id: str) -> KeyRecord | None:
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == key_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else key_from_row(row)

    def update(self, record: KeyRecord, expected_row_version: int) -> KeyRecord:
        """``UPDATE ... WHERE row_version = :expected``; no row changed → ``VersionConflict``."""
        stored = dataclasses.replace(normalize_record(record), row_version=expected_row_version + 1)
        values = {k: v for k, v in key_values(stored).items() if k not in _PK}
        stmt = (
            update(t)
            .where(
                t.c.instance_id == record.instance_id,
                t.c.id == record.id,
                t.c.row_version == expected_row_version,
            )
            .values(values)
        )
        if self._tx.write(stmt, what="key").rowcount != 1:
            raise VersionConflict("the key was changed or removed by someone else")
        return stored

    def delete(self, instance_id: str, key_id: str) -> None:
        self._tx.write(delete(t).where(t.c.instance_id == instance_id, t.c.id == key_id))

    def find(self, query: KeyQuery) -> list[KeyRecord]:
        stmt = key_query.select_page(check_query(query), self._tx.dialect_name)
        return [key_from_row(row) for row in self._tx.execute(stmt)]

    def count(self, query: KeyQuery, *, cap: int | None = None) -> int:
        """How many keys match ``query``; with ``cap``, at most ``cap`` (counting stops)."""
        stmt = key_query.select_count(check_query(query), cap, self._tx.dialect_name)
        return int(self._tx.execute(stmt).scalar_one())

    def expiring(self, now: datetime, limit: int) -> list[KeyRecord]:
        """Keys in state 1 or 2 with ``expires_at <= now``, any instance, oldest first."""
        check_page(limit, 0)
        stmt = (
            select(t)
            .where(
                t.c.state.in_(_EXPIRING_STATES),
                t.c.expires_at.is_not(None),
                t.c.expires_at <= aware_utc(now, "now"),
            )
            .order_by(t.c.expires_at, t.c.instance_id, t.c.id)
            .limit(limit)
        )
        return [key_from_row(row) for row in self._tx.execute(stmt)]

    def count_in_ring(
        self, instance_id: str, key_ring_id: str, states: frozenset[int] | None = None
    ) -> int:
        """Keys in the ring; ``states`` None counts keys in every state (destroyed too)."""
        stmt = (
            select(func.count())
            .select_from(t)
            .where(t.c.instance_id == instance_id, t.c.key_ring_id == key_ring_id)
        )
        if states is not None:
            stmt = stmt.where(t.c.state.in_(sorted(states)))
        return int(self._tx.execute(stmt).scalar_one())

    def move_ring(
        self, instance_id: str, from_ring: str, to_ring: str, states: frozenset[int]
    ) -> int:
        """Move keys in ``states``; each moved key's ``row_version`` goes up by one."""
        stmt = (
            update(t)
            .where(
                t.c.instance_id == instance_id,
                t.c.key_ring_id == from_ring,
                t.c.state.in_(sorted(states)),
            )
            .values(key_ring_id=to_ring, row_version=t.c.row_version + 1)
        )
        return self._tx.write(stmt).rowcount
