"""Creating, reading, listing and rotating keys."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from kyok.kms.errors import (
    InstanceNotFound,
    InvalidField,
    InvalidQueryParam,
    KeyDeleted,
    KeyNotFound,
    KeyRingNotFound,
    KeyStateConflict,
    NotExtractable,
    PayloadNotAllowed,
    PayloadRequired,
    RootKeyRequired,
    SearchTooBroad,
)
from kyok.kms.keys import KeyState
from kyok.kms.query import parse_key_query
from kyok.kms.service import KeyService
from kyok.store.records import KeyQuery


def test_create_root_key(service, actor, instance, clock, store):
    key = service.create_key(
        actor,
        instance,
        "payments",
        description="for payments",
        tags=["prod", "eu"],
        aliases=["pay-root"],
    )
    r = key.record
    assert uuid.UUID(key.id)
    assert (r.name, r.description, r.tags) == ("payments", "for payments", ("prod", "eu"))
    assert r.extractable is False and r.imported is False
    assert r.state == 1 and key.state is KeyState.ACTIVE
    assert r.key_ring_id == "default"
    assert r.created_by == actor.id and r.created_at == clock.now()
    assert r.version_count == 1 and r.bit_length == 256
    assert key.aliases == ("pay-root",)
    assert key.version_created_at == clock.now() and key.version_id != key.id
    assert not key.deleted and key.restore_expires_at is None and key.purge_allowed_from is None
    # One unit of work wrote the key, its version, its blob and its alias.
    with store.uow() as uow:
        assert uow.keys.get(instance, key.id) == r
        version = uow.versions.get(instance, key.version_id)
        assert version is not None and version.number == 1 and version.key_id == key.id
        blob = uow.blobs.get(instance, key.version_id)
        assert blob is not None and blob.owner_id == key.id and blob.purpose == "root-key"
        assert uow.aliases.get(instance, "pay-root").key_id == key.id


def test_key_material_never_in_the_store_in_clear(service, actor, instance, store):
    material = os.urandom(32)
    key = service.create_key(actor, instance, "imported", material=material)
    assert key.record.imported is True
    with store.uow() as uow:
        assert material not in uow.blobs.get(instance, key.version_id).data


@pytest.mark.parametrize("size", [16, 24, 32])
def test_imported_root_key_sizes(service, actor, instance, size):
    material = os.urandom(size)
    key = service.create_key(actor, instance, "imported", material=material)
    assert key.record.bit_length == size * 8
    res = service.wrap(instance, key.id, b"d" * 32)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == b"d" * 32


def test_imported_key_wraps_with_the_given_material(service, actor, instance):
    """kyok-wrap-v1 is documented so that the holder of the material can unwrap alone."""
    from kyok.crypto.aead import DerivedKeyAead
    from kyok.unit import wrapping

    material = os.urandom(32)
    key = service.create_key(actor, instance, "imported", material=material)
    ct = service.wrap(instance, key.id, b"d" * 32, ["x"]).ciphertext
    head = ct[: wrapping.HEADER_SIZE]
    assert (
        DerivedKeyAead(material).decrypt(ct[wrapping.HEADER_SIZE :], wrapping.aad(head, ["x"]))
        == b"d" * 32
    )


def test_standard_key_material(service, actor, instance, units):
    gen = service.create_key(actor, instance, "std-gen", extractable=True)
    assert len(service.get_key_material(instance, gen.id)) == 32
    imported = service.create_key(
        actor, instance, "std-imp", extractable=True, material=b"secret" * 100
    )
    assert imported.record.imported and imported.record.bit_length == 4800
    assert service.get_key_material(instance, imported.id) == b"secret" * 100
    units.seal(instance)
    from kyok.unit.errors import UnitSealed

    with pytest.raises(UnitSealed):
        service.get_key_material(instance, imported.id)


def test_root_key_material_is_never_returned(service, actor, instance):
    key = service.create_key(actor, instance, "root")
    with pytest.raises(NotExtractable) as info:
        service.get_key_material(instance, key.id)
    assert info.value.status == 400


def test_destroyed_standard_key_material_is_gone(service, actor, instance):
    key = service.create_key(actor, instance, "std", extractable=True)
    service.delete(actor, instance, key.id)
    with pytest.raises(KeyDeleted):
        service.get_key_material(instance, key.id)


def test_create_key_checks_its_inputs(service, actor, instance, clock):
    cases = [
        ({"name": "x"}, "name"),
        ({"description": "d" * 241}, "description"),
        ({"tags": ["a:b"]}, "tags"),
        ({"aliases": ["a", "b"]}, "aliases"),
        ({"aliases": ["wrap"]}, "aliases"),
        ({"expires_at": clock.now()}, "expires_at"),
        ({"material": b"short"}, "material"),
        ({"material": b"x" * 7501, "extractable": True}, "material"),
        ({"key_ring_id": "Bad Ring"}, "key_ring_id"),
        ({"extractable": "yes"}, "extractable"),
    ]
    for kwargs, target in cases:
        name = kwargs.pop("name", "good-name")
        with pytest.raises(InvalidField) as info:
            service.create_key(actor, instance, name, **kwargs)
        assert info.value.target == target, kwargs
    keys, total = service.list_keys(KeyQuery(instance, states=frozenset({0, 1, 2, 3, 5})))
    assert total == 0 and keys == []


def test_create_key_needs_instance_and_ring(service, actor, instance):
    with pytest.raises(InstanceNotFound):
        service.create_key(actor, "no-such-instance", "name")
    with pytest.raises(KeyRingNotFound):
        service.create_key(actor, instance, "name", key_ring_id="no-such-ring")
    service.create_key_ring(actor, instance, "team-a")
    assert (
        service.create_key(actor, instance, "name", key_ring_id="team-a").record.key_ring_id
        == "team-a"
    )


def test_get_key_by_id_or_alias(service, actor, instance):
    key = service.create_key(actor, instance, "named", aliases=["first", "second"])
    assert service.get_key(instance, key.id).id == key.id
    assert service.get_key(instance, "second").id == key.id
    assert service.get_key(instance, key.id.upper()).id == key.id
    assert service.get_key(instance, key.id.replace("-", "")).id == key.id
    for missing in (str(uuid.uuid4()), "third", "", "not a valid alias!"):
        with pytest.raises(KeyNotFound) as info:
            service.get_key(instance, missing)
        assert info.value.status == 404 and info.value.code == "KEY_NOT_FOUND_ERR"


def test_keys_are_scoped_by_instance(service, actor, instance):
    key = service.create_key(actor, instance, "mine", aliases=["mine-alias"])
    other = service.create_instance(actor, "other").id
    with pytest.raises(KeyNotFound):
        service.get_key(other, key.id)
    with pytest.raises(KeyNotFound):
        service.get_key(other, "mine-alias")
    with pytest.raises(KeyNotFound):
        service.disable(actor, other, key.id)
    # The same alias may exist in another instance.
    assert service.create_key(actor, other, "theirs", aliases=["mine-alias"]).aliases == (
        "mine-alias",
    )


def test_rotate_rules(service, actor, instance, clock):
    gen = service.create_key(actor, instance, "generated")
    imp = service.create_key(actor, instance, "imported", material=os.urandom(16))
    std = service.create_key(actor, instance, "standard", extractable=True)
    with pytest.raises(PayloadNotAllowed):
        service.rotate(actor, instance, gen.id, os.urandom(32))
    with pytest.raises(PayloadRequired) as info:
        service.rotate(actor, instance, imp.id)
    assert info.value.code == "KEY_PAYLOAD_REQ_ERR" and info.value.status == 400
    with pytest.raises(InvalidField):
        service.rotate(actor, instance, imp.id, os.urandom(20))
    with pytest.raises(RootKeyRequired):
        service.rotate(actor, instance, std.id)
    rotated = service.rotate(actor, instance, imp.id, os.urandom(24))
    assert rotated.record.version_count == 2 and rotated.record.bit_length == 192
    assert rotated.record.last_rotated_at == clock.now()
    assert rotated.version_id != imp.version_id and rotated.version_created_at == clock.now()
    assert service.rotate(actor, instance, gen.id).record.version_count == 2


def test_rotate_in_deactivated_state(service, actor, instance, clock, store):
    key = service.create_key(
        actor, instance, "expiring", expires_at=clock.now() + timedelta(minutes=1)
    )
    clock.advance(timedelta(minutes=1))
    view = service.rotate(actor, instance, key.id)
    assert view.state is KeyState.DEACTIVATED
    with store.uow() as uow:
        assert uow.keys.get(instance, key.id).state == 3  # the write also made it explicit


def test_list_versions(service, actor, instance, clock):
    key = service.create_key(actor, instance, "versions")
    ids = [key.version_id]
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        ids.append(service.rotate(actor, instance, key.id).version_id)
    versions, total = service.list_versions(instance, key.id)
    assert total == 4
    assert [v.id for v in versions] == ids[::-1]
    assert [v.number for v in versions] == [4, 3, 2, 1]
    page, total = service.list_versions(instance, key.id, limit=2, offset=1)
    assert [v.id for v in page] == ids[2:0:-1] and total == 4
    service.disable(actor, instance, key.id)
    with pytest.raises(KeyStateConflict):
        service.list_versions(instance, key.id)
    assert service.list_versions(instance, key.id, all_states=True)[1] == 4
    service.delete(actor, instance, key.id)
    with pytest.raises(KeyStateConflict) as info:
        service.list_versions(instance, key.id)
    assert info.value.status == 409
    assert service.list_versions(instance, key.id, all_states=True)[1] == 4
    with pytest.raises(InvalidField):
        service.list_versions(instance, key.id, limit=0)


def _names(views):
    return [v.record.name for v in views]


def test_list_keys_hides_destroyed_by_default(service, actor, instance, clock):
    a = service.create_key(actor, instance, "alpha", aliases=["a-one"])
    b = service.create_key(actor, instance, "beta", extractable=True)
    c = service.create_key(actor, instance, "gamma")
    service.delete(actor, instance, c.id)
    keys, total = service.list_keys(parse_key_query(instance))
    assert total == 2 and sorted(_names(keys)) == ["alpha", "beta"]
    assert {k.id: k.aliases for k in keys}[a.id] == ("a-one",)
    keys, total = service.list_keys(parse_key_query(instance, state="5"))
    assert total == 1 and keys[0].deleted and keys[0].id == c.id
    keys, _ = service.list_keys(parse_key_query(instance, extractable="true"))
    assert [k.id for k in keys] == [b.id]
    assert service.count_keys(parse_key_query(instance, state="0,1,2,3,5")) == 3


def test_list_keys_search_sort_filter_and_pages(service, actor, instance, clock):
    made = []
    for n, name in enumerate(["Prod-DB", "prod-cache", "staging", "dev"]):
        made.append(service.create_key(actor, instance, name, aliases=[f"alias-{name.lower()}"]))
        clock.advance(60 * (n + 1))
    q = parse_key_query(instance, search="prod", sort="-creationDate")
    keys, total = service.list_keys(q)
    assert _names(keys) == ["prod-cache", "Prod-DB"] and total == 2
    keys, _ = service.list_keys(parse_key_query(instance, search="not:prod", sort="creationDate"))
    assert _names(keys) == ["staging", "dev"]
    keys, _ = service.list_keys(parse_key_query(instance, search="exact:alias:alias-dev"))
    assert _names(keys) == ["dev"]
    keys, _ = service.list_keys(parse_key_query(instance, search="name:alias-dev"))
    assert keys == []
    after = made[1].record.created_at
    keys, total = service.list_keys(
        parse_key_query(
            instance, filter=f'creationDate=gt:"{after.isoformat()}"', sort="creationDate"
        )
    )
    assert _names(keys) == ["staging", "dev"] and total == 2
    keys, total = service.list_keys(
        parse_key_query(instance, sort="creationDate", limit=2, offset=1)
    )
    assert _names(keys) == ["prod-cache", "staging"] and total == 4
    keys, _ = service.list_keys(parse_key_query(instance, filter="lastRotateDate=none"))
    assert len(keys) == 4


def test_list_keys_checks_scope(service, actor, instance):
    with pytest.raises(InstanceNotFound):
        service.list_keys(KeyQuery("no-such-instance"))
    with pytest.raises(KeyRingNotFound):
        service.list_keys(KeyQuery(instance, key_ring_id="no-such-ring"))
    with pytest.raises(InvalidQueryParam):
        service.list_keys(KeyQuery(instance, limit=0))
    with pytest.raises(InvalidQueryParam):
        service.count_keys(KeyQuery(instance, sort=(("name", False),)))


def test_search_too_broad(store, units, clock, actor):
    service = KeyService(store.uow, units.directory, clock, search_scope_limit=3)
    inst = service.create_instance(actor, "small").id
    for n in range(4):
        service.create_key(actor, inst, f"key-{n}")
    with pytest.raises(SearchTooBroad) as info:
        service.list_keys(parse_key_query(inst, search="key"))
    assert info.value.code == "KEY_SEARCH_TOO_BROAD" and info.value.status == 400
    # Narrowing the scope (here to destroyed keys) makes it acceptable.
    assert service.list_keys(parse_key_query(inst, search="key", state="5"))[1] == 0
    assert service.count_keys(parse_key_query(inst)) == 4


def test_list_keys_shows_effective_state(service, actor, instance, clock):
    key = service.create_key(
        actor, instance, "soon", expires_at=clock.now() + timedelta(seconds=10)
    )
    clock.advance(10)
    keys, _ = service.list_keys(parse_key_query(instance))
    assert [k.state for k in keys if k.id == key.id] == [KeyState.DEACTIVATED]


def test_patch_key_ring(service, actor, instance):
    service.create_key_ring(actor, instance, "ring-b")
    key = service.create_key(actor, instance, "mover")
    moved = service.patch_key_ring(actor, instance, key.id, "ring-b")
    assert moved.record.key_ring_id == "ring-b"
    with pytest.raises(KeyNotFound):  # X-Kms-Key-Ring names the ring the key is in now
        service.patch_key_ring(actor, instance, key.id, "default", current_key_ring_id="default")
    back = service.patch_key_ring(actor, instance, key.id, "default", current_key_ring_id="ring-b")
    assert back.record.key_ring_id == "default"
    with pytest.raises(KeyRingNotFound):
        service.patch_key_ring(actor, instance, key.id, "ring-c")
    with pytest.raises(InvalidField):
        service.patch_key_ring(actor, instance, key.id, "Ring C")
    _keys, total = service.list_keys(KeyQuery(instance, key_ring_id="default"))
    assert total == 1
    service.delete(actor, instance, key.id)
    with pytest.raises(KeyDeleted):
        service.patch_key_ring(actor, instance, key.id, "ring-b")
