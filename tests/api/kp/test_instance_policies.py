"""Instance policies over HTTP (reference §2.4), the allowed-IP port, and the network policies
enforced on every authenticated request: ``allowedIP`` (401) and ``allowedNetwork`` (403), on
the FastAPI routes and on the data-plane fast path alike.

``httpx.ASGITransport`` presents the client as 127.0.0.1 unless told otherwise (``client=``):
that is the socket peer the policies check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import ADMIN, Api, FakeAuth, b64, error_of, make_node

from kyok.api.app import create_app
from kyok.api.kp import models
from kyok.auth.context import Grant
from kyok.auth.principals import SYSTEM
from kyok.auth.roles import Role
from kyok.clock import FakeClock
from kyok.kms.policies import validate_instance_policy

pytestmark = pytest.mark.anyio

POLICY = "application/vnd.ibm.kms.policy+json"
PATH = "/api/v2/instance/policies"


def body(*resources: tuple[str, dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    items = [{"policy_type": t, "policy_data": d} for t, d in resources]
    count = len(items) if total is None else total
    return {"metadata": {"collectionType": POLICY, "collectionTotal": count}, "resources": items}


def on(policy_type: str, **attributes: Any) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {"enabled": True}
    if attributes:
        data["attributes"] = attributes
    return policy_type, data


def off(policy_type: str) -> tuple[str, dict[str, Any]]:
    return policy_type, {"enabled": False}


async def put(api: Api, payload: Any, policy: str | None = None, **kw: Any) -> httpx.Response:
    params = {"policy": policy} if policy else None
    return await api.request("PUT", PATH, params=params, json=payload, **kw)


async def listed(api: Api, policy: str | None = None) -> dict[str, dict[str, Any]]:
    params = {"policy": policy} if policy else None
    r = await api.request("GET", PATH, params=params)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    data = r.json()
    models.InstancePolicyCollection.model_validate(data)
    assert data["metadata"]["collectionType"] == POLICY
    assert data["metadata"]["collectionTotal"] == len(data["resources"])
    return {p["policy_type"]: p for p in data["resources"]}


async def test_none_set_yet(api: Api) -> None:
    r = await api.request("GET", PATH)
    assert r.json() == {
        "metadata": {"collectionType": POLICY, "collectionTotal": 0},
        "resources": [],
    }


async def test_set_each_type_and_read_it_back(api: Api) -> None:
    for policy_type, data in (
        on("rotation", interval_month=4),
        on("dualAuthDelete"),
        on("metrics"),
        on("allowedNetwork", allowed_network="public-and-private"),
        on("allowedIP", allowed_ip=["127.0.0.1/32", "10.1.2.3/8", "fd00::/8"]),
        on("keyCreateImportAccess", enforce_token=True),
    ):
        r = await put(api, body((policy_type, data)), policy=policy_type)
        assert r.status_code == 204 and r.content == b"", r.text
    found = await listed(api)
    assert set(found) == {
        "rotation",
        "dualAuthDelete",
        "metrics",
        "allowedNetwork",
        "allowedIP",
        "keyCreateImportAccess",
    }
    assert found["rotation"]["policy_data"] == {
        "enabled": True,
        "attributes": {"interval_month": 4},
    }
    assert found["dualAuthDelete"]["policy_data"] == {"enabled": True}
    assert found["metrics"]["policy_data"] == {"enabled": True}  # stored and returned only
    assert found["allowedIP"]["policy_data"]["attributes"] == {
        "allowed_ip": ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]  # normalised networks
    }
    # omitted keyCreateImportAccess attributes take their defaults: all five are shown
    assert found["keyCreateImportAccess"]["policy_data"]["attributes"] == {
        "create_root_key": True,
        "create_standard_key": True,
        "import_root_key": True,
        "import_standard_key": True,
        "enforce_token": True,
    }
    resource = found["rotation"]
    assert resource["createdBy"] == resource["updatedBy"] == "admin"
    assert resource["creationDate"] == resource["lastUpdated"]
    # one type only
    assert set(await listed(api, "metrics")) == {"metrics"}


async def test_several_at_once_and_disabling_clears_attributes(api: Api) -> None:
    r = await put(
        api, body(on("rotation", interval_month=2), on("allowedIP", allowed_ip=["127.0.0.0/8"]))
    )
    assert r.status_code == 204, r.text
    api.clock.advance(5)
    r = await put(api, body(off("rotation"), off("allowedIP")))
    assert r.status_code == 204
    found = await listed(api)
    assert found["rotation"]["policy_data"] == {"enabled": False}
    assert found["allowedIP"]["policy_data"] == {"enabled": False}
    assert found["rotation"]["lastUpdated"] > found["rotation"]["creationDate"]


PROBLEMS: list[tuple[str, Any, str | None, str, str | None]] = [
    # (case, body, ?policy, code, target name)
    ("unknown type", body(on("bogus")), None, "INVALID_FIELD_ERR", "policy_type"),
    ("no type", {"metadata": {"collectionType": POLICY, "collectionTotal": 1},
                 "resources": [{"policy_data": {"enabled": True}}]}, None, "INVALID_FIELD_ERR",
     "policy_type"),
    ("no policy_data", {"metadata": {"collectionType": POLICY, "collectionTotal": 1},
                        "resources": [{"policy_type": "metrics"}]}, None, "INVALID_FIELD_ERR",
     "policy_data"),
    ("enabled not a boolean", body(("metrics", {"enabled": "true"})), None, "INVALID_FIELD_ERR",
     "enabled"),
    ("attributes when disabled", body(("rotation", {"enabled": False,
                                                    "attributes": {"interval_month": 3}})),
     None, "INVALID_FIELD_ERR", "attributes"),
    ("attributes not an object", body(("rotation", {"enabled": True, "attributes": [3]})), None,
     "INVALID_FIELD_ERR", "attributes"),
    ("rotation without interval", body(on("rotation")), None, "INVALID_FIELD_ERR",
     "interval_month"),
    ("rotation interval 13", body(on("rotation", interval_month=13)), None, "INVALID_FIELD_ERR",
     "interval_month"),
    ("rotation interval -1", body(on("rotation", interval_month=-1)), None, "INVALID_FIELD_ERR",
     "interval_month"),
    ("rotation unknown attribute", body(on("rotation", interval_month=1, every=2)), None,
     "INVALID_FIELD_ERR", "attributes"),
    ("allowedIP without list", body(on("allowedIP")), None, "INVALID_FIELD_ERR", "allowed_ip"),
    ("allowedIP empty", body(on("allowedIP", allowed_ip=[])), None, "INVALID_FIELD_ERR",
     "allowed_ip"),
    ("allowedIP not a CIDR", body(on("allowedIP", allowed_ip=["10.0.0.1"])), None,
     "INVALID_FIELD_ERR", "allowed_ip"),
    ("allowedIP garbage", body(on("allowedIP", allowed_ip=["ten/8"])), None,
     "INVALID_FIELD_ERR", "allowed_ip"),
    ("allowedNetwork bogus", body(on("allowedNetwork", allowed_network="private")), None,
     "INVALID_FIELD_ERR", "allowed_network"),
    ("dualAuthDelete attributes", body(on("dualAuthDelete", x=1)), None, "INVALID_FIELD_ERR",
     "attributes"),
    ("metrics attributes", body(on("metrics", x=1)), None, "INVALID_FIELD_ERR", "attributes"),
    ("access unknown attribute", body(on("keyCreateImportAccess", import_any=False)), None,
     "INVALID_FIELD_ERR", "attributes"),
    ("access not a boolean", body(on("keyCreateImportAccess", enforce_token="yes")), None,
     "INVALID_FIELD_ERR", "enforce_token"),
    ("query names another type", body(on("metrics")), "dualAuthDelete",
     "BODY_QUERY_PARAM_MISMATCH_ERR", None),
    ("query with two resources", body(on("metrics"), on("dualAuthDelete")), "metrics",
     "NUM_COLLECTION_RESOURCE_ERR", None),
    ("a type twice", body(on("metrics"), off("metrics")), None, "NUM_COLLECTION_RESOURCE_ERR",
     None),
    ("total mismatch", body(on("metrics"), total=3), None, "COLLECTION_TOTAL_MISMATCH_ERR", None),
    ("unknown query", body(on("metrics")), "bogus", "INVALID_QUERY_PARAM_ERR", "policy"),
    ("no resources", body(), None, "INVALID_FIELD_ERR", None),
    ("another collection type", {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                                              "collectionTotal": 0}, "resources": []}, None,
     "BAD_BODY_ERR", None),
    ("not a collection", {"policy_type": "metrics"}, None, "BAD_BODY_ERR", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "payload", "query", "code", "target"), PROBLEMS, ids=[p[0] for p in PROBLEMS]
)
async def test_every_validation_error_is_400_and_sets_nothing(
    api: Api, case: str, payload: Any, query: str | None, code: str, target: str | None
) -> None:
    r = await put(api, payload, policy=query)
    assert r.status_code == 400, r.text
    reason = error_of(r)
    assert reason["code"] == code
    if target is not None:
        assert reason["target"]["name"] == target
    assert await listed(api) == {}


async def test_no_body_is_400(api: Api) -> None:
    r = await api.request("PUT", PATH)
    assert r.status_code == 400 and error_of(r)["code"] == "NO_BODY_ERR"


async def test_managers_only(api: Api) -> None:
    writer = api.mint(Grant(Role.WRITER), principal="writer")
    assert (await api.request("GET", PATH, headers=writer)).status_code == 403
    r = await api.request("PUT", PATH, json=body(on("metrics")), headers=writer)
    assert r.status_code == 403 and error_of(r)["code"] == "FORBIDDEN_ERR"
    r = await api.request("GET", "/api/v2/instance/allowed_ip_port", headers=writer)
    assert r.status_code == 403


# ----------------------------------------------------------------------------- allowed IP port


async def test_allowed_ip_port(api: Api) -> None:
    r = await api.request("GET", "/api/v2/instance/allowed_ip_port")
    assert r.status_code == 200
    empty = {
        "metadata": {
            "collectionType": "application/vnd.ibm.kms.allowed_ip_metadata+json",
            "collectionTotal": 0,
        },
        "resources": [],
    }
    assert r.json() == empty  # no allowedIP policy: "no information will be returned"
    assert (await put(api, body(on("allowedIP", allowed_ip=["127.0.0.0/8"])))).status_code == 204
    r = await api.request("GET", "/api/v2/instance/allowed_ip_port")
    models.AllowedIPPortCollection.model_validate(r.json())
    assert r.json()["metadata"]["collectionTotal"] == 1
    assert r.json()["resources"] == [{"private_endpoint_port": api.node.settings.server.port}]
    assert (await put(api, body(off("allowedIP")))).status_code == 204
    assert (await api.request("GET", "/api/v2/instance/allowed_ip_port")).json() == empty


# ----------------------------------------------------------------------------- network policies


async def _wrap_body(api: Api, key: str) -> tuple[str, dict[str, Any]]:
    return f"/api/v2/keys/{key}/actions/wrap", {"plaintext": b64(bytes(32))}


async def test_allowed_ip_refuses_other_addresses_everywhere(api: Api) -> None:
    key = await api.create_key()
    wrap_url, wrap_body = await _wrap_body(api, key["id"])
    r = await put(api, body(on("allowedIP", allowed_ip=["10.0.0.0/8"])))
    # the policy applies from the next request on (this one was admitted before it existed)
    assert r.status_code == 204
    for method, url, payload in (
        ("GET", "/api/v2/keys", None),
        ("GET", f"/api/v2/keys/{key['id']}", None),
        ("POST", wrap_url, wrap_body),  # the data-plane fast path
        ("POST", f"/api/v2/keys/{key['id']}?action=wrap", wrap_body),  # the FastAPI route
        ("GET", PATH, None),  # the policy itself: locked out too
        ("GET", "/api/v2/import_token", None),
    ):
        r = await api.request(method, url, json=payload)
        assert r.status_code == 401, (method, url, r.text)
        reason = error_of(r)
        assert reason["code"] == "UNAUTHORIZED_ERR" and "allowed IP" in reason["message"]
    # from inside 10.0.0.0/8 (also as an IPv4-mapped IPv6 peer) everything works
    app = create_app(api.node)
    for peer in ("10.9.8.7", "::ffff:10.9.8.7"):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as inside:
            assert (await inside.get("/api/v2/keys", headers=api.headers)).status_code == 200
            r = await inside.post(wrap_url, json=wrap_body, headers=api.headers)
            assert r.status_code == 200, r.text
    # credentials are still checked first: a bad token is a plain 401
    r = await api.request("GET", "/api/v2/keys", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "allowed IP" not in error_of(r)["message"]
    # another instance of the node is not affected
    other = api.node.service.create_instance(SYSTEM, "other", seal="dev").id
    headers = api.mint(*(Grant(r) for r in ADMIN), instance=other)
    assert (await api.request("GET", "/api/v2/keys", headers=headers)).status_code == 200


async def test_allowed_ip_admitting_the_caller(api: Api) -> None:
    r = await put(api, body(on("allowedIP", allowed_ip=["192.168.0.0/16", "127.0.0.1/32"])))
    assert r.status_code == 204
    assert (await api.request("GET", "/api/v2/keys")).status_code == 200
    key = await api.create_key()
    wrap_url, wrap_body = await _wrap_body(api, key["id"])
    assert (await api.request("POST", wrap_url, json=wrap_body)).status_code == 200


@pytest.fixture
async def public_client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """The same app as seen from a public address."""
    transport = httpx.ASGITransport(app=create_app(api.node), client=("203.0.113.5", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as client:
        yield client


async def test_private_only_refuses_public_addresses(
    api: Api, public_client: httpx.AsyncClient
) -> None:
    key = await api.create_key()
    wrap_url, wrap_body = await _wrap_body(api, key["id"])
    assert (await public_client.get("/api/v2/keys", headers=api.headers)).status_code == 200
    r = await put(api, body(on("allowedNetwork", allowed_network="private-only")))
    assert r.status_code == 204
    # loopback is private by default: the admin here keeps working
    assert (await api.request("GET", "/api/v2/keys")).status_code == 200
    assert (await api.request("POST", wrap_url, json=wrap_body)).status_code == 200
    for method, url in (("GET", "/api/v2/keys"), ("POST", wrap_url)):
        r = await public_client.request(method, url, headers=api.headers, json=wrap_body)
        assert r.status_code == 403, (method, url, r.text)
        assert error_of(r)["code"] == "CONFIG_RULE_CONFLICT_ERR"
    # public-and-private lifts it
    r = await put(api, body(on("allowedNetwork", allowed_network="public-and-private")))
    assert r.status_code == 204
    assert (await public_client.get("/api/v2/keys", headers=api.headers)).status_code == 200


async def test_private_networks_is_a_setting(tmp_path: Path) -> None:
    clock = FakeClock()
    node = make_node(tmp_path, clock, private_networks="10.0.0.0/8,fd00::/8")
    try:
        instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
        off_all = [
            validate_instance_policy("allowedNetwork", True, {"allowed_network": "private-only"})
        ]
        node.service.set_instance_policies(SYSTEM, instance, off_all)
        auth = node.auth
        assert isinstance(auth, FakeAuth)
        headers = {
            "Authorization": f"Bearer {auth.bootstrap_admin(instance)}",
            "Bluemix-Instance": instance,
        }
        app = create_app(node)
        for peer, status in (("127.0.0.1", 403), ("10.2.3.4", 200), ("fd00::1", 200)):
            transport = httpx.ASGITransport(app=app, client=(peer, 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://k") as client:
                r = await client.get("/api/v2/keys", headers=headers)
                assert r.status_code == status, (peer, r.text)
    finally:
        node.close()
