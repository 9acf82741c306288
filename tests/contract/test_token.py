"""Section tokens: format, round trips, the truncation rule, tampering, key loading."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.contract.contract_kit import (
    encryption_cert_pem,
    encryption_key,
    new_rsa,
    other_key,
    private_pem,
    public_pem,
)

from kyok.contract.token import (
    PREFIX_CONTRACT,
    PREFIX_HPVS,
    ContractError,
    TokenError,
    decrypt_token,
    encrypt_token,
    is_token,
    load_encryption_key,
    load_private_key,
    parse_token,
    passphrase_from_secret,
)
from kyok.errors import KyokError


def _token_with_secret(plaintext: bytes, secret: bytes, prefix: str = PREFIX_HPVS) -> str:
    """A token made the way IBM's openssl procedure makes it: RSA over all of ``secret``, AES
    under the passphrase openssl reads from it (cut at 0x00/0x0A)."""
    key = encryption_key().public_key()
    a = key.encrypt(secret, PKCS1v15())
    salt = os.urandom(8)
    derived = PBKDF2HMAC(hashes.SHA256(), 48, salt, 10_000).derive(passphrase_from_secret(secret))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:])).encryptor()
    b = b"Salted__" + salt + enc.update(padded) + enc.finalize()
    return f"{prefix}.{base64.b64encode(a).decode()}.{base64.b64encode(b).decode()}"


def test_round_trip_and_shape() -> None:
    token = encrypt_token(b"type: workload\n", encryption_key().public_key())
    prefix, a, b = token.split(".")
    assert prefix == "hyper-protect-basic"
    assert len(a) == 684  # 512-byte RSA block, as with IBM's RSA-4096 certificates
    raw_b = base64.b64decode(b)
    assert raw_b.startswith(b"Salted__") and (len(raw_b) - 16) % 16 == 0
    assert decrypt_token(token, encryption_key()) == b"type: workload\n"


def test_contract_basic_prefix_and_both_prefixes_decrypt() -> None:
    token = encrypt_token(b"x", encryption_key().public_key(), prefix=PREFIX_CONTRACT)
    assert token.startswith("contract-basic.")
    assert decrypt_token(token, encryption_key()) == b"x"
    assert parse_token(token).prefix == PREFIX_CONTRACT


def test_plaintext_is_not_trimmed() -> None:
    for text in (b"  padded  \n\n", b"\n", b"", b"\r\n\t"):
        assert (
            decrypt_token(encrypt_token(text, encryption_key().public_key()), encryption_key())
            == text
        )


def test_secrets_we_make_never_hold_nul_or_newline() -> None:
    """The RSA block decrypts to 32 base64-alphabet characters, so the cut never applies."""
    for _ in range(40):
        token = encrypt_token(b"s", encryption_key().public_key())
        secret = encryption_key().decrypt(parse_token(token).encrypted_secret, PKCS1v15())
        assert len(secret) == 32
        assert b"\x00" not in secret and b"\n" not in secret
        assert passphrase_from_secret(secret) == secret


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_passphrase_cut_rule(secret: bytes) -> None:
    cut = passphrase_from_secret(secret)
    assert secret.startswith(cut)
    assert b"\x00" not in cut and b"\n" not in cut
    if len(cut) < len(secret):
        assert secret[len(cut)] in (0, 10)


@pytest.mark.parametrize(
    "secret",
    [
        b"abcdefghijklmn\nopqrstuvwxyz012345"[
            :32
        ],  # 0x0A at offset 14, like contract-go's golden token
        b"\x00"
        + bytes(range(0xA1, 0xC0)),  # empty passphrase (fixed bytes: xdist workers collect alike)
        b"\n" + b"A" * 31,  # empty passphrase, newline first
        b"ABCD\x00EFG\nHIJ" + b"K" * 20,  # NUL before newline
        b"ABC\rDEF" + b"x" * 25,  # \r is kept
    ],
)
def test_decrypts_tokens_whose_secret_hits_the_cut(secret: bytes) -> None:
    token = _token_with_secret(b"hello-world", secret)
    assert decrypt_token(token, encryption_key()) == b"hello-world"


def test_full_secret_would_not_decrypt_the_truncated_token() -> None:
    """Proof that the cut matters: deriving from all 32 bytes gives the wrong AES key."""
    secret = b"abcdefghijklmn\nopqrstuvwxyz01234"
    token = _token_with_secret(b"hello-world" * 3, secret)
    data = parse_token(token).encrypted_data
    derived = PBKDF2HMAC(hashes.SHA256(), 48, data[8:16], 10_000).derive(secret)
    dec = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:])).decryptor()
    wrong = dec.update(data[16:]) + dec.finalize()
    assert b"hello-world" not in wrong


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300))
def test_round_trip_property(plaintext: bytes) -> None:
    token = encrypt_token(plaintext, encryption_key().public_key())
    assert is_token(token)
    assert decrypt_token(token, encryption_key()) == plaintext


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_flipped_bit_fails_or_never_yields_the_plaintext(data: st.DataObject) -> None:
    plaintext = b"type: env\nlogging: secret-api-key-0123456789\n"
    token = encrypt_token(plaintext, encryption_key().public_key())
    prefix, a, b = token.split(".")
    which = data.draw(st.sampled_from(["a", "b"]))
    raw = bytearray(base64.b64decode(a if which == "a" else b))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    field = base64.b64encode(bytes(raw)).decode()
    altered = f"{prefix}.{field}.{b}" if which == "a" else f"{prefix}.{a}.{field}"
    try:
        result = decrypt_token(altered, encryption_key())
    except TokenError:
        return
    # CBC has no integrity: a flip in the last blocks may still unpad; never the original text
    assert result != plaintext


def test_wrong_key_fails_with_one_opaque_error() -> None:
    """A wrong key of the same size: RSA implicit rejection yields a pseudo-random secret, so
    about 1 try in 256 gets past the padding check with garbage; never with the plaintext."""
    failures: list[TokenError] = []
    for _ in range(6):
        token = encrypt_token(b"secret value", encryption_key().public_key())
        try:
            assert decrypt_token(token, other_key()) != b"secret value"
        except TokenError as exc:
            failures.append(exc)
    assert failures  # 6 garbage results in a row: odds about 1 in 2.8e14
    for exc in failures:
        assert str(exc) == "the token does not decrypt with this private key"
        assert isinstance(exc, KyokError) and isinstance(exc, ContractError)


def test_key_of_another_size_fails() -> None:
    token = encrypt_token(b"x", encryption_key().public_key())
    with pytest.raises(TokenError):
        decrypt_token(token, new_rsa(2048))


@pytest.mark.parametrize(
    "bad",
    [
        "hyper-protect-basic.abc",
        "hyper-protect-basic.a.b.c",
        "other-prefix.QUFBQQ==.U2FsdGVkX18=",
        "hyper-protect-basic.not*base64.U2FsdGVkX18=",
        "hyper-protect-basic.QUFBQQ==.QUFBQQ==",  # data field lacks Salted__
        "hyper-protect-basic.QUFBQQ==.U2FsdGVkX19BQUFBQUFBQQ==",  # header only, no block
        "",
    ],
)
def test_malformed_tokens(bad: str) -> None:
    assert not is_token(bad)
    with pytest.raises(TokenError):
        decrypt_token(bad, encryption_key())


def test_surrounding_whitespace_is_ignored() -> None:
    token = encrypt_token(b"x", encryption_key().public_key())
    assert decrypt_token(f"  {token}\n", encryption_key()) == b"x"


def test_unknown_prefix_on_encrypt() -> None:
    with pytest.raises(TokenError, match="unknown token prefix"):
        encrypt_token(b"x", encryption_key().public_key(), prefix="basic")


# --- keys -----------------------------------------------------------------------------------------


def test_load_encryption_key_forms() -> None:
    expected = encryption_key().public_key().public_numbers()
    cert_pem = encryption_cert_pem()
    pub_pem = public_pem(encryption_key())
    der_pub = (
        encryption_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for data in (cert_pem, pub_pem, base64.b64encode(cert_pem), base64.b64encode(pub_pem), der_pub):
        assert load_encryption_key(data).public_numbers() == expected


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a key", "neither"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a valid PEM certificate",
        ),
    ],
)
def test_load_encryption_key_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        load_encryption_key(data)


def test_load_encryption_key_rejects_private_ec_and_small_keys() -> None:
    with pytest.raises(ContractError, match="private key is not accepted"):
        load_encryption_key(private_pem(new_rsa()))
    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ContractError, match="not an RSA key"):
        load_encryption_key(
            ec_pub.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    with pytest.raises(ContractError, match="at least 2048"):
        load_encryption_key(public_pem(new_rsa(1024)))


def test_load_private_key_forms_and_passwords() -> None:
    key = new_rsa()
    numbers = key.private_numbers()
    assert load_private_key(private_pem(key)).private_numbers() == numbers
    assert load_private_key(private_pem(key, pkcs1=True)).private_numbers() == numbers
    encrypted = private_pem(key, b"CustomPassphrase")
    assert load_private_key(encrypted, b"CustomPassphrase").private_numbers() == numbers
    with pytest.raises(ContractError, match="encrypted: give its password"):
        load_private_key(encrypted)
    with pytest.raises(ContractError, match="password right"):
        load_private_key(encrypted, b"wrong")
    with pytest.raises(ContractError, match="not encrypted"):
        load_private_key(private_pem(key), b"unneeded")
    with pytest.raises(ContractError, match="not a PEM or DER private key"):
        load_private_key(b"garbage")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ContractError, match="not an RSA key"):
        load_private_key(ec_pem)


def test_errors_never_carry_the_password() -> None:
    encrypted = private_pem(new_rsa(), b"CustomPassphrase")
    with pytest.raises(ContractError) as info:
        load_private_key(encrypted, b"wrong-SECRET-password")
    assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value)
