"""Lenient request parsing, as Key Protect's clients need it (reference §1.3, §1.4).

* Bodies are JSON whatever the ``Content-Type`` says (vendor types, ``application/json``, none).
* A missing body, an empty one, ``null`` and ``{}`` mean the same on action endpoints.
* Field names match case-insensitively (Go sends ``Tags`` and ``KeyRingID``).
* Collections (``{"metadata": {...}, "resources": [...]}``) are checked: ``collectionTotal``
  must equal the number of resources (``COLLECTION_TOTAL_MISMATCH_ERR``).
* Key material sent under an import token (``payload``, ``encryptedNonce``, ``iv``,
  ``encryptionAlgorithm``) is decoded and bundled by :func:`wrapped_import`.

Everything here raises ``kyok.kms.errors`` input errors (400) and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from kyok.errors import InvalidInput
from kyok.kms.errors import BadBody, InvalidField, InvalidQueryParam
from kyok.kms.imports import WrappedImport, validate_wrapped
from kyok.kms.policies import KeyPolicySpec

__all__ = [
    "TOKEN_FIELDS",
    "CollectionTotalMismatch",
    "Fields",
    "NoBody",
    "collection_resources",
    "decode_b64",
    "key_policy_spec",
    "parse_bool_param",
    "parse_int_param",
    "parse_json",
    "parse_prefer",
    "parse_time",
    "wrapped_import",
]

_BAD_BODY = (
    "Invalid body data was passed: Please ensure the data passed had valid formatting "
    "with no invalid characters"
)


class NoBody(InvalidInput):
    """The action needs a body and got none (``NO_BODY_ERR``)."""

    code = "NO_BODY_ERR"

    def __init__(self) -> None:
        super().__init__("Missing body in request")


class CollectionTotalMismatch(InvalidInput):
    """``metadata.collectionTotal`` is not the number of ``resources``."""

    code = "COLLECTION_TOTAL_MISMATCH_ERR"

    def __init__(self) -> None:
        super().__init__("Collection total does not match number of resources")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every body (``json.loads`` with options builds a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(raw: bytes) -> Any:
    """Parse a body as JSON; empty and ``null`` give None.

    Args:
        raw: the body bytes.

    Returns:
        The parsed value, or None.

    Raises:
        BadBody: not UTF-8 JSON (NaN and Infinity are refused too).
    """
    if not raw.strip():
        return None
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody(_BAD_BODY) from None


class Fields(Mapping[str, Any]):
    """A JSON object whose field names match case-insensitively.

    Args:
        obj: the parsed object; None means "no body" (no fields).

    Raises:
        BadBody: ``obj`` is not an object, or names one field twice in different cases.
    """

    def __init__(self, obj: Any) -> None:
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise BadBody(_BAD_BODY + ": a JSON object is expected")
        self._items: dict[str, tuple[str, Any]] = {}
        for key, value in obj.items():
            folded = key.casefold()
            if folded in self._items:
                raise BadBody(_BAD_BODY + f": the field {key!r} is given twice")
            self._items[folded] = (key, value)

    def __getitem__(self, name: str) -> Any:
        return self._items[name.casefold()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._items

    def value(self, name: str) -> Any:
        """The field's value; None when absent or ``null``."""
        item = self._items.get(name.casefold())
        return None if item is None else item[1]

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string field.

        Args:
            name: the field.
            required: refuse absence (and ``null``).

        Returns:
            The string, or None when absent.

        Raises:
            InvalidField: not a string, or missing when required.
        """
        value = self.value(name)
        if value is None:
            if required:
                raise InvalidField(name, "is required")
            return None
        if not isinstance(value, str):
            raise InvalidField(name, "must be a string")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """A boolean field (absent or ``null``: ``default``).

        Raises:
            InvalidField: not true or false.
        """
        value = self.value(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidField(name, "must be true or false")
        return value


def collection_resources(body: Any, collection_type: str) -> list[Fields]:
    """The resources of a request collection, checked against its metadata.

    Args:
        body: the parsed body.
        collection_type: the expected ``metadata.collectionType``.

    Returns:
        The resources, each as :class:`Fields`.

    Raises:
        NoBody: no body at all.
        BadBody: not a collection, no metadata or resources, or another collection type.
        CollectionTotalMismatch: ``collectionTotal`` differs from the number of resources.
    """
    if body is None:
        raise NoBody()
    envelope = Fields(body)
    metadata = envelope.value("metadata")
    resources = envelope.value("resources")
    if not isinstance(metadata, dict) or not isinstance(resources, list):
        raise BadBody(_BAD_BODY + ": metadata and resources are required")
    meta = Fields(metadata)
    kind = meta.value("collectionType")
    if kind is not None and kind != collection_type:
        raise BadBody(_BAD_BODY + f": collectionType must be {collection_type}")
    total = meta.value("collectionTotal")
    if total is not None and (isinstance(total, bool) or total != len(resources)):
        raise CollectionTotalMismatch()
    return [Fields(r) for r in resources]


def decode_b64(value: Any, name: str, *, what: str) -> bytes:
    """Decode a standard base64 field.

    Args:
        value: the field's value.
        name: the wire name (the error's target).
        what: what the field must be, for the message ("a base64 encoded key material").

    Returns:
        The bytes.

    Raises:
        InvalidField: not a string, or not valid base64.
    """
    if not isinstance(value, str):
        raise InvalidField(name, f"must be {what}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidField(name, f"must be {what}") from None


#: The fields that make a key import (or an imported key's rotation) go through the token.
TOKEN_FIELDS = ("encryptedNonce", "iv", "encryptionAlgorithm")


def wrapped_import(fields: Fields) -> WrappedImport | None:
    """The import-token fields of a key resource or a rotate body, checked and decoded.

    Any of ``encryptedNonce``, ``iv`` or ``encryptionAlgorithm`` makes the request a token
    import; then ``payload`` is the material encrypted to the token's public key.

    Args:
        fields: the resource or body.

    Returns:
        The bundled fields, or None when none of :data:`TOKEN_FIELDS` is given (a plain
        ``payload``, if any, is the caller's to read).

    Raises:
        InvalidField: a field is not base64 (named by its wire name), or the service's checks
            (``validate_wrapped``) refuse it.
        BadBody: ``encryptedNonce`` without ``iv`` or the other way round.
    """
    if all(fields.value(name) is None for name in TOKEN_FIELDS):
        return None

    def decoded(name: str, what: str) -> bytes | None:
        value = fields.value(name)
        return None if value is None else decode_b64(value, name, what=what)

    return validate_wrapped(
        decoded("payload", "the base64 encoded key material, encrypted to the import token"),
        decoded("encryptedNonce", "the base64 encoded encrypted nonce"),
        decoded("iv", "the base64 encoded iv of the nonce encryption"),
        fields.text("encryptionAlgorithm"),
    )


def key_policy_spec(rotation: Any, dual_auth_delete: Any) -> KeyPolicySpec | None:
    """Key policies as a key resource or a policy resource carries them (reference §2.3).

    Args:
        rotation: ``{"enabled": bool, "interval_month": 1-12}`` or None; ``enabled`` defaults to
            true when only ``interval_month`` is given (older Go clients send no ``enabled``).
        dual_auth_delete: ``{"enabled": bool}`` or None.

    Returns:
        The spec, or None when neither is given.

    Raises:
        InvalidField: not objects, ``enabled`` not a boolean, an interval outside 1-12 (Go
            sends -1 for "not given", to get this error).
    """
    if rotation is None and dual_auth_delete is None:
        return None
    rotation_enabled: Any = None
    interval: Any = None
    dual: Any = None
    if rotation is not None:
        if not isinstance(rotation, dict):
            raise InvalidField("rotation", "must be an object: {enabled, interval_month}")
        fields = Fields(rotation)
        interval = fields.value("interval_month")
        rotation_enabled = fields.value("enabled")
        if rotation_enabled is None:
            if interval is None:
                raise InvalidField("rotation", "give enabled and interval_month")
            rotation_enabled = True
        if not isinstance(rotation_enabled, bool):
            raise InvalidField("rotation", "enabled must be true or false")
    if dual_auth_delete is not None:
        if not isinstance(dual_auth_delete, dict):
            raise InvalidField("dual_auth_delete", "must be an object: {enabled}")
        dual = Fields(dual_auth_delete).value("enabled")
        if not isinstance(dual, bool):
            raise InvalidField("dual_auth_delete", "enabled must be true or false")
    return KeyPolicySpec(rotation_enabled, interval, dual)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_time(value: Any, name: str) -> datetime | None:
    """An RFC 3339 date-time with a zone (fractional seconds up to nanoseconds).

    Args:
        value: the field's value (None: not given).
        name: the wire name.

    Returns:
        The time in UTC, or None.

    Raises:
        InvalidField: not such a string.
    """
    if value is None:
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidField(name, "must be an RFC 3339 date and time with a zone")
    year, month, day, hour, minute, second, frac, z, sign, off_h, off_m = match.groups()
    try:
        zone = UTC
        if not z:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(offset if sign == "+" else -offset)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        sec = min(int(second), 59)
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), sec, micro, zone)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidField(name, "must be an RFC 3339 date and time with a zone") from None


_INT = re.compile(r"[0-9]{1,10}")


def parse_int_param(value: str | None, name: str, default: int) -> int:
    """A non-negative whole-number query parameter (the range is the service's to check).

    Raises:
        InvalidQueryParam: not a whole number.
    """
    if value is None or value == "":
        return default
    if _INT.fullmatch(value.strip()) is None:
        raise InvalidQueryParam(name, "must be a whole number")
    return int(value.strip())


def parse_bool_param(value: str | None, name: str, default: bool = False) -> bool:
    """A ``true``/``false`` query parameter (any case).

    Raises:
        InvalidQueryParam: anything else.
    """
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise InvalidQueryParam(name, "must be true or false")


def parse_prefer(value: str | None) -> str | None:
    """The ``return`` preference of a ``Prefer`` header (RFC 7240).

    Args:
        value: the raw header.

    Returns:
        ``"representation"``, ``"minimal"`` or None (absent or anything else).
    """
    if not value:
        return None
    for item in re.split(r"[,;]", value):
        key, _, pref = item.strip().partition("=")
        if key.strip().lower() == "return":
            pref = pref.strip().strip('"').lower()
            if pref in ("representation", "minimal"):
                return pref
    return None
