"""Sealing and opening segments under a file's content key (the STREAM construction)."""

from __future__ import annotations

from typing import NoReturn, cast

from kyok.client.envelope import _format as fmt
from kyok.client.envelope.errors import InvalidEnvelope
from kyok.crypto.aead import (
    aes_gcm_cipher,
    aes_gcm_decrypt,
    aes_gcm_decrypt_into,
    aes_gcm_encrypt,
    aes_gcm_encrypt_into,
)
from kyok.crypto.encoding import ct_equal
from kyok.crypto.errors import InvalidCiphertext

__all__ = ["Buffer", "OutBuffer", "SegmentCipher"]

Buffer = bytes | bytearray | memoryview
OutBuffer = bytearray | memoryview


def _as_input(data: Buffer) -> bytes:
    """``data`` for kyok.crypto's AES-GCM functions, without a copy.

    They are typed ``bytes`` but hand their input straight to pyca's ``AESGCM``, which reads
    any buffer; passing a view of a reused buffer saves one allocation and copy per segment.
    """
    return cast(bytes, data)


class SegmentCipher:
    """AES-256-GCM under one file's content key; segment ``i`` uses nonce ``(i, last)``.

    Holds key material: it has no readable key attribute, a redacted repr, and refuses pickling.
    :meth:`seal_into` and :meth:`open_into` use one AES-GCM object made once per file (the key
    schedule is not recomputed per segment) and write into the caller's buffers.
    """

    __slots__ = ("_aad", "_aead", "_key")

    def __init__(self, content_key: bytes, bound: bytes) -> None:
        self._key = content_key
        self._aead = aes_gcm_cipher(content_key)
        self._aad = bound

    @classmethod
    def for_new_file(cls, dek: bytes, bound: bytes) -> tuple[SegmentCipher, bytes]:
        """The cipher and the key commitment for a file being written."""
        content_key, commitment = fmt.derive_keys(dek, bound)
        return cls(content_key, bound), commitment

    @classmethod
    def for_header(cls, dek: bytes, parsed: fmt.ParsedHeader) -> SegmentCipher:
        """The cipher of a file being read, after its key commitment checked in constant time.

        Raises:
            InvalidEnvelope: ``HEADER_MISMATCH`` when the DEK is not the one this header was
                written with (a swapped or altered header); nothing has been decrypted.
        """
        content_key, commitment = fmt.derive_keys(dek, parsed.bound)
        if not ct_equal(commitment, parsed.key_commitment):
            raise InvalidEnvelope(
                "the header does not belong to this DEK (key commitment mismatch): the header "
                "was swapped or altered",
                code="HEADER_MISMATCH",
            )
        return cls(content_key, parsed.bound)

    def seal(self, index: int, last: bool, plaintext: Buffer) -> bytes:
        """Ciphertext and tag of segment ``index``."""
        nonce = fmt.segment_nonce(index, last)
        return aes_gcm_encrypt(self._key, nonce, _as_input(plaintext), self._aad)

    def seal_into(self, index: int, last: bool, plaintext: Buffer, out: OutBuffer) -> int:
        """Write the ciphertext and tag of segment ``index`` to the start of ``out`` (at least
        ``len(plaintext) + 16`` bytes); returns how many bytes that is."""
        size = len(plaintext) + fmt.TAG_SIZE
        nonce = fmt.segment_nonce(index, last)
        return aes_gcm_encrypt_into(self._aead, nonce, plaintext, memoryview(out)[:size], self._aad)

    def open_into(self, index: int, last: bool, data: Buffer, out: OutBuffer) -> int:
        """Write the plaintext of segment ``index`` to the start of ``out`` (at least
        ``len(data) - 16`` bytes) and return its length, only once its tag verified.

        When the tag does not verify, the part of ``out`` that was decrypted into is zeroed
        before this raises: no unauthenticated plaintext is left in the buffer.

        Raises:
            InvalidEnvelope: ``SEGMENT_DAMAGED``.
        """
        try:
            nonce = fmt.segment_nonce(index, last)
            size = len(data) - fmt.TAG_SIZE
            if size < 0:
                raise InvalidCiphertext()
            return aes_gcm_decrypt_into(self._aead, nonce, data, memoryview(out)[:size], self._aad)
        except InvalidCiphertext:
            _damaged(index, last)

    def open(self, index: int, last: bool, data: Buffer) -> bytes:
        """Plaintext of segment ``index``, only once its tag verified.

        Raises:
            InvalidEnvelope: ``SEGMENT_DAMAGED``.
        """
        try:
            nonce = fmt.segment_nonce(index, last)
            return aes_gcm_decrypt(self._key, nonce, _as_input(data), self._aad)
        except InvalidCiphertext:
            _damaged(index, last)

    def __repr__(self) -> str:
        return "SegmentCipher(key=<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key objects cannot be pickled")


def _damaged(index: int, last: bool) -> NoReturn:
    where = "final segment" if last else "segment"
    raise InvalidEnvelope(
        f"{where} {index} did not authenticate: the data was altered, reordered, "
        "truncated or extended, or segments were dropped",
        code="SEGMENT_DAMAGED",
    ) from None
