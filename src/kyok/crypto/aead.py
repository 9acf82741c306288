"""kyok's AEAD: AES-256-GCM under a per-message HKDF-derived key ("kyok-aead-v1").

AES-GCM with random 96-bit nonces must not encrypt more than 2^32 messages under one key.
Key blobs and wrapped DEKs can exceed that, so every message gets a key of its own::

    PRK = HKDF-Extract(salt = "kyok/aead/v1", IKM = K)        # once per key, cached
    N   = 24 random bytes                                      # per message
    DK  = HKDF-Expand(PRK, info = N, L = 32)                   # = HMAC-SHA256(PRK, N || 0x01)
    C   = AES-256-GCM(DK, nonce = 12 zero bytes, plaintext, associated_data)
    out = N || C                                               # C ends with the 16-byte tag

Each derived key encrypts exactly one message, so the fixed GCM nonce is never reused under a
key; with a 192-bit N, two messages share a derived key with probability below 2^-64 even after
2^64 messages. ``K`` may be 16, 24 or 32 bytes (imported root keys come in all three sizes); the
derived key is always 256 bits. Anyone holding ``K`` can decrypt with HKDF and AES-GCM alone.
See docs/formats.md for vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import hkdf_extract

SALT = b"kyok/aead/v1"
NONCE_SIZE = 24
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
KEY_SIZES = (16, 24, 32)
_GCM_NONCE = bytes(12)


class DerivedKeyAead:
    """AES-256-GCM with a fresh HKDF-derived key per message.

    Construction is the expensive part (one HMAC); keep the object for as long as the key
    lives. Instances are thread-safe, cannot be pickled and never show key material.
    """

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError("key must be bytes")
        if len(key) not in KEY_SIZES:
            raise ValueError("key must be 16, 24 or 32 bytes")
        self._mac = hmac.HMAC(hkdf_extract(SALT, key), hashes.SHA256())

    def _derive(self, nonce: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(nonce + b"\x01")
        return mac.finalize()

    def encrypt(
        self, plaintext: bytes, associated_data: bytes = b"", nonce: bytes | None = None
    ) -> bytes:
        """Encrypt and authenticate ``plaintext``; bind ``associated_data``.

        Args:
            plaintext: bytes to protect (may be empty).
            associated_data: bytes that must be presented again to decrypt.
            nonce: for test vectors only; normally omitted (24 random bytes are drawn).

        Returns:
            ``nonce || ciphertext || tag`` (``len(plaintext) + 40`` bytes).
        """
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        elif len(nonce) != NONCE_SIZE:
            raise ValueError("nonce must be 24 bytes")
        return nonce + AESGCM(self._derive(nonce)).encrypt(_GCM_NONCE, plaintext, associated_data)

    def encrypt_many(
        self, plaintexts: Sequence[bytes], associated_data: Sequence[bytes]
    ) -> list[bytes]:
        """:meth:`encrypt` for many messages (the ``i``-th binds ``associated_data[i]``).

        The same bytes as one :meth:`encrypt` per message; the nonces come from one call to
        the operating system's random source instead of one per message.
        """
        if len(plaintexts) != len(associated_data):
            raise ValueError("one associated data per plaintext")
        nonces = os.urandom(NONCE_SIZE * len(plaintexts))
        copy, gcm = self._mac.copy, AESGCM  # the loop runs up to 10,000 times per call
        out = []
        offset = 0
        for plaintext, ad in zip(plaintexts, associated_data, strict=True):
            nonce = nonces[offset : offset + NONCE_SIZE]
            offset += NONCE_SIZE
            mac = copy()
            mac.update(nonce + b"\x01")
            out.append(nonce + gcm(mac.finalize()).encrypt(_GCM_NONCE, plaintext, ad))
        return out

    def decrypt(self, data: bytes, associated_data: bytes = b"") -> bytes:
        """Authenticate and decrypt ``data`` made by :meth:`encrypt`.

        Raises:
            InvalidCiphertext: for any failure (too short, wrong key, altered data or AAD).
        """
        if len(data) < OVERHEAD:
            raise InvalidCiphertext()
        nonce = bytes(data[:NONCE_SIZE])
        try:
            return AESGCM(self._derive(nonce)).decrypt(
                _GCM_NONCE, data[NONCE_SIZE:], associated_data
            )
        except InvalidTag:
            raise InvalidCiphertext() from None

    def __repr__(self) -> str:
        return "DerivedKeyAead(key=<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key objects cannot be pickled")


def aes_gcm_encrypt(
    key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes = b""
) -> bytes:
    """Plain AES-GCM (SP 800-38D) with a caller-chosen nonce; for wire formats that require it."""
    return AESGCM(key).encrypt(nonce, plaintext, associated_data or None)


def aes_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, associated_data: bytes = b"") -> bytes:
    """Plain AES-GCM decryption.

    Raises:
        InvalidCiphertext: when the tag does not verify.
    """
    if len(data) < TAG_SIZE:
        raise InvalidCiphertext()
    try:
        return AESGCM(key).decrypt(nonce, data, associated_data or None)
    except InvalidTag:
        raise InvalidCiphertext() from None


def aes_gcm_cipher(key: bytes) -> AESGCM:
    """A reusable plain AES-GCM object for ``key`` (the key schedule is computed once).

    For callers that encrypt many messages under one key (file segments). It is pyca's
    ``AESGCM``: no readable key, a repr without key material, not picklable, thread-safe. Use it
    with :func:`aes_gcm_encrypt_into` and :func:`aes_gcm_decrypt_into`.
    """
    return AESGCM(key)


def aes_gcm_encrypt_into(
    cipher: AESGCM,
    nonce: bytes,
    plaintext: bytes | bytearray | memoryview,
    out: bytearray | memoryview,
    associated_data: bytes = b"",
) -> int:
    """Plain AES-GCM into a caller's buffer: ``out`` (exactly ``len(plaintext) + 16`` bytes)
    receives the ciphertext and the tag. Returns the bytes written.

    Raises:
        ValueError: ``out`` has the wrong size.
    """
    return cipher.encrypt_into(nonce, plaintext, associated_data or None, out)


def aes_gcm_decrypt_into(
    cipher: AESGCM,
    nonce: bytes,
    data: bytes | bytearray | memoryview,
    out: bytearray | memoryview,
    associated_data: bytes = b"",
) -> int:
    """Plain AES-GCM decryption into a caller's buffer (exactly ``len(data) - 16`` bytes).

    pyca's ``decrypt_into`` decrypts into ``out`` before it checks the tag and leaves that
    unauthenticated plaintext there when the tag fails; this function zeroes ``out`` before it
    raises, so a failed call never leaves readable plaintext behind.

    Returns:
        The plaintext bytes written (``len(data) - 16``).

    Raises:
        InvalidCiphertext: ``data`` is shorter than a tag, or the tag does not verify
            (``out`` is then all zeros).
        ValueError: ``out`` has the wrong size.
    """
    if len(data) < TAG_SIZE:
        raise InvalidCiphertext()
    try:
        return cipher.decrypt_into(nonce, data, associated_data or None, out)
    except InvalidTag:
        out[:] = bytes(len(out))
        raise InvalidCiphertext() from None
