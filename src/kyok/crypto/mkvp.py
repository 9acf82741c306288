"""Verification patterns: public values that let people compare keys without revealing them.

* MKVP (master-key verification pattern): 16 bytes of HKDF-SHA256 over the master key, shown
  as 32 hex digits. Custodians compare it at every ceremony step; the unit checks it on unseal.
* KCV (key check value) of a master-key part: 8 bytes of HKDF-SHA256 over the part.

Both are one-way: they identify a 256-bit secret without helping anyone find it.
"""

from __future__ import annotations

from kyok.crypto.kdf import hkdf_sha256

MKVP_INFO = b"kyok/v1/mkvp"
KCV_INFO = b"kyok/v1/kcv"


def mkvp(master_key: bytes) -> str:
    """The master-key verification pattern of ``master_key`` (32 lowercase hex digits)."""
    if len(master_key) != 32:
        raise ValueError("a master key is 32 bytes")
    return hkdf_sha256(master_key, info=MKVP_INFO, length=16).hex()


def kcv(part: bytes) -> str:
    """The key check value of a master-key part (16 lowercase hex digits)."""
    if len(part) != 32:
        raise ValueError("a master-key part is 32 bytes")
    return hkdf_sha256(part, info=KCV_INFO, length=8).hex()


def pretty(pattern: str) -> str:
    """Group a hex pattern in fours for reading aloud: ``1a2b 3c4d ...``."""
    return " ".join(pattern[i : i + 4] for i in range(0, len(pattern), 4))
