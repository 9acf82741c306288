"""Passphrase-based encryption: scrypt derives a key, kyok-aead-v1 encrypts.

Used for the files a custodian keeps on their own machine (master-key parts).
"""

from __future__ import annotations

import os

from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.kdf import ScryptParams, scrypt

SALT_SIZE = 16


def new_salt() -> bytes:
    """A fresh random salt."""
    return os.urandom(SALT_SIZE)


def pbe_encrypt(
    passphrase: bytes, salt: bytes, params: ScryptParams, plaintext: bytes, aad: bytes
) -> bytes:
    """Encrypt ``plaintext`` under a key derived from ``passphrase``; bind ``aad``."""
    if not passphrase:
        raise ValueError("a passphrase is required")
    return DerivedKeyAead(scrypt(passphrase, salt, params)).encrypt(plaintext, aad)


def pbe_decrypt(
    passphrase: bytes, salt: bytes, params: ScryptParams, ciphertext: bytes, aad: bytes
) -> bytes:
    """Inverse of :func:`pbe_encrypt`.

    Raises:
        InvalidCiphertext: wrong passphrase or altered data.
    """
    return DerivedKeyAead(scrypt(passphrase, salt, params)).decrypt(ciphertext, aad)
