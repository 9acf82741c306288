"""A small, bounded, thread-safe cache whose entries live a few seconds.

Loads race with invalidations: a request may read the database, then an administrator revokes
a role and invalidates, then the request stores what it read. So a loader takes a
:meth:`TtlCache.generation` before reading and :meth:`TtlCache.put` drops the value if anything
was invalidated since.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class TtlCache(Generic[K, V]):
    """Entries expire ``ttl`` seconds after they were stored; at most ``max_size`` are kept
    (the least recently stored go first). ``ttl`` 0 disables the cache."""

    def __init__(
        self, ttl: float, max_size: int = 10_000, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl < 0 or max_size < 1:
            raise ValueError("ttl must be >= 0 and max_size >= 1")
        self._ttl = ttl
        self._max = max_size
        self._timer = timer
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._generation = 0
        # Told of every invalidation made here (key, or None for "everything"); a multi-worker
        # node's link passes them on to the sibling workers.
        self.on_invalidate: Callable[[K | None], None] | None = None

    def generation(self) -> int:
        """A stamp to pass to :meth:`put` (taken before loading the value)."""
        with self._lock:
            return self._generation

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None."""
        value = self.lookup(key)
        return None if value is _MISSING else value  # type: ignore[return-value]

    def lookup(self, key: K) -> V | object:
        """The live value for ``key`` (which may be None), or the sentinel :data:`MISSING`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _MISSING
            expires, value = entry
            if self._timer() >= expires:
                del self._entries[key]
                return _MISSING
            return value

    def put(self, key: K, value: V, generation: int) -> None:
        """Store ``value`` unless something was invalidated since ``generation``."""
        if self._ttl == 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (self._timer() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, key: K, *, propagate: bool = True) -> None:
        """Forget ``key`` (and make loads that started earlier not store their result);
        ``propagate`` tells :attr:`on_invalidate` (False: the news came from elsewhere)."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)
        if propagate and self.on_invalidate is not None:
            self.on_invalidate(key)

    def clear(self, *, propagate: bool = True) -> None:
        """Forget everything (``propagate`` as in :meth:`invalidate`)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
        if propagate and self.on_invalidate is not None:
            self.on_invalidate(None)


MISSING = _MISSING
