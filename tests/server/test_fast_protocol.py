"""The data plane answered straight from the socket (kyok.api.fast_protocol), over real TCP.

A real server (uvicorn in a thread with kyok's protocol, as ``kyok server`` runs it) and raw
sockets, so that what the protocol promises can be seen on the wire: canonical wrap, unwrap
and rewrap are answered by it (a spy counts them) with the same status, headers and body as
the ASGI path gives; everything it does not take (a query string, chunked bodies,
``Expect: 100-continue``, HTTP/1.0, oversized bodies) still works through uvicorn; pipelined
requests of either kind are answered in the order they were sent, also when garbage follows;
``Connection: close`` closes; every answer is on the audit record with the caller's ids.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx
import pytest
from tests.server.conftest import Running, ServeFactory

from kyok.api.fast_protocol import FastDataPlaneProtocol
from kyok.kms.ledger import AuditQuery

KIND = "application/vnd.ibm.kms.key+json"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_reply(stream: BinaryIO) -> Reply:
    """One HTTP/1.1 response (Content-Length framed, or up to EOF) from ``stream``."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = stream.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int(stream.readline().strip(), 16):
            body += stream.read(size)
            stream.readline()
        stream.readline()
    else:
        body = stream.read()
    return Reply(int(status_line.split()[1]), headers, body)


def request(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """The bytes of one request."""
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Plane:
    running: Running
    headers: dict[str, str]
    key: str
    answered: list[str]

    def connect(self) -> tuple[socket.socket, BinaryIO]:
        port = int(self.running.url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        return sock, sock.makefile("rb")

    def exchange(self, *requests: bytes) -> list[Reply]:
        """Send ``requests`` in one write (pipelined) and read as many replies."""
        sock, stream = self.connect()
        with sock, stream:
            sock.sendall(b"".join(requests))
            return [read_reply(stream) for _ in requests]

    def wrap(self, plaintext: bytes, **extra: str) -> bytes:
        body = json.dumps({"plaintext": base64.b64encode(plaintext).decode()}).encode()
        return request(
            "POST", f"/api/v2/keys/{self.key}/actions/wrap", {**self.headers, **extra}, body
        )

    def unwrap(self, ciphertext: str) -> bytes:
        body = json.dumps({"ciphertext": ciphertext}).encode()
        return request("POST", f"/api/v2/keys/{self.key}/actions/unwrap", self.headers, body)

    def events(self) -> list[Any]:
        reader = self.running.node.audit_reader
        return reader.events(AuditQuery(self.running.instance, limit=10_000))


@pytest.fixture
def plane(served: ServeFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plane]:
    running = served()
    headers = running.headers()
    with httpx.Client(base_url=running.url, timeout=10) as client:
        body = {"metadata": {"collectionType": KIND, "collectionTotal": 1},
                "resources": [{"type": KIND, "name": "fast-protocol"}]}  # fmt: skip
        r = client.post("/api/v2/keys", json=body, headers=headers)
        assert r.status_code == 201, r.text
        key = r.json()["resources"][0]["id"]
    answered: list[str] = []
    real = FastDataPlaneProtocol._answer

    def spy(self: FastDataPlaneProtocol, reply: Any, name: str, key_id: str, raw: bytes) -> None:
        answered.append(name)
        real(self, reply, name, key_id, raw)

    monkeypatch.setattr(FastDataPlaneProtocol, "_answer", spy)
    yield Plane(running, {**headers, "Content-Type": "application/json"}, key, answered)


def test_wrap_unwrap_rewrap_are_answered_by_the_protocol(plane: Plane) -> None:
    dek = os.urandom(32)
    (wrapped,) = plane.exchange(plane.wrap(dek, **{"X-Request-Id": "req-fast-1"}))
    assert wrapped.status == 200, wrapped.body
    assert wrapped.headers["content-type"] == "application/vnd.ibm.kms.key_action+json"
    assert wrapped.headers["x-request-id"] == "req-fast-1"
    assert set(wrapped.headers) == {
        "date", "content-length", "content-type", "correlation-id", "x-request-id"
    }  # fmt: skip
    ciphertext = wrapped.json()["ciphertext"]
    rewrap_body = json.dumps({"ciphertext": ciphertext}).encode()
    unwrapped, rewrapped = plane.exchange(
        plane.unwrap(ciphertext),
        request("POST", f"/api/v2/keys/{plane.key}/actions/rewrap", plane.headers, rewrap_body),
    )
    assert base64.b64decode(unwrapped.json()["plaintext"]) == dek
    assert rewrapped.status == 200 and rewrapped.json()["ciphertext"]
    assert plane.answered == ["wrap", "unwrap", "rewrap"]
    actions = [e.event.action for e in plane.events()[-3:]]
    assert actions == ["kms.secrets.wrap", "kms.secrets.unwrap", "kms.secrets.rewrap"]
    assert plane.events()[-3].event.request_id == "req-fast-1"


def test_answers_are_the_asgi_paths_answers(plane: Plane) -> None:
    """The same requests through the application's ASGI fast path (httpx in process) get the
    same status, content type and body (errors byte for byte, ids aside)."""
    app = _app(plane.running)
    bad = {**plane.headers, "Authorization": "Bearer nope"}
    cases = [
        ("wrap", plane.headers, {"plaintext": "!!"}),
        ("wrap", bad, {"plaintext": base64.b64encode(b"k" * 32).decode()}),
        ("unwrap", plane.headers, {"ciphertext": base64.b64encode(b"x" * 60).decode()}),
        ("wrap", {k: v for k, v in plane.headers.items() if k != "Bluemix-Instance"}, {}),
    ]
    for action, headers, body in cases:
        raw = json.dumps(body).encode()
        target = f"/api/v2/keys/{plane.key}/actions/{action}"
        (mine,) = plane.exchange(request("POST", target, headers, raw))
        theirs = _asgi_post(app, target, raw, headers)
        assert (mine.status, mine.headers["content-type"]) == (
            theirs.status_code,
            theirs.headers["content-type"],
        )
        assert mine.body == theirs.content
    (ok,) = plane.exchange(plane.wrap(b"k" * 32))
    body = json.dumps({"plaintext": base64.b64encode(b"k" * 32).decode()}).encode()
    theirs = _asgi_post(app, f"/api/v2/keys/{plane.key}/actions/wrap", body, plane.headers)
    assert ok.status == theirs.status_code == 200
    assert set(ok.json()) == set(theirs.json()) == {"ciphertext", "keyVersion"}
    assert len(plane.answered) == 5


def _app(running: Running) -> Any:
    from kyok.api.app import create_app

    return create_app(running.node)


def _asgi_post(app: Any, target: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST through the application in process (its ASGI fast path), not a socket."""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(target, content=body, headers=headers)

    return asyncio.run(post())


def test_pipelined_requests_are_answered_in_order(plane: Plane) -> None:
    dek = os.urandom(32)
    (first,) = plane.exchange(plane.wrap(dek))
    ciphertext = first.json()["ciphertext"]
    before = len(plane.answered)
    replies = plane.exchange(
        plane.wrap(dek),
        request("GET", "/health", {}, length=False),
        plane.unwrap(ciphertext),
        request("POST", f"/api/v2/keys/{plane.key}/actions/wrap?x=1", plane.headers, b"{}"),
        plane.unwrap(ciphertext),
        request("GET", "/health", {}, length=False),
    )
    assert [r.status for r in replies] == [200] * 6
    assert "ciphertext" in replies[0].json()
    assert replies[1].json()["status"] == "ok"
    assert base64.b64decode(replies[2].json()["plaintext"]) == dek
    assert "ciphertext" in replies[3].json()  # the query string went through FastAPI
    assert base64.b64decode(replies[4].json()["plaintext"]) == dek
    assert replies[5].json()["status"] == "ok"
    # Once a request is queued in uvicorn's pipeline, those behind it queue there too.
    assert plane.answered[before:] == ["wrap"]


def test_garbage_after_a_pipelined_request_is_refused_after_its_answer(plane: Plane) -> None:
    sock, stream = plane.connect()
    with sock, stream:
        sock.sendall(plane.wrap(os.urandom(32)) + b"NOT HTTP AT ALL\r\n\r\n")
        first = read_reply(stream)
        second = read_reply(stream)
        assert stream.read() == b""  # then the connection closes
    assert first.status == 200 and "ciphertext" in first.json()
    assert second.status == 400


def test_connection_close_is_honoured(plane: Plane) -> None:
    sock, stream = plane.connect()
    with sock, stream:
        sock.sendall(plane.wrap(os.urandom(32), Connection="close"))
        reply = read_reply(stream)
        assert reply.headers["connection"] == "close"
        assert stream.read() == b""
    assert reply.status == 200 and plane.answered == ["wrap"]


def test_what_the_protocol_does_not_take_still_works(plane: Plane) -> None:
    dek = os.urandom(32)
    body = json.dumps({"plaintext": base64.b64encode(dek).decode()}).encode()
    target = f"/api/v2/keys/{plane.key}/actions/wrap"
    chunked = request(
        "POST", target, {**plane.headers, "Transfer-Encoding": "chunked"}, b"", length=False
    )
    chunked += f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    (reply,) = plane.exchange(chunked)
    assert reply.status == 200 and "ciphertext" in reply.json()

    (reply,) = plane.exchange(request("POST", target, plane.headers, body, version="HTTP/1.0"))
    assert reply.status == 200 and "ciphertext" in reply.json()

    limit = plane.running.node.settings.server.max_body_bytes
    (reply,) = plane.exchange(request("POST", target, plane.headers, b" " * (limit + 1)))
    assert reply.status == 413

    sock, stream = plane.connect()
    with sock, stream:
        sock.sendall(request("POST", target, {**plane.headers, "Expect": "100-continue",
                             "Content-Length": str(len(body))}, length=False))  # fmt: skip
        assert stream.readline().startswith(b"HTTP/1.1 100")
        assert stream.readline() == b"\r\n"
        sock.sendall(body)
        reply = read_reply(stream)
    assert reply.status == 200 and "ciphertext" in reply.json()
    assert plane.answered == []
    # Each of them is on the record all the same.
    assert [e.event.action for e in plane.events()[-4:]] == ["kms.secrets.wrap"] * 4


def test_an_unexpected_error_is_a_500_and_the_connection_goes_on(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kyok.api.kp.fastpath import DataPlane

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(DataPlane, "event", broken)
    sock, stream = plane.connect()
    with sock, stream:
        sock.sendall(plane.wrap(os.urandom(32)))
        failed = read_reply(stream)
        monkeypatch.undo()
        sock.sendall(plane.wrap(os.urandom(32)))
        served = read_reply(stream)
    assert failed.status == 500
    assert failed.json()["resources"][0]["reasons"][0]["code"] == "INTERNAL_SERVER_ERR"
    assert served.status == 200 and "ciphertext" in served.json()


def test_a_client_that_leaves_before_the_body_is_not_answered(plane: Plane) -> None:
    before = len(plane.events())
    sock, _ = plane.connect()
    with sock:
        sock.sendall(plane.wrap(os.urandom(32))[:-5])
    (reply,) = plane.exchange(plane.wrap(os.urandom(32)))
    assert reply.status == 200
    assert plane.answered == ["wrap"]
    assert len(plane.events()) == before + 1
