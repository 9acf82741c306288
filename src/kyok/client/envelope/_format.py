"""The kyok-envelope/1 byte layout: header, key slots, derivations, nonces (docs/formats.md §17).

::

    file    = fixed header (112 bytes) || key slot A (C bytes) || key slot B (C bytes) || segments
    fixed   = "KYOKENV" || 0x01 || segment_size u32 || salt[32] || aad_commitment[32]
              || key_commitment[32] || slot_capacity C u16 || 0x0000
    bound   = fixed[0:76]                                     (never changes; AAD of every segment)
    PRK     = HKDF-Extract(salt, DEK)
    CK      = HKDF-Expand(PRK, "kyok/envelope/v1/content-key" || bound, 32)
    commit  = HKDF-Expand(PRK, "kyok/envelope/v1/key-commitment" || bound, 32)
    segment i = AES-256-GCM(CK, nonce = 000000 || i u64 || last u8, plaintext_i, aad = bound)

Every segment but the last holds exactly ``segment_size`` plaintext bytes; the last holds fewer
(0 to ``segment_size - 1``), so a file whose length is a multiple of the segment size ends with
an empty final segment and the length alone tells where the last segment starts.

A key slot holds the key id, the key version id and the wrapped DEK, with a generation number
and a check value; the slot with the highest generation whose check verifies is the live one.
``rewrap_file`` writes the other slot, so a torn write leaves the previous one intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kyok.client.envelope.errors import InvalidEnvelope
from kyok.crypto.encoding import ct_equal, lp_strings
from kyok.crypto.kdf import hkdf_expand, hkdf_extract

MAGIC = b"KYOKENV"
VERSION = 1
FORMAT_NAME = "kyok-envelope/1"

DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 1 << 12
MAX_SEGMENT_SIZE = 1 << 26

TAG_SIZE = 16
NONCE_SIZE = 12
SALT_SIZE = 32
DIGEST_SIZE = 32
FIXED_SIZE = 112
BOUND_SIZE = 76
KEY_COMMITMENT_OFFSET = 76
SLOT_CAPACITY_OFFSET = 108

DEFAULT_SLOT_CAPACITY = 1024
MIN_SLOT_CAPACITY = 256
MAX_SLOT_CAPACITY = 16384
SLOT_ALIGN = 256
SLOT_CHECK_SIZE = 32
MAX_FIELD = 0xFFFF

AAD_LABEL = b"kyok/envelope/v1/aad"
CONTENT_KEY_INFO = b"kyok/envelope/v1/content-key"
KEY_COMMITMENT_INFO = b"kyok/envelope/v1/key-commitment"
SLOT_LABEL = b"kyok/envelope/v1/slot"


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def check_segment_size(segment_size: int) -> int:
    """``segment_size`` if it is an int in 4 KiB .. 64 MiB, else ``ValueError``/``TypeError``."""
    if isinstance(segment_size, bool) or not isinstance(segment_size, int):
        raise TypeError("segment_size is an int (plaintext bytes per segment)")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(
            f"segment_size must be {MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE} bytes, "
            f"not {segment_size}"
        )
    return segment_size


def normalize_aad(aad: Sequence[str] | None) -> tuple[str, ...]:
    """The AAD strings as a tuple (None and an empty list are the same)."""
    if aad is None:
        return ()
    if isinstance(aad, str | bytes | bytearray):
        raise TypeError("aad is a list of strings, not one string")
    try:
        items = tuple(aad)
    except TypeError:
        raise TypeError("aad is a list of strings") from None
    if not all(isinstance(a, str) for a in items):
        raise TypeError("aad is a list of strings")
    return items


def aad_commitment(aad: tuple[str, ...]) -> bytes:
    """HMAC-SHA256 keyed with the public label ``kyok/envelope/v1/aad`` over ``lp_strings(aad)``."""
    return hkdf_extract(AAD_LABEL, lp_strings(aad))


def segment_nonce(index: int, last: bool) -> bytes:
    """The 12-byte GCM nonce of segment ``index``: 3 zero bytes, the index (u64), the last flag."""
    return b"\x00\x00\x00" + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def derive_keys(dek: bytes, bound: bytes) -> tuple[bytes, bytes]:
    """(content key, key commitment) of a file from its DEK and the bound header bytes."""
    prk = hkdf_extract(bound[12:44], dek)
    content_key = hkdf_expand(prk, info=CONTENT_KEY_INFO + bound, length=32)
    commitment = hkdf_expand(prk, info=KEY_COMMITMENT_INFO + bound, length=DIGEST_SIZE)
    return content_key, commitment


def encode_bound(segment_size: int, salt: bytes, aad_commit: bytes) -> bytes:
    """The first 76 header bytes: magic, version, segment size, salt, AAD commitment."""
    if len(salt) != SALT_SIZE or len(aad_commit) != DIGEST_SIZE:
        raise ValueError("salt and AAD commitment are 32 bytes each")
    return MAGIC + bytes([VERSION]) + _u32(segment_size) + salt + aad_commit


def encode_fixed(bound: bytes, key_commitment: bytes, slot_capacity: int) -> bytes:
    """The 112-byte fixed header."""
    return bound + key_commitment + _u16(slot_capacity) + b"\x00\x00"


@dataclass(frozen=True, slots=True)
class KeySlot:
    """The changeable part of a header: which root key and version wrapped the DEK, and how."""

    generation: int
    key_id: str
    key_version_id: str | None
    wrapped_dek: str


def _slot_body(slot: KeySlot) -> bytes:
    key_id = slot.key_id.encode("utf-8")
    version = (slot.key_version_id or "").encode("utf-8")
    wrapped = slot.wrapped_dek.encode("ascii")
    if not key_id or not wrapped:
        raise ValueError("a key slot needs a key id and a wrapped DEK")
    if max(len(key_id), len(version), len(wrapped)) > MAX_FIELD:
        raise ValueError("a key slot field is longer than 65535 bytes")
    if not 1 <= slot.generation <= 0xFFFFFFFF:
        raise ValueError("slot generation out of range")
    return (
        _u32(slot.generation)
        + _u16(len(key_id))
        + key_id
        + _u16(len(version))
        + version
        + _u16(len(wrapped))
        + wrapped
    )


def capacity_for(slot: KeySlot) -> int:
    """The slot capacity a header needs for ``slot``: at least 1 KiB, in 256-byte steps."""
    need = len(_slot_body(slot)) + SLOT_CHECK_SIZE
    capacity = max(DEFAULT_SLOT_CAPACITY, -(-need // SLOT_ALIGN) * SLOT_ALIGN)
    if capacity > MAX_SLOT_CAPACITY:
        raise ValueError("the key id and wrapped DEK do not fit in a 16 KiB key slot")
    return capacity


def slot_check(fixed: bytes, body: bytes) -> bytes:
    """The 32-byte check value of a key slot (detects torn or damaged slot writes)."""
    return hkdf_extract(SLOT_LABEL, fixed + body)


def encode_slot(fixed: bytes, slot: KeySlot) -> bytes | None:
    """The slot's bytes at the capacity ``fixed`` names, or None if the slot does not fit."""
    capacity = int.from_bytes(fixed[SLOT_CAPACITY_OFFSET : SLOT_CAPACITY_OFFSET + 2], "big")
    body = _slot_body(slot)
    room = capacity - SLOT_CHECK_SIZE
    if len(body) > room:
        return None
    padded = body + bytes(room - len(body))
    return padded + slot_check(fixed, padded)


def empty_slot(capacity: int) -> bytes:
    """An unused slot: zero bytes (its check never verifies)."""
    return bytes(capacity)


def _field(body: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(body):
        raise ValueError("field length out of bounds")
    size = int.from_bytes(body[pos : pos + 2], "big")
    end = pos + 2 + size
    if end > len(body):
        raise ValueError("field out of bounds")
    return body[pos + 2 : end], end


def decode_slot(fixed: bytes, raw: bytes) -> KeySlot | None:
    """The slot in ``raw``, or None when it is unused, torn or damaged."""
    body, check = raw[:-SLOT_CHECK_SIZE], raw[-SLOT_CHECK_SIZE:]
    if not ct_equal(slot_check(fixed, body), check):
        return None
    try:
        generation = int.from_bytes(body[0:4], "big")
        key_id, pos = _field(body, 4)
        version, pos = _field(body, pos)
        wrapped, pos = _field(body, pos)
        if generation == 0 or not key_id or not wrapped or any(body[pos:]):
            return None
        return KeySlot(
            generation,
            key_id.decode("utf-8"),
            version.decode("utf-8") or None,
            wrapped.decode("ascii"),
        )
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    """Everything a header holds, after its structure was checked (not yet authenticated)."""

    fixed: bytes
    segment_size: int
    salt: bytes
    aad_commitment: bytes
    key_commitment: bytes
    slot_capacity: int
    slot: KeySlot
    slot_index: int
    other_slot: KeySlot | None

    @property
    def bound(self) -> bytes:
        """The bytes every segment authenticates as its AAD (``fixed[0:76]``)."""
        return self.fixed[:BOUND_SIZE]

    @property
    def header_size(self) -> int:
        """Bytes before the first segment."""
        return FIXED_SIZE + 2 * self.slot_capacity

    def slot_offset(self, index: int) -> int:
        """Where key slot ``index`` (0 = A, 1 = B) starts in the file."""
        return FIXED_SIZE + index * self.slot_capacity


def check_magic(prefix: bytes) -> None:
    """Raise ``NOT_AN_ENVELOPE``/``UNSUPPORTED_VERSION`` unless ``prefix`` starts a v1 envelope."""
    if not prefix:
        raise InvalidEnvelope("the input is empty: not a kyok envelope", code="NOT_AN_ENVELOPE")
    if prefix[: len(MAGIC)] != MAGIC[: len(prefix)]:
        raise InvalidEnvelope(
            "not a kyok envelope (the file does not start with KYOKENV)", code="NOT_AN_ENVELOPE"
        )
    if len(prefix) > len(MAGIC) and prefix[len(MAGIC)] != VERSION:
        raise InvalidEnvelope(
            f"kyok envelope format version {prefix[len(MAGIC)]} is not supported: this SDK "
            f"reads version {VERSION}; upgrade kyok",
            code="UNSUPPORTED_VERSION",
        )


def _damaged(what: str) -> InvalidEnvelope:
    return InvalidEnvelope(f"the envelope header is damaged: {what}", code="HEADER_DAMAGED")


def parse_fixed(fixed: bytes) -> tuple[int, int]:
    """(segment size, slot capacity) from the 112-byte fixed header, checked."""
    check_magic(fixed[:8])
    if len(fixed) < FIXED_SIZE:
        raise _damaged("it ends inside the fixed header (truncated)")
    segment_size = int.from_bytes(fixed[8:12], "big")
    capacity = int.from_bytes(fixed[SLOT_CAPACITY_OFFSET : SLOT_CAPACITY_OFFSET + 2], "big")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise _damaged(f"segment size {segment_size} is out of range")
    if not MIN_SLOT_CAPACITY <= capacity <= MAX_SLOT_CAPACITY or capacity % SLOT_ALIGN:
        raise _damaged(f"key slot capacity {capacity} is out of range")
    if fixed[110:112] != b"\x00\x00":
        raise _damaged("reserved bytes are not zero")
    return segment_size, capacity


def parse_slots(fixed: bytes, slots: bytes, capacity: int) -> ParsedHeader:
    """The header from its fixed part and both key slots; picks the live slot."""
    segment_size = int.from_bytes(fixed[8:12], "big")
    if len(slots) < 2 * capacity:
        raise _damaged("it ends inside the key slots (truncated)")
    a = decode_slot(fixed, slots[:capacity])
    b = decode_slot(fixed, slots[capacity : 2 * capacity])
    if a is None and b is None:
        raise _damaged("no key slot is intact")
    if b is None or (a is not None and a.generation >= b.generation):
        live, index, other = a, 0, b
    else:
        live, index, other = b, 1, a
    assert live is not None
    return ParsedHeader(
        fixed=fixed,
        segment_size=segment_size,
        salt=fixed[12:44],
        aad_commitment=fixed[44:76],
        key_commitment=fixed[76:108],
        slot_capacity=capacity,
        slot=live,
        slot_index=index,
        other_slot=other,
    )


def ciphertext_layout(body_size: int, segment_size: int) -> tuple[int, int] | None:
    """(segment count, plaintext size) for ``body_size`` bytes of segments, or None if no
    sequence of segments has that length (a truncated or extended file)."""
    full, rest = divmod(body_size, segment_size + TAG_SIZE)
    if rest < TAG_SIZE:
        return None
    return full + 1, full * segment_size + rest - TAG_SIZE


def ciphertext_size(plaintext_size: int, segment_size: int) -> int:
    """Bytes of segments for ``plaintext_size`` bytes of plaintext."""
    return plaintext_size + (plaintext_size // segment_size + 1) * TAG_SIZE
