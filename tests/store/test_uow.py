"""Unit-of-work semantics, on every backend: nothing is visible or durable until commit."""

from __future__ import annotations

import pytest

from kyok.errors import AlreadyExists, InternalError
from kyok.store.ports import UnitOfWork

from . import factories as f
from .factories import AnyStore


def test_rolls_back_uncommitted_work_by_default(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.key_rings.add(f.key_ring("ring"))
        assert uow.keys.get(f.INSTANCE, "k1") is not None  # a unit of work sees its own work
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is None
        assert uow.key_rings.get(f.INSTANCE, "ring") is None


def test_rolls_back_when_the_block_raises(any_store: AnyStore) -> None:
    with pytest.raises(RuntimeError, match="boom"), any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        raise RuntimeError("boom")
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is None


def test_changes_are_visible_to_others_only_after_commit(any_store: AnyStore) -> None:
    with any_store.uow() as writer:
        writer.keys.add(f.key("k1"))
        with any_store.uow(read_only=True) as reader:
            assert reader.keys.get(f.INSTANCE, "k1") is None
        writer.commit()
        with any_store.uow(read_only=True) as reader:
            assert reader.keys.get(f.INSTANCE, "k1") == f.key("k1")


def test_explicit_rollback_discards_and_work_can_go_on(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.rollback()
        assert uow.keys.get(f.INSTANCE, "k1") is None
        uow.keys.add(f.key("k2"))
        uow.commit()
        uow.keys.add(f.key("k3"))  # after a commit the unit of work goes on ...
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is None
        assert uow.keys.get(f.INSTANCE, "k2") is not None
        assert uow.keys.get(f.INSTANCE, "k3") is None  # ... and rolls back what follows


def test_a_duplicate_leaves_the_unit_of_work_usable(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.keys.add(f.key("k1"))
        uow.keys.add(f.key("k2"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k2") is not None


def test_read_only_unit_of_work_reads_but_refuses_writes(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is not None
        with pytest.raises(InternalError):
            uow.keys.add(f.key("k2"))
        with pytest.raises(InternalError):
            uow.keys.delete(f.INSTANCE, "k1")
        with pytest.raises(InternalError):
            uow.aliases.delete(f.INSTANCE, "nope")


def test_repositories_refuse_use_outside_the_with_block(any_store: AnyStore) -> None:
    uow = any_store.uow()
    with pytest.raises(RuntimeError):
        uow.keys.get(f.INSTANCE, "k1")
    with uow:
        pass
    with pytest.raises(RuntimeError):
        uow.keys.get(f.INSTANCE, "k1")
    with pytest.raises(RuntimeError), uow:
        pass  # a unit of work is entered once


def test_uow_satisfies_the_port(any_store: AnyStore) -> None:
    def use(uow: UnitOfWork) -> int:
        with uow:
            return uow.keys.count(f.query())

    assert use(any_store.uow()) == 0
