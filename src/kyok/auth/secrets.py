"""A wrapper for credentials (API keys, tokens) that never shows them by accident."""

from __future__ import annotations

import hmac
from typing import NoReturn

__all__ = ["REDACTED", "Secret"]

REDACTED = "********"


class Secret:
    """A secret string: ``repr``/``str`` print ``'********'``; :meth:`reveal` gives the value.

    Equality is constant-time; a secret cannot be hashed or pickled (so it does not end up in a
    set, a cache key or a serialised object without someone asking for :meth:`reveal`).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Show it once, to the one who asked for it; never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
