"""Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1).

Each byte of the secret is the constant term of its own random polynomial of degree
``threshold - 1``; share ``x`` (1..255) holds the polynomials' values at ``x``. Any
``threshold`` shares give the secret back by Lagrange interpolation at 0; fewer reveal nothing.

Field multiplication avoids table look-ups and branches on secret values (share values are
secret; the x coordinates are public). A share is encoded as ``x || y`` (1 + len(secret) bytes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


def _mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) with a fixed sequence of operations."""
    r = 0
    for _ in range(8):
        r ^= -(b & 1) & a
        carry = -((a >> 7) & 1) & 0x1B
        a = ((a << 1) & 0xFF) ^ carry
        b >>= 1
    return r


def _inv(a: int) -> int:
    """Multiplicative inverse in GF(2^8): a^254 (a != 0)."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse")
    result, base, exp = 1, a, 254
    while exp:
        if exp & 1:
            result = _mul(result, base)
        base = _mul(base, base)
        exp >>= 1
    return result


@dataclass(frozen=True)
class Share:
    """One Shamir share: the x coordinate (1..255) and the values for every secret byte."""

    x: int
    y: bytes

    def __post_init__(self) -> None:
        if not (1 <= self.x <= 255):
            raise ValueError("share x must be 1..255")

    def to_bytes(self) -> bytes:
        """``x || y``."""
        return bytes([self.x]) + self.y

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        """Parse ``x || y``."""
        if len(data) < 2:
            raise ValueError("a share has at least 2 bytes")
        return cls(data[0], bytes(data[1:]))

    def __repr__(self) -> str:
        return f"Share(x={self.x}, y=<{len(self.y)} bytes redacted>)"


def split(secret: bytes, threshold: int, shares: int) -> list[Share]:
    """Split ``secret`` into ``shares`` shares of which any ``threshold`` recover it.

    Args:
        secret: the bytes to share (at least one byte).
        threshold: how many shares recover the secret (1..shares).
        shares: how many shares to make (threshold..255).

    Returns:
        Shares with x = 1..shares.
    """
    if not secret:
        raise ValueError("nothing to split")
    if not (1 <= threshold <= shares <= 255):
        raise ValueError("need 1 <= threshold <= shares <= 255")
    coefficients = [os.urandom(len(secret)) for _ in range(threshold - 1)]
    out: list[Share] = []
    for x in range(1, shares + 1):
        y = bytearray(len(secret))
        for i, s in enumerate(secret):
            acc = 0
            for coeff in reversed(coefficients):  # Horner, highest degree first
                acc = _mul(acc, x) ^ coeff[i]
            y[i] = _mul(acc, x) ^ s
        out.append(Share(x, bytes(y)))
    return out


def combine(shares: Sequence[Share]) -> bytes:
    """Recover the secret from ``shares`` (at least the threshold they were made with).

    With fewer shares than the threshold the result is a random-looking wrong value; callers
    check it (the unit compares the MKVP).

    Raises:
        ValueError: no shares, repeated x coordinates or shares of different lengths.
    """
    if not shares:
        raise ValueError("no shares")
    xs = [s.x for s in shares]
    if len(set(xs)) != len(xs):
        raise ValueError("repeated share")
    length = len(shares[0].y)
    if length == 0 or any(len(s.y) != length for s in shares):
        raise ValueError("shares differ in length")
    # Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); in GF(2^8), minus is xor.
    basis = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = _mul(num, xj)
                den = _mul(den, xj ^ xi)
        basis.append(_mul(num, _inv(den)))
    secret = bytearray(length)
    for share, li in zip(shares, basis, strict=True):
        for k in range(length):
            secret[k] ^= _mul(share.y[k], li)
    return bytes(secret)


__all__ = ["Share", "combine", "split"]
