"""Encrypted PKCS#8 with PBES2 + scrypt: standard, readable by cryptography and openssl."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kyok.crypto.kdf import ScryptParams
from kyok.crypto.pkcs8 import PEM_SCRYPT, encrypt_pkcs8
from kyok.crypto.sign import SigningKey

FAST = ScryptParams(log2_n=10, r=8, p=1)


def _der(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body)


def test_structure_names_pbes2_scrypt_and_aes256cbc() -> None:
    key = SigningKey.generate("ed25519")
    der = _der(key.to_encrypted_pem(b"passphrase", FAST))
    assert bytes.fromhex("06092a864886f70d01050d") in der  # PBES2
    assert bytes.fromhex("06092b06010401da47040b") in der  # scrypt
    assert bytes.fromhex("060960864801650304012a") in der  # aes256-CBC
    assert bytes.fromhex("02020400") in der  # INTEGER N = 1024


def test_default_cost_fits_openssl_and_beats_pbkdf2_2048() -> None:
    assert 128 * PEM_SCRYPT.r * (1 << PEM_SCRYPT.log2_n) <= 16 * 1024 * 1024
    assert PEM_SCRYPT.p == 8


@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ml-dsa-65"])
def test_cryptography_reads_it(alg: str) -> None:
    key = SigningKey.generate(alg)
    pem = key.to_encrypted_pem(b"passphrase", FAST)
    loaded = serialization.load_pem_private_key(pem, b"passphrase")
    assert SigningKey(loaded).verifying_key() == key.verifying_key()  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)):
        serialization.load_pem_private_key(pem, b"other passphrase")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256", "ecdsa-p384"])
def test_openssl_reads_the_default_cost(tmp_path: Path, alg: str) -> None:
    key = SigningKey.generate(alg)
    path = tmp_path / "k.pem"
    path.write_bytes(key.to_encrypted_pem(b"passphrase"))
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:passphrase", "-pubout"],
        capture_output=True,
        check=True,
    ).stdout
    assert out == key.verifying_key().to_pem()


def test_empty_passphrase_and_bad_der() -> None:
    with pytest.raises(ValueError):
        encrypt_pkcs8(b"\x30\x00", b"")
