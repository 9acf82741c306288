"""Regenerate kyok's own format vectors (kyok-aead-v1, the hybrid KEM and seal, key import, pbe,
mkvp/kcv, Shamir).

    .venv/bin/python tests/vectors/generate_kyok_vectors.py > tests/vectors/kyok_formats.json

Everything is fixed (keys, nonces, encapsulations, polynomial coefficients), so the output is the
same on every run; ``tests/crypto/test_kyok_formats.py`` checks that the committed file still equals
what this script prints, and checks the vectors themselves against the library and against
independent re-derivations. The hybrid KEM vectors reuse standard inputs: the X25519 keys of
RFC 7748 section 6.1 and the ML-KEM-768 seed and ciphertext of Wycheproof ``mlkem_768_test.json``
tcId 2 (both in this folder), so their component secrets are known answers. The key-import
vectors use the RSA key of rsa_oaep.json and RSA-OAEP payloads made once with openssl
(kyok_import_rsa.json), since RSA-OAEP encryption is randomized. These vectors double as the
examples of docs/formats.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from kyok.crypto import kem, mkvp, rsa_oaep
from kyok.crypto.aead import DerivedKeyAead, aes_gcm_encrypt
from kyok.crypto.encoding import lp
from kyok.crypto.kdf import ScryptParams, hkdf_expand, hkdf_extract, hkdf_sha256, scrypt
from kyok.crypto.legacy import aes_cbc_pkcs7_encrypt

HERE = Path(__file__).resolve().parent

AEAD_KEYS = {
    16: bytes(range(0x00, 0x10)),
    24: bytes(range(0x20, 0x38)),
    32: bytes(range(0x40, 0x60)),
}
AEAD_CASES = [  # (key size, nonce first byte, plaintext, associated data)
    (16, 0xA0, b"", b""),
    (16, 0xA1, b"kyok-aead-v1 example", b"kyok/v1/example-aad"),
    (24, 0xB0, bytes(range(64)), b""),
    (24, 0xB1, b"", b"aad only"),
    (32, 0xC0, b"a wrapped data encryption key..", b"instance|key|version|purpose"),
    (32, 0xC1, bytes(range(100, 200)), b""),
]


def _nonce(first: int) -> bytes:
    return bytes((first + i) & 0xFF for i in range(24))


def _aead() -> dict[str, Any]:
    vectors: list[dict[str, Any]] = []
    for size, first, plaintext, aad in AEAD_CASES:
        key, nonce = AEAD_KEYS[size], _nonce(first)
        prk = hkdf_extract(b"kyok/aead/v1", key)
        output = DerivedKeyAead(key).encrypt(plaintext, aad, nonce=nonce)
        vectors.append(
            {
                "name": f"{size * 8}-bit key, {len(plaintext)}-byte plaintext, {len(aad)}-byte AAD",
                "key": key.hex(),
                "nonce": nonce.hex(),
                "aad": aad.hex(),
                "plaintext": plaintext.hex(),
                "prk": prk.hex(),
                "derived_key": hkdf_expand(prk, info=nonce, length=32).hex(),
                "output": output.hex(),
                "result": "valid",
            }
        )
    base = vectors[1]
    out = bytes.fromhex(base["output"])
    other_key = AEAD_KEYS[24]
    flip = bytearray(out)
    flip[-1] ^= 0x80
    nonce_flip = bytearray(out)
    nonce_flip[0] ^= 0x01
    bad = [
        ("tag bit flipped", base["key"], base["aad"], bytes(flip)),
        ("nonce bit flipped", base["key"], base["aad"], bytes(nonce_flip)),
        ("truncated by one byte", base["key"], base["aad"], out[:-1]),
        ("one byte appended", base["key"], base["aad"], out + b"\x00"),
        ("wrong associated data", base["key"], b"kyok/v1/other-aad".hex(), out),
        ("associated data dropped", base["key"], "", out),
        ("wrong key", other_key.hex(), base["aad"], out),
        ("39 bytes: shorter than nonce + tag", base["key"], base["aad"], out[:39]),
        ("empty", base["key"], base["aad"], b""),
    ]
    for name, key_hex, aad_hex, data in bad:
        vectors.append(
            {
                "name": f"invalid: {name}",
                "key": key_hex,
                "aad": aad_hex,
                "output": data.hex(),
                "result": "invalid",
            }
        )
    return {
        "construction": "PRK = HMAC-SHA256('kyok/aead/v1', K); DK = HMAC-SHA256(PRK, N || 0x01); "
        "output = N || AES-256-GCM(DK, 12 zero bytes, plaintext, aad)",
        "vectors": vectors,
    }


def _standard_inputs() -> tuple[dict[str, Any], dict[str, Any]]:
    x = json.loads((HERE / "x25519.json").read_text())["dh"]
    mlkem = json.loads((HERE / "mlkem768.json").read_text())
    tc2 = next(v for v in mlkem["vectors"] if v["name"].startswith("Wycheproof mlkem_768 tcId 2:"))
    return x, tc2


def _hybrid() -> tuple[dict[str, Any], dict[str, Any]]:
    x, tc2 = _standard_inputs()
    scalar, seed = bytes.fromhex(x["alice_private"]), bytes.fromhex(tc2["seed"])
    private = kem.HybridPrivateKey.from_private_bytes(scalar, seed)
    public = private.public_key()
    ct_x, ct_m = bytes.fromhex(x["bob_public"]), bytes.fromhex(tc2["c"])
    flipped = bytearray(ct_m)
    flipped[0] ^= 0x01
    cases = [
        ("RFC 7748 Bob public || Wycheproof tcId 2 ciphertext", ct_x + ct_m),
        ("ML-KEM ciphertext bit flipped (implicit rejection)", ct_x + bytes(flipped)),
    ]
    vectors: list[dict[str, Any]] = [
        {
            "name": name,
            "encapsulation": enc.hex(),
            "shared_secret": private.decapsulate(enc).hex(),
            "result": "valid",
        }
        for name, enc in cases
    ]
    for name, enc in [
        ("X25519 part is the zero point (low order)", bytes(32) + ct_m),
        ("one byte short", (ct_x + ct_m)[:-1]),
        ("one byte long", ct_x + ct_m + b"\x00"),
        ("empty", b""),
    ]:
        vectors.append(
            {"name": f"invalid: {name}", "encapsulation": enc.hex(), "result": "invalid"}
        )
    key = {
        "x25519_private": scalar.hex(),
        "mlkem_seed": seed.hex(),
        "public_key": public.to_bytes().hex(),
        "fingerprint": public.fingerprint,
    }
    hybrid = {
        "suite": kem.SUITE.decode(),
        "components": {
            "ss_x25519": x["shared"],
            "ss_mlkem": tc2["K"],
            "note": "ss = HKDF-SHA256(ss_mlkem || ss_x25519, salt = SHA-256(lp(ct_M, ct_X, pk_M, pk_X)), "
            "info = suite, L = 32) for the first vector",
        },
        "private_key": key,
        "vectors": vectors,
    }
    return hybrid, _seal(private, ct_x + ct_m)


def _seal(private: kem.HybridPrivateKey, encapsulation: bytes) -> dict[str, Any]:
    header = bytes([kem.SEAL_VERSION]) + encapsulation
    shared = private.decapsulate(encapsulation)
    vectors: list[dict[str, Any]] = []
    for n, (info, aad, plaintext) in enumerate(
        [
            (b"", b"", b"kyok hybrid seal"),
            (b"kyok/v1/import-token", b"instance-7|key-42", bytes(range(32))),
        ]
    ):
        aead = DerivedKeyAead(hkdf_sha256(shared, info=kem.SEAL_INFO + b"/" + info, length=32))
        body = aead.encrypt(plaintext, header + aad, nonce=_nonce(0xD0 + n))
        vectors.append(
            {
                "name": f"info={info.decode()!r}, aad={aad.decode()!r}",
                "info": info.hex(),
                "aad": aad.hex(),
                "plaintext": plaintext.hex(),
                "sealed": (header + body).hex(),
                "result": "valid",
            }
        )
    good = bytes.fromhex(vectors[1]["sealed"])
    wrong_version = b"\x02" + good[1:]
    for name, info_hex, aad_hex, data in [
        ("wrong aad", vectors[1]["info"], b"instance-7|key-43".hex(), good),
        ("wrong info", b"kyok/v1/other".hex(), vectors[1]["aad"], good),
        ("version byte 0x02", vectors[1]["info"], vectors[1]["aad"], wrong_version),
        ("truncated inside the encapsulation", vectors[1]["info"], vectors[1]["aad"], good[:1000]),
        ("aead part truncated", vectors[1]["info"], vectors[1]["aad"], good[:-1]),
    ]:
        vectors.append(
            {
                "name": f"invalid: {name}",
                "info": info_hex,
                "aad": aad_hex,
                "sealed": data.hex(),
                "result": "invalid",
            }
        )
    return {
        "format": "0x01 || ct_X (32) || ct_M (1088) || kyok-aead-v1(HKDF-SHA256(ss, info = "
        "'kyok/hybrid-seal/v1/' || info), plaintext, aad = 0x01 || encapsulation || aad)",
        "private_key": "as kyok-hybrid-kem-v1",
        "vectors": vectors,
    }


IMPORT_NONCE = bytes.fromhex(
    "f33244f6929575755efe72db"
)  # "8zJE9pKVdXVe/nLb", Key Protect's doc example
IMPORT_AAD_LABEL = b"kyok/import/v1"


def _gcm_nonce(material: bytes, iv: bytes, nonce: bytes = IMPORT_NONCE) -> bytes:
    return aes_gcm_encrypt(material, iv, nonce)


def _import(hybrid: dict[str, Any]) -> dict[str, Any]:
    """kyok-import-v1: an import token's private material and imports that open under it.

    The hybrid payloads reuse the fixed encapsulation of the first KEM vector and fixed
    kyok-aead-v1 nonces (as kyok-hybrid-seal-v1 does), so they are deterministic; the RSA-OAEP
    payloads are randomized and come from kyok_import_rsa.json (made once with openssl)."""
    oaep = json.loads((HERE / "rsa_oaep.json").read_text())
    group = next(g for g in oaep["groups"] if g["hash"] == "sha256")
    rsa_der = bytes.fromhex(group["private_key_pkcs8"])
    rsa_public = rsa_oaep.load_private_key_der(rsa_der).public_key()
    spki = rsa_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = hybrid["private_key"]
    x_private, seed = bytes.fromhex(key["x25519_private"]), bytes.fromhex(key["mlkem_seed"])
    material = bytes([0x01]) + lp(rsa_der, x_private, seed)
    private = kem.HybridPrivateKey.from_private_bytes(x_private, seed)
    encapsulation = bytes.fromhex(
        next(v for v in hybrid["vectors"] if v["result"] == "valid")["encapsulation"]
    )
    header = bytes([kem.SEAL_VERSION]) + encapsulation
    seal_key = hkdf_sha256(private.decapsulate(encapsulation), info=kem.SEAL_INFO + b"/", length=32)

    def hybrid_payload(k: bytes, first: int, nonce: bytes = IMPORT_NONCE) -> bytes:
        aad = IMPORT_AAD_LABEL + nonce
        return header + DerivedKeyAead(seal_key).encrypt(k, header + aad, nonce=_nonce(first))

    def vector(
        name: str,
        algorithm: str,
        k: bytes,
        payload: bytes,
        iv: bytes,
        enc: bytes,
        error: str | None = None,
    ) -> dict[str, Any]:
        out = {
            "name": name if error is None else f"invalid: {name}",
            "algorithm": algorithm,
            "payload": payload.hex(),
            "encrypted_nonce": enc.hex(),
            "iv": iv.hex(),
            "material": k.hex(),
            "result": "valid" if error is None else "invalid",
        }
        if error is not None:
            out["error"] = error
        return out

    k32, k16, k24, k17 = (
        bytes(range(0x40, 0x60)),
        bytes(range(0x00, 0x10)),
        bytes(range(0x20, 0x38)),
        bytes(range(0x60, 0x71)),
    )
    gcm_iv, cbc_iv = bytes(range(0x90, 0x9C)), bytes(range(0xA0, 0xB0))
    rsa = {
        p["hash"]: p for p in json.loads((HERE / "kyok_import_rsa.json").read_text())["payloads"]
    }
    p256, p1 = bytes.fromhex(rsa["sha256"]["payload"]), bytes.fromhex(rsa["sha1"]["payload"])
    assert bytes.fromhex(rsa["sha256"]["material"]) == k16
    assert bytes.fromhex(rsa["sha1"]["material"]) == k24
    hyb = "KYOK_HYBRID_MLKEM768_X25519"
    other_nonce = bytes(range(0xC0, 0xCC))
    vectors = [
        vector(
            "hybrid, 32-byte key, AES-GCM nonce",
            hyb,
            k32,
            hybrid_payload(k32, 0xE0),
            gcm_iv,
            _gcm_nonce(k32, gcm_iv),
        ),
        vector(
            "RSAES_OAEP_SHA_256, 16-byte key, AES-GCM nonce",
            "RSAES_OAEP_SHA_256",
            k16,
            p256,
            gcm_iv,
            _gcm_nonce(k16, gcm_iv),
        ),
        vector(
            "RSAES_OAEP_SHA_1, 24-byte key, AES-CBC nonce",
            "RSAES_OAEP_SHA_1",
            k24,
            p1,
            cbc_iv,
            aes_cbc_pkcs7_encrypt(k24, cbc_iv, IMPORT_NONCE),
        ),
        vector(
            "hybrid payload made for another token nonce",
            hyb,
            k32,
            hybrid_payload(k32, 0xE1, other_nonce),
            gcm_iv,
            _gcm_nonce(k32, gcm_iv),
            "ImportPayloadInvalid",
        ),
        vector(
            "RSAES_OAEP_SHA_256 payload sent as RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_1",
            k16,
            p256,
            gcm_iv,
            _gcm_nonce(k16, gcm_iv),
            "ImportPayloadInvalid",
        ),
        vector(
            "17-byte key",
            hyb,
            k17,
            hybrid_payload(k17, 0xE2),
            gcm_iv,
            _gcm_nonce(k32, gcm_iv),
            "ImportKeyLength",
        ),
        vector(
            "nonce encrypted under other material",
            hyb,
            k32,
            hybrid_payload(k32, 0xE3),
            gcm_iv,
            _gcm_nonce(k16, gcm_iv),
            "ImportNonceUndecryptable",
        ),
        vector(
            "AES-CBC nonce with RSAES_OAEP_SHA_256",
            "RSAES_OAEP_SHA_256",
            k16,
            p256,
            cbc_iv,
            aes_cbc_pkcs7_encrypt(k16, cbc_iv, IMPORT_NONCE),
            "ImportNonceUndecryptable",
        ),
        vector(
            "the right key, another nonce",
            "RSAES_OAEP_SHA_256",
            k16,
            p256,
            gcm_iv,
            _gcm_nonce(k16, gcm_iv, other_nonce),
            "ImportNonceMismatch",
        ),
        vector(
            "unknown algorithm",
            "RSAES_OAEP_SHA_512",
            k16,
            p256,
            gcm_iv,
            _gcm_nonce(k16, gcm_iv),
            "ImportAlgorithmUnknown",
        ),
    ]
    return {
        "format": "private material = 0x01 || lp(rsa_private_pkcs8_der, x25519_private, "
        "mlkem768_seed); hybrid payload = kyok-hybrid-seal-v1(hybrid public key, K, info = '', "
        "aad = 'kyok/import/v1' || nonce); RSAES_OAEP_SHA_256/SHA_1 payload = RSA-OAEP(K); "
        "encrypted_nonce = AES-GCM(K, iv, nonce, no aad) or, for RSAES_OAEP_SHA_1 only, "
        "AES-CBC-PKCS7(K, iv, nonce)",
        "private_key": {
            "rsa_private_pkcs8": "rsa_oaep.json group " + group["name"],
            "hybrid": "as kyok-hybrid-kem-v1",
            "private_material": material.hex(),
            "rsa_public_spki": spki.hex(),
            "hybrid_public_key": key["public_key"],
        },
        "nonce": IMPORT_NONCE.hex(),
        "seal_key": seal_key.hex(),
        "vectors": vectors,
    }


def _pbe() -> dict[str, Any]:
    params = ScryptParams(log2_n=10, r=8, p=1)
    passphrase, salt = b"correct horse battery staple", bytes(range(0xE0, 0xF0))
    aad = b"kyok/v1/mk-part|custodian-1"
    plaintext = bytes(range(32))
    key = scrypt(passphrase, salt, params)
    ciphertext = DerivedKeyAead(key).encrypt(plaintext, aad, nonce=_nonce(0xF0))
    return {
        "format": "kyok-aead-v1 under scrypt(passphrase, salt, N = 2^log2_n, r, p, 32 bytes)",
        "vectors": [
            {
                "name": "a 32-byte secret under a passphrase (pbe primitive; the part-file format adds its own AAD, see kyok-keypart/1)",
                "passphrase": passphrase.hex(),
                "salt": salt.hex(),
                "log2_n": params.log2_n,
                "r": params.r,
                "p": params.p,
                "aad": aad.hex(),
                "key": key.hex(),
                "plaintext": plaintext.hex(),
                "ciphertext": ciphertext.hex(),
            }
        ],
    }


def _mkvp() -> dict[str, Any]:
    keys = [bytes(32), bytes(range(32)), bytes([0xFF] * 32)]
    return {
        "mkvp": [
            {"master_key": k.hex(), "mkvp": mkvp.mkvp(k), "pretty": mkvp.pretty(mkvp.mkvp(k))}
            for k in keys
        ],
        "kcv": [{"part": k.hex(), "kcv": mkvp.kcv(k)} for k in keys],
    }


# An independent GF(2^8) (x^8 + x^4 + x^3 + x + 1) for the Shamir vectors, so that they do not
# depend on kyok's own field code.
def _gf_mul(a: int, b: int) -> int:
    product = 0
    for bit in range(8):
        if (b >> bit) & 1:
            product ^= a << bit
    for bit in range(14, 7, -1):
        if (product >> bit) & 1:
            product ^= 0x11B << (bit - 8)
    return product


def _evaluate(secret: bytes, coefficients: list[bytes], x: int) -> bytes:
    out = bytearray()
    for i, s in enumerate(secret):
        acc, power = s, 1
        for coeff in coefficients:
            power = _gf_mul(power, x)
            acc ^= _gf_mul(coeff[i], power)
        out.append(acc)
    return bytes(out)


def _shamir() -> dict[str, Any]:
    cases = [
        (
            "3 of 5, 32-byte secret",
            bytes(range(0x10, 0x30)),
            3,
            5,
            [bytes([0x5A] * 32), bytes(range(32, 64))],
        ),
        ("2 of 3, 16-byte secret", b"kyok master key!", 2, 3, [bytes(range(0x80, 0x90))]),
        ("1 of 2 (every share is the secret)", b"\x42", 1, 2, []),
    ]
    vectors = []
    for name, secret, threshold, count, coefficients in cases:
        shares = [bytes([x]) + _evaluate(secret, coefficients, x) for x in range(1, count + 1)]
        vectors.append(
            {
                "name": name,
                "secret": secret.hex(),
                "threshold": threshold,
                "coefficients": [c.hex() for c in coefficients],
                "shares": [s.hex() for s in shares],
            }
        )
    return {
        "format": "share = x || f_0(x) || f_1(x) ...; f_i(0) = secret[i]; coefficients[j][i] is the "
        "x^(j+1) coefficient of f_i",
        "vectors": vectors,
    }


def build() -> dict[str, Any]:
    """All of kyok's format vectors, as one JSON-ready document."""
    hybrid, seal = _hybrid()
    return {
        "source": "kyok-generated by tests/vectors/generate_kyok_vectors.py (deterministic); hybrid KEM "
        "inputs from RFC 7748 6.1 and Wycheproof mlkem_768_test.json tcId 2",
        "kyok-aead-v1": _aead(),
        "kyok-hybrid-kem-v1": hybrid,
        "kyok-hybrid-seal-v1": seal,
        "kyok-import-v1": _import(hybrid),
        "pbe": _pbe(),
        "mkvp": _mkvp(),
        "shamir": _shamir(),
    }


def render() -> str:
    """The exact text of kyok_formats.json."""
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
