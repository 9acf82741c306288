"""How changes are written: optimistic concurrency with bounded retries, the audit hook, the
deletion-guard hook, and handle invalidation."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from kyok.auth.principals import SYSTEM
from kyok.errors import Conflict, VersionConflict
from kyok.kms.events import EventAction, KmsEvent
from kyok.kms.keys import KeyState
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers
from kyok.store.records import KeyQuery

from .fakes import RacingUowFactory


@pytest.fixture
def lost_updates_possible(store_kind):
    if store_kind == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): an update cannot be lost")


@pytest.fixture
def racing(lost_updates_possible, store, units, clock, audit):
    factory = RacingUowFactory(store.uow)
    return factory, KeyService(
        factory, units.directory, clock, Timers(), audit=audit, max_attempts=3
    )


def test_a_lost_race_is_retried(racing, actor):
    factory, service = racing
    inst = service.create_instance(actor, "race").id
    key = service.create_key(actor, inst, "contended")
    factory.races = 2
    view = service.disable(actor, inst, key.id)
    assert factory.raced == 2
    assert view.state is KeyState.SUSPENDED
    assert view.record.description == "raced 2"  # the winner's change is kept, not overwritten
    assert view.record.row_version == key.record.row_version + 3


def test_too_many_lost_races_surface_as_409(racing, actor):
    factory, service = racing
    inst = service.create_instance(actor, "race").id
    key = service.create_key(actor, inst, "contended")
    factory.races = 3
    with pytest.raises(VersionConflict) as info:
        service.disable(actor, inst, key.id)
    assert isinstance(info.value, Conflict) and info.value.status == 409
    assert service.get_key(inst, key.id).state is KeyState.ACTIVE


def test_every_use_case_that_writes_a_key_retries(racing, actor, clock):
    factory, service = racing
    inst = service.create_instance(actor, "race").id
    key = service.create_key(actor, inst, "contended")
    steps = [
        lambda: service.rotate(actor, inst, key.id),
        lambda: service.create_alias(actor, inst, key.id, "al-1"),
        lambda: service.delete_alias(actor, inst, key.id, "al-1"),
        lambda: service.disable(actor, inst, key.id),
        lambda: (clock.advance(31), service.enable(actor, inst, key.id)),
        lambda: service.delete(actor, inst, key.id),
        lambda: (clock.advance(31), service.restore(actor, inst, key.id)),
        lambda: service.delete(actor, inst, key.id),
        lambda: (clock.advance(4 * 3600), service.purge(actor, inst, key.id)),
    ]
    for step in steps:
        factory.races = 1
        factory.raced = 0
        step()
        assert factory.raced == 1


def test_concurrent_restore_stops_a_purge(lost_updates_possible, store, units, clock, actor):
    """Purge claims the row with the expected version: a restore that got in first wins."""
    factory = RacingUowFactory(store.uow)
    service = KeyService(factory, units.directory, clock, max_attempts=1)
    inst = service.create_instance(actor, "race").id
    key = service.create_key(actor, inst, "contended")
    service.delete(actor, inst, key.id)
    clock.advance(5 * 3600)
    factory.races = 1
    with pytest.raises(VersionConflict):
        service.purge(actor, inst, key.id)
    assert service.get_key(inst, key.id).deleted  # still there


def test_audit_events_for_every_change(service, audit, actor, instance, clock):
    key = service.create_key(actor, instance, "audited", material=b"m" * 32)
    service.rotate(actor, instance, key.id, b"n" * 32)
    service.create_alias(actor, instance, key.id, "aud-alias")
    service.delete_alias(actor, instance, key.id, "aud-alias")
    service.create_key_ring(actor, instance, "aud-ring")
    service.patch_key_ring(actor, instance, key.id, "aud-ring")
    service.disable(actor, instance, key.id)
    clock.advance(31)
    service.enable(actor, instance, key.id)
    service.delete(actor, instance, key.id)
    clock.advance(31)
    service.restore(actor, instance, key.id)
    service.patch_key_ring(actor, instance, key.id, "default")
    service.delete_key_ring(actor, instance, "aud-ring")
    service.delete(actor, instance, key.id)
    clock.advance(4 * 3600)
    service.purge(actor, instance, key.id)
    assert audit.actions() == [
        "instance.create",
        "key.create",
        "key.rotate",
        "alias.create",
        "alias.delete",
        "key_ring.create",
        "key.move",
        "key.disable",
        "key.enable",
        "key.delete",
        "key.restore",
        "key.move",
        "key_ring.delete",
        "key.delete",
        "key.purge",
    ]
    by_action = {e.action: e for e in audit.events}
    assert by_action[EventAction.KEY_DISABLE].from_state == 1
    assert by_action[EventAction.KEY_DISABLE].to_state == 2
    assert by_action[EventAction.KEY_PURGE].to_state is None
    assert by_action[EventAction.KEY_CREATE].detail == (
        ("imported", "true"),
        ("import_token", "false"),
        ("key_ring_id", "default"),
        ("policies", ""),
    )
    rotate = by_action[EventAction.KEY_ROTATE]
    assert rotate.key_version_id != key.version_id
    for event in audit.events:
        assert event.actor_id == actor.id
        assert event.instance_id == instance
        assert b"m" * 32 not in repr(event).encode() and b"n" * 32 not in repr(event).encode()


def test_expiry_is_audited_as_the_system(service, audit, actor, instance, clock):
    key = service.create_key(actor, instance, "exp", expires_at=clock.now() + timedelta(seconds=5))
    clock.advance(5)
    service.expire_due()
    event = audit.events[-1]
    assert (event.action, event.actor_id, event.resource_id) == (
        EventAction.KEY_EXPIRE,
        SYSTEM.id,
        key.id,
    )
    assert (event.from_state, event.to_state) == (1, 3)


def test_refused_changes_write_no_event(service, audit, actor, instance):
    key = service.create_key(actor, instance, "k-refused")
    count = len(audit.events)
    with pytest.raises(Conflict):
        service.enable(actor, instance, key.id)
    assert len(audit.events) == count


def test_a_failing_audit_sink_aborts_the_change(store, units, clock, actor):
    class Broken:
        fail = False

        def record(self, uow, event: KmsEvent) -> None:
            if self.fail:
                raise RuntimeError("ledger down")

    sink = Broken()
    service = KeyService(store.uow, units.directory, clock, audit=sink)
    inst = service.create_instance(actor, "a").id
    key = service.create_key(actor, inst, "kept")
    sink.fail = True
    with pytest.raises(RuntimeError):
        service.disable(actor, inst, key.id)
    with pytest.raises(RuntimeError):
        service.create_key(actor, inst, "not-kept")
    sink.fail = False
    assert service.get_key(inst, key.id).state is KeyState.ACTIVE
    assert service.list_keys(KeyQuery(inst))[1] == 1


def test_deletion_guards_are_asked(store, units, clock, actor):
    from kyok.errors import Conflict as ConflictError

    class Protected(ConflictError):
        code = "PROTECTED_RESOURCE_ERR"

    seen = []

    class Guard:
        def check_delete(self, uow, key, actor, *, force, now):
            seen.append((key.id, actor.id, force, now))
            if "protected" in key.tags and not force:
                raise Protected("the key protects a resource")

    service = KeyService(store.uow, units.directory, clock, deletion_guards=[Guard()])
    inst = service.create_instance(actor, "g").id
    key = service.create_key(actor, inst, "guarded", tags=["protected"])
    with pytest.raises(Protected):
        service.delete(actor, inst, key.id)
    assert service.get_key(inst, key.id).state is KeyState.ACTIVE
    assert service.delete(actor, inst, key.id, force=True).deleted
    assert seen == [(key.id, actor.id, False, clock.now()), (key.id, actor.id, True, clock.now())]


def test_handles_are_forgotten_after_every_state_change(fake_env, actor, clock):
    service, unit, instance = fake_env.service, fake_env.unit, fake_env.instance
    key = service.create_key(
        actor, instance, "forgetful", expires_at=clock.now() + timedelta(days=1)
    )
    service.rotate(actor, instance, key.id)
    service.disable(actor, instance, key.id)
    clock.advance(31)
    service.enable(actor, instance, key.id)
    service.delete(actor, instance, key.id)
    clock.advance(31)
    service.restore(actor, instance, key.id)
    clock.advance(timedelta(days=1))
    service.expire_due()
    service.delete(actor, instance, key.id)
    clock.advance(4 * 3600)
    service.purge(actor, instance, key.id)
    # rotate, disable, enable, delete, restore, expire, delete, purge
    assert unit.forgotten == [key.id] * 8


def test_forget_on_a_sealed_unit_does_not_fail_the_change(service, units, actor, instance):
    key = service.create_key(actor, instance, "sealed-later")
    units.seal(instance)
    assert service.disable(actor, instance, key.id).state is KeyState.SUSPENDED


def test_record_row_version_moves(service, store, actor, instance):
    key = service.create_key(actor, instance, "versioned")
    disabled = service.disable(actor, instance, key.id)
    assert disabled.record.row_version == key.record.row_version + 1
    with store.uow() as uow:
        assert uow.keys.get(instance, key.id) == disabled.record
    back = dataclasses.replace(
        disabled.record,
        state=1,
        row_version=1,
        updated_at=key.record.updated_at,
        last_action_at=key.record.last_action_at,
    )
    assert back == key.record  # nothing else changed
