"""Output helpers: the stream protocol we write to, and writing everything to it."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Writer", "write_all"]


class Writer(Protocol):
    """A binary stream we write to.

    ``write`` may be given a view of a buffer that is reused once the call returns: a writer
    copies what it keeps (as every ``io`` stream does).
    """

    def write(self, data: bytes | bytearray | memoryview, /) -> int | None: ...


def write_all(dst: Writer, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` (a raw stream may take only part of it per call)."""
    written = dst.write(data)
    if written is None or written >= len(data):
        return
    view = memoryview(data)
    while written < len(data):
        more = dst.write(view[written:])
        if not more:
            raise OSError("the output stream accepted no more bytes")
        written += more
