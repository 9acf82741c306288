"""Crypto-unit persistence: ``kyok.unit.ports.UnitStateStore`` over SQL.

Each method is its own transaction. The transcript's primary key ``(unit_id, n)`` is what
makes concurrent appends safe: of two writers appending entry ``n``, one wins and the other
gets ``VersionConflict``. Blob rewrites are compare-and-swap on ``mk_epoch``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from kyok.clock import Clock, SystemClock
from kyok.errors import AlreadyExists, NotFound, VersionConflict
from kyok.store._keyquery import check_page
from kyok.store._unit_types import (
    BlobRewriteLike,
    StoredBlobLike,
    TranscriptEntryLike,
    check_appended_numbers,
    transcript_record,
)
from kyok.store.records import TranscriptRecord
from kyok.store.sql._errors import translated
from kyok.store.sql._transaction import insert_ignoring_conflicts
from kyok.store.sql.blobs import blob_from_row
from kyok.store.sql.engine import connect
from kyok.store.sql.tables import blobs, unit_transcript, units


def _transcript_conflict(_what: str) -> VersionConflict:
    return VersionConflict("the transcript was appended to by someone else")


class SqlUnitStateStore:
    """``UnitStateStore`` over the ``units``, ``unit_transcript`` and ``blobs`` tables."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with translated(), connect(self._engine) as conn, conn.begin():
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with translated(), connect(self._engine, read_only=True) as conn, conn.begin():
            yield conn

    def create_unit(
        self, unit_id: str, instance_id: str, entries: Sequence[TranscriptEntryLike]
    ) -> None:
        """Insert a unit with its first transcript entries (numbered from 0).

        Raises:
            AlreadyExists: the unit id, or the instance's unit, exists already.
            ValueError: the entries are not numbered 0, 1, 2, ...
        """
        records = [transcript_record(e) for e in entries]
        check_appended_numbers(records, 0)
        with self._writing() as conn:
            result = conn.execute(
                insert_ignoring_conflicts(conn.dialect.name, units),
                {"unit_id": unit_id, "instance_id": instance_id, "created_at": self._clock.now()},
            )
            if result.first() is None:
                raise AlreadyExists("crypto unit already exists")
            self._insert_entries(conn, unit_id, records)

    def unit_instance(self, unit_id: str) -> str | None:
        with self._reading() as conn:
            stmt = select(units.c.instance_id).where(units.c.unit_id == unit_id)
            return conn.execute(stmt).scalar_one_or_none()

    def unit_for_instance(self, instance_id: str) -> str | None:
        with self._reading() as conn:
            stmt = select(units.c.unit_id).where(units.c.instance_id == instance_id)
            return conn.execute(stmt).scalar_one_or_none()

    def append_transcript(self, unit_id: str, entries: Sequence[TranscriptEntryLike]) -> None:
        """Append entries that continue the transcript, atomically.

        Raises:
            NotFound: no such unit.
            VersionConflict: an entry number exists already (someone appended first).
            ValueError: the numbers are not consecutive or leave a gap.
        """
        records = [transcript_record(e) for e in entries]
        with self._writing() as conn:
            found = conn.execute(select(units.c.unit_id).where(units.c.unit_id == unit_id))
            if found.first() is None:
                raise NotFound("no such crypto unit")
            last = conn.execute(
                select(func.max(unit_transcript.c.n)).where(unit_transcript.c.unit_id == unit_id)
            ).scalar_one_or_none()
            following = 0 if last is None else int(last) + 1
            if records and records[0].n < following:
                check_appended_numbers(records, records[0].n)
                raise _transcript_conflict("transcript entry")
            check_appended_numbers(records, following)
            with translated("transcript entry", on_unique=_transcript_conflict):
                self._insert_entries(conn, unit_id, records)

    @staticmethod
    def _insert_entries(
        conn: Connection, unit_id: str, records: Sequence[TranscriptRecord]
    ) -> None:
        if records:
            conn.execute(
                insert(unit_transcript),
                [
                    {"unit_id": unit_id, "n": r.n, "entry": r.entry, "hash": r.hash, "mac": r.mac}
                    for r in records
                ],
            )

    def transcript(self, unit_id: str, after: int = -1) -> list[TranscriptEntryLike]:
        """Entries with ``n > after``, in order."""
        c = unit_transcript.c
        stmt = select(unit_transcript).where(c.unit_id == unit_id, c.n > after).order_by(c.n)
        with self._reading() as conn:
            return [
                TranscriptRecord(n=row.n, entry=row.entry, hash=row.hash, mac=row.mac)
                for row in conn.execute(stmt)
            ]

    def blobs_at_epoch(self, instance_id: str, epoch: int, limit: int) -> list[StoredBlobLike]:
        """Up to ``limit`` blobs still sealed under ``epoch``, in id order (index-backed)."""
        check_page(limit, 0)
        c = blobs.c
        stmt = (
            select(blobs)
            .where(c.instance_id == instance_id, c.mk_epoch == epoch)
            .order_by(c.id)
            .limit(limit)
        )
        with self._reading() as conn:
            return [blob_from_row(row) for row in conn.execute(stmt)]

    def count_blobs_at_epoch(self, instance_id: str, epoch: int) -> int:
        c = blobs.c
        stmt = (
            select(func.count())
            .select_from(blobs)
            .where(c.instance_id == instance_id, c.mk_epoch == epoch)
        )
        with self._reading() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_blobs(self, instance_id: str) -> int:
        stmt = select(func.count()).select_from(blobs).where(blobs.c.instance_id == instance_id)
        with self._reading() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get_blob(self, instance_id: str, blob_id: str) -> StoredBlobLike | None:
        stmt = select(blobs).where(blobs.c.instance_id == instance_id, blobs.c.id == blob_id)
        with self._reading() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else blob_from_row(row)

    def add_blob(self, blob: StoredBlobLike) -> None:
        values = {
            "instance_id": blob.instance_id,
            "owner_id": blob.owner_id,
            "id": blob.id,
            "purpose": blob.purpose,
            "mk_epoch": blob.mk_epoch,
            "data": bytes(blob.data),
        }
        with self._writing() as conn:
            conn.execute(insert(blobs).values(**values))

    def rewrite_blobs(self, instance_id: str, rewrites: Sequence[BlobRewriteLike]) -> int:
        """Apply each rewrite only where the blob is still at ``old_epoch`` (compare-and-swap),
        all in one transaction. Returns how many rows changed."""
        if not rewrites:
            return 0
        c = blobs.c
        stmt = (
            update(blobs)
            .where(
                c.instance_id == bindparam("b_instance_id"),
                c.id == bindparam("b_id"),
                c.mk_epoch == bindparam("b_old_epoch"),
            )
            .values(mk_epoch=bindparam("b_new_epoch"), data=bindparam("b_data"))
        )
        params = [
            {
                "b_instance_id": instance_id,
                "b_id": rw.id,
                "b_old_epoch": rw.old_epoch,
                "b_new_epoch": rw.new_epoch,
                "b_data": bytes(rw.data),
            }
            for rw in rewrites
        ]
        with self._writing() as conn:
            if conn.dialect.supports_sane_multi_rowcount:
                return conn.execute(stmt, params).rowcount
            return sum(conn.execute(stmt, p).rowcount for p in params)
