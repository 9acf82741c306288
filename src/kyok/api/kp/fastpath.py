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
from kyok.api.responses import json_response
from kyok.auth.context import AuthContext
from kyok.auth.errors import MissingInstance
from kyok.errors import KyokError
from kyok.kms.ledger import AuditEvent, AuditUnavailable, call_event

__all__ = ["DataPlaneFastPath", "is_fast_path"]

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


class DataPlaneFastPath:
    """ASGI middleware: serve the canonical wrap/unwrap/rewrap requests, pass the rest on.

    Args:
        app: the FastAPI application (everything else).
        node: the node.
        media: the response content types.
    """

    def __init__(
        self, app: ASGIApp, node: NodePort, media: Media, recorder: CallRecorder | None = None
    ) -> None:
        self.app = app
        self.node = node
        self.media = media
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        name = match.group(2)
        action, route = _ACTIONS[name]
        scope["route"] = route
        scope["path_params"] = {"id": match.group(1)}  # as the router would
        ctx: AuthContext | None = None
        instance = ""
        reason: str | None = None
        try:
            headers = _headers(scope)
            instance = (headers.get(b"bluemix-instance") or b"").decode("latin-1").strip()
            if not instance:
                raise MissingInstance()
            authorization = headers.get(b"authorization")
            ctx = self.node.auth.authenticate(
                None if authorization is None else authorization.decode("latin-1"), instance
            )
            client = scope.get("client")
            check_network(self.node, ctx.instance_id, client[0] if client else None)
            declared = headers.get(b"content-length")
            raw = await read_body(
                receive,
                declared.decode("latin-1") if declared is not None else None,
                self.node.settings.server.max_body_bytes,
            )
            response = json_response(
                action(ctx, self.node, match.group(1), raw), 200, self.media.action
            )
        except ClientDisconnected:
            return  # nobody to answer, nothing served
        except KyokError as exc:
            response = kyok_error_response(scope, exc)
            reason = exc.code
        except Exception:
            log.exception("request failed with an unexpected error")
            response = internal_error_response(scope)
            reason = "INTERNAL_SERVER_ERR"
        if self.recorder is not None:
            try:
                await self.recorder.record(
                    self._event(scope, name, match.group(1), ctx, instance, response, reason)
                )
            except AuditUnavailable as exc:
                response = kyok_error_response(scope, exc)
        await response(scope, receive, send)

    def _event(
        self,
        scope: Scope,
        name: str,
        key_id: str,
        ctx: AuthContext | None,
        instance: str,
        response: Response,
        reason: str | None,
    ) -> AuditEvent:
        """The call's audit event (this path records its own calls: see kyok.api.audit)."""
        assert self.recorder is not None
        request = request_audit_of(scope, "token")  # Key Protect's calls carry an access token
        if ctx is not None:
            request.principal_id = ctx.principal.id
            request.principal_type = ctx.principal.kind.value
        ledger = self.recorder.ledger_for(ctx.instance_id if ctx is not None else instance or None)
        return call_event(
            request,
            instance_id=ledger,
            action=_AUDIT_ACTIONS[name],
            target_id=target_id_of(key_id),
            target_type="kms/key",
            status=response.status_code,
            reason_code=reason,
            at=datetime.now(UTC),
        )


def is_fast_path(scope: Scope) -> bool:
    """Whether :class:`DataPlaneFastPath` serves (and records) this request."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and not scope.get("query_string")
        and _PATH.fullmatch(scope["path"]) is not None
    )


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers by lower-case name (the first of repeated ones)."""
    out: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        out.setdefault(key.lower(), value)
    return out
