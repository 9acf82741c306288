"""Key creation without the framework: ``POST /api/v2/keys`` as a thin ASGI layer.

Measured (bench/keys_create.sh, docs/benchmarks.md "Key creation on SQLite"): once creations
share their commits (:meth:`kyok.kms.service.KeyService.create_key_async`), the event loop's
share of a creation is most of its cost, and FastAPI's routing alone (matching the request
against the ~70 routes ahead of it) takes a large part of that. So the canonical create request
(``POST /api/v2/keys``, no query string) is answered here by the *same* function the route
uses (:func:`kyok.api.kp.routes_keys.serve_create`): the same dependency order, parsing,
authorization, key service call, rendering and errors; ``scope["route"]`` names the route's
endpoint, so the operation tag, the error envelope, metrics, the access log and the audit
middleware read the request as they read the route's. Everything else goes to the application
unchanged (``keys_with_policy_overrides``, other methods and paths, any query string).

:func:`kyok.api.app.create_app` mounts it *inside* :class:`kyok.api.audit.AuditMiddleware`
(innermost, inside the data-plane fast path): the key's ``kms.keys.create`` event is written in
the key's own transaction and marks the request recorded, and a refused creation is recorded
by the audit middleware as for the route. Errors are answered as the route's error handler
answers them (a client gone mid-body too: 499, on the record); an unexpected exception goes on
to the audit middleware, which logs it and answers a bare 500, as it does for the route.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from kyok.api.errors import (
    kyok_error_response,
)
from kyok.api.kp._common import Media, read_body
from kyok.api.kp.routes_keys import create_key, serve_create
from kyok.api.ports import NodePort
from kyok.errors import KyokError

__all__ = ["KeyCreateFastPath", "is_create_fast_path"]


PATH = "/api/v2/keys"


class _Route:
    """What the middleware, the error renderer and the audit middleware read from
    ``scope["route"]``."""

    __slots__ = ("endpoint", "path")

    def __init__(self) -> None:
        self.path = PATH
        self.endpoint = create_key


_ROUTE = _Route()


def is_create_fast_path(scope: Scope) -> bool:
    """Whether :class:`KeyCreateFastPath` serves this request."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and scope["path"] == PATH
        and not scope.get("query_string")
    )


class KeyCreateFastPath:
    """ASGI middleware: serve the canonical key creation, pass the rest on.

    Args:
        app: the application (everything else).
        node: the node.
        media: the response content types.
    """

    def __init__(self, app: ASGIApp, node: NodePort, media: Media) -> None:
        self.app = app
        self.node = node
        self.media = media

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_create_fast_path(scope):
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        scope["path_params"] = {}
        headers = _headers(scope)
        client = scope.get("client")

        async def read(limit: int) -> bytes:
            return await read_body(receive, headers.get("content-length"), limit)

        try:
            response = await serve_create(
                self.node,
                self.media,
                headers.get,
                client[0] if client else None,
                read,
                with_policies=False,
            )
        except KyokError as exc:
            # Also ClientDisconnected (499), as the route's error handler renders it: the
            # access log, the metrics and the audit record say what happened; nobody reads it.
            response = kyok_error_response(scope, exc)
        # Anything else goes on to the audit middleware, as it would from the route: it logs it
        # and answers 500 without detail.
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (the first of repeated ones)."""
    out: dict[str, str] = {}
    for key, value in scope["headers"]:
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out
