"""File helpers: encrypt or decrypt file to file without ever leaving half a file, and
:func:`rewrap_file`, which moves a file's DEK to the root key's newest version in place.

The segments go through a three-stage pipeline (:mod:`._pipeline`): a reader thread, AES-GCM in
the calling thread and a writer thread, over a fixed pool of buffers allocated once per call,
so reads, writes and the encryption overlap on as many cores as there are (up to three).

Outputs are written to a temporary file (mode 0600) in the destination's directory, flushed to
disk, and renamed over the destination only when everything succeeded; the directory is then
flushed too. On any failure the temporary file is removed. (A process killed outright can leave
the temporary file, named ``.<name>.<random>.kyok-tmp``, behind; it is 0600.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from typing import BinaryIO, TypeVar

from kyok.client.envelope import _format as fmt
from kyok.client.envelope._cache import DekCache
from kyok.client.envelope._header import EnvelopeHeader, read_parsed
from kyok.client.envelope._keyservice import KeyService, rewrap_dek
from kyok.client.envelope._pipeline import open_pipelined, seal_pipelined
from kyok.client.envelope._stream import decrypt_to, encrypt_to
from kyok.client.envelope.errors import InvalidEnvelope
from kyok.crypto.encoding import ct_equal

__all__ = ["decrypt_file", "encrypt_file", "rewrap_file"]

T = TypeVar("T")
PathArg = str | os.PathLike[str]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_COPY_CHUNK = 1 << 20


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename itself is done
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _temp_beside(path: str) -> tuple[str, int]:
    directory = os.path.dirname(os.path.abspath(path))
    name = f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.kyok-tmp"
    tmp = os.path.join(directory, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o600)
    return tmp, fd


def _exists_error(path: str) -> FileExistsError:
    return FileExistsError(f"{path} exists: pass overwrite=True to replace it")


def _publish(tmp: str, path: str, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never replaces it
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:
        if os.path.lexists(path):  # a file system without hard links
            raise _exists_error(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_atomically(
    dst: PathArg, overwrite: bool, write: Callable[[BinaryIO], T], mode: int | None = None
) -> T:
    """Run ``write`` on a temporary file beside ``dst``, then make it ``dst`` (all or nothing).

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is False (checked before and at the
            end, without ever replacing it).
    """
    path = os.fspath(dst)
    if not overwrite and os.path.lexists(path):
        raise _exists_error(path)
    tmp, fd = _temp_beside(path)
    try:
        with open(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        _publish(tmp, path, overwrite)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))
    return result


def encrypt_file(
    src: PathArg,
    dst: PathArg,
    *,
    keys: KeyService,
    key: str,
    aad: Sequence[str] | None = None,
    segment_size: int = fmt.DEFAULT_SEGMENT_SIZE,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> EnvelopeHeader:
    """Encrypt the file ``src`` into the envelope file ``dst`` (see :func:`encrypt`).

    Args:
        src: the plaintext file.
        dst: the envelope to write (mode 0600); never left half-written.
        keys, key, aad, segment_size, cache, progress: as for :func:`encrypt`.
        overwrite: replace ``dst`` if it exists.

    Returns:
        The header that was written.

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is False.
        as :func:`encrypt`, and ``OSError`` for the files.
    """
    with open(os.fspath(src), "rb", buffering=0) as fin:

        def run(out: BinaryIO) -> EnvelopeHeader:
            return encrypt_to(
                fin,
                out,
                keys=keys,
                key=key,
                aad=aad,
                segment_size=segment_size,
                cache=cache,
                progress=progress,
                segments=seal_pipelined,
            )

        return write_atomically(dst, overwrite, run)


def decrypt_file(
    src: PathArg,
    dst: PathArg,
    *,
    keys: KeyService,
    aad: Sequence[str] | None = None,
    cache: DekCache | None = None,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> EnvelopeHeader:
    """Decrypt the envelope file ``src`` into ``dst`` (see :func:`decrypt`).

    The plaintext goes to a 0600 temporary file that becomes ``dst`` only once every segment
    verified; on any failure there is no ``dst`` (or the old one is untouched).

    Args:
        src: the envelope file.
        dst: the plaintext file to write (mode 0600).
        keys, aad, cache, progress: as for :func:`decrypt`.
        overwrite: replace ``dst`` if it exists.

    Returns:
        The header (``rewrapped_dek`` is set when the key has a newer version).

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is False.
        as :func:`decrypt`, and ``OSError`` for the files.
    """
    with open(os.fspath(src), "rb", buffering=0) as fin:

        def run(out: BinaryIO) -> EnvelopeHeader:
            return decrypt_to(
                fin,
                out,
                keys=keys,
                aad=aad,
                cache=cache,
                progress=progress,
                segments=open_pipelined,
            )

        return write_atomically(dst, overwrite, run)


def _rewrite(path: str, parsed: fmt.ParsedHeader, new: fmt.KeySlot) -> None:
    """Write the file again with key slots big enough for ``new`` (segments copied verbatim)."""
    capacity = fmt.capacity_for(new)
    fixed = (
        parsed.fixed[: fmt.SLOT_CAPACITY_OFFSET]
        + capacity.to_bytes(2, "big")
        + parsed.fixed[fmt.SLOT_CAPACITY_OFFSET + 2 :]
    )
    first = fmt.encode_slot(fixed, new)
    second = fmt.encode_slot(fixed, parsed.slot)
    assert first is not None and second is not None

    def copy(out: BinaryIO) -> None:
        out.write(fixed + first + second)
        with open(path, "rb") as fin:
            fin.seek(parsed.header_size)
            while chunk := fin.read(_COPY_CHUNK):
                out.write(chunk)

    write_atomically(path, True, copy, mode=os.stat(path).st_mode & 0o7777)


def rewrap_file(path: PathArg, *, keys: KeyService, aad: Sequence[str] | None = None) -> bool:
    """Move a file's DEK to its root key's newest version, changing only the header.

    One ``rewrap`` call (the DEK never leaves kyok). The new wrapped DEK goes into the header's
    unused key slot with one small write (1 KiB, inside the first 4 KiB of the file, unless the
    slots were enlarged) and an fsync; the data segments are not touched. A crash during that write leaves the previous slot, which
    still opens, in place (docs/formats.md §17). If the new wrapped DEK does not fit the slots,
    the file is rewritten with bigger slots through a temporary file and a rename.

    Args:
        path: the envelope file.
        keys: the key service.
        aad: the strings given to encrypt (kyok needs them to rewrap).

    Returns:
        True if the header was updated, False if the DEK was already wrapped by the newest
        version (nothing written).

    Raises:
        InvalidEnvelope: not an envelope, a damaged header, or the wrong AAD.
        KeyUnavailable: kyok refused the key.
    """
    name = os.fspath(path)
    aad_t = fmt.normalize_aad(aad)
    with open(os.open(name, os.O_RDWR | _CLOEXEC), "r+b", buffering=0) as f:
        parsed = read_parsed(f)
        if not ct_equal(fmt.aad_commitment(aad_t), parsed.aad_commitment):
            raise InvalidEnvelope(
                "the AAD given is not the AAD this file was encrypted with: give the same "
                "strings in the same order",
                code="AAD_MISMATCH",
            )
        slot = parsed.slot
        result = rewrap_dek(keys, slot.key_id, slot.wrapped_dek, aad_t)
        same_version = (
            result.key_version_id is not None
            and result.key_version_id == result.rewrapped_key_version_id
        )
        if same_version or result.ciphertext == slot.wrapped_dek:
            return False
        new = fmt.KeySlot(
            slot.generation + 1, slot.key_id, result.rewrapped_key_version_id, result.ciphertext
        )
        encoded = fmt.encode_slot(parsed.fixed, new)
        if encoded is not None:
            offset = parsed.slot_offset(1 - parsed.slot_index)
            written = os.pwrite(f.fileno(), encoded, offset)
            if written != len(encoded):
                raise OSError(f"short write to the header of {name}")
            os.fsync(f.fileno())
            return True
    _rewrite(name, parsed, new)
    return True
