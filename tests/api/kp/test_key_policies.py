"""Key policies over HTTP (reference §2.3), policy overrides on create (§2.1) and how a key
shows its policies (§3)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from tests.api.conftest import Api, error_of, key_body

from kyok.api.kp import models

pytestmark = pytest.mark.anyio

POLICY = "application/vnd.ibm.kms.policy+json"


def policies(*resources: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    typed = [{"type": POLICY, **r} for r in resources]
    count = len(typed) if total is None else total
    return {"metadata": {"collectionType": POLICY, "collectionTotal": count}, "resources": typed}


def rotation(months: Any = 3, enabled: Any = True) -> dict[str, Any]:
    return {"rotation": {"enabled": enabled, "interval_month": months}}


DUAL = {"dualAuthDelete": {"enabled": True}}


async def get_policies(api: Api, key: str, policy: str | None = None) -> dict[str, Any]:
    params = {"policy": policy} if policy else None
    r = await api.request("GET", f"/api/v2/keys/{key}/policies", params=params)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    body: dict[str, Any] = r.json()
    models.KeyPolicyCollection.model_validate(body)
    return body


async def put_policies(api: Api, key: str, body: Any, policy: str | None = None, **kw: Any) -> Any:
    params = {"policy": policy} if policy else None
    return await api.request("PUT", f"/api/v2/keys/{key}/policies", params=params, json=body, **kw)


async def the_key(api: Api, key: str) -> dict[str, Any]:
    r = await api.request("GET", f"/api/v2/keys/{key}")
    resource: dict[str, Any] = r.json()["resources"][0]
    models.KeyResource.model_validate(resource)
    return resource


async def test_a_key_without_policies(api: Api) -> None:
    key = await api.create_key()
    body = await get_policies(api, key["id"])
    assert body == {"metadata": {"collectionType": POLICY, "collectionTotal": 0}, "resources": []}
    assert key["dualAuthDelete"] == {"enabled": False} and "rotation" not in key


async def test_set_and_get_rotation_and_dual_auth(api: Api) -> None:
    key = await api.create_key()
    r = await put_policies(api, key["id"], policies(rotation(3)), policy="rotation")
    assert r.status_code == 200, r.text
    (set_rotation,) = r.json()["resources"]
    assert set_rotation["rotation"] == {"enabled": True, "interval_month": 3}
    assert set_rotation["type"] == POLICY
    assert set_rotation["crn"].endswith(f":key:{key['id']}")
    assert set_rotation["createdBy"] == "admin" and set_rotation["updatedBy"] == "admin"
    assert "dualAuthDelete" not in set_rotation
    shown = await the_key(api, key["id"])
    assert shown["rotation"] == {"enabled": True, "interval_month": 3}
    assert shown["dualAuthDelete"] == {"enabled": False}

    api.clock.advance(60)
    r = await put_policies(api, key["id"], policies(DUAL))
    assert r.status_code == 200
    assert r.json()["resources"][0]["dualAuthDelete"] == {"enabled": True}
    # without ?policy: both in ONE resource (GetMultipleKeyPoliciesResource)
    both = await get_policies(api, key["id"])
    assert both["metadata"]["collectionTotal"] == 1
    (resource,) = both["resources"]
    assert resource["rotation"] == {"enabled": True, "interval_month": 3}
    assert resource["dualAuthDelete"] == {"enabled": True}
    assert resource["lastUpdateDate"] > resource["creationDate"]
    # with ?policy: only that one; ids are stable
    only = await get_policies(api, key["id"], "dualAuthDelete")
    (dual,) = only["resources"]
    assert "rotation" not in dual and dual["dualAuthDelete"] == {"enabled": True}
    assert (await get_policies(api, key["id"], "dualAuthDelete"))["resources"][0]["id"] == dual[
        "id"
    ]
    assert (await get_policies(api, key["id"], "rotation"))["resources"][0]["id"] != dual["id"]
    shown = await the_key(api, key["id"])
    assert shown["dualAuthDelete"] == {"enabled": True, "keySetForDeletion": False}

    # both at once, in two resources, without ?policy; rotation can be turned off
    r = await put_policies(api, key["id"], policies(rotation(12, enabled=False), DUAL))
    assert r.status_code == 200
    (both_set,) = r.json()["resources"]
    assert both_set["rotation"] == {"enabled": False, "interval_month": 12}
    shown = await the_key(api, key["id"])
    assert shown["rotation"] == {"enabled": False, "interval_month": 12}
    # by alias, too
    aliased = await api.create_key("aliased", aliases=["pol-alias"])
    r = await put_policies(api, "pol-alias", policies(rotation(1)))
    assert r.status_code == 200
    assert r.json()["resources"][0]["crn"].endswith(aliased["id"])


async def test_dual_auth_cannot_be_turned_off(api: Api) -> None:
    key = await api.create_key()
    assert (await put_policies(api, key["id"], policies(DUAL))).status_code == 200
    r = await put_policies(api, key["id"], policies({"dualAuthDelete": {"enabled": False}}))
    assert r.status_code == 400 and error_of(r)["code"] == "DUAL_AUTH_DELETE_LOCKED_ERR"
    assert (await get_policies(api, key["id"]))["resources"][0]["dualAuthDelete"]["enabled"]


async def test_rotation_is_for_generated_root_keys(api: Api) -> None:
    imported = await api.create_key("imported", payload=base64.b64encode(os.urandom(32)).decode())
    r = await put_policies(api, imported["id"], policies(rotation(2)))
    assert r.status_code == 400 and error_of(r)["code"] == "INVALID_FIELD_ERR"
    assert error_of(r)["target"] == {"type": "field", "name": "rotation"}
    standard = await api.create_key("standard", extractable=True)
    r = await put_policies(api, standard["id"], policies(rotation(2)))
    assert r.status_code == 400 and error_of(r)["code"] == "KEY_ROOT_REQ_ERR"
    # dual authorisation is fine on both
    for key in (imported, standard):
        assert (await put_policies(api, key["id"], policies(DUAL))).status_code == 200
    assert (await get_policies(api, imported["id"], "rotation"))["resources"] == []


@pytest.mark.parametrize(
    ("body", "query", "code", "target"),
    [
        (policies(rotation(-1)), None, "INVALID_FIELD_ERR", "interval_month"),  # Go's "not given"
        (policies(rotation(0)), None, "INVALID_FIELD_ERR", "interval_month"),
        (policies(rotation(13)), None, "INVALID_FIELD_ERR", "interval_month"),
        (policies(rotation("3")), None, "INVALID_FIELD_ERR", "interval_month"),
        (policies(rotation(None)), None, "INVALID_FIELD_ERR", "interval_month"),
        (policies(rotation(3, enabled="yes")), None, "INVALID_FIELD_ERR", "rotation"),
        (policies({"rotation": 3}), None, "INVALID_FIELD_ERR", "rotation"),
        (policies({"rotation": {}}), None, "INVALID_FIELD_ERR", "rotation"),
        (policies({"dualAuthDelete": {}}), None, "INVALID_FIELD_ERR", "dualAuthDelete"),
        (policies({"dualAuthDelete": True}), None, "INVALID_FIELD_ERR", "dualAuthDelete"),
        (policies(DUAL), "rotation", "BODY_QUERY_PARAM_MISMATCH_ERR", None),
        (policies(rotation(3), DUAL), "rotation", "BODY_QUERY_PARAM_MISMATCH_ERR", None),
        (policies(rotation(3), rotation(4)), None, "NUM_COLLECTION_RESOURCE_ERR", None),
        (policies({**rotation(3), **DUAL}, DUAL), None, "NUM_COLLECTION_RESOURCE_ERR", None),
        (policies(rotation(3), total=2), None, "COLLECTION_TOTAL_MISMATCH_ERR", None),
        (policies({"other": 1}), None, "BAD_BODY_ERR", None),
        (policies(), None, "BAD_BODY_ERR", None),
        (policies(rotation(3)), "bogus", "INVALID_QUERY_PARAM_ERR", "policy"),
        ({"resources": [rotation(3)]}, None, "BAD_BODY_ERR", None),
        (
            {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json"}, "resources": []},
            None,
            "BAD_BODY_ERR",
            None,
        ),
    ],
)
async def test_bad_requests_are_400_and_change_nothing(
    api: Api, body: Any, query: str | None, code: str, target: str | None
) -> None:
    key = await api.create_key()
    r = await put_policies(api, key["id"], body, policy=query)
    assert r.status_code == 400, r.text
    reason = error_of(r)
    assert reason["code"] == code
    if target is not None:
        assert reason["target"]["name"] == target
    assert (await get_policies(api, key["id"]))["resources"] == []


async def test_go_style_requests(api: Api) -> None:
    """No Content-Type, odd field-name casing, rotation without `enabled` (older Go)."""
    key = await api.create_key()
    body = {
        "metadata": {"collectionType": POLICY, "collectionTotal": 1},
        "resources": [{"type": POLICY, "Rotation": {"Interval_Month": 5}}],
    }
    r = await api.request(
        "PUT", f"/api/v2/keys/{key['id']}/policies", content=json.dumps(body).encode()
    )
    assert r.status_code == 200, r.text
    assert r.json()["resources"][0]["rotation"] == {"enabled": True, "interval_month": 5}


async def test_unknown_and_other_instances_keys_are_404(api: Api) -> None:
    for method in ("GET", "PUT"):
        r = await api.request(
            method, "/api/v2/keys/no-such-key/policies", json=policies(rotation(3))
        )
        assert r.status_code == 404 and error_of(r)["code"] == "KEY_NOT_FOUND_ERR"


# ----------------------------------------------------------------------------- overrides on create

OVERRIDES = "/api/v2/keys_with_policy_overrides"


async def test_create_with_policy_overrides(api: Api) -> None:
    body = key_body("over", rotation={"enabled": True, "interval_month": 2}, **DUAL)
    r = await api.request("POST", OVERRIDES, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/vnd.ibm.kms.key+json"
    key = r.json()["resources"][0]
    models.KeyResource.model_validate(key)
    assert key["rotation"] == {"enabled": True, "interval_month": 2}
    assert key["dualAuthDelete"] == {"enabled": True, "keySetForDeletion": False}
    listed = await get_policies(api, key["id"])
    assert listed["resources"][0]["rotation"]["interval_month"] == 2
    # without any policy it is a plain create
    r = await api.request("POST", OVERRIDES, json=key_body("plain"))
    assert r.status_code == 201 and r.json()["resources"][0]["dualAuthDelete"] == {"enabled": False}


async def test_overrides_beat_the_instance_policies(api: Api) -> None:
    instance = {
        "metadata": {"collectionType": POLICY, "collectionTotal": 2},
        "resources": [
            {"policy_type": "dualAuthDelete", "policy_data": {"enabled": True}},
            {
                "policy_type": "rotation",
                "policy_data": {"enabled": True, "attributes": {"interval_month": 6}},
            },
        ],
    }
    assert (await api.request("PUT", "/api/v2/instance/policies", json=instance)).status_code == 204
    inherited = await api.create_key("inherits")
    assert inherited["dualAuthDelete"]["enabled"] is True
    assert inherited["rotation"] == {"enabled": True, "interval_month": 6}
    r = await api.request(
        "POST",
        OVERRIDES,
        json=key_body(
            "overrides",
            dualAuthDelete={"enabled": False},
            rotation={"enabled": False, "interval_month": 1},
        ),
    )
    key = r.json()["resources"][0]
    assert key["dualAuthDelete"] == {"enabled": False}
    assert key["rotation"] == {"enabled": False, "interval_month": 1}
    # imported keys do not inherit rotation
    imported = await api.create_key("imported", payload=base64.b64encode(os.urandom(16)).decode())
    assert "rotation" not in imported and imported["dualAuthDelete"]["enabled"] is True


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"rotation": {"enabled": True, "interval_month": -1}}, "INVALID_FIELD_ERR"),
        ({"rotation": {"enabled": True}}, "INVALID_FIELD_ERR"),
        ({"rotation": "monthly"}, "INVALID_FIELD_ERR"),
        ({"dualAuthDelete": {"enabled": "yes"}}, "INVALID_FIELD_ERR"),
        (
            {"rotation": {"enabled": True, "interval_month": 3}, "extractable": True},
            "INVALID_FIELD_ERR",
        ),
        (
            {
                "rotation": {"enabled": True, "interval_month": 3},
                "payload": base64.b64encode(bytes(32)).decode(),
            },
            "INVALID_FIELD_ERR",
        ),
    ],
)
async def test_bad_overrides_are_400_and_make_no_key(
    api: Api, fields: dict[str, Any], code: str
) -> None:
    r = await api.request("POST", OVERRIDES, json=key_body("bad", **fields))
    assert r.status_code == 400 and error_of(r)["code"] == code, r.text
    assert (await api.request("GET", "/api/v2/keys")).json()["resources"] == []
