"""pbe: scrypt + kyok-aead-v1 for custodian files (low scrypt cost here; known answers in
test_kyok_formats.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.pbe import SALT_SIZE, new_salt, pbe_decrypt, pbe_encrypt

FAST = ScryptParams(log2_n=10, r=8, p=1)
SALT = bytes(range(SALT_SIZE))


@settings(max_examples=15, deadline=None)
@given(
    passphrase=st.binary(min_size=1, max_size=40),
    plaintext=st.binary(max_size=64),
    aad=st.binary(max_size=32),
)
def test_round_trip(passphrase: bytes, plaintext: bytes, aad: bytes) -> None:
    ciphertext = pbe_encrypt(passphrase, SALT, FAST, plaintext, aad)
    assert len(ciphertext) == len(plaintext) + 40
    assert pbe_decrypt(passphrase, SALT, FAST, ciphertext, aad) == plaintext


@settings(max_examples=10, deadline=None)
@given(passphrase=st.binary(min_size=1, max_size=20), other=st.binary(max_size=20))
def test_wrong_passphrase(passphrase: bytes, other: bytes) -> None:
    # scrypt keys HMAC with the passphrase, and HMAC pads keys with zero bytes: passphrases that
    # differ only in trailing NULs are the same passphrase (an scrypt property; see the report).
    if other.rstrip(b"\0") == passphrase.rstrip(b"\0"):
        other += b"!"
    ciphertext = pbe_encrypt(passphrase, SALT, FAST, b"master key part", b"aad")
    with pytest.raises(InvalidCiphertext):
        pbe_decrypt(other, SALT, FAST, ciphertext, b"aad")


def test_salt_params_and_aad_are_bound() -> None:
    ciphertext = pbe_encrypt(b"pw", SALT, FAST, b"part", b"aad")
    for salt, params, aad in [
        (bytes(SALT_SIZE), FAST, b"aad"),
        (SALT, ScryptParams(log2_n=11, r=8, p=1), b"aad"),
        (SALT, ScryptParams(log2_n=10, r=4, p=1), b"aad"),
        (SALT, ScryptParams(log2_n=10, r=8, p=2), b"aad"),
        (SALT, FAST, b"aae"),
        (SALT, FAST, b""),
    ]:
        with pytest.raises(InvalidCiphertext):
            pbe_decrypt(b"pw", salt, params, ciphertext, aad)
    for bad in (ciphertext[:-1], ciphertext + b"\x00", b"", bytes(len(ciphertext))):
        with pytest.raises(InvalidCiphertext):
            pbe_decrypt(b"pw", SALT, FAST, bad, b"aad")


def test_refusals() -> None:
    with pytest.raises(ValueError):
        pbe_encrypt(b"", SALT, FAST, b"p", b"")
    with pytest.raises(ValueError):
        pbe_encrypt(b"pw", SALT[:15], FAST, b"p", b"")
    with pytest.raises(ValueError):
        pbe_decrypt(b"pw", SALT[:15], FAST, bytes(40), b"")


def test_new_salt() -> None:
    salts = {new_salt() for _ in range(20)}
    assert len(salts) == 20
    assert all(len(s) == SALT_SIZE for s in salts)
