"""The contract signature: ``envWorkloadSignature`` and ``env.signingKey`` (reference §3, §9).

- Signed bytes: UTF-8 of the ``workload`` value followed directly by the ``env`` value, exactly
  as they stand in the contract after YAML parsing (the tokens, once encrypted). No separator.
- Algorithm: RSASSA-PKCS1-v1_5 with SHA-256 (``openssl dgst -sha256 -sign``), deterministic.
- Encoding: standard base64 on one line; whitespace inside is ignored when verifying.
- ``signingKey`` lives inside ``env`` (so it is encrypted and signed with it). Accepted forms:
  a PEM public key, a PEM certificate (contract expiry, §4), or base64 of either. kyok writes
  base64 of the PEM (one encoding, as IBM documents); it reads contract-go's doubly
  base64-encoded certificates too, and says so (:attr:`SigningKey.form`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from kyok.contract.token import MIN_RSA_BITS, ContractError

__all__ = [
    "SignatureMismatch",
    "SigningKey",
    "decode_signing_key",
    "encode_signing_key",
    "public_key_pem",
    "sign_sections",
    "signature_payload",
    "verify_sections",
]


class SignatureMismatch(ContractError):
    """``envWorkloadSignature`` does not verify over workload‖env with the signing key."""

    code = "CONTRACT_SIGNATURE_ERR"


@dataclass(frozen=True)
class SigningKey:
    """A decoded ``signingKey`` value.

    Attributes:
        public_key: the RSA key that verifies the signature.
        certificate: the signing certificate (contract expiry), or None for a bare key.
        form: how the value was written: ``pem-public-key``, ``pem-certificate``,
            ``base64-public-key``, ``base64-certificate``, or ``double-base64-certificate`` /
            ``double-base64-public-key`` (contract-go's contract-expiry output, reference §4).
    """

    public_key: rsa.RSAPublicKey
    certificate: x509.Certificate | None
    form: str


def public_key_pem(key: rsa.RSAPublicKey) -> bytes:
    """The PEM SubjectPublicKeyInfo of ``key`` (what ``openssl rsa -pubout`` prints)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encode_signing_key(key: rsa.RSAPublicKey | x509.Certificate, *, pem: bool = False) -> str:
    """The ``signingKey`` value for a public key or a signing certificate.

    Args:
        key: the signer's public key, or its CA-issued certificate (contract expiry).
        pem: write the PEM text itself instead of base64 of it (the default, single base64, is
            what contract-go writes for bare keys and what IBM documents for certificates).
    """
    if isinstance(key, x509.Certificate):
        data = key.public_bytes(serialization.Encoding.PEM)
    elif isinstance(key, rsa.RSAPublicKey):
        data = public_key_pem(key)
    else:
        raise ContractError("a signing key must be an RSA public key or a certificate")
    return data.decode("ascii") if pem else base64.b64encode(data).decode("ascii")


def _b64(value: str) -> bytes | None:
    compact = "".join(value.split())
    if not compact:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_pem(data: bytes, prefix: str) -> SigningKey | None:
    text = data.strip()
    if text.startswith(b"-----BEGIN CERTIFICATE-----"):
        try:
            cert = x509.load_pem_x509_certificate(text)
        except ValueError:
            raise ContractError("signingKey holds a PEM certificate that does not parse") from None
        key = cert.public_key()
        return SigningKey(_rsa(key), cert, f"{prefix}certificate")
    if text.startswith(b"-----BEGIN PUBLIC KEY-----") or text.startswith(
        b"-----BEGIN RSA PUBLIC KEY-----"
    ):
        try:
            loaded = serialization.load_pem_public_key(text)
        except ValueError:
            raise ContractError("signingKey holds a PEM public key that does not parse") from None
        return SigningKey(_rsa(loaded), None, f"{prefix}public-key")
    return None


def _rsa(key: object) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise ContractError("signingKey is not an RSA key: contract signatures use RSA")
    if key.key_size < MIN_RSA_BITS:
        raise ContractError(
            f"signingKey has {key.key_size} bits; at least {MIN_RSA_BITS} are required"
        )
    return key


def decode_signing_key(value: str) -> SigningKey:
    """Decode a ``signingKey`` value in any of its forms (see :class:`SigningKey`).

    ``\\r\\n`` line ends and indentation inside the PEM are accepted, as HPVS accepts them.

    Raises:
        ContractError: none of the forms, or not an RSA key of at least 2048 bits.
    """
    if not isinstance(value, str):
        raise ContractError("signingKey must be a string (PEM or base64)")
    raw = value.strip().encode("utf-8")
    if raw.startswith(b"-----BEGIN"):
        pem = b"\n".join(line.strip() for line in raw.splitlines() if line.strip())
        found = _from_pem(pem, "pem-")
        if found is not None:
            return found
        raise ContractError("signingKey is PEM but neither a PUBLIC KEY nor a CERTIFICATE")
    once = _b64(value)
    if once is not None:
        found = _from_pem(once, "base64-")
        if found is not None:
            return found
        twice = _b64(once.decode("ascii", errors="replace"))
        if twice is not None:
            found = _from_pem(twice, "double-base64-")
            if found is not None:
                return found
    raise ContractError(
        "signingKey is not a PEM public key, a PEM certificate, or base64 of either"
    )


def signature_payload(workload: str, env: str) -> bytes:
    """The signed bytes: UTF-8 of ``workload`` then ``env``, nothing between (reference §3)."""
    if not isinstance(workload, str) or not isinstance(env, str):
        raise ContractError("the workload and env values must be strings to be signed")
    return (workload + env).encode("utf-8")


def sign_sections(workload: str, env: str, private_key: rsa.RSAPrivateKey) -> str:
    """``envWorkloadSignature`` for these values: base64 of RSA-PKCS1v15-SHA256, one line."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ContractError("the signing key must be an RSA private key")
    signature = private_key.sign(signature_payload(workload, env), PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify_sections(workload: str, env: str, signature: str, public_key: rsa.RSAPublicKey) -> None:
    """Check ``envWorkloadSignature`` over ``workload``‖``env``.

    Raises:
        SignatureMismatch: the signature is not base64, or does not verify with ``public_key``.
    """
    raw = _b64(signature) if isinstance(signature, str) else None
    if raw is None:
        raise SignatureMismatch("envWorkloadSignature is not standard base64")
    try:
        public_key.verify(raw, signature_payload(workload, env), PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureMismatch(
            "envWorkloadSignature does not verify over workload and env with this signing key: "
            "a section was changed after signing, or the key is not the signer's"
        ) from None
