"""Dual-authorisation deletes (reference §2.2, §7), sync, and registrations (§2.8) over HTTP.

Principals are FakeAuth's: a test mints as many tokens as it likes for one principal (one
person holding two API keys) and marks service principals as such.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tests.api.conftest import Api, error_of, key_body

from kyok.api.kp import models
from kyok.auth.context import Grant
from kyok.auth.principals import PrincipalKind
from kyok.auth.roles import Role

pytestmark = pytest.mark.anyio

KEYS = "/api/v2/keys"


async def dual_auth_key(api: Api, name: str = "guarded") -> str:
    r = await api.request(
        "POST",
        "/api/v2/keys_with_policy_overrides",
        json=key_body(name, dualAuthDelete={"enabled": True}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["resources"][0]["id"])


async def shown(api: Api, key: str) -> dict[str, Any]:
    r = await api.request("GET", f"{KEYS}/{key}/metadata", params={})
    resource: dict[str, Any] = r.json()["resources"][0]
    return resource


async def test_one_principal_with_two_api_keys_can_never_delete(api: Api) -> None:
    key = await dual_auth_key(api)
    alice_1 = api.mint(Grant(Role.MANAGER), principal="alice")
    alice_2 = api.mint(Grant(Role.MANAGER), principal="alice")
    r = await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=alice_1)
    assert r.status_code == 204 and r.content == b""
    meta = await shown(api, key)
    expires = (api.clock.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert meta["dualAuthDelete"] == {
        "enabled": True,
        "keySetForDeletion": True,
        "authExpiration": expires,
    }
    for headers in (alice_2, alice_1):
        r = await api.request("DELETE", f"{KEYS}/{key}", headers=headers)
        assert r.status_code == 409 and error_of(r)["code"] == "AUTHORIZATIONS_NOT_MET"
        assert "prior authorization" in error_of(r)["message"]
    # her second key approving again changes nothing: still her own approval
    r = await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=alice_2)
    assert r.status_code == 204
    r = await api.request("DELETE", f"{KEYS}/{key}", headers=alice_1)
    assert r.status_code == 409
    assert (await shown(api, key))["state"] == 1


async def test_another_principals_approval_lets_the_delete_through(api: Api) -> None:
    key = await dual_auth_key(api)
    writer = api.mint(Grant(Role.WRITER), principal="wendy")  # Writers may approve
    bob = api.mint(Grant(Role.MANAGER), principal="bob")
    r = await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=writer)
    assert r.status_code == 204
    r = await api.request("DELETE", f"{KEYS}/{key}", headers=bob)
    assert r.status_code == 204
    assert (await shown(api, key))["state"] == 5
    # the approval was used up: restored, it needs a new one
    api.clock.advance(31)
    assert (await api.request("POST", f"{KEYS}/{key}/restore")).status_code == 201
    r = await api.request("DELETE", f"{KEYS}/{key}", headers=bob)
    assert r.status_code == 409 and error_of(r)["code"] == "AUTHORIZATIONS_NOT_MET"


async def test_the_approval_expires_after_seven_days(api: Api) -> None:
    key = await dual_auth_key(api)
    alice = api.mint(Grant(Role.MANAGER), principal="alice")
    bob = api.mint(Grant(Role.MANAGER), principal="bob")
    assert (
        await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=alice)
    ).status_code == 204
    api.clock.advance(timedelta(days=7, seconds=1))
    assert (await shown(api, key))["dualAuthDelete"] == {
        "enabled": True,
        "keySetForDeletion": False,
    }
    r = await api.request("DELETE", f"{KEYS}/{key}", headers=bob)
    assert r.status_code == 409 and error_of(r)["code"] == "AUTHORIZATIONS_NOT_MET"
    # within the window it works
    assert (
        await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=alice)
    ).status_code == 204
    api.clock.advance(timedelta(days=6, hours=23))
    assert (await api.request("DELETE", f"{KEYS}/{key}", headers=bob)).status_code == 204


async def test_unset_cancels_the_approval(api: Api) -> None:
    key = await dual_auth_key(api)
    alice = api.mint(Grant(Role.MANAGER), principal="alice")
    bob = api.mint(Grant(Role.MANAGER), principal="bob")
    # Go sends the literal body `null`; the legacy ?action= form works too
    r = await api.request(
        "POST", f"{KEYS}/{key}?action=setKeyForDeletion", headers=alice, content=b"null"
    )
    assert r.status_code == 204
    r = await api.request(
        "POST", f"{KEYS}/{key}/actions/unsetKeyForDeletion", headers=alice, content=b"null"
    )
    assert r.status_code == 204
    assert (await shown(api, key))["dualAuthDelete"]["keySetForDeletion"] is False
    r = await api.request("DELETE", f"{KEYS}/{key}", headers=bob)
    assert r.status_code == 409
    r = await api.request("POST", f"{KEYS}/{key}?action=unsetKeyForDeletion", headers=bob)
    assert r.status_code == 204  # nothing to withdraw: still fine


async def test_keys_without_dual_auth_refuse_set_and_unset(api: Api) -> None:
    key = await api.create_key()
    for action in ("setKeyForDeletion", "unsetKeyForDeletion"):
        r = await api.request("POST", f"{KEYS}/{key['id']}/actions/{action}")
        assert r.status_code == 409 and error_of(r)["code"] == "NOT_DUAL_AUTH_ERR"
    # and are deleted by one principal, as always
    assert (await api.request("DELETE", f"{KEYS}/{key['id']}")).status_code == 204


async def test_readers_may_not_approve(api: Api) -> None:
    key = await dual_auth_key(api)
    reader = api.mint(Grant(Role.READER_PLUS), principal="rita")
    r = await api.request("POST", f"{KEYS}/{key}/actions/setKeyForDeletion", headers=reader)
    assert r.status_code == 403 and error_of(r)["code"] == "FORBIDDEN_ERR"


# ----------------------------------------------------------------------------- sync


async def test_sync_then_too_early_within_the_interval(api: Api) -> None:
    key = (await api.create_key())["id"]
    # a key that has just changed (created) waits for the interval too
    r = await api.request("POST", f"{KEYS}/{key}/actions/sync")
    assert r.status_code == 409 and error_of(r)["code"] == "REQ_TOO_EARLY_ERR"
    api.clock.advance(timedelta(hours=1, seconds=1))
    r = await api.request("POST", f"{KEYS}/{key}/actions/sync")
    assert r.status_code == 204 and r.content == b""
    r = await api.request("POST", f"{KEYS}/{key}?action=sync")
    assert r.status_code == 409 and error_of(r)["code"] == "REQ_TOO_EARLY_ERR"
    api.clock.advance(timedelta(hours=1))
    assert (await api.request("POST", f"{KEYS}/{key}?action=sync")).status_code == 204
    reader = api.mint(Grant(Role.READER), principal="rita")
    r = await api.request("POST", f"{KEYS}/{key}/actions/sync", headers=reader)
    assert r.status_code == 403


# ----------------------------------------------------------------------------- registrations

COS = "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst-1:bucket:{}"
DB = "crn:v1:bluemix:public:databases-for-postgresql:us-south:a/acct:inst-2:deployment:{}"
INPUT = "application/vnd.ibm.kms.registration_input+json"


def reg_body(**resource: Any) -> dict[str, Any]:
    return {"metadata": {"collectionType": INPUT, "collectionTotal": 1}, "resources": [resource]}


def reg_url(key: str, crn: str) -> str:
    return f"{KEYS}/{key}/registrations/{quote(crn, safe='')}"


def registrations_of(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code in (200, 201), r.text
    data = r.json()
    models.RegistrationCollection.model_validate(data)
    assert data["metadata"]["collectionType"] == "application/vnd.ibm.kms.registration+json"
    resources: list[dict[str, Any]] = data["resources"]
    return resources


@pytest.fixture
def service(api: Api) -> dict[str, str]:
    """A service principal with Writer (what writes registrations)."""
    return api.mint(Grant(Role.WRITER), principal="cos-service", kind=PrincipalKind.SERVICE)


async def test_users_cannot_write_registrations(api: Api) -> None:
    key = (await api.create_key())["id"]
    url = reg_url(key, COS.format("b1"))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = await api.request(method, url, json=reg_body())
        assert r.status_code == 403 and error_of(r)["code"] == "SERVICE_ONLY_ERR", method
    # a service without a write grant
    reader_service = api.mint(Grant(Role.READER), principal="svc", kind=PrincipalKind.SERVICE)
    r = await api.request("POST", url, headers=reader_service)
    assert r.status_code == 403 and error_of(r)["code"] == "FORBIDDEN_ERR"


async def test_a_service_registers_updates_replaces_and_deletes(
    api: Api, service: dict[str, str]
) -> None:
    key = await api.create_key("protector")
    crn = COS.format("bucket-a")
    r = await api.request(
        "POST",
        reg_url(key["id"], crn),
        headers=service,
        json=reg_body(description="bucket a", registrationMetadata='{"region": "eu"}'),
    )
    (made,) = registrations_of(r)
    assert r.status_code == 201
    assert made["keyId"] == key["id"] and made["keyName"] == "protector"
    assert made["resourceCrn"] == crn and made["createdBy"] == "cos-service"
    assert made["description"] == "bucket a" and made["registrationMetadata"] == '{"region": "eu"}'
    assert made["preventKeyDeletion"] is False
    assert made["keyVersion"] == key["keyVersion"]
    # again: exists
    r = await api.request("POST", reg_url(key["id"], crn), headers=service)
    assert r.status_code == 409 and error_of(r)["code"] == "REGISTRATION_EXISTS_ERR"
    # PATCH changes the fields named (the bare resource is accepted too)
    api.clock.advance(10)
    r = await api.request(
        "PATCH", reg_url(key["id"], crn), headers=service, json={"description": None}
    )
    (patched,) = registrations_of(r)
    assert "description" not in patched and patched["registrationMetadata"] == '{"region": "eu"}'
    assert patched["lastUpdated"] > patched["creationDate"]
    # PUT replaces everything (200), or creates (201)
    r = await api.request(
        "PUT", reg_url(key["id"], crn), headers=service, json=reg_body(preventKeyDeletion=True)
    )
    (replaced,) = registrations_of(r)
    assert r.status_code == 200
    assert replaced["preventKeyDeletion"] is True and "registrationMetadata" not in replaced
    assert replaced["creationDate"] == made["creationDate"]
    r = await api.request("PUT", reg_url(key["id"], COS.format("bucket-b")), headers=service)
    assert r.status_code == 201
    # DELETE
    r = await api.request("DELETE", reg_url(key["id"], crn), headers=service)
    assert r.status_code == 204
    r = await api.request("DELETE", reg_url(key["id"], crn), headers=service)
    assert r.status_code == 404 and error_of(r)["code"] == "REGISTRATION_NOT_FOUND_ERR"
    # an unencoded CRN (its `/` a path separator) names the same registration
    raw = f"{KEYS}/{key['id']}/registrations/{COS.format('bucket-b')}"
    assert (await api.request("DELETE", raw, headers=service)).status_code == 204


async def test_registration_refusals(api: Api, service: dict[str, str]) -> None:
    root = (await api.create_key())["id"]
    standard = (await api.create_key("std", extractable=True))["id"]
    r = await api.request("POST", reg_url(standard, COS.format("s")), headers=service)
    assert r.status_code == 422 and error_of(r)["code"] == "KEY_ROOT_REQ_REG_ERR"
    r = await api.request("POST", reg_url(root, "not-a-crn"), headers=service)
    assert r.status_code == 400 and error_of(r)["code"] == "INVALID_FIELD_ERR"
    assert error_of(r)["target"] == {"type": "parameter", "name": "urlEncodedResourceCRN"}
    r = await api.request(
        "POST",
        reg_url(root, COS.format("v")),
        headers=service,
        json=reg_body(keyVersionId="00000000-0000-4000-8000-000000000000"),
    )
    assert r.status_code == 422 and error_of(r)["code"] == "KEY_VERSION_INVALID"
    r = await api.request(
        "POST", reg_url(root, COS.format("d")), headers=service, json=reg_body(description=7)
    )
    assert r.status_code == 400 and error_of(r)["target"]["name"] == "description"
    r = await api.request(
        "POST", reg_url(root, COS.format("p")), headers=service, json={"preventKeyDeletion": 1}
    )
    assert r.status_code == 400 and error_of(r)["target"]["name"] == "preventKeyDeletion"
    r = await api.request("POST", reg_url("no-such-key", COS.format("x")), headers=service)
    assert r.status_code == 404 and error_of(r)["code"] == "KEY_NOT_FOUND_ERR"
    r = await api.request(
        "POST", reg_url(root, COS.format("t")), headers=service, json=reg_body(), params={}
    )
    assert r.status_code == 201


async def test_lists_filter_by_key_crn_pattern_and_hold(api: Api, service: dict[str, str]) -> None:
    one = (await api.create_key("one"))["id"]
    two = (await api.create_key("two"))["id"]
    for key, crn, hold in (
        (one, COS.format("alpha"), False),
        (one, COS.format("beta"), True),
        (one, DB.format("pg-1"), False),
        (two, COS.format("gamma"), False),
    ):
        r = await api.request(
            "POST", reg_url(key, crn), headers=service, json=reg_body(preventKeyDeletion=hold)
        )
        assert r.status_code == 201, r.text
    reader = api.mint(Grant(Role.READER), principal="rita")
    mine = registrations_of(await api.request("GET", f"{KEYS}/{one}/registrations", headers=reader))
    assert len(mine) == 3 and {r["keyId"] for r in mine} == {one}
    everything = registrations_of(await api.request("GET", f"{KEYS}/registrations", headers=reader))
    assert len(everything) == 4
    # wildcards (URL-encoded, as py3 documents it; httpx encodes once more)
    cos_any = quote("crn:v1:bluemix:public:cloud-object-storage:*", safe="")
    found = registrations_of(
        await api.request(
            "GET", f"{KEYS}/registrations", params={"urlEncodedResourceCRNQuery": cos_any}
        )
    )
    assert {r["resourceCrn"] for r in found} == {COS.format(n) for n in ("alpha", "beta", "gamma")}
    found = registrations_of(
        await api.request(
            "GET",
            f"{KEYS}/{one}/registrations",
            params={"urlEncodedResourceCRNQuery": COS.format("*a")},  # not encoded: fine too
        )
    )
    assert {r["resourceCrn"] for r in found} == {COS.format("alpha"), COS.format("beta")}
    held = registrations_of(
        await api.request("GET", f"{KEYS}/registrations", params={"preventKeyDeletion": "True"})
    )
    assert [r["resourceCrn"] for r in held] == [COS.format("beta")]
    free = registrations_of(
        await api.request("GET", f"{KEYS}/registrations", params={"preventKeyDeletion": "false"})
    )
    assert len(free) == 3
    # paging and totalCount
    r = await api.request(
        "GET", f"{KEYS}/registrations", params={"limit": 2, "offset": 1, "totalCount": "true"}
    )
    assert len(registrations_of(r)) == 2
    assert r.json()["metadata"] == {
        "collectionType": "application/vnd.ibm.kms.registration+json",
        "collectionTotal": 2,
        "totalCount": 4,
    }
    for params, name in (
        ({"limit": "x"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"preventKeyDeletion": "maybe"}, "preventKeyDeletion"),
        ({"totalCount": "2"}, "totalCount"),
        ({"urlEncodedResourceCRNQuery": "bucket-*"}, "urlEncodedResourceCRNQuery"),
    ):
        r = await api.request("GET", f"{KEYS}/registrations", params=params)
        assert r.status_code == 400, (params, r.text)
        assert error_of(r)["target"] == {"type": "parameter", "name": name}


async def test_registrations_guard_key_deletion(api: Api, service: dict[str, str]) -> None:
    key = (await api.create_key())["id"]
    crn = COS.format("protected")
    assert (await api.request("POST", reg_url(key, crn), headers=service)).status_code == 201
    r = await api.request("DELETE", f"{KEYS}/{key}")
    assert r.status_code == 409 and error_of(r)["code"] == "PROTECTED_RESOURCE_ERR"
    r = await api.request("DELETE", f"{KEYS}/{key}", params={"force": "true"})
    assert r.status_code == 204
    # a retention hold stops even force
    held = (await api.create_key("held"))["id"]
    r = await api.request(
        "POST", reg_url(held, crn), headers=service, json=reg_body(preventKeyDeletion=True)
    )
    assert r.status_code == 201
    for params in ({}, {"force": "true"}):
        r = await api.request("DELETE", f"{KEYS}/{held}", params=params)
        assert r.status_code == 409 and error_of(r)["code"] == "PREV_KEY_DEL_ERR", params
    # the service lifts the hold; then force deletes
    r = await api.request(
        "PATCH", reg_url(held, crn), headers=service, json=reg_body(preventKeyDeletion=False)
    )
    assert r.status_code == 200
    assert (await api.request("DELETE", f"{KEYS}/{held}?force=true")).status_code == 204
