"""The error envelope and the request envelope (reference §1.2, §1.6, §6, §10): golden bodies,
status codes, correlation ids, no 5xx for client mistakes, no detail in a 500."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import Query
from tests.api.conftest import Api, error_of, key_body, make_node

from kyok.api.app import create_app
from kyok.api.responses import ErrorCollection
from kyok.auth.context import Grant
from kyok.auth.errors import MissingInstance
from kyok.auth.principals import SYSTEM
from kyok.auth.roles import Role
from kyok.clock import FakeClock

pytestmark = pytest.mark.anyio

ERROR_META = {"collectionType": "application/vnd.ibm.kms.error+json", "collectionTotal": 1}
MORE = "https://cloud.ibm.com/apidocs/key-protect"


async def test_missing_instance_header_is_400_golden(api: Api) -> None:
    missing = MissingInstance()  # the auth service's error: its code and message are auth's
    r = await api.request("GET", "/api/v2/keys", headers={"Bluemix-Instance": ""})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "metadata": ERROR_META,
        "resources": [
            {
                "errorMsg": "Bad Request: Collection of keys could not be retrieved: Please see "
                f"`reasons` for more details ({missing.code})",
                "reasons": [
                    {
                        "code": missing.code,
                        "message": missing.message,
                        "status": 400,
                        "moreInfo": MORE,
                        "target": {"type": "header", "name": "Bluemix-Instance"},
                    }
                ],
            }
        ],
    }


async def test_missing_or_bad_token_is_401_golden(api: Api) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic Yng6Yng="},
    ):
        r = await api.request("POST", "/api/v2/keys", json=key_body(), headers=headers)
        assert r.status_code == 401
        assert r.json() == {
            "metadata": ERROR_META,
            "resources": [
                {
                    "errorMsg": "Unauthorized: Key could not be created: Please see `reasons` for more details (UNAUTHORIZED_ERR)",
                    "reasons": [
                        {
                            "code": "UNAUTHORIZED_ERR",
                            "message": "Unauthorized: the access token is not valid",
                            "status": 401,
                            "moreInfo": MORE,
                        }
                    ],
                }
            ],
        }


async def test_forbidden_is_403_golden(api: Api) -> None:
    reader = api.mint(Grant(Role.READER))
    r = await api.request("POST", "/api/v2/keys", json=key_body(), headers=reader)
    assert r.status_code == 403
    assert r.json() == {
        "metadata": ERROR_META,
        "resources": [
            {
                "errorMsg": "Forbidden: Key could not be created: Please see `reasons` for more details (FORBIDDEN_ERR)",
                "reasons": [
                    {
                        "code": "FORBIDDEN_ERR",
                        "message": "Forbidden: the caller lacks kms.secrets.create on this resource",
                        "status": 403,
                        "moreInfo": MORE,
                    }
                ],
            }
        ],
    }


async def test_unknown_route_and_method_are_in_the_envelope(api: Api) -> None:
    r = await api.request("GET", "/api/v2/kmip_adapters")
    assert r.status_code == 404
    assert r.json()["resources"][0] == {
        "errorMsg": "Not Found: Request could not be processed: Please see `reasons` for more details (NOT_FOUND_ERR)",
        "reasons": [
            {
                "code": "NOT_FOUND_ERR",
                "message": "The requested resource does not exist",
                "status": 404,
                "moreInfo": MORE,
            }
        ],
    }
    for path in (
        "/api/v2/keys/abc/policies",
        "/api/v2/instance/policies",
        "/api/v2/instance/allowed_ip_port",
        "/api/v2/kmip_adapters",
        "/nothing",
    ):
        r = await api.request("POST", path, json={})
        assert r.status_code in (404, 405), path
        ErrorCollection.model_validate(r.json())
    r = await api.request("PUT", "/api/v2/keys")
    assert r.status_code == 405 and r.headers["allow"]
    assert error_of(r)["code"] == "METHOD_NOT_ALLOWED_ERR"


async def test_correlation_id_is_echoed_on_every_response(api: Api) -> None:
    cid = str(uuid.uuid4())
    for headers in ({"Correlation-Id": cid}, {"X-Correlation-ID": cid}, {"correlation-id": cid}):
        for method, path in (
            ("GET", "/api/v2/keys"),
            ("GET", "/api/v2/keys/missing-key"),
            ("GET", "/nope"),
            ("GET", "/health"),
        ):
            r = await api.request(method, path, headers=headers)
            assert r.headers["correlation-id"] == cid, (method, path)
    r = await api.request("GET", "/api/v2/keys")
    assert uuid.UUID(r.headers["correlation-id"])  # made up when the caller sent none
    r = await api.request("GET", "/api/v2/keys", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.request("GET", "/api/v2/keys", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


async def test_unexpected_errors_are_500_without_detail(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection string postgresql://user:hunter2@db")

    monkeypatch.setattr(api.node.service, "list_keys", broken)
    with caplog.at_level(logging.ERROR, logger="kyok.api"):
        r = await api.request("GET", "/api/v2/keys", headers={"X-Request-Id": "req-500"})
    assert r.status_code == 500
    reason = error_of(r)
    assert reason["code"] == "INTERNAL_SERVER_ERR"
    assert reason["message"] == "The server could not complete the request (request id req-500)"
    assert "hunter2" not in r.text
    assert any("req-500" in rec.getMessage() for rec in caplog.records)


async def test_internal_kyok_errors_hide_their_message(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kyok.errors import InternalError

    def broken(*args: object, **kwargs: object) -> None:
        raise InternalError("the material of the key's newest version is missing")

    monkeypatch.setattr(api.node.service, "get_key", broken)
    r = await api.request("GET", "/api/v2/keys/some-key")
    assert r.status_code == 500 and "material" not in r.text


async def test_a_sealed_unit_is_503_with_a_message(api: Api) -> None:
    key = await api.create_key()
    api.node.units.for_instance(api.instance).seal()
    r = await api.wrap(key["id"])
    assert r.status_code == 503
    assert error_of(r)["code"] == "UNIT_SEALED_ERR"


async def test_body_too_large_is_413(tmp_path: Path) -> None:
    node = make_node(tmp_path, FakeClock(), max_body_bytes=2048)
    try:
        instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
        token = node.auth.bootstrap_admin(instance)
        app = create_app(node)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": instance}
            r = await c.post("/api/v2/keys", content=b"x" * 4096, headers=headers)
            assert r.status_code == 413
            assert error_of(r)["code"] == "BODY_TOO_LARGE_ERR"

            async def chunks():  # no Content-Length: the stream is cut off anyway
                for _ in range(4):
                    yield b"y" * 1024

            r = await c.post("/api/v2/keys", content=chunks(), headers=headers)
            assert r.status_code == 413
    finally:
        node.close()


async def test_framework_validation_errors_become_400_envelopes(api: Api) -> None:
    app = create_app(api.node)

    @app.get("/api/v2/test-only")
    def typed(n: int = Query()) -> dict[str, int]:
        return {"n": n}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/api/v2/test-only?n=abc")
    assert r.status_code == 400
    reason = error_of(r)
    assert reason["code"] == "INVALID_QUERY_PARAM_ERR"
    assert reason["target"] == {"type": "parameter", "name": "n"}


async def test_another_instances_key_is_not_found_and_leaks_nothing(api: Api) -> None:
    other = api.node.service.create_instance(SYSTEM, "other", seal="dev").id
    theirs = await api.create_key(
        "their-key", aliases=["their-alias"], headers=api.mint(Grant(Role.MANAGER), instance=other)
    )
    unknown = str(uuid.uuid4())
    for suffix in ("", "/metadata", "/versions"):
        r1 = await api.request("GET", f"/api/v2/keys/{theirs['id']}{suffix}")
        r2 = await api.request("GET", f"/api/v2/keys/{unknown}{suffix}")
        assert r1.status_code == r2.status_code == 404
        assert r1.json() == r2.json()
    r = await api.request("POST", "/api/v2/keys/their-alias/actions/wrap")
    assert r.status_code == 404
    r = await api.request("DELETE", f"/api/v2/keys/{theirs['id']}")
    assert r.status_code == 404
    # a token of one instance does not work for another
    r = await api.request("GET", "/api/v2/keys", headers={"Bluemix-Instance": other})
    assert r.status_code == 401
    listed = (await api.request("GET", "/api/v2/keys", params={"state": "0,1,2,3,5"})).json()
    assert theirs["id"] not in {k["id"] for k in listed["resources"]}


async def test_no_5xx_for_hostile_input(api: Api) -> None:
    key = await api.create_key()
    bodies = [b"\x00", b"[]", b"1e999999", b'{"plaintext": 5}', b'{"aad": "x"}', b'{"aad": [1]}',
              b'{"plaintext": "' + b"A" * 20000 + b'"}', b"[" * 5000 + b"]" * 5000, b'{"a": NaN}',
              b'{"Plaintext": "AA==", "plaintext": "AA=="}']  # fmt: skip
    for body in bodies:
        for action in ("wrap", "unwrap", "rewrap", "rotate"):
            r = await api.request(
                "POST", f"/api/v2/keys/{key['id']}/actions/{action}", content=body
            )
            assert r.status_code < 500, (action, body[:20], r.text)
    for path in ("/api/v2/keys?limit=-1", "/api/v2/keys?offset=99999999999", "/api/v2/keys?sort=name",
                 "/api/v2/keys?filter=creationDate%3Dlt%3Ayesterday", "/api/v2/keys?search=" + "x" * 300,
                 "/api/v2/key_rings?limit=0", "/api/v2/key_rings?totalCount=1"):  # fmt: skip
        r = await api.request("GET", path)
        assert r.status_code == 400, path
    for ring in ("UPPER", "-bad", "a", "x" * 200, "default"):
        r = await api.request("POST", f"/api/v2/key_rings/{ring}")
        assert r.status_code == 400, ring
