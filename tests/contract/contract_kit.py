"""Keys, certificates and an openssl runner for the contract tests.

The platform's encryption key is RSA-4096, as IBM's certificates use (tokens carry 512-byte RSA
blocks); it is made once per test process. Signing keys and CA keys are RSA-2048 to keep the
tests quick (kyok accepts 2048 and up).
"""

from __future__ import annotations

import functools
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

FIXTURES = Path(__file__).parent / "fixtures"


@functools.cache
def encryption_key() -> rsa.RSAPrivateKey:
    """The stand-in for the platform's contract encryption key (RSA-4096, once per process)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


@functools.cache
def other_key() -> rsa.RSAPrivateKey:
    """A second RSA-4096 key: the wrong key for decryption tests."""
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


def new_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key (2048 bits unless asked)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    """The contract signer's key (RSA-2048)."""
    return new_rsa()


def self_signed(
    key: rsa.RSAPrivateKey, cn: str, *, days: int = 30, ca: bool = False
) -> x509.Certificate:
    """A self-signed certificate for ``key`` (as ``openssl req -x509`` makes)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key, hashes.SHA256())


@functools.cache
def encryption_cert_pem() -> bytes:
    """A stand-in for IBM's ``…-encrypt.crt``: a certificate for :func:`encryption_key`."""
    cert = self_signed(encryption_key(), "test-hpcr-encrypt")
    return cert.public_bytes(serialization.Encoding.PEM)


def private_pem(
    key: rsa.RSAPrivateKey, password: bytes | None = None, *, pkcs1: bool = False
) -> bytes:
    """PEM of ``key``: PKCS#8 (or PKCS#1 with ``pkcs1``), encrypted with ``password`` if given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if pkcs1
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo of ``key``."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write(directory: Path, name: str, data: bytes | str) -> Path:
    """Write a file for openssl or the CLI and return its path."""
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def openssl(
    *args: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run the real openssl binary."""
    return subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, check=check, timeout=60
    )


def sh(
    script: str, *, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run a bash script (the seed's documented command lines) in ``cwd``."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        check=check,
        timeout=120,
        env=env,
    )
