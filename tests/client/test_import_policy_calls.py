"""Import tokens, token imports, key and instance policies, dual-auth actions, sync and
registrations over MockTransport: what goes on the wire and what comes back.

The same calls against the real server are in test_import_live.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from kyok.client import (
    BadRequest,
    Conflict,
    ImportToken,
    InstancePolicy,
    InvalidResponse,
    KeyPolicies,
    KyokClient,
    Registration,
    byok,
)
from kyok.crypto import aead, kem, legacy, rsa_oaep

from ._mock import KEY_ID, Recorder, envelope, key_resource, kp_error

KEY_T = "application/vnd.ibm.kms.key+json"
POLICY_T = "application/vnd.ibm.kms.policy+json"
REG_T = "application/vnd.ibm.kms.registration+json"

RSA_KEY = rsa_oaep.generate_rsa_key(2048)
PEM = rsa_oaep.public_key_pem(RSA_KEY.public_key())
HYBRID_PRIVATE = kem.HybridPrivateKey.generate()
HYBRID = HYBRID_PRIVATE.public_key().to_bytes()
NONCE = bytes(range(12))
MATERIAL = bytes(range(0x20, 0x40))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def token_body(*, retrieved: bool = True, hybrid: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "tok-1",
        "creationDate": "2026-01-02T03:04:05Z",
        "expirationDate": "2026-01-02T03:14:05Z",
        "expiration": 600,
        "maxAllowedRetrievals": 1,
        "remainingRetrievals": 0 if retrieved else 1,
    }
    if retrieved:
        body["payload"] = b64(PEM)
        body["nonce"] = b64(NONCE)
        if hybrid:
            body["kyokHybridPublicKey"] = b64(HYBRID)
    return body


def expired() -> httpx.Response:
    return kp_error(409, "IMPORT_TOKEN_EXPIRED_ERR", "Import Token could not be retrieved")


def open_payload(resource: dict[str, Any]) -> bytes:
    """What the server does: open the key material, then check the nonce under it."""
    payload = base64.b64decode(resource["payload"])
    algorithm = resource["encryptionAlgorithm"]
    if algorithm == byok.ALG_HYBRID:
        material = kem.hybrid_open(HYBRID_PRIVATE, payload, aad=byok.HYBRID_AAD_LABEL + NONCE)
    elif algorithm == byok.ALG_OAEP_SHA1:
        material = legacy.oaep_sha1_decrypt(RSA_KEY, payload)
    else:
        material = rsa_oaep.oaep_decrypt(RSA_KEY, payload)
    iv = base64.b64decode(resource["iv"])
    encrypted_nonce = base64.b64decode(resource["encryptedNonce"])
    if len(iv) == 16:
        assert legacy.aes_cbc_pkcs7_decrypt(material, iv, encrypted_nonce) == NONCE
    else:
        assert aead.aes_gcm_decrypt(material, iv, encrypted_nonce) == NONCE
    return material


# ---------------------------------------------------------------- import tokens


def test_create_import_token(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json=token_body(retrieved=False)))
    token = client.create_import_token(expiration=900, max_retrievals=3)
    req = recorder.last
    assert (req.method, req.url.path) == ("POST", "/api/v2/import_token")
    assert recorder.last_json() == {"expiration": 900, "maxAllowedRetrievals": 3}
    assert token.id == "tok-1" and token.expiration == 600 and token.remaining_retrievals == 1
    assert token.public_key_pem is None and not token.retrieved
    recorder.answer(httpx.Response(200, json=token_body(retrieved=False)))
    client.create_import_token()
    assert recorder.last_json() == {}


def test_get_import_token_decodes_keys_and_nonce(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json=token_body()))
    token = client.get_import_token()
    assert (recorder.last.method, recorder.last.url.path) == ("GET", "/api/v2/import_token")
    assert token.public_key_pem == PEM and token.nonce == NONCE
    assert token.hybrid_public_key == HYBRID and token.retrieved
    assert token.expiration_date is not None and token.expiration_date.year == 2026
    assert "payload" not in repr(token) and b64(NONCE) not in repr(token)


def test_get_import_token_conflict(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(expired())
    with pytest.raises(Conflict) as info:
        client.get_import_token()
    assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"


# ---------------------------------------------------------------- token imports


@pytest.mark.parametrize(
    ("algorithm", "nonce_mode"),
    [
        (byok.ALG_OAEP_SHA256, "gcm"),
        (byok.ALG_OAEP_SHA1, "gcm"),
        (byok.ALG_OAEP_SHA1, "cbc"),
        (byok.ALG_HYBRID, "gcm"),
    ],
)
def test_import_root_key_seals_the_material(
    client: KyokClient, recorder: Recorder, algorithm: str, nonce_mode: str
) -> None:
    recorder.answer(
        httpx.Response(200, json=token_body()),
        envelope(KEY_T, key_resource(imported=True), status=201),
    )
    key = client.import_root_key(
        "root-1",
        MATERIAL,
        algorithm=algorithm,
        nonce_mode=nonce_mode,
        aliases=["orders"],
        description="byok",
        key_ring="ring-a",
    )
    assert key.imported is True
    get, post = recorder.requests
    assert (get.method, get.url.path) == ("GET", "/api/v2/import_token")
    assert (post.method, post.url.path) == ("POST", "/api/v2/keys")
    assert post.headers["X-Kms-Key-Ring"] == "ring-a"
    body = json.loads(post.content)
    resource = body["resources"][0]
    assert set(resource) == {
        "type",
        "name",
        "extractable",
        "aliases",
        "description",
        "payload",
        "encryptedNonce",
        "iv",
        "encryptionAlgorithm",
    }
    assert resource["extractable"] is False and resource["encryptionAlgorithm"] == algorithm
    assert len(base64.b64decode(resource["iv"])) == (16 if nonce_mode == "cbc" else 12)
    assert b64(MATERIAL) not in post.content.decode()
    assert open_payload(resource) == MATERIAL


def test_import_creates_a_token_when_there_is_none(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        expired(),
        httpx.Response(200, json=token_body(retrieved=False)),
        httpx.Response(200, json=token_body()),
        envelope(KEY_T, key_resource(imported=True), status=201),
    )
    client.import_root_key("root-1", MATERIAL)
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("GET", "/api/v2/import_token"),
        ("POST", "/api/v2/import_token"),
        ("GET", "/api/v2/import_token"),
        ("POST", "/api/v2/keys"),
    ]


def test_import_without_creating_a_token(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(expired())
    with pytest.raises(Conflict):
        client.import_root_key("root-1", MATERIAL, create_token=False)
    assert len(recorder.requests) == 1


def test_another_conflict_is_not_a_missing_token(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(kp_error(409, "SOMETHING_ELSE_ERR", "no"))
    with pytest.raises(Conflict):
        client.import_root_key("root-1", MATERIAL)
    assert len(recorder.requests) == 1


def test_import_with_a_given_token(client: KyokClient, recorder: Recorder) -> None:
    token = ImportToken.from_wire(token_body())
    recorder.answer(envelope(KEY_T, key_resource(imported=True), status=201))
    client.import_root_key("root-1", MATERIAL, token=token)
    assert [r.url.path for r in recorder.requests] == ["/api/v2/keys"]
    with pytest.raises(ValueError, match="get_import_token"):
        client.import_root_key(
            "root-1", MATERIAL, token=ImportToken.from_wire(token_body(retrieved=False))
        )


def test_the_server_expiring_the_token_is_a_conflict(
    client: KyokClient, recorder: Recorder
) -> None:
    recorder.answer(httpx.Response(200, json=token_body()), expired())
    with pytest.raises(Conflict) as info:
        client.import_root_key("root-1", MATERIAL)
    assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"


@pytest.mark.parametrize(
    ("material", "kwargs", "match"),
    [
        (b"short", {}, "5 bytes"),
        (MATERIAL, {"algorithm": "AES"}, "unknown algorithm"),
        (MATERIAL, {"nonce_mode": "ecb"}, "unknown nonce_mode"),
        (MATERIAL, {"nonce_mode": "cbc"}, "RSAES_OAEP_SHA_1"),
    ],
)
def test_bad_arguments_cost_no_request(
    client: KyokClient, recorder: Recorder, material: bytes, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as info:
        client.import_root_key("root-1", material, **kwargs)
    assert b64(material) not in str(info.value)
    assert recorder.requests == []


def test_hybrid_needs_a_hybrid_key(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json=token_body(hybrid=False)))
    with pytest.raises(ValueError, match="kyokHybridPublicKey"):
        client.import_root_key("root-1", MATERIAL, algorithm=byok.ALG_HYBRID)


def test_a_bad_token_payload_is_the_servers_fault(client: KyokClient, recorder: Recorder) -> None:
    body = token_body()
    body["nonce"] = "not base64!"
    recorder.answer(httpx.Response(200, json=body))
    with pytest.raises(InvalidResponse, match="not valid base64"):
        client.import_root_key("root-1", MATERIAL)


def test_import_with_policy_overrides(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(200, json=token_body()), envelope(KEY_T, key_resource(), status=201)
    )
    client.import_root_key("root-1", MATERIAL, dual_auth_delete=True)
    assert recorder.last.url.path == "/api/v2/keys_with_policy_overrides"
    assert recorder.last_json()["resources"][0]["dualAuthDelete"] == {"enabled": True}


def test_create_key_with_policy_overrides(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(), status=201))
    client.create_key("root-1", rotation_months=3, dual_auth_delete=False)
    assert recorder.last.url.path == "/api/v2/keys_with_policy_overrides"
    resource = recorder.last_json()["resources"][0]
    assert resource["rotation"] == {"enabled": True, "interval_month": 3}
    assert resource["dualAuthDelete"] == {"enabled": False}


# ---------------------------------------------------------------- rotation


def test_rotate_keeps_its_old_forms(client: KyokClient, recorder: Recorder) -> None:
    client.rotate_key(KEY_ID)
    assert recorder.last_json() == {}
    client.rotate_key(KEY_ID, material=MATERIAL)
    assert recorder.last_json() == {"payload": b64(MATERIAL)}


def test_rotate_via_token(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json=token_body()), httpx.Response(204))
    client.rotate_key(KEY_ID, material=MATERIAL, via_token=True, algorithm=byok.ALG_HYBRID)
    req = recorder.last
    assert (req.method, req.url.path) == ("POST", f"/api/v2/keys/{KEY_ID}/actions/rotate")
    body = recorder.last_json()
    assert set(body) == {"payload", "encryptedNonce", "iv", "encryptionAlgorithm"}
    assert open_payload(body) == MATERIAL
    with pytest.raises(ValueError, match="material"):
        client.rotate_key(KEY_ID, via_token=True)


# ---------------------------------------------------------------- key policies


def policy_resources() -> list[dict[str, Any]]:
    return [
        {
            "id": "p-1",
            "crn": "crn:v1:x",
            "type": POLICY_T,
            "createdBy": "admin",
            "creationDate": "2026-01-02T03:04:05Z",
            "updatedBy": "admin",
            "lastUpdateDate": "2026-01-03T03:04:05Z",
            "rotation": {"enabled": True, "interval_month": 3},
        },
        {"type": POLICY_T, "dualAuthDelete": {"enabled": True}},
    ]


def test_get_key_policies(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(POLICY_T, *policy_resources()))
    policies = client.get_key_policies(KEY_ID)
    assert recorder.last.url.path == f"/api/v2/keys/{KEY_ID}/policies"
    assert policies.rotation is not None and policies.rotation.interval_months == 3
    assert policies.rotation.updated_by == "admin"
    assert policies.dual_auth_delete is not None and policies.dual_auth_delete.enabled
    assert len(policies) == 2
    recorder.answer(envelope(POLICY_T))
    assert len(client.get_key_policies(KEY_ID, policy_type="rotation")) == 0
    assert recorder.last.url.params["policy"] == "rotation"


def test_both_policies_in_one_resource() -> None:
    both = KeyPolicies.from_wire(
        [{"rotation": {"enabled": False, "interval_month": 1}, "dualAuthDelete": {"enabled": True}}]
    )
    assert both.rotation is not None and not both.rotation.enabled
    assert both.dual_auth_delete is not None and both.dual_auth_delete.enabled


def test_set_key_policies(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(POLICY_T, *policy_resources()))
    result = client.set_key_policies(KEY_ID, rotation_months=3, dual_auth_delete=True)
    req = recorder.last
    assert (req.method, req.url.path) == ("PUT", f"/api/v2/keys/{KEY_ID}/policies")
    assert "policy" not in req.url.params
    assert req.headers["Content-Type"] == POLICY_T
    assert recorder.last_json() == {
        "metadata": {"collectionType": POLICY_T, "collectionTotal": 2},
        "resources": [
            {"type": POLICY_T, "rotation": {"enabled": True, "interval_month": 3}},
            {"type": POLICY_T, "dualAuthDelete": {"enabled": True}},
        ],
    }
    assert result.rotation is not None
    recorder.answer(envelope(POLICY_T, *policy_resources()))
    client.set_key_policies(KEY_ID, rotation_enabled=False)
    assert recorder.last.url.params["policy"] == "rotation"
    assert recorder.last_json()["resources"] == [{"type": POLICY_T, "rotation": {"enabled": False}}]
    with pytest.raises(ValueError, match="nothing to set"):
        client.set_key_policies(KEY_ID)


def test_set_key_policies_refused(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(kp_error(400, "BAD_BODY_ERR", "interval_month must be 1-12", "interval_month"))
    with pytest.raises(BadRequest) as info:
        client.set_key_policies(KEY_ID, rotation_months=13)
    assert info.value.target == "interval_month"


# ---------------------------------------------------------------- instance policies


def test_instance_policies(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        envelope(
            POLICY_T,
            {
                "policy_type": "rotation",
                "policy_data": {"enabled": True, "attributes": {"interval_month": 3}},
                "createdBy": "admin",
                "creationDate": "2026-01-02T03:04:05Z",
                "updatedBy": "admin",
                "lastUpdated": "2026-01-02T03:04:05Z",
            },
            {"policy_type": "dualAuthDelete", "policy_data": {"enabled": False}},
        )
    )
    policies = client.get_instance_policies()
    assert recorder.last.url.path == "/api/v2/instance/policies"
    assert policies == [
        InstancePolicy.from_wire(
            {
                "policy_type": "rotation",
                "policy_data": {"enabled": True, "attributes": {"interval_month": 3}},
                "createdBy": "admin",
                "creationDate": "2026-01-02T03:04:05Z",
                "updatedBy": "admin",
                "lastUpdated": "2026-01-02T03:04:05Z",
            }
        ),
        InstancePolicy("dualAuthDelete", False),
    ]
    assert policies[0].attributes["interval_month"] == 3


def test_set_instance_policy(client: KyokClient, recorder: Recorder) -> None:
    client.set_instance_policy("allowedIP", True, {"allowed_ip": ["10.0.0.0/8"]})
    req = recorder.last
    assert (req.method, req.url.path) == ("PUT", "/api/v2/instance/policies")
    assert req.url.params["policy"] == "allowedIP"
    assert recorder.last_json() == {
        "metadata": {"collectionType": POLICY_T, "collectionTotal": 1},
        "resources": [
            {
                "policy_type": "allowedIP",
                "policy_data": {"enabled": True, "attributes": {"allowed_ip": ["10.0.0.0/8"]}},
            }
        ],
    }
    client.set_instance_policy("dualAuthDelete", False)
    assert recorder.last_json()["resources"][0]["policy_data"] == {"enabled": False}


# ---------------------------------------------------------------- actions and registrations


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("set_key_for_deletion", "setKeyForDeletion"),
        ("unset_key_for_deletion", "unsetKeyForDeletion"),
        ("sync_key", "sync"),
    ],
)
def test_key_actions(client: KyokClient, recorder: Recorder, method: str, action: str) -> None:
    assert getattr(client, method)(KEY_ID) is None
    req = recorder.last
    assert (req.method, req.url.path) == ("POST", f"/api/v2/keys/{KEY_ID}/actions/{action}")
    assert req.content == b""


def test_list_registrations(client: KyokClient, recorder: Recorder) -> None:
    reg = {
        "keyId": KEY_ID,
        "keyName": "root-1",
        "resourceCrn": "crn:v1:bluemix:public:cos:us-south:a/1:inst:bucket:b1",
        "createdBy": "svc",
        "creationDate": "2026-01-02T03:04:05Z",
        "preventKeyDeletion": True,
        "keyVersion": {"id": "v-1", "creationDate": "2026-01-02T03:04:05Z"},
    }
    recorder.answer(envelope(REG_T, reg, totalCount=1))
    page = client.list_registrations(
        KEY_ID, crn_query="crn:v1:*", prevent_key_deletion=True, limit=10, total_count=True
    )
    req = recorder.last
    assert req.url.path == f"/api/v2/keys/{KEY_ID}/registrations"
    assert dict(req.url.params) == {
        "limit": "10",
        "urlEncodedResourceCRNQuery": "crn:v1:*",
        "preventKeyDeletion": "true",
        "totalCount": "true",
    }
    assert page.total_count == 1
    assert page[0] == Registration.from_wire(reg)
    assert page[0].prevent_key_deletion and page[0].key_version is not None
    recorder.answer(envelope(REG_T))
    assert len(client.list_registrations()) == 0
    assert recorder.last.url.path == "/api/v2/keys/registrations"
