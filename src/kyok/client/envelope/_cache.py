"""A bounded, thread-safe DEK cache that saves key-service calls (as the AWS ESDK's caching CMM).

Encrypt side: one generated DEK (with its wrapped form) serves several files for the same root
key and AAD, until it has been used ``max_messages`` times, has protected ``max_bytes`` bytes of
plaintext or is ``max_age`` seconds old. Every file still gets its own random 256-bit salt and so
its own content key: reusing a DEK never repeats a (key, nonce) pair. A file whose size is not
known when encryption starts (a pipe) does not use the cache, since the byte budget could not be
charged beforehand.

Decrypt side: wrapped DEK (with key id and AAD) -> DEK, for ``max_age`` seconds. While an entry
lives, files open without asking kyok: disabling or deleting the root key takes effect for this
process only when the entry expires (or on :meth:`DekCache.clear`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from kyok.client._models import UnwrapResult, WrapResult

__all__ = ["CacheStats", "DekCache"]

MAX_MESSAGES_LIMIT = 1 << 32


@dataclass(frozen=True, slots=True)
class CacheStats:
    """How often the cache answered (``hits``) and how often kyok had to (``misses``)."""

    hits: int
    misses: int
    entries: int


@dataclass(slots=True)
class _EncryptEntry:
    result: WrapResult
    created: float
    messages: int
    bytes: int


@dataclass(slots=True)
class _DecryptEntry:
    result: UnwrapResult
    created: float


EncryptKey = tuple[str, tuple[str, ...]]
DecryptKey = tuple[str, str, tuple[str, ...]]


@dataclass(kw_only=True, eq=False)
class DekCache:
    """A bounded DEK cache for :func:`~kyok.client.envelope.encrypt` and ``decrypt``.

    Use one cache per key service (entries are keyed by key id or alias, not by service). The
    cache holds plaintext DEKs in memory; it cannot be pickled and its repr shows only limits.

    Args:
        max_age: seconds an entry may be used after kyok returned it (> 0).
        max_messages: files one generated DEK may encrypt (1 .. 2^32).
        max_bytes: plaintext bytes one generated DEK may encrypt (>= 0; a file larger than this
            does not use the cache).
        capacity: entries kept on each side (least recently used are dropped first).
        clock: seconds as a float; ``time.monotonic`` unless a test passes its own.
    """

    max_age: float
    max_messages: int
    max_bytes: int
    capacity: int = 100
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _encrypt: OrderedDict[EncryptKey, _EncryptEntry] = field(
        init=False, repr=False, default_factory=OrderedDict
    )
    _decrypt: OrderedDict[DecryptKey, _DecryptEntry] = field(
        init=False, repr=False, default_factory=OrderedDict
    )
    _hits: int = field(init=False, repr=False, default=0)
    _misses: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int | float):
            raise TypeError("max_age is a number of seconds")
        if not self.max_age > 0:
            raise ValueError("max_age must be more than 0 seconds")
        for name, low, high in (
            ("max_messages", 1, MAX_MESSAGES_LIMIT),
            ("max_bytes", 0, None),
            ("capacity", 1, None),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} is an int")
            if value < low or (high is not None and value > high):
                bound = f"{low} .. {high}" if high is not None else f">= {low}"
                raise ValueError(f"{name} must be {bound}, not {value}")

    @property
    def stats(self) -> CacheStats:
        """Hits, misses and entries so far."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._encrypt) + len(self._decrypt))

    @property
    def hits(self) -> int:
        """Calls the cache answered without kyok."""
        return self.stats.hits

    @property
    def misses(self) -> int:
        """Calls that went to kyok."""
        return self.stats.misses

    def clear(self) -> None:
        """Forget every DEK (the statistics stay)."""
        with self._lock:
            self._encrypt.clear()
            self._decrypt.clear()

    def __reduce__(self) -> NoReturn:
        raise TypeError("a DekCache holds DEKs and cannot be pickled")

    # -- used by encrypt/decrypt -------------------------------------------------------------

    def encryption_dek(
        self,
        key_id: str,
        aad: tuple[str, ...],
        size: int | None,
        fetch: Callable[[], WrapResult],
    ) -> WrapResult:
        """A generated DEK for a file of ``size`` plaintext bytes: cached, or ``fetch()``-ed.

        ``size`` None (unknown) or above ``max_bytes`` bypasses the cache (a miss).
        """
        if size is None or size > self.max_bytes:
            with self._lock:
                self._misses += 1
            return fetch()
        slot: EncryptKey = (key_id, aad)
        with self._lock:
            entry = self._encrypt.pop(slot, None)
            if (
                entry is not None
                and self._fresh(entry.created)
                and entry.bytes + size <= self.max_bytes
            ):
                entry.messages += 1
                entry.bytes += size
                if entry.messages < self.max_messages:
                    self._encrypt[slot] = entry  # back in, as the most recently used
                self._hits += 1
                return entry.result
            self._misses += 1
        result = fetch()
        if self.max_messages > 1:
            with self._lock:
                self._encrypt[slot] = _EncryptEntry(result, self.clock(), 1, size)
                while len(self._encrypt) > self.capacity:
                    self._encrypt.popitem(last=False)
        return result

    def decryption_dek(
        self,
        key_id: str,
        wrapped: str,
        aad: tuple[str, ...],
        fetch: Callable[[], UnwrapResult],
    ) -> UnwrapResult:
        """The DEK of ``wrapped``: cached for ``max_age``, or ``fetch()``-ed."""
        slot: DecryptKey = (key_id, wrapped, aad)
        with self._lock:
            entry = self._decrypt.get(slot)
            if entry is not None and self._fresh(entry.created):
                self._decrypt.move_to_end(slot)
                self._hits += 1
                return entry.result
            if entry is not None:
                del self._decrypt[slot]
            self._misses += 1
        result = fetch()
        with self._lock:
            self._decrypt[slot] = _DecryptEntry(result, self.clock())
            self._decrypt.move_to_end(slot)
            while len(self._decrypt) > self.capacity:
                self._decrypt.popitem(last=False)
        return result

    def forget(self, key_id: str, wrapped: str, aad: tuple[str, ...]) -> None:
        """Drop the decrypt-side entry of ``wrapped`` (it did not match its file)."""
        with self._lock:
            self._decrypt.pop((key_id, wrapped, aad), None)

    def _fresh(self, created: float) -> bool:
        return self.clock() - created < self.max_age
