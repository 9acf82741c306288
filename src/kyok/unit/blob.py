"""Key blobs: key material sealed under the master key, bound to where it belongs.

Format ``kyok-blob-v1`` (see docs/formats.md)::

    blob = 0x01 || epoch (uint32, big-endian) || kyok-aead-v1(KEK_epoch, material, AAD)
    KEK_epoch = HKDF-SHA256(MK_epoch, info = "kyok/v1/key-blob")
    AAD = blob[0:5] || lp(instance_id, owner_id, blob_id, purpose)

``epoch`` names the master key that sealed the blob, so master-key rotation knows what to
re-encrypt. The AAD ties a blob to its instance, owner (key), id (key version) and purpose: a
blob copied to another row, key or instance does not open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kyok.crypto.aead import OVERHEAD, DerivedKeyAead
from kyok.crypto.encoding import lp
from kyok.crypto.kdf import hkdf_sha256

BLOB_VERSION = 0x01
HEADER_SIZE = 5
KEK_INFO = b"kyok/v1/key-blob"

# What a blob holds. The purpose is bound into the AAD.
PURPOSE_ROOT_KEY = "root-key"
PURPOSE_STANDARD_KEY = "standard-key"
PURPOSE_IMPORT_TOKEN = "import-token"  # noqa: S105 (a purpose name, not a secret)
PURPOSE_AUDIT_SIGNING = "audit-signing"
PURPOSE_UNIT_SECRET = "unit-secret"  # noqa: S105 (a purpose name, not a secret)


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where a blob belongs: bound into its associated data."""

    instance_id: str
    owner_id: str
    id: str
    purpose: str


@dataclass(frozen=True, slots=True)
class SealedBlob:
    """A blob and where it belongs. ``data`` is ciphertext; it is safe to store."""

    ref: BlobRef
    epoch: int
    data: bytes = field(repr=False)


def kek_for(master_key: bytes) -> DerivedKeyAead:
    """The key-encryption AEAD derived from a master key."""
    return DerivedKeyAead(hkdf_sha256(master_key, info=KEK_INFO, length=32))


def header(epoch: int) -> bytes:
    """The 5-byte blob header for ``epoch``."""
    if not (0 < epoch < 2**32):
        raise ValueError("epoch out of range")
    return bytes([BLOB_VERSION]) + epoch.to_bytes(4, "big")


def aad(ref: BlobRef, head: bytes) -> bytes:
    """Associated data of a blob."""
    return head + lp(
        ref.instance_id.encode(), ref.owner_id.encode(), ref.id.encode(), ref.purpose.encode()
    )


def epoch_of(data: bytes) -> int:
    """The master-key epoch named in a blob's header.

    Raises:
        ValueError: not a kyok-blob-v1.
    """
    if len(data) < HEADER_SIZE + OVERHEAD or data[0] != BLOB_VERSION:
        raise ValueError("not a kyok blob")
    return int.from_bytes(data[1:HEADER_SIZE], "big")


def seal(kek: DerivedKeyAead, epoch: int, ref: BlobRef, material: bytes) -> SealedBlob:
    """Seal ``material`` for ``ref`` under ``kek`` (of master-key ``epoch``)."""
    head = header(epoch)
    return SealedBlob(ref, epoch, head + kek.encrypt(material, aad(ref, head)))


def open_(kek: DerivedKeyAead, ref: BlobRef, data: bytes) -> bytes:
    """Open a blob made by :func:`seal`. Raises ``InvalidCiphertext`` on any mismatch."""
    head = data[:HEADER_SIZE]
    return kek.decrypt(data[HEADER_SIZE:], aad(ref, head))
