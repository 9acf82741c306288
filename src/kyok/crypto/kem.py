"""Key encapsulation: X25519, ML-KEM-768 and their hybrid, plus hybrid public-key encryption.

The hybrid KEM ("kyok-hybrid-kem-v1", ML-KEM-768 + X25519) stays confidential as long as either
component holds, so material sent today resists a future quantum adversary::

    (ss_M, ct_M) = ML-KEM-768.Encaps(pk_M)
    e            = fresh X25519 key;  ct_X = e.public;  ss_X = X25519(e, pk_X)
    ss           = HKDF-SHA256(IKM  = ss_M || ss_X,
                               salt = SHA-256(lp(ct_M, ct_X, pk_M, pk_X)),
                               info = "kyok/hybrid-kem/v1/mlkem768-x25519", L = 32)

Binding both ciphertexts and both public keys into the salt ties the secret to this exact
exchange. The encapsulation is ``ct_X (32) || ct_M (1088)``; the public key encoding is
``0x01 || pk_X (32) || pk_M (1184)``.

``hybrid_seal``/``hybrid_open`` encrypt a message to a hybrid public key: the encapsulation,
then kyok-aead-v1 (see :mod:`kyok.crypto.aead`) under a key derived from ``ss`` and ``info``.
"""

from __future__ import annotations

from typing import NoReturn

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.encoding import lp
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import hkdf_sha256

SUITE = b"kyok/hybrid-kem/v1/mlkem768-x25519"
SEAL_INFO = b"kyok/hybrid-seal/v1"
PUBLIC_KEY_VERSION = 0x01
SEAL_VERSION = 0x01
X25519_SIZE = 32
MLKEM768_PUBLIC_SIZE = 1184
MLKEM768_CIPHERTEXT_SIZE = 1088
MLKEM768_SEED_SIZE = 64
PUBLIC_KEY_SIZE = 1 + X25519_SIZE + MLKEM768_PUBLIC_SIZE
ENCAPSULATION_SIZE = X25519_SIZE + MLKEM768_CIPHERTEXT_SIZE


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _raw_x25519(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _combine(ss_m: bytes, ss_x: bytes, ct_m: bytes, ct_x: bytes, pk_m: bytes, pk_x: bytes) -> bytes:
    salt = _sha256(lp(ct_m, ct_x, pk_m, pk_x))
    return hkdf_sha256(ss_m + ss_x, salt=salt, info=SUITE, length=32)


class HybridPublicKey:
    """An ML-KEM-768 + X25519 public key."""

    __slots__ = ("_mlkem", "_x25519")

    def __init__(self, x25519_public: bytes, mlkem_public: bytes) -> None:
        if len(x25519_public) != X25519_SIZE or len(mlkem_public) != MLKEM768_PUBLIC_SIZE:
            raise ValueError("bad hybrid public key sizes")
        self._x25519 = x25519.X25519PublicKey.from_public_bytes(x25519_public)
        self._mlkem = mlkem.MLKEM768PublicKey.from_public_bytes(mlkem_public)

    @classmethod
    def from_bytes(cls, data: bytes) -> HybridPublicKey:
        """Parse ``0x01 || pk_X || pk_M``."""
        if len(data) != PUBLIC_KEY_SIZE or data[0] != PUBLIC_KEY_VERSION:
            raise ValueError("not a kyok hybrid public key")
        return cls(bytes(data[1 : 1 + X25519_SIZE]), bytes(data[1 + X25519_SIZE :]))

    def to_bytes(self) -> bytes:
        """``0x01 || pk_X || pk_M``."""
        return (
            bytes([PUBLIC_KEY_VERSION]) + _raw_x25519(self._x25519) + self._mlkem.public_bytes_raw()
        )

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of :meth:`to_bytes`."""
        return _sha256(self.to_bytes()).hex()

    def encapsulate(self) -> tuple[bytes, bytes]:
        """Return ``(shared_secret, encapsulation)``."""
        pk_x = _raw_x25519(self._x25519)
        pk_m = self._mlkem.public_bytes_raw()
        ss_m, ct_m = self._mlkem.encapsulate()
        ephemeral = x25519.X25519PrivateKey.generate()
        ct_x = _raw_x25519(ephemeral.public_key())
        ss_x = ephemeral.exchange(self._x25519)
        return _combine(ss_m, ss_x, ct_m, ct_x, pk_m, pk_x), ct_x + ct_m


class HybridPrivateKey:
    """An ML-KEM-768 + X25519 private key. Redacted repr; cannot be pickled."""

    __slots__ = ("_mlkem", "_x25519")

    def __init__(
        self, x25519_private: x25519.X25519PrivateKey, mlkem_private: mlkem.MLKEM768PrivateKey
    ) -> None:
        self._x25519 = x25519_private
        self._mlkem = mlkem_private

    @classmethod
    def generate(cls) -> HybridPrivateKey:
        """A fresh key pair."""
        return cls(x25519.X25519PrivateKey.generate(), mlkem.MLKEM768PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, x25519_private: bytes, mlkem_seed: bytes) -> HybridPrivateKey:
        """Load from the raw X25519 scalar (32 bytes) and the ML-KEM-768 seed d || z (64 bytes)."""
        if len(x25519_private) != X25519_SIZE or len(mlkem_seed) != MLKEM768_SEED_SIZE:
            raise ValueError("bad hybrid private key sizes")
        return cls(
            x25519.X25519PrivateKey.from_private_bytes(x25519_private),
            mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed),
        )

    def public_key(self) -> HybridPublicKey:
        """The matching public key."""
        return HybridPublicKey(
            _raw_x25519(self._x25519.public_key()), self._mlkem.public_key().public_bytes_raw()
        )

    def decapsulate(self, encapsulation: bytes) -> bytes:
        """Recover the shared secret.

        Raises:
            InvalidCiphertext: malformed encapsulation. (A well-formed but wrong one yields a
                different secret, which the AEAD that uses it then rejects.)
        """
        if len(encapsulation) != ENCAPSULATION_SIZE:
            raise InvalidCiphertext()
        ct_x, ct_m = bytes(encapsulation[:X25519_SIZE]), bytes(encapsulation[X25519_SIZE:])
        try:
            ss_x = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
            ss_m = self._mlkem.decapsulate(ct_m)
        except ValueError:
            raise InvalidCiphertext() from None
        pk_x = _raw_x25519(self._x25519.public_key())
        pk_m = self._mlkem.public_key().public_bytes_raw()
        return _combine(ss_m, ss_x, ct_m, ct_x, pk_m, pk_x)

    def __repr__(self) -> str:
        return "HybridPrivateKey(<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


def _seal_key(shared_secret: bytes, info: bytes) -> DerivedKeyAead:
    return DerivedKeyAead(hkdf_sha256(shared_secret, info=SEAL_INFO + b"/" + info, length=32))


def hybrid_seal(
    public_key: HybridPublicKey, plaintext: bytes, *, aad: bytes = b"", info: bytes = b""
) -> bytes:
    """Encrypt ``plaintext`` to ``public_key``.

    Returns:
        ``0x01 || encapsulation (1120) || kyok-aead-v1 output``.
    """
    shared, encapsulation = public_key.encapsulate()
    header = bytes([SEAL_VERSION]) + encapsulation
    return header + _seal_key(shared, info).encrypt(plaintext, header + aad)


def hybrid_open(
    private_key: HybridPrivateKey, data: bytes, *, aad: bytes = b"", info: bytes = b""
) -> bytes:
    """Decrypt what :func:`hybrid_seal` made.

    Raises:
        InvalidCiphertext: for any failure.
    """
    if len(data) < 1 + ENCAPSULATION_SIZE or data[0] != SEAL_VERSION:
        raise InvalidCiphertext()
    header = bytes(data[: 1 + ENCAPSULATION_SIZE])
    shared = private_key.decapsulate(header[1:])
    return _seal_key(shared, info).decrypt(bytes(data[len(header) :]), header + aad)
