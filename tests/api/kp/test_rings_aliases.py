"""Key rings and aliases over HTTP (reference §2.6, §2.7)."""

from __future__ import annotations

import pytest
from tests.api.conftest import Api, error_of

from kyok.api.kp import models

pytestmark = pytest.mark.anyio


async def test_key_ring_life_cycle(api: Api) -> None:
    r = await api.request("POST", "/api/v2/key_rings/ring-1")
    assert r.status_code == 201 and r.content == b""  # Go passes a nil target: no body
    r = await api.request("POST", "/api/v2/key_rings/ring-1")
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_RING_EXISTS_ERR"
    r = await api.request(
        "GET", "/api/v2/key_rings", params={"totalCount": "true", "limit": "1", "offset": "1"}
    )
    assert r.status_code == 200
    body = r.json()
    models.KeyRingCollection.model_validate(body)
    assert body["metadata"] == {
        "collectionType": "application/vnd.ibm.kms.key_ring+json",
        "collectionTotal": 1,
        "totalCount": 2,
    }
    assert body["resources"][0]["id"] == "ring-1" and body["resources"][0]["createdBy"] == "admin"
    key = await api.create_key("in-ring", headers={"X-Kms-Key-Ring": "ring-1"})
    r = await api.request("DELETE", "/api/v2/key_rings/ring-1")
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_RING_NOT_EMPTY_ERR"
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    r = await api.request("DELETE", "/api/v2/key_rings/ring-1")
    assert r.status_code == 409
    r = await api.request("DELETE", "/api/v2/key_rings/ring-1?force=true")
    assert r.status_code == 204 and r.content == b""
    meta = (await api.request("GET", f"/api/v2/keys/{key['id']}/metadata")).json()["resources"][0]
    assert meta["keyRingID"] == "default"
    r = await api.request("DELETE", "/api/v2/key_rings/ring-1")
    assert r.status_code == 404 and error_of(r)["code"] == "KEY_RING_NOT_FOUND_ERR"
    assert error_of(r)["target"] == {"type": "parameter", "name": "key_ring_id"}
    r = await api.request("DELETE", "/api/v2/key_rings/default")
    assert r.status_code == 400


async def test_alias_life_cycle(api: Api) -> None:
    key = await api.create_key("aliased")
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/aliases/my-alias")
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    body = r.json()
    models.AliasCollection.model_validate(body)
    assert body["metadata"]["collectionType"] == "application/vnd.ibm.kms.alias+json"
    assert (
        body["resources"][0]["keyId"] == key["id"] and body["resources"][0]["alias"] == "my-alias"
    )
    meta = (await api.request("GET", "/api/v2/keys/my-alias/metadata")).json()["resources"][0]
    assert meta["aliases"] == ["my-alias"]
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/aliases/my-alias")
    assert r.status_code == 409
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/aliases/keys")
    assert r.status_code == 400 and error_of(r)["target"] == {"type": "parameter", "name": "alias"}
    r = await api.request("DELETE", f"/api/v2/keys/{key['id']}/aliases/my-alias")
    assert r.status_code == 204 and r.content == b""
    r = await api.request("DELETE", f"/api/v2/keys/{key['id']}/aliases/my-alias")
    assert r.status_code == 404 and error_of(r)["code"] == "KEY_ALIAS_NOT_FOUND_ERR"
    assert (await api.request("GET", "/api/v2/keys/my-alias")).status_code == 404
