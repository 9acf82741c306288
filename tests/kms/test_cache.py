"""The data-plane cache: no store read once a key is warm, this node's changes seen at once,
other processes' changes seen within the ttl, bounded size."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kyok.auth.principals import Principal
from kyok.clock import FakeClock
from kyok.kms.cache import KeyCache
from kyok.kms.errors import KeyNotFound, KeyStateConflict
from kyok.kms.service import KeyService
from kyok.store.memory import MemoryStore
from kyok.unit.directory import UnitDirectory
from kyok.unit.seal import DevSeal

ACTOR = Principal("alice")


class CountingStore:
    """Counts units of work opened (every database round trip starts with one)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.opened = 0

    def uow(self, *, read_only: bool = False) -> Any:
        self.opened += 1
        return self.inner.uow(read_only=read_only)


class Ticker:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[KeyService, CountingStore, Ticker, str]]:
    clock = FakeClock()
    inner = MemoryStore(clock=clock)
    store = CountingStore(inner)
    ticker = Ticker()
    units = UnitDirectory(inner.units, {"dev": DevSeal(tmp_path)}, clock)
    service = KeyService(store.uow, units, clock, cache=KeyCache(ttl=1.0, now=ticker))
    instance = service.create_instance(ACTOR, "cache", seal="dev").id
    yield service, store, ticker, instance


def test_a_warm_key_costs_no_store_read(env: tuple[KeyService, CountingStore, Ticker, str]) -> None:
    service, store, _, instance = env
    key = service.create_key(ACTOR, instance, "warm", aliases=["warm-alias"])
    result = service.wrap(instance, key.record.id)
    before = store.opened
    for _ in range(50):
        service.unwrap(instance, key.record.id, service.wrap(instance, key.record.id).ciphertext)
        service.rewrap(instance, key.record.id, result.ciphertext)
    assert store.opened == before
    service.wrap(instance, "warm-alias")  # a new name costs one read, then it is warm too
    after = store.opened
    service.wrap(instance, "warm-alias")
    assert store.opened == after


def test_changes_through_the_service_are_seen_at_once(
    env: tuple[KeyService, CountingStore, Ticker, str],
) -> None:
    service, _, _, instance = env
    key = service.create_key(ACTOR, instance, "changing", aliases=["changing-alias"])
    old = service.wrap(instance, key.record.id)
    service.rotate(ACTOR, instance, key.record.id)
    new = service.wrap(instance, key.record.id)
    assert new.key_version_id != old.key_version_id
    unwrapped = service.unwrap(instance, key.record.id, old.ciphertext)
    assert unwrapped.rewrapped_version_id == new.key_version_id
    service.disable(ACTOR, instance, key.record.id)
    with pytest.raises(KeyStateConflict):
        service.wrap(instance, key.record.id)
    service.delete_alias(ACTOR, instance, key.record.id, "changing-alias")
    with pytest.raises(KeyNotFound):
        service.wrap(instance, "changing-alias")


def test_changes_made_elsewhere_are_seen_within_the_ttl(
    env: tuple[KeyService, CountingStore, Ticker, str],
) -> None:
    service, store, ticker, instance = env
    key = service.create_key(ACTOR, instance, "elsewhere")
    service.wrap(instance, key.record.id)
    with store.inner.uow() as uow:  # another process disables the key
        record = uow.keys.get(instance, key.record.id)
        assert record is not None
        uow.keys.update(dataclasses.replace(record, state=2), record.row_version)
        uow.commit()
    service.wrap(instance, key.record.id)  # not yet seen: within the ttl
    ticker.t += 1.01
    with pytest.raises(KeyStateConflict):
        service.wrap(instance, key.record.id)


def test_ttl_zero_turns_caching_off(tmp_path: Path) -> None:
    clock = FakeClock()
    inner = MemoryStore(clock=clock)
    store = CountingStore(inner)
    service = KeyService(
        store.uow,
        UnitDirectory(inner.units, {"dev": DevSeal(tmp_path)}, clock),
        clock,
        cache=KeyCache(ttl=0),
    )
    instance = service.create_instance(ACTOR, "nocache", seal="dev").id
    key = service.create_key(ACTOR, instance, "cold")
    before = store.opened
    service.wrap(instance, key.record.id)
    service.wrap(instance, key.record.id)
    assert store.opened == before + 2


def test_the_cache_is_bounded() -> None:
    from kyok.store.records import KeyRecord

    cache = KeyCache(max_keys=3, ttl=10)
    now = FakeClock().now()
    for i in range(5):
        cache.put(
            KeyRecord(
                "i", f"k{i}", "n", None, False, False, 1, "default", (), now, "a", now, now, "v", 1
            ),
            f"alias-{i}",
            [],
        )
    assert len(cache) == 3
    assert cache.get("i", "alias-0") is None and cache.get("i", "k0") is None
    assert cache.get("i", "alias-4") is not None
    cache.invalidate("i", "k4")
    assert cache.get("i", "alias-4") is None and cache.get("i", "k4") is None


def test_a_search_for_a_full_key_id_finds_that_key_first(
    env: tuple[KeyService, CountingStore, Ticker, str],
) -> None:
    from kyok.kms.query import parse_key_query

    service, _, _, instance = env
    others = [service.create_key(ACTOR, instance, f"other-{i}") for i in range(3)]
    target = service.create_key(ACTOR, instance, "target")
    query = parse_key_query(instance, search=target.record.id)
    keys, total = service.list_keys(query)
    assert [k.record.id for k in keys] == [target.record.id] and total == 1
    assert service.count_keys(query) == 1
    # a name that contains the id is not counted twice
    named = service.create_key(ACTOR, instance, f"copy-of-{others[0].record.id}")
    keys, total = service.list_keys(parse_key_query(instance, search=others[0].record.id))
    assert keys[0].record.id == others[0].record.id and total == 2
    assert {k.record.id for k in keys} == {others[0].record.id, named.record.id}
    # filters still apply to the direct match; negation does not look it up
    assert (
        service.list_keys(parse_key_query(instance, search=target.record.id, extractable="true"))[1]
        == 0
    )
    negated = service.list_keys(parse_key_query(instance, search=f"not:{target.record.id}"))[0]
    assert target.record.id in {k.record.id for k in negated}


def test_invalidations_are_told_unless_they_came_from_elsewhere() -> None:
    cache = KeyCache()
    told: list[tuple[str, str | None]] = []
    cache.on_invalidate = lambda instance, key: told.append((instance, key))
    cache.invalidate("inst", "k1")
    cache.invalidate_instance("inst")
    cache.invalidate("inst", "k2", propagate=False)
    cache.invalidate_instance("other", propagate=False)
    assert told == [("inst", "k1"), ("inst", None)]
