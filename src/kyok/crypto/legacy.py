"""WARNING: legacy algorithms, here only because a wire format forces them on us.

* RSA-OAEP with SHA-1 / MGF1-SHA-1 — Hyper Protect Crypto Services import tokens
  (``RSAES_OAEP_SHA_1``).
* AES-CBC with PKCS#7 padding — the HPCS way of encrypting the import-token nonce.

Do not use these for anything kyok chooses itself.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kyok.crypto import rsa_oaep
from kyok.crypto.errors import InvalidCiphertext


def oaep_sha1_encrypt(public_key: rsa.RSAPublicKey, plaintext: bytes) -> bytes:
    """RSA-OAEP with SHA-1 and MGF1-SHA-1, empty label."""
    return rsa_oaep.oaep_encrypt(public_key, plaintext, _hash=hashes.SHA1())  # noqa: S303


def oaep_sha1_decrypt(private_key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """RSA-OAEP with SHA-1 and MGF1-SHA-1, empty label.

    Raises:
        InvalidCiphertext: for any decryption or padding failure.
    """
    return rsa_oaep.oaep_decrypt(private_key, ciphertext, _hash=hashes.SHA1())  # noqa: S303


def aes_cbc_pkcs7_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC with PKCS#7 padding (no integrity!)."""
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def aes_cbc_pkcs7_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-CBC with PKCS#7 padding.

    Raises:
        InvalidCiphertext: on a length or padding error. (CBC has no integrity: a caller must
            compare the result with an expected value, as the import-token nonce check does.)
    """
    if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise InvalidCiphertext()
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidCiphertext() from None
