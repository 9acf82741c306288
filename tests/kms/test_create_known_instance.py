"""A creation in an instance the service already created keys in skips the instance and
default-ring lookups (instances are never deleted, nor their default key ring); every other
check still reads the store, and an unknown instance or ring is still refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kyok.auth.principals import Principal
from kyok.kms.errors import InstanceNotFound, KeyRingNotFound
from kyok.kms.service import KeyService


def _lookups(service: KeyService, store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the instance and key-ring lookups of the service's units of work."""
    seen: list[str] = []
    real_uow = store.uow

    def uow(*args: Any, **kwargs: Any) -> Any:
        unit = real_uow(*args, **kwargs)
        instances, rings = unit.instances, unit.key_rings
        real_get, real_ring = instances.get, rings.get

        def get(instance_id: str) -> Any:
            seen.append(f"instance {instance_id}")
            return real_get(instance_id)

        def ring(instance_id: str, ring_id: str) -> Any:
            seen.append(f"ring {ring_id}")
            return real_ring(instance_id, ring_id)

        monkeypatch.setattr(instances, "get", get)
        monkeypatch.setattr(rings, "get", ring)
        return unit

    monkeypatch.setattr(service, "_uow", uow)
    return seen


def test_a_known_instance_skips_the_lookups_and_nothing_else(
    service: KeyService, store: Any, actor: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = service.create_instance(actor, "i").id
    service.create_key_ring(actor, inst, "ring-a")
    seen = _lookups(service, store, monkeypatch)
    service.create_key(actor, inst, "first")
    assert seen == [f"instance {inst}", "ring default"]  # not known yet: both read
    seen.clear()
    service.create_key(actor, inst, "second")
    assert seen == []  # known: the default ring exists
    service.create_key(actor, inst, "third", key_ring_id="ring-a")
    assert seen == ["ring ring-a"]  # another ring is always read
    seen.clear()
    with pytest.raises(KeyRingNotFound):
        service.create_key(actor, inst, "fourth", key_ring_id="no-such-ring")
    with pytest.raises(InstanceNotFound):
        service.create_key(actor, "00000000-0000-4000-8000-000000000000", "fifth")
    with pytest.raises(InstanceNotFound):  # a refused instance is not remembered
        service.create_key(actor, "00000000-0000-4000-8000-000000000000", "sixth")


def test_the_async_path_remembers_the_same(
    service: KeyService, store: Any, actor: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = service.create_instance(actor, "i").id
    seen = _lookups(service, store, monkeypatch)

    async def create(n: int) -> None:
        await service.create_key_async(actor, inst, f"k-{n}")

    asyncio.run(create(0))
    assert seen == [f"instance {inst}", "ring default"]
    seen.clear()

    async def many() -> None:
        await asyncio.gather(*(create(n) for n in range(1, 9)))

    asyncio.run(many())
    assert seen == []
