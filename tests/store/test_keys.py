"""Key records: CRUD, optimistic concurrency, round trips of every field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kyok.errors import AlreadyExists, VersionConflict
from kyok.store.records import KeyRecord

from . import factories as f
from .factories import AnyStore


def full_key() -> KeyRecord:
    return f.key(
        "k-full",
        name="Schlüssel 🔑 of Ångström",
        description="ünïcödé description, with 'quotes' and \"double\" and \\ backslash",
        extractable=True,
        imported=True,
        state=2,
        key_ring_id="ring-a",
        tags=("prod", "ä-tag", ""),
        created_at=f.at(1),
        updated_at=f.at(2),
        last_action_at=f.at(3),
        version_count=7,
        bit_length=256,
        last_rotated_at=f.at(4),
        expires_at=f.at(5),
        deleted_at=f.at(6),
        deleted_by="someone",
        state_reason=1,
        row_version=9,
    )


def test_add_and_get_round_trips_every_field(any_store: AnyStore) -> None:
    record = full_key()
    minimal = f.key("k-min")
    with any_store.uow() as uow:
        uow.keys.add(record)
        uow.keys.add(minimal)
        uow.commit()
    with any_store.uow() as uow:
        got = uow.keys.get(f.INSTANCE, "k-full")
        assert got == record
        assert got is not None
        assert isinstance(got.tags, tuple)
        assert got.extractable is True and got.imported is True
        assert uow.keys.get(f.INSTANCE, "k-min") == minimal


def test_get_is_scoped_to_the_instance(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1", instance_id="a"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.get("a", "k1") is not None
        assert uow.keys.get("b", "k1") is None
        assert uow.keys.get("a", "K1") is None


def test_same_key_id_in_two_instances(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1", instance_id="a", name="in a"))
        uow.keys.add(f.key("k1", instance_id="b", name="in b"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.get("a", "k1").name == "in a"  # type: ignore[union-attr]
        assert uow.keys.get("b", "k1").name == "in b"  # type: ignore[union-attr]


def test_duplicate_key_id_is_already_exists(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        with pytest.raises(AlreadyExists):
            uow.keys.add(f.key("k1", name="other"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.keys.add(f.key("k1"))
        assert uow.keys.get(f.INSTANCE, "k1").name == "name of k1"  # type: ignore[union-attr]


def test_datetimes_come_back_aware_utc(any_store: AnyStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 14, 30, 0, 999999, tzinfo=plus_two)
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1", created_at=local, expires_at=local))
        uow.commit()
    with any_store.uow() as uow:
        got = uow.keys.get(f.INSTANCE, "k1")
        assert got is not None
        for value in (got.created_at, got.updated_at, got.expires_at):
            assert value is not None
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert got.created_at == local
        assert got.created_at.hour == 12 and got.created_at.microsecond == 999999
        assert got.created_at.tzinfo == UTC


def test_naive_datetimes_are_refused(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.keys.add(f.key("k1", created_at=datetime(2026, 1, 1)))
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.keys.expiring(datetime(2026, 1, 1), 10)


def test_update_bumps_row_version_and_writes_every_field(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with any_store.uow() as uow:
        current = uow.keys.get(f.INSTANCE, "k1")
        assert current is not None and current.row_version == 1
        changed = dataclasses.replace(
            current,
            name="renamed",
            state=3,
            tags=("x",),
            expires_at=f.at(99),
            description="now described",
        )
        stored = uow.keys.update(changed, expected_row_version=1)
        assert stored == dataclasses.replace(changed, row_version=2)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") == stored
        again = uow.keys.update(dataclasses.replace(stored, state=1), expected_row_version=2)
        assert again.row_version == 3
        uow.commit()


def test_update_with_a_stale_row_version_is_a_version_conflict(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with any_store.uow() as uow:
        current = uow.keys.get(f.INSTANCE, "k1")
        assert current is not None
        uow.keys.update(dataclasses.replace(current, name="first"), 1)
        with pytest.raises(VersionConflict):
            uow.keys.update(dataclasses.replace(current, name="second"), 1)
        uow.commit()
    with any_store.uow() as uow:
        got = uow.keys.get(f.INSTANCE, "k1")
        assert got is not None and got.name == "first" and got.row_version == 2


def test_update_of_a_missing_key_is_a_version_conflict(any_store: AnyStore) -> None:
    with any_store.uow() as uow, pytest.raises(VersionConflict):
        uow.keys.update(f.key("ghost"), 1)


def test_delete(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.keys.add(f.key("k2"))
        uow.commit()
    with any_store.uow() as uow:
        uow.keys.delete(f.INSTANCE, "k1")
        uow.keys.delete(f.INSTANCE, "never-there")
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is None
        assert uow.keys.get(f.INSTANCE, "k2") is not None
        with pytest.raises(VersionConflict):
            uow.keys.update(f.key("k1"), 1)
        uow.keys.add(f.key("k1", name="reborn"))  # the id is free again
        uow.commit()
