"""Key versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, func, select

from kyok.store._keyquery import check_page
from kyok.store._times import normalize_record
from kyok.store.records import KeyVersionRecord
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import key_versions as t


def key_version_from_row(row: Row[Any]) -> KeyVersionRecord:
    """Build a :class:`KeyVersionRecord` from a row of ``key_versions``."""
    return KeyVersionRecord(
        instance_id=row.instance_id,
        key_id=row.key_id,
        id=row.id,
        number=row.number,
        created_at=row.created_at,
    )


def _values(record: KeyVersionRecord, *, normalize: bool = True) -> dict[str, Any]:
    if normalize:
        record = normalize_record(record)
    return {
        "instance_id": record.instance_id,
        "id": record.id,
        "key_id": record.key_id,
        "number": record.number,
        "created_at": record.created_at,
    }


class SqlKeyVersionRepository:
    """``KeyVersionRepository`` over ``key_versions``; a key's version numbers are unique."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: KeyVersionRecord) -> None:
        self._tx.insert_new(t, _values(record), what="key version")

    def add_many(self, records: Sequence[KeyVersionRecord]) -> None:
        """Insert new versions with one statement (fresh ids: see ``insert_many``; the time
        column's type converts to UTC as it binds)."""
        self._tx.insert_many(t, [_values(r, normalize=False) for r in records], what="key version")

    def get(self, instance_id: str, version_id: str) -> KeyVersionRecord | None:
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == version_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else key_version_from_row(row)

    def list_for_key(
        self, instance_id: str, key_id: str, limit: int, offset: int
    ) -> list[KeyVersionRecord]:
        """Newest (highest number) first."""
        check_page(limit, offset)
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id, t.c.key_id == key_id)
            .order_by(t.c.number.desc())
            .limit(limit)
            .offset(offset)
        )
        return [key_version_from_row(row) for row in self._tx.execute(stmt)]

    def count_for_key(self, instance_id: str, key_id: str) -> int:
        stmt = (
            select(func.count())
            .select_from(t)
            .where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        )
        return int(self._tx.execute(stmt).scalar_one())

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        return self._tx.write(stmt).rowcount
