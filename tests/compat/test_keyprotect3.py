"""The UNMODIFIED IBM ``keyprotect`` 3.x client against a real kyok server.

The client is configured exactly as IBM documents it (reference §8.1): an ``IAMAuthenticator``
whose IAM URL is the server itself (it fetches ``POST /identity/token`` and decodes the JWT),
``set_service_url``, ``bluemix_instance=`` on every call, request bodies as ``BytesIO`` JSON
(reference §9). Nothing is patched. Every call's result is checked: status code, headers,
fields.

``get_result()`` is a ``dict`` for ``application/json`` answers and the raw
``requests.Response`` for vendor content types (reference §1.5); IBM's own examples call
``.json()`` on create, wrap and unwrap results, so :func:`result_json` accepts both, as those
examples need, and :func:`test_vendor_content_types_reach_the_client_as_ibm_examples_expect`
pins down which one each call gets.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ibm_cloud_sdk_core import ApiException, DetailedResponse
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator, IAMAuthenticator
from keyprotect import IbmKeyProtectApiV2

from kyok.auth import AuthService
from kyok.auth.principals import SYSTEM
from kyok.kms.policies import validate_instance_policy
from live_server import LiveServer
from outside_kyok import unwrap_outside

KEY_TYPE = "application/vnd.ibm.kms.key+json"
RFC3339_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


# ----------------------------------------------------------------------------------- helpers


def body(obj: object) -> io.BytesIO:
    """A request body the way IBM's examples pass one: JSON in a ``BytesIO``."""
    return io.BytesIO(json.dumps(obj).encode())


def key_body(**resource: Any) -> io.BytesIO:
    """A create-key collection with one resource (reference §2.1, §9 step 1)."""
    return body(
        {
            "metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [{"type": KEY_TYPE, **resource}],
        }
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def result_json(response: DetailedResponse) -> Any:
    """The parsed body: ``get_result()`` itself when the SDK parsed it (``application/json``),
    ``get_result().json()`` when it handed back the raw ``requests.Response`` (vendor types;
    what IBM's examples call)."""
    result = response.get_result()
    if isinstance(result, requests.Response):
        return result.json()
    assert isinstance(result, dict), type(result)
    return result


def one(response: DetailedResponse, collection_type: str = KEY_TYPE) -> dict[str, Any]:
    """The single resource of a collection response (and checks the envelope)."""
    data = result_json(response)
    assert data["metadata"] == {"collectionType": collection_type, "collectionTotal": 1}, data
    (resource,) = data["resources"]
    assert isinstance(resource, dict)
    return resource


def failure(exc: pytest.ExceptionInfo[ApiException]) -> tuple[int, str]:
    """(HTTP status, Key Protect reason code) of a failed call (users read ``http_response``:
    reference §6)."""
    reasons = exc.value.http_response.json()["resources"][0]["reasons"]
    return exc.value.status_code, reasons[0]["code"]


def make_client(server: LiveServer) -> IbmKeyProtectApiV2:
    """The client as reference §8.1 configures it in code."""
    authenticator = IAMAuthenticator(server.api_key, url=server.url)
    kp = IbmKeyProtectApiV2(authenticator=authenticator)
    kp.set_service_url(server.url)
    return kp


@pytest.fixture(scope="module")
def kp(kyok_server: LiveServer) -> IbmKeyProtectApiV2:
    return make_client(kyok_server)


@pytest.fixture(scope="module")
def inst(kyok_server: LiveServer) -> str:
    return kyok_server.instance_id


@pytest.fixture(autouse=True)
def _quiet_deprecation_warning(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """``action_on_key`` logs a deprecation warning through the root logger; keep it quiet."""
    caplog.set_level(logging.ERROR)
    yield


def create(kp: IbmKeyProtectApiV2, inst: str, **resource: Any) -> dict[str, Any]:
    """Create one key (``_ring=``: in that key ring, through ``X-Kms-Key-Ring``)."""
    ring = resource.pop("_ring", None)
    resource.setdefault("extractable", False)
    response = kp.create_key(
        bluemix_instance=inst, key_create_body=key_body(**resource), x_kms_key_ring=ring
    )
    assert response.get_status_code() == 201
    return one(response)


def metadata(kp: IbmKeyProtectApiV2, inst: str, key: str) -> dict[str, Any]:
    response = kp.get_key_metadata(id=key, bluemix_instance=inst)
    assert response.get_status_code() == 200
    return one(response)


# ----------------------------------------------------------------------------------- keys


def test_create_root_standard_and_imported_keys(kp: IbmKeyProtectApiV2, inst: str) -> None:
    # a generated root key, return=representation (reference §9 step 1)
    response = kp.create_key(
        bluemix_instance=inst,
        key_create_body=key_body(
            name="py3-root", extractable=False, description="a root key", tags=["t1", "t2"]
        ),
        prefer="return=representation",
        correlation_id="3f1b2c4d-0000-4000-8000-000000000001",
    )
    assert response.get_status_code() == 201
    assert response.get_headers()["correlation-id"] == "3f1b2c4d-0000-4000-8000-000000000001"
    root = one(response)
    assert root["type"] == KEY_TYPE and root["name"] == "py3-root"
    assert root["extractable"] is False and root["imported"] is False and root["state"] == 1
    assert root["description"] == "a root key" and root["tags"] == ["t1", "t2"]
    assert root["keyRingID"] == "default" and root["deleted"] is False
    assert root["crn"].endswith(f":{inst}:key:{root['id']}") and root["crn"].startswith("crn:v1:")
    assert root["keyVersion"]["id"] and root["algorithmBitSize"] == 256
    for field in ("creationDate", "lastUpdateDate"):
        assert re.match(RFC3339_Z, root[field]), root[field]
    assert "payload" not in root  # never for a root key

    # a standard key with its own material: representation returns it, minimal does not
    material = os.urandom(48)
    std = create(kp, inst, name="py3-std", extractable=True, payload=b64(material))
    assert std["extractable"] is True and std["imported"] is True
    assert std["payload"] == b64(material)
    minimal = kp.create_key(
        bluemix_instance=inst,
        key_create_body=key_body(name="py3-std-min", extractable=True, payload=b64(material)),
        prefer="return=minimal",
    )
    assert minimal.get_status_code() == 201
    assert "payload" not in one(minimal)

    # a generated standard key: 256 bits of material come back
    generated = create(kp, inst, name="py3-std-gen", extractable=True)
    assert generated["imported"] is False
    assert len(base64.b64decode(generated["payload"])) == 32

    # an expiration date (Go marshals it with fractional seconds): back in RFC 3339 with Z
    expiring = create(
        kp, inst, name="py3-expiring", expirationDate="2099-01-02T03:04:05.123456789Z"
    )
    assert expiring["expirationDate"] == "2099-01-02T03:04:05Z"

    # an imported root key (plain import, no token): material accepted, never shown
    imported = create(kp, inst, name="py3-imported-root", payload=b64(os.urandom(32)))
    assert imported["imported"] is True and imported["extractable"] is False
    assert "payload" not in imported

    # get: the payload of a standard key (ReaderPlus and up), never of a root key
    got = kp.get_key(id=std["id"], bluemix_instance=inst)
    assert got.get_status_code() == 200
    assert one(got)["payload"] == b64(material)
    assert "payload" not in one(kp.get_key(id=imported["id"], bluemix_instance=inst))
    # metadata: same key, never a payload
    meta = metadata(kp, inst, std["id"])
    assert meta["id"] == std["id"] and meta["name"] == "py3-std" and "payload" not in meta


def test_vendor_content_types_reach_the_client_as_ibm_examples_expect(
    kp: IbmKeyProtectApiV2, inst: str
) -> None:
    """Reference §1.5: create, restore, wrap, unwrap and rewrap answer with vendor types, so
    ``get_result()`` is the raw Response (IBM's examples call ``.json()``); the rest is
    ``application/json``, parsed into a dict by the SDK."""
    created = kp.create_key(
        bluemix_instance=inst, key_create_body=key_body(name="py3-ctype", extractable=False)
    )
    assert isinstance(created.get_result(), requests.Response)
    assert created.get_headers()["content-type"] == KEY_TYPE
    key = created.get_result().json()["resources"][0]
    wrapped = kp.wrap_key(id=key["id"], bluemix_instance=inst)
    assert isinstance(wrapped.get_result(), requests.Response)
    assert wrapped.get_headers()["content-type"] == "application/vnd.ibm.kms.key_action+json"
    listed = kp.get_keys(bluemix_instance=inst, limit=1)
    assert isinstance(listed.get_result(), dict)
    assert listed.get_headers()["content-type"] == "application/json"


def test_list_keys_with_filters_and_the_key_total(kp: IbmKeyProtectApiV2, inst: str) -> None:
    ring = "py3-list"
    assert kp.create_key_ring(key_ring_id=ring, bluemix_instance=inst).get_status_code() == 201
    roots = [create(kp, inst, name=f"py3-list-root-{i}", _ring=ring) for i in range(3)]
    stds = [
        create(kp, inst, name=f"py3-list-std-{i}", extractable=True, _ring=ring) for i in range(2)
    ]
    needle = create(kp, inst, name="py3-NeedLe-x", aliases=["py3-hay-alias"], _ring=ring)
    gone = create(kp, inst, name="py3-list-gone", _ring=ring)
    deleted = kp.delete_key(id=gone["id"], bluemix_instance=inst)
    assert deleted.get_status_code() == 204

    def listed(**query: Any) -> list[dict[str, Any]]:
        response = kp.get_keys(bluemix_instance=inst, x_kms_key_ring=ring, **query)
        assert response.get_status_code() == 200
        data = result_json(response)
        assert data["metadata"]["collectionType"] == KEY_TYPE
        assert data["metadata"]["collectionTotal"] == len(data["resources"])
        for key in data["resources"]:
            assert "payload" not in key and key["keyRingID"] == ring
        return list(data["resources"])

    live = {k["id"] for k in [*roots, *stds, needle]}
    assert {k["id"] for k in listed()} == live  # destroyed keys hidden by default
    # pages: limit/offset partition the same list
    pages = [listed(limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [len(p) for p in pages] == [2, 2, 2, 0]
    assert {k["id"] for p in pages for k in p} == live
    # state=[1,5] (sent as state=1%2C5, reference §9) brings the destroyed key back
    with_deleted = listed(state=[1, 5])
    assert {k["id"] for k in with_deleted} == live | {gone["id"]}
    assert {k["state"] for k in with_deleted if k["id"] == gone["id"]} == {5}
    assert {k["id"] for k in listed(state=[5])} == {gone["id"]}
    # extractable
    assert {k["id"] for k in listed(extractable=True)} == {k["id"] for k in stds}
    assert {k["id"] for k in listed(extractable=False, state=[1, 5])} == {
        k["id"] for k in [*roots, needle, gone]
    }
    # search: substring of name or alias, case-insensitive; scopes; not:
    assert [k["id"] for k in listed(search="needle")] == [needle["id"]]
    assert [k["id"] for k in listed(search="alias:hay")] == [needle["id"]]
    assert listed(search="name:hay") == []
    assert {k["id"] for k in listed(search="not:py3-list")} == {needle["id"]}
    # sort (descending by name is not sortable: use creationDate, then id breaks ties)
    assert len(listed(sort="-creationDate", limit=3)) == 3

    # HEAD: the count in Key-Total, no body
    def total(**query: Any) -> int:
        response = kp.get_key_collection_metadata(
            bluemix_instance=inst, x_kms_key_ring=ring, **query
        )
        assert response.get_status_code() == 200
        assert response.get_result() is None
        return int(response.get_headers()["Key-Total"])

    assert total() == 6
    assert total(state=[0, 1, 2, 3]) == 6
    assert total(state=[1, 5]) == 7
    assert total(extractable=True) == 2
    assert total(filter="extractable=false state=5") == 1


def test_search_by_a_full_key_id_finds_the_key(kp: IbmKeyProtectApiV2, inst: str) -> None:
    key = create(kp, inst, name="py3-found-by-id")
    listed = result_json(kp.get_keys(bluemix_instance=inst, search=key["id"]))
    assert [k["id"] for k in listed["resources"]][:1] == [key["id"]]


def test_bad_list_queries_are_400(kp: IbmKeyProtectApiV2, inst: str) -> None:
    for query in ({"limit": 0}, {"limit": 5001}, {"offset": -1}, {"state": [4]}):
        with pytest.raises(ApiException) as exc:
            kp.get_keys(bluemix_instance=inst, **query)
        assert exc.value.status_code == 400, query


def test_wrap_unwrap_rewrap_and_rotate(kp: IbmKeyProtectApiV2, inst: str) -> None:
    key = create(kp, inst, name="py3-wrapper")
    kid, v1 = key["id"], key["keyVersion"]["id"]
    dek = os.urandom(32)

    # wrap a DEK with aad (reference §9 step 2)
    wrapped = kp.wrap_key(
        id=kid,
        bluemix_instance=inst,
        key_action_wrap_body=body({"plaintext": b64(dek), "aad": ["a1", "a2"]}),
    )
    assert wrapped.get_status_code() == 200
    w = result_json(wrapped)
    assert set(w) == {"ciphertext", "keyVersion"} and w["keyVersion"]["id"] == v1
    ct_v1 = w["ciphertext"]
    # wrap without plaintext: a 32-byte DEK is generated (Content-Length 0)
    generated = result_json(kp.wrap_key(id=kid, bluemix_instance=inst))
    gen_dek = base64.b64decode(generated["plaintext"])
    assert len(gen_dek) == 32 and generated["keyVersion"]["id"] == v1
    # an empty JSON object is the same
    generated2 = result_json(
        kp.wrap_key(id=kid, bluemix_instance=inst, key_action_wrap_body=body({}))
    )
    assert len(base64.b64decode(generated2["plaintext"])) == 32
    assert generated2["plaintext"] != generated["plaintext"]

    # unwrap with the same aad (reference §9 step 3)
    unwrapped = kp.unwrap_key(
        id=kid,
        bluemix_instance=inst,
        key_action_unwrap_body=body({"ciphertext": ct_v1, "aad": ["a1", "a2"]}),
    )
    assert unwrapped.get_status_code() == 200
    u = result_json(unwrapped)
    assert base64.b64decode(u["plaintext"]) == dek and u["keyVersion"]["id"] == v1
    assert "rewrappedKeyVersion" not in u and "ciphertext" not in u  # the newest version
    u = result_json(
        kp.unwrap_key(
            id=kid,
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": generated["ciphertext"]}),
        )
    )
    assert base64.b64decode(u["plaintext"]) == gen_dek
    # other aad, or none: refused, and nothing of the DEK comes back
    for aad in (["a1"], ["a2", "a1"], None):
        request: dict[str, Any] = {"ciphertext": ct_v1}
        if aad is not None:
            request["aad"] = aad
        with pytest.raises(ApiException) as exc:
            kp.unwrap_key(id=kid, bluemix_instance=inst, key_action_unwrap_body=body(request))
        assert exc.value.status_code in (400, 422), aad
        assert b64(dek) not in exc.value.http_response.text

    # rotate with {} (reference §9 step 4): 204, a new version
    rotated = kp.rotate_key(id=kid, bluemix_instance=inst, key_action_rotate_body=body({}))
    assert rotated.get_status_code() == 204 and rotated.get_result() is None
    after = metadata(kp, inst, kid)
    v2 = after["keyVersion"]["id"]
    assert v2 != v1 and "lastRotateDate" in after

    # unwrap after rotate: the DEK, plus the ciphertext rewrapped under the newest version
    stale = result_json(
        kp.unwrap_key(
            id=kid,
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": ct_v1, "aad": ["a1", "a2"]}),
        )
    )
    assert base64.b64decode(stale["plaintext"]) == dek
    assert stale["keyVersion"]["id"] == v1 and stale["rewrappedKeyVersion"]["id"] == v2
    ct_v2 = stale["ciphertext"]
    assert ct_v2 != ct_v1
    fresh = result_json(
        kp.unwrap_key(
            id=kid,
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": ct_v2, "aad": ["a1", "a2"]}),
        )
    )
    assert base64.b64decode(fresh["plaintext"]) == dek
    assert fresh["keyVersion"]["id"] == v2 and "rewrappedKeyVersion" not in fresh

    # rotate without a body (Content-Length 0), then rewrap the v1 ciphertext to v3
    assert kp.rotate_key(id=kid, bluemix_instance=inst).get_status_code() == 204
    v3 = metadata(kp, inst, kid)["keyVersion"]["id"]
    assert v3 not in (v1, v2)
    rewrapped = kp.rewrap_key(
        id=kid,
        bluemix_instance=inst,
        key_action_rewrap_body=body({"ciphertext": ct_v1, "aad": ["a1", "a2"]}),
    )
    assert rewrapped.get_status_code() == 200
    rw = result_json(rewrapped)
    assert set(rw) == {"ciphertext", "keyVersion", "rewrappedKeyVersion"}  # never the DEK
    assert rw["keyVersion"]["id"] == v1 and rw["rewrappedKeyVersion"]["id"] == v3
    back = result_json(
        kp.unwrap_key(
            id=kid,
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": rw["ciphertext"], "aad": ["a1", "a2"]}),
        )
    )
    assert base64.b64decode(back["plaintext"]) == dek and back["keyVersion"]["id"] == v3

    # the versions, newest first
    versions = kp.get_key_versions(id=kid, bluemix_instance=inst, total_count=True)
    assert versions.get_status_code() == 200
    listed = result_json(versions)
    assert listed["metadata"] == {
        "collectionType": "application/vnd.ibm.kms.key.version+json",
        "collectionTotal": 3,
        "totalCount": 3,
    }
    assert [v["id"] for v in listed["resources"]] == [v3, v2, v1]
    page = result_json(kp.get_key_versions(id=kid, bluemix_instance=inst, limit=1, offset=1))
    assert [v["id"] for v in page["resources"]] == [v2]


def test_root_key_only_and_imported_rotation(kp: IbmKeyProtectApiV2, inst: str) -> None:
    std = create(kp, inst, name="py3-not-root", extractable=True)
    with pytest.raises(ApiException) as exc:
        kp.wrap_key(id=std["id"], bluemix_instance=inst)
    assert failure(exc) == (400, "KEY_ROOT_REQ_ERR")
    # an imported root key rotates only with new material
    imported = create(kp, inst, name="py3-imported-rot", payload=b64(os.urandom(32)))
    with pytest.raises(ApiException) as exc:
        kp.rotate_key(id=imported["id"], bluemix_instance=inst, key_action_rotate_body=body({}))
    assert failure(exc) == (400, "KEY_PAYLOAD_REQ_ERR")
    response = kp.rotate_key(
        id=imported["id"],
        bluemix_instance=inst,
        key_action_rotate_body=body({"payload": b64(os.urandom(32))}),
    )
    assert response.get_status_code() == 204
    assert metadata(kp, inst, imported["id"])["keyVersion"]["id"] != imported["keyVersion"]["id"]


def test_disable_enable_delete_restore_purge(kp: IbmKeyProtectApiV2, inst: str) -> None:
    key = create(kp, inst, name="py3-lifecycle")
    kid = key["id"]
    ct = result_json(
        kp.wrap_key(
            id=kid, bluemix_instance=inst, key_action_wrap_body=body({"plaintext": b64(b"d" * 32)})
        )
    )["ciphertext"]

    # disable: 204, state 2, no wrapping
    disabled = kp.disable_key(id=kid, bluemix_instance=inst)
    assert disabled.get_status_code() == 204 and disabled.get_result() is None
    assert metadata(kp, inst, kid)["state"] == 2
    with pytest.raises(ApiException) as exc:
        kp.wrap_key(id=kid, bluemix_instance=inst)
    assert failure(exc)[0] == 409
    with pytest.raises(ApiException) as exc:
        kp.unwrap_key(
            id=kid, bluemix_instance=inst, key_action_unwrap_body=body({"ciphertext": ct})
        )
    assert failure(exc)[0] == 409
    # enable (enable_delay is 0 on this server): 204, state 1
    assert kp.enable_key(id=kid, bluemix_instance=inst).get_status_code() == 204
    assert metadata(kp, inst, kid)["state"] == 1

    # delete with force and return=representation (reference §9 step 6)
    deleted = kp.delete_key(
        id=kid, bluemix_instance=inst, prefer="return=representation", force=True
    )
    assert deleted.get_status_code() == 200
    gone = one(deleted)
    assert gone["state"] == 5 and gone["deleted"] is True
    assert gone["deletionDate"] and gone["deletedBy"] and gone["restoreAllowed"] is True
    # destroyed: metadata still readable; wrapping refused; deleting again is 410
    assert metadata(kp, inst, kid)["state"] == 5
    with pytest.raises(ApiException) as exc:
        kp.unwrap_key(
            id=kid, bluemix_instance=inst, key_action_unwrap_body=body({"ciphertext": ct})
        )
    assert exc.value.status_code in (409, 410)
    with pytest.raises(ApiException) as exc:
        kp.delete_key(id=kid, bluemix_instance=inst)
    assert failure(exc) == (410, "KEY_DELETED_ERR")

    # versions of a destroyed key: 409 unless all_key_states
    with pytest.raises(ApiException) as exc:
        kp.get_key_versions(id=kid, bluemix_instance=inst)
    assert exc.value.status_code == 409
    everything = result_json(
        kp.get_key_versions(id=kid, bluemix_instance=inst, all_key_states=True)
    )
    assert everything["metadata"]["collectionTotal"] == 1

    # restore: 201 with the key (vendor type), active again, old ciphertexts still open
    restored = kp.restore_key(id=kid, bluemix_instance=inst)
    assert restored.get_status_code() == 201
    back = one(restored)
    assert back["id"] == kid and back["state"] == 1 and back["deleted"] is False
    plain = result_json(
        kp.unwrap_key(
            id=kid, bluemix_instance=inst, key_action_unwrap_body=body({"ciphertext": ct})
        )
    )["plaintext"]
    assert base64.b64decode(plain) == b"d" * 32

    # delete without Prefer: 204 and no body; then purge (KeyPurge; purge_after is 0 here)
    plain_delete = kp.delete_key(id=kid, bluemix_instance=inst)
    assert plain_delete.get_status_code() == 204 and plain_delete.get_result() is None
    purged = kp.purge_key(id=kid, bluemix_instance=inst)
    assert purged.get_status_code() == 200
    assert one(purged)["id"] == kid
    for call in (kp.get_key, kp.get_key_metadata, kp.restore_key):
        with pytest.raises(ApiException) as exc:
            call(id=kid, bluemix_instance=inst)
        assert failure(exc) == (404, "KEY_NOT_FOUND_ERR"), call
    # purge with return=minimal: 204
    other = create(kp, inst, name="py3-purge-minimal")
    kp.delete_key(id=other["id"], bluemix_instance=inst)
    minimal = kp.purge_key(id=other["id"], bluemix_instance=inst, prefer="return=minimal")
    assert minimal.get_status_code() == 204 and minimal.get_result() is None
    # an active key cannot be purged
    active = create(kp, inst, name="py3-not-purgeable")
    with pytest.raises(ApiException) as exc:
        kp.purge_key(id=active["id"], bluemix_instance=inst)
    assert exc.value.status_code == 409


def test_key_rings_and_moving_a_key(kp: IbmKeyProtectApiV2, inst: str) -> None:
    created = kp.create_key_ring(key_ring_id="py3-ring-a", bluemix_instance=inst)
    assert created.get_status_code() == 201 and created.get_result() is None  # empty body
    assert (
        kp.create_key_ring(key_ring_id="py3-ring-b", bluemix_instance=inst).get_status_code() == 201
    )
    with pytest.raises(ApiException) as exc:
        kp.create_key_ring(key_ring_id="py3-ring-a", bluemix_instance=inst)
    assert exc.value.status_code == 409

    rings = kp.list_key_rings(bluemix_instance=inst, total_count=True)
    assert rings.get_status_code() == 200
    listed = result_json(rings)
    assert listed["metadata"]["collectionType"] == "application/vnd.ibm.kms.key_ring+json"
    ids = [r["id"] for r in listed["resources"]]
    assert {"default", "py3-ring-a", "py3-ring-b"} <= set(ids)
    assert listed["metadata"]["totalCount"] >= len(ids)
    page = result_json(kp.list_key_rings(bluemix_instance=inst, limit=1, offset=0))
    assert len(page["resources"]) == 1

    key = create(kp, inst, name="py3-ringed", _ring="py3-ring-a")
    assert key["keyRingID"] == "py3-ring-a"
    # a key ring holding a live key cannot be deleted
    with pytest.raises(ApiException) as exc:
        kp.delete_key_ring(key_ring_id="py3-ring-a", bluemix_instance=inst)
    assert exc.value.status_code == 409
    # move it: X-Kms-Key-Ring names the current ring, the body the new one
    moved = kp.patch_key(
        id=key["id"],
        bluemix_instance=inst,
        key_patch_body=body({"keyRingID": "py3-ring-b"}),
        x_kms_key_ring="py3-ring-a",
    )
    assert moved.get_status_code() == 200
    assert one(moved)["keyRingID"] == "py3-ring-b"
    assert metadata(kp, inst, key["id"])["keyRingID"] == "py3-ring-b"
    # X-Kms-Key-Ring on a read limits it to that ring
    with pytest.raises(ApiException) as exc:
        kp.get_key_metadata(id=key["id"], bluemix_instance=inst, x_kms_key_ring="py3-ring-a")
    assert exc.value.status_code == 404
    # now ring a is empty: 204
    deleted = kp.delete_key_ring(key_ring_id="py3-ring-a", bluemix_instance=inst)
    assert deleted.get_status_code() == 204
    ids = {r["id"] for r in result_json(kp.list_key_rings(bluemix_instance=inst))["resources"]}
    assert "py3-ring-a" not in ids and "py3-ring-b" in ids
    # with force, destroyed keys move to default and the ring goes
    kp.delete_key(id=key["id"], bluemix_instance=inst)
    assert (
        kp.delete_key_ring(
            key_ring_id="py3-ring-b", bluemix_instance=inst, force=True
        ).get_status_code()
        == 204
    )
    assert metadata(kp, inst, key["id"])["keyRingID"] == "default"


def test_aliases_stand_for_the_key_everywhere(kp: IbmKeyProtectApiV2, inst: str) -> None:
    key = create(kp, inst, name="py3-aliased", aliases=["py3-first-alias"])
    assert key["aliases"] == ["py3-first-alias"]
    added = kp.create_key_alias(id=key["id"], alias="py3-second-alias", bluemix_instance=inst)
    assert added.get_status_code() == 201
    alias = one(added, "application/vnd.ibm.kms.alias+json")
    assert alias["keyId"] == key["id"] and alias["alias"] == "py3-second-alias"
    assert alias["createdBy"] and alias["creationDate"]
    # an alias (or the other alias) works as {id}
    meta = metadata(kp, inst, "py3-second-alias")
    assert meta["id"] == key["id"]
    assert sorted(meta["aliases"]) == ["py3-first-alias", "py3-second-alias"]
    ct = result_json(
        kp.wrap_key(
            id="py3-first-alias",
            bluemix_instance=inst,
            key_action_wrap_body=body({"plaintext": b64(b"q" * 16)}),
        )
    )["ciphertext"]
    plain = result_json(
        kp.unwrap_key(
            id="py3-second-alias",
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": ct}),
        )
    )["plaintext"]
    assert base64.b64decode(plain) == b"q" * 16
    assert kp.rotate_key(id="py3-first-alias", bluemix_instance=inst).get_status_code() == 204
    versions = result_json(kp.get_key_versions(id="py3-second-alias", bluemix_instance=inst))
    assert versions["metadata"]["collectionTotal"] == 2
    assert one(kp.get_key(id="py3-first-alias", bluemix_instance=inst))["id"] == key["id"]
    # the same alias twice in the instance: 409
    other = create(kp, inst, name="py3-other")
    with pytest.raises(ApiException) as exc:
        kp.create_key_alias(id=other["id"], alias="py3-first-alias", bluemix_instance=inst)
    assert exc.value.status_code == 409
    # delete: 204, then the alias no longer resolves
    removed = kp.delete_key_alias(id=key["id"], alias="py3-first-alias", bluemix_instance=inst)
    assert removed.get_status_code() == 204 and removed.get_result() is None
    with pytest.raises(ApiException) as exc:
        kp.get_key_metadata(id="py3-first-alias", bluemix_instance=inst)
    assert failure(exc) == (404, "KEY_NOT_FOUND_ERR")
    assert metadata(kp, inst, key["id"])["aliases"] == ["py3-second-alias"]


def test_legacy_action_on_key(kp: IbmKeyProtectApiV2, inst: str) -> None:
    """The deprecated ``POST /keys/{id}?action=<a>`` form the SDK still sends (reference §1.1)."""
    key = create(kp, inst, name="py3-legacy")
    kid = key["id"]

    def act(action: str, payload: object) -> DetailedResponse:
        return kp.action_on_key(
            id=kid, bluemix_instance=inst, action=action, key_action_body=body(payload)
        )

    wrapped = act("wrap", {"plaintext": b64(b"L" * 32), "aad": ["x"]})
    assert wrapped.get_status_code() == 200
    w = result_json(wrapped)
    assert w["keyVersion"]["id"] == key["keyVersion"]["id"]
    u = result_json(act("unwrap", {"ciphertext": w["ciphertext"], "aad": ["x"]}))
    assert base64.b64decode(u["plaintext"]) == b"L" * 32
    generated = result_json(act("wrap", {}))
    assert len(base64.b64decode(generated["plaintext"])) == 32
    assert act("rotate", {}).get_status_code() == 204
    rw = result_json(act("rewrap", {"ciphertext": w["ciphertext"], "aad": ["x"]}))
    assert rw["rewrappedKeyVersion"]["id"] != rw["keyVersion"]["id"]
    assert act("disable", {}).get_status_code() == 204
    assert metadata(kp, inst, kid)["state"] == 2
    assert act("enable", {}).get_status_code() == 204
    assert metadata(kp, inst, kid)["state"] == 1
    kp.delete_key(id=kid, bluemix_instance=inst)
    restored = act("restore", {})
    assert restored.get_status_code() == 201 and one(restored)["state"] == 1
    with pytest.raises(ApiException) as exc:
        act("frobnicate", {})
    assert exc.value.status_code in (400, 404)


def test_errors_reach_the_client_in_the_key_protect_envelope(
    kyok_server: LiveServer, kp: IbmKeyProtectApiV2, inst: str
) -> None:
    with pytest.raises(ApiException) as exc:
        kp.get_key(id="00000000-0000-4000-8000-000000000000", bluemix_instance=inst)
    assert failure(exc) == (404, "KEY_NOT_FOUND_ERR")
    error = exc.value.http_response.json()
    assert error["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json"
    assert error["resources"][0]["errorMsg"].startswith("Not Found")
    # a token the server did not issue, and the right token for the wrong instance: 401
    forged = IbmKeyProtectApiV2(authenticator=BearerTokenAuthenticator("a.b.c"))
    forged.set_service_url(kyok_server.url)
    with pytest.raises(ApiException) as exc:
        forged.get_keys(bluemix_instance=inst)
    assert exc.value.status_code == 401
    with pytest.raises(ApiException) as exc:
        kp.get_keys(bluemix_instance="00000000-0000-4000-8000-00000000beef")
    assert exc.value.status_code == 401
    # a wrong API key: the IAM endpoint refuses it (400, IAM's shape) before any KMS call
    bad = IbmKeyProtectApiV2(
        authenticator=IAMAuthenticator("kyok_" + "A" * 43, url=kyok_server.url)
    )
    bad.set_service_url(kyok_server.url)
    with pytest.raises(ApiException) as exc:
        bad.get_keys(bluemix_instance=inst)
    assert exc.value.status_code == 400


# ----------------------------------------------------------------------------------- env


def _clear_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("IBM_KEY_PROTECT_API_", "IBM_CREDENTIALS_FILE", "VCAP_SERVICES")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("source", ["environment", "credentials-file"])
def test_new_instance_configured_only_by_the_environment(
    kyok_server: LiveServer,
    inst: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    """``IbmKeyProtectApiV2.new_instance()`` with nothing but ``IBM_KEY_PROTECT_API_*``
    settings (reference §8.1), from the process environment or an ``ibm-credentials.env``
    file named by ``IBM_CREDENTIALS_FILE``."""
    _clear_sdk_environment(monkeypatch)
    settings = {
        "IBM_KEY_PROTECT_API_URL": kyok_server.url,
        "IBM_KEY_PROTECT_API_AUTH_TYPE": "iam",
        "IBM_KEY_PROTECT_API_APIKEY": kyok_server.api_key,
        "IBM_KEY_PROTECT_API_AUTH_URL": kyok_server.url,
    }
    if source == "environment":
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
    else:
        credentials = tmp_path / "ibm-credentials.env"
        credentials.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        monkeypatch.setenv("IBM_CREDENTIALS_FILE", str(credentials))

    kp = IbmKeyProtectApiV2.new_instance()
    assert kp.service_url == kyok_server.url
    assert isinstance(kp.authenticator, IAMAuthenticator)
    key = create(kp, inst, name=f"py3-env-{source}")
    assert metadata(kp, inst, key["id"])["name"] == f"py3-env-{source}"
    listed = result_json(kp.get_keys(bluemix_instance=inst, search=f"exact:py3-env-{source}"))
    assert [k["id"] for k in listed["resources"]] == [key["id"]]


# ------------------------------------------------------------- import tokens, policies, registrations


POLICY_TYPE = "application/vnd.ibm.kms.policy+json"


def principal_client(
    server: LiveServer, inst: str, name: str, role: str, kind: str = "user"
) -> tuple[IbmKeyProtectApiV2, str]:
    """Another principal of the instance with ``role``, and a client logged in with its own
    API key (made through kyok's auth service, as an administrator would with
    ``/api/v2/kyok/principals``)."""
    auth = server.node.auth
    assert isinstance(auth, AuthService)
    admin = auth.authenticate(f"Bearer {auth.issue_token(server.api_key).access_token}", inst)
    principal = auth.create_principal(admin, name, kind)
    auth.grant(admin, principal.id, role, "instance")
    _, secret = auth.create_api_key(admin, principal.id, "compat")
    api_key = secret.reveal()
    client = IbmKeyProtectApiV2(authenticator=IAMAuthenticator(api_key, url=server.url))
    client.set_service_url(server.url)
    return client, api_key


def seal_by_hand(material: bytes, token: dict[str, Any]) -> dict[str, str]:
    """What the Key Protect docs and the Go client do: the nonce under K with AES-GCM (12-byte
    IV, no AAD), K under the token's public key with RSA-OAEP SHA-256 (reference §5)."""
    public = serialization.load_pem_public_key(base64.b64decode(token["payload"]))
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    iv = os.urandom(12)
    encrypted_nonce = AESGCM(material).encrypt(iv, base64.b64decode(token["nonce"]), None)
    return {
        "payload": b64(public.encrypt(material, oaep)),
        "encryptedNonce": b64(encrypted_nonce),
        "iv": b64(iv),
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
    }


def test_secure_import_and_rotation_with_import_tokens(kp: IbmKeyProtectApiV2, inst: str) -> None:
    made = kp.post_import_token(bluemix_instance=inst, expiration=900, max_allowed_retrievals=2)
    assert made.get_status_code() == 200  # py3's integration tests assert 200
    token = made.get_result()
    assert isinstance(token, dict)  # application/json: parsed by the SDK
    assert token["expiration"] == 900 and token["maxAllowedRetrievals"] == 2
    assert token["remainingRetrievals"] == 2 and token["creationDate"] and token["expirationDate"]

    got = kp.get_import_token(bluemix_instance=inst)
    assert got.get_status_code() == 200
    retrieved = got.get_result()
    assert retrieved["remainingRetrievals"] == 1
    assert base64.b64decode(retrieved["payload"]).startswith(b"-----BEGIN PUBLIC KEY-----")
    material = os.urandom(32)
    created = kp.create_key(
        bluemix_instance=inst,
        key_create_body=key_body(
            name="py3-secure-import", extractable=False, **seal_by_hand(material, retrieved)
        ),
        prefer="return=minimal",
    )
    assert created.get_status_code() == 201
    key = one(created)
    assert key["imported"] is True and "payload" not in key
    dek = os.urandom(32)
    wrapped = result_json(
        kp.wrap_key(
            id=key["id"],
            bluemix_instance=inst,
            key_action_wrap_body=body({"plaintext": b64(dek), "aad": ["py3"]}),
        )
    )
    # whoever holds the raw key unwraps kyok's ciphertext without kyok (formats.md §2, §4)
    ciphertext = base64.b64decode(wrapped["ciphertext"])
    assert unwrap_outside(material, ciphertext, ["py3"]) == dek

    # rotate with new material, sealed to the same token (second retrieval)
    again = kp.get_import_token(bluemix_instance=inst).get_result()
    assert again["remainingRetrievals"] == 0 and again["nonce"] == retrieved["nonce"]
    new_material = os.urandom(32)
    rotated = kp.rotate_key(
        id=key["id"],
        bluemix_instance=inst,
        key_action_rotate_body=body(seal_by_hand(new_material, again)),
    )
    assert rotated.get_status_code() == 204
    assert metadata(kp, inst, key["id"])["keyVersion"]["id"] != key["keyVersion"]["id"]
    # the DEK wrapped before the rotation still unwraps, and comes back rewrapped
    unwrapped = result_json(
        kp.unwrap_key(
            id=key["id"],
            bluemix_instance=inst,
            key_action_unwrap_body=body({"ciphertext": wrapped["ciphertext"], "aad": ["py3"]}),
        )
    )
    assert base64.b64decode(unwrapped["plaintext"]) == dek
    assert unwrapped["rewrappedKeyVersion"]["id"] != wrapped["keyVersion"]["id"]
    # ...and the rewrapped DEK opens outside kyok with the new raw key
    rewrapped = base64.b64decode(unwrapped["ciphertext"])
    assert unwrap_outside(new_material, rewrapped, ["py3"]) == dek
    # the retrievals are used up
    with pytest.raises(ApiException) as exc:
        kp.get_import_token(bluemix_instance=inst)
    assert failure(exc) == (409, "IMPORT_TOKEN_EXPIRED_ERR")
    # a nonce that is not the token's
    wrong = seal_by_hand(os.urandom(32), {**retrieved, "nonce": b64(os.urandom(12))})
    with pytest.raises(ApiException) as exc:
        kp.create_key(
            bluemix_instance=inst,
            key_create_body=key_body(name="py3-wrong-nonce", extractable=False, **wrong),
        )
    assert failure(exc) == (400, "INCORRECT_NONCE_ERR")


def test_key_policies_and_overrides(kp: IbmKeyProtectApiV2, inst: str) -> None:
    created = kp.create_key_with_policies_overrides(
        bluemix_instance=inst,
        key_with_policy_overrides_create_body=key_body(
            name="py3-overrides",
            extractable=False,
            rotation={"enabled": True, "interval_month": 2},
            dualAuthDelete={"enabled": False},
        ),
    )
    assert created.get_status_code() == 201
    key = one(created)  # a vendor content type: IBM's examples call .json() on it
    assert key["rotation"] == {"enabled": True, "interval_month": 2}
    assert key["dualAuthDelete"] == {"enabled": False}

    policies = kp.get_policy(id=key["id"], bluemix_instance=inst)
    assert policies.get_status_code() == 200
    rotation = one(policies, POLICY_TYPE)
    assert rotation["rotation"] == {"enabled": True, "interval_month": 2}
    assert rotation["type"] == POLICY_TYPE and rotation["crn"].endswith(key["id"])

    put = kp.put_policy(
        id=key["id"],
        bluemix_instance=inst,
        key_policy_put_body={
            "metadata": {"collectionType": POLICY_TYPE, "collectionTotal": 1},
            "resources": [
                {"type": POLICY_TYPE, "rotation": {"enabled": True, "interval_month": 6}}
            ],
        },
        policy="rotation",
    )
    assert put.get_status_code() == 200
    assert one(put, POLICY_TYPE)["rotation"] == {"enabled": True, "interval_month": 6}
    put = kp.put_policy(
        id=key["id"],
        bluemix_instance=inst,
        key_policy_put_body={
            "metadata": {"collectionType": POLICY_TYPE, "collectionTotal": 1},
            "resources": [{"type": POLICY_TYPE, "dualAuthDelete": {"enabled": True}}],
        },
        policy="dualAuthDelete",
    )
    assert put.get_status_code() == 200
    both = one(kp.get_policy(id=key["id"], bluemix_instance=inst), POLICY_TYPE)
    assert both["rotation"]["interval_month"] == 6 and both["dualAuthDelete"] == {"enabled": True}
    only = one(
        kp.get_policy(id=key["id"], bluemix_instance=inst, policy="dualAuthDelete"), POLICY_TYPE
    )
    assert "rotation" not in only
    # the Go client's "interval not given" (-1) is a 400; dual auth cannot be turned off
    for resource in (
        {"type": POLICY_TYPE, "rotation": {"enabled": True, "interval_month": -1}},
        {"type": POLICY_TYPE, "dualAuthDelete": {"enabled": False}},
    ):
        with pytest.raises(ApiException) as exc:
            kp.put_policy(
                id=key["id"],
                bluemix_instance=inst,
                key_policy_put_body={
                    "metadata": {"collectionType": POLICY_TYPE, "collectionTotal": 1},
                    "resources": [resource],
                },
            )
        assert exc.value.status_code == 400


def _instance_policy(policy_type: str, enabled: bool, **attributes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"enabled": enabled}
    if attributes:
        data["attributes"] = attributes
    return {
        "metadata": {"collectionType": POLICY_TYPE, "collectionTotal": 1},
        "resources": [{"policy_type": policy_type, "policy_data": data}],
    }


def test_instance_policies_and_the_allowed_ip_port(
    kyok_server: LiveServer, kp: IbmKeyProtectApiV2, inst: str
) -> None:
    try:
        none = kp.get_allowed_ip_port(bluemix_instance=inst)
        assert none.get_status_code() == 200 and none.get_result()["resources"] == []
        for policy_type, attributes in (
            ("metrics", {}),
            ("allowedIP", {"allowed_ip": ["127.0.0.0/8", "::1/128"]}),
            ("keyCreateImportAccess", {"create_standard_key": False}),
        ):
            put = kp.put_instance_policy(
                bluemix_instance=inst,
                instance_policy_put_body=_instance_policy(policy_type, True, **attributes),
                policy=policy_type,
            )
            assert put.get_status_code() == 204 and put.get_result() is None
        listed = kp.get_instance_policy(bluemix_instance=inst)
        assert listed.get_status_code() == 200
        found = {p["policy_type"]: p for p in listed.get_result()["resources"]}
        assert found["allowedIP"]["policy_data"]["attributes"]["allowed_ip"] == [
            "127.0.0.0/8",
            "::1/128",
        ]
        access = found["keyCreateImportAccess"]["policy_data"]["attributes"]
        assert access["create_standard_key"] is False and access["import_root_key"] is True
        one_type = kp.get_instance_policy(bluemix_instance=inst, policy="metrics").get_result()
        assert [p["policy_type"] for p in one_type["resources"]] == ["metrics"]
        # the policies act: standard keys cannot be created; 127.0.0.1 is allowed in
        with pytest.raises(ApiException) as exc:
            create(kp, inst, name="py3-refused-std", extractable=True)
        assert failure(exc) == (409, "KEY_CREATE_IMPORT_ACCESS_ERR")
        port = kp.get_allowed_ip_port(bluemix_instance=inst).get_result()
        assert (
            port["metadata"]["collectionType"] == "application/vnd.ibm.kms.allowed_ip_metadata+json"
        )
        assert port["resources"] == [
            {"private_endpoint_port": int(kyok_server.url.rsplit(":", 1)[1])}
        ]
        # ?policy must name the body's type
        with pytest.raises(ApiException) as exc:
            kp.put_instance_policy(
                bluemix_instance=inst,
                instance_policy_put_body=_instance_policy("metrics", True),
                policy="rotation",
            )
        assert failure(exc) == (400, "BODY_QUERY_PARAM_MISMATCH_ERR")
        # an allowedIP policy that leaves 127.0.0.1 out locks this client out (401)
        kp.put_instance_policy(
            bluemix_instance=inst,
            instance_policy_put_body=_instance_policy("allowedIP", True, allowed_ip=["10.0.0.0/8"]),
            policy="allowedIP",
        )
        with pytest.raises(ApiException) as exc:
            kp.get_keys(bluemix_instance=inst)
        assert failure(exc) == (401, "UNAUTHORIZED_ERR")
    finally:
        # the server is shared with the other tests: every policy off again
        off = ("allowedIP", "keyCreateImportAccess", "metrics")
        kyok_server.node.service.set_instance_policies(
            SYSTEM, inst, [validate_instance_policy(t, False, None) for t in off]
        )
    assert kp.get_keys(bluemix_instance=inst, limit=1).get_status_code() == 200


def test_dual_authorisation_needs_a_second_principal(
    kyok_server: LiveServer, kp: IbmKeyProtectApiV2, inst: str
) -> None:
    other, _ = principal_client(kyok_server, inst, "py3-second-manager", "Manager")
    created = kp.create_key_with_policies_overrides(
        bluemix_instance=inst,
        key_with_policy_overrides_create_body=key_body(
            name="py3-dual", extractable=False, dualAuthDelete={"enabled": True}
        ),
    )
    key = one(created)
    assert key["dualAuthDelete"]["enabled"] is True
    # alone: refused
    with pytest.raises(ApiException) as exc:
        kp.delete_key(id=key["id"], bluemix_instance=inst)
    assert failure(exc) == (409, "AUTHORIZATIONS_NOT_MET")
    # approve, withdraw: still refused for the other one
    assert kp.set_key_for_deletion(id=key["id"], bluemix_instance=inst).get_status_code() == 204
    assert metadata(kp, inst, key["id"])["dualAuthDelete"]["keySetForDeletion"] is True
    assert kp.unset_key_for_deletion(id=key["id"], bluemix_instance=inst).get_status_code() == 204
    with pytest.raises(ApiException) as exc:
        other.delete_key(id=key["id"], bluemix_instance=inst)
    assert failure(exc) == (409, "AUTHORIZATIONS_NOT_MET")
    # approve; the approver cannot delete, the other principal can
    assert kp.set_key_for_deletion(id=key["id"], bluemix_instance=inst).get_status_code() == 204
    with pytest.raises(ApiException) as exc:
        kp.delete_key(id=key["id"], bluemix_instance=inst)
    assert failure(exc) == (409, "AUTHORIZATIONS_NOT_MET")
    deleted = other.delete_key(id=key["id"], bluemix_instance=inst, prefer="return=representation")
    assert deleted.get_status_code() == 200 and one(deleted)["state"] == 5
    # a key without dual authorisation: set is refused
    plain = create(kp, inst, name="py3-single")
    with pytest.raises(ApiException) as exc:
        kp.set_key_for_deletion(id=plain["id"], bluemix_instance=inst)
    assert failure(exc) == (409, "NOT_DUAL_AUTH_ERR")


def test_registrations_sync_and_forced_deletes(
    kyok_server: LiveServer, kp: IbmKeyProtectApiV2, inst: str
) -> None:
    """Registrations are written by services (the SDK has no call for it: raw HTTP with the
    service's token), read with ``get_registrations``; they hold their key back from deletion."""
    _, service_key = principal_client(kyok_server, inst, "py3-cos-service", "Writer", "service")
    service_token = IAMAuthenticator(service_key, url=kyok_server.url).token_manager.get_token()
    key = create(kp, inst, name="py3-registered")
    crns = [
        f"crn:v1:bluemix:public:cloud-object-storage:global:a/py3:inst:bucket:{name}"
        for name in ("b1", "b2")
    ]
    for crn, hold in zip(crns, (False, True), strict=True):
        r = requests.post(
            f"{kyok_server.url}/api/v2/keys/{key['id']}/registrations/{quote(crn, safe='')}",
            headers={"Authorization": f"Bearer {service_token}", "Bluemix-Instance": inst},
            json={
                "metadata": {
                    "collectionType": "application/vnd.ibm.kms.registration_input+json",
                    "collectionTotal": 1,
                },
                "resources": [{"preventKeyDeletion": hold, "description": "py3"}],
            },
            timeout=10,
        )
        assert r.status_code == 201, r.text
    # a user cannot write them
    r = requests.post(
        f"{kyok_server.url}/api/v2/keys/{key['id']}/registrations/{quote(crns[0] + 'x', safe='')}",
        headers={
            "Authorization": f"Bearer {kp.authenticator.token_manager.get_token()}",
            "Bluemix-Instance": inst,
        },
        timeout=10,
    )
    assert (
        r.status_code == 403
        and r.json()["resources"][0]["reasons"][0]["code"] == "SERVICE_ONLY_ERR"
    )

    listed = kp.get_registrations(id=key["id"], bluemix_instance=inst, total_count=True)
    assert listed.get_status_code() == 200
    data = listed.get_result()
    assert data["metadata"]["collectionType"] == "application/vnd.ibm.kms.registration+json"
    assert data["metadata"]["totalCount"] == 2
    assert {r["resourceCrn"] for r in data["resources"]} == set(crns)
    assert all(
        r["keyId"] == key["id"] and r["keyName"] == "py3-registered" for r in data["resources"]
    )
    held = kp.get_registrations(id=key["id"], bluemix_instance=inst, prevent_key_deletion=True)
    assert [r["resourceCrn"] for r in held.get_result()["resources"]] == [crns[1]]
    query = quote("crn:v1:bluemix:public:cloud-object-storage:global:a/py3:*", safe="")
    everywhere = kp.get_registrations_all_keys(
        bluemix_instance=inst, url_encoded_resource_crn_query=query, limit=10
    )
    assert {r["resourceCrn"] for r in everywhere.get_result()["resources"]} == set(crns)

    # sync: 204 (the compat server's sync interval is 0)
    synced = kp.sync_associated_resources(id=key["id"], bluemix_instance=inst)
    assert synced.get_status_code() == 204 and synced.get_result() is None

    # a hold refuses even force; without it, force deletes a registered key
    with pytest.raises(ApiException) as exc:
        kp.delete_key(id=key["id"], bluemix_instance=inst, force=True)
    assert failure(exc) == (409, "PREV_KEY_DEL_ERR")
    r = requests.delete(
        f"{kyok_server.url}/api/v2/keys/{key['id']}/registrations/{quote(crns[1], safe='')}",
        headers={"Authorization": f"Bearer {service_token}", "Bluemix-Instance": inst},
        timeout=10,
    )
    assert r.status_code == 204
    with pytest.raises(ApiException) as exc:
        kp.delete_key(id=key["id"], bluemix_instance=inst)
    assert failure(exc) == (409, "PROTECTED_RESOURCE_ERR")
    assert kp.delete_key(id=key["id"], bluemix_instance=inst, force=True).get_status_code() == 204
