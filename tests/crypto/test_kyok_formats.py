"""kyok's own format vectors (tests/vectors/kyok_formats.json, the docs/formats.md examples).

Each vector is checked twice: against kyok, and against an independent re-derivation that uses
only ``cryptography``'s HKDF/AESGCM and ``hashlib``/``hmac``, following the constructions written
in the module docstrings. A change to a construction therefore fails here even if kyok and the
generator change together.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import itertools
import struct
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kyok.crypto import kem, mkvp, shamir
from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.pbe import pbe_decrypt
from kyok.crypto.shamir import Share
from kyok.unit import errors as unit_errors
from kyok.unit.imports import ImportPrivateKeys, WrappedImport, open_import

from ._vectors import VECTORS, cases, h, invalid, load, valid

DOC = load("kyok_formats")
AEAD = DOC["kyok-aead-v1"]["vectors"]
HYBRID = DOC["kyok-hybrid-kem-v1"]
SEAL = DOC["kyok-hybrid-seal-v1"]["vectors"]


def _generator() -> ModuleType:
    path = VECTORS / "generate_kyok_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_kyok_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_are_what_the_generator_prints() -> None:
    committed = (VECTORS / "kyok_formats.json").read_text(encoding="ascii")
    assert _generator().render() == committed, (
        "regenerate: python tests/vectors/generate_kyok_vectors.py > tests/vectors/kyok_formats.json"
    )


def test_every_vector_file_names_its_source() -> None:
    names = sorted(p.stem for p in VECTORS.glob("*.json"))
    assert len(names) >= 10
    for name in names:
        assert load(name)["source"].strip(), name


# ----------------------------------------------------------- independent primitives


def ref_kyok_aead_v1_open(key: bytes, data: bytes, aad: bytes) -> bytes:
    """kyok-aead-v1 from aead.py's docstring, with cryptography's HKDF and AESGCM only."""
    nonce, body = data[:24], data[24:]
    dk = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kyok/aead/v1", info=nonce).derive(key)
    return AESGCM(dk).decrypt(bytes(12), body, aad)


def ref_kyok_aead_v1_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    dk = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kyok/aead/v1", info=nonce).derive(key)
    return nonce + AESGCM(dk).encrypt(bytes(12), plaintext, aad)


def ref_lp(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


# -------------------------------------------------------------------- kyok-aead-v1


@pytest.mark.parametrize("v", cases(AEAD, where=valid))
def test_aead_vector(v: dict[str, Any]) -> None:
    key, nonce, aad, plaintext = h(v["key"]), h(v["nonce"]), h(v["aad"]), h(v["plaintext"])
    aead = DerivedKeyAead(key)
    assert aead.encrypt(plaintext, aad, nonce=nonce) == h(v["output"])
    assert aead.decrypt(h(v["output"]), aad) == plaintext


@pytest.mark.parametrize("v", cases(AEAD, where=valid))
def test_aead_vector_rederived_independently(v: dict[str, Any]) -> None:
    key, nonce, aad, plaintext = h(v["key"]), h(v["nonce"]), h(v["aad"]), h(v["plaintext"])
    prk = hmac.new(b"kyok/aead/v1", key, hashlib.sha256).digest()
    assert prk == h(v["prk"])
    assert hmac.new(prk, nonce + b"\x01", hashlib.sha256).digest() == h(v["derived_key"])
    assert ref_kyok_aead_v1_seal(key, nonce, plaintext, aad) == h(v["output"])
    assert ref_kyok_aead_v1_open(key, h(v["output"]), aad) == plaintext


@pytest.mark.parametrize("v", cases(AEAD, where=invalid))
def test_aead_negative_vector(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidCiphertext):
        DerivedKeyAead(h(v["key"])).decrypt(h(v["output"]), h(v["aad"]))
    with pytest.raises((InvalidTag, ValueError)):
        ref_kyok_aead_v1_open(h(v["key"]), h(v["output"]), h(v["aad"]))


def test_aead_vectors_cover_every_key_size_and_empty_inputs() -> None:
    good = [v for v in AEAD if valid(v)]
    assert {len(h(v["key"])) for v in good} == {16, 24, 32}
    assert any(v["plaintext"] == "" and v["aad"] == "" for v in good)
    assert any(v["plaintext"] == "" and v["aad"] != "" for v in good)
    assert any(v["plaintext"] != "" and v["aad"] == "" for v in good)
    assert any(v["plaintext"] != "" and v["aad"] != "" for v in good)


# --------------------------------------------------------------- kyok-hybrid-kem-v1


def _hybrid_private() -> kem.HybridPrivateKey:
    key = HYBRID["private_key"]
    return kem.HybridPrivateKey.from_private_bytes(h(key["x25519_private"]), h(key["mlkem_seed"]))


def test_hybrid_public_key_vector() -> None:
    public = _hybrid_private().public_key()
    assert public.to_bytes() == h(HYBRID["private_key"]["public_key"])
    assert public.fingerprint == HYBRID["private_key"]["fingerprint"]
    assert HYBRID["suite"] == kem.SUITE.decode()


@pytest.mark.parametrize("v", cases(HYBRID["vectors"], where=valid))
def test_hybrid_decapsulation_vector(v: dict[str, Any]) -> None:
    assert _hybrid_private().decapsulate(h(v["encapsulation"])) == h(v["shared_secret"])


@pytest.mark.parametrize("v", cases(HYBRID["vectors"], where=invalid))
def test_hybrid_decapsulation_negative_vector(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidCiphertext):
        _hybrid_private().decapsulate(h(v["encapsulation"]))


def _ref_combine(ss_m: bytes, ss_x: bytes, encapsulation: bytes) -> bytes:
    public = h(HYBRID["private_key"]["public_key"])
    pk_x, pk_m = public[1:33], public[33:]
    ct_x, ct_m = encapsulation[:32], encapsulation[32:]
    salt = hashlib.sha256(ref_lp(ct_m, ct_x, pk_m, pk_x)).digest()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"kyok/hybrid-kem/v1/mlkem768-x25519"
    ).derive(ss_m + ss_x)


def test_hybrid_vectors_rederived_independently() -> None:
    """ss_M and ss_X are standard known answers (Wycheproof ML-KEM, RFC 7748); the implicit
    rejection secret is FIPS 203's K-bar = J(z || c) = SHAKE256(z || c, 32)."""
    ss_x = h(HYBRID["components"]["ss_x25519"])
    z = h(HYBRID["private_key"]["mlkem_seed"])[32:]
    good, flipped = [v for v in HYBRID["vectors"] if valid(v)]
    enc = h(good["encapsulation"])
    assert _ref_combine(h(HYBRID["components"]["ss_mlkem"]), ss_x, enc) == h(good["shared_secret"])
    enc_f = h(flipped["encapsulation"])
    k_bar = hashlib.shake_256(z + enc_f[32:]).digest(32)
    assert _ref_combine(k_bar, ss_x, enc_f) == h(flipped["shared_secret"])


# -------------------------------------------------------------- kyok-hybrid-seal-v1


@pytest.mark.parametrize("v", cases(SEAL, where=valid))
def test_seal_vector(v: dict[str, Any]) -> None:
    opened = kem.hybrid_open(_hybrid_private(), h(v["sealed"]), aad=h(v["aad"]), info=h(v["info"]))
    assert opened == h(v["plaintext"])


@pytest.mark.parametrize("v", cases(SEAL, where=valid))
def test_seal_vector_rederived_independently(v: dict[str, Any]) -> None:
    sealed = h(v["sealed"])
    header, body = sealed[: 1 + 1120], sealed[1 + 1120 :]
    assert header[0] == 0x01
    good = next(x for x in HYBRID["vectors"] if valid(x))
    assert header[1:] == h(good["encapsulation"])
    shared = h(good["shared_secret"])
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"kyok/hybrid-seal/v1/" + h(v["info"])
    ).derive(shared)
    assert ref_kyok_aead_v1_open(key, body, header + h(v["aad"])) == h(v["plaintext"])


@pytest.mark.parametrize("v", cases(SEAL, where=invalid))
def test_seal_negative_vector(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidCiphertext):
        kem.hybrid_open(_hybrid_private(), h(v["sealed"]), aad=h(v["aad"]), info=h(v["info"]))


# ------------------------------------------------------------------------------ pbe


@pytest.mark.parametrize("v", cases(DOC["pbe"]["vectors"]))
def test_pbe_vector(v: dict[str, Any]) -> None:
    params = ScryptParams(log2_n=v["log2_n"], r=v["r"], p=v["p"])
    passphrase, salt, aad = h(v["passphrase"]), h(v["salt"]), h(v["aad"])
    assert pbe_decrypt(passphrase, salt, params, h(v["ciphertext"]), aad) == h(v["plaintext"])
    key = hashlib.scrypt(passphrase, salt=salt, n=1 << v["log2_n"], r=v["r"], p=v["p"], dklen=32)
    assert key == h(v["key"])
    assert ref_kyok_aead_v1_open(key, h(v["ciphertext"]), aad) == h(v["plaintext"])
    with pytest.raises(InvalidCiphertext):
        pbe_decrypt(passphrase + b"!", salt, params, h(v["ciphertext"]), aad)


# --------------------------------------------------------------------- mkvp and kcv


@pytest.mark.parametrize("v", DOC["mkvp"]["mkvp"], ids=lambda v: v["master_key"][:8])
def test_mkvp_vector(v: dict[str, Any]) -> None:
    key = h(v["master_key"])
    assert mkvp.mkvp(key) == v["mkvp"]
    assert mkvp.pretty(v["mkvp"]) == v["pretty"]
    ref = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"kyok/v1/mkvp").derive(key)
    assert ref.hex() == v["mkvp"]
    assert len(v["mkvp"]) == 32 and v["mkvp"] == v["mkvp"].lower()
    assert v["pretty"].replace(" ", "") == v["mkvp"] and len(v["pretty"].split()) == 8


@pytest.mark.parametrize("v", DOC["mkvp"]["kcv"], ids=lambda v: v["part"][:8])
def test_kcv_vector(v: dict[str, Any]) -> None:
    part = h(v["part"])
    assert mkvp.kcv(part) == v["kcv"]
    ref = HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=b"kyok/v1/kcv").derive(part)
    assert ref.hex() == v["kcv"]


def test_mkvp_and_kcv_differ_and_check_lengths() -> None:
    key = bytes(range(32))
    assert not mkvp.mkvp(key).startswith(mkvp.kcv(key))
    for size in (0, 16, 31, 33, 64):
        with pytest.raises(ValueError):
            mkvp.mkvp(bytes(size))
        with pytest.raises(ValueError):
            mkvp.kcv(bytes(size))
    assert mkvp.pretty("") == ""
    assert mkvp.pretty("abcdef") == "abcd ef"


# --------------------------------------------------------------------------- Shamir


@pytest.mark.parametrize("v", cases(DOC["shamir"]["vectors"]))
def test_shamir_combine_vector(v: dict[str, Any]) -> None:
    shares = [Share.from_bytes(h(s)) for s in v["shares"]]
    threshold = v["threshold"]
    for size in range(threshold, len(shares) + 1):
        for subset in itertools.combinations(shares, size):
            assert shamir.combine(list(subset)) == h(v["secret"])
    if len(h(v["secret"])) >= 8:
        for subset in itertools.combinations(shares, threshold - 1):
            if subset:
                assert shamir.combine(list(subset)) != h(v["secret"])


@pytest.mark.parametrize("v", cases(DOC["shamir"]["vectors"]))
def test_shamir_split_with_fixed_coefficients(
    v: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """split() draws the x^1, x^2, ... coefficients in order: feed it the vector's."""
    coefficients = iter(h(c) for c in v["coefficients"])

    def urandom(n: int) -> bytes:
        value = next(coefficients)
        assert len(value) == n
        return value

    monkeypatch.setattr(shamir, "os", SimpleNamespace(urandom=urandom))
    shares = shamir.split(h(v["secret"]), v["threshold"], len(v["shares"]))
    assert [s.to_bytes().hex() for s in shares] == v["shares"]


# ------------------------------------------------------------------ kyok-import-v1

IMPORT = DOC["kyok-import-v1"]
IMPORT_RSA = load("kyok_import_rsa")


def _import_wrapped(v: dict[str, Any]) -> WrappedImport:
    return WrappedImport(v["algorithm"], h(v["payload"]), h(v["encrypted_nonce"]), h(v["iv"]))


@pytest.mark.parametrize("v", cases(IMPORT["vectors"], where=valid))
def test_import_vector(v: dict[str, Any]) -> None:
    material = h(IMPORT["private_key"]["private_material"])
    assert open_import(material, _import_wrapped(v), h(IMPORT["nonce"])) == h(v["material"])


@pytest.mark.parametrize("v", cases(IMPORT["vectors"], where=invalid))
def test_import_negative_vector(v: dict[str, Any]) -> None:
    material = h(IMPORT["private_key"]["private_material"])
    with pytest.raises(getattr(unit_errors, v["error"])):
        open_import(material, _import_wrapped(v), h(IMPORT["nonce"]))


def test_import_private_material_rederived_independently() -> None:
    """0x01 || lp(RSA PKCS#8 DER, X25519 scalar, ML-KEM-768 seed), keys from the other vectors."""
    key = IMPORT["private_key"]
    oaep = next(g for g in load("rsa_oaep")["groups"] if g["hash"] == "sha256")
    rsa_der = h(oaep["private_key_pkcs8"])
    x_priv = h(HYBRID["private_key"]["x25519_private"])
    seed = h(HYBRID["private_key"]["mlkem_seed"])
    assert h(key["private_material"]) == b"\x01" + ref_lp(rsa_der, x_priv, seed)
    assert key["hybrid_public_key"] == HYBRID["private_key"]["public_key"]
    public = serialization.load_der_private_key(rsa_der, None).public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki == h(key["rsa_public_spki"])
    keys = ImportPrivateKeys.from_material(h(key["private_material"])).public_keys()
    assert keys.rsa_spki_der == spki and keys.hybrid == h(key["hybrid_public_key"])


@pytest.mark.parametrize("v", cases(IMPORT["vectors"], where=valid))
def test_import_vector_rederived_independently(v: dict[str, Any]) -> None:
    """Open each valid import with cryptography alone, following docs/formats.md."""
    nonce, payload, iv = h(IMPORT["nonce"]), h(v["payload"]), h(v["iv"])
    if v["algorithm"] == "KYOK_HYBRID_MLKEM768_X25519":
        header, body = payload[: 1 + 1120], payload[1 + 1120 :]
        good = next(x for x in HYBRID["vectors"] if valid(x))
        assert header == b"\x01" + h(good["encapsulation"])
        seal_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"kyok/hybrid-seal/v1/"
        ).derive(h(good["shared_secret"]))
        assert seal_key == h(IMPORT["seal_key"])
        material = ref_kyok_aead_v1_open(seal_key, body, header + b"kyok/import/v1" + nonce)
    else:
        oaep = next(g for g in load("rsa_oaep")["groups"] if g["hash"] == "sha256")
        key = serialization.load_der_private_key(h(oaep["private_key_pkcs8"]), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        md: hashes.HashAlgorithm = (
            hashes.SHA256() if v["algorithm"] == "RSAES_OAEP_SHA_256" else hashes.SHA1()
        )
        material = key.decrypt(payload, padding.OAEP(padding.MGF1(md), md, None))
    assert material == h(v["material"])
    if len(iv) == 16:
        dec = Cipher(algorithms.AES(material), modes.CBC(iv)).decryptor()
        unpadder = sym_padding.PKCS7(128).unpadder()
        padded = dec.update(h(v["encrypted_nonce"])) + dec.finalize()
        opened = unpadder.update(padded) + unpadder.finalize()
    else:
        opened = AESGCM(material).decrypt(iv, h(v["encrypted_nonce"]), None)
    assert opened == nonce


def test_import_rsa_payloads_are_the_ones_in_the_vectors() -> None:
    payloads = {v["payload"] for v in IMPORT["vectors"]}
    for p in IMPORT_RSA["payloads"]:
        assert p["payload"] in payloads


def test_import_vectors_cover_every_algorithm_and_error() -> None:
    good = [v for v in IMPORT["vectors"] if valid(v)]
    assert {v["algorithm"] for v in good} == {
        "RSAES_OAEP_SHA_256",
        "RSAES_OAEP_SHA_1",
        "KYOK_HYBRID_MLKEM768_X25519",
    }
    assert {len(h(v["material"])) for v in good} == {16, 24, 32}
    assert {v["error"] for v in IMPORT["vectors"] if invalid(v)} == {
        "ImportPayloadInvalid",
        "ImportKeyLength",
        "ImportNonceUndecryptable",
        "ImportNonceMismatch",
        "ImportAlgorithmUnknown",
    }
