"""What the data plane reads, kept for a moment: key records (by id and by alias) and root-key
version blobs, so that wrap/unwrap/rewrap need no database read while a key is in use.

Bounded (LRU) and short-lived (``ttl`` seconds, monotonic time). Every change this node makes to
a key invalidates it at once; ``ttl`` bounds how long a change made by *another* process or node
(the CLI, a second server on the same PostgreSQL) can go unseen. ``ttl=0`` turns caching off.
Blobs are re-read after ``ttl`` too, so a master-key rotation's re-encrypted blob replaces the
old one; the unit's handle cache keeps the material itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kyok.store.records import KeyRecord
from kyok.unit.blob import SealedBlob


@dataclass
class _Entry:
    key: KeyRecord
    expires: float
    names: set[str] = field(default_factory=set)  # the ids/aliases it was looked up by
    blobs: dict[str, SealedBlob] = field(default_factory=dict)


class KeyCache:
    """A bounded, time-limited cache of key records and their root-key blobs."""

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        ttl: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1 or ttl < 0:
            raise ValueError("max_keys must be positive and ttl not negative")
        self._max = max_keys
        self._ttl = ttl
        self._now = now
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()  # (instance, key id)
        self._names: dict[tuple[str, str], str] = {}  # (instance, id or alias) -> key id
        self._lock = threading.Lock()
        # Told of every invalidation this process makes (a multi-worker node's link passes
        # them on to the sibling workers).
        self.on_invalidate: Callable[[str, str | None], None] | None = None

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(
        self, instance_id: str, id_or_alias: str
    ) -> tuple[KeyRecord, dict[str, SealedBlob]] | None:
        """The cached key named ``id_or_alias`` and the blobs cached with it, if fresh."""
        if not self._ttl:
            return None
        with self._lock:
            key_id = self._names.get((instance_id, id_or_alias))
            if key_id is None:
                return None
            entry = self._entries.get((instance_id, key_id))
            if entry is None or entry.expires < self._now():
                self._drop(instance_id, key_id)
                return None
            self._entries.move_to_end((instance_id, key_id))
            return entry.key, dict(entry.blobs)

    def put(self, key: KeyRecord, name: str, blobs: Iterable[SealedBlob]) -> None:
        """Remember ``key`` (looked up as ``name``) with some of its blobs."""
        if not self._ttl:
            return
        with self._lock:
            pk = (key.instance_id, key.id)
            entry = self._entries.get(pk)
            if entry is None or entry.key.row_version != key.row_version:
                if entry is not None:
                    self._drop(*pk)
                entry = _Entry(key, self._now() + self._ttl)
                self._entries[pk] = entry
            for blob in blobs:
                entry.blobs[blob.ref.id] = blob
            for n in (name, key.id):
                entry.names.add(n)
                self._names[(key.instance_id, n)] = key.id
            self._entries.move_to_end(pk)
            while len(self._entries) > self._max:
                (instance_id, key_id), _ = next(iter(self._entries.items()))
                self._drop(instance_id, key_id)

    def add_blobs(self, instance_id: str, key_id: str, blobs: Iterable[SealedBlob]) -> None:
        """Add blobs (older versions met by unwrap) to a cached key."""
        with self._lock:
            entry = self._entries.get((instance_id, key_id))
            if entry is not None:
                for blob in blobs:
                    entry.blobs[blob.ref.id] = blob

    def invalidate(self, instance_id: str, key_id: str, *, propagate: bool = True) -> None:
        """Forget a key, its names and its blobs (call after every change to it).

        ``propagate`` tells :attr:`on_invalidate` (False when the news came from another
        worker process of the node).
        """
        with self._lock:
            self._drop(instance_id, key_id)
        if propagate and self.on_invalidate is not None:
            self.on_invalidate(instance_id, key_id)

    def invalidate_instance(self, instance_id: str, *, propagate: bool = True) -> None:
        """Forget every key of an instance (``propagate`` as in :meth:`invalidate`)."""
        with self._lock:
            for inst, key_id in [pk for pk in self._entries if pk[0] == instance_id]:
                self._drop(inst, key_id)
        if propagate and self.on_invalidate is not None:
            self.on_invalidate(instance_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._names.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, instance_id: str, key_id: str) -> None:
        entry = self._entries.pop((instance_id, key_id), None)
        if entry is not None:
            for n in entry.names:
                if self._names.get((instance_id, n)) == key_id:
                    del self._names[(instance_id, n)]
