"""Instances (tenants)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select

from kyok.store._times import normalize_record
from kyok.store.records import InstanceRecord
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import instances as t

# Built once: SQLAlchemy then reuses the statement's cache key and compiled form.
_GET = select(t).where(t.c.id == bindparam("id"))


def instance_from_row(row: Row[Any]) -> InstanceRecord:
    """Build an :class:`InstanceRecord` from a row of ``instances``."""
    return InstanceRecord(
        id=row.id,
        name=row.name,
        unit_id=row.unit_id,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class SqlInstanceRepository:
    """``InstanceRepository`` over the ``instances`` table."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: InstanceRecord) -> None:
        record = normalize_record(record)
        values = {
            "id": record.id,
            "name": record.name,
            "unit_id": record.unit_id,
            "created_at": record.created_at,
            "created_by": record.created_by,
        }
        self._tx.insert_new(t, values, what="instance")

    def get(self, instance_id: str) -> InstanceRecord | None:
        row = self._tx.execute(_GET, {"id": instance_id}).first()
        return None if row is None else instance_from_row(row)

    def list(self) -> list[InstanceRecord]:
        rows = self._tx.execute(select(t).order_by(t.c.created_at, t.c.id))
        return [instance_from_row(row) for row in rows]
