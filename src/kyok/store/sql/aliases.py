"""Aliases of keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, func, select

from kyok.store._times import normalize_record
from kyok.store.records import AliasRecord
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.blobs import ID_CHUNK
from kyok.store.sql.tables import aliases as t


def alias_from_row(row: Row[Any]) -> AliasRecord:
    """Build an :class:`AliasRecord` from a row of ``aliases``."""
    return AliasRecord(
        instance_id=row.instance_id,
        alias=row.alias,
        key_id=row.key_id,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class SqlAliasRepository:
    """``AliasRepository`` over the ``aliases`` table; a key's aliases in creation order."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: AliasRecord) -> None:
        record = normalize_record(record)
        values = {
            "instance_id": record.instance_id,
            "alias": record.alias,
            "key_id": record.key_id,
            "created_at": record.created_at,
            "created_by": record.created_by,
        }
        self._tx.insert_new(t, values, what="alias")

    def get(self, instance_id: str, alias: str) -> AliasRecord | None:
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.alias == alias)
        row = self._tx.execute(stmt).first()
        return None if row is None else alias_from_row(row)

    def list_for_key(self, instance_id: str, key_id: str) -> list[AliasRecord]:
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        records = [alias_from_row(row) for row in self._tx.execute(stmt)]
        # sorted here: the same code-point order on every backend, whatever the DB's locale
        return sorted(records, key=lambda r: (r.created_at, r.alias))

    def list_for_keys(self, instance_id: str, key_ids: Sequence[str]) -> dict[str, list[str]]:
        """Every requested key id maps to its aliases (an empty list if it has none)."""
        found: dict[str, list[str]] = {key_id: [] for key_id in key_ids}
        unique = list(found)
        rows: list[Row[Any]] = []
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            stmt = select(t.c.key_id, t.c.alias, t.c.created_at).where(
                t.c.instance_id == instance_id, t.c.key_id.in_(chunk)
            )
            rows.extend(self._tx.execute(stmt))
        rows.sort(key=lambda r: (r.created_at, r.alias))
        for row in rows:
            found[row.key_id].append(row.alias)
        return found

    def delete(self, instance_id: str, alias: str) -> bool:
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.alias == alias)
        return self._tx.write(stmt).rowcount > 0

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        return self._tx.write(stmt).rowcount

    def count_for_instance(self, instance_id: str) -> int:
        stmt = select(func.count()).select_from(t).where(t.c.instance_id == instance_id)
        return int(self._tx.execute(stmt).scalar_one())
