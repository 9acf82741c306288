"""The in-memory :class:`~kyok.unit.ports.UnitStateStore`: unit identities, transcripts, and
the blob queries and compare-and-swap rewrites of master-key rotation."""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence

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
from kyok.store.memory._session import MemoryState, UnitRow
from kyok.store.records import BlobRecord


def _blob_id(blob: BlobRecord) -> str:
    return blob.id


class MemoryUnitStateStore:
    """Crypto-unit persistence in memory. Each call is atomic (one lock)."""

    def __init__(self, state: MemoryState, clock: Clock | None = None) -> None:
        self._state = state
        self._clock = clock or SystemClock()

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
        with self._state.lock:
            if unit_id in self._state.units or self._unit_of(instance_id) is not None:
                raise AlreadyExists("crypto unit already exists")
            row = UnitRow(instance_id, self._clock.now())
            row.transcript.extend(records)
            self._state.units[unit_id] = row

    def unit_instance(self, unit_id: str) -> str | None:
        with self._state.lock:
            row = self._state.units.get(unit_id)
            return None if row is None else row.instance_id

    def unit_for_instance(self, instance_id: str) -> str | None:
        with self._state.lock:
            return self._unit_of(instance_id)

    def _unit_of(self, instance_id: str) -> str | None:
        for unit_id, row in self._state.units.items():
            if row.instance_id == instance_id:
                return unit_id
        return None

    def append_transcript(self, unit_id: str, entries: Sequence[TranscriptEntryLike]) -> None:
        """Append entries that continue the transcript.

        Raises:
            NotFound: no such unit.
            VersionConflict: an entry number exists already (someone appended first).
            ValueError: the numbers are not consecutive or leave a gap.
        """
        records = [transcript_record(e) for e in entries]
        with self._state.lock:
            row = self._state.units.get(unit_id)
            if row is None:
                raise NotFound("no such crypto unit")
            if records and records[0].n < len(row.transcript):
                check_appended_numbers(records, records[0].n)
                raise VersionConflict("the transcript was appended to by someone else")
            check_appended_numbers(records, len(row.transcript))
            row.transcript.extend(records)

    def transcript(self, unit_id: str, after: int = -1) -> list[TranscriptEntryLike]:
        with self._state.lock:
            row = self._state.units.get(unit_id)
            return [] if row is None else [e for e in row.transcript if e.n > after]

    def blobs_at_epoch(self, instance_id: str, epoch: int, limit: int) -> list[StoredBlobLike]:
        """Up to ``limit`` blobs still sealed under ``epoch``, in id order."""
        check_page(limit, 0)
        with self._state.lock:
            rows = self._state.blobs.partition(instance_id).values()
            found = heapq.nsmallest(limit, (r for r in rows if r.mk_epoch == epoch), key=_blob_id)
        return list[StoredBlobLike](found)

    def count_blobs_at_epoch(self, instance_id: str, epoch: int) -> int:
        with self._state.lock:
            rows = self._state.blobs.partition(instance_id).values()
            return sum(1 for r in rows if r.mk_epoch == epoch)

    def count_blobs(self, instance_id: str) -> int:
        with self._state.lock:
            return len(self._state.blobs.partition(instance_id))

    def get_blob(self, instance_id: str, blob_id: str) -> StoredBlobLike | None:
        with self._state.lock:
            return self._state.blobs.get((instance_id, blob_id))

    def add_blob(self, blob: StoredBlobLike) -> None:
        record = BlobRecord(
            blob.instance_id, blob.owner_id, blob.id, blob.purpose, blob.mk_epoch, bytes(blob.data)
        )
        with self._state.lock:
            pk = (record.instance_id, record.id)
            if self._state.blobs.get(pk) is not None:
                raise AlreadyExists("a blob with that id exists already")
            self._state.blobs.put(pk, record)

    def rewrite_blobs(self, instance_id: str, rewrites: Sequence[BlobRewriteLike]) -> int:
        """Apply each rewrite where the blob is still at ``old_epoch``; returns rows changed."""
        changed = 0
        with self._state.lock:
            for rw in rewrites:
                pk = (instance_id, rw.id)
                row = self._state.blobs.get(pk)
                if row is not None and row.mk_epoch == rw.old_epoch:
                    self._state.blobs.put(
                        pk, dataclasses.replace(row, mk_epoch=rw.new_epoch, data=bytes(rw.data))
                    )
                    changed += 1
        return changed
