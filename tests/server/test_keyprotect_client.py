"""The unmodified IBM ``keyprotect`` 3.x client against a real server (smoke test; the full
compatibility suites live elsewhere). Requests are exactly what reference §9 records."""

from __future__ import annotations

import base64
import io
import json

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator, IAMAuthenticator
from keyprotect.ibm_key_protect_api_v2 import IbmKeyProtectApiV2
from tests.server.conftest import Running, ServeFactory

KEY_TYPE = "application/vnd.ibm.kms.key+json"


def _client(running: Running, *, iam: bool = True) -> IbmKeyProtectApiV2:
    """The client configured as reference §8.1 says: the server is also the IAM endpoint."""
    authenticator: IAMAuthenticator | BearerTokenAuthenticator
    if iam:
        authenticator = IAMAuthenticator(running.api_key, url=running.url)
    else:
        authenticator = BearerTokenAuthenticator(running.token())
    kp = IbmKeyProtectApiV2(authenticator=authenticator)
    kp.set_service_url(running.url)
    if running.ca is not None:
        path = running.node.settings.data_dir / "ca.pem"
        running.ca.cert_pem.write_to_path(str(path))
        kp.set_http_config({"verify": str(path)})
        if isinstance(authenticator, IAMAuthenticator):
            authenticator.token_manager.http_config = {"verify": str(path)}
    return kp


def _body(obj: object) -> io.BytesIO:
    return io.BytesIO(json.dumps(obj).encode())


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_create_wrap_unwrap_rotate_delete_with_keyprotect_3(
    served: ServeFactory, tls: bool
) -> None:
    running = served(tls=tls)
    kp = _client(running)
    inst = running.instance
    create = {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
              "resources": [{"type": KEY_TYPE, "name": "root1", "extractable": False}]}  # fmt: skip
    response = kp.create_key(
        bluemix_instance=inst, key_create_body=_body(create), prefer="return=representation"
    )
    assert response.get_status_code() == 201
    key = response.get_result().json()["resources"][0]  # as IBM's own py3 examples do
    dek = base64.b64encode(b"0123456789abcdef").decode()
    wrapped = kp.wrap_key(
        id=key["id"],
        bluemix_instance=inst,
        key_action_wrap_body=_body({"plaintext": dek, "aad": ["a1"]}),
    )
    assert wrapped.get_status_code() == 200
    ciphertext = wrapped.get_result().json()["ciphertext"]
    generated = (
        kp.wrap_key(id=key["id"], bluemix_instance=inst).get_result().json()
    )  # Content-Length 0
    assert len(base64.b64decode(generated["plaintext"])) == 32
    unwrapped = kp.unwrap_key(
        id=key["id"],
        bluemix_instance=inst,
        key_action_unwrap_body=_body({"ciphertext": ciphertext, "aad": ["a1"]}),
    )
    assert unwrapped.get_result().json()["plaintext"] == dek
    rotated = kp.rotate_key(id=key["id"], bluemix_instance=inst, key_action_rotate_body=_body({}))
    assert rotated.get_status_code() == 204
    old = kp.unwrap_key(
        id=key["id"],
        bluemix_instance=inst,
        key_action_unwrap_body=_body({"ciphertext": ciphertext, "aad": ["a1"]}),
    )
    assert "rewrappedKeyVersion" in old.get_result().json()
    listed = kp.get_keys(bluemix_instance=inst, limit=10, offset=0, state=[1, 5], extractable=False)
    assert listed.get_result()["metadata"]["collectionTotal"] == 1  # application/json: a dict
    total = kp.get_key_collection_metadata(bluemix_instance=inst, state=[0, 1, 2, 3])
    assert total.get_headers()["Key-Total"] == "1"
    got = kp.get_key(id=key["id"], bluemix_instance=inst).get_result()
    assert got["resources"][0]["id"] == key["id"]
    deleted = kp.delete_key(
        id=key["id"], bluemix_instance=inst, prefer="return=representation", force=True
    )
    assert deleted.get_status_code() == 200 and deleted.get_result()["resources"][0]["state"] == 5
    with pytest.raises(ApiException) as failure:
        kp.get_key(id="no-such-alias", bluemix_instance=inst)
    assert failure.value.status_code == 404
    assert (
        failure.value.http_response.json()["resources"][0]["reasons"][0]["code"]
        == "KEY_NOT_FOUND_ERR"
    )


def test_key_rings_and_aliases_with_keyprotect_3(served: ServeFactory) -> None:
    running = served()
    kp = _client(running, iam=False)
    inst = running.instance
    assert (
        kp.create_key_ring(key_ring_id="ring-py3", bluemix_instance=inst).get_status_code() == 201
    )
    rings = kp.list_key_rings(bluemix_instance=inst).get_result()
    assert {r["id"] for r in rings["resources"]} == {"default", "ring-py3"}
    create = {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
              "resources": [{"type": KEY_TYPE, "name": "ringed", "extractable": False}]}  # fmt: skip
    key = (
        kp.create_key(
            bluemix_instance=inst, key_create_body=_body(create), x_kms_key_ring="ring-py3"
        )
        .get_result()
        .json()["resources"][0]
    )
    assert key["keyRingID"] == "ring-py3"
    alias = kp.create_key_alias(id=key["id"], alias="py3-alias", bluemix_instance=inst)
    assert alias.get_status_code() == 201
    meta = kp.get_key_metadata(id="py3-alias", bluemix_instance=inst).get_result()
    assert meta["resources"][0]["aliases"] == ["py3-alias"]
    moved = kp.patch_key(
        id=key["id"],
        bluemix_instance=inst,
        key_patch_body=_body({"keyRingID": "default"}),
        x_kms_key_ring="ring-py3",
    )
    assert moved.get_result()["resources"][0]["keyRingID"] == "default"
    versions = kp.get_key_versions(
        id=key["id"], bluemix_instance=inst, total_count=True
    ).get_result()
    assert versions["metadata"]["totalCount"] == 1
    assert (
        kp.delete_key_alias(
            id=key["id"], alias="py3-alias", bluemix_instance=inst
        ).get_status_code()
        == 204
    )
    assert (
        kp.delete_key_ring(key_ring_id="ring-py3", bluemix_instance=inst).get_status_code() == 204
    )
