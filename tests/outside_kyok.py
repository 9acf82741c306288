"""Opening kyok's documented formats with nothing but ``cryptography`` (docs/formats.md §2, §4).

Tests use this to show that a DEK wrapped by kyok under an imported key can be unwrapped by
whoever holds the raw key, outside kyok: it deliberately imports no kyok code.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def kyok_aead_v1_decrypt(key: bytes, data: bytes, aad: bytes) -> bytes:
    """kyok-aead-v1: ``data = N (24) || AES-256-GCM ciphertext || tag (16)``."""
    nonce, body = data[:24], data[24:]
    prk = hmac.HMAC(b"kyok/aead/v1", hashes.SHA256())
    prk.update(key)
    derived = hmac.HMAC(prk.finalize(), hashes.SHA256())
    derived.update(nonce + b"\x01")
    return AESGCM(derived.finalize()).decrypt(bytes(12), body, aad)


def lp_strings(values: Sequence[str]) -> bytes:
    """Count (4 bytes) then each UTF-8 string with a 4-byte length."""
    out = struct.pack(">I", len(values))
    for value in values:
        raw = value.encode()
        out += struct.pack(">I", len(raw)) + raw
    return out


def unwrap_outside(root_key: bytes, ciphertext: bytes, aad: Sequence[str] = ()) -> bytes:
    """Unwrap a kyok-wrap-v1 ciphertext with the raw root key material alone."""
    if ciphertext[0] != 0x01:
        raise ValueError("not kyok-wrap-v1")
    header = ciphertext[:17]
    return kyok_aead_v1_decrypt(root_key, ciphertext[17:], header + lp_strings(aad))


def version_named(ciphertext: bytes) -> str:
    """The key version id in a kyok-wrap-v1 header."""
    return str(uuid.UUID(bytes=ciphertext[1:17]))
