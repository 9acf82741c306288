"""The import token over HTTP (reference §2.5): create, retrieve, counters, expiry, bounds.

Tokens use RSA-2048 here (``server.import_token_rsa_bits``; Key Protect's 4096 is the default)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.api.conftest import Api, error_of, key_body

from kyok.api.kp import models
from kyok.auth.context import Grant
from kyok.auth.roles import Role
from kyok.client import byok

pytestmark = pytest.mark.anyio

TOKEN = "/api/v2/import_token"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_create_then_retrieve_counts_down_and_runs_out(api: Api) -> None:
    r = await api.request("POST", TOKEN, json={"expiration": 900, "maxAllowedRetrievals": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    made = r.json()
    models.ImportToken.model_validate(made)
    assert made["expiration"] == 900
    assert made["maxAllowedRetrievals"] == 2 and made["remainingRetrievals"] == 2
    assert _time(made["expirationDate"]) - _time(made["creationDate"]) == timedelta(seconds=900)
    assert _time(made["creationDate"]) == api.clock.now().replace(microsecond=0)
    assert "payload" not in made and "nonce" not in made  # only a retrieval hands them out

    first = await api.request("GET", TOKEN)
    assert first.status_code == 200
    got = first.json()
    models.ImportTokenRetrieved.model_validate(got)
    assert got["id"] == made["id"] and got["remainingRetrievals"] == 1
    pem = base64.b64decode(got["payload"])
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert len(byok.decode_token_nonce(got["nonce"])) == 12
    assert byok.decode_hybrid_public_key(got["kyokHybridPublicKey"])  # kyok's extension

    second = (await api.request("GET", TOKEN)).json()
    assert second["remainingRetrievals"] == 0
    assert (second["payload"], second["nonce"]) == (got["payload"], got["nonce"])  # same token

    r = await api.request("GET", TOKEN)
    assert r.status_code == 409
    reason = error_of(r)
    assert reason["code"] == "IMPORT_TOKEN_EXPIRED_ERR"
    assert reason["errorMsg"].startswith("Conflict: Import Token could not be retrieved")


async def test_defaults_and_lenient_bodies(api: Api) -> None:
    # no body at all: 600 seconds, one retrieval
    r = await api.request("POST", TOKEN)
    assert r.status_code == 200
    assert (r.json()["expiration"], r.json()["maxAllowedRetrievals"]) == (600, 1)
    # py3 may send floats; any content type (or none) is JSON; names in any case
    r = await api.request(
        "POST",
        TOKEN,
        content=b'{"Expiration": 300.0, "maxallowedretrievals": 3}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200
    assert (r.json()["expiration"], r.json()["maxAllowedRetrievals"]) == (300, 3)
    for empty in (b"null", b"{}"):
        assert (await api.request("POST", TOKEN, content=empty)).status_code == 200


async def test_a_new_token_replaces_the_old_one(api: Api) -> None:
    first = (await api.request("POST", TOKEN, json={"maxAllowedRetrievals": 5})).json()
    old = (await api.request("GET", TOKEN)).json()
    second = (await api.request("POST", TOKEN)).json()
    assert second["id"] != first["id"]
    new = (await api.request("GET", TOKEN)).json()
    assert new["id"] == second["id"] and new["nonce"] != old["nonce"]
    assert new["payload"] != old["payload"]
    # material sealed to the replaced token no longer imports
    fields = byok.seal_for_import(
        bytes(32),
        byok.decode_token_nonce(old["nonce"]),
        public_key_pem=byok.decode_token_payload(old["payload"]),
    )
    r = await api.request("POST", "/api/v2/keys", json=key_body("stale", **fields.as_resource()))
    assert r.status_code == 400 and error_of(r)["code"] == "INVALID_FIELD_ERR"


async def test_expiry_follows_the_clock(api: Api) -> None:
    assert (await api.request("POST", TOKEN, json={"expiration": 300})).status_code == 200
    api.clock.advance(timedelta(seconds=299))
    assert (await api.request("GET", TOKEN)).status_code == 200
    api.clock.advance(timedelta(seconds=300))  # exactly at expirationDate: expired
    r = await api.request("GET", TOKEN)
    assert r.status_code == 409 and error_of(r)["code"] == "IMPORT_TOKEN_EXPIRED_ERR"
    # the scheduler's job removes it; then there is no token at all (still 409)
    assert api.node.import_tokens.expire_due() == 1
    r = await api.request("GET", TOKEN)
    assert r.status_code == 409 and "create one first" in error_of(r)["message"]


async def test_no_token_yet_is_409(api: Api) -> None:
    r = await api.request("GET", TOKEN)
    assert r.status_code == 409 and error_of(r)["code"] == "IMPORT_TOKEN_EXPIRED_ERR"


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"expiration": 299}, "expiration"),
        ({"expiration": 86401}, "expiration"),
        ({"expiration": "600"}, "expiration"),
        ({"expiration": 600.5}, "expiration"),
        ({"expiration": True}, "expiration"),
        ({"maxAllowedRetrievals": 0}, "maxAllowedRetrievals"),
        ({"maxAllowedRetrievals": 501}, "maxAllowedRetrievals"),
        ({"maxAllowedRetrievals": False}, "maxAllowedRetrievals"),
    ],
)
async def test_bounds_are_400_naming_the_field(api: Api, body: Any, target: str) -> None:
    r = await api.request("POST", TOKEN, json=body)
    assert r.status_code == 400
    reason = error_of(r)
    assert reason["code"] == "INVALID_FIELD_ERR"
    assert reason["target"] == {"type": "field", "name": target}
    assert (await api.request("GET", TOKEN)).status_code == 409  # nothing was made


async def test_malformed_bodies_are_400(api: Api) -> None:
    for content in (b"[1]", b"{bad json", b'"text"'):
        r = await api.request("POST", TOKEN, content=content)
        assert r.status_code == 400 and error_of(r)["code"] == "BAD_BODY_ERR", content


async def test_writers_only(api: Api) -> None:
    for role, allowed in ((Role.READER, False), (Role.READER_PLUS, False), (Role.WRITER, True)):
        headers = api.mint(Grant(role), principal=f"p-{role}")
        post = await api.request("POST", TOKEN, headers=headers)
        get = await api.request("GET", TOKEN, headers=headers)
        if allowed:
            assert (post.status_code, get.status_code) == (200, 200)
        else:
            assert (post.status_code, get.status_code) == (403, 403)
            assert error_of(post)["code"] == "FORBIDDEN_ERR"
