"""The audit event: one API call (or system action) that touched a key, a policy, a token, a
principal or the crypto unit, successful or not, in a CADF-like shape.

JSON form (``AuditEvent.to_json``; every member is always present, ``null`` where empty)::

    {
      "instanceId":    "<instance id>",
      "seq":           0,                      # per instance, from 0, no gaps
      "eventTime":     "2026-01-15T09:00:00.000000Z",
      "action":        "kms.secrets.wrap",
      "outcome":       "success" | "failure",
      "reason":        {"reasonCode": "KEY_NOT_FOUND_ERR" | null, "status": 404 | null},
      "initiator":     {"id": "...", "typeURI": "service",
                        "credential": {"type": "api_key" | "token" | "admin_signature" | "system"},
                        "host": {"address": "192.0.2.10" | null}},
      "target":        {"id": "...", "name": "..." | null, "typeURI": "kms/key",
                        "keyVersion": "..." | null},
      "correlationId": "..." | null,
      "requestId":     "..." | null,
      "detail":        [["name", "value"], ...],
      "items":         [{"first": 0, "count": 9999, "outcome": "success",    # batch calls only
                         "reasonCode": null, "keyVersion": "..." | null}, ...]
    }

``items`` is present only in the event of a batch call (``kms.secrets.batch-wrap`` and the
like): one call, many items, each item's outcome on the record. Items are listed as runs of
consecutive item indexes that share an outcome, a reason code and a key version
(:class:`ItemRun`), in index order, covering every item from 0 without gaps; a batch of 10,000
successful wraps under one key version is one run. Events without items have no ``items``
member at all, so their bytes (and hashes) are those of kyok before batch calls.

**Never a secret.** An event never holds key material, a plaintext, a ciphertext, a wrapped
key, an API key, a token, a passphrase or a signature over secret data. No validator can tell a
secret from an id, so the rule is enforced by shape instead: every field is a short string (ids
and names at most 256 characters, ``detail`` values at most 256, no control characters), and a
value that must be correlated without being revealed (an API key's id, a client address that is
itself sensitive) goes through :func:`correlation_hash`, a keyed hash.

The bytes that are hashed into the chain are ``canonical_json(event.to_json())``
(:meth:`AuditEvent.canonical_bytes`); :meth:`AuditEvent.from_json` is strict (no unknown or
missing members, exact types), so ``to_json(from_json(x)) == x`` for every accepted ``x``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from cryptography.hazmat.primitives import hashes, hmac

from kyok.crypto.encoding import lp

__all__ = [
    "CREDENTIAL_KINDS",
    "MAX_DETAIL_VALUE",
    "MAX_ID",
    "MAX_ITEM_RUNS",
    "OUTCOMES",
    "AuditEvent",
    "Initiator",
    "ItemRun",
    "Target",
    "correlation_hash",
    "format_time",
    "parse_time",
]

OUTCOMES: Final = ("success", "failure")
CREDENTIAL_KINDS: Final = ("api_key", "token", "admin_signature", "system")
MAX_ID: Final = 256
MAX_DETAIL_VALUE: Final = 256
MAX_DETAIL_ITEMS: Final = 32
MAX_ITEM_RUNS: Final = 10_000
CORRELATION_LABEL: Final = b"kyok/audit/correlate/v1"

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ACTION_RE = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+")

#: Action names that passed :func:`_check_action` (a few dozen in practice; bounded).
_GOOD_ACTIONS: set[str] = set()


def _check_action(action: object) -> None:
    """A dotted lowercase name of at most 128 characters (``ValueError``); remembered."""
    if not isinstance(action, str) or not _ACTION_RE.fullmatch(action):
        raise ValueError("action must be a dotted lowercase name such as kms.secrets.wrap")
    if len(action) > 128:
        raise ValueError("action is longer than 128 characters")
    if len(_GOOD_ACTIONS) < 1024:
        _GOOD_ACTIONS.add(action)


_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def format_time(when: datetime) -> str:
    """``when`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds)."""
    if when.tzinfo is None:
        raise ValueError("audit times are timezone-aware")
    utc = when.astimezone(UTC).replace(tzinfo=None)
    if utc.year < 1000:  # isoformat pads years too, but keep strftime's exact form for these
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds") + "Z"  # the same text, a few times faster


def parse_time(text: object, what: str = "time") -> datetime:
    """Parse a time written by :func:`format_time` (and only that form).

    Raises:
        ValueError: ``text`` is not exactly in that form.
    """
    if not isinstance(text, str) or not _TIME_RE.fullmatch(text):
        raise ValueError(f"{what} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{what} is not a valid time") from None


def correlation_hash(key: bytes, value: str) -> str:
    """A keyed hash of ``value`` for events: equal values correlate, the value is not revealed.

    ``hex(HMAC-SHA256(key, "kyok/audit/correlate/v1" || lp(utf8(value))))[:32]``; ``key`` is a
    per-instance secret of at least 16 bytes that never appears in the ledger.
    """
    if len(key) < 16:
        raise ValueError("the correlation key is at least 16 bytes")
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(CORRELATION_LABEL + lp(value.encode("utf-8")))
    return mac.finalize().hex()[:32]


def _text(value: object, what: str, *, optional: bool = False, limit: int = MAX_ID) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if not value and not optional:
        raise ValueError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if _CONTROL_RE.search(value):
        raise ValueError(f"{what} holds a control character")


_s = encode_basestring_ascii  # a JSON string literal, ASCII only (json's C encoder)


def _n(value: str | None) -> str:
    """A JSON string literal, or null."""
    return "null" if value is None else encode_basestring_ascii(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who made the call.

    Attributes:
        id: the principal id (``kyok-system`` for the service itself).
        type: the kind of principal (``user``, ``service``, ``admin``, ``system``, …).
        credential: how it authenticated: one of :data:`CREDENTIAL_KINDS`.
        address: the client address, if known.
    """

    id: str
    type: str
    credential: str
    address: str | None = None

    def __post_init__(self) -> None:
        _text(self.id, "initiator id")
        _text(self.type, "initiator type", limit=64)
        if self.credential not in CREDENTIAL_KINDS:
            raise ValueError(f"credential must be one of {', '.join(CREDENTIAL_KINDS)}")
        _text(self.address, "initiator address", optional=True)


@dataclass(frozen=True, slots=True)
class Target:
    """What the call was about.

    Attributes:
        id: the object's id (for a failed lookup: the id that was asked for).
        type: the kind of object (``kms/key``, ``kms/instance``, ``kms/policy``, ``auth/token``,
            ``auth/principal``, ``unit``, …).
        name: a human name, if it has one (key name, alias).
        key_version: the key version used or made, if any.
    """

    id: str
    type: str
    name: str | None = None
    key_version: str | None = None

    def __post_init__(self) -> None:
        _text(self.id, "target id")
        _text(self.type, "target type", limit=64)
        _text(self.name, "target name", optional=True)
        _text(self.key_version, "target key version", optional=True)


@dataclass(frozen=True, slots=True)
class ItemRun:
    """Consecutive items of a batch call with the same result.

    Attributes:
        first: the index of the run's first item in the request (from 0).
        count: how many items the run holds (at least 1).
        outcome: ``success`` or ``failure``.
        reason_code: the error code of the run's failures (``UNPROCESSABLE_CIPHERTEXT_ERR``),
            None for successes.
        key_version: the key version the items used (wrap: the one that wrapped; unwrap and
            rewrap: the one that had wrapped the item), None where none was reached.
    """

    first: int
    count: int
    outcome: str
    reason_code: str | None = None
    key_version: str | None = None

    def __post_init__(self) -> None:
        if not _int(self.first) or self.first < 0:
            raise ValueError("an item run's first index must be an integer >= 0")
        if not _int(self.count) or self.count < 1:
            raise ValueError("an item run's count must be an integer >= 1")
        if self.outcome not in OUTCOMES:
            raise ValueError("an item run's outcome must be 'success' or 'failure'")
        _text(self.reason_code, "item reason code", optional=True, limit=64)
        _text(self.key_version, "item key version", optional=True)

    def to_json(self) -> dict[str, Any]:
        """The run as a JSON object."""
        return {
            "first": self.first,
            "count": self.count,
            "outcome": self.outcome,
            "reasonCode": self.reason_code,
            "keyVersion": self.key_version,
        }

    @classmethod
    def from_json(cls, obj: object) -> ItemRun:
        """Parse :meth:`to_json`'s shape, strictly (``ValueError``)."""
        o = _members(obj, "item run", {"first", "count", "outcome", "reasonCode", "keyVersion"})
        try:
            return cls(o["first"], o["count"], o["outcome"], o["reasonCode"], o["keyVersion"])
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def _check_items(items: tuple[ItemRun, ...]) -> None:
    if len(items) > MAX_ITEM_RUNS:
        raise ValueError(f"items holds more than {MAX_ITEM_RUNS} runs")
    expected = 0
    for run in items:
        if not isinstance(run, ItemRun):
            raise TypeError("items must be ItemRun values")
        if run.first != expected:
            raise ValueError("item runs must cover the items in order, from 0, without gaps")
        expected += run.count


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited call. Immutable; validated on construction (``ValueError``/``TypeError``).

    Attributes:
        instance_id: the instance whose ledger holds the event.
        seq: its position in that ledger (0, 1, 2, … without gaps).
        event_time: when it happened (aware; stored as UTC with microseconds).
        action: dotted lowercase name, e.g. ``kms.secrets.wrap``, ``kms.keys.rotate``.
        outcome: ``success`` or ``failure``.
        reason_code: the error code of a failure (``KEY_NOT_FOUND_ERR``), or None.
        status: the HTTP-like status of the result, or None.
        initiator: who.
        target: on what.
        correlation_id: ties events of one logical operation together (client supplied).
        request_id: the id of the HTTP request (or job) that caused it.
        detail: further short, non-secret facts as ``(name, value)`` pairs (names unique).
        items: a batch call's per-item results as runs (:class:`ItemRun`); empty otherwise.
    """

    instance_id: str
    seq: int
    event_time: datetime
    action: str
    outcome: str
    initiator: Initiator
    target: Target
    reason_code: str | None = None
    status: int | None = None
    correlation_id: str | None = None
    request_id: str | None = None
    detail: tuple[tuple[str, str], ...] = ()
    items: tuple[ItemRun, ...] = ()

    def __post_init__(self) -> None:
        _text(self.instance_id, "instance id")
        if not _int(self.seq) or self.seq < 0:
            raise ValueError("seq must be an integer >= 0")
        if not isinstance(self.event_time, datetime) or self.event_time.tzinfo is None:
            raise ValueError("event_time must be a timezone-aware datetime")
        if self.event_time.tzinfo is not UTC:
            object.__setattr__(self, "event_time", self.event_time.astimezone(UTC))
        if self.action not in _GOOD_ACTIONS:
            _check_action(self.action)
        if self.outcome not in OUTCOMES:
            raise ValueError("outcome must be 'success' or 'failure'")
        _text(self.reason_code, "reason code", optional=True, limit=64)
        if self.status is not None and (not _int(self.status) or not 100 <= self.status <= 599):
            raise ValueError("status must be an integer from 100 to 599")
        if not isinstance(self.initiator, Initiator) or not isinstance(self.target, Target):
            raise TypeError("initiator and target must be Initiator and Target")
        _text(self.correlation_id, "correlation id", optional=True)
        _text(self.request_id, "request id", optional=True)
        detail = tuple(tuple(pair) for pair in self.detail)
        if len(detail) > MAX_DETAIL_ITEMS:
            raise ValueError(f"detail holds more than {MAX_DETAIL_ITEMS} items")
        seen: set[str] = set()
        for pair in detail:
            if len(pair) != 2:
                raise ValueError("detail items are (name, value) pairs")
            name, value = pair
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise ValueError("detail names are short identifiers")
            if name in seen:
                raise ValueError(f"detail name {name!r} appears twice")
            seen.add(name)
            _text(value, f"detail {name}", optional=False, limit=MAX_DETAIL_VALUE)
        object.__setattr__(self, "detail", detail)
        items = tuple(self.items)
        _check_items(items)
        object.__setattr__(self, "items", items)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (the shape in the module docstring)."""
        out: dict[str, Any] = {
            "instanceId": self.instance_id,
            "seq": self.seq,
            "eventTime": format_time(self.event_time),
            "action": self.action,
            "outcome": self.outcome,
            "reason": {"reasonCode": self.reason_code, "status": self.status},
            "initiator": {
                "id": self.initiator.id,
                "typeURI": self.initiator.type,
                "credential": {"type": self.initiator.credential},
                "host": {"address": self.initiator.address},
            },
            "target": {
                "id": self.target.id,
                "name": self.target.name,
                "typeURI": self.target.type,
                "keyVersion": self.target.key_version,
            },
            "correlationId": self.correlation_id,
            "requestId": self.request_id,
            "detail": [[name, value] for name, value in self.detail],
        }
        if self.items:
            out["items"] = [run.to_json() for run in self.items]
        return out

    def canonical_bytes(self) -> bytes:
        """The bytes the chain hashes: ``canonical_json(self.to_json())``.

        Written out member by member in sorted-key order (the shape is fixed and construction
        checked every member), which gives exactly ``canonical_json``'s bytes several times
        faster; ``tests/audit`` holds the two equal for arbitrary events."""
        head, tail = self.canonical_parts()
        return b"%b%d%b" % (head, self.seq, tail)

    def canonical_parts(self) -> tuple[bytes, bytes]:
        """:meth:`canonical_bytes` cut around the digits of ``seq``: the bytes before them
        and after them, whatever ``seq`` is. Whoever places the event in a chain later (the
        ledger writer of a multi-worker node) joins ``head + digits + tail`` without the
        event itself."""
        i, t = self.initiator, self.target
        detail = ",".join(f"[{_s(name)},{_s(value)}]" for name, value in self.detail)
        return (
            f'{{"action":{_s(self.action)},"correlationId":{_n(self.correlation_id)},'
            f'"detail":[{detail}],"eventTime":"{format_time(self.event_time)}",'
            f'"initiator":{{"credential":{{"type":{_s(i.credential)}}},'
            f'"host":{{"address":{_n(i.address)}}},"id":{_s(i.id)},"typeURI":{_s(i.type)}}},'
            f'"instanceId":{_s(self.instance_id)},{self._items_member()}'
            f'"outcome":{_s(self.outcome)},'
            f'"reason":{{"reasonCode":{_n(self.reason_code)},'
            f'"status":{"null" if self.status is None else int(self.status)}}},'
            f'"requestId":{_n(self.request_id)},"seq":'
        ).encode("ascii"), (
            f',"target":{{"id":{_s(t.id)},"keyVersion":{_n(t.key_version)},'
            f'"name":{_n(t.name)},"typeURI":{_s(t.type)}}}}}'
        ).encode("ascii")

    def _items_member(self) -> str:
        """``"items":[...],`` in canonical form, or nothing for an event without items."""
        if not self.items:
            return ""
        runs = ",".join(
            f'{{"count":{int(r.count)},"first":{int(r.first)},"keyVersion":{_n(r.key_version)},'
            f'"outcome":{_s(r.outcome)},"reasonCode":{_n(r.reason_code)}}}'
            for r in self.items
        )
        return f'"items":[{runs}],'

    def with_seq(self, seq: int) -> AuditEvent:
        """This event at position ``seq`` (a copy; the other members were checked already)."""
        if not _int(seq) or seq < 0:
            raise ValueError("seq must be an integer >= 0")
        copy = object.__new__(AuditEvent)
        for name in self.__slots__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "seq", seq)
        return copy

    @classmethod
    def from_json(cls, obj: object) -> AuditEvent:
        """Parse :meth:`to_json`'s shape, strictly.

        Raises:
            ValueError: a member is missing, unknown, of the wrong type or out of range.
        """
        keys = _EVENT_KEYS | {"items"} if isinstance(obj, dict) and "items" in obj else _EVENT_KEYS
        o = _members(obj, "event", keys)
        reason = _members(o["reason"], "reason", {"reasonCode", "status"})
        ini = _members(o["initiator"], "initiator", {"id", "typeURI", "credential", "host"})
        cred = _members(ini["credential"], "initiator.credential", {"type"})
        host = _members(ini["host"], "initiator.host", {"address"})
        tgt = _members(o["target"], "target", {"id", "name", "typeURI", "keyVersion"})
        detail = o["detail"]
        if not isinstance(detail, list) or not all(
            isinstance(d, list) and len(d) == 2 for d in detail
        ):
            raise ValueError("detail must be a list of [name, value] pairs")
        if not _int(o["seq"]) or (reason["status"] is not None and not _int(reason["status"])):
            raise ValueError("seq and status must be integers")
        items: tuple[ItemRun, ...] = ()
        if "items" in o:
            if not isinstance(o["items"], list) or not o["items"]:
                raise ValueError("items, when present, must be a non-empty list of item runs")
            items = tuple(ItemRun.from_json(run) for run in o["items"])
        try:
            return cls(
                instance_id=o["instanceId"],
                seq=o["seq"],
                event_time=parse_time(o["eventTime"], "eventTime"),
                action=o["action"],
                outcome=o["outcome"],
                reason_code=reason["reasonCode"],
                status=reason["status"],
                initiator=Initiator(ini["id"], ini["typeURI"], cred["type"], host["address"]),
                target=Target(tgt["id"], tgt["typeURI"], tgt["name"], tgt["keyVersion"]),
                correlation_id=o["correlationId"],
                request_id=o["requestId"],
                detail=tuple((d[0], d[1]) for d in detail),
                items=items,
            )
        except TypeError as exc:
            raise ValueError(str(exc)) from None


_EVENT_KEYS: Final = frozenset(
    {
        "instanceId",
        "seq",
        "eventTime",
        "action",
        "outcome",
        "reason",
        "initiator",
        "target",
        "correlationId",
        "requestId",
        "detail",
    }
)


def _members(obj: object, what: str, keys: set[str] | frozenset[str]) -> Mapping[str, Any]:
    """``obj`` as a mapping with exactly ``keys`` (else ``ValueError`` naming what differs)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be an object")
    missing = sorted(set(keys) - obj.keys())
    extra = sorted(str(k) for k in obj.keys() - set(keys))
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}")
    if extra:
        raise ValueError(f"{what} has unknown members: {', '.join(extra)}")
    return obj
