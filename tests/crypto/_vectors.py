"""Loaders for the vector files in tests/vectors (data, never code: see each file's "source")."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed ``tests/vectors/<name>.json``."""
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="ascii"))
    return data


def h(text: str) -> bytes:
    """Bytes from hex."""
    return bytes.fromhex(text)


def cases(vectors: Iterable[dict[str, Any]], *, where: Any = None) -> list[Any]:
    """``pytest.param`` per vector, named by its ``name``; ``where`` filters."""
    return [pytest.param(v, id=v["name"]) for v in vectors if where is None or where(v)]


def valid(v: dict[str, Any]) -> bool:
    return bool(v["result"] == "valid")


def invalid(v: dict[str, Any]) -> bool:
    return bool(v["result"] == "invalid")
