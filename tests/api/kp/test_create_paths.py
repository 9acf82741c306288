"""Key creation answers alike on every path it can take.

``POST /api/v2/keys`` (and ``/keys_with_policy_overrides``) are served by
``routes_keys.CreateKeyRoute``: an async handler that does what the routes' dependencies do and
awaits the key service's group commit. ``create_fastpath.KeyCreateFastPath`` (mounted by
``create_app``) serves the canonical ``POST /api/v2/keys`` before the framework's routing, with
the same function; the route is reached here through an app with the fast path taken out. Both
are compared here with FastAPI's own handling of the same endpoints (dependency resolution,
sync route in a worker thread): status, content type and body (ids and times masked) must be
the same for successes and every kind of refusal, and each call must be on the audit record
once, with the same action and outcome.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from kyok.api.app import create_app
from kyok.api.kp import routes_keys
from kyok.api.kp.create_fastpath import KeyCreateFastPath, is_create_fast_path
from kyok.auth.context import Grant
from kyok.auth.principals import SYSTEM
from kyok.auth.roles import Role
from kyok.kms.ledger import AuditQuery

from ..conftest import KEY_TYPE, Api, b64, key_body, scoped

pytestmark = pytest.mark.anyio

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_ALIAS = re.compile(r"alias-\d+-\d+")  # each path creates its own alias


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return _ALIAS.sub("<alias>", _TIME.sub("<time>", _UUID.sub("<uuid>", value)))
    return value


def _comparable(r: httpx.Response) -> tuple[int, str, Any]:
    body: Any = r.json() if r.content else None
    if isinstance(body, dict):
        for resource in body.get("resources", []):
            if isinstance(resource, dict) and "payload" in resource:
                resource["payload"] = len(resource["payload"])  # generated: compare its size
    return r.status_code, r.headers.get("content-type", ""), _masked(body)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kyok.test")


def _with_fast_path(api: Api) -> httpx.AsyncClient:
    """The application as served: create_app mounts KeyCreateFastPath (innermost)."""
    app = create_app(api.node)
    assert any(m.cls is KeyCreateFastPath for m in app.user_middleware)
    return _client(app)


def _route_only(api: Api) -> httpx.AsyncClient:
    """An app with KeyCreateFastPath taken out: the request reaches CreateKeyRoute."""
    app = create_app(api.node)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not KeyCreateFastPath]
    app.middleware_stack = None
    return _client(app)


async def _framework_only(api: Api, monkeypatch: pytest.MonkeyPatch) -> httpx.AsyncClient:
    """An app without the fast path whose create routes use FastAPI's own handler
    (dependencies, worker thread).

    FastAPI builds the handlers of an included router's routes at its first request, so one
    request is made while the handler is swapped (a 400: no instance)."""
    with monkeypatch.context() as m:
        m.setattr(routes_keys.CreateKeyRoute, "get_route_handler", APIRoute.get_route_handler)
        client = _route_only(api)
        r = await client.post("/api/v2/keys", content=b"{}")
        assert r.status_code == 400
    return client


def _cases(api: Api) -> list[tuple[str, str, bytes, dict[str, str]]]:
    h = api.headers
    writer = api.mint(Grant(Role.WRITER))
    reader = api.mint(Grant(Role.READER))
    ring_writer = api.mint(scoped(Role.WRITER, "key_ring:ring-a"))
    no_instance = {k: v for k, v in h.items() if k != "Bluemix-Instance"}
    no_token = {k: v for k, v in h.items() if k != "Authorization"}
    other_instance = {**h, "Bluemix-Instance": "00000000-0000-4000-8000-000000000000"}

    def body(**fields: Any) -> bytes:
        return json.dumps(key_body(**fields)).encode()

    keys = "/api/v2/keys"
    return [
        ("root", keys, body(name="root-a"), h),
        ("standard", keys, body(name="std-a", extractable=True), h),
        ("standard, minimal", keys, body(name="std-b", extractable=True),
         {**h, "Prefer": "return=minimal"}),
        ("imported", keys, body(name="imp-a", payload=b64(b"m" * 32)), h),
        ("described", keys, body(name="desc-a", description="d", tags=["t1"]), h),
        ("aliased", keys, body(name="al-a", aliases=["alias-{n}"]), h),
        ("alias taken", keys, body(name="al-b", aliases=["taken"]), h),
        ("ring header", keys, body(name="ring-1"), {**h, "X-Kms-Key-Ring": "ring-a"}),
        ("ring body", keys, body(name="ring-2", keyRingID="ring-a"), h),
        ("ring mismatch", keys, body(name="ring-3", keyRingID="ring-a"),
         {**h, "X-Kms-Key-Ring": "default"}),
        ("no such ring", keys, body(name="ring-4"), {**h, "X-Kms-Key-Ring": "nope"}),
        ("ring-scoped writer, own ring", keys, body(name="rw-1"),
         {**ring_writer, "X-Kms-Key-Ring": "ring-a"}),
        ("ring-scoped writer, default ring", keys, body(name="rw-2"), ring_writer),
        ("writer", keys, body(name="w-1"), writer),
        ("reader", keys, body(name="r-1"), reader),
        ("no instance", keys, body(name="x-1"), no_instance),
        ("no token", keys, body(name="x-2"), no_token),
        ("other instance", keys, body(name="x-3"), other_instance),
        ("bad json", keys, b"{not json", h),
        ("no body", keys, b"", h),
        ("two resources", keys, json.dumps({
            "metadata": {"collectionType": KEY_TYPE, "collectionTotal": 2},
            "resources": [key_body()["resources"][0]] * 2}).encode(), h),
        ("short name", keys, body(name="x"), h),
        ("policies refused here", keys, body(name="p-1", rotation={"enabled": True}), h),
        ("too large", keys, b"x" * (2 * 1024 * 1024), h),
        ("overrides route", "/api/v2/keys_with_policy_overrides",
         body(name="ov-1", dualAuthDelete={"enabled": True}), h),
        ("query string", keys + "?x=1", body(name="q-1"), h),
    ]  # fmt: skip


async def test_same_answers_and_audit_on_every_path(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.node.service.create_key_ring(SYSTEM, api.instance, "ring-a")
    await api.create_key("holder", aliases=["taken"])
    paths = {
        "route": _route_only(api),
        "fast path": _with_fast_path(api),
        "framework": await _framework_only(api, monkeypatch),
    }
    seen: dict[str, tuple[int, str, Any]] = {}
    correlation: dict[str, str] = {}
    for n, (label, path, content, headers) in enumerate(_cases(api)):
        for name, client in paths.items():
            cid = f"c-{n}-{name.replace(' ', '-')}"
            body = content.replace(b"alias-{n}", f"alias-{n}-{len(correlation)}".encode())
            r = await client.post(path, content=body, headers={**headers, "Correlation-Id": cid})
            got = _comparable(r)
            correlation[cid] = f"{label}|{r.status_code}"
            if label in seen:
                assert got == seen[label], (label, name, r.text)
            else:
                seen[label] = got
    assert seen["root"][0] == 201 and seen["standard"][2]["resources"][0]["payload"] == 44
    assert "payload" not in seen["standard, minimal"][2]["resources"][0]
    assert seen["alias taken"][0] == 409 and seen["no such ring"][0] == 404
    assert seen["reader"][0] == 403 and seen["no instance"][0] == 400
    assert seen["no token"][0] == 401 and seen["too large"][0] == 413

    events = api.node.audit_reader.events(AuditQuery(api.instance, limit=10_000))
    events += api.node.audit_reader.events(AuditQuery("kyok-system", limit=10_000))
    by_cid: dict[str, list[Any]] = {}
    for e in events:
        if e.event.correlation_id in correlation:
            by_cid.setdefault(e.event.correlation_id, []).append(e.event)
    for cid, what in correlation.items():
        label, status = what.split("|")
        recorded = by_cid.get(cid, [])
        assert len(recorded) == 1, (cid, label, recorded)
        (event,) = recorded
        assert event.outcome == ("success" if int(status) < 400 else "failure"), (label, event)
        if label not in ("no instance", "no token", "other instance"):
            assert event.action == "kms.keys.create", (label, event.action)
    # The three paths recorded the same action, outcome and reason for each case.
    for n, (label, *_rest) in enumerate(_cases(api)):
        triples = {
            (e.action, e.outcome, e.reason_code)
            for cid, evs in by_cid.items()
            if cid.startswith(f"c-{n}-")
            for e in evs
        }
        assert len(triples) == 1, (label, triples)


async def test_the_fast_path_takes_only_the_canonical_request(api: Api) -> None:
    def scope(method: str, path: str, query: bytes = b"") -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "query_string": query}

    assert is_create_fast_path(scope("POST", "/api/v2/keys"))
    assert not is_create_fast_path(scope("POST", "/api/v2/keys", b"x=1"))
    assert not is_create_fast_path(scope("GET", "/api/v2/keys"))
    assert not is_create_fast_path(scope("POST", "/api/v2/keys/abc"))
    assert not is_create_fast_path(scope("POST", "/api/v2/keys_with_policy_overrides"))
    assert not is_create_fast_path({"type": "websocket", "method": "GET", "path": "/"})


async def test_concurrent_creations_through_the_fast_path(api: Api) -> None:
    import asyncio

    client = _with_fast_path(api)
    responses = await asyncio.gather(
        *(
            client.post("/api/v2/keys", json=key_body(f"conc-{n}"), headers=api.headers)
            for n in range(24)
        )
    )
    assert [r.status_code for r in responses] == [201] * 24
    ids = {r.json()["resources"][0]["id"] for r in responses}
    assert len(ids) == 24
    r = await api.request("HEAD", "/api/v2/keys")
    assert int(r.headers["Key-Total"]) == 24


async def test_the_comparison_really_takes_three_paths(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kyok.api.kp.create_fastpath as create_fastpath

    calls: list[str] = []
    real_serve, real_create = routes_keys.serve_create, routes_keys._create

    async def fast(*args: Any, **kwargs: Any) -> Any:
        calls.append("fast path")
        return await real_serve(*args, **kwargs)

    async def route(*args: Any, **kwargs: Any) -> Any:
        calls.append("route")
        return await real_serve(*args, **kwargs)

    def framework(*args: Any, **kwargs: Any) -> Any:
        calls.append("framework")
        return real_create(*args, **kwargs)

    framework_client = await _framework_only(api, monkeypatch)
    monkeypatch.setattr(create_fastpath, "serve_create", fast)
    monkeypatch.setattr(routes_keys, "serve_create", route)
    monkeypatch.setattr(routes_keys, "_create", framework)
    for client in (_route_only(api), _with_fast_path(api), framework_client):
        r = await client.post("/api/v2/keys", json=key_body("paths"), headers=api.headers)
        assert r.status_code == 201, r.text
    assert calls == ["route", "fast path", "framework"]
