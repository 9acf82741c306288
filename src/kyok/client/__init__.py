"""kyok's Python SDK: the Key Protect REST API and kyok's own endpoints.

Depends on ``httpx`` only (and ``kyok.crypto`` where it needs cryptography), so it installs and
works without the server. Start with :class:`KyokClient`; every failure is a
:class:`ClientError` (see :mod:`kyok.client.errors` for the tree). :mod:`kyok.client.byok`
encrypts key material for an import with an import token (``KyokClient.import_root_key`` uses
it). :mod:`kyok.client.envelope` encrypts files and streams under per-file DEKs from kyok.
"""

from __future__ import annotations

from kyok.client._auth import ApiKeyAuth, BearerTokenAuth
from kyok.client._client import DEFAULT_TIMEOUT, KyokClient
from kyok.client._models import (
    Alias,
    ApiKey,
    ImportToken,
    InstancePolicy,
    Key,
    KeyPolicies,
    KeyPolicy,
    KeyRing,
    KeyState,
    KeyVersion,
    Page,
    Principal,
    Registration,
    RewrapResult,
    RoleBinding,
    UnwrapResult,
    WhoAmI,
    WrapResult,
)
from kyok.client._unit import UnitClient
from kyok.client.errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    InvalidResponse,
    NotFound,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Alias",
    "ApiError",
    "ApiKey",
    "ApiKeyAuth",
    "BadRequest",
    "BearerTokenAuth",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "ImportToken",
    "InstancePolicy",
    "InvalidResponse",
    "Key",
    "KeyPolicies",
    "KeyPolicy",
    "KeyRing",
    "KeyState",
    "KeyVersion",
    "KyokClient",
    "NotFound",
    "Page",
    "Principal",
    "Registration",
    "RewrapResult",
    "RoleBinding",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "UnitClient",
    "Unprocessable",
    "UnwrapResult",
    "WhoAmI",
    "WrapResult",
]
