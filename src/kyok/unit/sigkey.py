"""Administrator signature-key files: a PKCS#8 encrypted PEM private key and a PEM public key.

``kyok ceremony sigkey create`` writes the private key (mode 0600, encrypted under the
custodian's passphrase) and its public key beside it (``<name>.pub.pem``). Only the public key
ever reaches the unit.
"""

from __future__ import annotations

from pathlib import Path

from kyok.crypto.sign import SignatureAlgorithm, SigningKey, VerifyingKey
from kyok.errors import InvalidInput
from kyok.unit.files import write_private, write_public

ADMIN_ALGORITHMS = (
    SignatureAlgorithm.ED25519,
    SignatureAlgorithm.ECDSA_P256,
    SignatureAlgorithm.ECDSA_P384,
    SignatureAlgorithm.ML_DSA_65,
)


class BadSignatureKey(InvalidInput):
    code = "BAD_SIGNATURE_KEY_ERR"


def public_path_for(private_path: Path) -> Path:
    """``alice.pem`` → ``alice.pub.pem``."""
    p = Path(private_path)
    stem = p.name[: -len(".pem")] if p.name.endswith(".pem") else p.name
    return p.with_name(stem + ".pub.pem")


def create_sigkey(
    path: Path, passphrase: bytes, algorithm: str = "ed25519", *, overwrite: bool = False
) -> VerifyingKey:
    """Make a new administrator key; write the encrypted private key and the public key."""
    if len(passphrase) < 8:
        raise BadSignatureKey("the passphrase must be at least 8 characters")
    try:
        alg = SignatureAlgorithm(algorithm)
    except ValueError:
        raise BadSignatureKey(f"unknown algorithm {algorithm!r}") from None
    if alg not in ADMIN_ALGORITHMS:
        raise BadSignatureKey(f"{algorithm} keys cannot be administrator keys")
    key = SigningKey.generate(alg)
    public = key.verifying_key()
    write_private(Path(path), key.to_encrypted_pem(passphrase), overwrite=overwrite)
    write_public(public_path_for(Path(path)), public.to_pem(), overwrite=overwrite)
    return public


def read_sigkey(path: Path, passphrase: bytes) -> SigningKey:
    """Open an administrator's encrypted private key.

    Raises:
        BadSignatureKey: unreadable, wrong passphrase, damaged or unsupported.
    """
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise BadSignatureKey(f"cannot read {path}: {exc.strerror}") from None
    if b"ENCRYPTED PRIVATE KEY" not in pem:
        raise BadSignatureKey(f"{path} is not an encrypted PKCS#8 private key")
    try:
        key = SigningKey.from_pem(pem, passphrase)
    except ValueError:
        raise BadSignatureKey(f"cannot open {path}: wrong passphrase or damaged file") from None
    if key.algorithm not in ADMIN_ALGORITHMS:
        raise BadSignatureKey(f"{path} holds a key kyok does not accept for administrators")
    return key


def read_public_key(path: Path) -> VerifyingKey:
    """Read a PEM public key.

    Raises:
        BadSignatureKey: unreadable or not a supported public key.
    """
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise BadSignatureKey(f"cannot read {path}: {exc.strerror}") from None
    try:
        return VerifyingKey.from_pem(pem)
    except ValueError:
        raise BadSignatureKey(f"{path} is not a supported PEM public key") from None
