"""Key import with an import token ("bring your own key"): the unit's side.

Key Protect's secure import (docs/formats.md, "Key import (BYOK)"): the server makes an RSA key
pair and a random nonce; the client encrypts its key material ``K`` (16, 24 or 32 bytes) to the
public key with RSA-OAEP and encrypts the nonce under ``K`` (proof that it holds ``K``):

* ``RSAES_OAEP_SHA_256``: payload = RSA-OAEP(SHA-256, MGF1-SHA-256, empty label) of ``K``;
  nonce under AES-GCM (random 12-byte IV, no AAD, tag appended).
* ``RSAES_OAEP_SHA_1`` (Hyper Protect Crypto Services): RSA-OAEP(SHA-1, MGF1-SHA-1) of ``K``;
  nonce under AES-GCM as above, or AES-CBC with PKCS#7 padding and a random 16-byte IV.
* ``KYOK_HYBRID_MLKEM768_X25519`` (kyok's post-quantum extension): payload =
  ``hybrid_seal(hybrid public key, K, aad = "kyok/import/v1" || nonce)`` (kyok-hybrid-seal-v1,
  empty info), so a payload made for one token never opens under another; nonce under AES-GCM.

An import token's private half is one blob (purpose ``import-token``) holding the
*kyok-import-key-v1* encoding::

    material = 0x01 || lp(rsa_private_pkcs8_der, x25519_private (32), mlkem768_seed (64))

This module is pure (no state, no I/O); :class:`kyok.unit.unit.CryptoUnit` seals and opens the
blobs around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, rsa, x25519

from kyok.crypto import aead, kem, legacy, rsa_oaep
from kyok.crypto.encoding import ct_equal, lp
from kyok.crypto.errors import InvalidCiphertext
from kyok.unit.errors import (
    ImportAlgorithmUnknown,
    ImportKeyLength,
    ImportNonceMismatch,
    ImportNonceUndecryptable,
    ImportPayloadInvalid,
    ImportRejected,
)

__all__ = [
    "AAD_LABEL",
    "ALGORITHMS",
    "ALG_HYBRID",
    "ALG_OAEP_SHA1",
    "ALG_OAEP_SHA256",
    "MATERIAL_VERSION",
    "NONCE_SIZE",
    "ROOT_KEY_SIZES",
    "ImportAlgorithmUnknown",
    "ImportKeyLength",
    "ImportNonceMismatch",
    "ImportNonceUndecryptable",
    "ImportPayloadInvalid",
    "ImportPrivateKeys",
    "ImportPublicKeys",
    "ImportRejected",
    "WrappedImport",
    "generate_import_keys",
    "hybrid_aad",
    "open_import",
    "open_import_with",
]

ALG_OAEP_SHA256 = "RSAES_OAEP_SHA_256"
ALG_OAEP_SHA1 = "RSAES_OAEP_SHA_1"
ALG_HYBRID = "KYOK_HYBRID_MLKEM768_X25519"
ALGORITHMS = frozenset({ALG_OAEP_SHA256, ALG_OAEP_SHA1, ALG_HYBRID})
ROOT_KEY_SIZES = (16, 24, 32)
NONCE_SIZE = 12
AAD_LABEL = b"kyok/import/v1"
MATERIAL_VERSION = 0x01
MAX_NONCE = 256  # the token's nonce is NONCE_SIZE bytes; anything this long is a misuse
_GCM_IV_SIZES = range(8, 129)  # what cryptography's AESGCM accepts
_CBC_IV_SIZE = 16


@dataclass(frozen=True)
class ImportPublicKeys:
    """The public half of an import token.

    Attributes:
        rsa_spki_der: the RSA public key, SubjectPublicKeyInfo DER.
        hybrid: the kyok hybrid public key, ``0x01 || pk_X25519 || pk_ML-KEM-768`` (1217 bytes).
    """

    rsa_spki_der: bytes
    hybrid: bytes

    def rsa_pem(self) -> bytes:
        """The RSA public key as PEM ``PUBLIC KEY`` (what Key Protect's ``payload`` carries,
        base64-encoded once more)."""
        key = serialization.load_der_public_key(self.rsa_spki_der)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("not an RSA public key")
        return rsa_oaep.public_key_pem(key)


@dataclass(frozen=True)
class WrappedImport:
    """What a client sends to import key material with a token (already base64-decoded).

    Attributes:
        algorithm: ``encryptionAlgorithm``, one of :data:`ALGORITHMS`.
        payload: the encrypted key material (``payload``).
        encrypted_nonce: the token's nonce encrypted under the key material (``encryptedNonce``).
        iv: the IV of that encryption (``iv``).
    """

    algorithm: str
    payload: bytes = field(repr=False)
    encrypted_nonce: bytes
    iv: bytes


class ImportPrivateKeys:
    """The private half of an import token, parsed. Redacted repr; cannot be pickled."""

    __slots__ = ("_hybrid", "_rsa")

    def __init__(self, rsa_key: rsa.RSAPrivateKey, hybrid: kem.HybridPrivateKey) -> None:
        self._rsa = rsa_key
        self._hybrid = hybrid

    @classmethod
    def from_material(cls, material: bytes) -> ImportPrivateKeys:
        """Parse the kyok-import-key-v1 encoding.

        Raises:
            ValueError: not kyok-import-key-v1 (wrong version, lengths, trailing bytes, keys).
        """
        if len(material) < 1 or material[0] != MATERIAL_VERSION:
            raise ValueError("not kyok-import-key-v1 material")
        rsa_der, x_private, mlkem_seed = _split_lp(bytes(material[1:]), 3)
        try:
            rsa_key = rsa_oaep.load_private_key_der(rsa_der)
            hybrid = kem.HybridPrivateKey.from_private_bytes(x_private, mlkem_seed)
        except (ValueError, TypeError):
            raise ValueError("kyok-import-key-v1 material holds a malformed key") from None
        if rsa_key.key_size < rsa_oaep.MIN_BITS:
            raise ValueError("kyok-import-key-v1 material holds a too short RSA key")
        return cls(rsa_key, hybrid)

    def public_keys(self) -> ImportPublicKeys:
        """The matching public keys."""
        spki = self._rsa.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return ImportPublicKeys(spki, self._hybrid.public_key().to_bytes())

    def decrypt_payload(self, algorithm: str, payload: bytes, nonce: bytes) -> bytes:
        """Decrypt ``payload`` for ``algorithm``.

        Raises:
            ImportAlgorithmUnknown: ``algorithm`` is not one of :data:`ALGORITHMS`.
            ImportPayloadInvalid: it does not decrypt.
        """
        try:
            if algorithm == ALG_OAEP_SHA256:
                return rsa_oaep.oaep_decrypt(self._rsa, payload)
            if algorithm == ALG_OAEP_SHA1:
                return legacy.oaep_sha1_decrypt(self._rsa, payload)
            if algorithm == ALG_HYBRID:
                return kem.hybrid_open(self._hybrid, payload, aad=hybrid_aad(nonce))
        except InvalidCiphertext:
            raise ImportPayloadInvalid() from None
        raise ImportAlgorithmUnknown()

    def __repr__(self) -> str:
        return "ImportPrivateKeys(<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


def _split_lp(data: bytes, count: int) -> list[bytes]:
    """Inverse of ``lp`` for exactly ``count`` parts and nothing after them."""
    parts: list[bytes] = []
    pos = 0
    for _ in range(count):
        if len(data) - pos < 4:
            raise ValueError("not kyok-import-key-v1 material")
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if len(data) - pos < size:
            raise ValueError("not kyok-import-key-v1 material")
        parts.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise ValueError("not kyok-import-key-v1 material")
    return parts


def hybrid_aad(nonce: bytes) -> bytes:
    """The associated data of a hybrid import payload: ``"kyok/import/v1" || nonce``."""
    return AAD_LABEL + nonce


def generate_import_keys(rsa_bits: int = 4096) -> tuple[bytes, ImportPublicKeys]:
    """Make the key pairs of a new import token.

    Args:
        rsa_bits: RSA modulus size, 2048, 3072 or 4096 (Key Protect uses 4096).

    Returns:
        ``(private_material, public_keys)``: the kyok-import-key-v1 encoding of the private
        keys (to be sealed into an ``import-token`` blob, never stored in the clear) and the
        public keys to hand out.

    Raises:
        ValueError: ``rsa_bits`` is not 2048, 3072 or 4096 (multiples of 1024, at least 2048).
    """
    rsa_key = rsa_oaep.generate_rsa_key(rsa_bits)
    x_private = x25519.X25519PrivateKey.generate()
    mlkem_private = mlkem.MLKEM768PrivateKey.generate()
    material = bytes([MATERIAL_VERSION]) + lp(
        rsa_oaep.private_key_der(rsa_key),
        x_private.private_bytes_raw(),
        mlkem_private.private_bytes_raw(),
    )
    keys = ImportPrivateKeys(rsa_key, kem.HybridPrivateKey(x_private, mlkem_private))
    return material, keys.public_keys()


def _check_nonce(nonce: bytes) -> None:
    if not isinstance(nonce, bytes) or not (1 <= len(nonce) <= MAX_NONCE):
        raise ValueError(f"the token's nonce must be 1 to {MAX_NONCE} bytes")


def _open_nonce(algorithm: str, key: bytes, encrypted_nonce: bytes, iv: bytes) -> bytes:
    """Decrypt ``encrypted_nonce``: AES-GCM, and for SHA_1 (HPCS) also AES-CBC-PKCS#7."""
    if len(iv) in _GCM_IV_SIZES:
        try:
            return aead.aes_gcm_decrypt(key, iv, encrypted_nonce)
        except InvalidCiphertext:
            pass
    if algorithm == ALG_OAEP_SHA1 and len(iv) == _CBC_IV_SIZE:
        try:
            return legacy.aes_cbc_pkcs7_decrypt(key, iv, encrypted_nonce)
        except InvalidCiphertext:
            pass
    raise ImportNonceUndecryptable()


def open_import_with(keys: ImportPrivateKeys, wrapped: WrappedImport, nonce: bytes) -> bytes:
    """:func:`open_import` with already parsed private keys."""
    _check_nonce(nonce)
    if wrapped.algorithm not in ALGORITHMS:
        raise ImportAlgorithmUnknown()
    material = keys.decrypt_payload(wrapped.algorithm, wrapped.payload, nonce)
    if len(material) not in ROOT_KEY_SIZES:
        raise ImportKeyLength(
            f"the key material is {len(material)} bytes long: it must be 16, 24 or 32 bytes"
        )
    opened = _open_nonce(wrapped.algorithm, material, wrapped.encrypted_nonce, wrapped.iv)
    if not ct_equal(opened, nonce):
        raise ImportNonceMismatch()
    return material


def open_import(private_material: bytes, wrapped: WrappedImport, nonce: bytes) -> bytes:
    """Check an import and return the key material ``K``.

    The checks, in this order: the algorithm is known; the payload decrypts under the token's
    key (RSA-OAEP with the algorithm's hash, or the hybrid open with associated data
    :func:`hybrid_aad`); ``K`` is 16, 24 or 32 bytes; ``encryptedNonce``/``iv`` decrypt under
    ``K`` (AES-GCM with an 8 to 128-byte IV; for ``RSAES_OAEP_SHA_1``, when AES-GCM fails and
    the IV is 16 bytes, also AES-CBC with PKCS#7 padding); the result equals ``nonce``
    (constant-time comparison).

    Args:
        private_material: the token's kyok-import-key-v1 private material (from its blob).
        wrapped: what the client sent.
        nonce: the token's nonce.

    Raises:
        ImportAlgorithmUnknown, ImportPayloadInvalid, ImportKeyLength, ImportNonceUndecryptable,
        ImportNonceMismatch: the check that failed (all are :class:`ImportRejected`).
        ValueError: ``private_material`` is not kyok-import-key-v1, or ``nonce`` is empty or
            longer than 256 bytes (misuse, not the client's fault).
    """
    _check_nonce(nonce)
    if wrapped.algorithm not in ALGORITHMS:
        raise ImportAlgorithmUnknown()
    return open_import_with(ImportPrivateKeys.from_material(private_material), wrapped, nonce)
