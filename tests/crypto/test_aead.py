"""aead: plain AES-GCM against SP 800-38D vectors, and kyok-aead-v1 (DerivedKeyAead) properties.

kyok-aead-v1's own known answers live in test_kyok_formats.py.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.aead import (
    KEY_SIZES,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    DerivedKeyAead,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
)
from kyok.crypto.errors import CryptoError, InvalidCiphertext

from ._vectors import cases, h, invalid, load, valid

GCM = load("aes_gcm")

# ---------------------------------------------------------------- plain AES-GCM


@pytest.mark.parametrize("v", cases(GCM["vectors"], where=valid))
def test_aes_gcm_known_answers(v: dict[str, Any]) -> None:
    key, iv, aad = h(v["key"]), h(v["iv"]), h(v["aad"])
    sealed = h(v["ct"]) + h(v["tag"])
    assert aes_gcm_encrypt(key, iv, h(v["pt"]), aad) == sealed
    assert aes_gcm_decrypt(key, iv, sealed, aad) == h(v["pt"])


@pytest.mark.parametrize("v", cases(GCM["vectors"], where=invalid))
def test_aes_gcm_fail_vectors(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidCiphertext):
        aes_gcm_decrypt(h(v["key"]), h(v["iv"]), h(v["ct"]) + h(v["tag"]), h(v["aad"]))


@pytest.mark.parametrize("v", cases(GCM["misuse"]))
def test_aes_gcm_misuse_is_value_error(v: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        aes_gcm_encrypt(h(v["key"]), h(v["iv"]), b"plaintext")
    with pytest.raises(ValueError):
        aes_gcm_decrypt(h(v["key"]), h(v["iv"]), bytes(32))


def test_aes_gcm_shorter_than_a_tag() -> None:
    for n in range(TAG_SIZE):
        with pytest.raises(InvalidCiphertext):
            aes_gcm_decrypt(bytes(32), bytes(12), bytes(n))


_GCM_VALID = [v for v in GCM["vectors"] if v["result"] == "valid"]


@settings(max_examples=60)
@given(data=st.data())
def test_aes_gcm_any_bit_flip_fails(data: st.DataObject) -> None:
    v = data.draw(st.sampled_from(_GCM_VALID))
    sealed = bytearray(h(v["ct"]) + h(v["tag"]))
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertext):
        aes_gcm_decrypt(h(v["key"]), h(v["iv"]), bytes(sealed), h(v["aad"]))


# ------------------------------------------------------------ kyok-aead-v1

KEYS = {size: bytes(range(size)) for size in KEY_SIZES}
key_sizes = st.sampled_from(KEY_SIZES)
payloads = st.binary(max_size=300)
aads = st.binary(max_size=64)


def _aead(size: int) -> DerivedKeyAead:
    return DerivedKeyAead(KEYS[size])


@settings(max_examples=100)
@given(size=key_sizes, plaintext=payloads, aad=aads)
def test_round_trip(size: int, plaintext: bytes, aad: bytes) -> None:
    aead = _aead(size)
    out = aead.encrypt(plaintext, aad)
    assert len(out) == len(plaintext) + OVERHEAD
    assert aead.decrypt(out, aad) == plaintext
    assert DerivedKeyAead(KEYS[size]).decrypt(out, aad) == plaintext  # a fresh object agrees


@settings(max_examples=150)
@given(size=key_sizes, plaintext=payloads, aad=aads, data=st.data())
def test_any_single_bit_flip_fails(
    size: int, plaintext: bytes, aad: bytes, data: st.DataObject
) -> None:
    aead = _aead(size)
    out = bytearray(aead.encrypt(plaintext, aad))
    bit = data.draw(st.integers(0, len(out) * 8 - 1), label="bit")
    out[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertext):
        aead.decrypt(bytes(out), aad)


@settings(max_examples=100)
@given(size=key_sizes, plaintext=payloads, aad=aads, data=st.data())
def test_truncation_fails(size: int, plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    aead = _aead(size)
    out = aead.encrypt(plaintext, aad)
    keep = data.draw(st.integers(0, len(out) - 1), label="keep")
    with pytest.raises(InvalidCiphertext):
        aead.decrypt(out[:keep], aad)


@settings(max_examples=100)
@given(size=key_sizes, plaintext=payloads, aad=aads, extra=st.binary(min_size=1, max_size=40))
def test_extension_fails(size: int, plaintext: bytes, aad: bytes, extra: bytes) -> None:
    aead = _aead(size)
    out = aead.encrypt(plaintext, aad)
    with pytest.raises(InvalidCiphertext):
        aead.decrypt(out + extra, aad)
    with pytest.raises(InvalidCiphertext):
        aead.decrypt(extra + out, aad)


@settings(max_examples=100)
@given(size=key_sizes, plaintext=payloads, aad=aads, other=aads)
def test_wrong_aad_fails(size: int, plaintext: bytes, aad: bytes, other: bytes) -> None:
    if other == aad:
        other = aad + b"\x00"
    aead = _aead(size)
    with pytest.raises(InvalidCiphertext):
        aead.decrypt(aead.encrypt(plaintext, aad), other)


@settings(max_examples=100)
@given(size=key_sizes, other_size=key_sizes, plaintext=payloads, aad=aads, data=st.data())
def test_wrong_key_fails(
    size: int, other_size: int, plaintext: bytes, aad: bytes, data: st.DataObject
) -> None:
    other_key = data.draw(st.binary(min_size=other_size, max_size=other_size), label="other key")
    if other_key == KEYS[size]:
        other_key = bytes(b ^ 1 for b in other_key)
    out = _aead(size).encrypt(plaintext, aad)
    with pytest.raises(InvalidCiphertext):
        DerivedKeyAead(other_key).decrypt(out, aad)


def test_a_shorter_key_is_not_a_prefix_of_a_longer_one() -> None:
    """The 16-byte key 00..0f and the 32-byte key 00..1f are unrelated keys."""
    out = _aead(16).encrypt(b"x", b"")
    with pytest.raises(InvalidCiphertext):
        _aead(32).decrypt(out, b"")


@settings(max_examples=100)
@given(data=st.binary(max_size=200), aad=aads)
def test_garbage_is_invalid_ciphertext_never_another_error(data: bytes, aad: bytes) -> None:
    with pytest.raises(InvalidCiphertext):
        _aead(32).decrypt(data, aad)


def test_nonces_are_fresh() -> None:
    aead = _aead(32)
    outs = {aead.encrypt(b"same", b"same") for _ in range(50)}
    assert len(outs) == 50
    assert len({o[:NONCE_SIZE] for o in outs}) == 50


def test_fixed_nonce_is_deterministic_and_checked() -> None:
    aead = _aead(24)
    nonce = bytes(range(NONCE_SIZE))
    assert aead.encrypt(b"p", b"a", nonce=nonce) == aead.encrypt(b"p", b"a", nonce=nonce)
    assert aead.encrypt(b"p", b"a", nonce=nonce).startswith(nonce)
    for size in (0, 12, 23, 25, 32):
        with pytest.raises(ValueError):
            aead.encrypt(b"p", b"a", nonce=bytes(size))


@pytest.mark.parametrize("size", [0, 1, 15, 17, 20, 23, 25, 31, 33, 64])
def test_key_size_is_checked(size: int) -> None:
    with pytest.raises(ValueError):
        DerivedKeyAead(bytes(size))


@pytest.mark.parametrize("key", ["0" * 32, bytearray(32), memoryview(bytes(32)), None, 32])
def test_key_type_is_checked(key: Any) -> None:
    with pytest.raises(TypeError):
        DerivedKeyAead(key)


def test_invalid_ciphertext_is_opaque() -> None:
    with pytest.raises(InvalidCiphertext) as short:
        _aead(16).decrypt(b"", b"")
    with pytest.raises(InvalidCiphertext) as forged:
        _aead(16).decrypt(bytes(OVERHEAD + 5), b"")
    assert str(short.value) == str(forged.value) == "ciphertext did not authenticate"
    assert isinstance(short.value, CryptoError)


def test_no_key_material_in_repr_and_no_pickling() -> None:
    key = bytes(range(0xA0, 0xC0))
    aead = DerivedKeyAead(key)
    text = repr(aead) + str(aead)
    for needle in (key.hex(), key.hex().upper(), repr(key), key.decode("latin-1")):
        assert needle not in text
    with pytest.raises(TypeError):
        pickle.dumps(aead)
    with pytest.raises(AttributeError):
        aead.key = key  # type: ignore[attr-defined]


def test_one_object_is_safe_to_share_between_threads() -> None:
    aead = _aead(32)

    def work(i: int) -> bool:
        msg = i.to_bytes(4, "big") * 8
        return all(aead.decrypt(aead.encrypt(msg, msg), msg) == msg for _ in range(200))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(8)))
