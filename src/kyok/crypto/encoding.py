"""Deterministic byte encodings shared by every kyok format.

``lp`` (length-prefixed concatenation) is used wherever several values are bound together,
for instance in associated data, so that ``("ab", "c")`` and ``("a", "bc")`` never encode alike.
``canonical_json`` is the one JSON encoding that is signed or hashed anywhere in kyok.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives import constant_time


def lp(*parts: bytes) -> bytes:
    """Concatenate ``parts``, each preceded by its length as 4 big-endian bytes."""
    out = bytearray()
    for part in parts:
        if not isinstance(part, bytes | bytearray | memoryview):
            raise TypeError("lp() takes bytes")
        part = bytes(part)  # len() of a memoryview counts items, not bytes
        out += len(part).to_bytes(4, "big")
        out += part
    return bytes(out)


def lp_strings(values: Iterable[str]) -> bytes:
    """Encode a list of strings as a 4-byte count followed by ``lp`` of their UTF-8 forms."""
    items = [v.encode("utf-8") for v in values]
    return len(items).to_bytes(4, "big") + lp(*items)


def _check_canonical(value: Any, path: str = "$") -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise TypeError(f"canonical JSON has no floats ({path})")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_canonical(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON keys are strings ({path})")
            _check_canonical(item, f"{path}.{key}")
        return
    raise TypeError(f"canonical JSON cannot hold {type(value).__name__} ({path})")


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON: sorted keys, no spaces, ASCII only, no floats."""
    _check_canonical(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def b64e(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: str | bytes) -> bytes:
    """Strict standard base64 decode: raises ``ValueError`` on any character outside the alphabet."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc


def ct_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in constant time."""
    return constant_time.bytes_eq(a, b)
