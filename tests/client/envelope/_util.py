"""Helpers shared by the envelope tests."""

from __future__ import annotations

import io

from kyok.client.envelope import _format as fmt

SMALL = fmt.MIN_SEGMENT_SIZE  # 4 KiB segments keep multi-segment files small


class Chunky(io.RawIOBase):
    """A non-seekable stream that returns at most ``step`` bytes per read (like a pipe)."""

    def __init__(self, data: bytes, step: int = 777) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A stream with only ``read`` (no readinto, no seek)."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._src.read(min(n, 1000) if n > 0 else n)


def segments(envelope: bytes) -> tuple[bytes, list[bytes]]:
    """(header, segments) of an envelope."""
    header = envelope[: fmt.FIXED_SIZE]
    capacity = int.from_bytes(header[108:110], "big")
    size = fmt.FIXED_SIZE + 2 * capacity
    segment_size = int.from_bytes(header[8:12], "big")
    stride = segment_size + fmt.TAG_SIZE
    body = envelope[size:]
    assert len(body) % stride >= fmt.TAG_SIZE, "not a whole number of segments"
    return envelope[:size], [body[i : i + stride] for i in range(0, len(body), stride)]
