"""Instances and key rings."""

from __future__ import annotations

import pytest

from kyok.errors import AlreadyExists

from . import factories as f
from .factories import AnyStore


def test_instances_add_get_list(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.instances.add(f.instance("b", created_at=f.at(1)))
        uow.instances.add(f.instance("a", created_at=f.at(2)))
        uow.instances.add(f.instance("c", created_at=f.at(1), name="Ünïcode ☃"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.instances.get("a") == f.instance("a", created_at=f.at(2))
        assert uow.instances.get("nope") is None
        assert [i.id for i in uow.instances.list()] == ["b", "c", "a"]  # creation, then id
        assert uow.instances.get("c").name == "Ünïcode ☃"  # type: ignore[union-attr]


def test_duplicate_instance_is_already_exists(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.instances.add(f.instance("a"))
        uow.commit()
    with any_store.uow() as uow, pytest.raises(AlreadyExists):
        uow.instances.add(f.instance("a", name="again"))


def test_key_rings_crud_and_paging(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.key_rings.add(f.key_ring("default", created_at=f.at(0)))
        for i in range(5):
            uow.key_rings.add(f.key_ring(f"ring-{4 - i}", created_at=f.at(10)))
        uow.key_rings.add(f.key_ring("elsewhere", instance_id="other"))
        uow.commit()
    with any_store.uow() as uow:
        rings = uow.key_rings
        assert rings.get(f.INSTANCE, "default") == f.key_ring("default", created_at=f.at(0))
        assert rings.get(f.INSTANCE, "elsewhere") is None
        assert rings.count(f.INSTANCE) == 6
        assert rings.count("other") == 1
        everything = [r.id for r in rings.list(f.INSTANCE, limit=100, offset=0)]
        assert everything == ["default", "ring-0", "ring-1", "ring-2", "ring-3", "ring-4"]
        pages = [r.id for offset in range(0, 6, 4) for r in rings.list(f.INSTANCE, 4, offset)]
        assert pages == everything
        assert rings.list(f.INSTANCE, 0, 0) == []
        with pytest.raises(ValueError):
            rings.list(f.INSTANCE, -1, 0)
        assert rings.delete(f.INSTANCE, "ring-2") is True
        assert rings.delete(f.INSTANCE, "ring-2") is False
        with pytest.raises(AlreadyExists):
            rings.add(f.key_ring("ring-3"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_rings.count(f.INSTANCE) == 5
