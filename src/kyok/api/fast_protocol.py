"""HTTP/1.1 that answers the data plane's canonical requests straight from the socket.

A wrap through uvicorn and the ASGI stack cost ~150 us of server CPU, of which kyok's own
work (authentication from cache, the unit's AES-GCM, rendering, the audit event) was a
third; the rest was building the ASGI scope, a task per request, five middleware layers with
their send wrappers, the response object and uvicorn's header checks. This protocol is
uvicorn's own httptools protocol with one difference: a request that is *exactly* a canonical
``POST /api/v2/keys/<id>/actions/(wrap|unwrap|rewrap)`` over HTTP/1.1 with a
``Content-Length`` body within the limit is answered here, as soon as its last byte is parsed,
by the same :class:`~kyok.api.kp.fastpath.DataPlane` the ASGI fast path uses (same
authentication, network policies, authorization, action, error envelope, audit event, request
and correlation ids, metrics and access-log line); everything else — any other path or
method, a query string, chunked bodies, ``Expect: 100-continue``, upgrades, HTTP/1.0 — goes
to uvicorn's ASGI cycle unchanged.

The answer goes out once the call's audit event is durable (or the instance fails open), like
every other answer. Responses leave in request order: a pipelined request that arrives while
an answer waits for the ledger is queued behind it (a data-plane one as the next reply, any
other through uvicorn's pipeline, started once the replies before it are out).
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from functools import partial
from typing import Any, ClassVar, cast

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from kyok.api.kp.fastpath import DataPlane, Served
from kyok.api.metrics import Metrics
from kyok.api.middleware import ids_from, log_served
from kyok.kms.ledger import AuditUnavailable

__all__ = ["FastDataPlaneProtocol", "protocol_for"]

log = logging.getLogger("kyok.api")

#: The canonical data-plane request target (origin form, no query, nothing to unquote).
_TARGET = re.compile(rb"/api/v2/keys/([^/?#%\x00-\x20\x7f-\xff]+)/actions/(wrap|unwrap|rewrap)")

#: Replies waiting for the ledger on one connection before reading pauses (pipelining).
_MAX_REPLIES = 64


class _Reply:
    """One answer on its way: ready once its event is durable (or it failed)."""

    __slots__ = ("data", "keep_alive", "ready")

    def __init__(self, keep_alive: bool) -> None:
        self.data = b""
        self.keep_alive = keep_alive
        self.ready = False


class _Busy:
    """Stands in for a cycle in flight, so that uvicorn queues a request behind our replies."""

    response_complete = False


_BUSY = cast(RequestResponseCycle, _Busy())


class FastDataPlaneProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering canonical data-plane requests itself (see the
    module docstring). Bound to an application with :func:`protocol_for`."""

    plane: ClassVar[DataPlane]
    metrics: ClassVar[Metrics]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast: tuple[str, str] | None = None
        self._fast_headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._started = 0.0
        self._replies: deque[_Reply] = deque()
        self._close_when_done = False

    # -- parser callbacks (the rest are uvicorn's)

    def on_headers_complete(self) -> None:
        """Take a canonical data-plane request; hand anything else to uvicorn."""
        self._fast = self._fast_target()
        if self._fast is not None:
            self._body = []
            self._started = time.perf_counter()
            return
        if not self._replies:
            super().on_headers_complete()
            return
        # A request pipelined behind replies still on their way: uvicorn queues it when it
        # sees a cycle in flight, and on_response_complete starts it once they are out.
        previous = self.cycle
        self.cycle = _BUSY
        super().on_headers_complete()
        if self.cycle is _BUSY:  # uvicorn took it as an upgrade
            self.cycle = previous

    def on_body(self, body: bytes) -> None:
        """Collect a data-plane body (the parser frames it by Content-Length)."""
        if self._fast is None:
            super().on_body(body)
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        """Answer a data-plane request as soon as it is whole."""
        if self._fast is None:
            super().on_message_complete()
            return
        name, key_id = self._fast
        self._fast = None
        reply = _Reply(keep_alive=self.parser.should_keep_alive())
        self._replies.append(reply)
        try:
            self._answer(reply, name, key_id, b"".join(self._body))
        except Exception:  # never leave a caller without an answer (crashed() logs it)
            if not reply.ready:
                scope = cast(Scope, self.scope)
                self._settle(reply, scope, DataPlane.crashed(scope, None), self._started)
        self._body = []

    # -- connection events

    def shutdown(self) -> None:
        """Close once the replies on their way are out (uvicorn's graceful shutdown)."""
        if self._replies or self._fast is not None:
            self._close_when_done = True
            return
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        """Answer unparsable input, after the replies before it."""
        if not self._replies:
            super().send_400_response(msg)
            return
        reply = _Reply(keep_alive=False)
        reply.data = b"".join(
            [
                STATUS_LINE[400],
                *(b"".join([n, b": ", v, b"\r\n"]) for n, v in self.server_state.default_headers),
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(msg)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                msg.encode("ascii"),
            ]
        )
        reply.ready = True
        self._replies.append(reply)
        self._send_ready()

    # -- the data plane

    def _fast_target(self) -> tuple[str, str] | None:
        """``(action, key id)`` when the request just parsed is served here."""
        parser = self.parser
        if (
            parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
            or self.expect_100_continue
            or self.root_path
            or self.limit_concurrency is not None
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return None
        match = _TARGET.fullmatch(self.url)
        if match is None:
            return None
        first: dict[bytes, bytes] = {}  # by lower-case name (uvicorn lowered them)
        for name, value in self.headers:
            if name not in first:
                first[name] = value
            elif name == b"content-length":
                return None  # two lengths: let uvicorn judge
        length = first.get(b"content-length")
        if (
            length is None
            or b"transfer-encoding" in first
            or not length.isdigit()
            or int(length) > self.plane.max_body
        ):
            return None
        self._fast_headers = first
        return match.group(2).decode("ascii"), match.group(1).decode("ascii")

    def _answer(self, reply: _Reply, name: str, key_id: str, raw: bytes) -> None:
        """Serve the request; send ``reply`` (queued in request order) once its event is
        durable."""
        scope: Scope = cast(Scope, self.scope)
        scope["method"] = "POST"
        scope["path"] = self.url.decode("ascii")
        scope["raw_path"] = self.url
        scope["query_string"] = b""
        state = scope["state"]
        headers = self._fast_headers
        state["request_id"], state["correlation_id"] = ids_from(headers)
        plane = self.plane
        plane.tag(scope, name, key_id)
        served = plane.serve(scope, name, key_id, raw, headers)
        if len(self._replies) >= _MAX_REPLIES:
            self.flow.pause_reading()
        started = self._started
        recorder = plane.recorder
        if recorder is None:
            self._settle(reply, scope, served, started)
            return
        event = plane.event(scope, name, key_id, served)
        recorder.submit_then(event, partial(self._recorded, reply, scope, served, started))

    def _recorded(
        self, reply: _Reply, scope: Scope, served: Served, started: float, written: bool
    ) -> None:
        """The event is durable (or the call is served fail-open), or it could not be written
        and the call is refused (fail closed)."""
        if not written:
            served = DataPlane.failed(scope, AuditUnavailable(), None)
        self._settle(reply, scope, served, started)

    def _settle(self, reply: _Reply, scope: Scope, served: Served, started: float) -> None:
        """Render the reply, record the request (metrics, access log) and send what is ready."""
        state = scope["state"]
        status = served.status
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += (name, b": ", value, b"\r\n")
        head += (
            b"content-length: ",
            str(len(served.body)).encode("ascii"),
            b"\r\ncontent-type: ",
            served.media_type.encode("latin-1"),
            b"\r\n",
        )
        head += (
            b"correlation-id: ",
            state["correlation_id"].encode("latin-1"),
            b"\r\nx-request-id: ",
            state["request_id"].encode("latin-1"),
            b"\r\n" if reply.keep_alive else b"\r\nconnection: close\r\n",
            b"\r\n",
            served.body,
        )
        reply.data = b"".join(head)
        reply.ready = True
        try:
            log_served(self.metrics, scope, status, time.perf_counter() - started)
        finally:
            self._send_ready()

    def _send_ready(self) -> None:
        """Write the replies that are ready, in request order."""
        replies = self._replies
        while replies and replies[0].ready:
            reply = replies.popleft()
            if self.transport.is_closing():
                replies.clear()
                return
            self.transport.write(reply.data)
            if not reply.keep_alive or (self._close_when_done and not replies):
                replies.clear()
                self.transport.close()
                return
            if replies:
                self.server_state.total_requests += 1
            else:
                self.on_response_complete()  # resumes reading, starts what uvicorn queued


def protocol_for(app: Any) -> type[FastDataPlaneProtocol]:
    """The protocol class for ``app`` (built by :func:`kyok.api.app.create_app`, which keeps
    its data plane and metrics in ``app.state``), for ``uvicorn.Config(http=...)``."""
    return type(
        "KyokHttpProtocol",
        (FastDataPlaneProtocol,),
        {"plane": app.state.data_plane, "metrics": app.state.metrics},
    )
