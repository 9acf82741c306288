"""Digital signatures: Ed25519, ECDSA P-256/SHA-256, ECDSA P-384/SHA-384 and ML-DSA-65.

Keys travel as standard encodings: public keys as SubjectPublicKeyInfo (DER or PEM), private
keys as PKCS#8 PEM encrypted under a passphrase. A key's *fingerprint* is the hex SHA-256 of its
SubjectPublicKeyInfo DER. ECDSA signatures are DER-encoded; ML-DSA uses the empty context.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from kyok.crypto.errors import InvalidSignature
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.pkcs8 import encrypt_pkcs8

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | mldsa.MLDSA65PrivateKey
_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | mldsa.MLDSA65PublicKey


class SignatureAlgorithm(StrEnum):
    """The signature algorithms kyok accepts, by their kyok names."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ML_DSA_65 = "ml-dsa-65"


_CURVES: dict[SignatureAlgorithm, tuple[type[ec.EllipticCurve], hashes.HashAlgorithm]] = {
    SignatureAlgorithm.ECDSA_P256: (ec.SECP256R1, hashes.SHA256()),
    SignatureAlgorithm.ECDSA_P384: (ec.SECP384R1, hashes.SHA384()),
}


def _algorithm_of(key: _PrivateKey | _PublicKey) -> SignatureAlgorithm:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return SignatureAlgorithm.ED25519
    if isinstance(key, mldsa.MLDSA65PrivateKey | mldsa.MLDSA65PublicKey):
        return SignatureAlgorithm.ML_DSA_65
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return SignatureAlgorithm.ECDSA_P256
        if isinstance(key.curve, ec.SECP384R1):
            return SignatureAlgorithm.ECDSA_P384
    raise ValueError("unsupported signature key type")


@dataclass(frozen=True)
class VerifyingKey:
    """A public signature key."""

    algorithm: SignatureAlgorithm
    der: bytes

    def __post_init__(self) -> None:
        # The label must match the key: a mismatch would verify under the wrong hash (P-384
        # label on a P-256 key) or escape verify() as a KeyError (Ed25519 label on an EC key).
        if not isinstance(self.der, bytes):
            raise TypeError("der must be bytes")
        try:
            key = serialization.load_der_public_key(self.der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError("not a public key in SubjectPublicKeyInfo DER") from exc
        supported = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | mldsa.MLDSA65PublicKey
        if not isinstance(key, supported) or _algorithm_of(key) != self.algorithm:
            raise ValueError("the algorithm does not match the key")

    @classmethod
    def from_der(cls, der: bytes) -> VerifyingKey:
        """Load a SubjectPublicKeyInfo DER public key of a supported algorithm."""
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError("not a public key in SubjectPublicKeyInfo DER") from exc
        if not isinstance(
            key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | mldsa.MLDSA65PublicKey
        ):
            raise ValueError("unsupported public key type")
        return cls(_algorithm_of(key), der)

    @classmethod
    def from_pem(cls, pem: bytes) -> VerifyingKey:
        """Load a PEM ``PUBLIC KEY`` of a supported algorithm."""
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError("not a PEM public key") from exc
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls.from_der(der)

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the SubjectPublicKeyInfo DER."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(self.der)
        return digest.finalize().hex()

    def to_pem(self) -> bytes:
        """PEM ``PUBLIC KEY`` encoding."""
        return self._key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _key(self) -> _PublicKey:
        key = serialization.load_der_public_key(self.der)
        assert isinstance(
            key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | mldsa.MLDSA65PublicKey
        )
        return key

    def verify(self, signature: bytes, message: bytes) -> None:
        """Verify ``signature`` over ``message``.

        Raises:
            InvalidSignature: the signature does not verify (whatever the reason).
        """
        key = self._key()
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(_CURVES[self.algorithm][1]))
            else:
                key.verify(signature, message)
        except (_CryptographyInvalidSignature, ValueError):
            raise InvalidSignature() from None


class SigningKey:
    """A private signature key. Its repr is redacted and it cannot be pickled."""

    __slots__ = ("_key", "algorithm")

    def __init__(self, key: _PrivateKey) -> None:
        self._key = key
        self.algorithm = _algorithm_of(key)

    @classmethod
    def generate(
        cls, algorithm: SignatureAlgorithm | str = SignatureAlgorithm.ED25519
    ) -> SigningKey:
        """A fresh key of ``algorithm``."""
        alg = SignatureAlgorithm(algorithm)
        if alg is SignatureAlgorithm.ED25519:
            return cls(ed25519.Ed25519PrivateKey.generate())
        if alg is SignatureAlgorithm.ML_DSA_65:
            return cls(mldsa.MLDSA65PrivateKey.generate())
        return cls(ec.generate_private_key(_CURVES[alg][0]()))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None) -> SigningKey:
        """Load a PKCS#8 PEM private key (encrypted when ``passphrase`` is given).

        Raises:
            ValueError: wrong passphrase, damaged file or unsupported key type.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(
                "cannot open the private key: wrong passphrase or damaged file"
            ) from exc
        if not isinstance(
            key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | mldsa.MLDSA65PrivateKey
        ):
            raise ValueError("unsupported private key type")
        return cls(key)

    def to_encrypted_pem(self, passphrase: bytes, params: ScryptParams | None = None) -> bytes:
        """PKCS#8 PEM encrypted under ``passphrase`` (PBES2 with scrypt and AES-256-CBC; see
        :mod:`kyok.crypto.pkcs8`). ``openssl pkey`` and ``cryptography`` read it."""
        der = self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return encrypt_pkcs8(der, passphrase, params)

    def verifying_key(self) -> VerifyingKey:
        """The matching public key."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return VerifyingKey(self.algorithm, der)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``."""
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(message, ec.ECDSA(_CURVES[self.algorithm][1]))
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(algorithm={self.algorithm.value!r}, key=<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")
