"""The UNMODIFIED IBM ``keyprotect`` 2.x client (a thin wrapper over ``redstone``) against a
real kyok server.

2.x has the same package name as 3.x, so it is installed aside (``.venv/keyprotect2``, see the
Makefile) and runs in a subprocess with that directory first on ``PYTHONPATH``. The script
configures it exactly as reference §8.2 says (``bxauth.TokenManager`` pointed at the server's
``/oidc/token``; ``keyprotect.Client(..., endpoint_url=URL, verify=False)``), drives it, and
prints one JSON object of results (bytes base64-encoded) that the test asserts on.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from live_server import LiveServer

KEYPROTECT2 = Path(__file__).resolve().parents[2] / ".venv" / "keyprotect2"

pytestmark = pytest.mark.skipif(
    not (KEYPROTECT2 / "keyprotect").is_dir(), reason="keyprotect 2.x is not installed aside"
)

_SCRIPT = r'''
import base64, json, os, sys

import keyprotect
from keyprotect import bxauth

url, api_key, instance, tag = sys.argv[1:5]
assert not hasattr(keyprotect, "IbmKeyProtectApiV2"), "this must be keyprotect 2.x"

tm = bxauth.TokenManager(api_key=api_key, iam_endpoint=url)
kp = keyprotect.Client(
    credentials=tm, region="x", service_instance_id=instance, endpoint_url=url, verify=False
)
out = {}
b64 = lambda data: base64.b64encode(data).decode()


def error_of(call):
    """The KeyProtectError's message and HTTP status of a call that must fail."""
    try:
        call()
    except kp.KeyProtectError as exc:
        return {"message": str(exc), "status": exc.http_error.response.status_code}
    return None


# create: a root key, a standard key with material, an imported root key
root = kp.create_key(name="py2-root", root=True)
out["root"] = root
dek = os.urandom(32)
out["dek"] = b64(dek)
std_material = os.urandom(24)
out["std_material"] = b64(std_material)
out["std"] = kp.create_key(name="py2-std", payload=std_material)
out["std_get"] = kp.get_key(out["std"]["id"])
imported = kp.create_key(name="py2-imported", payload=os.urandom(32), root=True, alias_list=[f"py2-alias-{tag}"])
out["imported"] = imported

# wrap with bytes (and aad), and with None (a DEK is generated)
out["wrap_bytes"] = kp.wrap(root["id"], dek, aad=["py2-aad"])
out["wrap_none"] = kp.wrap(root["id"], None)

# unwrap: with aad, without; a wrong aad fails
out["unwrap_aad"] = b64(kp.unwrap(root["id"], out["wrap_bytes"]["ciphertext"], aad=["py2-aad"]))
out["unwrap_generated"] = b64(kp.unwrap(root["id"], out["wrap_none"]["ciphertext"]))
out["unwrap_wrong_aad"] = error_of(
    lambda: kp.unwrap(root["id"], out["wrap_bytes"]["ciphertext"], aad=["other"])
)

# rotate without payload (generated root key), then the old ciphertext still opens
out["rotate_root"] = kp.rotate_key(root["id"])
out["root_after_rotate"] = kp.get_key(root["id"])
out["unwrap_after_rotate"] = b64(
    kp.unwrap(root["id"], out["wrap_bytes"]["ciphertext"].encode(), aad=["py2-aad"])
)
out["rewrap"] = kp.rewrap(root["id"], out["wrap_bytes"]["ciphertext"], aad=["py2-aad"])

# rotate an imported key: without payload refused, with payload fine (by its alias, too)
out["rotate_imported_without"] = error_of(lambda: kp.rotate_key(imported["id"]))
out["rotate_imported_with"] = kp.rotate_key(f"py2-alias-{tag}", payload=os.urandom(32))
out["imported_after_rotate"] = kp.get_key(imported["id"])

# list, disable/enable, delete (no Prefer: 204), restore, purge
out["listed_ids"] = [k["id"] for k in kp.list_keys()]
out["disable"] = kp.disable_key(root["id"])
out["state_disabled"] = kp.get_key(root["id"])["state"]
out["enable"] = kp.enable_key(root["id"])
out["delete"] = kp.delete_key(root["id"])
out["state_deleted"] = kp.get_key(root["id"])["state"]
out["delete_again"] = error_of(lambda: kp.delete_key(root["id"]))
out["restore"] = kp.restore_key(root["id"])
out["state_restored"] = kp.get_key(root["id"])["state"]
kp.delete_key(out["std"]["id"])
out["purge"] = kp.purge_key(out["std"]["id"])
out["get_purged"] = error_of(lambda: kp.get_key(out["std"]["id"]))

# key rings and aliases
kp.create_key_ring(f"py2-ring-{tag}")
out["rings"] = [r["id"] for r in kp.get_key_rings()["resources"]]
kp.set_key_ring(imported["id"], "default", f"py2-ring-{tag}")
out["moved_ring"] = kp.get_key(imported["id"])["keyRingID"]
out["alias"] = kp.create_key_alias(imported["id"], f"py2-alias-2-{tag}")
kp.delete_key_alias(imported["id"], f"py2-alias-2-{tag}")
out["aliases_after"] = kp.get_key(f"py2-alias-{tag}")["aliases"]

# import token, key policies, dual authorisation, instance policies, registrations
out["token_created"] = kp.create_import_token(expiration=600, max_allowed_retrievals=2)
out["token"] = kp.get_import_token()
guarded = kp.create_key(name="py2-policies", root=True)
out["rotation_policy"] = kp.set_key_rotation_policy(guarded["id"], 3)  # no "enabled" sent
out["dual_policy"] = kp.set_key_dual_auth_policy(guarded["id"], True)
out["key_policies"] = kp.get_key_policies(guarded["id"])
out["dual_delete"] = error_of(lambda: kp.delete_key(guarded["id"]))
out["initiate"] = kp.initiate_dual_auth_delete(guarded["id"])
out["self_delete"] = error_of(lambda: kp.delete_key(guarded["id"]))
out["cancel"] = kp.cancel_dual_auth_delete(guarded["id"])
out["metrics_on"] = kp.set_instance_metrics_policy(True)
out["instance_policies"] = kp.get_instance_policies()
out["metrics_off"] = kp.set_instance_metrics_policy(False)
out["registrations"] = kp.get_registrations(guarded["id"])
out["all_registrations"] = kp.get_registrations(crn="crn:v1:bluemix:public:nothing:*")
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def results(kyok_server: LiveServer) -> dict[str, Any]:
    # Aliases and key ring ids are unique per instance, and the server is the package's: when
    # xdist sends this module's tests to a worker in two runs, the script runs twice on it.
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "PYTHONPATH": str(KEYPROTECT2)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            kyok_server.url,
            kyok_server.api_key,
            kyok_server.instance_id,
            tag,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out, "tag": tag}


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def test_create(results: dict[str, Any], kyok_server: LiveServer) -> None:
    root = results["root"]
    assert root["name"] == "py2-root" and root["extractable"] is False and root["state"] == 1
    assert root["type"] == "application/vnd.ibm.kms.key+json" and "payload" not in root
    std = results["std"]
    assert std["extractable"] is True and std["imported"] is True
    assert std["payload"] == results["std_material"]  # POST without Prefer: the representation
    assert results["std_get"]["payload"] == results["std_material"]
    imported = results["imported"]
    assert imported["imported"] is True and imported["extractable"] is False
    assert imported["aliases"] == [f"py2-alias-{results['tag']}"] and "payload" not in imported
    assert root["id"] in results["listed_ids"] and imported["id"] in results["listed_ids"]


def test_wrap_with_bytes_and_with_none(results: dict[str, Any]) -> None:
    version = results["root"]["keyVersion"]["id"]
    wrapped = results["wrap_bytes"]
    assert set(wrapped) == {"ciphertext", "keyVersion"} and wrapped["keyVersion"]["id"] == version
    generated = results["wrap_none"]
    assert len(b64d(generated["plaintext"])) == 32  # redstone's envelope helper needs 32
    assert generated["ciphertext"] and generated["keyVersion"]["id"] == version


def test_unwrap_with_and_without_aad(results: dict[str, Any]) -> None:
    assert results["unwrap_aad"] == results["dek"]
    assert results["unwrap_generated"] == results["wrap_none"]["plaintext"]
    wrong = results["unwrap_wrong_aad"]
    assert wrong is not None and wrong["status"] in (400, 422)
    assert "Please see `reasons`" in wrong["message"]  # errorMsg, as redstone reports it
    assert results["dek"] not in wrong["message"]


def test_rotate_with_and_without_payload(results: dict[str, Any]) -> None:
    assert results["rotate_root"] is None  # 204
    before = results["root"]["keyVersion"]["id"]
    after = results["root_after_rotate"]["keyVersion"]["id"]
    assert after != before and "lastRotateDate" in results["root_after_rotate"]
    assert results["unwrap_after_rotate"] == results["dek"]
    rewrap = results["rewrap"]
    assert rewrap["keyVersion"]["id"] == before and rewrap["rewrappedKeyVersion"]["id"] == after
    refused = results["rotate_imported_without"]
    assert refused is not None and refused["status"] == 400
    assert "KEY_PAYLOAD_REQ_ERR" in refused["message"]
    assert results["rotate_imported_with"] is None
    imported_after = results["imported_after_rotate"]
    assert imported_after["keyVersion"]["id"] != results["imported"]["keyVersion"]["id"]


def test_delete_restore_and_purge(results: dict[str, Any]) -> None:
    assert results["disable"] is None and results["state_disabled"] == 2
    assert results["enable"] is None
    assert results["delete"] is None and results["state_deleted"] == 5
    again = results["delete_again"]
    assert again is not None and again["status"] == 410 and "KEY_DELETED_ERR" in again["message"]
    assert results["restore"] is None and results["state_restored"] == 1
    assert results["purge"] is None
    purged = results["get_purged"]
    assert purged is not None and purged["status"] == 404


def test_key_rings_and_aliases(results: dict[str, Any]) -> None:
    assert {"default", f"py2-ring-{results['tag']}"} <= set(results["rings"])
    assert results["moved_ring"] == f"py2-ring-{results['tag']}"
    alias = results["alias"]["resources"][0]
    assert (
        alias["alias"] == f"py2-alias-2-{results['tag']}"
        and alias["keyId"] == results["imported"]["id"]
    )
    assert results["aliases_after"] == [f"py2-alias-{results['tag']}"]


def test_import_token(results: dict[str, Any]) -> None:
    created = results["token_created"]
    assert created["maxAllowedRetrievals"] == 2 and created["remainingRetrievals"] == 2
    assert created["expiration"] == 600
    token = results["token"]
    assert token["id"] == created["id"] and token["remainingRetrievals"] == 1
    assert b64d(token["payload"]).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(b64d(token["nonce"])) == 12


def test_key_policies_and_dual_authorisation(results: dict[str, Any]) -> None:
    policy = "application/vnd.ibm.kms.policy+json"
    rotation = results["rotation_policy"]
    assert rotation["metadata"] == {"collectionType": policy, "collectionTotal": 1}
    assert rotation["resources"][0]["rotation"] == {"enabled": True, "interval_month": 3}
    assert results["dual_policy"]["resources"][0]["dualAuthDelete"] == {"enabled": True}
    (both,) = results["key_policies"]["resources"]
    assert both["rotation"]["interval_month"] == 3 and both["dualAuthDelete"]["enabled"] is True
    for refused in (results["dual_delete"], results["self_delete"]):
        assert refused is not None and refused["status"] == 409
        assert "AUTHORIZATIONS_NOT_MET" in refused["message"]
    assert results["initiate"] is None and results["cancel"] is None


def test_instance_policies_and_registrations(results: dict[str, Any]) -> None:
    assert results["metrics_on"] is None and results["metrics_off"] is None  # 204
    found = {p["policy_type"]: p for p in results["instance_policies"]["resources"]}
    assert found["metrics"]["policy_data"] == {"enabled": True}
    empty = {
        "metadata": {
            "collectionType": "application/vnd.ibm.kms.registration+json",
            "collectionTotal": 0,
        },
        "resources": [],
    }
    assert results["registrations"] == empty and results["all_registrations"] == empty
