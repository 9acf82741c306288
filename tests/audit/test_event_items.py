"""Batch calls' events: per-item results as runs, strict JSON, canonical bytes, chaining."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyok.audit import AuditEvent, ItemRun
from kyok.crypto.encoding import canonical_json

from ._kit import INSTANCE_A, make_event

V1 = "5f0c1c8e-1111-4000-8000-000000000001"


def batch_event(items: tuple[ItemRun, ...]) -> AuditEvent:
    return dataclasses.replace(
        make_event(INSTANCE_A, 4), action="kms.secrets.batch-wrap", items=items
    )


def test_items_appear_in_json_and_canonical_bytes() -> None:
    e = batch_event(
        (
            ItemRun(0, 3, "success", None, V1),
            ItemRun(3, 1, "failure", "INVALID_FIELD_ERR", None),
            ItemRun(4, 96, "success", None, V1),
        )
    )
    j = e.to_json()
    assert j["items"][1] == {
        "first": 3,
        "count": 1,
        "outcome": "failure",
        "reasonCode": "INVALID_FIELD_ERR",
        "keyVersion": None,
    }
    assert e.canonical_bytes() == canonical_json(j)
    assert AuditEvent.from_json(j) == e


def test_an_event_without_items_has_no_items_member() -> None:
    e = make_event(INSTANCE_A, 1)
    assert "items" not in e.to_json()
    assert b'"items"' not in e.canonical_bytes()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ((ItemRun(1, 2, "success"),), "from 0"),
        ((ItemRun(0, 2, "success"), ItemRun(3, 1, "success")), "without gaps"),
        ((ItemRun(0, 2, "success"), ItemRun(1, 1, "success")), "without gaps"),
    ],
)
def test_runs_must_tile_the_items(items: tuple[ItemRun, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch_event(items)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first": -1}, "first"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"outcome": "ok"}, "outcome"),
        ({"reason_code": "X" * 65}, "longer"),
        ({"key_version": "a\nb"}, "control"),
    ],
)
def test_item_run_validation(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"first": 0, "count": 1, "outcome": "success"}
    with pytest.raises(ValueError, match=message):
        ItemRun(**(base | kwargs))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j.update(items=[]),
        lambda j: j.update(items="x"),
        lambda j: j["items"][0].update(extra=1),
        lambda j: j["items"][0].pop("keyVersion"),
        lambda j: j["items"][0].update(count="3"),
    ],
)
def test_from_json_is_strict_about_items(mutate: Any) -> None:
    j = batch_event((ItemRun(0, 3, "success", None, V1),)).to_json()
    mutate(j)
    with pytest.raises(ValueError):
        AuditEvent.from_json(j)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10_000),
            st.sampled_from([("success", None), ("failure", "UNPROCESSABLE_CIPHERTEXT_ERR")]),
            st.sampled_from([None, V1]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_canonical_bytes_match_canonical_json(runs: list[Any]) -> None:
    items, first = [], 0
    for count, (outcome, reason), version in runs:
        items.append(ItemRun(first, count, outcome, reason, version))
        first += count
    e = batch_event(tuple(items))
    assert e.canonical_bytes() == canonical_json(e.to_json())
    assert AuditEvent.from_json(e.to_json()).to_json() == e.to_json()
