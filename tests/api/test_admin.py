"""kyok's /api/v2/kyok access-management endpoints over HTTP (docs/api-kyok.md)."""

from __future__ import annotations

import json
import random
import re
import uuid
from typing import Any

import pytest

from . import conftest_auth
from .conftest_auth import AuthApi, kp_error

pytestmark = pytest.mark.anyio
auth_api = conftest_auth.auth_api  # the fixture this module uses

K = "/api/v2/kyok"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def check_principal(p: dict[str, Any]) -> None:
    assert set(p) == {"id", "name", "kind", "createdAt", "createdBy"}
    assert RFC3339.fullmatch(p["createdAt"])


def check_key(k: dict[str, Any], *, with_secret: bool = False) -> None:
    expected = {"id", "name", "principalId", "createdAt", "createdBy"}
    assert set(k) == (expected | {"apikey"} if with_secret else expected)
    assert RFC3339.fullmatch(k["createdAt"])


def check_binding(b: dict[str, Any]) -> None:
    assert set(b) == {"id", "principalId", "role", "scope", "createdAt", "createdBy"}
    assert RFC3339.fullmatch(b["createdAt"])


async def test_whoami(auth_api: AuthApi) -> None:
    r = await auth_api.client.get(f"{K}/whoami", headers=await auth_api.headers())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"principal", "instanceId", "roles"}
    check_principal(body["principal"])
    assert body["principal"]["name"] == "admin" and body["principal"]["kind"] == "user"
    assert body["instanceId"] == auth_api.instance
    for b in body["roles"]:
        check_binding(b)
    assert sorted(b["role"] for b in body["roles"]) == ["KeyPurge", "KyokInstanceAdmin", "Manager"]
    assert {b["scope"] for b in body["roles"]} == {"instance"}


async def test_principals_api_keys_and_roles_end_to_end(auth_api: AuthApi) -> None:
    c, admin = auth_api.client, await auth_api.headers()
    # a principal, with a lenient body: any content type, any field-name case
    r = await c.post(
        f"{K}/principals",
        content=json.dumps({"NAME": "payments-service", "Kind": "service"}),
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert r.status_code == 201, r.text
    principal = r.json()
    check_principal(principal)
    assert principal["kind"] == "service" and principal["name"] == "payments-service"
    pid = principal["id"]
    r = await c.get(f"{K}/principals/{pid}", headers=admin)
    assert r.status_code == 200 and r.json() == principal
    r = await c.get(f"{K}/principals", headers=admin)
    assert sorted(p["name"] for p in r.json()["principals"]) == ["admin", "payments-service"]

    # an API key, shown once
    r = await c.post(f"{K}/principals/{pid}/apikeys", json={"name": "prod"}, headers=admin)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    key = r.json()
    check_key(key, with_secret=True)
    secret = key.pop("apikey")
    assert key["principalId"] == pid
    r = await c.get(f"{K}/principals/{pid}/apikeys", headers=admin)
    listed = r.json()["apikeys"]
    assert listed == [key] and secret not in r.text
    check_key(listed[0])

    # a role on a key ring; the new principal's token carries it
    r = await c.post(
        f"{K}/principals/{pid}/roles",
        json={"role": "Writer", "scope": "key_ring:payments"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    binding = r.json()
    check_binding(binding)
    assert binding["role"] == "Writer" and binding["scope"] == "key_ring:payments"
    svc = await auth_api.headers(secret)
    r = await c.get(f"{K}/whoami", headers=svc)
    assert r.json()["roles"] == [binding]
    r = await c.get(f"{K}/principals/{pid}/roles", headers=admin)
    assert r.json() == {"roles": [binding]}
    # the service may not manage principals
    r = await c.get(f"{K}/principals", headers=svc)
    assert r.status_code == 403 and kp_error(r)["code"] == "FORBIDDEN_ERR"

    # revoke, delete the key, delete the principal
    r = await c.delete(f"{K}/roles/{binding['id']}", headers=admin)
    assert r.status_code == 204 and r.content == b""
    r = await c.get(f"{K}/whoami", headers=svc)
    assert r.json()["roles"] == []
    r = await c.delete(f"{K}/apikeys/{key['id']}", headers=admin)
    assert r.status_code == 204
    r = await c.post(
        "/identity/token", data={"grant_type": conftest_auth.APIKEY_GRANT, "apikey": secret}
    )
    assert r.status_code == 400
    r = await c.delete(f"{K}/principals/{pid}", headers=admin)
    assert r.status_code == 204
    r = await c.get(f"{K}/whoami", headers=svc)
    assert r.status_code == 401
    r = await c.get(f"{K}/principals/{pid}", headers=admin)
    assert r.status_code == 404 and kp_error(r)["code"] == "PRINCIPAL_NOT_FOUND_ERR"


async def test_the_last_admin_binding_is_409(auth_api: AuthApi) -> None:
    c, admin = auth_api.client, await auth_api.headers()
    me = (await c.get(f"{K}/whoami", headers=admin)).json()
    (admin_binding,) = [b for b in me["roles"] if b["role"] == "KyokInstanceAdmin"]
    r = await c.delete(f"{K}/roles/{admin_binding['id']}", headers=admin)
    assert r.status_code == 409 and kp_error(r)["code"] == "LAST_ADMIN_ERR"
    r = await c.delete(f"{K}/principals/{me['principal']['id']}", headers=admin)
    assert r.status_code == 409


async def test_authentication_failures_are_401(auth_api: AuthApi) -> None:
    c = auth_api.client
    good = await auth_api.headers()
    cases: list[dict[str, str]] = [
        {"Bluemix-Instance": auth_api.instance},
        {**good, "Authorization": "Basic Yng6Yng="},
        {**good, "Authorization": good["Authorization"][:-3] + "AAA"},
        {**good, "Authorization": "Bearer not.a.jwt"},
    ]
    for headers in cases:
        r = await c.get(f"{K}/whoami", headers=headers)
        assert r.status_code == 401, headers
        assert kp_error(r)["code"] == "UNAUTHORIZED_ERR"
    auth_api.clock.advance(3600 + 31)
    r = await c.get(f"{K}/whoami", headers=good)
    assert r.status_code == 401 and "expired" in kp_error(r)["message"]


async def test_another_instances_token_is_401_and_its_principals_404(auth_api: AuthApi) -> None:
    c, admin = auth_api.client, await auth_api.headers()
    other = auth_api.harness.new_instance("B")
    other_key = auth_api.harness.admin_key(other)
    other_token = (await auth_api.token(other_key))["access_token"]
    r = await c.get(
        f"{K}/whoami",
        headers={"Authorization": f"Bearer {other_token}", "Bluemix-Instance": auth_api.instance},
    )
    assert r.status_code == 401
    theirs = (
        await c.get(
            f"{K}/whoami",
            headers={"Authorization": f"Bearer {other_token}", "Bluemix-Instance": other},
        )
    ).json()["principal"]["id"]
    for method, path in [
        ("GET", f"{K}/principals/{theirs}"),
        ("DELETE", f"{K}/principals/{theirs}"),
        ("GET", f"{K}/principals/{theirs}/apikeys"),
        ("GET", f"{K}/principals/{theirs}/roles"),
        ("DELETE", f"{K}/apikeys/{uuid.uuid4()}"),
        ("DELETE", f"{K}/roles/{uuid.uuid4()}"),
        ("GET", f"{K}/principals/{'x' * 500}"),
    ]:
        r = await c.request(method, path, headers=admin)
        assert r.status_code == 404, (method, path, r.text)


async def test_sealed_instance_is_503(auth_api: AuthApi) -> None:
    admin = await auth_api.headers()
    auth_api.harness.seal(auth_api.instance)
    r = await auth_api.client.get(f"{K}/whoami", headers=admin)
    assert r.status_code == 503 and kp_error(r)["code"] == "UNIT_SEALED_ERR"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("principals", b"", 400, "BAD_BODY_ERR"),
        ("principals", b"null", 400, "BAD_BODY_ERR"),
        ("principals", b"{not json", 400, "BAD_BODY_ERR"),
        ("principals", b"[]", 400, "BAD_BODY_ERR"),
        ("principals", b'"text"', 400, "BAD_BODY_ERR"),
        ("principals", b'{"name": "x", "kind": "user"}', 400, "INVALID_FIELD_ERR"),
        ("principals", b'{"name": "ok name", "kind": "robot"}', 400, "INVALID_FIELD_ERR"),
        ("principals", b'{"name": 12, "kind": "user"}', 400, "INVALID_FIELD_ERR"),
        ("principals", b'{"name": "ok", "Name": "dup", "kind": "user"}', 400, "BAD_BODY_ERR"),
        ("principals", b'{"name": "admin", "kind": "user"}', 409, "PRINCIPAL_EXISTS_ERR"),
        ("principals", b"\xff\xfe", 400, "BAD_BODY_ERR"),
        ("principals", b"[" * 30000 + b"]" * 30000, 400, "BAD_BODY_ERR"),
        ("principals", b'{"name": "' + b"x" * 70000 + b'"}', 413, "BODY_TOO_LARGE_ERR"),
        ("ME/apikeys", b"{}", 400, "BAD_BODY_ERR"),
        ("ME/apikeys", b'{"name": ""}', 400, "INVALID_FIELD_ERR"),
        ("ME/apikeys", b'{"name": ["a"]}', 400, "INVALID_FIELD_ERR"),
        ("ME/roles", b'{"role": "Reader"}', 400, "BAD_BODY_ERR"),
        ("ME/roles", b'{"role": "God", "scope": "instance"}', 400, "INVALID_FIELD_ERR"),
        ("ME/roles", b'{"role": "Reader", "scope": "galaxy"}', 400, "INVALID_FIELD_ERR"),
        ("ME/roles", b'{"role": "Reader", "scope": "key:nope"}', 400, "INVALID_FIELD_ERR"),
        ("ME/roles", b'{"role": "Manager", "scope": "instance"}', 409, "ROLE_BINDING_EXISTS_ERR"),
        (
            "nobody/roles",
            b'{"role": "Reader", "scope": "instance"}',
            404,
            "PRINCIPAL_NOT_FOUND_ERR",
        ),
    ],
)
async def test_bad_requests(
    auth_api: AuthApi, path: str, body: bytes, status: int, code: str
) -> None:
    admin = await auth_api.headers()
    me = (await auth_api.client.get(f"{K}/whoami", headers=admin)).json()["principal"]["id"]
    url = f"{K}/principals" if path == "principals" else f"{K}/principals/{path.replace('ME', me)}"
    r = await auth_api.client.post(url, content=body, headers=admin)
    assert r.status_code == status, r.text
    assert kp_error(r)["code"] == code


async def test_random_bodies_never_cause_a_5xx(auth_api: AuthApi) -> None:
    admin = await auth_api.headers()
    me = (await auth_api.client.get(f"{K}/whoami", headers=admin)).json()["principal"]["id"]
    rng = random.Random(99)
    values: list[Any] = [None, "", "x", "ok name", 1, -1, 1.5, True, [], {}, "Reader", "instance"]
    values += ["key_ring:abc", "key:" + str(uuid.uuid4()), "user", "service", "é" * 70, "\x00ab"]
    fields = ["name", "kind", "role", "scope", "NAME", "Role", "other"]
    urls = [f"{K}/principals", f"{K}/principals/{me}/apikeys", f"{K}/principals/{me}/roles"]
    for _ in range(120):
        body = {rng.choice(fields): rng.choice(values) for _ in range(rng.randint(0, 4))}
        r = await auth_api.client.post(rng.choice(urls), json=body, headers=admin)
        assert r.status_code in (201, 400, 409), (body, r.text)


async def test_responses_never_contain_tokens(auth_api: AuthApi) -> None:
    admin = await auth_api.headers()
    token = admin["Authorization"].removeprefix("Bearer ")
    for method, path in [("GET", f"{K}/whoami"), ("GET", f"{K}/principals")]:
        r = await auth_api.client.request(method, path, headers=admin)
        assert token not in r.text and auth_api.admin_key not in r.text
    r = await auth_api.client.get(
        f"{K}/whoami", headers={**admin, "Authorization": f"Bearer {token}x"}
    )
    assert r.status_code == 401 and token not in r.text
