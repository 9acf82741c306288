"""Aliases, key rings and instances."""

from __future__ import annotations

import pytest

from kyok.auth.principals import Principal
from kyok.kms import validation
from kyok.kms.errors import (
    AliasExists,
    AliasLimitExceeded,
    AliasNotFound,
    InstanceExists,
    InstanceNotFound,
    InvalidField,
    KeyDeleted,
    KeyNotFound,
    KeyRingExists,
    KeyRingLimitExceeded,
    KeyRingNotEmpty,
    KeyRingNotFound,
    KeyRingReserved,
)
from kyok.store.records import KeyQuery

# ----------------------------------------------------------------------------- aliases


def test_create_and_delete_alias(service, actor, instance, clock):
    key = service.create_key(actor, instance, "aliased")
    rec = service.create_alias(actor, instance, key.id, "first-alias")
    assert (rec.alias, rec.key_id, rec.created_by, rec.created_at) == (
        "first-alias",
        key.id,
        actor.id,
        clock.now(),
    )
    service.create_alias(actor, instance, "first-alias", "second-alias")  # address by alias
    assert service.get_key(instance, key.id).aliases == ("first-alias", "second-alias")
    service.delete_alias(actor, instance, key.id, "first-alias")
    assert service.get_key(instance, "second-alias").aliases == ("second-alias",)
    with pytest.raises(KeyNotFound):
        service.get_key(instance, "first-alias")
    with pytest.raises(AliasNotFound) as info:
        service.delete_alias(actor, instance, key.id, "first-alias")
    assert info.value.status == 404


def test_alias_of_another_key_cannot_be_deleted_through_this_one(service, actor, instance):
    a = service.create_key(actor, instance, "key-a", aliases=["alias-a"])
    b = service.create_key(actor, instance, "key-b")
    with pytest.raises(AliasNotFound):
        service.delete_alias(actor, instance, b.id, "alias-a")
    assert service.get_key(instance, "alias-a").id == a.id


def test_alias_unique_per_instance(service, actor, instance):
    service.create_key(actor, instance, "key-a", aliases=["taken"])
    b = service.create_key(actor, instance, "key-b")
    with pytest.raises(AliasExists) as info:
        service.create_alias(actor, instance, b.id, "taken")
    assert info.value.status == 409
    with pytest.raises(AliasExists):
        service.create_key(actor, instance, "key-c", aliases=["free", "taken"])
    with pytest.raises(KeyNotFound):  # nothing of key-c was written
        service.get_key(instance, "free")


def test_alias_rules_on_create(service, actor, instance):
    key = service.create_key(actor, instance, "k-rules")
    for bad in ("a", "keys", "12345678-1234-1234-1234-123456789abc", "sp ace"):
        with pytest.raises(InvalidField) as info:
            service.create_alias(actor, instance, key.id, bad)
        assert info.value.target == "alias"


def test_five_aliases_per_key(service, actor, instance):
    key = service.create_key(actor, instance, "five", aliases=["a1", "a2", "a3", "a4"])
    service.create_alias(actor, instance, key.id, "a5")
    with pytest.raises(AliasLimitExceeded) as info:
        service.create_alias(actor, instance, key.id, "a6")
    assert info.value.status == 409 and info.value.limit == 5
    service.delete_alias(actor, instance, key.id, "a1")
    service.create_alias(actor, instance, key.id, "a6")


def test_thousand_aliases_per_instance(service, actor, instance, monkeypatch):
    monkeypatch.setattr(validation, "ALIASES_PER_INSTANCE", 3)
    service.create_key(actor, instance, "k1", aliases=["x1", "x2"])
    with pytest.raises(AliasLimitExceeded):
        service.create_key(actor, instance, "k2", aliases=["x3", "x4"])
    k3 = service.create_key(actor, instance, "k3", aliases=["x3"])
    with pytest.raises(AliasLimitExceeded) as info:
        service.create_alias(actor, instance, k3.id, "x4")
    assert info.value.scope == "instance"


def test_aliases_of_destroyed_keys(service, actor, instance, clock):
    key = service.create_key(actor, instance, "doomed", aliases=["doomed-alias"])
    service.delete(actor, instance, key.id)
    assert service.get_key(instance, "doomed-alias").deleted  # still resolves until purge
    with pytest.raises(KeyDeleted):
        service.create_alias(actor, instance, key.id, "another")
    clock.advance(4 * 3600)
    service.purge(actor, instance, "doomed-alias")
    with pytest.raises(KeyNotFound):
        service.get_key(instance, "doomed-alias")
    # The alias is free again.
    assert service.create_key(actor, instance, "reborn", aliases=["doomed-alias"]).aliases == (
        "doomed-alias",
    )


# ----------------------------------------------------------------------------- key rings


def test_instance_has_default_ring(service, actor, instance):
    rings, total = service.list_key_rings(instance)
    assert [r.id for r in rings] == ["default"] and total == 1


def test_key_ring_lifecycle(service, actor, instance, clock):
    ring = service.create_key_ring(actor, instance, "team-a")
    assert (ring.id, ring.created_by, ring.created_at) == ("team-a", actor.id, clock.now())
    with pytest.raises(KeyRingExists) as info:
        service.create_key_ring(actor, instance, "team-a")
    assert info.value.status == 409
    rings, total = service.list_key_rings(instance, limit=1, offset=1)
    assert [r.id for r in rings] == ["team-a"] and total == 2
    service.delete_key_ring(actor, instance, "team-a")
    with pytest.raises(KeyRingNotFound):
        service.delete_key_ring(actor, instance, "team-a")
    assert service.list_key_rings(instance)[1] == 1


def test_default_ring_is_reserved(service, actor, instance):
    with pytest.raises(KeyRingReserved) as info:
        service.create_key_ring(actor, instance, "default")
    assert info.value.status == 400
    with pytest.raises(KeyRingReserved):
        service.delete_key_ring(actor, instance, "default")


def test_key_ring_id_rules(service, actor, instance):
    for bad in ("a", "UPPER", "-lead", "x" * 101, "with_underscore"):
        with pytest.raises(InvalidField) as info:
            service.create_key_ring(actor, instance, bad)
        assert info.value.target == "key_ring_id"


def test_key_ring_limit(service, actor, instance, monkeypatch):
    monkeypatch.setattr(validation, "KEY_RINGS_PER_INSTANCE", 3)
    service.create_key_ring(actor, instance, "r1")
    service.create_key_ring(actor, instance, "r2")
    with pytest.raises(KeyRingLimitExceeded):
        service.create_key_ring(actor, instance, "r3")


def test_key_ring_with_keys_cannot_be_deleted(service, actor, instance, clock):
    service.create_key_ring(actor, instance, "busy")
    live = service.create_key(actor, instance, "live", key_ring_id="busy")
    dead = service.create_key(actor, instance, "dead", key_ring_id="busy")
    service.delete(actor, instance, dead.id)
    with pytest.raises(KeyRingNotEmpty) as info:
        service.delete_key_ring(actor, instance, "busy", force=True)
    assert info.value.status == 409 and not info.value.destroyed_only
    service.patch_key_ring(actor, instance, live.id, "default")
    with pytest.raises(KeyRingNotEmpty) as info:
        service.delete_key_ring(actor, instance, "busy")
    assert info.value.destroyed_only
    service.delete_key_ring(actor, instance, "busy", force=True)
    assert service.get_key(instance, dead.id).record.key_ring_id == "default"
    assert [r.id for r in service.list_key_rings(instance)[0]] == ["default"]


def test_key_rings_need_an_instance(service, actor):
    with pytest.raises(InstanceNotFound):
        service.create_key_ring(actor, "nope", "ring-x")
    with pytest.raises(InstanceNotFound):
        service.list_key_rings("nope")


def test_list_keys_by_ring(service, actor, instance):
    service.create_key_ring(actor, instance, "ring-z")
    service.create_key(actor, instance, "in-ring", key_ring_id="ring-z")
    service.create_key(actor, instance, "in-default")
    keys, total = service.list_keys(KeyQuery(instance, key_ring_id="ring-z"))
    assert [k.record.name for k in keys] == ["in-ring"] and total == 1


# ----------------------------------------------------------------------------- instances


def test_create_and_list_instances(service, actor, clock, units):
    a = service.create_instance(actor, "first")
    b = service.create_instance(actor, "second", instance_id="dev-instance", seal="shares")
    assert b.id == "dev-instance"
    assert a.created_by == actor.id and a.created_at == clock.now()
    assert a.unit_id == units.directory.for_instance(a.id).unit_id
    assert service.get_instance(a.id) == a
    assert {i.id for i in service.list_instances()} == {a.id, b.id}
    with pytest.raises(InstanceNotFound) as info:
        service.get_instance("missing")
    assert info.value.status == 404


def test_shares_instance_is_sealed_until_a_ceremony(service, actor):
    from kyok.unit.errors import UnitSealed

    inst = service.create_instance(actor, "ceremonial", seal="shares").id
    with pytest.raises(UnitSealed):
        service.create_key(actor, inst, "too-early")
    assert service.list_keys(KeyQuery(inst))[1] == 0


def test_instance_rules(service, actor):
    service.create_instance(actor, "fixed", instance_id="fixed-id")
    with pytest.raises(InstanceExists):
        service.create_instance(actor, "again", instance_id="fixed-id")
    for kwargs, target in (
        ({"name": ""}, "name"),
        ({"name": "ok", "seal": "magic"}, "seal"),
        ({"name": "ok", "instance_id": "bad id"}, "instance_id"),
    ):
        name = kwargs.pop("name")
        with pytest.raises(InvalidField) as info:
            service.create_instance(actor, name, **kwargs)
        assert info.value.target == target


def test_actor_is_recorded(service, instance):
    bob = Principal("service-id-bob")
    key = service.create_key(bob, instance, "bobs")
    assert key.record.created_by == "service-id-bob"
    view = service.delete(bob, instance, key.id)
    assert view.record.deleted_by == "service-id-bob"
