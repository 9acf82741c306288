"""Key derivation: HKDF-SHA256 (RFC 5869) and scrypt (RFC 7914) for passphrases."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

HASH_LEN = 32


def hkdf_sha256(ikm: bytes, *, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 (extract then expand) of ``ikm``.

    Args:
        ikm: input keying material.
        info: context string; every kyok use has its own ``kyok/v1/...`` label.
        length: output length in bytes (at most 255 * 32).
        salt: optional salt; ``None`` means a string of 32 zero bytes (RFC 5869 §2.2).
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256: ``PRK = HMAC-SHA256(salt, IKM)``."""
    mac = hmac.HMAC(salt, hashes.SHA256())
    mac.update(ikm)
    return mac.finalize()


def hkdf_expand(prk: bytes, *, info: bytes, length: int = 32) -> bytes:
    """HKDF-Expand with SHA-256 from a pseudorandom key ``prk``."""
    if len(prk) < HASH_LEN:
        raise ValueError("PRK must be at least 32 bytes")
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters. The defaults (N=2^17, r=8, p=1) take ~0.3 s and 128 MiB."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    # Bounds for parameters read from files: tight enough that a hostile file cannot make us
    # spend more than 1 GiB of memory (p multiplies time, not memory), loose enough for what we write.
    MIN_LOG2_N = 10
    MAX_LOG2_N = 20
    MAX_MEMORY = 1 << 30  # bytes: scrypt needs 128 * r * N

    def __post_init__(self) -> None:
        if not (self.MIN_LOG2_N <= self.log2_n <= self.MAX_LOG2_N):
            raise ValueError(f"scrypt log2(N) must be {self.MIN_LOG2_N}..{self.MAX_LOG2_N}")
        if not (1 <= self.r <= 16) or not (1 <= self.p <= 8):
            raise ValueError("scrypt r must be 1..16 and p 1..8")
        if 128 * self.r * (1 << self.log2_n) > self.MAX_MEMORY:
            raise ValueError("scrypt parameters need more than 1 GiB of memory")


def scrypt(passphrase: bytes, salt: bytes, params: ScryptParams, length: int = 32) -> bytes:
    """Derive ``length`` bytes from ``passphrase`` with scrypt."""
    if len(salt) < 16:
        raise ValueError("scrypt salt must be at least 16 bytes")
    kdf = Scrypt(salt=salt, length=length, n=1 << params.log2_n, r=params.r, p=params.p)
    return kdf.derive(passphrase)
