"""The service timers, at their edges, with a FakeClock (nothing sleeps)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kyok.kms.errors import (
    KeyExpired,
    KeyNotFound,
    PurgeTooEarly,
    RequestTooEarly,
    RestoreExpired,
    RotationNotPermitted,
)
from kyok.kms.keys import KeyState
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers

SECOND = timedelta(seconds=1)


def test_defaults_are_key_protects() -> None:
    t = Timers()
    assert t.enable_delay == t.restore_delay == timedelta(seconds=30)
    assert t.min_rotate_interval == timedelta(hours=1)
    assert t.purge_after == timedelta(hours=4)
    assert t.restore_window == timedelta(days=30)
    assert t.auto_purge_after == timedelta(days=90)
    assert t.dual_auth_window == timedelta(days=7)


def test_timers_are_checked() -> None:
    with pytest.raises(ValueError):
        Timers(enable_delay=timedelta(seconds=-1))
    with pytest.raises(ValueError):
        Timers(purge_after=timedelta(days=100))
    with pytest.raises(TypeError):
        Timers(enable_delay=30)  # type: ignore[arg-type]


def test_enable_waits_30_seconds_after_the_last_action(service, actor, instance, clock, root_key):
    key = root_key()
    service.disable(actor, instance, key.id)
    clock.advance(timedelta(seconds=30) - SECOND)
    with pytest.raises(RequestTooEarly) as info:
        service.enable(actor, instance, key.id)
    assert info.value.status == 409 and info.value.code == "REQ_TOO_EARLY_ERR"
    assert service.get_key(instance, key.id).state is KeyState.SUSPENDED
    clock.advance(SECOND)
    assert service.enable(actor, instance, key.id).state is KeyState.ACTIVE


def test_restore_waits_30_seconds_after_deletion(service, actor, instance, clock, root_key):
    key = root_key()
    service.delete(actor, instance, key.id)
    clock.advance(29)
    with pytest.raises(RequestTooEarly):
        service.restore(actor, instance, key.id)
    clock.advance(1)
    view = service.restore(actor, instance, key.id)
    assert view.state is KeyState.ACTIVE
    assert view.record.deleted_at is None and view.record.deleted_by is None


def test_restore_window_is_30_days(service, actor, instance, clock, root_key):
    a, b = root_key("key-a"), root_key("key-b")
    service.delete(actor, instance, a.id)
    service.delete(actor, instance, b.id)
    clock.advance(timedelta(days=30))
    assert service.restore(actor, instance, a.id).state is KeyState.ACTIVE
    clock.advance(SECOND)
    with pytest.raises(RestoreExpired) as info:
        service.restore(actor, instance, b.id)
    assert info.value.code == "KEY_RESTORE_EXPIRED" and info.value.status == 400
    view = service.get_key(instance, b.id)
    assert not view.restore_allowed and view.purge_allowed


def test_expired_key_cannot_be_restored(service, actor, instance, clock, root_key):
    key = root_key(expires_at=clock.now() + timedelta(hours=1))
    service.delete(actor, instance, key.id)
    clock.advance(timedelta(hours=1))
    with pytest.raises(KeyExpired) as info:
        service.restore(actor, instance, key.id)
    assert info.value.code == "KEY_EXPIRED_ERR"
    assert service.get_key(instance, key.id).restore_allowed is False


def test_rotation_at_most_once_an_hour(service, actor, instance, clock, root_key):
    key = root_key()
    first = service.rotate(actor, instance, key.id)  # a fresh key may rotate at once
    assert first.record.version_count == 2
    clock.advance(timedelta(hours=1) - SECOND)
    with pytest.raises(RotationNotPermitted) as info:
        service.rotate(actor, instance, key.id)
    assert info.value.code == "KEY_ROTATION_NOT_PERMITTED" and info.value.status == 409
    clock.advance(SECOND)
    assert service.rotate(actor, instance, key.id).record.version_count == 3


def test_purge_after_4_hours(service, actor, instance, clock, root_key):
    key = root_key()
    service.delete(actor, instance, key.id)
    view = service.get_key(instance, key.id)
    assert view.purge_allowed is False
    assert view.purge_allowed_from == clock.now() + timedelta(hours=4)
    assert view.purge_scheduled_on == clock.now() + timedelta(days=90)
    assert view.restore_expires_at == clock.now() + timedelta(days=30)
    clock.advance(timedelta(hours=4) - SECOND)
    with pytest.raises(PurgeTooEarly) as info:
        service.purge(actor, instance, key.id)
    assert info.value.status == 409
    clock.advance(SECOND)
    assert service.get_key(instance, key.id).purge_allowed
    service.purge(actor, instance, key.id)
    with pytest.raises(KeyNotFound):
        service.get_key(instance, key.id)


def test_auto_purge_after_90_days(service, actor, instance, clock, root_key):
    keep, old = root_key("keep-me"), root_key("old-one")
    service.delete(actor, instance, old.id)
    clock.advance(timedelta(days=45))
    service.delete(actor, instance, keep.id)
    clock.advance(timedelta(days=45) - SECOND)
    assert service.purge_overdue() == 0
    clock.advance(SECOND)
    assert service.purge_overdue() == 1
    with pytest.raises(KeyNotFound):
        service.get_key(instance, old.id)
    assert service.get_key(instance, keep.id).deleted
    assert service.purge_overdue() == 0


def test_auto_purge_walks_every_instance_in_batches(service, actor, instance, clock):
    other = service.create_instance(actor, "other").id
    ids = []
    for inst in (instance, other):
        for n in range(5):
            key = service.create_key(actor, inst, f"k{n}")
            service.delete(actor, inst, key.id)
            ids.append((inst, key.id))
    clock.advance(timedelta(days=91))
    assert service.purge_overdue(batch=2) == 10
    for inst, key_id in ids:
        with pytest.raises(KeyNotFound):
            service.get_key(inst, key_id)


def test_expiration_moves_keys_to_deactivated(service, store, actor, instance, clock, root_key):
    soon = root_key("soon", expires_at=clock.now() + timedelta(hours=1))
    suspended = root_key("suspended", expires_at=clock.now() + timedelta(hours=1))
    later = root_key("later", expires_at=clock.now() + timedelta(days=1))
    never = root_key("never")
    service.disable(actor, instance, suspended.id)
    clock.advance(timedelta(hours=1) - SECOND)
    assert service.expire_due() == 0
    assert service.get_key(instance, soon.id).state is KeyState.ACTIVE
    clock.advance(SECOND)
    # Effective at once, written by the scheduler.
    assert service.get_key(instance, soon.id).state is KeyState.DEACTIVATED
    with store.uow() as uow:
        assert uow.keys.get(instance, soon.id).state == 1
    assert service.expire_due() == 2
    with store.uow() as uow:
        assert uow.keys.get(instance, soon.id).state == 3
        assert uow.keys.get(instance, suspended.id).state == 3
        assert uow.keys.get(instance, later.id).state == 1
        assert uow.keys.get(instance, never.id).state == 1
    assert service.expire_due() == 0


def test_expire_due_in_batches(service, actor, instance, clock):
    for n in range(7):
        service.create_key(actor, instance, f"k{n}", expires_at=clock.now() + timedelta(minutes=1))
    clock.advance(timedelta(minutes=1))
    assert service.expire_due(batch=3) == 7


def test_shorter_timers_are_honoured(store, units, clock, actor):
    timers = Timers(
        enable_delay=timedelta(0),
        min_rotate_interval=timedelta(minutes=5),
        purge_after=timedelta(0),
    )
    service = KeyService(store.uow, units.directory, clock, timers)
    inst = service.create_instance(actor, "fast").id
    key = service.create_key(actor, inst, "k1")
    service.disable(actor, inst, key.id)
    service.enable(actor, inst, key.id)  # no wait
    service.rotate(actor, inst, key.id)
    clock.advance(timedelta(minutes=5))
    service.rotate(actor, inst, key.id)
    service.delete(actor, inst, key.id)
    service.purge(actor, inst, key.id)  # no wait
    assert service.timers is timers
