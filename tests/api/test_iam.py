"""The IAM token endpoints over HTTP: the request shapes of keyprotect 3.x, 2.x and Go, IAM's
error shape, and the 3.x SDK's own IAMAuthenticator against a real server."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from . import conftest_auth
from .conftest_auth import APIKEY_GRANT, FORM, TOKEN_FIELDS, AuthApi, LiveServer

auth_api = conftest_auth.auth_api  # the fixtures this module uses
live_server = conftest_auth.live_server

pytestmark = pytest.mark.anyio

BASIC_BX = "Basic " + base64.b64encode(b"bx:bx").decode()


def iam_error(response: httpx.Response) -> dict[str, Any]:
    """IAM's error body, checked for its exact shape."""
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"errorCode", "errorMessage", "context"}, body
    assert set(body["context"]) == {"requestId"} and body["context"]["requestId"]
    return body


def check_grant(response: httpx.Response, api: AuthApi) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["token_type"] == "Bearer" and body["scope"] == "ibm openid"
    assert body["expires_in"] == 3600
    assert body["expiration"] == int(api.clock.now().timestamp()) + 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["instance"] == api.instance and type(claims["exp"]) is int
    return body


async def whoami(api: AuthApi, access_token: str, instance: str | None = None) -> httpx.Response:
    return await api.client.get(
        "/api/v2/kyok/whoami",
        headers={
            "Authorization": f"Bearer {access_token}",
            "Bluemix-Instance": instance or api.instance,
        },
    )


async def test_keyprotect_3x_request_shape(auth_api: AuthApi) -> None:
    """What ibm-cloud-sdk-core's IAMAuthenticator sends (reference §8.1, §9 step 0)."""
    body = (
        "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey"
        f"&apikey={auth_api.admin_key}&response_type=cloud_iam"
    )
    r = await auth_api.client.post(
        "/identity/token",
        content=body,
        headers={**FORM, "User-Agent": "ibm-python-sdk-core/iam-authenticator-3.28.0"},
    )
    grant = check_grant(r, auth_api)
    assert (await whoami(auth_api, grant["access_token"])).status_code == 200


async def test_keyprotect_2x_request_shape_and_refresh(auth_api: AuthApi) -> None:
    """redstone: /oidc/token, Basic bx:bx, uaa_* fields; then the refresh variant."""
    form = {
        "response_type": "cloud_iam",
        "uaa_client_id": "cf",
        "uaa_client_secret": "",
        "grant_type": APIKEY_GRANT,
        "apikey": auth_api.admin_key,
    }
    headers = {"Authorization": BASIC_BX, "Accept": "application/json"}
    r = await auth_api.client.post("/oidc/token", data=form, headers=headers)
    first = check_grant(r, auth_api)
    auth_api.clock.advance(10)
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    r = await auth_api.client.post("/oidc/token", data=refresh, headers=headers)
    second = check_grant(r, auth_api)
    assert second["refresh_token"] != first["refresh_token"]
    assert (await whoami(auth_api, second["access_token"])).status_code == 200
    r = await auth_api.client.post("/oidc/token", data=refresh, headers=headers)  # reused
    assert r.status_code == 400
    assert iam_error(r)["errorCode"] == "BXNIM0407E"


async def test_go_client_request_shape(auth_api: AuthApi) -> None:
    r = await auth_api.client.post(
        "/oidc/token", data={"grant_type": APIKEY_GRANT, "apikey": auth_api.admin_key}, headers=FORM
    )
    assert check_grant(r, auth_api)["token_type"] == "Bearer"


async def test_other_body_encodings_are_accepted(auth_api: AuthApi) -> None:
    fields = {"grant_type": APIKEY_GRANT, "apikey": auth_api.admin_key}
    r = await auth_api.client.post(
        "/identity/token", files={k: (None, v) for k, v in fields.items()}
    )
    check_grant(r, auth_api)
    r = await auth_api.client.post("/identity/token", content=json.dumps(fields))  # no type
    check_grant(r, auth_api)
    r = await auth_api.client.post(
        "/identity/token",
        content=f"grant_type={APIKEY_GRANT}&apikey={auth_api.admin_key}",
        headers={"Content-Type": "text/plain"},
    )
    check_grant(r, auth_api)


async def test_a_bad_api_key_is_400_with_iams_code(auth_api: AuthApi) -> None:
    secret_looking = auth_api.admin_key[:-2] + "xx"
    r = await auth_api.client.post(
        "/identity/token",
        data={"grant_type": APIKEY_GRANT, "apikey": secret_looking},
        headers={"X-Request-Id": "req-123"},
    )
    assert r.status_code == 400
    body = iam_error(r)
    assert body["errorCode"] == "BXNIM0415E"
    assert body["errorMessage"] == "Provided API key could not be found."
    assert body["context"]["requestId"] == "req-123"
    assert secret_looking not in r.text


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("", "BXNIM0109E"),
        ("apikey=abc", "BXNIM0109E"),
        (f"grant_type={APIKEY_GRANT}", "BXNIM0109E"),
        (f"grant_type={APIKEY_GRANT}&apikey=", "BXNIM0109E"),
        ("grant_type=refresh_token", "BXNIM0109E"),
        ("grant_type=password&username=a&password=b", "BXNIM0106E"),
        ("grant_type=client_credentials", "BXNIM0106E"),
        (f"grant_type={APIKEY_GRANT}&apikey=a&apikey=b", "BXNIM0106E"),
        ("grant_type=refresh_token&refresh_token=kyok_rt_nope", "BXNIM0407E"),
        ('{"grant_type": 5}', "BXNIM0109E"),
        ("[1, 2]", "BXNIM0109E"),
        ("{not json", "BXNIM0106E"),
        ('{"a":' + "[" * 7000 + "]" * 7000 + "}", "BXNIM0106E"),  # too deep
        ("grant_type=%ff%fe", "BXNIM0106E"),
        ("&".join(f"f{i}=v" for i in range(100)), "BXNIM0106E"),
    ],
)
async def test_malformed_requests_are_400(auth_api: AuthApi, content: str, code: str) -> None:
    r = await auth_api.client.post(
        "/identity/token",
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400, r.text
    assert iam_error(r)["errorCode"] == code


async def test_oversized_and_undecodable_bodies_are_400(auth_api: AuthApi) -> None:
    r = await auth_api.client.post("/identity/token", content=b"a=" + b"x" * 20000, headers=FORM)
    assert r.status_code == 400 and iam_error(r)["errorCode"] == "BXNIM0106E"
    r = await auth_api.client.post("/identity/token", content=b"\xff\xfe\x00", headers=FORM)
    assert r.status_code == 400
    r = await auth_api.client.post(
        "/identity/token",
        content=b"--b\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 400


async def test_random_bodies_never_cause_a_5xx(auth_api: AuthApi) -> None:
    rng = random.Random(1234)
    types = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "text/plain",
        "",
    ]
    alphabet = '=&%+{}[]":,grant_typeapikeyrefresh_token\x00\n é'
    for _ in range(150):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        for path in ("/identity/token", "/oidc/token"):
            r = await auth_api.client.post(
                path, content=body.encode(), headers={"Content-Type": rng.choice(types)}
            )
            assert r.status_code == 400, (body, r.text)
            iam_error(r)


async def test_a_sealed_instance_answers_503(auth_api: AuthApi) -> None:
    auth_api.harness.seal(auth_api.instance)
    r = await auth_api.client.post(
        "/identity/token", data={"grant_type": APIKEY_GRANT, "apikey": auth_api.admin_key}
    )
    assert r.status_code == 503
    body = iam_error(r)
    assert body["errorCode"] == "UNIT_SEALED_ERR" and "sealed" in body["errorMessage"]
    auth_api.harness.reopen(auth_api.instance)
    check_grant(
        await auth_api.client.post(
            "/identity/token", data={"grant_type": APIKEY_GRANT, "apikey": auth_api.admin_key}
        ),
        auth_api,
    )


async def test_only_post(auth_api: AuthApi) -> None:
    r = await auth_api.client.get("/identity/token", params={"apikey": auth_api.admin_key})
    assert r.status_code == 405


def test_keyprotect_3x_iam_authenticator_gets_a_token(live_server: LiveServer) -> None:
    """The real SDK (requests, over a real socket) fetches and decodes our token, then uses it
    through ``BaseService`` (what ``keyprotect.IbmKeyProtectApiV2`` is built on)."""
    from ibm_cloud_sdk_core import ApiException, BaseService  # type: ignore[import-untyped]
    from ibm_cloud_sdk_core.authenticators import (  # type: ignore[import-untyped]
        IAMAuthenticator,
    )

    authenticator = IAMAuthenticator(live_server.admin_key, url=live_server.url)
    token = authenticator.token_manager.get_token()
    manager = authenticator.token_manager
    assert manager.expire_time - manager.refresh_time == 720  # 20 % of 3600 s
    headers: dict[str, str] = {}
    authenticator.authenticate({"headers": headers})
    assert headers["Authorization"] == f"Bearer {token}"

    service = BaseService(service_url=live_server.url, authenticator=authenticator)
    request = service.prepare_request(
        "GET", "/api/v2/kyok/whoami", headers={"Bluemix-Instance": live_server.instance}
    )
    response = service.send(request)
    assert response.get_status_code() == 200
    assert response.get_result()["principal"]["name"] == "admin"

    bad = IAMAuthenticator("kyok_" + "A" * 43, url=live_server.url)
    with pytest.raises(ApiException) as info:
        bad.token_manager.get_token()
    assert info.value.status_code == 400


KEYPROTECT2 = Path(__file__).resolve().parents[2] / ".venv" / "keyprotect2"

_REDSTONE_SCRIPT = """
import json, sys
from redstone.auth import TokenManager
manager = TokenManager(api_key=sys.argv[1], iam_endpoint=sys.argv[2], use_refresh_token=True)
first = manager.get_token()
manager._token_info["expiration"] = 1  # make it look stale: the next call refreshes
second = manager.get_token()
print(json.dumps({"first": first, "second": second}))
"""


@pytest.mark.skipif(not KEYPROTECT2.is_dir(), reason="keyprotect 2.x is not installed aside")
def test_keyprotect_2x_token_manager_gets_and_refreshes_a_token(live_server: LiveServer) -> None:
    """redstone's own TokenManager (keyprotect 2.x), in a subprocess since it shares the
    ``keyprotect`` package name with 3.x: /oidc/token with the API key, then the refresh grant."""
    env = {**os.environ, "PYTHONPATH": str(KEYPROTECT2)}
    done = subprocess.run(
        [sys.executable, "-c", _REDSTONE_SCRIPT, live_server.admin_key, live_server.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    tokens = json.loads(done.stdout)
    assert tokens["first"] != tokens["second"]
    for token in tokens.values():
        ctx = live_server.harness.auth.authenticate(f"Bearer {token}", live_server.instance)
        assert ctx.instance_id == live_server.instance
