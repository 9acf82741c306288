"""Listing keys: every feature of KeyQuery, on every backend, with the same answers."""

from __future__ import annotations

import dataclasses

import pytest

from kyok.store.records import KeyFilter, KeyQuery, KeySearch

from . import factories as f
from .factories import AnyStore

OTHER = "inst-2"

KEYS = [
    f.key("k01", name="Payment key", created_at=f.at(1)),
    f.key(
        "k02",
        name="payment-KEY_2",
        state=2,
        extractable=True,
        key_ring_id="ring-a",
        created_at=f.at(2),
        expires_at=f.at(100),
    ),
    f.key("k03", name="100% secure", state=0, created_at=f.at(3), expires_at=f.at(50)),
    f.key(
        "k04",
        name="under_score",
        state=3,
        extractable=True,
        created_at=f.at(3),
        expires_at=f.at(100),
    ),
    f.key("k05", name="back\\slash", state=5, created_at=f.at(4), deleted_at=f.at(10)),
    f.key("k06", name="Straße Ä", created_at=f.at(5)),
    f.key("k07", name="plain", created_at=f.at(6), last_rotated_at=f.at(7)),
    f.key("k01", instance_id=OTHER, name="Payment key"),
]
ALIASES = [f.alias("Payment-alias", "k07"), f.alias("other", "k07"), f.alias("x_y", "k06")]


@pytest.fixture
def store(any_store: AnyStore) -> AnyStore:
    with any_store.uow() as uow:
        for key in KEYS:
            uow.keys.add(key)
        for alias in ALIASES:
            uow.aliases.add(alias)
        uow.commit()
    return any_store


def ids(store: AnyStore, **query: object) -> list[str]:
    q = f.query(**query)  # type: ignore[arg-type]
    with store.uow(read_only=True) as uow:
        found = [k.id for k in uow.keys.find(q)]
        total = uow.keys.count(q)  # count agrees with find, whatever the page
        assert len(found) == max(0, min(q.limit, total - q.offset))
        return found


def count(store: AnyStore, **query: object) -> int:
    with store.uow(read_only=True) as uow:
        return uow.keys.count(f.query(**query))  # type: ignore[arg-type]


# ------------------------------------------------------------------ states and plain filters


def test_default_states_hide_destroyed_keys(store: AnyStore) -> None:
    assert ids(store) == ["k01", "k02", "k03", "k04", "k06", "k07"]
    assert ids(store, states=frozenset({5})) == ["k05"]
    assert ids(store, states=frozenset({0, 5})) == ["k03", "k05"]
    assert ids(store, states=frozenset()) == []
    assert ids(store, instance_id=OTHER) == ["k01"]
    assert ids(store, instance_id="nobody") == []


def test_extractable_and_key_ring(store: AnyStore) -> None:
    assert ids(store, extractable=True) == ["k02", "k04"]
    assert ids(store, extractable=False) == ["k01", "k03", "k06", "k07"]
    assert ids(store, key_ring_id="ring-a") == ["k02"]
    assert ids(store, key_ring_id="ring-a", extractable=False) == []


# ------------------------------------------------------------------ search


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        (KeySearch("payment"), ["k01", "k02", "k07"]),  # k07 through its alias
        (KeySearch("PAYMENT", aliases=False), ["k01", "k02"]),
        (KeySearch("payment", names=False), ["k07"]),
        (KeySearch("payment", names=False, aliases=False), []),
        (KeySearch("payment key", exact=True), ["k01"]),
        (KeySearch("payment", exact=True), []),
        (KeySearch("OTHER", exact=True), ["k07"]),  # alias, exact, case-insensitive
        (KeySearch("payment", negate=True), ["k03", "k04", "k06"]),
        (KeySearch("payment key", exact=True, negate=True), ["k02", "k03", "k04", "k06", "k07"]),
        (
            KeySearch("payment", names=False, aliases=False, negate=True),
            ["k01", "k02", "k03", "k04", "k06", "k07"],
        ),
        (KeySearch(""), ["k01", "k02", "k03", "k04", "k06", "k07"]),
        (KeySearch("", exact=True), []),
        (KeySearch("e", aliases=False), ["k01", "k02", "k03", "k04", "k06"]),
    ],
    ids=repr,
)
def test_search(store: AnyStore, search: KeySearch, expected: list[str]) -> None:
    assert ids(store, search=search) == expected
    assert count(store, search=search) == len(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", ["k03"]),
        ("0%", ["k03"]),
        ("1%e", []),  # a wildcard would match "100% secure"
        ("%%", []),
        ("_", ["k02", "k04", "k06"]),  # k06 through its alias x_y
        ("payment_key", []),  # a wildcard _ would match "payment-KEY"
        ("d_r", []),  # a wildcard _ would match "under"
        ("\\", ["k05"]),
        ("k\\s", ["k05"]),
        ("\\%", []),
        ("STRAßE ä", ["k06"]),  # Unicode case folding
        ("straße ä", ["k06"]),
        ("'; DROP TABLE keys; --", []),
    ],
)
def test_search_text_matches_literally(store: AnyStore, text: str, expected: list[str]) -> None:
    states = frozenset({0, 1, 2, 3, 5})
    assert ids(store, search=KeySearch(text), states=states) == expected
    negated = KeySearch(text, negate=True)
    everything = ids(store, states=states)
    assert ids(store, search=negated, states=states) == [i for i in everything if i not in expected]


def test_an_alias_matches_only_in_its_own_instance(any_store: AnyStore) -> None:
    """The same key id in two instances: the other instance's alias is no match here."""
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1", name="plain"))
        uow.keys.add(f.key("k1", instance_id=OTHER, name="plain"))
        uow.aliases.add(f.alias("secret-alias", "k1", instance_id=OTHER))
        uow.commit()
    assert ids(any_store, search=KeySearch("secret")) == []
    assert ids(any_store, search=KeySearch("secret", negate=True)) == ["k1"]
    assert ids(any_store, instance_id=OTHER, search=KeySearch("secret")) == ["k1"]
    exact = KeySearch("SECRET-ALIAS", exact=True)
    assert ids(any_store, instance_id=OTHER, search=exact) == ["k1"]


def test_exact_search_with_wildcard_characters(store: AnyStore) -> None:
    assert ids(store, search=KeySearch("100% SECURE", exact=True)) == ["k03"]
    assert ids(store, search=KeySearch("100_ secure", exact=True)) == []
    assert ids(store, search=KeySearch("x_y", exact=True)) == ["k06"]
    assert ids(store, search=KeySearch("x%", exact=True)) == []


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((KeyFilter("expires_at", "eq", None),), ["k01", "k06", "k07"]),
        ((KeyFilter("expires_at", "lt", f.at(100)),), ["k03"]),
        ((KeyFilter("expires_at", "lte", f.at(100)),), ["k02", "k03", "k04"]),
        ((KeyFilter("expires_at", "gt", f.at(50)),), ["k02", "k04"]),
        ((KeyFilter("expires_at", "gte", f.at(50)),), ["k02", "k03", "k04"]),
        ((KeyFilter("expires_at", "eq", f.at(100)),), ["k02", "k04"]),
        ((KeyFilter("created_at", "gte", f.at(3)),), ["k03", "k04", "k06", "k07"]),
        (
            (KeyFilter("created_at", "gte", f.at(2)), KeyFilter("created_at", "lt", f.at(5))),
            ["k02", "k03", "k04"],
        ),
        ((KeyFilter("last_rotated_at", "eq", None),), ["k01", "k02", "k03", "k04", "k06"]),
        ((KeyFilter("last_rotated_at", "gt", f.at(0)),), ["k07"]),
        ((KeyFilter("deleted_at", "eq", None),), ["k01", "k02", "k03", "k04", "k06", "k07"]),
        ((KeyFilter("state", "eq", 2),), ["k02"]),
        ((KeyFilter("state", "gte", 2),), ["k02", "k04"]),
        ((KeyFilter("extractable", "eq", True),), ["k02", "k04"]),
        ((KeyFilter("updated_at", "eq", f.T0),), ["k01", "k02", "k03", "k04", "k06", "k07"]),
    ],
)
def test_filters(store: AnyStore, filters: tuple[KeyFilter, ...], expected: list[str]) -> None:
    assert ids(store, filters=filters) == expected


def test_filter_on_destroyed_keys(store: AnyStore) -> None:
    deleted = (KeyFilter("deleted_at", "lte", f.at(10)),)
    assert ids(store, filters=deleted, states=frozenset({5})) == ["k05"]
    assert ids(store, filters=deleted) == []


def test_filter_datetimes_in_other_offsets(store: AnyStore) -> None:
    from datetime import timedelta, timezone

    local = f.at(100).astimezone(timezone(timedelta(hours=-5)))
    assert ids(store, filters=(KeyFilter("expires_at", "eq", local),)) == ["k02", "k04"]


# ------------------------------------------------------------------ sort and paging


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ((), ["k01", "k02", "k03", "k04", "k06", "k07"]),
        ((("id", True),), ["k07", "k06", "k04", "k03", "k02", "k01"]),
        ((("expires_at", False),), ["k03", "k02", "k04", "k01", "k06", "k07"]),  # None last
        ((("expires_at", True),), ["k01", "k06", "k07", "k02", "k04", "k03"]),  # None first
        ((("state", True), ("created_at", False)), ["k04", "k02", "k01", "k06", "k07", "k03"]),
        ((("state", False), ("created_at", True)), ["k03", "k07", "k06", "k01", "k02", "k04"]),
        ((("extractable", True), ("id", True)), ["k04", "k02", "k07", "k06", "k03", "k01"]),
        ((("created_at", True),), ["k07", "k06", "k03", "k04", "k02", "k01"]),
        ((("created_at", True), ("id", True)), ["k07", "k06", "k04", "k03", "k02", "k01"]),
        ((("last_rotated_at", True),), ["k01", "k02", "k03", "k04", "k06", "k07"]),
        ((("imported", False), ("updated_at", False)), ["k01", "k02", "k03", "k04", "k06", "k07"]),
    ],
)
def test_sort(store: AnyStore, sort: tuple[tuple[str, bool], ...], expected: list[str]) -> None:
    assert ids(store, sort=sort) == expected


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7])
@pytest.mark.parametrize(
    "sort", [(("id", False),), (("expires_at", True),), (("state", True), ("created_at", False))]
)
def test_paging_is_stable(store: AnyStore, limit: int, sort: tuple[tuple[str, bool], ...]) -> None:
    everything = ids(store, sort=sort)
    paged: list[str] = []
    for offset in range(0, len(everything) + limit, limit):
        paged.extend(ids(store, sort=sort, limit=limit, offset=offset))
    assert paged == everything


def test_count_ignores_paging_and_sort(store: AnyStore) -> None:
    q = f.query(limit=1, offset=4, sort=(("created_at", True),))
    with store.uow() as uow:
        assert len(uow.keys.find(q)) == 1
        assert uow.keys.count(q) == 6
        assert uow.keys.find(dataclasses.replace(q, offset=6)) == []
        assert uow.keys.find(dataclasses.replace(q, limit=0)) == []


@pytest.mark.parametrize(
    "query",
    [
        f.query(filters=(KeyFilter("name", "eq", 1),)),
        f.query(filters=(KeyFilter("state", "like", 1),)),
        f.query(filters=(KeyFilter("expires_at", "lt", None),)),
        f.query(sort=(("name", False),)),
        f.query(sort=(("state; DROP TABLE keys", False),)),
        f.query(limit=-1),
        f.query(offset=-1),
    ],
)
def test_bad_queries_are_refused(any_store: AnyStore, query: KeyQuery) -> None:
    with any_store.uow() as uow:
        with pytest.raises(ValueError):
            uow.keys.find(query)
        with pytest.raises(ValueError):
            uow.keys.count(query)


def test_find_sees_the_units_own_changes(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1", name="fresh"))
        assert [k.id for k in uow.keys.find(f.query(search=KeySearch("FRESH")))] == ["k1"]
        uow.aliases.add(f.alias("nick", "k1"))
        assert uow.keys.count(f.query(search=KeySearch("nick", names=False))) == 1


# ------------------------------------------------------------------ expiring, rings


def test_expiring_across_instances(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("a", state=1, expires_at=f.at(30)))
        uow.keys.add(f.key("b", state=2, expires_at=f.at(10)))
        uow.keys.add(f.key("c", state=1, expires_at=f.at(20), instance_id=OTHER))
        uow.keys.add(f.key("d", state=1, expires_at=f.at(20)))
        uow.keys.add(f.key("late", state=1, expires_at=f.at(61)))
        uow.keys.add(f.key("never", state=1))
        uow.keys.add(f.key("pre", state=0, expires_at=f.at(1)))
        uow.keys.add(f.key("done", state=3, expires_at=f.at(1)))
        uow.keys.add(f.key("gone", state=5, expires_at=f.at(1)))
        uow.commit()
    with any_store.uow() as uow:
        found = [(k.instance_id, k.id) for k in uow.keys.expiring(f.at(60), 10)]
        assert found == [(f.INSTANCE, "b"), (f.INSTANCE, "d"), (OTHER, "c"), (f.INSTANCE, "a")]
        assert [k.id for k in uow.keys.expiring(f.at(60), 2)] == ["b", "d"]
        assert [k.id for k in uow.keys.expiring(f.at(10), 10)] == ["b"]  # <= now
        assert uow.keys.expiring(f.at(0), 10) == []


def test_count_in_ring_and_move_ring(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("a", key_ring_id="r1", state=1))
        uow.keys.add(f.key("b", key_ring_id="r1", state=5))
        uow.keys.add(f.key("c", key_ring_id="r1", state=5))
        uow.keys.add(f.key("d", key_ring_id="r2", state=5))
        uow.keys.add(f.key("e", key_ring_id="r1", state=5, instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.count_in_ring(f.INSTANCE, "r1") == 3  # every state
        assert uow.keys.count_in_ring(f.INSTANCE, "r1", frozenset({5})) == 2
        assert uow.keys.count_in_ring(f.INSTANCE, "r1", frozenset({0, 1, 2, 3})) == 1
        assert uow.keys.move_ring(f.INSTANCE, "r1", "default", frozenset({5})) == 2
        assert uow.keys.move_ring(f.INSTANCE, "r1", "default", frozenset({5})) == 0
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.count_in_ring(f.INSTANCE, "r1") == 1
        assert uow.keys.count_in_ring(f.INSTANCE, "default") == 2
        assert uow.keys.count_in_ring(OTHER, "r1") == 1
        moved = uow.keys.get(f.INSTANCE, "b")
        assert moved is not None and moved.key_ring_id == "default"
        assert moved.row_version == 2  # a move is a change: stale updates must conflict
        assert uow.keys.get(f.INSTANCE, "a").row_version == 1  # type: ignore[union-attr]
