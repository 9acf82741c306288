"""Master-key part files: what a custodian keeps on their own machine.

A part is 32 random bytes made on the custodian's machine (``kyok ceremony keypart create``),
stored only encrypted under the custodian's passphrase. File format ``kyok-keypart/1`` (JSON)::

    {"format": "kyok-keypart/1", "label": "...", "created": "<RFC 3339>", "kcv": "<16 hex>",
     "kdf": {"name": "scrypt", "log2_n": 17, "r": 8, "p": 1, "salt": "<b64, 16 bytes>"},
     "ciphertext": "<b64 kyok-aead-v1 of the 32-byte part>",
     "checksum": "<hex SHA-256 of the canonical JSON of every other field>"}

The AEAD key is scrypt(passphrase, salt); the associated data is the canonical JSON of every
field but ``ciphertext`` and ``checksum``, so the label, KCV and parameters cannot be swapped.
The checksum (a plain SHA-256, no key) tells accidental damage (checksum fails) from a wrong
passphrase (checksum holds, decryption fails). A deliberate edit with a recomputed checksum is
still refused by the authenticated encryption, reported as a wrong passphrase: without the
passphrase nobody can tell the two apart.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes

from kyok.crypto.encoding import b64d, b64e, canonical_json
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.mkvp import kcv as part_kcv
from kyok.crypto.pbe import new_salt, pbe_decrypt, pbe_encrypt
from kyok.unit.errors import BadKeyPart
from kyok.unit.files import write_private

FORMAT = "kyok-keypart/1"
PART_SIZE = 32
LABEL_MAX = 64


class KeyPart:
    """A decrypted master-key part. Redacted repr; cannot be pickled."""

    __slots__ = ("_part", "label")

    def __init__(self, part: bytes, label: str = "") -> None:
        if len(part) != PART_SIZE:
            raise ValueError("a master-key part is 32 bytes")
        self._part = part
        self.label = label

    @classmethod
    def generate(cls, label: str = "") -> KeyPart:
        """A new random part."""
        return cls(os.urandom(PART_SIZE), label)

    @property
    def kcv(self) -> str:
        """The part's key check value."""
        return part_kcv(self._part)

    def secret(self) -> bytes:
        """The raw part. Only the custodian's own tooling and the unit call this."""
        return self._part

    def __repr__(self) -> str:
        return f"KeyPart(label={self.label!r}, kcv={self.kcv!r}, part=<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key parts cannot be pickled")


def _checksum(fields: dict[str, Any]) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical_json(fields))
    return digest.finalize().hex()


def encrypt_part(part: KeyPart, passphrase: bytes, *, params: ScryptParams | None = None) -> str:
    """The JSON text of a part file holding ``part`` under ``passphrase``."""
    if len(passphrase) < 8:
        raise ValueError("the passphrase must be at least 8 characters")
    if len(part.label) > LABEL_MAX or not part.label.isprintable():
        raise ValueError(f"labels are up to {LABEL_MAX} printable characters")
    params = params or ScryptParams()
    salt = new_salt()
    header: dict[str, Any] = {
        "format": FORMAT,
        "label": part.label,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kcv": part.kcv,
        "kdf": {
            "name": "scrypt",
            "log2_n": params.log2_n,
            "r": params.r,
            "p": params.p,
            "salt": b64e(salt),
        },
    }
    ciphertext = pbe_encrypt(passphrase, salt, params, part.secret(), canonical_json(header))
    body = {**header, "ciphertext": b64e(ciphertext)}
    return json.dumps({**body, "checksum": _checksum(body)}, indent=2, sort_keys=True) + "\n"


def decrypt_part(text: str | bytes, passphrase: bytes) -> KeyPart:
    """Open a part file.

    Raises:
        BadKeyPart: "damaged" (not JSON, wrong format, checksum fails, inconsistent contents)
            or "wrong passphrase" — each with a message that says which.
    """
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadKeyPart("the key-part file is damaged: it is not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise BadKeyPart("this is not a kyok key-part file")
    checksum = obj.pop("checksum", None)
    if not isinstance(checksum, str) or _checksum(obj) != checksum:
        raise BadKeyPart("the key-part file is damaged: its checksum does not match")
    try:
        kdf = obj["kdf"]
        if kdf.get("name") != "scrypt":
            raise BadKeyPart("the key-part file uses an unknown key derivation")
        params = ScryptParams(int(kdf["log2_n"]), int(kdf["r"]), int(kdf["p"]))
        salt = b64d(kdf["salt"])
        ciphertext = b64d(obj["ciphertext"])
        header = {k: v for k, v in obj.items() if k != "ciphertext"}
        label = str(obj.get("label", ""))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BadKeyPart("the key-part file is damaged: a field is missing or malformed") from None
    try:
        secret = pbe_decrypt(passphrase, salt, params, ciphertext, canonical_json(header))
    except InvalidCiphertext:
        raise BadKeyPart("wrong passphrase for this key-part file") from None
    if len(secret) != PART_SIZE:
        raise BadKeyPart("the key-part file is damaged: the part has the wrong size")
    part = KeyPart(secret, label)
    if part.kcv != obj.get("kcv"):
        raise BadKeyPart("the key-part file is damaged: the part does not match its check value")
    return part


def peek(text: str | bytes) -> dict[str, Any]:
    """The public fields of a part file (label, created, kcv) without a passphrase."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadKeyPart("the key-part file is damaged: it is not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise BadKeyPart("this is not a kyok key-part file")
    return {k: obj.get(k) for k in ("label", "created", "kcv")}


def write_part_file(
    path: Path,
    part: KeyPart,
    passphrase: bytes,
    *,
    overwrite: bool = False,
    params: ScryptParams | None = None,
) -> None:
    """Encrypt ``part`` and write it to ``path`` (mode 0600)."""
    write_private(path, encrypt_part(part, passphrase, params=params).encode(), overwrite=overwrite)


def read_part_file(path: Path, passphrase: bytes) -> KeyPart:
    """Read and decrypt a part file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadKeyPart(f"cannot read {path}: {exc.strerror}") from None
    return decrypt_part(data, passphrase)
