"""Bring your own key: encrypt key material for import with an import token (the client side).

The flow (Key Protect's secure import; docs/formats.md, "Key import (BYOK)"):

1. ``POST /api/v2/import_token``, then ``GET /api/v2/import_token``: the response carries
   ``payload`` (base64 of a PEM RSA public key; read it with :func:`decode_token_payload`) and
   ``nonce`` (base64; :func:`decode_token_nonce`).
2. :func:`seal_for_import` encrypts your key material ``K`` (16, 24 or 32 bytes) to the public
   key and encrypts the nonce under ``K``, which proves you hold ``K``.
3. Send the returned :class:`ImportFields` (``as_resource()``) in ``POST /api/v2/keys`` with
   ``extractable: false``.

Algorithms (``encryptionAlgorithm``):

* ``RSAES_OAEP_SHA_256`` (Key Protect's default): RSA-OAEP with SHA-256 and MGF1-SHA-256.
* ``RSAES_OAEP_SHA_1`` (Hyper Protect Crypto Services): RSA-OAEP with SHA-1 and MGF1-SHA-1; the
  nonce may also be encrypted with AES-CBC (``nonce_mode="cbc"``). Legacy: prefer the others.
* ``KYOK_HYBRID_MLKEM768_X25519`` (kyok only): ``K`` sealed to the token's hybrid ML-KEM-768 +
  X25519 public key, bound to the token's nonce; resists a future quantum adversary.

The nonce is always encrypted with AES-GCM under ``K`` (random 12-byte IV, no associated data,
tag appended), except with ``nonce_mode="cbc"`` (AES-CBC, PKCS#7 padding, random 16-byte IV).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kyok.crypto import aead, kem, legacy, rsa_oaep
from kyok.crypto.encoding import b64d, b64e

__all__ = [
    "ALGORITHMS",
    "ALG_HYBRID",
    "ALG_OAEP_SHA1",
    "ALG_OAEP_SHA256",
    "HYBRID_AAD_LABEL",
    "ImportFields",
    "decode_hybrid_public_key",
    "decode_token_nonce",
    "decode_token_payload",
    "seal_for_import",
]

ALG_OAEP_SHA256 = "RSAES_OAEP_SHA_256"
ALG_OAEP_SHA1 = "RSAES_OAEP_SHA_1"
ALG_HYBRID = "KYOK_HYBRID_MLKEM768_X25519"
ALGORITHMS = frozenset({ALG_OAEP_SHA256, ALG_OAEP_SHA1, ALG_HYBRID})
HYBRID_AAD_LABEL = b"kyok/import/v1"
KEY_SIZES = (16, 24, 32)
NONCE_MODES = ("gcm", "cbc")
GCM_IV_SIZE = 12
CBC_IV_SIZE = 16
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class ImportFields:
    """The import fields of a key resource, base64-encoded as sent.

    Attributes:
        payload: base64 of the encrypted key material (redacted in repr).
        encrypted_nonce: base64 of the encrypted nonce (``encryptedNonce``).
        iv: base64 of the IV of the nonce encryption (``iv``).
        encryption_algorithm: ``encryptionAlgorithm``.
    """

    payload: str = field(repr=False)
    encrypted_nonce: str
    iv: str
    encryption_algorithm: str

    def as_resource(self) -> dict[str, str]:
        """The fields under their wire names, to merge into the key resource."""
        return {
            "payload": self.payload,
            "encryptedNonce": self.encrypted_nonce,
            "iv": self.iv,
            "encryptionAlgorithm": self.encryption_algorithm,
        }


def _b64_field(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"the token's {what} must be a base64 string")
    try:
        return b64d(value)
    except ValueError:
        raise ValueError(f"the token's {what} is not valid base64") from None


def decode_token_payload(payload_b64: str) -> bytes:
    """The PEM public key in an import token's ``payload`` (base64 of the PEM).

    Raises:
        ValueError: not base64, not a PEM RSA public key, or shorter than 2048 bits.
    """
    pem = _b64_field(payload_b64, "payload")
    _check_rsa(pem)
    return pem


def decode_token_nonce(nonce_b64: str) -> bytes:
    """The raw nonce of an import token's ``nonce`` (base64).

    Raises:
        ValueError: not base64, or empty.
    """
    nonce = _b64_field(nonce_b64, "nonce")
    if not nonce:
        raise ValueError("the token's nonce is empty")
    return nonce


def decode_hybrid_public_key(value_b64: str) -> bytes:
    """A kyok hybrid public key sent base64-encoded (``0x01 || pk_X25519 || pk_ML-KEM-768``).

    Raises:
        ValueError: not base64 or not a kyok hybrid public key.
    """
    raw = _b64_field(value_b64, "hybrid public key")
    try:
        kem.HybridPublicKey.from_bytes(raw)
    except ValueError:
        raise ValueError("the token's hybrid public key is not a kyok hybrid public key") from None
    return raw


def _check_rsa(pem: bytes) -> None:
    if not isinstance(pem, bytes):
        raise ValueError("public_key_pem must be bytes (a PEM 'PUBLIC KEY')")
    try:
        key = rsa_oaep.load_public_key_pem(pem)
    except Exception:  # malformed PEM, unsupported algorithm, not RSA: all the same to a caller
        raise ValueError("public_key_pem is not a PEM RSA public key ('PUBLIC KEY')") from None
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(
            f"the RSA public key has {key.key_size} bits: at least {MIN_RSA_BITS} are required"
        )


def _check_inputs(material: bytes, nonce: bytes, algorithm: str, nonce_mode: str) -> None:
    if not isinstance(material, bytes):
        raise ValueError("material must be bytes")
    if len(material) not in KEY_SIZES:
        raise ValueError(
            f"material is {len(material)} bytes long: import-token key material is 16, 24 or 32 bytes"
        )
    if not isinstance(nonce, bytes) or not nonce:
        raise ValueError("nonce must be the token's nonce, as raw bytes (base64-decode it first)")
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"unknown algorithm {algorithm!r}: use one of {', '.join(sorted(ALGORITHMS))}"
        )
    if nonce_mode not in NONCE_MODES:
        raise ValueError(f"unknown nonce_mode {nonce_mode!r}: use 'gcm' or 'cbc'")
    if nonce_mode == "cbc" and algorithm != ALG_OAEP_SHA1:
        raise ValueError("nonce_mode 'cbc' is only accepted with RSAES_OAEP_SHA_1")


def seal_for_import(
    material: bytes,
    nonce: bytes,
    *,
    public_key_pem: bytes | None = None,
    hybrid_public_key: bytes | None = None,
    algorithm: str = ALG_OAEP_SHA256,
    nonce_mode: str = "gcm",
) -> ImportFields:
    """Encrypt key material and the token's nonce for an import with an import token.

    Args:
        material: the key material ``K``, 16, 24 or 32 bytes (32 recommended).
        nonce: the token's nonce, raw bytes (see :func:`decode_token_nonce`).
        public_key_pem: the token's RSA public key, PEM (see :func:`decode_token_payload`);
            required for the RSAES algorithms.
        hybrid_public_key: the token's kyok hybrid public key, raw bytes; required for
            ``KYOK_HYBRID_MLKEM768_X25519``.
        algorithm: ``RSAES_OAEP_SHA_256`` (default), ``RSAES_OAEP_SHA_1`` or
            ``KYOK_HYBRID_MLKEM768_X25519``.
        nonce_mode: ``"gcm"`` (default) or ``"cbc"`` (only with ``RSAES_OAEP_SHA_1``).

    Returns:
        The base64 fields to send (``payload``, ``encryptedNonce``, ``iv``,
        ``encryptionAlgorithm``).

    Raises:
        ValueError: a bad argument (the message says which); never contains the material.
    """
    _check_inputs(material, nonce, algorithm, nonce_mode)
    if algorithm == ALG_HYBRID:
        if hybrid_public_key is None:
            raise ValueError("KYOK_HYBRID_MLKEM768_X25519 needs hybrid_public_key")
        if not isinstance(hybrid_public_key, bytes):
            raise ValueError("hybrid_public_key must be bytes")
        try:
            recipient = kem.HybridPublicKey.from_bytes(hybrid_public_key)
        except ValueError:
            raise ValueError("hybrid_public_key is not a kyok hybrid public key") from None
        payload = kem.hybrid_seal(recipient, material, aad=HYBRID_AAD_LABEL + nonce)
    else:
        if public_key_pem is None:
            raise ValueError(f"{algorithm} needs public_key_pem (the token's RSA public key)")
        _check_rsa(public_key_pem)
        rsa_key = rsa_oaep.load_public_key_pem(public_key_pem)
        if algorithm == ALG_OAEP_SHA1:
            payload = legacy.oaep_sha1_encrypt(rsa_key, material)
        else:
            payload = rsa_oaep.oaep_encrypt(rsa_key, material)
    if nonce_mode == "cbc":
        iv = os.urandom(CBC_IV_SIZE)
        encrypted_nonce = legacy.aes_cbc_pkcs7_encrypt(material, iv, nonce)
    else:
        iv = os.urandom(GCM_IV_SIZE)
        encrypted_nonce = aead.aes_gcm_encrypt(material, iv, nonce)
    return ImportFields(b64e(payload), b64e(encrypted_nonce), b64e(iv), algorithm)
