"""Input rules of the key-management API (Key Protect's where it states them, stricter where not).

Every check raises :class:`~kyok.kms.errors.InvalidField` whose ``target`` names the service
parameter; none ever raises another type, whatever it is given (the adapter may pass anything it
parsed). The limits, in one place:

==========================  ===============================================================
input                       rule
==========================  ===============================================================
key name                    2-90 characters, not all blank, no control characters
description                 at most 240 characters, no control characters except tab/newline
alias                       2-90 of ``[A-Za-z0-9_-]``, not a UUID, not a reserved word
                            (case-insensitive); at most 5 per key, 1000 per instance
tags                        at most 30, each 1-30 characters, none of ``< > , : & |``
root key material           16, 24 or 32 bytes
standard key material       1-7,500 bytes
expiration date             timezone-aware and in the future
wrap plaintext (DEK)        1-4,096 bytes (kyok's limit; ``None`` = generate 32 bytes)
caller AAD                  at most 32 strings, each at most 255 characters
ciphertext                  1-4,153 bytes (the largest kyok-wrap-v1 of a 4,096-byte DEK)
limit / offset              1-5,000 / 0-2,147,483,647
key ring id                 2-100 of ``[a-z0-9-]``, starting with a letter or digit
instance id                 1-64 of ``[A-Za-z0-9_-]``, starting with a letter or digit
instance name               1-100 characters, no control characters
==========================  ===============================================================

Text must also be valid Unicode (no lone surrogates) so that every store can hold it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeGuard

from kyok.crypto.aead import OVERHEAD
from kyok.kms.errors import InvalidField
from kyok.unit import wrapping

__all__ = [
    "AAD_ITEM_MAX",
    "AAD_MAX_ITEMS",
    "ALIASES_PER_INSTANCE",
    "ALIASES_PER_KEY",
    "CIPHERTEXT_MAX",
    "DEFAULT_KEY_RING",
    "DESCRIPTION_MAX",
    "GENERATED_KEY_SIZE",
    "KEY_RINGS_PER_INSTANCE",
    "LIMIT_MAX",
    "NAME_MAX",
    "NAME_MIN",
    "OFFSET_MAX",
    "PLAINTEXT_MAX",
    "RESERVED_ALIASES",
    "ROOT_MATERIAL_SIZES",
    "SEALS",
    "STANDARD_MATERIAL_MAX",
    "TAGS_MAX",
    "TAG_FORBIDDEN",
    "TAG_MAX",
    "is_uuid",
    "validate_aad",
    "validate_alias",
    "validate_aliases",
    "validate_ciphertext",
    "validate_description",
    "validate_expiration",
    "validate_instance_id",
    "validate_instance_name",
    "validate_key_ring_id",
    "validate_material",
    "validate_name",
    "validate_page",
    "validate_plaintext",
    "validate_seal",
    "validate_tags",
]

NAME_MIN = 2
NAME_MAX = 90
DESCRIPTION_MAX = 240
ALIASES_PER_KEY = 5
ALIASES_PER_INSTANCE = 1000
RESERVED_ALIASES = frozenset(
    {
        "allowed_ip",
        "key",
        "keys",
        "metadata",
        "policy",
        "policies",
        "registration",
        "registrations",
        "ring",
        "rings",
        "rotate",
        "wrap",
        "unwrap",
        "rewrap",
        "version",
        "versions",
    }
)
TAGS_MAX = 30
TAG_MAX = 30
TAG_FORBIDDEN = frozenset("<>,:&|")
GENERATED_KEY_SIZE = 32
ROOT_MATERIAL_SIZES = (16, 24, 32)
STANDARD_MATERIAL_MAX = 7_500
PLAINTEXT_MAX = 4_096
AAD_MAX_ITEMS = 32
AAD_ITEM_MAX = 255
CIPHERTEXT_MAX = wrapping.HEADER_SIZE + OVERHEAD + PLAINTEXT_MAX
LIMIT_MAX = 5_000
OFFSET_MAX = 2**31 - 1
DEFAULT_KEY_RING = "default"
KEY_RINGS_PER_INSTANCE = 50
SEALS = frozenset({"dev", "shares"})

_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{2,90}")
_KEY_RING_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,99}")
_INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _text(value: object, target: str, *, controls: frozenset[str] = frozenset()) -> str:
    """``value`` as a str that every store can hold; control characters refused."""
    if not isinstance(value, str):
        raise InvalidField(target, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField(target, "must be valid Unicode text") from None
    for ch in value:
        if (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) and ch not in controls:
            raise InvalidField(target, "must not contain control characters")
    return value


def is_uuid(value: str) -> bool:
    """True when ``value`` parses as a UUID in any form Python accepts.

    Args:
        value: the text to look at.

    Returns:
        Whether ``uuid.UUID(value)`` accepts it.
    """
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def validate_name(name: object, target: str = "name") -> str:
    """Check a key name.

    Args:
        name: the proposed name.
        target: the field name reported on failure.

    Returns:
        The name, unchanged.

    Raises:
        InvalidField: not a string, not 2-90 characters, blank, or with control characters.
    """
    text = _text(name, target)
    if not NAME_MIN <= len(text) <= NAME_MAX:
        raise InvalidField(target, f"must be {NAME_MIN} to {NAME_MAX} characters")
    if not text.strip():
        raise InvalidField(target, "must not be blank")
    return text


def validate_description(description: object) -> str | None:
    """Check a key description (``None`` = no description).

    Args:
        description: the proposed description.

    Returns:
        The description, unchanged.

    Raises:
        InvalidField: not a string, longer than 240 characters, or with control characters
            other than tab, CR and LF.
    """
    if description is None:
        return None
    text = _text(description, "description", controls=_ALLOWED_CONTROLS)
    if len(text) > DESCRIPTION_MAX:
        raise InvalidField("description", f"must be at most {DESCRIPTION_MAX} characters")
    return text


def validate_alias(alias: object, target: str = "aliases") -> str:
    """Check one alias.

    Args:
        alias: the proposed alias.
        target: the field name reported on failure.

    Returns:
        The alias, unchanged.

    Raises:
        InvalidField: not 2-90 of ``[A-Za-z0-9_-]``, a UUID, or a reserved word.
    """
    text = _text(alias, target)
    if _ALIAS_RE.fullmatch(text) is None:
        raise InvalidField(target, "an alias is 2 to 90 characters of A-Z, a-z, 0-9, '_' and '-'")
    if is_uuid(text):
        raise InvalidField(target, "an alias must not be a UUID")
    if text.lower() in RESERVED_ALIASES:
        raise InvalidField(target, "this alias is a reserved word")
    return text


def validate_aliases(aliases: object) -> tuple[str, ...]:
    """Check the aliases given when a key is created.

    Args:
        aliases: the proposed aliases (a list).

    Returns:
        The aliases, in the order given.

    Raises:
        InvalidField: not a list of strings, more than 5, a duplicate, or one alias invalid.
    """
    if aliases is None:
        return ()
    if isinstance(aliases, str | bytes) or not isinstance(aliases, Sequence):
        raise InvalidField("aliases", "must be a list of strings")
    if len(aliases) > ALIASES_PER_KEY:
        raise InvalidField("aliases", f"a key can have at most {ALIASES_PER_KEY} aliases")
    checked = tuple(validate_alias(a) for a in aliases)
    if len(set(checked)) != len(checked):
        raise InvalidField("aliases", "aliases must not repeat")
    return checked


def validate_tags(tags: object) -> tuple[str, ...]:
    """Check key tags.

    Args:
        tags: the proposed tags (a list).

    Returns:
        The tags, in the order given.

    Raises:
        InvalidField: not a list of strings, more than 30, or a tag empty, longer than 30
            characters, or containing one of ``< > , : & |`` or a control character.
    """
    if tags is None:
        return ()
    if isinstance(tags, str | bytes) or not isinstance(tags, Sequence):
        raise InvalidField("tags", "must be a list of strings")
    if len(tags) > TAGS_MAX:
        raise InvalidField("tags", f"a key can have at most {TAGS_MAX} tags")
    out = []
    for tag in tags:
        text = _text(tag, "tags")
        if not 1 <= len(text) <= TAG_MAX:
            raise InvalidField("tags", f"each tag must be 1 to {TAG_MAX} characters")
        if TAG_FORBIDDEN.intersection(text):
            raise InvalidField("tags", "tags must not contain < > , : & |")
        out.append(text)
    return tuple(out)


def validate_material(material: object, *, extractable: bool) -> bytes:
    """Check imported key material.

    Args:
        material: the raw key bytes (already base64-decoded by the adapter).
        extractable: True for a standard key, False for a root key.

    Returns:
        The material, unchanged.

    Raises:
        InvalidField: not bytes; a root key not 16/24/32 bytes; a standard key not 1-7,500 bytes.
    """
    if not isinstance(material, bytes):
        raise InvalidField("material", "must be bytes")
    if extractable:
        if not 1 <= len(material) <= STANDARD_MATERIAL_MAX:
            raise InvalidField(
                "material", f"standard key material is 1 to {STANDARD_MATERIAL_MAX} bytes"
            )
    elif len(material) not in ROOT_MATERIAL_SIZES:
        raise InvalidField("material", "root key material is 16, 24 or 32 bytes")
    return material


def validate_expiration(expires_at: object, now: datetime) -> datetime | None:
    """Check an expiration date (``None`` = the key never expires).

    Args:
        expires_at: the proposed expiration date.
        now: the current time.

    Returns:
        The date, unchanged.

    Raises:
        InvalidField: not a timezone-aware datetime, or not after ``now``.
    """
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime):
        raise InvalidField("expires_at", "must be a date and time")
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise InvalidField("expires_at", "must carry a time zone")
    if expires_at <= now:
        raise InvalidField("expires_at", "must be in the future")
    return expires_at


def validate_plaintext(plaintext: object) -> bytes | None:
    """Check a DEK to wrap (``None`` = let the service generate a 32-byte DEK).

    Args:
        plaintext: the DEK to wrap.

    Returns:
        The plaintext, unchanged.

    Raises:
        InvalidField: not bytes, empty, or longer than 4,096 bytes.
    """
    if plaintext is None:
        return None
    if not isinstance(plaintext, bytes):
        raise InvalidField("plaintext", "must be bytes")
    if not 1 <= len(plaintext) <= PLAINTEXT_MAX:
        raise InvalidField("plaintext", f"must be 1 to {PLAINTEXT_MAX} bytes")
    return plaintext


def validate_aad(aad: object) -> tuple[str, ...]:
    """Check caller additional authenticated data (``None`` and ``[]`` are the same).

    Args:
        aad: the caller's AAD list.

    Returns:
        The AAD strings, in order.

    Raises:
        InvalidField: not a list of strings, more than 32 items, or an item over 255 characters.
    """
    if aad is None:
        return ()
    if isinstance(aad, str | bytes) or not isinstance(aad, Sequence):
        raise InvalidField("aad", "must be a list of strings")
    if len(aad) > AAD_MAX_ITEMS:
        raise InvalidField("aad", f"at most {AAD_MAX_ITEMS} values")
    out = []
    for item in aad:
        if not isinstance(item, str):
            raise InvalidField("aad", "must be a list of strings")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidField("aad", "must be valid Unicode text") from None
        if len(item) > AAD_ITEM_MAX:
            raise InvalidField("aad", f"each value is at most {AAD_ITEM_MAX} characters")
        out.append(item)
    return tuple(out)


def validate_ciphertext(ciphertext: object) -> bytes:
    """Check that a ciphertext was given.

    Anything about its content (format, size, version, tag) is judged by unwrap, which fails
    with the one opaque ``UnwrapFailed``.

    Args:
        ciphertext: the wrapped DEK.

    Returns:
        The ciphertext, unchanged.

    Raises:
        InvalidField: not bytes, or empty.
    """
    if not isinstance(ciphertext, bytes):
        raise InvalidField("ciphertext", "must be bytes")
    if not ciphertext:
        raise InvalidField("ciphertext", "is required")
    return ciphertext


def is_int_in(value: object, low: int, high: int) -> TypeGuard[int]:
    """True if ``value`` is an ``int`` (not a ``bool``) from ``low`` to ``high`` inclusive."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def validate_page(limit: object, offset: object) -> tuple[int, int]:
    """Check paging parameters.

    Args:
        limit: page size.
        offset: 0-based start.

    Returns:
        ``(limit, offset)``.

    Raises:
        InvalidField: ``limit`` not an int in 1-5,000 or ``offset`` not an int in
            0-2,147,483,647.
    """
    if not is_int_in(limit, 1, LIMIT_MAX):
        raise InvalidField("limit", f"must be a whole number from 1 to {LIMIT_MAX}")
    if not is_int_in(offset, 0, OFFSET_MAX):
        raise InvalidField("offset", "must be a whole number from 0")
    return limit, offset


def validate_key_ring_id(key_ring_id: object) -> str:
    """Check a key ring id (``default`` passes: it names the built-in ring).

    Args:
        key_ring_id: the id.

    Returns:
        The id, unchanged.

    Raises:
        InvalidField: not 2-100 characters of ``[a-z0-9-]`` starting with a letter or digit.
    """
    text = _text(key_ring_id, "key_ring_id")
    if _KEY_RING_RE.fullmatch(text) is None:
        raise InvalidField(
            "key_ring_id",
            "a key ring id is 2 to 100 characters of a-z, 0-9 and '-', not starting with '-'",
        )
    return text


def validate_instance_id(instance_id: object) -> str:
    """Check an instance id chosen by the caller (normally the service makes a UUID).

    Args:
        instance_id: the id.

    Returns:
        The id, unchanged.

    Raises:
        InvalidField: not 1-64 characters of ``[A-Za-z0-9_-]`` starting with a letter or digit.
    """
    text = _text(instance_id, "instance_id")
    if _INSTANCE_ID_RE.fullmatch(text) is None:
        raise InvalidField(
            "instance_id", "an instance id is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"
        )
    return text


def validate_instance_name(name: object) -> str:
    """Check an instance name.

    Args:
        name: the name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidField: not 1-100 characters, blank, or with control characters.
    """
    text = _text(name, "name")
    if not 1 <= len(text) <= 100 or not text.strip():
        raise InvalidField("name", "an instance name is 1 to 100 characters, not blank")
    return text


def validate_seal(seal: object) -> str:
    """Check the seal provider named for a new instance.

    Args:
        seal: the seal provider's name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidField: not one of :data:`SEALS`.
    """
    if not isinstance(seal, str) or seal not in SEALS:
        raise InvalidField("seal", "must be one of: " + ", ".join(sorted(SEALS)))
    return seal
