"""Authentication for the SDK, as ``httpx.Auth`` flows.

:class:`ApiKeyAuth` trades an API key for an access token at the service's IAM-compatible token
endpoint (``POST {url}/identity/token``), caches it, refreshes it shortly before it expires
(with the refresh token, falling back to the API key), and retries a request once, with a fresh
token, when the service answers 401. All of it happens inside :meth:`ApiKeyAuth.auth_flow`, which
yields the token requests through the same transport as the API call, so tests drive it with
``httpx.MockTransport`` and the real app alike.

:class:`BearerTokenAuth` sends a token the caller already has.

Neither ever shows a key or a token in its repr.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from kyok.client.errors import InvalidResponse, Unauthorized, error_from_response

__all__ = ["APIKEY_GRANT", "ApiKeyAuth", "BearerTokenAuth"]

#: The OAuth grant type of an IBM-style API key exchange.
APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"

_REDACTED = "********"


class _Secret:
    """A string that does not show itself in a repr, a str() or a pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a credential must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled")


@dataclass(frozen=True, eq=False)
class _Token:
    access: _Secret
    refresh: _Secret | None
    expires_at: float  # epoch seconds
    refresh_at: float  # epoch seconds: get a new one from here on


class ApiKeyAuth(httpx.Auth):
    """Bearer tokens obtained with an API key, cached and refreshed inside ``auth_flow``.

    Args:
        token_url: the token endpoint, e.g. ``https://kms.example/identity/token``.
        api_key: the API key (kept out of every repr).
        clock: seconds since the epoch; tests pass a fake one.
        leeway: refresh this many seconds before the token expires (at most a fifth of the
            token's lifetime).
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        api_key: str,
        *,
        clock: Callable[[], float] = time.time,
        leeway: float = 60.0,
    ) -> None:
        self.token_url = token_url
        self._api_key = _Secret(api_key)
        self._clock = clock
        self._leeway = leeway
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def __repr__(self) -> str:
        return f"ApiKeyAuth(token_url={self.token_url!r}, api_key={_REDACTED!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled")

    # -- the flow

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a valid token; on a 401, get a new token with the API key and retry once."""
        token = self._cached()
        if token is None or self._clock() >= token.refresh_at:
            token = yield from self._obtain(token)
        request.headers["Authorization"] = f"Bearer {token.access.reveal()}"
        response = yield request
        if response.status_code == 401:
            self._forget(token)
            token = yield from self._obtain(None)
            request.headers["Authorization"] = f"Bearer {token.access.reveal()}"
            yield request

    def token_flow(self) -> Generator[httpx.Request, httpx.Response, str]:
        """A flow that only obtains (or reuses) an access token (``KyokClient.authenticate``)."""
        token = self._cached()
        if token is None or self._clock() >= token.refresh_at:
            token = yield from self._obtain(token)
        return token.access.reveal()

    def invalidate(self) -> None:
        """Forget the cached token (the next request fetches a new one)."""
        with self._lock:
            self._token = None

    # -- helpers

    def _cached(self) -> _Token | None:
        with self._lock:
            return self._token

    def _forget(self, token: _Token) -> None:
        with self._lock:
            if self._token is token:
                self._token = None

    def _request(self, form: dict[str, str]) -> httpx.Request:
        return httpx.Request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )

    def _obtain(self, stale: _Token | None) -> Generator[httpx.Request, httpx.Response, _Token]:
        """A new token: refresh ``stale`` if it has a refresh token, else (or if that fails)
        exchange the API key."""
        if stale is not None and stale.refresh is not None:
            response = yield self._request(
                {"grant_type": "refresh_token", "refresh_token": stale.refresh.reveal()}
            )
            if response.status_code == 200:
                try:
                    return self._store(response)
                except InvalidResponse:
                    pass  # fall back to the API key
        response = yield self._request(
            {"grant_type": APIKEY_GRANT, "apikey": self._api_key.reveal()}
        )
        if response.status_code in (400, 401):
            err = error_from_response(response)
            raise Unauthorized(
                f"the API key was refused: {err.message}",
                status=response.status_code,
                code=err.code if err.code != err.default_code else "APIKEY_REFUSED",
                correlation_id=err.correlation_id,
            )
        if response.status_code != 200:
            err = error_from_response(response)
            raise type(err)(
                f"the token endpoint {self.token_url} answered: {err.message}",
                status=err.status,
                code=err.code,
                correlation_id=err.correlation_id,
                target=err.target,
            )
        return self._store(response)

    def _store(self, response: httpx.Response) -> _Token:
        try:
            body: Any = response.json()
        except ValueError:
            raise InvalidResponse("the token endpoint did not answer JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise InvalidResponse("the token endpoint's answer has no access_token")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise InvalidResponse("the token endpoint did not issue a Bearer token")
        now = self._clock()
        expires_in = body.get("expires_in")
        expiration = body.get("expiration")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = now + float(expires_in)
        elif isinstance(expiration, int | float) and not isinstance(expiration, bool):
            expires_at = float(expiration)
        else:
            expires_at = now  # unknown lifetime: use it once, then ask again
        lifetime = max(expires_at - now, 0.0)
        refresh = body.get("refresh_token")
        token = _Token(
            access=_Secret(body["access_token"]),
            refresh=_Secret(refresh) if isinstance(refresh, str) and refresh else None,
            expires_at=expires_at,
            refresh_at=expires_at - min(self._leeway, lifetime / 5),
        )
        with self._lock:
            self._token = token
        return token


class BearerTokenAuth(httpx.Auth):
    """Sends a fixed access token (one the caller obtained elsewhere).

    Args:
        token: the access token (kept out of every repr).
    """

    def __init__(self, token: str) -> None:
        self._token = _Secret(token)

    def __repr__(self) -> str:
        return f"BearerTokenAuth(token={_REDACTED!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the token."""
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request
