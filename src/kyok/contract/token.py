"""Hyper Protect section tokens: ``<prefix>.<A>.<B>`` (reference hpcr-contract.md §2, §9).

A token carries one encrypted contract section (or an attestation record)::

    S      = 32 random bytes                     (we draw them from the base64 alphabet)
    A      = b64(RSAES-PKCS1-v1_5-Encrypt(pub, S))
    P      = S cut at its first 0x00 or 0x0A     (what ``openssl enc -pass stdin`` reads)
    K ‖ IV = PBKDF2-HMAC-SHA256(P, salt, 10000, 48)
    B      = b64("Salted__" ‖ salt(8) ‖ AES-256-CBC(K, IV, PKCS#7(plaintext)))

This is byte-compatible with the openssl commands IBM documents (``pkeyutl -encrypt
-pkeyopt rsa_padding_mode:pkcs1`` and ``enc -aes-256-cbc -pbkdf2 -pass stdin``). The secrets
we make never contain 0x00 or 0x0A, so the cut never applies to them; on decrypt the cut is
always applied, because tokens made by IBM's own procedure depend on it (§2.2).

Every decryption failure (wrong key, altered token, bad padding) raises the same
:class:`TokenError` with no detail about which check failed. The format has no MAC, so a
wrong key or an altered token is *usually*, not always, detected (see :func:`decrypt_token`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from kyok.errors import InvalidInput

__all__ = [
    "MIN_RSA_BITS",
    "PBKDF2_ITERATIONS",
    "PREFIXES",
    "PREFIX_CONTRACT",
    "PREFIX_HPVS",
    "ContractError",
    "TokenError",
    "TokenParts",
    "decrypt_token",
    "encrypt_token",
    "is_token",
    "load_encryption_key",
    "load_private_key",
    "parse_token",
    "passphrase_from_secret",
]

PREFIX_HPVS = "hyper-protect-basic"
PREFIX_CONTRACT = "contract-basic"
PREFIXES: tuple[str, ...] = (PREFIX_HPVS, PREFIX_CONTRACT)

PBKDF2_ITERATIONS = 10_000
MIN_RSA_BITS = 2048
SECRET_SIZE = 32
_SALT_SIZE = 8
_MAGIC = b"Salted__"
_BLOCK = 16

_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


class ContractError(InvalidInput):
    """A contract, a section, a key or a certificate is malformed or does not fit.

    The message says what is wrong and what to do; it never holds a secret, a plaintext or a
    private key.
    """

    code = "CONTRACT_ERR"


class TokenError(ContractError):
    """A section token is malformed or does not decrypt with the given private key."""

    code = "CONTRACT_TOKEN_ERR"


@dataclass(frozen=True)
class TokenParts:
    """The three fields of a token, decoded from base64.

    Attributes:
        prefix: ``hyper-protect-basic`` or ``contract-basic``.
        encrypted_secret: the RSA PKCS#1 v1.5 ciphertext of the secret (A).
        encrypted_data: ``Salted__`` ‖ salt ‖ AES-256-CBC ciphertext (B).
    """

    prefix: str
    encrypted_secret: bytes = b""
    encrypted_data: bytes = b""

    @property
    def salt(self) -> bytes:
        """The 8-byte PBKDF2 salt that follows ``Salted__``."""
        return self.encrypted_data[len(_MAGIC) : len(_MAGIC) + _SALT_SIZE]


def passphrase_from_secret(secret: bytes) -> bytes:
    """The AES passphrase openssl derives from ``secret``: cut at the first 0x00 or 0x0A.

    ``openssl enc -pass stdin`` reads one line as a C string, so a secret piped to it in raw
    form loses everything from its first newline or NUL byte (reference §2.2).
    """
    cut = len(secret)
    for stop in (b"\x00", b"\n"):
        at = secret.find(stop)
        if at != -1:
            cut = min(cut, at)
    return secret[:cut]


def _key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    derived = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=48, salt=salt, iterations=PBKDF2_ITERATIONS
    ).derive(passphrase)
    return derived[:32], derived[32:]


def _new_secret() -> bytes:
    """32 characters of the base64 alphabet: never 0x00 or 0x0A (reference §2.2)."""
    return base64.b64encode(os.urandom(24))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(field: str, what: str) -> bytes:
    if not _B64.fullmatch(field):
        raise TokenError(f"the {what} field of the token is not standard base64")
    try:
        return base64.b64decode(field, validate=True)
    except binascii.Error:
        raise TokenError(f"the {what} field of the token is not standard base64") from None


def _check_prefix(prefix: str) -> None:
    if prefix not in PREFIXES:
        raise TokenError(
            f"unknown token prefix {prefix!r}: use {PREFIX_HPVS!r} or {PREFIX_CONTRACT!r}"
        )


def encrypt_token(
    plaintext: bytes, public_key: rsa.RSAPublicKey, *, prefix: str = PREFIX_HPVS
) -> str:
    """Encrypt ``plaintext`` into a ``<prefix>.<A>.<B>`` token for ``public_key``.

    The plaintext is encrypted exactly as given (no whitespace is trimmed).

    Args:
        plaintext: the section text (or any bytes).
        public_key: the RSA key of the platform's encryption certificate (see
            :func:`load_encryption_key`).
        prefix: ``hyper-protect-basic`` (HPVS, CCCO, default) or ``contract-basic`` (CCRT, CCRV).

    Returns:
        The token, on one line.

    Raises:
        TokenError: the prefix is not one of the two known ones.
        ContractError: the key is not RSA or is shorter than 2048 bits.
    """
    _check_prefix(prefix)
    _check_public_key(public_key)
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise TypeError("plaintext must be bytes")
    secret = _new_secret()
    encrypted_secret = public_key.encrypt(secret, PKCS1v15())
    salt = os.urandom(_SALT_SIZE)
    key, iv = _key_iv(passphrase_from_secret(secret), salt)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(bytes(plaintext)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(padded) + encryptor.finalize()
    data = _MAGIC + salt + body
    return f"{prefix}.{_b64encode(encrypted_secret)}.{_b64encode(data)}"


def parse_token(token: str) -> TokenParts:
    """Split and decode a token without decrypting it.

    Surrounding whitespace is ignored; inside the token none is allowed.

    Raises:
        TokenError: not three dot-separated fields, an unknown prefix, bad base64, or a data
            field that is not ``Salted__`` ‖ salt ‖ whole AES blocks.
    """
    if not isinstance(token, str):
        raise TypeError("token must be a str")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError(
            "not a section token: expected <prefix>.<base64>.<base64> (three fields separated by dots)"
        )
    prefix, a, b = parts
    _check_prefix(prefix)
    encrypted_secret = _b64decode(a, "secret")
    encrypted_data = _b64decode(b, "data")
    header = len(_MAGIC) + _SALT_SIZE
    if (
        not encrypted_data.startswith(_MAGIC)
        or len(encrypted_data) < header + _BLOCK
        or (len(encrypted_data) - header) % _BLOCK
    ):
        raise TokenError(
            "the data field of the token is not openssl 'Salted__' output of AES-256-CBC"
        )
    return TokenParts(prefix, encrypted_secret, encrypted_data)


def is_token(value: str) -> bool:
    """Whether ``value`` looks like a section token (a known prefix and a well-formed shape)."""
    try:
        parse_token(value)
    except (TokenError, TypeError):
        return False
    return True


def decrypt_token(token: str, private_key: rsa.RSAPrivateKey) -> bytes:
    """Decrypt a token made by kyok, contract-go, the HPVS image or IBM's openssl commands.

    Both prefixes are accepted. The secret is cut at its first 0x00 or 0x0A before PBKDF2, as
    ``openssl enc -pass stdin`` does (reference §2.2).

    Args:
        token: ``<prefix>.<A>.<B>``; surrounding whitespace is ignored.
        private_key: the RSA private key that matches the encryption key.

    Returns:
        The plaintext bytes.

    The format has no MAC. With a wrong key of the right size, RSA decryption yields a
    pseudo-random secret instead of an error (implicit rejection), so about one attempt in 256
    passes the padding check and returns garbage rather than raising; a caller that knows the
    plaintext's form (YAML, a record) should check it.

    Raises:
        TokenError: the token is malformed, or it does not decrypt with ``private_key`` (one
            message for every cryptographic failure).
    """
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ContractError("the private key is not an RSA key")
    parts = parse_token(token)
    failure = TokenError("the token does not decrypt with this private key")
    if len(parts.encrypted_secret) != (private_key.key_size + 7) // 8:
        raise failure
    try:
        secret = private_key.decrypt(parts.encrypted_secret, PKCS1v15())
    except ValueError:
        raise failure from None
    header = len(_MAGIC) + _SALT_SIZE
    key, iv = _key_iv(passphrase_from_secret(secret), parts.salt)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(parts.encrypted_data[header:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise failure from None


def _check_public_key(key: object) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise ContractError(
            "the encryption key is not an RSA key: Hyper Protect uses RSA (4096-bit) certificates"
        )
    if key.key_size < MIN_RSA_BITS:
        raise ContractError(
            f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required"
        )
    return key


def _maybe_base64_pem(data: bytes) -> bytes:
    """``data`` itself if it holds a PEM block, else its base64 decoding if that does."""
    if b"-----BEGIN" in data:
        return data
    compact = b"".join(data.split())
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return data
    return decoded if b"-----BEGIN" in decoded else data


def load_encryption_key(data: bytes) -> rsa.RSAPublicKey:
    """Load the RSA public key to encrypt for: a PEM certificate or a PEM public key.

    Also accepted: base64 of either PEM (as contracts carry them) and DER forms. The key must
    be RSA with at least 2048 bits. Certificate validity is not checked here.

    Raises:
        ContractError: the data is neither a certificate nor a public key, or not RSA.
    """
    if isinstance(data, str):
        data = data.encode()
    text = _maybe_base64_pem(bytes(data))
    key: object = None
    if b"-----BEGIN CERTIFICATE-----" in text:
        try:
            key = x509.load_pem_x509_certificate(text).public_key()
        except ValueError:
            raise ContractError(
                "the encryption certificate is not a valid PEM certificate"
            ) from None
    elif b"-----BEGIN" in text:
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError:
            raise ContractError(
                "the encryption key is not a valid PEM public key or certificate "
                "(a private key is not accepted here)"
            ) from None
    else:
        for loader in (
            lambda d: x509.load_der_x509_certificate(d).public_key(),
            serialization.load_der_public_key,
        ):
            try:
                key = loader(text)
                break
            except ValueError:
                continue
        if key is None:
            raise ContractError(
                "the encryption key is neither a PEM/DER certificate nor a PEM/DER public key"
            )
    return _check_public_key(key)


def load_private_key(data: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key: PEM (PKCS#1 or PKCS#8, encrypted or not) or DER.

    Args:
        data: the key file's bytes.
        password: the key's password, if it is encrypted (legacy ``Proc-Type: 4,ENCRYPTED`` or
            PKCS#8 ``ENCRYPTED PRIVATE KEY``).

    Raises:
        ContractError: not a private key, not RSA, encrypted without a password, a wrong
            password, or a password given for a key that is not encrypted.
    """
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    if password is not None and not password:
        password = None
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise ContractError(
            "the private key is encrypted: give its password (--password or KYOK_KEY_PASSWORD)"
        )
    loader = (
        serialization.load_pem_private_key
        if b"-----BEGIN" in data
        else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=password)
    except TypeError:
        if password is not None:
            raise ContractError(
                "a password was given but the private key is not encrypted: leave it out"
            ) from None
        raise ContractError(
            "the private key is encrypted: give its password (--password or KYOK_KEY_PASSWORD)"
        ) from None
    except ValueError:
        if encrypted:
            raise ContractError(
                "the private key could not be decrypted: is the password right?"
            ) from None
        raise ContractError("the data is not a PEM or DER private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ContractError("the private key is not an RSA key: Hyper Protect contracts use RSA")
    return key
