"""The crypto unit's state store: identities, transcripts, and blob rewrites for rotation."""

from __future__ import annotations

import pytest

from kyok.errors import AlreadyExists, NotFound, VersionConflict
from kyok.store.records import BlobUpdate
from kyok.unit.ports import UnitStateStore

from . import factories as f
from .factories import AnyStore


def test_satisfies_the_unit_port(any_store: AnyStore) -> None:
    def use(units: UnitStateStore) -> str | None:
        return units.unit_for_instance("nobody")

    assert use(any_store.units) is None


def test_create_and_look_up_units(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0), f.entry(1, mac="1:abcd")])
    units.create_unit("u2", "i2", [])
    assert units.unit_instance("u1") == "i1"
    assert units.unit_instance("nope") is None
    assert units.unit_for_instance("i2") == "u2"
    assert units.unit_for_instance("nobody") is None
    assert units.transcript("u1") == [f.entry(0), f.entry(1, mac="1:abcd")]
    assert units.transcript("u2") == []


def test_unit_ids_and_instances_are_unique(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0)])
    with pytest.raises(AlreadyExists):
        units.create_unit("u1", "i9", [f.entry(0)])
    with pytest.raises(AlreadyExists):
        units.create_unit("u9", "i1", [f.entry(0)])
    assert units.unit_instance("u9") is None
    assert units.transcript("u1") == [f.entry(0)]


def test_first_entries_must_be_numbered_from_zero(any_store: AnyStore) -> None:
    with pytest.raises(ValueError):
        any_store.units.create_unit("u1", "i1", [f.entry(1)])
    with pytest.raises(ValueError):
        any_store.units.create_unit("u1", "i1", [f.entry(0), f.entry(2)])
    assert any_store.units.unit_instance("u1") is None


def test_append_and_read_in_order(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0)])
    units.append_transcript("u1", [f.entry(1), f.entry(2, mac="2:ff")])
    units.append_transcript("u1", [])
    units.append_transcript("u1", [f.entry(n) for n in range(3, 15)])
    assert [e.n for e in units.transcript("u1")] == list(range(15))
    assert [e.n for e in units.transcript("u1", after=9)] == [10, 11, 12, 13, 14]
    assert units.transcript("u1", after=14) == []
    assert units.transcript("u1", after=1)[0] == f.entry(2, mac="2:ff")


def test_appending_an_existing_number_is_a_version_conflict(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0), f.entry(1)])
    with pytest.raises(VersionConflict):
        units.append_transcript("u1", [f.entry(1)])
    with pytest.raises(VersionConflict):
        units.append_transcript("u1", [f.entry(1), f.entry(2)])  # atomically: 2 not written
    assert [e.n for e in units.transcript("u1")] == [0, 1]
    units.append_transcript("u1", [f.entry(2)])


def test_append_refuses_gaps_and_unknown_units(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0)])
    with pytest.raises(ValueError):
        units.append_transcript("u1", [f.entry(2)])
    with pytest.raises(ValueError):
        units.append_transcript("u1", [f.entry(1), f.entry(3)])
    with pytest.raises(NotFound):
        units.append_transcript("u9", [f.entry(0)])
    assert [e.n for e in units.transcript("u1")] == [0]


def _seed_blobs(store: AnyStore, count: int, epoch: int = 1) -> None:
    with store.uow() as uow:
        for i in range(count):
            uow.blobs.add(f.blob(f"b{i:06d}", f"k{i % 7}", epoch=epoch, data=b"old"))
        uow.blobs.add(f.blob("elsewhere", "k", epoch=epoch, instance_id="other"))
        uow.commit()


def test_blobs_at_epoch_and_counts(any_store: AnyStore) -> None:
    _seed_blobs(any_store, 5)
    with any_store.uow() as uow:
        uow.blobs.add(f.blob("newer", "k", epoch=2))
        uow.commit()
    units = any_store.units
    assert units.count_blobs(f.INSTANCE) == 6
    assert units.count_blobs_at_epoch(f.INSTANCE, 1) == 5
    assert units.count_blobs_at_epoch(f.INSTANCE, 2) == 1
    assert units.count_blobs_at_epoch(f.INSTANCE, 3) == 0
    found = units.blobs_at_epoch(f.INSTANCE, 1, 3)
    assert [b.id for b in found] == ["b000000", "b000001", "b000002"]
    assert all(b.instance_id == f.INSTANCE and b.mk_epoch == 1 for b in found)
    assert found[0].data == b"old" and found[0].purpose == "root-key"
    assert units.blobs_at_epoch(f.INSTANCE, 1, 0) == []


def test_rewrite_is_compare_and_swap_on_the_epoch(any_store: AnyStore) -> None:
    _seed_blobs(any_store, 3)
    units = any_store.units
    changed = units.rewrite_blobs(
        f.INSTANCE,
        [
            BlobUpdate("b000000", 1, 2, b"new-0"),
            BlobUpdate("b000001", 1, 2, b"new-1"),
            BlobUpdate("missing", 1, 2, b"x"),
            BlobUpdate("elsewhere", 1, 2, b"x"),  # another instance's blob
        ],
    )
    assert changed == 2
    # someone re-sealed b000001 already: a rewrite still expecting epoch 1 is not applied
    assert units.rewrite_blobs(f.INSTANCE, [BlobUpdate("b000001", 1, 3, b"stale")]) == 0
    assert units.rewrite_blobs(f.INSTANCE, []) == 0
    with any_store.uow() as uow:
        assert uow.blobs.get(f.INSTANCE, "b000001") == f.blob(
            "b000001", "k1", epoch=2, data=b"new-1"
        )
        assert uow.blobs.get(f.INSTANCE, "b000002").mk_epoch == 1  # type: ignore[union-attr]
        assert uow.blobs.get("other", "elsewhere").mk_epoch == 1  # type: ignore[union-attr]
    assert units.count_blobs_at_epoch(f.INSTANCE, 1) == 1


def test_rotation_in_batches_visits_every_blob_once(any_store: AnyStore) -> None:
    _seed_blobs(any_store, 2345)
    units = any_store.units
    rewritten: list[str] = []
    while batch := units.blobs_at_epoch(f.INSTANCE, 1, 1000):
        assert len(batch) <= 1000
        updates = [BlobUpdate(b.id, 1, 2, b"resealed:" + b.id.encode()) for b in batch]
        assert units.rewrite_blobs(f.INSTANCE, updates) == len(batch)
        rewritten.extend(b.id for b in batch)
    assert len(rewritten) == len(set(rewritten)) == 2345
    assert units.count_blobs_at_epoch(f.INSTANCE, 1) == 0
    assert units.count_blobs_at_epoch(f.INSTANCE, 2) == 2345
    with any_store.uow() as uow:
        blob = uow.blobs.get(f.INSTANCE, "b001234")
        assert blob is not None and blob.data == b"resealed:b001234"
