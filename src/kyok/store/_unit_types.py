"""Shapes the crypto unit hands to the store, declared here structurally.

They mirror ``kyok.unit.ports`` (``StoredTranscriptEntry``, ``StoredBlob``, ``BlobRewrite``): the
store's methods are typed with these (lists are invariant, so ``list[TranscriptRecord]`` would
not do where ``list[StoredTranscriptEntry]`` is expected), so that the store
satisfies ``UnitStateStore`` without importing the unit (DESIGN §3: store sits beside unit, and
satisfies its port structurally).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kyok.store.records import TranscriptRecord


class TranscriptEntryLike(Protocol):
    """A transcript entry: number, canonical JSON body, chain hash, optional MAC."""

    @property
    def n(self) -> int: ...
    @property
    def entry(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def mac(self) -> str | None: ...


class StoredBlobLike(Protocol):
    """A sealed blob as stored (``BlobRecord`` has this shape)."""

    @property
    def instance_id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def mk_epoch(self) -> int: ...
    @property
    def data(self) -> bytes: ...


class BlobRewriteLike(Protocol):
    """Re-sealed data for a blob, to apply only while it is still at ``old_epoch``."""

    @property
    def id(self) -> str: ...
    @property
    def old_epoch(self) -> int: ...
    @property
    def new_epoch(self) -> int: ...
    @property
    def data(self) -> bytes: ...


def transcript_record(entry: TranscriptEntryLike) -> TranscriptRecord:
    """Copy any transcript entry into a :class:`TranscriptRecord`."""
    return TranscriptRecord(n=entry.n, entry=entry.entry, hash=entry.hash, mac=entry.mac)


def check_appended_numbers(entries: Sequence[TranscriptRecord], first: int) -> None:
    """Check that ``entries`` are numbered ``first, first + 1, ...``.

    Raises:
        ValueError: they are not.
    """
    for offset, e in enumerate(entries):
        if e.n != first + offset:
            raise ValueError("transcript entries must be numbered consecutively, without gaps")
