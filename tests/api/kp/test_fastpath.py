"""The data-plane fast path answers exactly as the FastAPI routes do.

wrap/unwrap/rewrap in their canonical form (``/actions/<a>``, no query string) are served by
``kyok.api.kp.fastpath``. The same node is also served by an app without the fast path, where
the same request reaches the FastAPI route; both call the same functions, so every answer —
success or error: body, status, content type, envelope headers — must be the same.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyok.api.app import create_app
from kyok.auth.context import Grant
from kyok.auth.principals import SYSTEM
from kyok.auth.roles import Role
from kyok.kms.policies import validate_instance_policy

from ..conftest import Api, key_body

pytestmark = pytest.mark.anyio


async def _root_key(api: Api, name: str = "fast-key") -> str:
    r = await api.client.post("/api/v2/keys", json=key_body(name), headers=api.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["resources"][0]["id"])


def _comparable(r: httpx.Response) -> tuple[int, str, Any]:
    body: Any = r.json() if r.content else None
    if isinstance(body, dict):
        # wrap output is randomized (a fresh nonce, a generated DEK): compare its shape
        body = {
            k: (len(v) if k in ("ciphertext", "plaintext") and isinstance(v, str) else v)
            for k, v in body.items()
        }
    return r.status_code, r.headers.get("content-type", ""), body


def _framework_only(api: Api) -> httpx.AsyncClient:
    """A client on an app for the same node, with the fast path taken out."""
    from kyok.api.app import create_app
    from kyok.api.kp.fastpath import DataPlaneFastPath

    app = create_app(api.node)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DataPlaneFastPath]
    app.middleware_stack = None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def _both(
    api: Api,
    slow_client: httpx.AsyncClient,
    key: str,
    action: str,
    content: bytes | None,
    headers: dict[str, str],
) -> tuple[httpx.Response, httpx.Response]:
    path = f"/api/v2/keys/{key}/actions/{action}"
    fast = await api.client.post(path, content=content, headers=headers)
    slow = await slow_client.post(path, content=content, headers=headers)
    return fast, slow


async def test_same_answers_on_both_paths(api: Api) -> None:
    key = await _root_key(api)
    dek = base64.b64encode(b"k" * 32).decode()
    ct = (
        await api.client.post(
            f"/api/v2/keys/{key}/actions/wrap",
            json={"plaintext": dek, "aad": ["a"]},
            headers=api.headers,
        )
    ).json()["ciphertext"]
    reader = api.mint(Grant(Role.READER))
    nobody = api.mint()
    other_instance = {**api.headers, "Bluemix-Instance": "00000000-0000-4000-8000-000000000000"}
    no_instance = {k: v for k, v in api.headers.items() if k != "Bluemix-Instance"}
    no_token = {k: v for k, v in api.headers.items() if k != "Authorization"}
    cases: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("wrap", key, json.dumps({"plaintext": dek, "aad": ["a"]}).encode(), api.headers),
        ("wrap", key, None, api.headers),  # generated DEK
        ("wrap", key, b"null", api.headers),
        ("wrap", key, json.dumps({"PlainText": dek}).encode(), api.headers),  # any case
        ("wrap", key, json.dumps({"plaintext": "not base64!"}).encode(), api.headers),
        ("wrap", key, b"{not json", api.headers),
        ("unwrap", key, json.dumps({"ciphertext": ct, "aad": ["a"]}).encode(), api.headers),
        (
            "unwrap",
            key,
            json.dumps({"ciphertext": ct, "aad": ["b"]}).encode(),
            api.headers,
        ),  # wrong aad: 422
        ("unwrap", key, None, api.headers),  # NO_BODY_ERR
        ("rewrap", key, json.dumps({"ciphertext": ct, "aad": ["a"]}).encode(), api.headers),
        (
            "wrap",
            "00000000-0000-4000-8000-000000000001",
            json.dumps({"plaintext": dek}).encode(),
            api.headers,
        ),
        ("wrap", key, json.dumps({"plaintext": dek}).encode(), reader),  # Reader may wrap
        ("wrap", key, json.dumps({"plaintext": dek}).encode(), nobody),  # 403
        ("wrap", key, json.dumps({"plaintext": dek}).encode(), other_instance),  # 401
        ("wrap", key, json.dumps({"plaintext": dek}).encode(), no_instance),  # 400
        ("wrap", key, json.dumps({"plaintext": dek}).encode(), no_token),  # 401
        ("wrap", key, b"x" * (2 * 1024 * 1024), api.headers),  # 413
    ]
    slow_client = _framework_only(api)
    for action, target, content, headers in cases:
        fast, slow = await _both(api, slow_client, target, action, content, headers)
        assert _comparable(fast) == _comparable(slow), (
            action,
            target,
            content and content[:40],
            fast.text,
            slow.text,
        )
        assert fast.headers.get("correlation-id") and fast.headers.get("x-request-id")


async def test_the_fast_path_echoes_correlation_and_counts_in_metrics(api: Api) -> None:
    key = await _root_key(api, "metered")
    r = await api.client.post(
        f"/api/v2/keys/{key}/actions/wrap", headers={**api.headers, "Correlation-Id": "abc-123"}
    )
    assert r.status_code == 200 and r.headers["correlation-id"] == "abc-123"
    metrics = (await api.client.get("/metrics")).text
    assert 'route="/api/v2/keys/{id}/actions/wrap"' in metrics
    assert 'operation="wrap",outcome="success"' in metrics


async def test_other_requests_still_reach_the_framework(api: Api) -> None:
    key = await _root_key(api, "framework")
    r = await api.client.post(
        f"/api/v2/keys/{key}/actions/wrap", params={"x": "1"}, headers=api.headers
    )
    assert r.status_code == 200  # a query string goes through FastAPI (which ignores it)
    r = await api.client.get(f"/api/v2/keys/{key}/actions/wrap", headers=api.headers)
    assert r.status_code == 405


async def test_the_comparison_really_takes_two_paths(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kyok.api.kp.fastpath as fastpath

    seen: list[int] = []
    real = fastpath._headers

    def spy(scope: Any) -> dict[bytes, bytes]:
        seen.append(1)
        return real(scope)

    monkeypatch.setattr(fastpath, "_headers", spy)
    key = await _root_key(api, "two-paths")
    await api.client.post(f"/api/v2/keys/{key}/actions/wrap", headers=api.headers)
    assert seen == [1]
    await _framework_only(api).post(f"/api/v2/keys/{key}/actions/wrap", headers=api.headers)
    assert seen == [1]


async def test_network_policies_answer_alike_on_both_paths(api: Api) -> None:
    """allowedIP (401) and allowedNetwork private-only (403) are enforced by the fast path as by
    the ``Caller`` dependency, with the same answers."""
    key = await _root_key(api, "policed")
    body = json.dumps({"plaintext": base64.b64encode(b"p" * 32).decode()}).encode()
    slow_client = _framework_only(api)
    service = api.node.service
    for policy, status in (
        (validate_instance_policy("allowedIP", True, {"allowed_ip": ["10.0.0.0/8"]}), 401),
        (validate_instance_policy("allowedIP", True, {"allowed_ip": ["127.0.0.1/32"]}), 200),
    ):
        service.set_instance_policies(SYSTEM, api.instance, [policy])
        for action in ("wrap", "unwrap", "rewrap"):
            content = body if action == "wrap" else None
            fast, slow = await _both(api, slow_client, key, action, content, api.headers)
            assert _comparable(fast) == _comparable(slow), (action, fast.text, slow.text)
            if status == 401:
                assert fast.status_code == 401, fast.text
    # private-only from a public peer
    service.set_instance_policies(
        SYSTEM,
        api.instance,
        [
            validate_instance_policy("allowedIP", False, None),
            validate_instance_policy("allowedNetwork", True, {"allowed_network": "private-only"}),
        ],
    )
    public = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(api.node), client=("198.51.100.1", 9)),
        base_url="http://testserver",
    )
    r = await public.post(f"/api/v2/keys/{key}/actions/wrap", content=body, headers=api.headers)
    assert r.status_code == 403
    assert r.json()["resources"][0]["reasons"][0]["code"] == "CONFIG_RULE_CONFLICT_ERR"
    ok = await api.client.post(
        f"/api/v2/keys/{key}/actions/wrap", content=body, headers=api.headers
    )
    assert ok.status_code == 200  # loopback is private


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(st.dictionaries(_TEXT, st.one_of(_TEXT, st.dictionaries(_TEXT, _TEXT, max_size=3))))
def test_results_render_as_jsonresponse_renders_them(body: dict[str, Any]) -> None:
    """The data plane renders its results with orjson; the bytes are JSONResponse's."""
    import orjson
    from starlette.responses import JSONResponse

    assert orjson.dumps(body) == JSONResponse(body).body
