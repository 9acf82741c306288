"""Key import with an import token (BYOK): the client's seal_for_import against the unit's
open_import / CryptoUnit.import_material, every rejection, and interop with the openssl binary."""

from __future__ import annotations

import base64
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.client import byok
from kyok.crypto import aead, kem, legacy, rsa_oaep
from kyok.crypto.encoding import b64d, lp
from kyok.unit import imports
from kyok.unit.blob import (
    PURPOSE_IMPORT_TOKEN,
    PURPOSE_ROOT_KEY,
    PURPOSE_STANDARD_KEY,
    BlobRef,
    SealedBlob,
)
from kyok.unit.errors import (
    BlobCorrupt,
    ImportAlgorithmUnknown,
    ImportKeyLength,
    ImportNonceMismatch,
    ImportNonceUndecryptable,
    ImportPayloadInvalid,
    ImportRejected,
    UnitSealed,
)
from kyok.unit.handles import KeyHandle, Liveness
from kyok.unit.imports import (
    ALG_HYBRID,
    ALG_OAEP_SHA1,
    ALG_OAEP_SHA256,
    ImportPrivateKeys,
    ImportPublicKeys,
    WrappedImport,
    open_import,
)
from kyok.unit.unit import CryptoUnit

NewUnit = Callable[..., CryptoUnit]

# Two tokens for the whole module (RSA key generation is the slow part); 2048 bits for speed.
MATERIAL, PUBLIC = imports.generate_import_keys(2048)
OTHER_MATERIAL, OTHER_PUBLIC = imports.generate_import_keys(2048)
NONCE = bytes.fromhex("f33244f6929575755efe72db")  # base64 "8zJE9pKVdXVe/nLb" of the KP docs
OTHER_NONCE = os.urandom(12)

# (algorithm, nonce_mode) of every way a client may encrypt
MODES = [
    (ALG_OAEP_SHA256, "gcm"),
    (ALG_OAEP_SHA1, "gcm"),
    (ALG_OAEP_SHA1, "cbc"),
    (ALG_HYBRID, "gcm"),
]
MODE_IDS = [f"{a}-{m}" for a, m in MODES]


def seal(
    material: bytes,
    nonce: bytes = NONCE,
    algorithm: str = ALG_OAEP_SHA256,
    nonce_mode: str = "gcm",
    public: ImportPublicKeys = PUBLIC,
) -> WrappedImport:
    """What the client sends, decoded as the API layer would."""
    fields = byok.seal_for_import(
        material,
        nonce,
        public_key_pem=public.rsa_pem(),
        hybrid_public_key=public.hybrid,
        algorithm=algorithm,
        nonce_mode=nonce_mode,
    )
    return WrappedImport(
        fields.encryption_algorithm,
        b64d(fields.payload),
        b64d(fields.encrypted_nonce),
        b64d(fields.iv),
    )


def raw_payload(algorithm: str, material: bytes, nonce: bytes = NONCE) -> bytes:
    """A payload made without the client's checks (for lengths the client refuses)."""
    if algorithm == ALG_HYBRID:
        return kem.hybrid_seal(
            kem.HybridPublicKey.from_bytes(PUBLIC.hybrid), material, aad=b"kyok/import/v1" + nonce
        )
    key = rsa_oaep.load_public_key_pem(PUBLIC.rsa_pem())
    if algorithm == ALG_OAEP_SHA1:
        return legacy.oaep_sha1_encrypt(key, material)
    return rsa_oaep.oaep_encrypt(key, material)


def gcm_nonce(key: bytes, nonce: bytes = NONCE, iv: bytes | None = None) -> tuple[bytes, bytes]:
    iv = os.urandom(12) if iv is None else iv
    return aead.aes_gcm_encrypt(key, iv, nonce), iv


# Shorter secrets have encodings (two hex digits, say) that an error message
# may contain by chance, so a leak of them cannot be told from a coincidence.
MIN_TRACEABLE = 8


def leak_forms(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret),
    ]


def rejects(
    error: type[Exception], fn: Callable[[], Any], *secrets: bytes
) -> pytest.ExceptionInfo[Exception]:
    """``fn`` raises ``error``, and nothing about it shows any of ``secrets``."""
    with pytest.raises(error) as info:
        fn()
    exc = info.value
    shown = " ".join(
        [str(exc), repr(exc), str(getattr(exc, "message", "")), repr(exc.args)]
        + [str(e) for e in (exc.__cause__, exc.__context__) if e is not None]
    )
    for secret in secrets:
        if len(secret) < MIN_TRACEABLE:
            continue  # a byte or two turns up in any sentence by chance
        for form in leak_forms(secret):
            assert form not in shown
    assert exc.__cause__ is None
    return info


# ----------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("algorithm", "nonce_mode"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("size", [16, 24, 32])
def test_round_trip(algorithm: str, nonce_mode: str, size: int) -> None:
    material = os.urandom(size)
    wrapped = seal(material, algorithm=algorithm, nonce_mode=nonce_mode)
    assert open_import(MATERIAL, wrapped, NONCE) == material


@pytest.mark.parametrize(("algorithm", "nonce_mode"), MODES, ids=MODE_IDS)
def test_unit_imports_into_a_root_key_handle(
    new_unit: NewUnit, algorithm: str, nonce_mode: str
) -> None:
    unit = dev_unit(new_unit)
    token, public = unit.new_import_keys(token_ref(), rsa_bits=2048)
    assert token.ref.purpose == PURPOSE_IMPORT_TOKEN
    material = os.urandom(32)
    wrapped = seal(material, algorithm=algorithm, nonce_mode=nonce_mode, public=public)
    sealed, length = unit.import_material(token, root_ref(), wrapped, NONCE)
    assert length == 32 and sealed.ref == root_ref()
    assert material not in sealed.data
    handle = unit.handle(sealed)
    ciphertext, dek = handle.wrap(None, ["aad"])
    assert handle.unwrap(ciphertext, ["aad"]) == dek
    # the handle holds exactly the imported material: an independent handle on it unwraps too
    assert KeyHandle(sealed.ref, material, Liveness()).unwrap(ciphertext, ["aad"]) == dek


@pytest.mark.parametrize("size", [16, 24])
def test_unit_imports_short_keys(new_unit: NewUnit, size: int) -> None:
    unit = dev_unit(new_unit)
    token, public = unit.new_import_keys(token_ref(), rsa_bits=2048)
    material = os.urandom(size)
    sealed, length = unit.import_material(token, root_ref(), seal(material, public=public), NONCE)
    assert length == size
    ciphertext, dek = unit.handle(sealed).wrap(b"d" * 32)
    assert KeyHandle(sealed.ref, material, Liveness()).unwrap(ciphertext) == dek


@settings(max_examples=40)
@given(
    size=st.sampled_from(imports.ROOT_KEY_SIZES),
    data=st.data(),
    nonce=st.binary(min_size=1, max_size=64),
    mode=st.sampled_from(MODES),
)
def test_round_trip_property(
    size: int, data: st.DataObject, nonce: bytes, mode: tuple[str, str]
) -> None:
    material = data.draw(st.binary(min_size=size, max_size=size), label="material")
    algorithm, nonce_mode = mode
    wrapped = seal(material, nonce, algorithm, nonce_mode)
    assert open_import(MATERIAL, wrapped, nonce) == material
    if nonce != OTHER_NONCE:
        error = ImportPayloadInvalid if algorithm == ALG_HYBRID else ImportNonceMismatch
        rejects(error, lambda: open_import(MATERIAL, wrapped, OTHER_NONCE), material)


# ------------------------------------------------------------------------ rejections


@pytest.mark.parametrize(("algorithm", "nonce_mode"), MODES, ids=MODE_IDS)
def test_payload_for_another_token_is_refused(algorithm: str, nonce_mode: str) -> None:
    material = os.urandom(32)
    wrapped = seal(material, algorithm=algorithm, nonce_mode=nonce_mode, public=OTHER_PUBLIC)
    rejects(ImportPayloadInvalid, lambda: open_import(MATERIAL, wrapped, NONCE), material)
    assert open_import(OTHER_MATERIAL, wrapped, NONCE) == material


def test_hybrid_payload_is_bound_to_the_token_nonce() -> None:
    """Same hybrid key, another token nonce: the payload itself does not open."""
    material = os.urandom(32)
    wrapped = seal(material, nonce=OTHER_NONCE, algorithm=ALG_HYBRID)
    # even with the nonce re-encrypted for this token, the payload is another token's
    enc, iv = gcm_nonce(material)
    moved = WrappedImport(ALG_HYBRID, wrapped.payload, enc, iv)
    rejects(ImportPayloadInvalid, lambda: open_import(MATERIAL, moved, NONCE), material)
    assert open_import(MATERIAL, wrapped, OTHER_NONCE) == material


def test_payload_under_another_algorithm_is_refused() -> None:
    material = os.urandom(32)
    sha256 = seal(material)
    as_sha1 = WrappedImport(ALG_OAEP_SHA1, sha256.payload, sha256.encrypted_nonce, sha256.iv)
    rejects(ImportPayloadInvalid, lambda: open_import(MATERIAL, as_sha1, NONCE), material)
    as_hybrid = WrappedImport(ALG_HYBRID, sha256.payload, sha256.encrypted_nonce, sha256.iv)
    rejects(ImportPayloadInvalid, lambda: open_import(MATERIAL, as_hybrid, NONCE), material)


@pytest.mark.parametrize("payload", [b"", b"\x00", bytes(255), bytes(257), bytes(range(256))])
@pytest.mark.parametrize("algorithm", sorted(imports.ALGORITHMS))
def test_garbage_payload_is_refused(algorithm: str, payload: bytes) -> None:
    wrapped = WrappedImport(algorithm, payload, *gcm_nonce(os.urandom(32)))
    rejects(ImportPayloadInvalid, lambda: open_import(MATERIAL, wrapped, NONCE))


@pytest.mark.parametrize("algorithm", sorted(imports.ALGORITHMS))
@pytest.mark.parametrize("size", [1, 15, 17, 31, 33, 64])
def test_wrong_key_length_is_refused(algorithm: str, size: int) -> None:
    material = os.urandom(size)
    enc, iv = gcm_nonce(os.urandom(32))  # the nonce check comes after the length check
    wrapped = WrappedImport(algorithm, raw_payload(algorithm, material), enc, iv)
    info = rejects(ImportKeyLength, lambda: open_import(MATERIAL, wrapped, NONCE), material)
    assert f"{size} bytes" in info.value.message
    assert info.value.target == "payload" and info.value.status == 400


def test_empty_key_material_is_refused() -> None:
    wrapped = WrappedImport(
        ALG_OAEP_SHA256, raw_payload(ALG_OAEP_SHA256, b""), b"x" * 28, b"i" * 12
    )
    rejects(ImportKeyLength, lambda: open_import(MATERIAL, wrapped, NONCE))


@pytest.mark.parametrize(("algorithm", "nonce_mode"), MODES, ids=MODE_IDS)
def test_nonce_under_other_material_is_undecryptable(algorithm: str, nonce_mode: str) -> None:
    material, other = os.urandom(32), os.urandom(32)
    good = seal(material, algorithm=algorithm, nonce_mode=nonce_mode)
    enc, iv = gcm_nonce(other)
    wrapped = WrappedImport(algorithm, good.payload, enc, iv)
    info = rejects(
        ImportNonceUndecryptable, lambda: open_import(MATERIAL, wrapped, NONCE), material, other
    )
    assert info.value.code == "INCORRECT_NONCE_IV_ERR" and info.value.status == 400


@pytest.mark.parametrize(("algorithm", "nonce_mode"), MODES, ids=MODE_IDS)
def test_right_key_wrong_nonce_is_a_mismatch(algorithm: str, nonce_mode: str) -> None:
    material = os.urandom(24)
    good = seal(material, algorithm=algorithm, nonce_mode=nonce_mode)
    wrong = bytes(b ^ 1 for b in NONCE)
    if nonce_mode == "cbc":
        iv = os.urandom(16)
        enc = legacy.aes_cbc_pkcs7_encrypt(material, iv, wrong)
    else:
        enc, iv = gcm_nonce(material, wrong)
    wrapped = WrappedImport(algorithm, good.payload, enc, iv)
    info = rejects(ImportNonceMismatch, lambda: open_import(MATERIAL, wrapped, NONCE), material)
    assert info.value.code == "INCORRECT_NONCE_ERR" and info.value.status == 400


def test_truncated_or_prefixed_nonce_is_a_mismatch() -> None:
    material = os.urandom(32)
    good = seal(material)
    for other in (NONCE[:-1], NONCE + b"\x00", b""):
        enc, iv = gcm_nonce(material, other)
        wrapped = WrappedImport(ALG_OAEP_SHA256, good.payload, enc, iv)
        rejects(ImportNonceMismatch, lambda w=wrapped: open_import(MATERIAL, w, NONCE), material)


def test_cbc_with_wrong_padding_is_undecryptable() -> None:
    material = os.urandom(32)
    good = seal(material, algorithm=ALG_OAEP_SHA1)
    iv = os.urandom(16)
    unpadded = NONCE + b"\x00\x00\x00\x00"  # 16 bytes whose last byte is no PKCS#7 padding
    enc = Cipher(algorithms.AES(material), modes.CBC(iv)).encryptor()
    bad = enc.update(unpadded) + enc.finalize()
    wrapped = WrappedImport(ALG_OAEP_SHA1, good.payload, bad, iv)
    rejects(ImportNonceUndecryptable, lambda: open_import(MATERIAL, wrapped, NONCE), material)
    for ciphertext in (b"", bad[:15], bad + b"\x00"):
        wrapped = WrappedImport(ALG_OAEP_SHA1, good.payload, ciphertext, iv)
        rejects(ImportNonceUndecryptable, lambda w=wrapped: open_import(MATERIAL, w, NONCE))


@pytest.mark.parametrize("algorithm", [ALG_OAEP_SHA256, ALG_HYBRID])
def test_cbc_nonce_is_only_for_sha1(algorithm: str) -> None:
    material = os.urandom(32)
    good = seal(material, algorithm=algorithm)
    iv = os.urandom(16)
    enc = legacy.aes_cbc_pkcs7_encrypt(material, iv, NONCE)
    wrapped = WrappedImport(algorithm, good.payload, enc, iv)
    rejects(ImportNonceUndecryptable, lambda: open_import(MATERIAL, wrapped, NONCE), material)


@pytest.mark.parametrize("iv_size", [0, 1, 7, 129, 200])
def test_gcm_iv_of_a_size_aesgcm_refuses_is_undecryptable(iv_size: int) -> None:
    material = os.urandom(32)
    good = seal(material, algorithm=ALG_OAEP_SHA1)
    wrapped = WrappedImport(ALG_OAEP_SHA1, good.payload, good.encrypted_nonce, bytes(iv_size))
    rejects(ImportNonceUndecryptable, lambda: open_import(MATERIAL, wrapped, NONCE), material)


@pytest.mark.parametrize("iv_size", [8, 16, 128])
def test_gcm_accepts_every_iv_size_aesgcm_does(iv_size: int) -> None:
    material = os.urandom(16)
    good = seal(material)
    enc, iv = gcm_nonce(material, iv=os.urandom(iv_size))
    assert open_import(MATERIAL, WrappedImport(ALG_OAEP_SHA256, good.payload, enc, iv), NONCE)


def test_gcm_tag_is_checked() -> None:
    material = os.urandom(32)
    good = seal(material)
    for enc in (good.encrypted_nonce[:-1], good.encrypted_nonce[:15], b""):
        wrapped = WrappedImport(ALG_OAEP_SHA256, good.payload, enc, good.iv)
        rejects(ImportNonceUndecryptable, lambda w=wrapped: open_import(MATERIAL, w, NONCE))
    flipped = bytearray(good.encrypted_nonce)
    flipped[0] ^= 1
    wrapped = WrappedImport(ALG_OAEP_SHA256, good.payload, bytes(flipped), good.iv)
    rejects(ImportNonceUndecryptable, lambda: open_import(MATERIAL, wrapped, NONCE), material)


@pytest.mark.parametrize(
    "algorithm", ["", "RSAES_OAEP_SHA_512", "rsaes_oaep_sha_256", "AES_GCM", "RSAES_OAEP_SHA_1 "]
)
def test_unknown_algorithm_is_refused_first(algorithm: str) -> None:
    wrapped = WrappedImport(algorithm, b"garbage", b"", b"")
    info = rejects(ImportAlgorithmUnknown, lambda: open_import(MATERIAL, wrapped, NONCE))
    assert info.value.target == "encryptionAlgorithm"
    # even before the private material is read
    rejects(ImportAlgorithmUnknown, lambda: open_import(b"not material", wrapped, NONCE))


def test_every_rejection_is_an_import_rejected_400() -> None:
    for error in (
        ImportAlgorithmUnknown,
        ImportPayloadInvalid,
        ImportKeyLength,
        ImportNonceUndecryptable,
        ImportNonceMismatch,
    ):
        exc = error()
        assert isinstance(exc, ImportRejected) and exc.status == 400 and exc.message


@pytest.mark.parametrize("nonce", [b"", bytes(257)])
def test_misused_nonce_argument_is_a_value_error(nonce: bytes) -> None:
    with pytest.raises(ValueError, match="nonce"):
        open_import(MATERIAL, seal(os.urandom(32)), nonce)


# ------------------------------------------------------------ the private material


def test_private_material_layout() -> None:
    assert MATERIAL[0] == imports.MATERIAL_VERSION == 0x01
    body = MATERIAL[1:]
    sizes = []
    pos = 0
    while pos < len(body):
        size = int.from_bytes(body[pos : pos + 4], "big")
        sizes.append(size)
        pos += 4 + size
    assert pos == len(body) and sizes[1:] == [32, 64]
    rsa_der = body[4 : 4 + sizes[0]]
    key = serialization.load_der_private_key(rsa_der, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    x_priv, seed = body[8 + sizes[0] : 8 + sizes[0] + 32], body[-64:]
    hybrid = kem.HybridPrivateKey.from_private_bytes(x_priv, seed)
    assert hybrid.public_key().to_bytes() == PUBLIC.hybrid
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki == PUBLIC.rsa_spki_der
    assert ImportPrivateKeys.from_material(MATERIAL).public_keys() == PUBLIC
    assert b"\x01" + lp(rsa_der, x_priv, seed) == MATERIAL


def test_public_keys() -> None:
    pem = PUBLIC.rsa_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert rsa_oaep.load_public_key_pem(pem).key_size == 2048
    assert kem.HybridPublicKey.from_bytes(PUBLIC.hybrid).to_bytes() == PUBLIC.hybrid
    assert len(PUBLIC.hybrid) == kem.PUBLIC_KEY_SIZE
    assert OTHER_PUBLIC != PUBLIC


@pytest.mark.parametrize("bits", [1024, 2000, 2047, 0])
def test_too_small_rsa_keys_are_refused(bits: int) -> None:
    with pytest.raises(ValueError):
        imports.generate_import_keys(bits)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x02" + MATERIAL[1:],
        MATERIAL + b"\x00",
        MATERIAL[:-1],
        MATERIAL[:100],
        b"\x01" + lp(b"not der", bytes(32), bytes(64)),
        b"\x01" + lp(MATERIAL[5:], bytes(31), bytes(64)),
    ],
    ids=["empty", "version", "trailing", "short", "cut", "not-der", "x25519-size"],
)
def test_malformed_private_material_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match="kyok-import-key-v1"):
        ImportPrivateKeys.from_material(bad)
    with pytest.raises(ValueError, match="kyok-import-key-v1"):
        open_import(bad, seal(os.urandom(32)), NONCE)


def test_nothing_shows_key_material() -> None:
    keys = ImportPrivateKeys.from_material(MATERIAL)
    assert repr(keys) == "ImportPrivateKeys(<redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    material = os.urandom(32)
    wrapped = seal(material)
    assert wrapped.payload.hex() not in repr(wrapped)
    assert "payload" not in repr(wrapped) and "encrypted_nonce" in repr(wrapped)


# --------------------------------------------------------------------- the unit


def dev_unit(new_unit: NewUnit) -> CryptoUnit:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    return unit


def token_ref(n: int = 1) -> BlobRef:
    return BlobRef("inst-1", "import-token", f"token-{n}", PURPOSE_IMPORT_TOKEN)


def root_ref(n: int = 1) -> BlobRef:
    return BlobRef("inst-1", "key-1", f"00000000-0000-4000-8000-{n:012d}", PURPOSE_ROOT_KEY)


@pytest.fixture
def unit(new_unit: NewUnit) -> Iterator[CryptoUnit]:
    yield dev_unit(new_unit)


@pytest.fixture
def token(unit: CryptoUnit) -> tuple[SealedBlob, ImportPublicKeys]:
    return unit.new_import_keys(token_ref(), rsa_bits=2048)


def test_new_import_keys_needs_the_import_token_purpose(unit: CryptoUnit) -> None:
    for purpose in (PURPOSE_ROOT_KEY, PURPOSE_STANDARD_KEY, "unit-secret"):
        with pytest.raises(ValueError):
            unit.new_import_keys(BlobRef("inst-1", "t", "t", purpose), rsa_bits=2048)
    with pytest.raises(ValueError):
        unit.new_import_keys(token_ref(), rsa_bits=1024)


def test_import_material_checks_purposes(
    unit: CryptoUnit, token: tuple[SealedBlob, ImportPublicKeys]
) -> None:
    blob, public = token
    wrapped = seal(os.urandom(32), public=public)
    as_root = SealedBlob(
        BlobRef("inst-1", "import-token", "token-1", PURPOSE_ROOT_KEY), blob.epoch, blob.data
    )
    with pytest.raises(ValueError):
        unit.import_material(as_root, root_ref(), wrapped, NONCE)
    for purpose in (PURPOSE_STANDARD_KEY, PURPOSE_IMPORT_TOKEN):
        target = BlobRef("inst-1", "key-1", "v1", purpose)
        with pytest.raises(ValueError):
            unit.import_material(blob, target, wrapped, NONCE)


def test_sealed_unit_refuses(unit: CryptoUnit, token: tuple[SealedBlob, ImportPublicKeys]) -> None:
    blob, public = token
    wrapped = seal(os.urandom(32), public=public)
    unit.seal()
    with pytest.raises(UnitSealed):
        unit.new_import_keys(token_ref(2), rsa_bits=2048)
    with pytest.raises(UnitSealed):
        unit.import_material(blob, root_ref(), wrapped, NONCE)


def test_unit_rejections_are_the_import_errors(
    unit: CryptoUnit, token: tuple[SealedBlob, ImportPublicKeys]
) -> None:
    blob, public = token
    material = os.urandom(32)
    good = seal(material, public=public)
    other_token = seal(material, public=PUBLIC)
    rejects(
        ImportPayloadInvalid,
        lambda: unit.import_material(blob, root_ref(), other_token, NONCE),
        material,
    )
    rejects(
        ImportNonceMismatch,
        lambda: unit.import_material(blob, root_ref(), good, OTHER_NONCE),
        material,
    )
    unknown = WrappedImport("RSAES_PKCS1_V1_5", good.payload, good.encrypted_nonce, good.iv)
    rejects(ImportAlgorithmUnknown, lambda: unit.import_material(blob, root_ref(), unknown, NONCE))
    sealed, _ = unit.import_material(blob, root_ref(), good, NONCE)  # still usable afterwards
    assert unit.handle(sealed) is not None


def test_token_blob_bound_to_its_ref(
    unit: CryptoUnit, token: tuple[SealedBlob, ImportPublicKeys]
) -> None:
    blob, public = token
    wrapped = seal(os.urandom(32), public=public)
    elsewhere = SealedBlob(token_ref(2), blob.epoch, blob.data)
    with pytest.raises(BlobCorrupt):
        unit.import_material(elsewhere, root_ref(), wrapped, NONCE)
    tampered = bytearray(blob.data)
    tampered[-1] ^= 1
    with pytest.raises(BlobCorrupt):
        unit.import_material(
            SealedBlob(blob.ref, blob.epoch, bytes(tampered)), root_ref(), wrapped, NONCE
        )


def test_token_blob_without_import_keys_is_corrupt(unit: CryptoUnit) -> None:
    garbage = unit.seal_material(token_ref(3), os.urandom(64))
    with pytest.raises(BlobCorrupt):
        unit.import_material(garbage, root_ref(), seal(os.urandom(32)), NONCE)


def test_imported_blob_survives_a_restart(
    unit: CryptoUnit,
    token: tuple[SealedBlob, ImportPublicKeys],
    reopen: Callable[[CryptoUnit], CryptoUnit],
) -> None:
    blob, public = token
    material = os.urandom(32)
    sealed, _ = unit.import_material(blob, root_ref(), seal(material, public=public), NONCE)
    again = reopen(unit)
    ciphertext, dek = again.handle(sealed).wrap(None)
    assert KeyHandle(sealed.ref, material, Liveness()).unwrap(ciphertext) == dek
    # the token blob opens after the restart too
    other = os.urandom(16)
    assert again.import_material(blob, root_ref(2), seal(other, public=public), NONCE)[1] == 16


# ------------------------------------------------------------- interop with openssl

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@needs_openssl
@pytest.mark.parametrize(
    ("md", "algorithm"), [("sha256", ALG_OAEP_SHA256), ("sha1", ALG_OAEP_SHA1)]
)
@pytest.mark.parametrize("size", [16, 24, 32])
def test_openssl_pkeyutl_payload_opens_in_the_unit(
    unit: CryptoUnit,
    token: tuple[SealedBlob, ImportPublicKeys],
    tmp_path: Path,
    md: str,
    algorithm: str,
    size: int,
) -> None:
    """As in Key Protect's tutorial: openssl pkeyutl -pkeyopt rsa_oaep_md:sha256 (MGF1 follows)."""
    blob, public = token
    (tmp_path / "pub.pem").write_bytes(public.rsa_pem())
    material = os.urandom(size)
    (tmp_path / "k.bin").write_bytes(material)
    payload = openssl(
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        str(tmp_path / "pub.pem"),
        "-in",
        str(tmp_path / "k.bin"),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        f"rsa_oaep_md:{md}",
    )
    assert len(payload) == 256
    wrapped = WrappedImport(algorithm, payload, *gcm_nonce(material))
    sealed, length = unit.import_material(blob, root_ref(), wrapped, NONCE)
    assert length == size
    ciphertext, dek = unit.handle(sealed).wrap(None)
    assert KeyHandle(sealed.ref, material, Liveness()).unwrap(ciphertext) == dek
    # the other hash does not open it
    other = ALG_OAEP_SHA1 if algorithm == ALG_OAEP_SHA256 else ALG_OAEP_SHA256
    moved = WrappedImport(other, payload, wrapped.encrypted_nonce, wrapped.iv)
    rejects(ImportPayloadInvalid, lambda: unit.import_material(blob, root_ref(), moved, NONCE))


@needs_openssl
@pytest.mark.parametrize("size", [16, 24, 32])
def test_openssl_enc_cbc_nonce_opens(tmp_path: Path, size: int) -> None:
    material, iv = os.urandom(size), os.urandom(16)
    (tmp_path / "nonce.bin").write_bytes(NONCE)
    enc = openssl(
        "enc",
        f"-aes-{size * 8}-cbc",
        "-K",
        material.hex(),
        "-iv",
        iv.hex(),
        "-in",
        str(tmp_path / "nonce.bin"),
    )
    assert len(enc) == 16
    payload = seal(material, algorithm=ALG_OAEP_SHA1).payload
    wrapped = WrappedImport(ALG_OAEP_SHA1, payload, enc, iv)
    assert open_import(MATERIAL, wrapped, NONCE) == material
    # openssl without padding: the unit refuses the padding
    raw = openssl(
        "enc",
        f"-aes-{size * 8}-cbc",
        "-nopad",
        "-K",
        material.hex(),
        "-iv",
        iv.hex(),
        stdin=NONCE + bytes(4),
    )
    bad = WrappedImport(ALG_OAEP_SHA1, payload, raw, iv)
    rejects(ImportNonceUndecryptable, lambda: open_import(MATERIAL, bad, NONCE), material)


def _private_pem(tmp_path: Path) -> Path:
    body = MATERIAL[1:]
    size = int.from_bytes(body[:4], "big")
    key = serialization.load_der_private_key(body[4 : 4 + size], password=None)
    path = tmp_path / "token.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@needs_openssl
@pytest.mark.parametrize(
    ("md", "algorithm"), [("sha256", ALG_OAEP_SHA256), ("sha1", ALG_OAEP_SHA1)]
)
def test_client_payload_and_cbc_nonce_open_with_openssl(
    tmp_path: Path, md: str, algorithm: str
) -> None:
    """The other direction: what seal_for_import sends, opened by openssl."""
    material = os.urandom(32)
    wrapped = seal(material, algorithm=algorithm, nonce_mode="cbc" if md == "sha1" else "gcm")
    (tmp_path / "payload.bin").write_bytes(wrapped.payload)
    opened = openssl(
        "pkeyutl",
        "-decrypt",
        "-inkey",
        str(_private_pem(tmp_path)),
        "-in",
        str(tmp_path / "payload.bin"),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        f"rsa_oaep_md:{md}",
    )
    assert opened == material
    if md == "sha1":
        nonce = openssl(
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            material.hex(),
            "-iv",
            wrapped.iv.hex(),
            stdin=wrapped.encrypted_nonce,
        )
        assert nonce == NONCE
