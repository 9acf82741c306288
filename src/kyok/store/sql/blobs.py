"""Sealed blobs (key material under the master key; the store never sees plaintext)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, select

from kyok.store.records import BlobRecord
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import blobs as t

#: Ids per ``IN (...)`` list: well under every backend's bound-parameter limit.
ID_CHUNK = 500


def blob_from_row(row: Row[Any]) -> BlobRecord:
    """Build a :class:`BlobRecord` from a row of ``blobs``."""
    return BlobRecord(
        instance_id=row.instance_id,
        owner_id=row.owner_id,
        id=row.id,
        purpose=row.purpose,
        mk_epoch=row.mk_epoch,
        data=bytes(row.data),
    )


def _values(record: BlobRecord) -> dict[str, Any]:
    return {
        "instance_id": record.instance_id,
        "id": record.id,
        "owner_id": record.owner_id,
        "purpose": record.purpose,
        "mk_epoch": record.mk_epoch,
        "data": bytes(record.data),
    }


class SqlBlobRepository:
    """``BlobRepository`` over the ``blobs`` table."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: BlobRecord) -> None:
        self._tx.insert_new(t, _values(record), what="blob")

    def add_many(self, records: Sequence[BlobRecord]) -> None:
        """Insert new blobs with one statement (fresh ids: see ``insert_many``)."""
        self._tx.insert_many(t, [_values(r) for r in records], what="blob")

    def get(self, instance_id: str, blob_id: str) -> BlobRecord | None:
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == blob_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else blob_from_row(row)

    def get_many(self, instance_id: str, blob_ids: Sequence[str]) -> dict[str, BlobRecord]:
        unique = list(dict.fromkeys(blob_ids))
        found: dict[str, BlobRecord] = {}
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            stmt = select(t).where(t.c.instance_id == instance_id, t.c.id.in_(chunk))
            for row in self._tx.execute(stmt):
                found[row.id] = blob_from_row(row)
        return found

    def delete_for_owner(self, instance_id: str, owner_id: str) -> int:
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.owner_id == owner_id)
        return self._tx.write(stmt).rowcount
