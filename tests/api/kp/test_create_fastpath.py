"""The key-creation fast path as mounted by ``create_app``: answers and audit events.

``create_app`` mounts :class:`~kyok.api.kp.create_fastpath.KeyCreateFastPath`, so the
canonical ``POST /api/v2/keys`` never reaches FastAPI's routing. Each test here sends the same
request to the application as served and to one with the fast path taken out (where
``routes_keys.CreateKeyRoute`` serves it), and compares what the client gets *and* what the
ledger records: the error shapes of every kind of refusal (body, fields, headers, auth, alias
taken, policy), a client that goes away mid-body (499), an unexpected failure (500), and a
success (the ``kms.keys.create`` event written in the key's own transaction).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from kyok.api.app import create_app
from kyok.api.kp import routes_keys
from kyok.api.kp.create_fastpath import KeyCreateFastPath
from kyok.auth.context import Grant
from kyok.auth.roles import Role
from kyok.kms.ledger import AuditQuery

from ..conftest import KEY_TYPE, Api, b64, error_of, key_body

pytestmark = pytest.mark.anyio

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_REQUEST_ID = re.compile(r"request id [0-9a-f]{32}")
_ENVELOPE = ("content-type", "content-length")


def _apps(api: Api) -> dict[str, Any]:
    """The application as served, and the same one without the fast path."""
    served = create_app(api.node)
    assert any(m.cls is KeyCreateFastPath for m in served.user_middleware)
    route_only = create_app(api.node)
    route_only.user_middleware = [
        m for m in route_only.user_middleware if m.cls is not KeyCreateFastPath
    ]
    route_only.middleware_stack = None
    return {"fast path": served, "route": route_only}


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kyok.test")


def _masked(text: str) -> str:
    return _REQUEST_ID.sub("request id <id>", _TIME.sub("<time>", _UUID.sub("<uuid>", text)))


def _answer(r: httpx.Response) -> tuple[int, dict[str, str], str]:
    """Status, the headers that describe the body, and the body (ids and times masked)."""
    headers = {k: r.headers[k] for k in _ENVELOPE if k in r.headers}
    if "content-length" in headers and _UUID.search(r.text):
        del headers["content-length"]  # ids of different lengths cannot occur; times may
    return r.status_code, headers, _masked(r.text)


def _events(api: Api, correlation_id: str) -> list[Any]:
    found = []
    for ledger in (api.instance, "kyok-system"):
        for e in api.node.audit_reader.events(AuditQuery(ledger, limit=10_000)):
            if e.event.correlation_id == correlation_id:
                found.append(e.event)
    return found


def _event_shape(event: Any, key_id: str | None = None) -> tuple[Any, ...]:
    target_id = "<key>" if key_id is not None and event.target.id == key_id else event.target.id
    return (
        event.instance_id,
        event.action,
        event.outcome,
        event.status,
        event.reason_code,
        event.initiator.id,
        event.initiator.type,
        event.initiator.credential,
        event.target.type,
        target_id,
        event.detail,
    )


async def _both(
    api: Api, label: str, content: bytes, headers: dict[str, str]
) -> dict[str, tuple[Any, ...]]:
    """Send one request through both apps; each answer with the shape of its one event."""
    out: dict[str, tuple[Any, ...]] = {}
    for name, app in _apps(api).items():
        cid = f"{label}-{name}".replace(" ", "-")
        async with _client(app) as client:
            r = await client.post(
                "/api/v2/keys", content=content, headers={**headers, "Correlation-Id": cid}
            )
        assert r.headers["correlation-id"] == cid
        key_id = r.json()["resources"][0]["id"] if r.status_code == 201 else None
        events = _events(api, cid)
        assert len(events) == 1, (label, name, events)
        out[name] = (_answer(r), _event_shape(events[0], key_id))
    return out


def _body(**fields: Any) -> bytes:
    return json.dumps(key_body(**fields)).encode()


async def test_every_refusal_has_the_routes_shape_and_audit_event(api: Api) -> None:
    h = api.headers
    await api.create_key("holder", aliases=["taken"])
    no_instance = {k: v for k, v in h.items() if k != "Bluemix-Instance"}
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("bad json", b"{not json", h, 400, "BAD_BODY_ERR"),
        ("not an object", b"[1, 2]", h, 400, "BAD_BODY_ERR"),
        ("empty body", b"", h, 400, "NO_BODY_ERR"),
        ("no resources", json.dumps({"metadata": {"collectionType": KEY_TYPE,
         "collectionTotal": 1}}).encode(), h, 400, "BAD_BODY_ERR"),
        ("no name", json.dumps({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
         "resources": [{"type": KEY_TYPE}]}).encode(), h, 400, "INVALID_FIELD_ERR"),
        ("bad extractable", _body(name="e-1", extractable="yes"), h, 400, "INVALID_FIELD_ERR"),
        ("bad payload", _body(name="p-1", payload="***"), h, 400, "INVALID_FIELD_ERR"),
        ("short material", _body(name="p-2", payload=b64(b"x" * 5)), h, 400, "INVALID_FIELD_ERR"),
        ("bad expiration", _body(name="x-1", expirationDate="tomorrow"), h, 400,
         "INVALID_FIELD_ERR"),
        ("no instance", _body(name="h-1"), no_instance, 400, "MISSING_INSTANCE_ERR"),
        ("bad ring header", _body(name="h-2"), {**h, "X-Kms-Key-Ring": "no such ring"}, 400,
         "INVALID_FIELD_ERR"),
        ("unknown ring", _body(name="h-3"), {**h, "X-Kms-Key-Ring": "nope"}, 404,
         "KEY_RING_NOT_FOUND_ERR"),
        ("no token", _body(name="a-1"), {**h, "Authorization": ""}, 401, "UNAUTHORIZED_ERR"),
        ("bad token", _body(name="a-2"), {**h, "Authorization": "Bearer nope"}, 401,
         "UNAUTHORIZED_ERR"),
        ("reader", _body(name="a-3"), api.mint(Grant(Role.READER)), 403, "FORBIDDEN_ERR"),
        ("alias taken", _body(name="d-1", aliases=["taken"]), h, 409, "KEY_ALIAS_NOT_UNIQUE_ERR"),
        ("too large", b"x" * (2 * 1024 * 1024), h, 413, "BODY_TOO_LARGE_ERR"),
    ]  # fmt: skip
    for label, content, headers, status, code in cases:
        got = await _both(api, label, content, headers)
        assert got["fast path"] == got["route"], label
        (answer_status, _, text), event = got["fast path"]
        assert (answer_status, event[4]) == (status, code), (label, text)
        assert event[2] == "failure" and event[3] == status, (label, event)
        r = httpx.Response(status, content=text.encode())
        assert error_of(r)["code"] == event[4], (label, event)


async def test_a_policy_refusal_has_the_routes_shape_and_audit_event(api: Api) -> None:
    policy = {
        "policy_type": "keyCreateImportAccess",
        "policy_data": {"enabled": True, "attributes": {"create_root_key": False}},
    }
    r = await api.request("PUT", "/api/v2/instance/policies", json={
        "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json",
                     "collectionTotal": 1}, "resources": [policy]})  # fmt: skip
    assert r.status_code == 204, r.text
    got = await _both(api, "policy", _body(name="pol-1"), api.headers)
    assert got["fast path"] == got["route"]
    (status, _, _), event = got["fast path"]
    expected = ("kms.keys.create", "failure", 409, "KEY_CREATE_IMPORT_ACCESS_ERR")
    assert status == 409 and event[1:5] == expected


async def test_a_success_is_recorded_once_in_the_keys_transaction(api: Api) -> None:
    got = await _both(api, "created", _body(name="ok-1", description="d"), api.headers)
    assert got["fast path"] == got["route"]
    (status, _, _), event = got["fast path"]
    assert status == 201
    assert event[1:5] == ("kms.keys.create", "success", None, None)  # the key's own event
    assert event[9] == "<key>"  # its target is the new key


def _scope(api: Api, length: int) -> dict[str, Any]:
    headers = [
        (k.lower().encode(), v.encode())
        for k, v in {**api.headers, "Content-Length": str(length), "Correlation-Id": "gone"}.items()
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v2/keys",
        "raw_path": b"/api/v2/keys",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("kyok.test", 80),
    }


async def test_a_client_gone_mid_body_is_recorded_as_by_the_route(api: Api) -> None:
    """The route's error handler renders ClientDisconnected as a 499 (nobody reads it, but
    the access log and the ledger say what happened): the fast path does the same."""
    answers: dict[str, list[Any]] = {}
    shapes: dict[str, tuple[Any, ...]] = {}
    for name, app in _apps(api).items():
        body = _body(name="gone-1")
        messages = [
            {"type": "http.request", "body": body[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Any] = []

        async def receive(messages: list[Any] = messages) -> Any:
            return messages.pop(0)

        async def send(message: Any, sent: list[Any] = sent) -> None:
            sent.append(message)

        before = {e.seq for e in api.node.audit_reader.events(AuditQuery(api.instance))}
        await app(_scope(api, len(body)), receive, send)
        events = [
            e.event
            for e in api.node.audit_reader.events(AuditQuery(api.instance))
            if e.seq not in before
        ]
        assert len(events) == 1, (name, events)
        shapes[name] = _event_shape(events[0])
        start = sent[0]
        answers[name] = [
            start["status"],
            {k: v for k, v in start["headers"] if k in (b"content-type", b"content-length")},
            b"".join(m.get("body", b"") for m in sent[1:]),
        ]
    assert answers["fast path"] == answers["route"]
    assert answers["fast path"][0] == 499
    assert shapes["fast path"] == shapes["route"]
    assert shapes["fast path"][1:5] == ("kms.keys.create", "failure", 499, "CLIENT_CLOSED_REQUEST")


async def test_an_unexpected_failure_is_a_bare_500_recorded_as_by_the_route(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a defect (secret detail that must not reach the client)")

    monkeypatch.setattr(api.node.service, "create_key_async", broken)
    got = await _both(api, "defect", _body(name="boom-1"), api.headers)
    assert got["fast path"] == got["route"]
    (status, _, text), event = got["fast path"]
    assert status == 500 and "secret" not in text and "RuntimeError" not in text
    assert event[1:5] == ("kms.keys.create", "failure", 500, "INTERNAL_SERVER_ERR")


async def test_the_served_app_never_routes_the_canonical_creation(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the served app the canonical request is answered by the fast path; the
    overrides route and a request with a query string still go to the route."""
    import kyok.api.kp.create_fastpath as create_fastpath

    calls: list[str] = []
    real = routes_keys.serve_create

    def spy(name: str) -> Any:
        async def serve(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return await real(*args, **kwargs)

        return serve

    monkeypatch.setattr(create_fastpath, "serve_create", spy("fast path"))
    monkeypatch.setattr(routes_keys, "serve_create", spy("route"))
    async with _client(_apps(api)["fast path"]) as client:
        for path in ("/api/v2/keys", "/api/v2/keys?x=1", "/api/v2/keys_with_policy_overrides"):
            r = await client.post(path, content=_body(name="where-1"), headers=api.headers)
            assert r.status_code == 201, r.text
    assert calls == ["fast path", "route", "route"]
