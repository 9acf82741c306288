"""Keys over HTTP (reference §2.1, §3, §10): create, list, count, get, metadata, patch, delete,
purge, restore, versions."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from tests.api.conftest import KEY_TYPE, Api, b64, error_of, key_body

from kyok.api.kp import models

pytestmark = pytest.mark.anyio

ALWAYS = {"type", "id", "name", "state", "extractable", "keyRingID", "keyVersion", "crn",
          "creationDate", "createdBy", "lastUpdateDate", "algorithmType", "imported", "deleted"}  # fmt: skip


def check_key(resource: dict) -> None:
    """Every key has the §3 fields in the documented shape (and nothing undocumented)."""
    models.KeyResource.model_validate(resource)
    assert resource.keys() >= ALWAYS
    assert resource["type"] == KEY_TYPE
    for name in ("creationDate", "lastUpdateDate"):
        assert resource[name].endswith("Z") and len(resource[name]) == 20
    assert resource["crn"] == (
        f"crn:v1:bluemix:public:kms:local:a/{resource['crn'].split(':')[7]}:"
        f"{resource['crn'].split(':')[7]}:key:{resource['id']}"
    )


# ---------------------------------------------------------------------------- create


async def test_create_without_prefer_is_201_with_the_representation(api: Api) -> None:
    r = await api.request("POST", "/api/v2/keys", json=key_body("root-1"))
    assert r.status_code == 201
    assert r.headers["content-type"] == KEY_TYPE  # IBM's py3 examples call .json() on it
    body = r.json()
    models.KeyCollection.model_validate(body)
    assert body["metadata"] == {"collectionType": KEY_TYPE, "collectionTotal": 1}
    key = body["resources"][0]
    check_key(key)
    assert key["state"] == 1 and key["extractable"] is False and key["keyRingID"] == "default"
    assert key["crn"].endswith(f":{api.instance}:key:{key['id']}")
    assert "payload" not in key  # never for root keys
    assert key["keyVersion"]["id"] != key["id"]


@pytest.mark.parametrize("prefer", [None, "return=representation", "return=minimal"])
async def test_standard_key_payload_follows_prefer(api: Api, prefer: str | None) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    material = b"standard key material"
    r = await api.request(
        "POST",
        "/api/v2/keys",
        json=key_body("std", extractable=True, payload=b64(material)),
        headers=headers,
    )
    assert r.status_code == 201
    key = r.json()["resources"][0]
    check_key(key)
    if prefer == "return=minimal":
        assert "payload" not in key
    else:
        assert key["payload"] == b64(material)
    assert key["imported"] is True


@pytest.mark.parametrize(
    "content_type",
    [KEY_TYPE, "application/json", None, "text/plain", "application/x-www-form-urlencoded"],
)
async def test_create_parses_json_whatever_the_content_type(
    api: Api, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = await api.request(
        "POST", "/api/v2/keys", content=json.dumps(key_body("ct-key")), headers=headers
    )
    assert r.status_code == 201, r.text


async def test_create_matches_field_names_in_any_case(api: Api) -> None:
    await api.request("POST", "/api/v2/key_rings/ring-a")
    body = {
        "Metadata": {"CollectionType": KEY_TYPE, "COLLECTIONTOTAL": 1},
        "Resources": [{"Type": KEY_TYPE, "Name": "go-key", "Extractable": False, "Tags": ["t1", "t2"],
                       "Description": "from Go", "Aliases": ["go-alias"], "KeyRingID": "ring-a"}],
    }  # fmt: skip
    r = await api.request("POST", "/api/v2/keys", json=body)
    assert r.status_code == 201, r.text
    key = r.json()["resources"][0]
    assert key["tags"] == ["t1", "t2"] and key["aliases"] == ["go-alias"]
    assert key["description"] == "from Go" and key["keyRingID"] == "ring-a"


async def test_create_in_the_ring_of_the_header(api: Api) -> None:
    assert (await api.request("POST", "/api/v2/key_rings/ring-b")).status_code == 201
    key = await api.create_key("in-ring", headers={"X-Kms-Key-Ring": "ring-b"})
    assert key["keyRingID"] == "ring-b"
    r = await api.request(
        "POST", "/api/v2/keys", json=key_body("xy"), headers={"X-Kms-Key-Ring": "nope"}
    )
    assert r.status_code == 404
    assert error_of(r)["code"] == "KEY_RING_NOT_FOUND_ERR"


async def test_create_with_expiration_date_accepts_nanoseconds(api: Api) -> None:
    future = api.clock.now() + timedelta(days=3)
    text = future.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    key = await api.create_key("expiring", expirationDate=text)
    assert key["expirationDate"] == future.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = await api.request(
        "POST", "/api/v2/keys", json=key_body("xy", expirationDate="2030-01-01T00:00:00")
    )
    assert r.status_code == 400
    assert error_of(r)["target"] == {"type": "field", "name": "expirationDate"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 2},
          "resources": [{"type": KEY_TYPE, "name": "a"}]}, "COLLECTION_TOTAL_MISMATCH_ERR"),
        ({"resources": [{"type": KEY_TYPE, "name": "abc"}]}, "BAD_BODY_ERR"),
        ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 2},
          "resources": [{"name": "abc"}, {"name": "def"}]}, "BAD_BODY_ERR"),
        ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 0}, "resources": []}, "BAD_BODY_ERR"),
        (key_body("x"), "INVALID_FIELD_ERR"),
        (key_body("abc", extractable="yes"), "INVALID_FIELD_ERR"),
        (key_body("abc", payload="not base64!"), "INVALID_FIELD_ERR"),
        (key_body("abc", payload=b64(b"short")), "INVALID_FIELD_ERR"),
        (key_body("abc", tags=["a,b"]), "INVALID_FIELD_ERR"),
        (key_body("abc", aliases=[str(uuid.uuid4())]), "INVALID_FIELD_ERR"),
        ([1, 2], "BAD_BODY_ERR"),
    ],
)  # fmt: skip
async def test_create_refuses_bad_bodies_with_400(api: Api, body: object, code: str) -> None:
    r = await api.request("POST", "/api/v2/keys", json=body)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == code


async def test_create_without_a_body_or_with_garbage_is_400(api: Api) -> None:
    for content in (b"", b"null", b"{not json", b"\xff\xfe"):
        r = await api.request("POST", "/api/v2/keys", content=content)
        assert r.status_code == 400, content
        assert error_of(r)["code"] in ("NO_BODY_ERR", "BAD_BODY_ERR")


async def test_material_field_errors_name_the_wire_field(api: Api) -> None:
    r = await api.request("POST", "/api/v2/keys", json=key_body("abc", payload=b64(b"x" * 20)))
    reason = error_of(r)
    assert reason["target"] == {"type": "field", "name": "payload"}
    assert reason["message"].startswith("The field `payload` is invalid")
    assert reason["errorMsg"] == (
        "Bad Request: Key could not be created: Please see `reasons` for more details (INVALID_FIELD_ERR)"
    )


async def test_policies_are_refused_on_plain_create(api: Api) -> None:
    """Policy overrides belong to POST /keys_with_policy_overrides; POST /keys refuses them
    rather than ignoring them."""
    for field, value in (
        ("dualAuthDelete", {"enabled": True}),
        ("rotation", {"enabled": True, "interval_month": 3}),
    ):
        r = await api.request("POST", "/api/v2/keys", json=key_body("pol", **{field: value}))
        assert r.status_code == 400 and error_of(r)["code"] == "BAD_BODY_ERR"
        assert "keys_with_policy_overrides" in error_of(r)["message"]
    listed = await api.request("GET", "/api/v2/keys")
    assert listed.json()["resources"] == []


# ------------------------------------------------------------------------ list and count


async def test_list_returns_keys_without_payload_and_paginates(api: Api) -> None:
    std = await api.create_key("std-key", extractable=True)
    ids = {std["id"]} | {(await api.create_key(f"key-{i}"))["id"] for i in range(3)}
    r = await api.request("GET", "/api/v2/keys")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    models.KeyCollection.model_validate(body)
    assert {k["id"] for k in body["resources"]} == ids
    assert body["metadata"]["collectionTotal"] == 4
    assert all("payload" not in k for k in body["resources"])
    r = await api.request("GET", "/api/v2/keys", params={"limit": "2", "offset": "1", "sort": "id"})
    assert [k["id"] for k in r.json()["resources"]] == sorted(ids)[1:3]
    r = await api.request("GET", "/api/v2/keys", params={"extractable": "true"})
    assert [k["id"] for k in r.json()["resources"]] == [std["id"]]


async def test_list_states_and_search(api: Api) -> None:
    a = await api.create_key("alpha", aliases=["first-alias"])
    b = await api.create_key("beta")
    assert (await api.request("DELETE", f"/api/v2/keys/{b['id']}")).status_code == 204
    listed = (await api.request("GET", "/api/v2/keys")).json()["resources"]
    assert [k["id"] for k in listed] == [a["id"]]  # destroyed keys hidden by default
    r = await api.request("GET", "/api/v2/keys?state=1%2C5")  # what Go and py3 send
    assert {k["id"] for k in r.json()["resources"]} == {a["id"], b["id"]}
    r = await api.request("GET", "/api/v2/keys", params={"search": "alias:first"})
    body = r.json()
    assert [k["id"] for k in body["resources"]] == [a["id"]]
    assert body["metadata"]["searchQuery"] == {
        "query": "first",
        "scopes": ["alias"],
        "not": False,
        "exact": False,
    }
    r = await api.request("GET", "/api/v2/keys", params={"state": "4"})
    assert r.status_code == 400 and error_of(r)["target"] == {"type": "parameter", "name": "state"}
    r = await api.request("GET", "/api/v2/keys", params={"limit": "0"})
    assert r.status_code == 400 and error_of(r)["target"]["name"] == "limit"
    r = await api.request("GET", "/api/v2/keys", params={"limit": "many"})
    assert r.status_code == 400


async def test_head_keys_counts_in_key_total(api: Api) -> None:
    for i in range(3):
        await api.create_key(f"key-{i}", extractable=i == 0)
    r = await api.request("HEAD", "/api/v2/keys")
    assert r.status_code == 200 and r.headers["Key-Total"] == "3" and r.content == b""
    r = await api.request("HEAD", "/api/v2/keys?state=0%2C1%2C2%2C3&extractable=false")
    assert r.headers["Key-Total"] == "2"


async def test_list_scoped_by_key_ring_header(api: Api) -> None:
    await api.request("POST", "/api/v2/key_rings/ring-c")
    inside = await api.create_key("inside", headers={"X-Kms-Key-Ring": "ring-c"})
    await api.create_key("outside")
    r = await api.request("GET", "/api/v2/keys", headers={"X-Kms-Key-Ring": "ring-c"})
    assert [k["id"] for k in r.json()["resources"]] == [inside["id"]]


# ------------------------------------------------------------------------------ read


async def test_get_by_id_or_alias_with_payload_for_standard_keys(api: Api) -> None:
    std = await api.create_key("std", extractable=True, aliases=["my-std"])
    for ident in (std["id"], "my-std"):
        r = await api.request("GET", f"/api/v2/keys/{ident}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        key = r.json()["resources"][0]
        check_key(key)
        assert key["id"] == std["id"] and "payload" in key
        meta = (await api.request("GET", f"/api/v2/keys/{ident}/metadata")).json()["resources"][0]
        assert "payload" not in meta and meta["id"] == std["id"]
    root = await api.create_key("root")
    key = (await api.request("GET", f"/api/v2/keys/{root['id']}")).json()["resources"][0]
    assert "payload" not in key


async def test_get_with_another_ring_in_the_header_is_not_found(api: Api) -> None:
    await api.request("POST", "/api/v2/key_rings/ring-d")
    key = await api.create_key("k-in-default")
    r = await api.request("GET", f"/api/v2/keys/{key['id']}", headers={"X-Kms-Key-Ring": "ring-d"})
    assert r.status_code == 404
    r = await api.request(
        "GET", f"/api/v2/keys/{key['id']}/metadata", headers={"X-Kms-Key-Ring": "default"}
    )
    assert r.status_code == 200


async def test_unknown_key_is_404_with_key_protect_message(api: Api) -> None:
    r = await api.request("GET", f"/api/v2/keys/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json() == {
        "metadata": {"collectionType": "application/vnd.ibm.kms.error+json", "collectionTotal": 1},
        "resources": [
            {
                "errorMsg": "Not Found: Key could not be retrieved: Please see `reasons` for more details (KEY_NOT_FOUND_ERR)",
                "reasons": [
                    {
                        "code": "KEY_NOT_FOUND_ERR",
                        "message": "Key could not be retrieved: key does not exist",
                        "status": 404,
                        "moreInfo": "https://cloud.ibm.com/apidocs/key-protect",
                    }
                ],
            }
        ],
    }


# ----------------------------------------------------------------------------- patch


@pytest.mark.parametrize("field", ["keyRingID", "KeyRingID", "keyringid"])
async def test_patch_moves_a_key_to_another_ring(api: Api, field: str) -> None:
    await api.request("POST", "/api/v2/key_rings/ring-e")
    key = await api.create_key("mover")
    r = await api.request(
        "PATCH", f"/api/v2/keys/{key['id']}", json={field: "ring-e"},
        headers={"X-Kms-Key-Ring": "default", "Content-Type": KEY_TYPE},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["resources"][0]["keyRingID"] == "ring-e"
    r = await api.request(
        "PATCH",
        f"/api/v2/keys/{key['id']}",
        json={field: "default"},
        headers={"X-Kms-Key-Ring": "default"},
    )
    assert r.status_code == 404  # the key is not in the ring the header names any more
    r = await api.request("PATCH", f"/api/v2/keys/{key['id']}", json={})
    assert r.status_code == 400 and error_of(r)["target"] == {"type": "field", "name": "keyRingID"}


# ----------------------------------------------------------------- delete, purge, restore


async def test_delete_without_prefer_is_204_and_with_representation_200(api: Api) -> None:
    a = await api.create_key("del-a")
    r = await api.request("DELETE", f"/api/v2/keys/{a['id']}")
    assert r.status_code == 204 and r.content == b""
    b = await api.create_key("del-b")
    r = await api.request(
        "DELETE", f"/api/v2/keys/{b['id']}?force=true", headers={"Prefer": "return=representation"}
    )
    assert r.status_code == 200
    key = r.json()["resources"][0]
    check_key(key)
    assert key["state"] == 5 and key["deleted"] is True and key["deletedBy"] == "admin"
    assert key["restoreAllowed"] is True  # the 30-day window is open (restore waits 30 s more)
    r = await api.request("DELETE", f"/api/v2/keys/{b['id']}")
    assert r.status_code == 410 and error_of(r)["code"] == "KEY_DELETED_ERR"
    r = await api.request("DELETE", f"/api/v2/keys/{b['id']}?force=maybe")
    assert r.status_code == 400 and error_of(r)["target"] == {"type": "parameter", "name": "force"}


async def test_restore_is_201_with_the_key_and_purge_needs_four_hours(api: Api) -> None:
    key = await api.create_key("phoenix")
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/restore")
    assert r.status_code == 409 and error_of(r)["code"] == "REQ_TOO_EARLY_ERR"
    api.clock.advance(31)
    r = await api.request("POST", f"/api/v2/keys/{key['id']}/restore")
    assert r.status_code == 201 and r.headers["content-type"] == KEY_TYPE
    assert r.json()["resources"][0]["state"] == 1
    api.clock.advance(31)
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    r = await api.request("DELETE", f"/api/v2/keys/{key['id']}/purge")
    assert r.status_code == 409
    api.clock.advance(timedelta(hours=4))
    r = await api.request("DELETE", f"/api/v2/keys/{key['id']}/purge")
    assert r.status_code == 200 and r.json()["resources"][0]["id"] == key["id"]
    r = await api.request("GET", f"/api/v2/keys/{key['id']}")
    assert r.status_code == 404


async def test_destroyed_key_metadata_shows_windows(api: Api) -> None:
    key = await api.create_key("gone", extractable=True)
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    api.clock.advance(60)
    got = (await api.request("GET", f"/api/v2/keys/{key['id']}")).json()["resources"][0]
    check_key(got)
    assert got["state"] == 5 and "payload" not in got  # a destroyed key's material is not served
    assert got["restoreAllowed"] is True and got["purgeAllowed"] is False
    assert {
        "deletionDate",
        "restoreExpirationDate",
        "purgeAllowedFrom",
        "purgeScheduledOn",
    } <= got.keys()


# ---------------------------------------------------------------------------- versions


async def test_versions_newest_first_with_total_count(api: Api) -> None:
    key = await api.create_key("rotating")
    await api.request("POST", f"/api/v2/keys/{key['id']}/actions/rotate")
    api.clock.advance(timedelta(hours=1))
    await api.request("POST", f"/api/v2/keys/{key['id']}/actions/rotate")
    r = await api.request(
        "GET", f"/api/v2/keys/{key['id']}/versions", params={"totalCount": "true", "limit": "2"}
    )
    assert r.status_code == 200
    body = r.json()
    models.KeyVersionCollection.model_validate(body)
    assert body["metadata"] == {
        "collectionType": "application/vnd.ibm.kms.key.version+json",
        "collectionTotal": 2,
        "totalCount": 3,
    }
    current = (await api.request("GET", f"/api/v2/keys/{key['id']}/metadata")).json()["resources"][
        0
    ]
    assert body["resources"][0]["id"] == current["keyVersion"]["id"]
    await api.request("POST", f"/api/v2/keys/{key['id']}/actions/disable")
    r = await api.request("GET", f"/api/v2/keys/{key['id']}/versions")
    assert r.status_code == 409
    r = await api.request("GET", f"/api/v2/keys/{key['id']}/versions?allKeyStates=true")
    assert r.status_code == 200 and r.json()["metadata"]["collectionTotal"] == 3
