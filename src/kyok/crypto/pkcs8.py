"""PKCS#8 ``ENCRYPTED PRIVATE KEY`` with PBES2 + scrypt + AES-256-CBC (RFC 8018, RFC 7914 §7).

``cryptography``'s ``BestAvailableEncryption`` for PKCS#8 uses PBKDF2 with only 2,048
iterations, too weak for an administrator's signing key that sits in a file. This writes the
same standard container with scrypt instead; ``cryptography`` and ``openssl pkey`` read it
unchanged. The default cost, N = 2^14, r = 8, p = 8, stays within the 32 MiB that OpenSSL
allows scrypt when reading PKCS#8 (16 MiB, as ``openssl pkcs8 -scrypt`` itself uses) while
p = 8 makes each guess eight times as expensive::

    EncryptedPrivateKeyInfo ::= SEQUENCE {
      encryptionAlgorithm  SEQUENCE { id-PBES2, PBES2-params SEQUENCE {
          keyDerivationFunc SEQUENCE { id-scrypt, SEQUENCE { salt OCTET STRING,
                                        costParameter INTEGER, blockSize INTEGER,
                                        parallelizationParameter INTEGER, keyLength INTEGER } },
          encryptionScheme  SEQUENCE { aes256-CBC, iv OCTET STRING } } },
      encryptedData        OCTET STRING }   -- AES-256-CBC-PKCS#7 of the PKCS#8 PrivateKeyInfo
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kyok.crypto.kdf import ScryptParams, scrypt

_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42

#: scrypt cost for encrypted PEM files: what OpenSSL can read, with 8x the work of its default.
PEM_SCRYPT = ScryptParams(log2_n=14, r=8, p=8)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _int(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading zero keeps it positive
    return _tlv(0x02, body)


def encrypt_pkcs8(
    private_key_info_der: bytes, passphrase: bytes, params: ScryptParams | None = None
) -> bytes:
    """Wrap an unencrypted PKCS#8 ``PrivateKeyInfo`` (DER) into an encrypted PEM.

    Args:
        private_key_info_der: ``key.private_bytes(DER, PKCS8, NoEncryption())``.
        passphrase: the owner's passphrase (not empty).
        params: scrypt cost; defaults to :data:`PEM_SCRYPT` (N=2^14, r=8, p=8).

    Returns:
        PEM text with the label ``ENCRYPTED PRIVATE KEY``.
    """
    if not passphrase:
        raise ValueError("a passphrase is required")
    params = params or PEM_SCRYPT
    salt, iv = os.urandom(16), os.urandom(16)
    key = scrypt(passphrase, salt, params, length=32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(private_key_info_der) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _seq(
        _OID_SCRYPT,
        _seq(_octets(salt), _int(1 << params.log2_n), _int(params.r), _int(params.p), _int(32)),
    )
    scheme = _seq(_OID_AES256_CBC, _octets(iv))
    der = _seq(_seq(_OID_PBES2, _seq(kdf, scheme)), _octets(encrypted))
    b64 = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + "\n".join(lines)
        + "\n-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode()
