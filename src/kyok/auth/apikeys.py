"""API keys and refresh tokens as strings: making them, recognising them, hashing them.

An API key is ``kyok_`` + base64url(32 random bytes), no padding (48 characters). Keys fixed by
an operator for development (``KYOK_DEV_API_KEY``) may be any 16-256 printable characters. A
refresh token is ``kyok_rt_`` + base64url(32 random bytes). Neither is stored: the store keeps
``lookup`` = hex SHA-256 of the string (with 256 random bits, a fast hash is enough; the row
itself is authenticated by a MAC, see :mod:`kyok.auth.integrity`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from kyok.auth.secrets import Secret

__all__ = [
    "API_KEY_MAX",
    "API_KEY_MIN",
    "API_KEY_PREFIX",
    "REFRESH_TOKEN_PREFIX",
    "is_plausible_api_key",
    "is_plausible_refresh_token",
    "lookup_of",
    "new_api_key",
    "new_refresh_token",
]

API_KEY_PREFIX = "kyok_"
REFRESH_TOKEN_PREFIX = "kyok_rt_"  # noqa: S105 (a prefix)
API_KEY_MIN = 16
API_KEY_MAX = 256
_RANDOM_BYTES = 32
_REFRESH_RE = re.compile(r"kyok_rt_[A-Za-z0-9_-]{43}")


def _random_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(_RANDOM_BYTES)).rstrip(b"=").decode()


def new_api_key() -> Secret:
    """A new random API key."""
    return Secret(API_KEY_PREFIX + _random_text())


def new_refresh_token() -> Secret:
    """A new random refresh token."""
    return Secret(REFRESH_TOKEN_PREFIX + _random_text())


def is_plausible_api_key(value: object) -> bool:
    """Whether ``value`` could be an API key: a str of 16-256 printable characters."""
    return (
        isinstance(value, str) and API_KEY_MIN <= len(value) <= API_KEY_MAX and value.isprintable()
    )


def is_plausible_refresh_token(value: object) -> bool:
    """Whether ``value`` has the form of a kyok refresh token."""
    return isinstance(value, str) and _REFRESH_RE.fullmatch(value) is not None


def lookup_of(value: str) -> str:
    """The hex SHA-256 of a key or token string: how the store finds its row."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
