"""Importing root keys with the import token, end to end over HTTP (reference §5).

The client side is ``kyok.client.byok.seal_for_import`` (or ``cryptography`` by hand for the
broken requests); after an import, a DEK wrapped by kyok unwraps in kyok *and* outside kyok
with the imported material alone (``tests/outside_kyok.py``). Every refusal of §5 is checked
for its status, its reason code and that no key was made.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tests.api.conftest import Api, b64, error_of, key_body

from kyok.client import byok
from outside_kyok import unwrap_outside

pytestmark = pytest.mark.anyio

KEYS = "/api/v2/keys"
POLICY = "application/vnd.ibm.kms.policy+json"


@dataclass
class Token:
    """A retrieved import token, decoded."""

    pem: bytes
    nonce: bytes
    hybrid: bytes

    def seal(
        self, material: bytes, algorithm: str = byok.ALG_OAEP_SHA256, mode: str = "gcm"
    ) -> Any:
        return byok.seal_for_import(
            material,
            self.nonce,
            public_key_pem=self.pem,
            hybrid_public_key=self.hybrid,
            algorithm=algorithm,
            nonce_mode=mode,
        ).as_resource()


async def token(api: Api, retrievals: int = 1) -> Token:
    r = await api.request("POST", "/api/v2/import_token", json={"maxAllowedRetrievals": retrievals})
    assert r.status_code == 200, r.text
    got = (await api.request("GET", "/api/v2/import_token")).json()
    return Token(
        byok.decode_token_payload(got["payload"]),
        byok.decode_token_nonce(got["nonce"]),
        base64.b64decode(got["kyokHybridPublicKey"]),
    )


async def key_count(api: Api) -> int:
    r = await api.request("HEAD", KEYS, params={"state": "0,1,2,3,5"})
    return int(r.headers["Key-Total"])


async def wrap_dek(api: Api, key: str, aad: list[str]) -> tuple[bytes, bytes]:
    dek = os.urandom(32)
    r = await api.wrap(key, {"plaintext": b64(dek), "aad": aad})
    assert r.status_code == 200, r.text
    return dek, base64.b64decode(r.json()["ciphertext"])


async def unwrap(api: Api, key: str, ciphertext: bytes, aad: list[str]) -> bytes:
    body = {"ciphertext": b64(ciphertext), "aad": aad}
    r = await api.request("POST", f"{KEYS}/{key}/actions/unwrap", json=body)
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["plaintext"])


@pytest.mark.parametrize(
    ("algorithm", "mode", "size"),
    [
        (byok.ALG_OAEP_SHA256, "gcm", 32),
        (byok.ALG_OAEP_SHA256, "gcm", 16),
        (byok.ALG_OAEP_SHA1, "gcm", 24),
        (byok.ALG_OAEP_SHA1, "cbc", 32),
        (byok.ALG_HYBRID, "gcm", 32),
    ],
)
async def test_import_then_kyok_wraps_what_the_material_alone_unwraps(
    api: Api, algorithm: str, mode: str, size: int
) -> None:
    tok = await token(api)
    material = os.urandom(size)
    fields = tok.seal(material, algorithm, mode)
    r = await api.request("POST", KEYS, json=key_body("imported", **fields))
    assert r.status_code == 201, r.text
    key = r.json()["resources"][0]
    assert key["imported"] is True and key["extractable"] is False and key["state"] == 1
    assert key["algorithmBitSize"] == size * 8
    assert "payload" not in key  # a root key's material never comes back
    dek, ciphertext = await wrap_dek(api, key["id"], ["aad-1"])
    assert await unwrap(api, key["id"], ciphertext, ["aad-1"]) == dek
    assert unwrap_outside(material, ciphertext, ["aad-1"]) == dek


async def test_content_type_and_field_case_do_not_matter(api: Api) -> None:
    """Go sends no Content-Type; field names match in any case."""
    tok = await token(api)
    fields = {k.upper(): v for k, v in tok.seal(os.urandom(32)).items()}
    r = await api.request("POST", KEYS, content=json.dumps(key_body("go-style", **fields)).encode())
    assert r.status_code == 201, r.text


async def test_rotate_with_a_token(api: Api) -> None:
    tok = await token(api)
    first = os.urandom(32)
    created = await api.request("POST", KEYS, json=key_body("rot", **tok.seal(first)))
    key = created.json()["resources"][0]
    dek1, ct1 = await wrap_dek(api, key["id"], [])
    # an imported key rotates only with new material; a fresh token for it
    r = await api.request("POST", f"{KEYS}/{key['id']}/actions/rotate")
    assert r.status_code == 400 and error_of(r)["code"] == "KEY_PAYLOAD_REQ_ERR"
    tok2 = await token(api)
    second = os.urandom(32)
    r = await api.request(
        "POST", f"{KEYS}/{key['id']}/actions/rotate", json=tok2.seal(second, byok.ALG_HYBRID)
    )
    assert r.status_code == 204, r.text
    meta = (await api.request("GET", f"{KEYS}/{key['id']}/metadata")).json()["resources"][0]
    assert meta["keyVersion"]["id"] != key["keyVersion"]["id"] and "lastRotateDate" in meta
    dek2, ct2 = await wrap_dek(api, key["id"], [])
    assert unwrap_outside(second, ct2) == dek2
    assert await unwrap(api, key["id"], ct1, []) == dek1  # the old version still unwraps
    # the legacy ?action=rotate form carries the same fields
    api.clock.advance(timedelta(hours=2))
    tok3 = await token(api)
    third = os.urandom(16)
    r = await api.request("POST", f"{KEYS}/{key['id']}?action=rotate", json=tok3.seal(third))
    assert r.status_code == 204, r.text
    dek3, ct3 = await wrap_dek(api, key["id"], ["x"])
    assert unwrap_outside(third, ct3, ["x"]) == dek3


async def test_a_generated_key_is_not_rotated_with_a_token(api: Api) -> None:
    key = await api.create_key("generated")
    tok = await token(api)
    r = await api.request(
        "POST", f"{KEYS}/{key['id']}/actions/rotate", json=tok.seal(os.urandom(32))
    )
    assert r.status_code == 400 and error_of(r)["code"] == "KEY_PAYLOAD_NOT_ALLOWED_ERR"


# ----------------------------------------------------------------------------- refusals


def _oaep(pem: bytes, data: bytes, digest: Any = None) -> str:
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, rsa.RSAPublicKey)
    algorithm = digest or hashes.SHA256()
    pad = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
    return b64(public.encrypt(data, pad))


def _gcm(material: bytes, nonce: bytes) -> tuple[str, str]:
    iv = os.urandom(12)
    return b64(AESGCM(material).encrypt(iv, nonce, None)), b64(iv)


def _other_pem() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _without(fields: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in names}


REFUSALS: dict[str, tuple[int, str, str | None]] = {
    # case: (status, code, target field)
    "encryptedNonce without iv": (400, "BAD_BODY_ERR", None),
    "iv without encryptedNonce": (400, "BAD_BODY_ERR", None),
    "no payload": (400, "INVALID_FIELD_ERR", "payload"),
    "unknown algorithm": (400, "INVALID_FIELD_ERR", "encryptionAlgorithm"),
    "payload not base64": (400, "INVALID_FIELD_ERR", "payload"),
    "encryptedNonce not base64": (400, "INVALID_FIELD_ERR", "encryptedNonce"),
    "iv not base64": (400, "INVALID_FIELD_ERR", "iv"),
    "payload for another public key": (400, "INVALID_FIELD_ERR", "payload"),
    "payload is not OAEP at all": (400, "INVALID_FIELD_ERR", "payload"),
    "SHA-256 payload labelled SHA-1": (400, "INVALID_FIELD_ERR", "payload"),
    "material of 20 bytes": (400, "INVALID_FIELD_ERR", "payload"),
    "nonce under other material": (400, "INCORRECT_NONCE_IV_ERR", "encryptedNonce"),
    "another nonce under the material": (400, "INCORRECT_NONCE_ERR", "encryptedNonce"),
    "standard key with a token": (400, "BAD_BODY_ERR", None),
}


def _refusal(case: str, tok: Token) -> dict[str, Any]:
    material = os.urandom(32)
    good = tok.seal(material)
    if case == "encryptedNonce without iv":
        return _without(good, "iv")
    if case == "iv without encryptedNonce":
        return _without(good, "encryptedNonce")
    if case == "no payload":
        return _without(good, "payload")
    if case == "unknown algorithm":
        return {**good, "encryptionAlgorithm": "RSAES_PKCS1_V1_5"}
    if case.endswith("not base64"):
        name = case.split()[0]
        return {**good, name: "***not base64***"}
    if case == "payload for another public key":
        return {**good, "payload": _oaep(_other_pem(), material)}
    if case == "payload is not OAEP at all":
        return {**good, "payload": b64(os.urandom(256))}
    if case == "SHA-256 payload labelled SHA-1":
        return {**good, "encryptionAlgorithm": byok.ALG_OAEP_SHA1}
    if case == "material of 20 bytes":
        odd = os.urandom(20)
        nonce, iv = _gcm(odd[:16], tok.nonce)
        return {**good, "payload": _oaep(tok.pem, odd), "encryptedNonce": nonce, "iv": iv}
    if case == "nonce under other material":
        nonce, iv = _gcm(os.urandom(32), tok.nonce)
        return {**good, "encryptedNonce": nonce, "iv": iv}
    if case == "another nonce under the material":
        nonce, iv = _gcm(material, os.urandom(12))
        return {**good, "encryptedNonce": nonce, "iv": iv}
    if case == "standard key with a token":
        return {**good, "extractable": True}
    raise AssertionError(case)


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_each_refusal_has_its_code_and_makes_no_key(api: Api, case: str) -> None:
    tok = await token(api)
    before = await key_count(api)
    r = await api.request("POST", KEYS, json=key_body("refused", **_refusal(case, tok)))
    status, code, target = REFUSALS[case]
    assert r.status_code == status, r.text
    reason = error_of(r)
    assert reason["code"] == code
    if target is not None:
        assert reason["target"] == {"type": "field", "name": target}
    assert await key_count(api) == before
    # and the token still works for a correct import afterwards
    r = await api.request("POST", KEYS, json=key_body("after", **tok.seal(os.urandom(32))))
    assert r.status_code == 201, r.text


async def test_without_a_valid_token_it_is_409_and_no_key(api: Api) -> None:
    # no token ever made: the fields are well-formed, the token is missing
    fields = byok.seal_for_import(
        os.urandom(32), os.urandom(12), public_key_pem=_other_pem()
    ).as_resource()
    r = await api.request("POST", KEYS, json=key_body("no-token", **fields))
    assert r.status_code == 409 and error_of(r)["code"] == "IMPORT_TOKEN_EXPIRED_ERR"
    # an expired token
    tok = await token(api)
    api.clock.advance(timedelta(seconds=601))
    r = await api.request("POST", KEYS, json=key_body("expired", **tok.seal(os.urandom(32))))
    assert r.status_code == 409 and error_of(r)["code"] == "IMPORT_TOKEN_EXPIRED_ERR"
    assert await key_count(api) == 0


async def test_retrievals_used_up_do_not_stop_imports(api: Api) -> None:
    """Key Protect: the token "can be reused to import one or more keys up until the date that
    the import token expires"; its retrieval count limits retrievals only."""
    tok = await token(api, retrievals=1)
    assert (await api.request("GET", "/api/v2/import_token")).status_code == 409
    for name in ("one", "two"):
        r = await api.request("POST", KEYS, json=key_body(name, **tok.seal(os.urandom(32))))
        assert r.status_code == 201, r.text


# ----------------------------------------------------------------------------- instance policy


def _access(**attributes: bool) -> dict[str, Any]:
    resource = {
        "policy_type": "keyCreateImportAccess",
        "policy_data": {"enabled": True, "attributes": attributes},
    }
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1}, "resources": [resource]}


async def _set_access(api: Api, **attributes: bool) -> None:
    r = await api.request(
        "PUT", "/api/v2/instance/policies?policy=keyCreateImportAccess", json=_access(**attributes)
    )
    assert r.status_code == 204, r.text


@pytest.mark.parametrize(
    ("attribute", "extractable", "how"),
    [
        ("create_root_key", False, "generate"),
        ("create_standard_key", True, "generate"),
        ("import_root_key", False, "plain"),
        ("import_root_key", False, "token"),
        ("import_standard_key", True, "plain"),
    ],
)
async def test_key_create_import_access_refuses_each_kind(
    api: Api, attribute: str, extractable: bool, how: str
) -> None:
    tok = await token(api, retrievals=2)
    await _set_access(api, **{attribute: False})
    fields: dict[str, Any] = {"extractable": extractable}
    if how == "plain":
        fields["payload"] = b64(os.urandom(32))
    elif how == "token":
        fields.update(tok.seal(os.urandom(32)))
    r = await api.request("POST", KEYS, json=key_body("refused", **fields))
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_CREATE_IMPORT_ACCESS_ERR"
    assert await key_count(api) == 0
    # the other kinds still work
    r = await api.request("POST", KEYS, json=key_body("ok", extractable=not extractable))
    assert r.status_code == 201


async def test_enforce_token_refuses_plain_imports_and_rotations(api: Api) -> None:
    tok = await token(api, retrievals=3)
    plain = await api.create_key("plain-before", payload=b64(os.urandom(32)))
    await _set_access(api, enforce_token=True)
    r = await api.request("POST", KEYS, json=key_body("plain", payload=b64(os.urandom(32))))
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_CREATE_IMPORT_ACCESS_ERR"
    r = await api.request(
        "POST", f"{KEYS}/{plain['id']}/actions/rotate", json={"payload": b64(os.urandom(32))}
    )
    assert r.status_code == 409 and error_of(r)["code"] == "KEY_CREATE_IMPORT_ACCESS_ERR"
    # with the token both work; generated keys are not affected
    r = await api.request("POST", KEYS, json=key_body("token", **tok.seal(os.urandom(32))))
    assert r.status_code == 201, r.text
    r = await api.request(
        "POST", f"{KEYS}/{plain['id']}/actions/rotate", json=tok.seal(os.urandom(32))
    )
    assert r.status_code == 204, r.text
    assert (await api.request("POST", KEYS, json=key_body("generated"))).status_code == 201
