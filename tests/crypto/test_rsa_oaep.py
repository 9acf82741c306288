"""rsa_oaep (OAEP-SHA256) and legacy (OAEP-SHA1, AES-CBC-PKCS7): Wycheproof/NIST vectors, properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto import legacy, rsa_oaep
from kyok.crypto.errors import InvalidCiphertext

from ._vectors import cases, h, load, valid

OAEP = load("rsa_oaep")
CBC = load("aes_cbc_pkcs7")

# One 2048-bit key for the whole module (key generation is the slow part).
KEY = rsa_oaep.generate_rsa_key(2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)

Decrypt = Callable[[rsa.RSAPrivateKey, bytes], bytes]
Encrypt = Callable[[rsa.RSAPublicKey, bytes], bytes]
SCHEMES: dict[str, tuple[Encrypt, Decrypt, int]] = {
    # name: (encrypt, decrypt, hash length)
    "sha256": (rsa_oaep.oaep_encrypt, rsa_oaep.oaep_decrypt, 32),
    "sha1": (legacy.oaep_sha1_encrypt, legacy.oaep_sha1_decrypt, 20),
}


def _oaep_cases() -> list[Any]:
    out = []
    for group in OAEP["groups"]:
        for t in group["tests"]:
            out.append(pytest.param(group, t, id=f"{group['hash']} {t['name']}"))
    return out


@pytest.mark.parametrize(("group", "t"), _oaep_cases())
def test_oaep_wycheproof(group: dict[str, Any], t: dict[str, Any]) -> None:
    key = rsa_oaep.load_private_key_der(h(group["private_key_pkcs8"]))
    _, decrypt, _ = SCHEMES[group["hash"]]
    if t["kyok_result"] == "valid":
        assert decrypt(key, h(t["ct"])) == h(t["msg"])
    else:
        with pytest.raises(InvalidCiphertext):
            decrypt(key, h(t["ct"]))


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_oaep_round_trip(scheme: str, data: st.DataObject) -> None:
    encrypt, decrypt, hash_len = SCHEMES[scheme]
    limit = 256 - 2 * hash_len - 2
    plaintext = data.draw(st.binary(max_size=limit))
    ciphertext = encrypt(KEY.public_key(), plaintext)
    assert len(ciphertext) == 256
    assert decrypt(KEY, ciphertext) == plaintext
    with pytest.raises(InvalidCiphertext):
        decrypt(OTHER, ciphertext)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_oaep_plaintext_limit(scheme: str) -> None:
    encrypt, decrypt, hash_len = SCHEMES[scheme]
    limit = 256 - 2 * hash_len - 2
    assert decrypt(KEY, encrypt(KEY.public_key(), bytes(limit))) == bytes(limit)
    with pytest.raises(ValueError):
        encrypt(KEY.public_key(), bytes(limit + 1))


def test_oaep_hashes_do_not_mix() -> None:
    with pytest.raises(InvalidCiphertext):
        legacy.oaep_sha1_decrypt(KEY, rsa_oaep.oaep_encrypt(KEY.public_key(), b"m"))
    with pytest.raises(InvalidCiphertext):
        rsa_oaep.oaep_decrypt(KEY, legacy.oaep_sha1_encrypt(KEY.public_key(), b"m"))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("length", [0, 1, 128, 255, 257, 512])
def test_oaep_wrong_length(scheme: str, length: int) -> None:
    _, decrypt, _ = SCHEMES[scheme]
    with pytest.raises(InvalidCiphertext):
        decrypt(KEY, b"\x01" * length)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=20, deadline=None)
@given(garbage=st.binary(min_size=256, max_size=256))
def test_oaep_garbage(scheme: str, garbage: bytes) -> None:
    _, decrypt, _ = SCHEMES[scheme]
    with pytest.raises(InvalidCiphertext):
        decrypt(KEY, garbage)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=20, deadline=None)
@given(bit=st.integers(0, 256 * 8 - 1))
def test_oaep_bit_flip(scheme: str, bit: int) -> None:
    encrypt, decrypt, _ = SCHEMES[scheme]
    ciphertext = bytearray(encrypt(KEY.public_key(), b"import token nonce"))
    ciphertext[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertext):
        decrypt(KEY, bytes(ciphertext))


def test_oaep_modulus_not_a_whole_number_of_bytes() -> None:
    """Regression: the length check used key_size // 8 and refused every ciphertext of such keys."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1028)
    ciphertext = rsa_oaep.oaep_encrypt(key.public_key(), b"m")
    assert len(ciphertext) == 129
    assert rsa_oaep.oaep_decrypt(key, ciphertext) == b"m"
    with pytest.raises(InvalidCiphertext):
        rsa_oaep.oaep_decrypt(key, ciphertext[1:])


@pytest.mark.parametrize("bits", [1024, 1536, 2047, 2560, 0])
def test_generate_rsa_key_sizes(bits: int) -> None:
    with pytest.raises(ValueError):
        rsa_oaep.generate_rsa_key(bits)


def test_generated_key_shape() -> None:
    assert KEY.key_size == 2048
    assert KEY.public_key().public_numbers().e == 65537


def test_key_encodings_round_trip() -> None:
    pem = rsa_oaep.public_key_pem(KEY.public_key())
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert rsa_oaep.load_public_key_pem(pem).public_numbers() == KEY.public_key().public_numbers()
    der = rsa_oaep.private_key_der(KEY)
    again = rsa_oaep.load_private_key_der(der)
    assert again.private_numbers() == KEY.private_numbers()
    assert rsa_oaep.oaep_decrypt(again, rsa_oaep.oaep_encrypt(KEY.public_key(), b"m")) == b"m"


def test_key_loaders_refuse_other_keys() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    der = p256.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError):
        rsa_oaep.load_private_key_der(der)
    with pytest.raises(ValueError):
        rsa_oaep.load_public_key_pem(pem)


# ------------------------------------------------------------------- AES-CBC-PKCS7


@pytest.mark.parametrize("v", cases(CBC["vectors"]))
def test_aes_cbc_pkcs7_vectors(v: dict[str, Any]) -> None:
    key, iv = h(v["key"]), h(v["iv"])
    if "ct_prefix" in v:  # SP 800-38A: full blocks, so PKCS#7 appends one block of 0x10s
        out = legacy.aes_cbc_pkcs7_encrypt(key, iv, h(v["msg"]))
        assert out[:-16] == h(v["ct_prefix"])
        assert len(out) == len(h(v["msg"])) + 16
        assert legacy.aes_cbc_pkcs7_decrypt(key, iv, out) == h(v["msg"])
    elif valid(v):
        assert legacy.aes_cbc_pkcs7_encrypt(key, iv, h(v["msg"])) == h(v["ct"])
        assert legacy.aes_cbc_pkcs7_decrypt(key, iv, h(v["ct"])) == h(v["msg"])
    else:
        with pytest.raises(InvalidCiphertext):
            legacy.aes_cbc_pkcs7_decrypt(key, iv, h(v["ct"]))


@settings(max_examples=60)
@given(
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    iv=st.binary(min_size=16, max_size=16),
    plaintext=st.binary(max_size=100),
)
def test_aes_cbc_pkcs7_round_trip(key: bytes, iv: bytes, plaintext: bytes) -> None:
    ciphertext = legacy.aes_cbc_pkcs7_encrypt(key, iv, plaintext)
    assert len(ciphertext) == (len(plaintext) // 16 + 1) * 16
    assert legacy.aes_cbc_pkcs7_decrypt(key, iv, ciphertext) == plaintext


def _raw_cbc(key: bytes, iv: bytes, blocks: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(blocks) + enc.finalize()


@settings(max_examples=60)
@given(body=st.binary(max_size=15), pad=st.integers(0, 255), data=st.data())
def test_aes_cbc_bad_padding(body: bytes, pad: int, data: st.DataObject) -> None:
    """A last block that does not end in n copies of n (1 <= n <= 16) is refused."""
    fill = 16 - len(body)
    tail = data.draw(st.binary(min_size=fill, max_size=fill))
    block = body + tail
    n = block[-1]
    if 1 <= n <= 16 and block[-n:] == bytes([n]) * n:
        return  # happens to be valid padding
    key, iv = bytes(32), bytes(16)
    with pytest.raises(InvalidCiphertext):
        legacy.aes_cbc_pkcs7_decrypt(key, iv, _raw_cbc(key, iv, block))


@pytest.mark.parametrize(
    ("iv", "ciphertext"),
    [
        (bytes(16), b""),
        (bytes(16), bytes(15)),
        (bytes(16), bytes(33)),
        (bytes(15), bytes(16)),
        (bytes(17), bytes(16)),
        (b"", bytes(32)),
    ],
)
def test_aes_cbc_lengths(iv: bytes, ciphertext: bytes) -> None:
    with pytest.raises(InvalidCiphertext):
        legacy.aes_cbc_pkcs7_decrypt(bytes(32), iv, ciphertext)
