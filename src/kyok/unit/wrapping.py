"""Wrapped DEKs: a data-encryption key encrypted under a root key version.

Format ``kyok-wrap-v1`` (what the API returns, base64-encoded, as ``ciphertext``)::

    ciphertext = 0x01 || key_version_id (16 bytes, the UUID) || kyok-aead-v1(R, dek, AAD)
    AAD        = ciphertext[0:17] || count(aad) || lp(aad[0], aad[1], ...)    (UTF-8, 4-byte lengths)

``R`` is the root key version's raw material (16, 24 or 32 bytes), so whoever holds it can
unwrap with HKDF-SHA256 and AES-256-GCM alone (see docs/formats.md). The header names the key
version that wrapped the DEK; unwrap uses it to pick the version and rewrap to move forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from kyok.crypto.aead import OVERHEAD
from kyok.crypto.encoding import lp_strings

WRAP_VERSION = 0x01
HEADER_SIZE = 17
MIN_SIZE = HEADER_SIZE + OVERHEAD


def header(version_id: str) -> bytes:
    """The 17-byte header naming ``version_id`` (a UUID string)."""
    return bytes([WRAP_VERSION]) + uuid.UUID(version_id).bytes


def aad(head: bytes, caller_aad: Sequence[str]) -> bytes:
    """Associated data for a wrapped DEK: the header and the caller's AAD list."""
    return head + lp_strings(caller_aad)


def version_of(ciphertext: bytes) -> str:
    """The key version id named by a wrapped DEK.

    Raises:
        ValueError: not a kyok-wrap-v1 ciphertext.
    """
    if len(ciphertext) < MIN_SIZE or ciphertext[0] != WRAP_VERSION:
        raise ValueError("not a kyok wrapped key")
    h = bytes(ciphertext[1:HEADER_SIZE]).hex()  # str(uuid.UUID(bytes=...)), 4x quicker
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
