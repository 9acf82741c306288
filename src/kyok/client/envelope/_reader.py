"""Random access to an envelope: decrypt any segment, or any byte range, of a seekable file."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import BinaryIO

from kyok.client.envelope import _format as fmt
from kyok.client.envelope._cache import DekCache
from kyok.client.envelope._header import read_exact, read_parsed
from kyok.client.envelope._keyservice import KeyService
from kyok.client.envelope._stream import open_header
from kyok.client.envelope.errors import InvalidEnvelope

__all__ = ["SegmentReader"]


class SegmentReader:
    """Decrypt single segments or byte ranges of an envelope without reading the rest.

    Opening costs one ``unwrap`` (or a cache hit) and checks the AAD, the key commitment and
    that the file's length is that of whole segments. Each read authenticates the segments it
    touches, including the final-segment flag of the last one, so a read never returns
    altered or misplaced data; segments that are not read are not checked.

    The reader does not own ``src`` (close it yourself). Reads are serialised by a lock, so one
    reader may be shared by threads.

    Attributes:
        header: the envelope header (with ``rewrapped_dek`` if kyok returned one).
        segment_count: number of segments (at least 1).
        plaintext_size: total plaintext bytes.
    """

    def __init__(
        self,
        src: BinaryIO,
        *,
        keys: KeyService,
        aad: Sequence[str] | None = None,
        cache: DekCache | None = None,
    ) -> None:
        """Open the envelope at ``src``'s position.

        Raises:
            ValueError: ``src`` is not seekable.
            InvalidEnvelope: as for ``decrypt``; ``TRUNCATED`` when the length does not fit.
            KeyUnavailable: kyok refused the key.
        """
        if not src.seekable():
            raise ValueError("SegmentReader needs a seekable stream (a file, not a pipe)")
        aad_t = fmt.normalize_aad(aad)
        start = src.tell()
        parsed = read_parsed(src)
        self._cipher, self.header = open_header(parsed, keys, aad_t, cache)
        self._src = src
        self._segment_size = parsed.segment_size
        self._stride = parsed.segment_size + fmt.TAG_SIZE
        self._data_start = start + parsed.header_size
        self._body = src.seek(0, os.SEEK_END) - self._data_start
        layout = fmt.ciphertext_layout(self._body, parsed.segment_size)
        if layout is None:
            raise InvalidEnvelope(
                "the file's length is not that of whole segments: it was truncated or extended",
                code="TRUNCATED",
            )
        self.segment_count, self.plaintext_size = layout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SegmentReader(key_id={self.header.key_id!r}, segment_count={self.segment_count}, "
            f"plaintext_size={self.plaintext_size})"
        )

    def read_segment(self, index: int) -> bytes:
        """The plaintext of segment ``index`` (0-based; negative counts from the end).

        Raises:
            IndexError: no such segment.
            InvalidEnvelope: the segment did not authenticate (``SEGMENT_DAMAGED``), or the file
                changed length since it was opened (``TRUNCATED``).
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("index is an int")
        if index < 0:
            index += self.segment_count
        if not 0 <= index < self.segment_count:
            raise IndexError(f"segment {index} out of range (0..{self.segment_count - 1})")
        last = index == self.segment_count - 1
        size = self._body - index * self._stride if last else self._stride
        with self._lock:
            self._src.seek(self._data_start + index * self._stride)
            data = read_exact(self._src, size)
        if len(data) != size:
            raise InvalidEnvelope("the file became shorter after it was opened", code="TRUNCATED")
        return self._cipher.open(index, last, data)

    def read_range(self, offset: int, length: int) -> bytes:
        """``length`` plaintext bytes from ``offset`` (fewer at the end; empty past it).

        Raises:
            ValueError: a negative offset or length.
            InvalidEnvelope: a segment in the range did not authenticate.
        """
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        end = min(offset + length, self.plaintext_size)
        if offset >= end:
            return b""
        size = self._segment_size
        parts = []
        for index in range(offset // size, (end - 1) // size + 1):
            base = index * size
            segment = self.read_segment(index)
            parts.append(segment[max(offset - base, 0) : end - base])
        return b"".join(parts)
