"""n-of-n XOR splitting: the secret is the XOR of all parts; any n-1 parts reveal nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence


def xor_bytes(*values: bytes) -> bytes:
    """XOR byte strings of equal length."""
    if not values:
        raise ValueError("nothing to xor")
    length = len(values[0])
    if any(len(v) != length for v in values):
        raise ValueError("values differ in length")
    acc = int.from_bytes(values[0], "big")
    for v in values[1:]:
        acc ^= int.from_bytes(v, "big")
    return acc.to_bytes(length, "big")


def split(secret: bytes, parts: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` random-looking parts whose XOR is ``secret``."""
    if not secret:
        raise ValueError("nothing to split")
    if not (1 <= parts <= 255):
        raise ValueError("parts must be 1..255")
    randoms = [os.urandom(len(secret)) for _ in range(parts - 1)]
    return [*randoms, xor_bytes(secret, *randoms)] if randoms else [secret]


def combine(parts: Sequence[bytes]) -> bytes:
    """The XOR of all ``parts``."""
    return xor_bytes(*parts)
