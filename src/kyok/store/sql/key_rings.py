"""Key rings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select

from kyok.store._keyquery import check_page
from kyok.store._times import normalize_record
from kyok.store.records import KeyRingRecord
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import key_rings as t

# Built once: SQLAlchemy then reuses the statement's cache key and compiled form.
_GET = select(t).where(t.c.instance_id == bindparam("instance_id"), t.c.id == bindparam("id"))


def key_ring_from_row(row: Row[Any]) -> KeyRingRecord:
    """Build a :class:`KeyRingRecord` from a row of ``key_rings``."""
    return KeyRingRecord(
        instance_id=row.instance_id,
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class SqlKeyRingRepository:
    """``KeyRingRepository`` over the ``key_rings`` table. Lists in creation order."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: KeyRingRecord) -> None:
        record = normalize_record(record)
        values = {
            "instance_id": record.instance_id,
            "id": record.id,
            "created_at": record.created_at,
            "created_by": record.created_by,
        }
        self._tx.insert_new(t, values, what="key ring")

    def get(self, instance_id: str, key_ring_id: str) -> KeyRingRecord | None:
        row = self._tx.execute(_GET, {"instance_id": instance_id, "id": key_ring_id}).first()
        return None if row is None else key_ring_from_row(row)

    def list(self, instance_id: str, limit: int, offset: int) -> list[KeyRingRecord]:
        check_page(limit, offset)
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id)
            .order_by(t.c.created_at, t.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [key_ring_from_row(row) for row in self._tx.execute(stmt)]

    def count(self, instance_id: str) -> int:
        stmt = select(func.count()).select_from(t).where(t.c.instance_id == instance_id)
        return int(self._tx.execute(stmt).scalar_one())

    def delete(self, instance_id: str, key_ring_id: str) -> bool:
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.id == key_ring_id)
        return self._tx.write(stmt).rowcount > 0
