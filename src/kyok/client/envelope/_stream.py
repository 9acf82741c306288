"""Envelope encryption over binary streams and bytes: :func:`encrypt`, :func:`decrypt`.

Memory stays O(segment size) whatever the stream's length: one segment of plaintext and one of
ciphertext at a time. Each segment's tag is verified before any of its plaintext is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import BinaryIO, NoReturn

from kyok.client._models import WrapResult
from kyok.client.envelope import _format as fmt
from kyok.client.envelope._cache import DekCache
from kyok.client.envelope._header import (
    EnvelopeHeader,
    Reader,
    public_header,
    read_into,
    read_parsed,
)
from kyok.client.envelope._keyservice import KeyService, unwrap_dek, wrap_new_dek
from kyok.client.envelope._segments import Buffer, SegmentCipher
from kyok.client.envelope._writer import Writer, write_all
from kyok.client.envelope.errors import InvalidEnvelope
from kyok.crypto.encoding import ct_equal

__all__ = [
    "decrypt",
    "decrypt_bytes",
    "decrypt_to",
    "encrypt",
    "encrypt_bytes",
    "encrypt_to",
    "open_header",
    "open_segments",
    "raise_truncated",
    "seal",
    "seal_segments",
]

Progress = Callable[[int], None]
Segments = Callable[[Reader, Writer, SegmentCipher, int, "Progress | None"], None]
"""Writes the segments after the header: ``(src, dst, cipher, segment_size, progress)``."""


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError("key is the root key's id or alias (a string)")
    if not key:
        raise ValueError("key is empty: give the root key's id or alias")
    return key


def _remaining(src: object) -> int | None:
    """Bytes left in a seekable stream, or None when it cannot tell (a pipe)."""
    try:
        if not src.seekable():  # type: ignore[attr-defined]
            return None
        pos = int(src.tell())  # type: ignore[attr-defined]
        end = int(src.seek(0, os.SEEK_END))  # type: ignore[attr-defined]
        src.seek(pos)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return max(0, end - pos)


def _new_dek(
    keys: KeyService,
    key: str,
    aad: tuple[str, ...],
    size: int | None,
    cache: DekCache | None,
) -> WrapResult:
    if cache is None:
        return wrap_new_dek(keys, key, aad)
    return cache.encryption_dek(key, aad, size, lambda: wrap_new_dek(keys, key, aad))


def seal(
    src: Reader,
    dst: Writer,
    *,
    dek: bytes,
    key_id: str,
    key_version_id: str | None,
    wrapped_dek: str,
    aad: tuple[str, ...],
    segment_size: int,
    salt: bytes,
    progress: Progress | None = None,
    segments: Segments | None = None,
) -> EnvelopeHeader:
    """Write the header and the segments of ``src`` to ``dst`` (a fixed DEK and salt).

    :func:`encrypt` calls this with a DEK from kyok and a random salt; the vector generator
    calls it with fixed ones. ``segments`` writes the segments (default
    :func:`seal_segments`; the file helpers pass their pipeline).
    """
    bound = fmt.encode_bound(segment_size, salt, fmt.aad_commitment(aad))
    cipher, commitment = SegmentCipher.for_new_file(dek, bound)
    slot = fmt.KeySlot(1, key_id, key_version_id, wrapped_dek)
    capacity = fmt.capacity_for(slot)
    fixed = fmt.encode_fixed(bound, commitment, capacity)
    slot_bytes = fmt.encode_slot(fixed, slot)
    assert slot_bytes is not None
    write_all(dst, fixed + slot_bytes + fmt.empty_slot(capacity))
    (segments or seal_segments)(src, dst, cipher, segment_size, progress)
    return EnvelopeHeader(
        key_id=key_id,
        key_version_id=key_version_id,
        wrapped_dek=wrapped_dek,
        segment_size=segment_size,
        aad_commitment=bound[44:76],
        header_size=fmt.FIXED_SIZE + 2 * capacity,
    )


def seal_segments(
    src: Reader,
    dst: Writer,
    cipher: SegmentCipher,
    segment_size: int,
    progress: Progress | None = None,
) -> None:
    """Seal and write every segment of ``src``, in the calling thread.

    Each segment is read into one reused buffer and sealed into another, which ``dst.write``
    receives a view of (``dst`` must copy what it keeps, as every ``io`` stream does); for
    :func:`encrypt_bytes`, whose output keeps every segment, each is a fresh object instead.
    """
    next_chunk = _chunks(src, segment_size)
    keeps = isinstance(dst, _Parts)
    out = memoryview(bytearray(0 if keeps else segment_size + fmt.TAG_SIZE))
    index = 0
    while True:
        chunk = next_chunk()
        size = len(chunk)
        last = size < segment_size
        if keeps:
            write_all(dst, cipher.seal(index, last, chunk))
        else:
            write_all(dst, out[: cipher.seal_into(index, last, chunk, out)])
        if progress is not None and size:
            progress(size)
        if last:
            return
        index += 1


def _chunks(src: Reader, size: int) -> Callable[[], memoryview]:
    """A function returning the next ``size`` bytes of ``src`` (fewer only at its end).

    From a stream they are read into one reused buffer, so memory stays O(segment size); from
    bytes in memory they are views of those bytes (no copy).
    """
    if isinstance(src, _BytesReader):
        return lambda: src.take(size)
    buffer = memoryview(bytearray(size))

    def read() -> memoryview:
        return buffer[: read_into(src, buffer)]

    return read


def open_header(
    parsed: fmt.ParsedHeader,
    keys: KeyService,
    aad: tuple[str, ...],
    cache: DekCache | None,
) -> tuple[SegmentCipher, EnvelopeHeader]:
    """Check the AAD commitment, get the DEK (one unwrap, or the cache), check the key
    commitment; the segment cipher and the header (with any rewrapped DEK kyok returned)."""
    if not ct_equal(fmt.aad_commitment(aad), parsed.aad_commitment):
        raise InvalidEnvelope(
            "the AAD given is not the AAD this file was encrypted with: give the same strings "
            "in the same order",
            code="AAD_MISMATCH",
        )
    slot = parsed.slot
    if cache is None:
        result = unwrap_dek(keys, slot.key_id, slot.wrapped_dek, aad)
    else:
        result = cache.decryption_dek(
            slot.key_id,
            slot.wrapped_dek,
            aad,
            lambda: unwrap_dek(keys, slot.key_id, slot.wrapped_dek, aad),
        )
    try:
        cipher = SegmentCipher.for_header(result.plaintext, parsed)
    except InvalidEnvelope:
        if cache is not None:
            cache.forget(slot.key_id, slot.wrapped_dek, aad)
        raise
    header = public_header(parsed)
    if result.rewrapped_ciphertext is not None:
        header = replace(
            header,
            rewrapped_dek=result.rewrapped_ciphertext,
            rewrapped_key_version_id=result.rewrapped_key_version_id,
        )
    return cipher, header


def open_segments(
    src: Reader,
    dst: Writer,
    cipher: SegmentCipher,
    segment_size: int,
    progress: Progress | None = None,
) -> None:
    """Verify and write every segment from the stream's position to its end, in the calling
    thread (reused buffers, as :func:`seal_segments`)."""
    full = segment_size + fmt.TAG_SIZE
    next_chunk = _chunks(src, full)
    keeps = isinstance(dst, _Parts)
    out = memoryview(bytearray(0 if keeps else segment_size))
    index = 0
    while True:
        chunk = next_chunk()
        size = len(chunk)
        last = size < full
        if last and size < fmt.TAG_SIZE:
            raise_truncated(index)
        if keeps:
            plaintext: Buffer = cipher.open(index, last, chunk)
        else:
            plaintext = out[: cipher.open_into(index, last, chunk, out)]
        if plaintext:
            write_all(dst, plaintext)
            if progress is not None:
                progress(len(plaintext))
        if last:
            return
        index += 1


def raise_truncated(index: int) -> NoReturn:
    """The error for data that ends before its final segment (``index`` segments in)."""
    raise InvalidEnvelope(
        f"the data ends before its final segment (after {index} segments): the file was truncated",
        code="TRUNCATED",
    )


def encrypt_to(
    src: Reader,
    dst: Writer,
    *,
    keys: KeyService,
    key: str,
    aad: Sequence[str] | None,
    segment_size: int,
    cache: DekCache | None,
    progress: Progress | None,
    segments: Segments | None = None,
) -> EnvelopeHeader:
    """:func:`encrypt` for any reader and writer; ``segments`` as for :func:`seal`."""
    key = _check_key(key)
    aad_t = fmt.normalize_aad(aad)
    fmt.check_segment_size(segment_size)
    size = _remaining(src) if cache is not None else None
    dek = _new_dek(keys, key, aad_t, size, cache)
    return seal(
        src,
        dst,
        dek=dek.dek,
        key_id=key,
        key_version_id=dek.key_version_id,
        wrapped_dek=dek.ciphertext,
        aad=aad_t,
        segment_size=segment_size,
        salt=os.urandom(fmt.SALT_SIZE),
        progress=progress,
        segments=segments,
    )


def decrypt_to(
    src: Reader,
    dst: Writer,
    *,
    keys: KeyService,
    aad: Sequence[str] | None,
    cache: DekCache | None,
    progress: Progress | None,
    segments: Segments | None = None,
) -> EnvelopeHeader:
    """:func:`decrypt` for any reader and writer; ``segments`` verifies and writes the
    segments (default :func:`open_segments`; the file helpers pass their pipeline)."""
    aad_t = fmt.normalize_aad(aad)
    parsed = read_parsed(src)
    cipher, header = open_header(parsed, keys, aad_t, cache)
    (segments or open_segments)(src, dst, cipher, parsed.segment_size, progress)
    return header


def encrypt(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    keys: KeyService,
    key: str,
    aad: Sequence[str] | None = None,
    segment_size: int = fmt.DEFAULT_SEGMENT_SIZE,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> EnvelopeHeader:
    """Encrypt ``src`` to ``dst`` under a new DEK wrapped by root key ``key``.

    One ``wrap`` call asks kyok to generate the DEK (none when ``cache`` has a usable one).

    Args:
        src: the plaintext, read from its position to its end.
        dst: where the envelope is written (header, then segments).
        keys: the key service (a :class:`~kyok.client.KyokClient`).
        key: the root key's id or alias; stored in the header for decrypt.
        aad: strings bound to the data and to the wrapped DEK; decrypt needs the same ones in
            the same order (None and ``[]`` are the same).
        segment_size: plaintext bytes per segment, 4 KiB to 64 MiB (default 1 MiB).
        cache: a :class:`DekCache` to reuse DEKs across files (used only when ``src`` is
            seekable, so that its size is known).
        progress: called after each segment with the plaintext bytes it held (an increment).

    Returns:
        The header that was written.

    Raises:
        KeyUnavailable: kyok refused the key (disabled, deactivated, deleted, unknown,
            forbidden). Other :class:`~kyok.client.ClientError` for transport failures.
        TypeError, ValueError: bad arguments (nothing was written).
    """
    return encrypt_to(
        src,
        dst,
        keys=keys,
        key=key,
        aad=aad,
        segment_size=segment_size,
        cache=cache,
        progress=progress,
    )


def decrypt(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    keys: KeyService,
    aad: Sequence[str] | None = None,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> EnvelopeHeader:
    """Decrypt the envelope in ``src`` to ``dst``.

    One ``unwrap`` call (none on a ``cache`` hit). The AAD commitment and the key commitment are
    checked before anything is decrypted; each segment's tag before its plaintext is written.
    If a later segment fails, the earlier, verified segments have already been written to
    ``dst`` (as with every streaming AEAD): discard the output on error, or use
    :func:`decrypt_file`/:func:`decrypt_bytes`, which never leave partial output.

    Args:
        src: the envelope, from its position to its end.
        dst: where the plaintext is written.
        keys: the key service.
        aad: the strings given to encrypt.
        cache: a :class:`DekCache` (decrypt side: wrapped DEK -> DEK for ``max_age``).
        progress: called after each segment with the plaintext bytes it held.

    Returns:
        The header; when kyok returned the DEK rewrapped by a newer key version,
        ``rewrapped_dek`` is set (the file is not changed: see :func:`rewrap_file`).

    Raises:
        InvalidEnvelope: not an envelope, wrong AAD, swapped or damaged header, tampered,
            truncated, extended or reordered data.
        KeyUnavailable: kyok refused the key (``reason`` says why).
    """
    return decrypt_to(src, dst, keys=keys, aad=aad, cache=cache, progress=progress)


class _BytesReader:
    """A stream over bytes whose ``readinto`` copies straight from them."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1, /) -> bytes:
        start = self._pos
        end = len(self._data) if n < 0 else min(len(self._data), start + n)
        self._pos = end
        return bytes(self._data[start:end])

    def take(self, n: int) -> memoryview:
        start = self._pos
        self._pos = min(len(self._data), start + n)
        return self._data[start : self._pos]

    def readinto(self, view: memoryview, /) -> int:
        start = self._pos
        end = min(len(self._data), start + len(view))
        view[: end - start] = self._data[start:end]
        self._pos = end
        return end - start


class _Parts:
    """Keeps every chunk written to it (the segment loops give it fresh objects to keep)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        self.parts.append(data if isinstance(data, bytes) else bytes(data))
        return len(data)


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError("data must be bytes")


def encrypt_bytes(
    data: bytes,
    *,
    keys: KeyService,
    key: str,
    aad: Sequence[str] | None = None,
    segment_size: int = fmt.DEFAULT_SEGMENT_SIZE,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """:func:`encrypt` for bytes in memory; returns the whole envelope.

    Raises:
        as :func:`encrypt`.
    """
    data = _as_bytes(data)
    key = _check_key(key)
    aad_t = fmt.normalize_aad(aad)
    fmt.check_segment_size(segment_size)
    dek = _new_dek(keys, key, aad_t, len(data), cache)
    out = _Parts()
    seal(
        _BytesReader(data),
        out,
        dek=dek.dek,
        key_id=key,
        key_version_id=dek.key_version_id,
        wrapped_dek=dek.ciphertext,
        aad=aad_t,
        segment_size=segment_size,
        salt=os.urandom(fmt.SALT_SIZE),
        progress=progress,
    )
    return b"".join(out.parts)


def decrypt_bytes(
    data: bytes,
    *,
    keys: KeyService,
    aad: Sequence[str] | None = None,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """:func:`decrypt` for an envelope in memory; returns the plaintext, all or nothing.

    Raises:
        as :func:`decrypt`.
    """
    src = _BytesReader(_as_bytes(data))
    aad_t = fmt.normalize_aad(aad)
    parsed = read_parsed(src)
    cipher, _ = open_header(parsed, keys, aad_t, cache)
    out = _Parts()
    open_segments(src, out, cipher, parsed.segment_size, progress)
    return b"".join(out.parts)
