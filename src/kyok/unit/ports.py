"""What the crypto unit needs from persistence (``kyok.store.sql`` implements it structurally).

The unit's state is *event-sourced*: the hash-chained ceremony transcript is the source of
truth and the unit rebuilds its state by replaying it (see ``kyok.unit.ceremony``). So the
store keeps, per unit, only an identity row and the transcript; plus the sealed blobs that
master-key rotation re-encrypts. It never sees plaintext key material.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class StoredTranscriptEntry(Protocol):
    """One transcript entry as stored: body (canonical JSON), chain hash, optional MAC."""

    @property
    def n(self) -> int: ...
    @property
    def entry(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def mac(self) -> str | None: ...


class StoredBlob(Protocol):
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


class BlobRewrite(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def old_epoch(self) -> int: ...
    @property
    def new_epoch(self) -> int: ...
    @property
    def data(self) -> bytes: ...


class UnitStateStore(Protocol):
    """Persistence of crypto units. Each call is its own transaction."""

    def create_unit(
        self, unit_id: str, instance_id: str, entries: Sequence[StoredTranscriptEntry]
    ) -> None:
        """Insert a unit with its first transcript entries. ``AlreadyExists`` if the id is taken."""
        ...

    def unit_instance(self, unit_id: str) -> str | None:
        """The instance a unit belongs to, or None if there is no such unit."""
        ...

    def unit_for_instance(self, instance_id: str) -> str | None:
        """The unit of an instance, or None."""
        ...

    def append_transcript(self, unit_id: str, entries: Sequence[StoredTranscriptEntry]) -> None:
        """Append entries atomically. Entry numbers must continue the transcript; an entry
        number that already exists raises ``VersionConflict`` (someone else appended first)."""
        ...

    def transcript(self, unit_id: str, after: int = -1) -> list[StoredTranscriptEntry]:
        """Entries with ``n > after``, in order."""
        ...

    def blobs_at_epoch(self, instance_id: str, epoch: int, limit: int) -> list[StoredBlob]:
        """Up to ``limit`` blobs of the instance still sealed under ``epoch``."""
        ...

    def count_blobs_at_epoch(self, instance_id: str, epoch: int) -> int: ...

    def count_blobs(self, instance_id: str) -> int: ...

    def get_blob(self, instance_id: str, blob_id: str) -> StoredBlob | None:
        """One blob by id (the unit's own internal blobs)."""
        ...

    def add_blob(self, blob: StoredBlob) -> None:
        """Insert a blob; ``AlreadyExists`` if its id is taken (another process won the race)."""
        ...

    def rewrite_blobs(self, instance_id: str, rewrites: Sequence[BlobRewrite]) -> int:
        """Apply each rewrite only where the row is still at ``old_epoch``, in one transaction.

        Returns how many rows changed.
        """
        ...
