"""The request envelope every response gets: ids, correlation, timing, a last line of defence.

For each HTTP request :class:`RequestContextMiddleware`

* takes the caller's ``X-Request-Id`` if it is a sane token, else makes one, keeps it in
  ``scope["state"]["request_id"]`` and answers it in ``x-request-id``;
* echoes ``correlation-id`` on every response: the caller's ``Correlation-Id`` (or
  ``X-Correlation-ID``), else a new UUID, as the Go client and IBM's docs expect;
* records metrics by route template and writes one access-log line (method, route template,
  status, duration, ids: never a header value, a body or a query string);
* turns an exception nothing else handled into a 500 error envelope without detail, logged
  with the request id.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyok.api.errors import internal_error_response
from kyok.api.metrics import Metrics
from kyok.api.operations import current_operation

__all__ = ["RequestContextMiddleware", "ids_from", "log_served", "request_ids"]

log = logging.getLogger("kyok.api")
access_log = logging.getLogger("kyok.access")

_TOKEN_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_ID_HEADERS = (b"x-request-id", b"correlation-id", b"x-correlation-id")


def _id_headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's id headers (the first of each), in one pass over its headers."""
    found: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name in _ID_HEADERS and name not in found:
            found[name] = value
    return found


def _sane(found: Mapping[bytes, bytes], *names: bytes) -> str | None:
    """The first of ``names`` given as a sane token (a caller's id is echoed, so no more)."""
    for name in names:
        raw = found.get(name)
        if raw is not None:
            value = raw.decode("latin-1").strip()
            if _TOKEN_RE.fullmatch(value):
                return value
    return None


#: Request and correlation ids are unique labels, not secrets: drawn from a generator seeded
#: from the OS (a third of uuid4's cost, which makes a system call per id), never a counter
#: (which would tell callers how busy the node is).
_ids = random.Random(os.urandom(32))  # noqa: S311 - labels, not secrets (above)


def _new_request_id() -> str:
    """128 random bits in hex (the shape of ``uuid4().hex``)."""
    return f"{_ids.getrandbits(128):032x}"


def _new_correlation_id() -> str:
    """A version-4 UUID in its canonical text form."""
    bits = _ids.getrandbits(128)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[bits & 3]}{h[17:20]}-{h[20:]}"


def request_ids(scope: Scope) -> tuple[str, str]:
    """The request's id and correlation id: the caller's when they are sane tokens, else new
    ones (128 random bits in hex, and a version-4 UUID)."""
    return ids_from(_id_headers(scope))


def ids_from(found: Mapping[bytes, bytes]) -> tuple[str, str]:
    """:func:`request_ids` from the request's headers by lower-case name (the first of
    repeated ones)."""
    request_id = _sane(found, b"x-request-id") or _new_request_id()
    correlation = _sane(found, b"correlation-id", b"x-correlation-id") or _new_correlation_id()
    return request_id, correlation


#: Where access lines go instead of through :mod:`logging`'s record machinery (~5 us a line):
#: set by the server when it gives ``kyok.access`` its batched handler
#: (:func:`kyok.cli.access_log.install`), which writes them exactly as it would the records.
access_sink: Callable[[str], None] | None = None


def log_served(metrics: Metrics, scope: Scope, status: int, elapsed: float) -> None:
    """Record a finished request: its metrics and one access-log line (method, route template,
    status, duration, ids)."""
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    method = scope.get("method", "")
    metrics.observe(method, route, status, elapsed, current_operation(scope).name)
    if not access_log.isEnabledFor(logging.INFO):
        return
    state = scope.get("state") or {}
    message = (
        f"{method} {route} {status} {elapsed * 1000:.1f}ms "
        f"request_id={state.get('request_id')} correlation_id={state.get('correlation_id')}"
    )
    sink = access_sink
    if sink is not None:
        sink(message)
    else:
        access_log.info("%s", message)


class RequestContextMiddleware:
    """See the module docstring.

    Args:
        app: the wrapped application.
        metrics: where to record requests.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, correlation = request_ids(scope)
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["correlation_id"] = correlation
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["correlation-id"] = correlation
                headers["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("request %s failed with an unexpected error", request_id)
            if response_started:
                raise
            await internal_error_response(scope)(scope, receive, send_wrapper)
        finally:
            log_served(self.metrics, scope, status, time.perf_counter() - started)
