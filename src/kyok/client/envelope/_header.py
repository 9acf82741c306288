"""What a file's header says (:class:`EnvelopeHeader`), read from a stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from kyok.client.envelope import _format as fmt

__all__ = [
    "EnvelopeHeader",
    "Reader",
    "public_header",
    "read_exact",
    "read_header",
    "read_into",
    "read_parsed",
]


class Reader(Protocol):
    """A binary stream we read from (``BinaryIO`` and ``RawIOBase`` both fit)."""

    def read(self, n: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True)
class EnvelopeHeader:
    """What a file's header says. It never holds the DEK.

    Attributes:
        key_id: the root key (id or alias, as given to encrypt) that wrapped the DEK.
        key_version_id: the root key version that wrapped it, if kyok said.
        wrapped_dek: the DEK wrapped by that version (opaque; not in the repr).
        segment_size: plaintext bytes per segment (the last segment holds fewer).
        aad_commitment: HMAC-SHA256 commitment to the AAD strings (docs/formats.md §17).
        header_size: bytes before the first segment.
        format_version: the envelope format version (1).
        rewrapped_dek: set by ``decrypt`` when kyok returned the DEK rewrapped by a newer key
            version: :func:`~kyok.client.envelope.rewrap_file` stores such a one in place.
        rewrapped_key_version_id: the version ``rewrapped_dek`` was wrapped by.
    """

    key_id: str
    key_version_id: str | None
    wrapped_dek: str = field(repr=False)
    segment_size: int
    aad_commitment: bytes = field(repr=False)
    header_size: int
    format_version: int = fmt.VERSION
    rewrapped_dek: str | None = field(default=None, repr=False)
    rewrapped_key_version_id: str | None = None

    @property
    def is_stale(self) -> bool:
        """True when decrypt learnt that a newer key version exists (``rewrapped_dek`` is set)."""
        return self.rewrapped_dek is not None


def public_header(parsed: fmt.ParsedHeader) -> EnvelopeHeader:
    """The :class:`EnvelopeHeader` of a parsed header."""
    return EnvelopeHeader(
        key_id=parsed.slot.key_id,
        key_version_id=parsed.slot.key_version_id,
        wrapped_dek=parsed.slot.wrapped_dek,
        segment_size=parsed.segment_size,
        aad_commitment=parsed.aad_commitment,
        header_size=parsed.header_size,
    )


def read_exact(src: Reader, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the stream."""
    data = src.read(size)
    if data is None:
        raise ValueError("the stream is non-blocking and had no data: use a blocking stream")
    if len(data) == size or not data:
        return bytes(data) if not isinstance(data, bytes) else data
    parts = [bytes(data)]
    got = len(data)
    while got < size:
        more = src.read(size - got)
        if more is None:
            raise ValueError("the stream is non-blocking and had no data: use a blocking stream")
        if not more:
            break
        parts.append(bytes(more))
        got += len(more)
    return b"".join(parts)


def read_into(src: Reader, view: memoryview) -> int:
    """Fill ``view`` from ``src`` (``readinto`` when the stream has it); fewer bytes only at
    the end of the stream. Returns how many bytes were read."""
    readinto = getattr(src, "readinto", None)
    size = len(view)
    got = 0
    while got < size:
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = src.read(size - got)
            n = None if data is None else len(data)
            if data:
                view[got : got + len(data)] = data
        if n is None:
            raise ValueError("the stream is non-blocking and had no data: use a blocking stream")
        if n == 0:
            break
        got += n
    return got


def read_parsed(src: Reader) -> fmt.ParsedHeader:
    """Read and check the header at the stream's position; leaves it at the first segment."""
    fixed = read_exact(src, fmt.FIXED_SIZE)
    _, capacity = fmt.parse_fixed(fixed)
    return fmt.parse_slots(fixed, read_exact(src, 2 * capacity), capacity)


def read_header(src: BinaryIO) -> EnvelopeHeader:
    """Read the header of an envelope (no key service call; nothing is authenticated yet).

    Args:
        src: a binary stream positioned at the start of the envelope; it is left at the first
            segment.

    Returns:
        The header: which key and version wrapped the DEK, the segment size, and so on.

    Raises:
        InvalidEnvelope: not a kyok envelope (``NOT_AN_ENVELOPE``), a newer format
            (``UNSUPPORTED_VERSION``), or a damaged header (``HEADER_DAMAGED``).
    """
    return public_header(read_parsed(src))
