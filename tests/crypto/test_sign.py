"""sign: Ed25519 (RFC 8032), ECDSA P-256/P-384 (RFC 6979, Wycheproof), ML-DSA-65 (Wycheproof)."""

from __future__ import annotations

import base64
import hashlib
import pickle
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.errors import InvalidSignature
from kyok.crypto.sign import SignatureAlgorithm, SigningKey, VerifyingKey

from ._vectors import cases, h, load, valid

ED25519 = load("ed25519")["vectors"]
ECDSA = load("ecdsa")
MLDSA = load("mldsa65")

_CURVES = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}
_ORDERS = {
    "ecdsa-p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ecdsa-p384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# ----------------------------------------------------------------------- Ed25519


@pytest.mark.parametrize("v", cases(ED25519, where=lambda v: "secret_key" in v))
def test_ed25519_rfc8032(v: dict[str, Any]) -> None:
    signing = SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(h(v["secret_key"])))
    assert signing.algorithm is SignatureAlgorithm.ED25519
    message, signature = h(v["message"]), h(v["signature"])
    assert signing.sign(message) == signature  # Ed25519 is deterministic
    public = ed25519.Ed25519PublicKey.from_public_bytes(h(v["public_key"]))
    verifying = VerifyingKey.from_der(_spki(public))
    assert signing.verifying_key() == verifying
    verifying.verify(signature, message)
    with pytest.raises(InvalidSignature):
        verifying.verify(signature, message + b"\x00")


@pytest.mark.parametrize("v", cases(ED25519, where=lambda v: "secret_key" not in v))
def test_ed25519_wycheproof(v: dict[str, Any]) -> None:
    key = VerifyingKey.from_der(
        _spki(ed25519.Ed25519PublicKey.from_public_bytes(h(v["public_key"])))
    )
    if valid(v):
        key.verify(h(v["signature"]), h(v["message"]))
    else:
        with pytest.raises(InvalidSignature):
            key.verify(h(v["signature"]), h(v["message"]))


# ------------------------------------------------------------------------- ECDSA


def _rfc6979_key(v: dict[str, Any]) -> VerifyingKey:
    numbers = ec.EllipticCurvePublicNumbers(
        int(v["ux"], 16), int(v["uy"], 16), _CURVES[v["algorithm"]]
    )
    return VerifyingKey.from_der(_spki(numbers.public_key()))


@pytest.mark.parametrize("v", cases(ECDSA["rfc6979"]))
def test_ecdsa_rfc6979(v: dict[str, Any]) -> None:
    key = _rfc6979_key(v)
    assert key.algorithm == v["algorithm"]
    # The private key of the appendix gives the same public key through SigningKey.
    private = ec.derive_private_key(int(v["private_key"], 16), _CURVES[v["algorithm"]])
    assert SigningKey(private).verifying_key() == key
    signature = encode_dss_signature(int(v["r"], 16), int(v["s"], 16))
    if valid(v):
        key.verify(signature, h(v["message"]))
    else:
        with pytest.raises(InvalidSignature):
            key.verify(signature, h(v["message"]))


@pytest.mark.parametrize("v", cases(ECDSA["rfc6979"], where=valid))
def test_ecdsa_signatures_are_malleable(v: dict[str, Any]) -> None:
    """(r, n - s) verifies too: plain ECDSA. Never use an ECDSA signature as an identifier."""
    n = _ORDERS[v["algorithm"]]
    _rfc6979_key(v).verify(
        encode_dss_signature(int(v["r"], 16), n - int(v["s"], 16)), h(v["message"])
    )


@pytest.mark.parametrize("v", cases(ECDSA["rfc6979"], where=valid))
def test_ecdsa_rfc6979_tampered(v: dict[str, Any]) -> None:
    key, r, s = _rfc6979_key(v), int(v["r"], 16), int(v["s"], 16)
    n = _ORDERS[v["algorithm"]]
    for bad_r, bad_s in [(r + 1, s), (r, s + 1), (s, r), (0, s), (r, 0), (r + n, s), (r, s + n)]:
        with pytest.raises(InvalidSignature):
            key.verify(encode_dss_signature(bad_r, bad_s), h(v["message"]))
    with pytest.raises(InvalidSignature):
        key.verify(encode_dss_signature(r, s)[:-1], h(v["message"]))


@pytest.mark.parametrize("v", cases(ECDSA["der"]))
def test_ecdsa_wycheproof_der(v: dict[str, Any]) -> None:
    key = VerifyingKey.from_der(h(v["public_key_der"]))
    assert key.algorithm == v["algorithm"]
    if valid(v):
        key.verify(h(v["signature_der"]), h(v["message"]))
    else:
        with pytest.raises(InvalidSignature):
            key.verify(h(v["signature_der"]), h(v["message"]))


# ---------------------------------------------------------------------- ML-DSA-65


@pytest.mark.parametrize("v", cases(MLDSA["vectors"]))
def test_mldsa65_wycheproof(v: dict[str, Any]) -> None:
    if v["kyok_result"] == "bad_public_key":
        with pytest.raises(ValueError):
            VerifyingKey.from_der(h(v["public_key_der"]))
        return
    key = VerifyingKey.from_der(h(MLDSA["public_key_der"]))
    assert key.algorithm is SignatureAlgorithm.ML_DSA_65
    if v["kyok_result"] == "valid":
        key.verify(h(v["signature"]), h(v["message"]))
    else:
        with pytest.raises(InvalidSignature):
            key.verify(h(v["signature"]), h(v["message"]))


# ------------------------------------------------------------ round trips, all four

ALGORITHMS = list(SignatureAlgorithm)
_KEYS = {alg: SigningKey.generate(alg) for alg in ALGORITHMS}
_OTHER = {alg: SigningKey.generate(alg) for alg in ALGORITHMS}
algorithms = st.sampled_from(ALGORITHMS)
messages = st.binary(max_size=200)


@settings(max_examples=60)
@given(alg=algorithms, message=messages)
def test_sign_verify_round_trip(alg: SignatureAlgorithm, message: bytes) -> None:
    key = _KEYS[alg]
    assert key.algorithm is alg
    verifying = key.verifying_key()
    assert verifying.algorithm is alg
    verifying.verify(key.sign(message), message)
    VerifyingKey.from_der(verifying.der).verify(key.sign(message), message)
    VerifyingKey.from_pem(verifying.to_pem()).verify(key.sign(message), message)


@settings(max_examples=80)
@given(alg=algorithms, message=messages, data=st.data())
def test_tampered_signature_fails(
    alg: SignatureAlgorithm, message: bytes, data: st.DataObject
) -> None:
    key = _KEYS[alg]
    signature = bytearray(key.sign(message))
    # ECDSA and ML-DSA sign with fresh randomness (and DER lengths vary): draw the position
    # independently of the signature so that hypothesis replays consistently.
    bit = data.draw(st.integers(0, 2**16), label="bit") % (len(signature) * 8)
    signature[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidSignature):
        key.verifying_key().verify(bytes(signature), message)


@settings(max_examples=60)
@given(alg=algorithms, message=messages, data=st.data())
def test_tampered_message_fails(
    alg: SignatureAlgorithm, message: bytes, data: st.DataObject
) -> None:
    key = _KEYS[alg]
    signature = key.sign(message)
    other = data.draw(messages.filter(lambda m: m != message), label="other message")
    with pytest.raises(InvalidSignature):
        key.verifying_key().verify(signature, other)


@settings(max_examples=40)
@given(alg=algorithms, message=messages, cut=st.integers(1, 8))
def test_truncated_or_extended_signature_fails(
    alg: SignatureAlgorithm, message: bytes, cut: int
) -> None:
    key = _KEYS[alg]
    signature = key.sign(message)
    for bad in (signature[:-cut], signature + bytes(cut), b""):
        with pytest.raises(InvalidSignature):
            key.verifying_key().verify(bad, message)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_other_key_fails(alg: SignatureAlgorithm) -> None:
    with pytest.raises(InvalidSignature):
        _OTHER[alg].verifying_key().verify(_KEYS[alg].sign(b"m"), b"m")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_encrypted_pem_round_trip(alg: SignatureAlgorithm) -> None:
    key = _KEYS[alg]
    pem = key.to_encrypted_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    again = SigningKey.from_pem(pem, b"correct horse")
    assert again.algorithm is alg
    assert again.verifying_key() == key.verifying_key()
    key.verifying_key().verify(again.sign(b"m"), b"m")
    # The docstring promises PBES2 with AES-256-CBC: look for both OIDs in the DER.
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    assert bytes.fromhex("06092a864886f70d01050d") in der  # 1.2.840.113549.1.5.13 PBES2
    assert bytes.fromhex("060960864801650304012a") in der  # 2.16.840.1.101.3.4.1.42 AES-256-CBC


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_encrypted_pem_wrong_passphrase(alg: SignatureAlgorithm) -> None:
    pem = _KEYS[alg].to_encrypted_pem(b"correct horse")
    for wrong in (b"correct hors", b"Correct horse", b"x"):
        with pytest.raises(ValueError):
            SigningKey.from_pem(pem, wrong)
    with pytest.raises(ValueError):
        SigningKey.from_pem(pem, None)
    with pytest.raises(ValueError):
        SigningKey.from_pem(pem.replace(b"A", b"B", 3), b"correct horse")
    with pytest.raises(ValueError):
        SigningKey.from_pem(b"not a pem", b"correct horse")


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError):
        _KEYS[SignatureAlgorithm.ED25519].to_encrypted_pem(b"")


def test_unencrypted_pem_loads_without_a_passphrase_only() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert SigningKey.from_pem(pem, None).algorithm is SignatureAlgorithm.ED25519
    with pytest.raises(ValueError):
        SigningKey.from_pem(pem, b"unexpected")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_fingerprint_is_sha256_of_spki_and_stable(alg: SignatureAlgorithm) -> None:
    key = _KEYS[alg]
    verifying = key.verifying_key()
    fingerprint = verifying.fingerprint
    assert fingerprint == hashlib.sha256(verifying.der).hexdigest()
    assert len(fingerprint) == 64
    assert key.verifying_key().fingerprint == fingerprint
    assert VerifyingKey.from_der(verifying.der).fingerprint == fingerprint
    assert VerifyingKey.from_pem(verifying.to_pem()).fingerprint == fingerprint
    again = SigningKey.from_pem(key.to_encrypted_pem(b"pw"), b"pw")
    assert again.verifying_key().fingerprint == fingerprint
    assert _OTHER[alg].verifying_key().fingerprint != fingerprint


def test_generate_accepts_names_and_refuses_others() -> None:
    assert SigningKey.generate("ecdsa-p384").algorithm is SignatureAlgorithm.ECDSA_P384
    assert SigningKey.generate().algorithm is SignatureAlgorithm.ED25519
    with pytest.raises(ValueError):
        SigningKey.generate("rsa-2048")


def test_unsupported_keys_are_refused() -> None:
    p521 = ec.generate_private_key(ec.SECP521R1())
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    x = x25519.X25519PrivateKey.generate()
    for private in (p521, small_rsa, x):
        with pytest.raises(ValueError):
            SigningKey(private)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            VerifyingKey.from_der(_spki(private.public_key()))
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        with pytest.raises(ValueError):
            SigningKey.from_pem(pem, b"pw")
    for garbage in (b"", b"\x30\x00", b"garbage" * 10):
        with pytest.raises(ValueError):
            VerifyingKey.from_der(garbage)
        with pytest.raises(ValueError):
            VerifyingKey.from_pem(garbage)


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("label", ALGORITHMS)
def test_verifying_key_label_must_match_the_key(
    alg: SignatureAlgorithm, label: SignatureAlgorithm
) -> None:
    """Regression: a mismatched label verified P-256 keys with SHA-384, or raised KeyError."""
    der = _KEYS[alg].verifying_key().der
    if label is alg:
        assert VerifyingKey(label, der) == _KEYS[alg].verifying_key()
    else:
        with pytest.raises(ValueError):
            VerifyingKey(label, der)


def test_verifying_key_refuses_bad_der() -> None:
    with pytest.raises(ValueError):
        VerifyingKey(SignatureAlgorithm.ED25519, b"garbage")
    with pytest.raises(TypeError):
        VerifyingKey(SignatureAlgorithm.ED25519, "30 2a ...")  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_private_key_never_in_repr_and_not_picklable(alg: SignatureAlgorithm) -> None:
    key = _KEYS[alg]
    private = key._key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        value = private.private_numbers().private_value
        secrets = [format(value, "x"), format(value, "X"), str(value)]
    else:
        raw = private.private_bytes_raw()
        secrets = [raw.hex(), raw.hex().upper(), repr(raw)]
    text = repr(key) + str(key)
    assert alg.value in text
    for secret in secrets:
        assert secret not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
