"""The data plane without the framework: wrap, unwrap and rewrap as a thin ASGI layer.

Measured (bench/profile.sh, docs/benchmarks.md): FastAPI's per-request machinery — matching
~50 route patterns, resolving the dependency graph, two hand-offs to worker threads — cost
~500 us of a wrap request's ~800 us, while kyok's own work took ~30 us. So the three hot
actions in their canonical form (``POST /api/v2/keys/{id}/actions/(wrap|unwrap|rewrap)``, no
query string) are answered here, on the event loop, by the *same* functions the FastAPI routes
call (:mod:`kyok.api.kp.routes_actions`): authentication through the node's auth service,
the instance's network policies (:func:`kyok.api.deps.check_network`), authorization, lenient
body parsing, the key service, rendering, the error envelope, the
operation tag (so metrics, access log and ``errorMsg`` read as for the routes). Everything else
— the legacy ``?action=`` form, other methods, other paths — goes to FastAPI unchanged.

Running on the loop is right for the warm path (cached token, grants, key and handle: no I/O).
A cold request reads the store once (SQLite or PostgreSQL, a millisecond or so) on the loop;
it is the exception under load, and its result is cached.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kyok.api.audit import CallRecorder, request_audit_of, target_id_of
from kyok.api.deps import check_network
from kyok.api.errors import (
    ClientDisconnected,
    internal_error_response,
    kyok_error_response,
)
from kyok.api.kp._common import Media, read_body
from kyok.api.kp.routes_actions import (
    rewrap,
    rewrap_action,
    unwrap,
    unwrap_action,
    wrap,
    wrap_action,
)
from kyok.api.ports import NodePort
from kyok.auth.context import AuthContext
from kyok.auth.errors import MissingInstance
from kyok.errors import KyokError
from kyok.kms.ledger import AuditEvent, AuditUnavailable, call_event

__all__ = ["DataPlane", "DataPlaneFastPath", "Served", "is_fast_path"]

log = logging.getLogger("kyok.api")

_PATH = re.compile(r"/api/v2/keys/([^/]+)/actions/(wrap|unwrap|rewrap)")

Action = Callable[[AuthContext, NodePort, str, bytes], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Route:
    """What the middleware and the error renderer read from ``scope["route"]``."""

    path: str
    endpoint: Callable[..., Any]


_AUDIT_ACTIONS = {
    "wrap": "kms.secrets.wrap",
    "unwrap": "kms.secrets.unwrap",
    "rewrap": "kms.secrets.rewrap",
}

_ACTIONS: dict[str, tuple[Action, _Route]] = {
    "wrap": (wrap_action, _Route("/api/v2/keys/{id}/actions/wrap", wrap)),
    "unwrap": (unwrap_action, _Route("/api/v2/keys/{id}/actions/unwrap", unwrap)),
    "rewrap": (rewrap_action, _Route("/api/v2/keys/{id}/actions/rewrap", rewrap)),
}


@dataclass(slots=True)
class Served:
    """A data-plane call's answer, before it is recorded.

    Attributes:
        status: the HTTP status.
        body: the JSON body (the action's result or the error envelope).
        media_type: its content type.
        reason: the error's reason code (None on success).
        ctx: the authenticated caller (None when authentication failed).
        instance: the ``Bluemix-Instance`` the caller named ("" for none).
    """

    status: int
    body: bytes
    media_type: str
    reason: str | None
    ctx: AuthContext | None
    instance: str

    @classmethod
    def of(
        cls, response: Response, reason: str | None, ctx: AuthContext | None, instance: str
    ) -> Served:
        """A rendered response (an error envelope) as a :class:`Served`."""
        media_type = response.media_type or "application/json"
        return cls(response.status_code, bytes(response.body), media_type, reason, ctx, instance)

    def response(self) -> Response:
        """As a Starlette response (the same bytes and headers the routes send)."""
        return Response(self.body, self.status, media_type=self.media_type)


class DataPlane:
    """Serves the canonical wrap/unwrap/rewrap requests; shared by :class:`DataPlaneFastPath`
    (ASGI) and :mod:`kyok.api.fast_protocol` (HTTP/1.1 straight from the socket).

    Args:
        node: the node.
        media: the response content types.
        recorder: where the calls' events go (None: not recorded, for tests of the routes).
    """

    def __init__(self, node: NodePort, media: Media, recorder: CallRecorder | None = None) -> None:
        self.node = node
        self.media = media
        self.recorder = recorder
        self.max_body = node.settings.server.max_body_bytes

    @staticmethod
    def route(path: str) -> tuple[str, str] | None:
        """``(action name, key id)`` when ``path`` is a canonical data-plane path."""
        match = _PATH.fullmatch(path)
        return None if match is None else (match.group(2), match.group(1))

    @staticmethod
    def tag(scope: Scope, name: str, key_id: str) -> None:
        """Put the route and its path parameters in ``scope``, as the router would (the
        metrics, the access log and the error renderer read them)."""
        scope["route"] = _ACTIONS[name][1]
        scope["path_params"] = {"id": key_id}

    def caller(self, scope: Scope, headers: dict[bytes, bytes] | None = None) -> AuthContext:
        """Authenticate the request in ``scope`` and check its address.

        Args:
            scope: the request.
            headers: its headers by lower-case name, if already at hand.

        Returns:
            The caller.

        Raises:
            KyokError: no instance, a bad or missing token, a refused address.
        """
        if headers is None:
            headers = _headers(scope)
        instance = _instance_of(headers)
        if not instance:
            raise MissingInstance()
        authorization = headers.get(b"authorization")
        ctx = self.node.auth.authenticate(
            None if authorization is None else authorization.decode("latin-1"), instance
        )
        client = scope.get("client")
        check_network(self.node, ctx.instance_id, client[0] if client else None)
        return ctx

    def serve(
        self,
        scope: Scope,
        name: str,
        key_id: str,
        raw: bytes,
        headers: dict[bytes, bytes] | None = None,
    ) -> Served:
        """Authenticate, authorize and run the action on a request whose body is ``raw``
        (``headers``: by lower-case name, if already at hand)."""
        try:
            ctx = self.caller(scope, headers)
        except KyokError as exc:
            return self.failed(scope, exc, None)
        except Exception:
            return self.crashed(scope, None)
        return self.act(scope, name, key_id, ctx, raw)

    def act(self, scope: Scope, name: str, key_id: str, ctx: AuthContext, raw: bytes) -> Served:
        """Run the action for an authenticated caller; every error becomes its envelope."""
        try:
            body = _ACTIONS[name][0](ctx, self.node, key_id, raw)
            rendered = orjson.dumps(body)  # as JSONResponse renders it (compact, UTF-8)
            return Served(200, rendered, self.media.action, None, ctx, ctx.instance_id)
        except KyokError as exc:
            return self.failed(scope, exc, ctx)
        except Exception:
            return self.crashed(scope, ctx)

    @staticmethod
    def failed(scope: Scope, exc: KyokError, ctx: AuthContext | None) -> Served:
        """The error envelope of ``exc``."""
        instance = _instance_header(scope)
        return Served.of(kyok_error_response(scope, exc), exc.code, ctx, instance)

    @staticmethod
    def crashed(scope: Scope, ctx: AuthContext | None) -> Served:
        """A 500 without detail for an unexpected error (logged with its traceback)."""
        log.exception("request failed with an unexpected error")
        instance = _instance_header(scope)
        return Served.of(internal_error_response(scope), "INTERNAL_SERVER_ERR", ctx, instance)

    def event(self, scope: Scope, name: str, key_id: str, served: Served) -> AuditEvent:
        """The call's audit event (this path records its own calls: see kyok.api.audit)."""
        assert self.recorder is not None
        request = request_audit_of(scope, "token")  # Key Protect's calls carry an access token
        ctx = served.ctx
        if ctx is not None:
            request.principal_id = ctx.principal.id
            request.principal_type = ctx.principal.kind.value
        ledger = self.recorder.ledger_for(
            ctx.instance_id if ctx is not None else served.instance or None
        )
        return call_event(
            request,
            instance_id=ledger,
            action=_AUDIT_ACTIONS[name],
            target_id=target_id_of(key_id),
            target_type="kms/key",
            status=served.status,
            reason_code=served.reason,
            at=datetime.now(UTC),
        )


class DataPlaneFastPath:
    """ASGI middleware: serve the canonical wrap/unwrap/rewrap requests, pass the rest on.

    Args:
        app: the FastAPI application (everything else).
        plane: what serves them.
    """

    def __init__(self, app: ASGIApp, plane: DataPlane) -> None:
        self.app = app
        self.plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        found = DataPlane.route(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        plane = self.plane
        name, key_id = found
        plane.tag(scope, name, key_id)
        ctx: AuthContext | None = None
        try:
            headers = _headers(scope)
            ctx = plane.caller(scope, headers)
            declared = headers.get(b"content-length")
            raw = await read_body(
                receive,
                declared.decode("latin-1") if declared is not None else None,
                plane.max_body,
            )
            served = plane.act(scope, name, key_id, ctx, raw)
        except ClientDisconnected:
            return  # nobody to answer, nothing served
        except KyokError as exc:
            served = plane.failed(scope, exc, ctx)
        except Exception:
            served = plane.crashed(scope, ctx)
        response = served.response()
        if plane.recorder is not None:
            try:
                await plane.recorder.record(plane.event(scope, name, key_id, served))
            except AuditUnavailable as exc:
                response = kyok_error_response(scope, exc)
        await response(scope, receive, send)


def is_fast_path(scope: Scope) -> bool:
    """Whether :class:`DataPlaneFastPath` serves (and records) this request."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and not scope.get("query_string")
        and DataPlane.route(scope["path"]) is not None
    )


def _instance_header(scope: Scope) -> str:
    """The ``Bluemix-Instance`` the request named ("" for none)."""
    return _instance_of(_headers(scope))


def _instance_of(headers: dict[bytes, bytes]) -> str:
    """The ``Bluemix-Instance`` among headers by lower-case name ("" for none)."""
    return (headers.get(b"bluemix-instance") or b"").decode("latin-1").strip()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers by lower-case name (the first of repeated ones)."""
    out: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        out.setdefault(key.lower(), value)
    return out
