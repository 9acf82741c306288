"""kem: X25519 (RFC 7748), ML-KEM-768 (FIPS 203 via Wycheproof), the hybrid KEM and hybrid seal.

Each standard vector is run through kyok's hybrid: the X25519 and ML-KEM halves are known
answers, and the combined secret is re-derived here from them with ``cryptography`` and
``hashlib`` only (the combiner is documented in kem.py's docstring). kyok's own fixed hybrid
vectors are in test_kyok_formats.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto import kem
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kem import HybridPrivateKey, HybridPublicKey, hybrid_open, hybrid_seal

from ._vectors import cases, h, load

X = load("x25519")
MLKEM = load("mlkem768")
ALICE, BOB = h(X["dh"]["alice_private"]), h(X["dh"]["bob_private"])
ALICE_PUB, BOB_PUB = h(X["dh"]["alice_public"]), h(X["dh"]["bob_public"])
SEED = bytes(range(64))


def _x25519(scalar: bytes, u: bytes) -> bytes:
    """The X25519 function itself, as the primitive kyok uses computes it."""
    private = x25519.X25519PrivateKey.from_private_bytes(scalar)
    return private.exchange(x25519.X25519PublicKey.from_public_bytes(u))


def _lp(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _combine(ss_m: bytes, ss_x: bytes, ct_m: bytes, ct_x: bytes, pk_m: bytes, pk_x: bytes) -> bytes:
    """kyok-hybrid-v1's combiner, written out from the kem.py docstring."""
    salt = hashlib.sha256(_lp(ct_m, ct_x, pk_m, pk_x)).digest()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=kem.SUITE)
    return hkdf.derive(ss_m + ss_x)


# ------------------------------------------------------------------------- X25519


@pytest.mark.parametrize("v", cases(X["scalar_mult"], where=lambda v: v["result"] == "valid"))
def test_x25519_rfc7748_scalar_mult(v: dict[str, Any]) -> None:
    assert _x25519(h(v["scalar"]), h(v["u"])) == h(v["output"])


def test_x25519_rfc7748_iterated() -> None:
    k = u = h(X["iterated"]["start"])
    checkpoints = {int(n): h(out) for n, out in X["iterated"]["after"].items()}
    for i in range(1, max(checkpoints) + 1):
        k, u = _x25519(k, u), k
        if i in checkpoints:
            assert k == checkpoints[i], i


def test_x25519_rfc7748_dh_through_kyok_keys() -> None:
    dh = X["dh"]
    alice = HybridPrivateKey.from_private_bytes(ALICE, SEED).public_key().to_bytes()
    bob = HybridPrivateKey.from_private_bytes(BOB, SEED).public_key().to_bytes()
    assert alice[1:33] == ALICE_PUB
    assert bob[1:33] == BOB_PUB
    assert _x25519(ALICE, BOB_PUB) == _x25519(BOB, ALICE_PUB) == h(dh["shared"])


@pytest.mark.parametrize("v", cases(X["scalar_mult"], where=lambda v: v["result"] == "invalid"))
def test_low_order_x25519_is_refused(v: dict[str, Any]) -> None:
    """An all-zero X25519 secret must never be used: the primitive refuses, kyok maps it."""
    with pytest.raises(ValueError):
        _x25519(h(v["scalar"]), h(v["u"]))
    private = HybridPrivateKey.from_private_bytes(h(v["scalar"]), SEED)
    with pytest.raises(InvalidCiphertext):
        private.decapsulate(h(v["u"]) + bytes(kem.MLKEM768_CIPHERTEXT_SIZE))


# ---------------------------------------------------------------------- ML-KEM-768


def _is(kind: str) -> Any:
    return lambda v: kind in v["name"]


@pytest.mark.parametrize("v", cases(MLKEM["vectors"], where=lambda v: v["result"] == "valid"))
def test_mlkem768_through_the_hybrid(v: dict[str, Any]) -> None:
    """FIPS 203 keygen (seed -> ek) and decapsulation (c -> K) as parts of kyok's hybrid."""
    seed, ek, c = h(v["seed"]), h(v["ek"]), h(v["c"])
    private = HybridPrivateKey.from_private_bytes(ALICE, seed)
    public = private.public_key().to_bytes()
    assert public == bytes([kem.PUBLIC_KEY_VERSION]) + ALICE_PUB + ek
    ss_x = h(X["dh"]["shared"])
    expected = _combine(h(v["K"]), ss_x, c, BOB_PUB, ek, ALICE_PUB)
    assert private.decapsulate(BOB_PUB + c) == expected


@pytest.mark.parametrize("v", cases(MLKEM["vectors"], where=_is("Private key too")))
def test_mlkem768_bad_seed_length(v: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HybridPrivateKey.from_private_bytes(ALICE, h(v["seed"]))


@pytest.mark.parametrize("v", cases(MLKEM["vectors"], where=_is("Ciphertext too")))
def test_mlkem768_bad_ciphertext_length(v: dict[str, Any]) -> None:
    private = HybridPrivateKey.from_private_bytes(ALICE, h(v["seed"]))
    with pytest.raises(InvalidCiphertext):
        private.decapsulate(BOB_PUB + h(v["c"]))


@pytest.mark.parametrize("v", cases(MLKEM["bad_encapsulation_keys"]))
def test_mlkem768_modulus_check(v: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HybridPublicKey(ALICE_PUB, h(v["ek"]))
    with pytest.raises(ValueError):
        HybridPublicKey.from_bytes(bytes([kem.PUBLIC_KEY_VERSION]) + ALICE_PUB + h(v["ek"]))


# ------------------------------------------------------------------------ hybrid KEM

PRIVATE = HybridPrivateKey.generate()
PUBLIC = PRIVATE.public_key()
OTHER = HybridPrivateKey.generate()


def test_encapsulate_decapsulate_agree() -> None:
    for _ in range(5):
        shared, encapsulation = PUBLIC.encapsulate()
        assert len(shared) == 32
        assert len(encapsulation) == kem.ENCAPSULATION_SIZE
        assert PRIVATE.decapsulate(encapsulation) == shared
        assert OTHER.decapsulate(encapsulation) != shared


def test_public_key_encoding() -> None:
    data = PUBLIC.to_bytes()
    assert len(data) == kem.PUBLIC_KEY_SIZE
    assert data[0] == kem.PUBLIC_KEY_VERSION
    assert HybridPublicKey.from_bytes(data).to_bytes() == data
    assert PUBLIC.fingerprint == hashlib.sha256(data).hexdigest()
    assert PRIVATE.public_key().fingerprint == PUBLIC.fingerprint
    assert OTHER.public_key().fingerprint != PUBLIC.fingerprint
    for bad in (b"\x02" + data[1:], data[:-1], data + b"\x00", b"", data[1:]):
        with pytest.raises(ValueError):
            HybridPublicKey.from_bytes(bad)
    with pytest.raises(ValueError):
        HybridPublicKey(data[1:32], data[33:])


def test_private_key_sizes_are_checked() -> None:
    for scalar, seed in [
        (bytes(31), SEED),
        (bytes(33), SEED),
        (ALICE, SEED[:63]),
        (ALICE, SEED + b"\x00"),
    ]:
        with pytest.raises(ValueError):
            HybridPrivateKey.from_private_bytes(scalar, seed)


def test_from_private_bytes_is_deterministic() -> None:
    a = HybridPrivateKey.from_private_bytes(ALICE, SEED).public_key().to_bytes()
    b = HybridPrivateKey.from_private_bytes(ALICE, SEED).public_key().to_bytes()
    assert a == b


@settings(max_examples=40)
@given(data=st.binary(max_size=1200) | st.binary(min_size=1120, max_size=1120))
def test_decapsulate_garbage(data: bytes) -> None:
    """Wrong length: InvalidCiphertext. Right length: a secret (implicit rejection) or, for a
    low-order X25519 part, InvalidCiphertext; never another exception."""
    if len(data) != kem.ENCAPSULATION_SIZE:
        with pytest.raises(InvalidCiphertext):
            PRIVATE.decapsulate(data)
    else:
        with contextlib.suppress(InvalidCiphertext):
            assert len(PRIVATE.decapsulate(data)) == 32


def test_private_key_never_in_repr_and_not_picklable() -> None:
    private = HybridPrivateKey.from_private_bytes(ALICE, SEED)
    text = repr(private) + str(private)
    for secret in (ALICE, SEED):
        for needle in (secret.hex(), secret.hex().upper(), repr(secret)):
            assert needle not in text
    with pytest.raises(TypeError):
        pickle.dumps(private)


# ---------------------------------------------------------------------- hybrid seal

payloads = st.binary(max_size=200)
small = st.binary(max_size=40)


@settings(max_examples=25)
@given(plaintext=payloads, aad=small, info=small)
def test_seal_open_round_trip(plaintext: bytes, aad: bytes, info: bytes) -> None:
    sealed = hybrid_seal(PUBLIC, plaintext, aad=aad, info=info)
    assert sealed[0] == kem.SEAL_VERSION
    assert len(sealed) == 1 + kem.ENCAPSULATION_SIZE + 40 + len(plaintext)
    assert hybrid_open(PRIVATE, sealed, aad=aad, info=info) == plaintext


_SEALED = hybrid_seal(PUBLIC, b"a wrapped key", aad=b"aad", info=b"info")


@settings(max_examples=120)
@given(bit=st.integers(0, len(_SEALED) * 8 - 1))
def test_any_bit_flip_fails(bit: int) -> None:
    """Anywhere: version, X25519 part (even its ignored top bit), ML-KEM part, nonce, body, tag."""
    sealed = bytearray(_SEALED)
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, bytes(sealed), aad=b"aad", info=b"info")


def test_flip_of_the_x25519_top_bit_fails() -> None:
    """X25519 ignores bit 255 of u, so only the binding of ct_X into the salt catches this."""
    sealed = bytearray(_SEALED)
    sealed[1 + 31] ^= 0x80
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, bytes(sealed), aad=b"aad", info=b"info")


@settings(max_examples=40)
@given(keep=st.integers(0, len(_SEALED) - 1))
def test_truncation_fails(keep: int) -> None:
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, _SEALED[:keep], aad=b"aad", info=b"info")


@settings(max_examples=20)
@given(extra=st.binary(min_size=1, max_size=20))
def test_extension_fails(extra: bytes) -> None:
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, _SEALED + extra, aad=b"aad", info=b"info")


@settings(max_examples=30)
@given(aad=small, info=small)
def test_wrong_aad_or_info_fails(aad: bytes, info: bytes) -> None:
    if (aad, info) == (b"aad", b"info"):
        return
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, _SEALED, aad=aad, info=info)


def test_aad_and_info_are_not_interchangeable() -> None:
    sealed = hybrid_seal(PUBLIC, b"m", aad=b"x", info=b"")
    with pytest.raises(InvalidCiphertext):
        hybrid_open(PRIVATE, sealed, aad=b"", info=b"x")


def test_wrong_private_key_fails() -> None:
    with pytest.raises(InvalidCiphertext):
        hybrid_open(OTHER, _SEALED, aad=b"aad", info=b"info")


def test_seal_to_a_low_order_x25519_key_is_refused() -> None:
    public = HybridPublicKey(bytes(32), PUBLIC.to_bytes()[33:])
    with pytest.raises(ValueError):
        hybrid_seal(public, b"m")
