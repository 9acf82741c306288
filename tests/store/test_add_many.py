"""The SQL repositories' multi-row inserts (``add_many``, the key-creation batches' path): they
go to the driver's cursor directly, so they must store exactly what ``add`` stores (read back
through SQLAlchemy, every field round-trips), refuse what ``add`` refuses, and take part in
the unit of work's transaction. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kyok.errors import AlreadyExists, InternalError
from kyok.store.sql import SqlStore

from . import factories as f
from .test_keys import full_key

PLUS_TWO = timezone(timedelta(hours=2))


def test_keys_add_many_stores_what_add_stores(sql_store: SqlStore) -> None:
    full = full_key()
    local = datetime(2026, 6, 1, 14, 30, 0, 999999, tzinfo=PLUS_TWO)
    records = [
        dataclasses.replace(full, id="many-full"),
        f.key("many-min"),
        f.key("many-local", created_at=local, expires_at=local, tags=()),
    ]
    with sql_store.uow() as uow:
        uow.keys.add(full)
        uow.keys.add_many(records)  # type: ignore[attr-defined]
        uow.commit()
    with sql_store.uow(read_only=True) as uow:
        for record in records:
            got = uow.keys.get(f.INSTANCE, record.id)
            assert got == record
            assert got is not None and got.created_at.tzinfo == UTC
        by_add = uow.keys.get(f.INSTANCE, full.id)
        by_many = uow.keys.get(f.INSTANCE, "many-full")
        assert by_add is not None and by_many is not None
        assert dataclasses.replace(by_many, id=full.id) == by_add
        got = uow.keys.get(f.INSTANCE, "many-local")
        assert got is not None and got.created_at.hour == 12


def test_times_written_by_add_many_compare_like_those_written_by_add(sql_store: SqlStore) -> None:
    # SQLite keeps times as text: both paths must write the same text, or ordering and
    # range queries (the expiry sweep) would mix them up.
    with sql_store.uow() as uow:
        uow.keys.add(f.key("a", state=1, expires_at=f.at(10)))
        uow.keys.add_many([f.key("b", state=1, expires_at=f.at(5))])  # type: ignore[attr-defined]
        uow.keys.add_many([f.key("c", state=1, expires_at=f.at(20))])  # type: ignore[attr-defined]
        uow.commit()
    with sql_store.uow(read_only=True) as uow:
        due = uow.keys.expiring(f.at(10), 10)
    assert [k.id for k in due] == ["b", "a"]


def test_versions_and_blobs_add_many(sql_store: SqlStore) -> None:
    versions = [f.version(f"v{n}", key_id="k1", number=n) for n in range(1, 4)]
    blobs = [f.blob(f"v{n}", owner_id="k1", data=bytes([n]) * 40, epoch=n) for n in range(1, 4)]
    with sql_store.uow() as uow:
        uow.versions.add_many(versions)  # type: ignore[attr-defined]
        uow.blobs.add_many(blobs)  # type: ignore[attr-defined]
        uow.commit()
    with sql_store.uow(read_only=True) as uow:
        assert uow.versions.list_for_key(f.INSTANCE, "k1", 10, 0) == versions[::-1]
        assert uow.blobs.get_many(f.INSTANCE, ["v1", "v2", "v3"]) == {b.id: b for b in blobs}


def test_add_many_with_a_taken_id_is_already_exists_and_writes_nothing(
    sql_store: SqlStore,
) -> None:
    with sql_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with sql_store.uow() as uow, pytest.raises(AlreadyExists):
        uow.keys.add_many([f.key("k2"), f.key("k1")])  # type: ignore[attr-defined]
    with sql_store.uow(read_only=True) as uow:
        assert uow.keys.get(f.INSTANCE, "k2") is None


def test_add_many_is_rolled_back_with_its_unit_of_work(sql_store: SqlStore) -> None:
    with sql_store.uow() as uow:
        uow.keys.add_many([f.key("k1"), f.key("k2")])  # type: ignore[attr-defined]
        # no commit
    with sql_store.uow(read_only=True) as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is None


def test_add_many_refuses_naive_times_and_read_only_units(sql_store: SqlStore) -> None:
    with sql_store.uow() as uow, pytest.raises(ValueError, match="timezone-aware"):
        uow.keys.add_many([f.key("k1", created_at=datetime(2026, 1, 1))])  # type: ignore[attr-defined]
    with sql_store.uow(read_only=True) as uow, pytest.raises(InternalError):
        uow.keys.add_many([f.key("k1")])  # type: ignore[attr-defined]


def test_add_many_of_nothing_does_nothing(sql_store: SqlStore) -> None:
    with sql_store.uow(read_only=True) as uow:
        uow.keys.add_many([])  # type: ignore[attr-defined]
