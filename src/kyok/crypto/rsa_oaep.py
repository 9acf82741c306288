"""RSA-OAEP with SHA-256 (and MGF1-SHA-256), empty label: the Key Protect import-token cipher.

The SHA-1 variant, needed only because Hyper Protect Crypto Services clients send it, lives in
:mod:`kyok.crypto.legacy`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kyok.crypto.errors import InvalidCiphertext

MIN_BITS = 2048


def generate_rsa_key(bits: int = 4096) -> rsa.RSAPrivateKey:
    """A new RSA key with public exponent 65537."""
    if bits < MIN_BITS or bits % 1024:
        raise ValueError("RSA keys are 2048, 3072 or 4096 bits (multiples of 1024, at least 2048)")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _oaep(algorithm: hashes.HashAlgorithm) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=algorithm), algorithm=algorithm, label=None)


def oaep_encrypt(
    public_key: rsa.RSAPublicKey, plaintext: bytes, *, _hash: hashes.HashAlgorithm | None = None
) -> bytes:
    """RSA-OAEP-SHA256 encryption of ``plaintext`` (at most ``k - 66`` bytes)."""
    return public_key.encrypt(plaintext, _oaep(_hash or hashes.SHA256()))


def oaep_decrypt(
    private_key: rsa.RSAPrivateKey, ciphertext: bytes, *, _hash: hashes.HashAlgorithm | None = None
) -> bytes:
    """RSA-OAEP-SHA256 decryption.

    Raises:
        InvalidCiphertext: for any decryption or padding failure.
    """
    if len(ciphertext) != (private_key.key_size + 7) // 8:
        raise InvalidCiphertext()
    try:
        return private_key.decrypt(ciphertext, _oaep(_hash or hashes.SHA256()))
    except ValueError:
        raise InvalidCiphertext() from None


def public_key_pem(public_key: rsa.RSAPublicKey) -> bytes:
    """PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo) encoding."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_der(private_key: rsa.RSAPrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER, for sealing inside a unit key blob only."""
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_der(der: bytes) -> rsa.RSAPrivateKey:
    """Inverse of :func:`private_key_der`."""
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key_pem(pem: bytes) -> rsa.RSAPublicKey:
    """Load a PEM SubjectPublicKeyInfo RSA public key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key
