"""kyok.client.byok: argument checks, the wire fields, redaction, reading a token response.

The round trips against the unit are in tests/unit/test_imports.py."""

from __future__ import annotations

import base64
import binascii
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kyok.client import byok
from kyok.crypto import kem, rsa_oaep

RSA_KEY = rsa_oaep.generate_rsa_key(2048)
PEM = rsa_oaep.public_key_pem(RSA_KEY.public_key())
HYBRID_PRIVATE = kem.HybridPrivateKey.generate()
HYBRID = HYBRID_PRIVATE.public_key().to_bytes()
NONCE = base64.b64decode("8zJE9pKVdXVe/nLb")
MATERIAL = bytes(range(0x40, 0x60))


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def test_wire_names_are_key_protects() -> None:
    assert byok.ALG_OAEP_SHA256 == "RSAES_OAEP_SHA_256"
    assert byok.ALG_OAEP_SHA1 == "RSAES_OAEP_SHA_1"
    assert byok.ALG_HYBRID == "KYOK_HYBRID_MLKEM768_X25519"
    assert byok.HYBRID_AAD_LABEL == b"kyok/import/v1"
    fields = byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM)
    assert fields.as_resource() == {
        "payload": fields.payload,
        "encryptedNonce": fields.encrypted_nonce,
        "iv": fields.iv,
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
    }


def test_wire_names_match_the_unit() -> None:
    from kyok.unit import imports

    assert byok.ALGORITHMS == imports.ALGORITHMS
    assert byok.HYBRID_AAD_LABEL == imports.AAD_LABEL


@pytest.mark.parametrize(
    ("algorithm", "nonce_mode", "payload_size", "iv_size", "enc_size"),
    [
        ("RSAES_OAEP_SHA_256", "gcm", 256, 12, 28),
        ("RSAES_OAEP_SHA_1", "gcm", 256, 12, 28),
        ("RSAES_OAEP_SHA_1", "cbc", 256, 16, 16),
        ("KYOK_HYBRID_MLKEM768_X25519", "gcm", 1161 + 32, 12, 28),
    ],
)
def test_fields_are_base64_of_the_right_sizes(
    algorithm: str, nonce_mode: str, payload_size: int, iv_size: int, enc_size: int
) -> None:
    fields = byok.seal_for_import(
        MATERIAL,
        NONCE,
        public_key_pem=PEM,
        hybrid_public_key=HYBRID,
        algorithm=algorithm,
        nonce_mode=nonce_mode,
    )
    assert fields.encryption_algorithm == algorithm
    assert len(b64(fields.payload)) == payload_size
    assert len(b64(fields.iv)) == iv_size
    assert len(b64(fields.encrypted_nonce)) == enc_size
    for value in fields.as_resource().values():
        assert value.isascii() and "\n" not in value


def test_every_seal_is_fresh() -> None:
    a = byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM)
    b = byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM)
    assert a.payload != b.payload and a.iv != b.iv and a.encrypted_nonce != b.encrypted_nonce


def test_payload_is_redacted_in_repr() -> None:
    fields = byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM)
    shown = repr(fields)
    assert fields.payload not in shown and fields.payload[:16] not in shown
    assert "payload" not in shown and fields.iv in shown


@pytest.mark.parametrize("size", [0, 1, 15, 17, 23, 25, 31, 33, 64])
def test_material_must_be_16_24_or_32_bytes(size: int) -> None:
    material = os.urandom(size)
    with pytest.raises(ValueError, match="16, 24 or 32") as info:
        byok.seal_for_import(material, NONCE, public_key_pem=PEM)
    if len(material) >= 8:  # a byte or two could spell "24" by chance: nothing to learn there
        assert material.hex() not in str(info.value)
        assert base64.b64encode(material).decode() not in str(info.value)


def test_material_and_nonce_must_be_bytes() -> None:
    with pytest.raises(ValueError, match="material"):
        byok.seal_for_import("x" * 32, NONCE, public_key_pem=PEM)  # type: ignore[arg-type]
    for nonce in (b"", "8zJE9pKVdXVe/nLb"):
        with pytest.raises(ValueError, match="nonce"):
            byok.seal_for_import(MATERIAL, nonce, public_key_pem=PEM)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["", "RSAES_OAEP_SHA_512", "rsaes_oaep_sha_256"])
def test_unknown_algorithm(algorithm: str) -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "KYOK_HYBRID_MLKEM768_X25519"])
def test_cbc_only_with_sha1(algorithm: str) -> None:
    with pytest.raises(ValueError, match="only accepted with RSAES_OAEP_SHA_1"):
        byok.seal_for_import(
            MATERIAL,
            NONCE,
            public_key_pem=PEM,
            hybrid_public_key=HYBRID,
            algorithm=algorithm,
            nonce_mode="cbc",
        )
    with pytest.raises(ValueError, match="nonce_mode"):
        byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM, nonce_mode="ctr")


def test_the_matching_public_key_is_required() -> None:
    with pytest.raises(ValueError, match="needs public_key_pem"):
        byok.seal_for_import(MATERIAL, NONCE, hybrid_public_key=HYBRID)
    with pytest.raises(ValueError, match="needs public_key_pem"):
        byok.seal_for_import(
            MATERIAL, NONCE, hybrid_public_key=HYBRID, algorithm="RSAES_OAEP_SHA_1"
        )
    with pytest.raises(ValueError, match="needs hybrid_public_key"):
        byok.seal_for_import(
            MATERIAL, NONCE, public_key_pem=PEM, algorithm="KYOK_HYBRID_MLKEM768_X25519"
        )


def test_bad_public_keys() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="1024 bits: at least 2048"):
        byok.seal_for_import(MATERIAL, NONCE, public_key_pem=small_pem)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    der = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for bad in (ec_pem, der, b"", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        with pytest.raises(ValueError, match="not a PEM RSA public key"):
            byok.seal_for_import(MATERIAL, NONCE, public_key_pem=bad)
    with pytest.raises(ValueError, match="must be bytes"):
        byok.seal_for_import(MATERIAL, NONCE, public_key_pem=PEM.decode())  # type: ignore[arg-type]
    for hybrid in (HYBRID[:-1], b"\x02" + HYBRID[1:], b""):
        with pytest.raises(ValueError, match="not a kyok hybrid public key"):
            byok.seal_for_import(
                MATERIAL, NONCE, hybrid_public_key=hybrid, algorithm="KYOK_HYBRID_MLKEM768_X25519"
            )


def test_hybrid_payload_is_bound_to_the_nonce() -> None:
    fields = byok.seal_for_import(
        MATERIAL, NONCE, hybrid_public_key=HYBRID, algorithm="KYOK_HYBRID_MLKEM768_X25519"
    )
    payload = b64(fields.payload)
    assert kem.hybrid_open(HYBRID_PRIVATE, payload, aad=b"kyok/import/v1" + NONCE) == MATERIAL
    with pytest.raises(Exception, match="did not authenticate"):
        kem.hybrid_open(HYBRID_PRIVATE, payload, aad=b"kyok/import/v1" + NONCE[:-1])


# ------------------------------------------------------------- reading a token response


def test_decode_token_payload() -> None:
    payload_b64 = base64.b64encode(PEM).decode()
    assert byok.decode_token_payload(payload_b64) == PEM
    for bad in ("", "not base64!", base64.b64encode(b"hello").decode(), PEM.decode()):
        with pytest.raises(ValueError):
            byok.decode_token_payload(bad)
    with pytest.raises(ValueError, match="must be a base64 string"):
        byok.decode_token_payload(PEM)  # type: ignore[arg-type]


def test_decode_token_nonce() -> None:
    assert byok.decode_token_nonce("8zJE9pKVdXVe/nLb") == NONCE
    for bad in ("", "8zJE9pKVdXVe/nL", "8zJE9pKVdXVe/nLb!"):
        with pytest.raises(ValueError, match="nonce"):
            byok.decode_token_nonce(bad)


def test_decode_hybrid_public_key() -> None:
    assert byok.decode_hybrid_public_key(base64.b64encode(HYBRID).decode()) == HYBRID
    with pytest.raises(ValueError, match="not a kyok hybrid public key"):
        byok.decode_hybrid_public_key(base64.b64encode(HYBRID[:-1]).decode())
    with pytest.raises(ValueError, match="not valid base64"):
        byok.decode_hybrid_public_key(binascii.hexlify(HYBRID).decode() + "=")


def test_a_token_response_end_to_end() -> None:
    """GET /api/v2/import_token as Key Protect documents it, then seal_for_import."""
    token = {"payload": base64.b64encode(PEM).decode(), "nonce": "8zJE9pKVdXVe/nLb"}
    fields = byok.seal_for_import(
        MATERIAL,
        byok.decode_token_nonce(token["nonce"]),
        public_key_pem=byok.decode_token_payload(token["payload"]),
    )
    assert rsa_oaep.oaep_decrypt(RSA_KEY, b64(fields.payload)) == MATERIAL
