"""AuditEvent: shape, validation, strict JSON round trip, canonical bytes."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kyok.audit import AuditEvent, Initiator, Target, correlation_hash
from kyok.crypto.encoding import canonical_json

from ._kit import INSTANCE_A, T0, make_event


def test_json_shape_is_cadf_like() -> None:
    e = make_event(INSTANCE_A, 3, fail=True)
    assert e.to_json() == {
        "instanceId": INSTANCE_A,
        "seq": 3,
        "eventTime": "2026-01-15T09:00:03.000000Z",
        "action": "kms.keys.rotate",
        "outcome": "failure",
        "reason": {"reasonCode": "KEY_NOT_FOUND_ERR", "status": 404},
        "initiator": {
            "id": "ServiceId-app",
            "typeURI": "service",
            "credential": {"type": "api_key"},
            "host": {"address": "192.0.2.10"},
        },
        "target": {"id": "key-0", "name": "name-0", "typeURI": "kms/key", "keyVersion": "v1"},
        "correlationId": "corr-1",
        "requestId": "req-3",
        "detail": [["alias", "alias-3"]],
    }
    assert e.canonical_bytes() == canonical_json(e.to_json())


def test_round_trip_and_optional_fields() -> None:
    full = make_event(INSTANCE_A, 7)
    bare = AuditEvent(
        INSTANCE_A,
        0,
        T0,
        "kms.keys.list",
        "success",
        Initiator("kyok-system", "system", "system"),
        Target(INSTANCE_A, "kms/instance"),
    )
    for e in (full, bare):
        assert AuditEvent.from_json(e.to_json()) == e
        assert AuditEvent.from_json(e.to_json()).to_json() == e.to_json()


def test_times_are_stored_as_utc_microseconds() -> None:
    plus2 = timezone(timedelta(hours=2))
    e = make_event(INSTANCE_A, 0, event_time=datetime(2026, 1, 15, 11, 0, 0, 5, tzinfo=plus2))
    assert e.to_json()["eventTime"] == "2026-01-15T09:00:00.000005Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        make_event(INSTANCE_A, 0, event_time=datetime(2026, 1, 15))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"instance_id": ""}, "instance id"),
        ({"action": "Wrap"}, "action"),
        ({"action": "kms"}, "action"),
        ({"outcome": "ok"}, "outcome"),
        ({"status": 99}, "status"),
        ({"reason_code": "A\nB"}, "control"),
        ({"request_id": "x" * 257}, "longer"),
        ({"detail": (("alias", "v" * 257),)}, "longer"),
        ({"detail": (("a", "1"), ("a", "2"))}, "twice"),
        ({"detail": (("bad name", "1"),)}, "identifiers"),
        ({"detail": (("a", "1", "2"),)}, "pairs"),
    ],
)
def test_refuses_bad_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(make_event(INSTANCE_A, 0), **changes)


def test_refuses_bad_initiator_and_target() -> None:
    with pytest.raises(ValueError, match="credential"):
        Initiator("u", "user", "password")
    with pytest.raises(ValueError, match="control"):
        Initiator("u", "user", "token", "10.0.0.1\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="target id"):
        Target("", "kms/key")


def _mutations() -> list[tuple[str, Any]]:
    def drop(key: str) -> Any:
        return lambda o: o.pop(key)

    return [
        ("unknown member", lambda o: o.__setitem__("plaintext", "c2VjcmV0")),
        ("missing member", drop("requestId")),
        ("nested unknown member", lambda o: o["target"].__setitem__("material", "x")),
        ("seq as string", lambda o: o.__setitem__("seq", "3")),
        ("seq as float", lambda o: o.__setitem__("seq", 3.0)),
        ("status as bool", lambda o: o["reason"].__setitem__("status", True)),
        ("time without microseconds", lambda o: o.__setitem__("eventTime", "2026-01-15T09:00:03Z")),
        (
            "time with offset",
            lambda o: o.__setitem__("eventTime", "2026-01-15T09:00:03.000000+00:00"),
        ),
        ("detail not pairs", lambda o: o.__setitem__("detail", [["a"]])),
        ("initiator not object", lambda o: o.__setitem__("initiator", "u")),
        ("id not string", lambda o: o["initiator"].__setitem__("id", 5)),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_from_json_is_strict(name: str, mutate: Any) -> None:
    obj = copy.deepcopy(make_event(INSTANCE_A, 3).to_json())
    mutate(obj)
    with pytest.raises(ValueError):
        AuditEvent.from_json(obj)


def test_events_are_frozen() -> None:
    e = make_event(INSTANCE_A, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.seq = 1  # type: ignore[misc]


def test_correlation_hash_is_keyed_and_stable() -> None:
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    a = correlation_hash(k1, "apikey-0001")
    assert a == correlation_hash(k1, "apikey-0001") and len(a) == 32
    assert a != correlation_hash(k2, "apikey-0001")
    assert a != correlation_hash(k1, "apikey-0002")
    assert "apikey" not in a
    with pytest.raises(ValueError):
        correlation_hash(b"short", "x")
