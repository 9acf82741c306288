"""Key actions over HTTP (reference §2.2, §4, §10): wrap/unwrap/rewrap semantics, rotate,
disable/enable, body leniency, the legacy ``?action=`` form."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from tests.api.conftest import ACTION_TYPE, Api, b64, error_of

from kyok.api.kp import models

pytestmark = pytest.mark.anyio

DEK = b"0123456789abcdef0123456789abcdef"


async def test_wrap_and_unwrap_round_trip_with_aad(api: Api) -> None:
    key = await api.create_key()
    r = await api.wrap(key["id"], {"plaintext": b64(DEK), "aad": ["a1", "a2"]})
    assert r.status_code == 200
    assert r.headers["content-type"] == ACTION_TYPE
    wrapped = r.json()
    models.WrapResponse.model_validate(wrapped)
    assert "plaintext" not in wrapped
    assert wrapped["keyVersion"] == {"id": key["keyVersion"]["id"]}
    body = {"ciphertext": wrapped["ciphertext"], "aad": ["a1", "a2"]}
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == ACTION_TYPE
    out = r.json()
    models.UnwrapResponse.model_validate(out)
    assert out == {"plaintext": b64(DEK), "keyVersion": {"id": key["keyVersion"]["id"]}}
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={**body, "aad": ["a1"]}
    )
    assert r.status_code == 422 and error_of(r)["code"] == "UNPROCESSABLE_CIPHERTEXT_ERR"


@pytest.mark.parametrize(
    "content", [None, b"", b"null", b"{}", b'{"plaintext": ""}', b'{"plaintext": null}']
)
async def test_wrap_without_plaintext_generates_a_32_byte_dek(
    api: Api, content: bytes | None
) -> None:
    key = await api.create_key()
    headers = {"Content-Type": ACTION_TYPE.replace("key_action", "key_action_wrap")}
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/wrap", content=content, headers=headers
    )
    assert r.status_code == 200, r.text
    out = r.json()
    dek = base64.b64decode(out["plaintext"])
    assert len(dek) == 32
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": out["ciphertext"]}
    )
    assert base64.b64decode(r.json()["plaintext"]) == dek


async def test_bad_base64_is_invalid_field_with_target(api: Api) -> None:
    key = await api.create_key()
    r = await api.wrap(key["id"], {"plaintext": "q+x3Qi.../BVb8bPj....vVD;"})
    assert r.status_code == 400
    reason = error_of(r)
    assert reason["code"] == "INVALID_FIELD_ERR"
    assert reason["target"] == {"type": "field", "name": "plaintext"}
    assert reason["errorMsg"] == (
        "Bad Request: Wrap with key could not be performed: Please see `reasons` for more details (INVALID_FIELD_ERR)"
    )
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": "@@@"}
    )
    reason = error_of(r)
    assert r.status_code == 400 and reason["target"] == {"type": "field", "name": "ciphertext"}
    assert reason["errorMsg"].startswith("Bad Request: Unwrap with key could not be performed")


@pytest.mark.parametrize("content", [None, b"", b"null", b"{}"])
async def test_unwrap_without_a_body_is_no_body_err(api: Api, content: bytes | None) -> None:
    key = await api.create_key()
    for action in ("unwrap", "rewrap"):
        r = await api.request("POST", f"/api/v2/keys/{key['id']}/actions/{action}", content=content)
        assert r.status_code == 400
        assert error_of(r)["code"] == "NO_BODY_ERR"


async def test_garbage_ciphertext_is_422_never_5xx(api: Api) -> None:
    key = await api.create_key()
    for ct in (b"x", b"\x01" * 80, b"\x00" * 5000):
        r = await api.request(
            "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": b64(ct)}
        )
        assert r.status_code == 422, r.text


async def test_unwrap_of_an_old_version_returns_the_rewrapped_ciphertext(api: Api) -> None:
    key = await api.create_key()
    old = (await api.wrap(key["id"], {"plaintext": b64(DEK)})).json()
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/actions/rotate", content=b"{}")
    assert r.status_code == 204 and r.content == b""
    new_version = (await api.request("GET", f"/api/v2/keys/{key['id']}/metadata")).json()[
        "resources"
    ][0]["keyVersion"]["id"]
    assert new_version != old["keyVersion"]["id"]
    out = (
        await api.request(
            "POST",
            f"/api/v2/keys/{key['id']}/actions/unwrap",
            json={"ciphertext": old["ciphertext"]},
        )
    ).json()
    assert out["plaintext"] == b64(DEK)
    assert out["keyVersion"] == old["keyVersion"]
    assert out["rewrappedKeyVersion"] == {"id": new_version}
    again = (
        await api.request(
            "POST",
            f"/api/v2/keys/{key['id']}/actions/unwrap",
            json={"ciphertext": out["ciphertext"]},
        )
    ).json()
    assert again == {"plaintext": b64(DEK), "keyVersion": {"id": new_version}}
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/rewrap", json={"ciphertext": old["ciphertext"]}
    )
    assert r.status_code == 200 and r.headers["content-type"] == ACTION_TYPE
    rewrapped = r.json()
    models.RewrapResponse.model_validate(rewrapped)
    assert rewrapped["keyVersion"] == old["keyVersion"] and rewrapped["rewrappedKeyVersion"] == {
        "id": new_version
    }


@pytest.mark.parametrize("content", [None, b"", b"null", b"{}"])
async def test_rotate_disable_enable_take_any_empty_body(api: Api, content: bytes | None) -> None:
    key = await api.create_key()
    url = f"/api/v2/keys/{key['id']}/actions"
    assert (
        await api.request(
            "POST", f"{url}/rotate", content=content, headers={"Prefer": "return=representation"}
        )
    ).status_code == 204
    assert (await api.request("POST", f"{url}/disable", content=content)).status_code == 204
    r = await api.wrap(key["id"])
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_ACTION_INVALID_STATE_ERR"
    r = await api.request("POST", f"{url}/enable", content=content)
    assert r.status_code == 409 and error_of(r)["code"] == "REQ_TOO_EARLY_ERR"
    api.clock.advance(31)
    assert (await api.request("POST", f"{url}/enable", content=content)).status_code == 204
    assert (await api.wrap(key["id"])).status_code == 200
    r = await api.request("POST", f"{url}/rotate")
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_ROTATION_NOT_PERMITTED"


async def test_rotate_an_imported_key_needs_a_payload(api: Api) -> None:
    key = await api.create_key("imported", payload=b64(b"k" * 32))
    url = f"/api/v2/keys/{key['id']}/actions/rotate"
    r = await api.request("POST", url)
    assert r.status_code == 400 and error_of(r)["code"] == "KEY_PAYLOAD_REQ_ERR"
    r = await api.request(
        "POST", url, json={"payload": b64(b"n" * 32), "type": "ignored", "name": "ignored"}
    )
    assert r.status_code == 204


async def test_standard_keys_cannot_wrap(api: Api) -> None:
    key = await api.create_key("std", extractable=True)
    r = await api.wrap(key["id"], {"plaintext": b64(DEK)})
    assert r.status_code == 400 and error_of(r)["code"] == "KEY_ROOT_REQ_ERR"


async def test_actions_on_a_destroyed_key_are_410(api: Api) -> None:
    key = await api.create_key()
    ct = (await api.wrap(key["id"])).json()["ciphertext"]
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": ct}
    )
    assert r.status_code == 410 and error_of(r)["code"] == "KEY_DELETED_ERR"


async def test_expired_key_unwraps_but_does_not_wrap(api: Api) -> None:
    key = await api.create_key(
        "expiring",
        expirationDate=(api.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    ct = (await api.wrap(key["id"], {"plaintext": b64(DEK)})).json()["ciphertext"]
    api.clock.advance(timedelta(hours=2))
    assert (await api.wrap(key["id"])).status_code == 409
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": ct}
    )
    assert r.status_code == 200
    meta = (await api.request("GET", f"/api/v2/keys/{key['id']}/metadata")).json()["resources"][0]
    assert meta["state"] == 3


async def test_alias_works_in_place_of_the_id(api: Api) -> None:
    key = await api.create_key(aliases=["payments-root"])
    r = await api.wrap("payments-root", {"plaintext": b64(DEK)})
    assert r.status_code == 200
    r = await api.request(
        "POST",
        "/api/v2/keys/payments-root/actions/unwrap",
        json={"ciphertext": r.json()["ciphertext"]},
    )
    assert r.json()["plaintext"] == b64(DEK)
    assert r.json()["keyVersion"]["id"] == key["keyVersion"]["id"]


# ----------------------------------------------------------------------- legacy form


async def test_legacy_action_form_does_the_same(api: Api) -> None:
    key = await api.create_key()
    headers = {"Content-Type": ACTION_TYPE}
    r = await api.request(
        "POST",
        f"/api/v2/keys/{key['id']}?action=wrap",
        content=json.dumps({"plaintext": b64(DEK)}),
        headers=headers,
    )
    assert r.status_code == 200 and r.headers["content-type"] == ACTION_TYPE
    ct = r.json()["ciphertext"]
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}?action=unwrap", json={"ciphertext": ct}
    )
    assert r.json()["plaintext"] == b64(DEK)
    r = await api.request(
        "POST", f"/api/v2/keys/{key['id']}?action=unwrap", json={"ciphertext": "%%"}
    )
    assert error_of(r)["errorMsg"].startswith("Bad Request: Unwrap with key could not be performed")
    assert (
        await api.request(
            "POST", f"/api/v2/keys/{key['id']}?action=rewrap", json={"ciphertext": ct}
        )
    ).status_code == 200
    assert (await api.request("POST", f"/api/v2/keys/{key['id']}?action=rotate")).status_code == 204
    assert (
        await api.request("POST", f"/api/v2/keys/{key['id']}?action=disable", content=b"null")
    ).status_code == 204
    api.clock.advance(31)
    assert (await api.request("POST", f"/api/v2/keys/{key['id']}?action=enable")).status_code == 204
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    api.clock.advance(31)
    r = await api.request("POST", f"/api/v2/keys/{key['id']}?action=restore")
    assert r.status_code == 201 and r.json()["resources"][0]["state"] == 1


@pytest.mark.parametrize("query", ["", "?action=", "?action=explode", "?action=SYNC"])
async def test_unknown_actions_are_404_in_the_envelope(api: Api, query: str) -> None:
    key = await api.create_key()
    r = await api.request("POST", f"/api/v2/keys/{key['id']}{query}")
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND_ERR"
    name = query.partition("=")[2] or "explode"
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/actions/{name}")
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND_ERR"
