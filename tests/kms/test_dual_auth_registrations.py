"""Dual-authorisation deletion, registrations and sync, at the service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kyok.auth.principals import Principal, PrincipalKind
from kyok.clock import FakeClock
from kyok.kms.errors import (
    AuthorizationsNotMet,
    DeletionPrevented,
    InvalidField,
    KeyDeleted,
    KeyInvalidState,
    KeyNotFound,
    KeyVersionInvalid,
    NotDualAuth,
    ProtectedResource,
    RegistrationExists,
    RegistrationNotFound,
    RootKeyRequiredForRegistration,
    ServiceOnly,
    SyncTooEarly,
)
from kyok.kms.keys import KeyState
from kyok.kms.policies import KeyPolicySpec, validate_instance_policy
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers

from .fakes import RecordingAuditSink

BOB = Principal("user-bob")
COS = Principal("service-cos", PrincipalKind.SERVICE)
CRN = "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst:bucket:photos"


def _dual_key(service: KeyService, actor: Principal, instance: str, name: str = "dual") -> str:
    key = service.create_key(actor, instance, name)
    service.set_key_policies(actor, instance, key.id, KeyPolicySpec(dual_auth_delete=True))
    return key.id


# ---------------------------------------------------------------------------- dual authorisation


def test_one_principal_can_never_delete_alone(
    service: KeyService, actor: Principal, instance: str
) -> None:
    key = _dual_key(service, actor, instance)
    with pytest.raises(AuthorizationsNotMet):
        service.delete(actor, instance, key)
    # Approving its own deletion does not help, whatever credential it uses.
    service.set_key_for_deletion(actor, instance, key)
    assert service.get_key(instance, key).policies.set_for_deletion
    same_person = Principal(actor.id, actor.kind, instance)  # e.g. a second API key
    for who in (actor, same_person):
        with pytest.raises(AuthorizationsNotMet):
            service.delete(who, instance, key)
    assert service.get_key(instance, key).state is KeyState.ACTIVE


def test_another_principal_completes_the_deletion(
    service: KeyService, actor: Principal, instance: str, audit: RecordingAuditSink
) -> None:
    key = _dual_key(service, actor, instance)
    service.set_key_for_deletion(actor, instance, key)
    view = service.get_key(instance, key)
    assert view.policies.auth_expires_at is not None
    deleted = service.delete(BOB, instance, key)
    assert deleted.state is KeyState.DESTROYED and deleted.record.deleted_by == BOB.id
    assert audit.actions()[-2:] == ["key.set_for_deletion", "key.delete"]


def test_the_approval_expires_after_seven_days(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = _dual_key(service, actor, instance)
    service.set_key_for_deletion(actor, instance, key)
    clock.advance(timedelta(days=7))
    assert not service.get_key(instance, key).policies.set_for_deletion
    with pytest.raises(AuthorizationsNotMet):
        service.delete(BOB, instance, key)
    service.set_key_for_deletion(actor, instance, key)
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    service.delete(BOB, instance, key)


def test_unset_cancels_the_approval(service: KeyService, actor: Principal, instance: str) -> None:
    key = _dual_key(service, actor, instance)
    service.set_key_for_deletion(actor, instance, key)
    service.unset_key_for_deletion(BOB, instance, key)
    assert not service.get_key(instance, key).policies.set_for_deletion
    with pytest.raises(AuthorizationsNotMet):
        service.delete(BOB, instance, key)


def test_the_approval_is_used_up(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = _dual_key(service, actor, instance)
    service.set_key_for_deletion(actor, instance, key)
    service.delete(BOB, instance, key)
    clock.advance(timedelta(minutes=1))
    service.restore(actor, instance, key)
    with pytest.raises(AuthorizationsNotMet):
        service.delete(BOB, instance, key)


def test_set_for_deletion_needs_dual_auth(
    service: KeyService, actor: Principal, instance: str
) -> None:
    key = service.create_key(actor, instance, "plain")
    with pytest.raises(NotDualAuth):
        service.set_key_for_deletion(actor, instance, key.id)
    with pytest.raises(NotDualAuth):
        service.unset_key_for_deletion(actor, instance, key.id)
    service.delete(actor, instance, key.id)  # no dual auth: one principal suffices
    with pytest.raises(KeyDeleted):
        service.set_key_for_deletion(actor, instance, key.id)


def test_instance_dual_auth_protects_new_keys(
    service: KeyService, actor: Principal, instance: str
) -> None:
    service.set_instance_policies(
        actor, instance, [validate_instance_policy("dualAuthDelete", True, None)]
    )
    key = service.create_key(actor, instance, "protected")
    with pytest.raises(AuthorizationsNotMet):
        service.delete(actor, instance, key.id)


def test_purge_removes_policies_and_approvals(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock, store: object
) -> None:
    key = _dual_key(service, actor, instance)
    service.set_key_for_deletion(actor, instance, key)
    service.delete(BOB, instance, key)
    clock.advance(timedelta(hours=5))
    service.purge(actor, instance, key)
    with store.uow(read_only=True) as uow:  # type: ignore[attr-defined]
        assert uow.key_policies.list_for_key(instance, key) == []
        assert uow.deletion_authorizations.get(instance, key) is None


# ---------------------------------------------------------------------------- registrations


def test_only_services_write_registrations(
    service: KeyService, actor: Principal, instance: str
) -> None:
    key = service.create_key(actor, instance, "root")
    with pytest.raises(ServiceOnly):
        service.create_registration(actor, instance, key.id, CRN)
    service.create_registration(COS, instance, key.id, CRN)
    with pytest.raises(ServiceOnly):
        service.update_registration(actor, instance, key.id, CRN, description="x")
    with pytest.raises(ServiceOnly):
        service.delete_registration(actor, instance, key.id, CRN)


def test_registration_rules(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "root")
    made = service.create_registration(
        COS, instance, key.id, CRN, description="photos", registration_metadata="{}"
    )
    assert made.key_name == "root" and made.record.key_version_id == key.version_id
    assert made.record.created_by == COS.id
    with pytest.raises(RegistrationExists):
        service.create_registration(COS, instance, key.id, CRN)
    replaced = service.create_registration(
        COS, instance, key.id, CRN, prevent_key_deletion=True, replace_existing=True
    )
    assert replaced.record.prevent_key_deletion and replaced.record.description is None
    standard = service.create_key(actor, instance, "std", extractable=True)
    with pytest.raises(RootKeyRequiredForRegistration):
        service.create_registration(COS, instance, standard.id, CRN)
    other = service.create_key(actor, instance, "other")
    with pytest.raises(KeyVersionInvalid):
        service.create_registration(
            COS, instance, key.id, CRN + "2", key_version_id=other.version_id
        )
    for bad in (
        "",
        "crn:v1:too:short",
        "not-a-crn",
        CRN + " ",
        "crn:v1:a:b:c:d:e:f:g:*",
        "c" * 600,
    ):
        with pytest.raises(InvalidField):
            service.create_registration(COS, instance, key.id, bad)
    with pytest.raises(InvalidField):
        service.create_registration(COS, instance, key.id, CRN + "3", description="d" * 241)
    with pytest.raises(KeyNotFound):
        service.create_registration(COS, instance, "no-such-key", CRN)
    service.delete(actor, instance, other.id)
    with pytest.raises(KeyInvalidState):
        service.create_registration(COS, instance, other.id, CRN)


def test_update_and_delete_registrations(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "root")
    service.create_registration(COS, instance, key.id, CRN, description="photos")
    clock.advance(timedelta(hours=2))
    service.rotate(actor, instance, key.id)
    newest = service.get_key(instance, key.id).version_id
    updated = service.update_registration(
        COS, instance, key.id, CRN, prevent_key_deletion=True, key_version_id=newest
    )
    assert updated.record.description == "photos"  # untouched
    assert updated.record.prevent_key_deletion and updated.record.key_version_id == newest
    cleared = service.update_registration(COS, instance, key.id, CRN, description=None)
    assert cleared.record.description is None and cleared.record.prevent_key_deletion
    with pytest.raises(RegistrationNotFound):
        service.update_registration(COS, instance, key.id, CRN + "x", description="y")
    service.delete_registration(COS, instance, key.id, CRN)
    with pytest.raises(RegistrationNotFound):
        service.delete_registration(COS, instance, key.id, CRN)


def test_registrations_guard_deletion(service: KeyService, actor: Principal, instance: str) -> None:
    key = service.create_key(actor, instance, "root")
    service.create_registration(COS, instance, key.id, CRN)
    with pytest.raises(ProtectedResource):
        service.delete(actor, instance, key.id)
    held = service.create_key(actor, instance, "held")
    service.create_registration(COS, instance, held.id, CRN, prevent_key_deletion=True)
    for force in (False, True):
        with pytest.raises(DeletionPrevented):
            service.delete(actor, instance, held.id, force=force)
    assert service.delete(actor, instance, key.id, force=True).state is KeyState.DESTROYED
    # A registration can still be removed from a destroyed key; the hold ends with it.
    service.delete_registration(COS, instance, held.id, CRN)
    service.delete(actor, instance, held.id)


def test_both_guards_together(service: KeyService, actor: Principal, instance: str) -> None:
    key = _dual_key(service, actor, instance)
    service.create_registration(COS, instance, key, CRN)
    service.set_key_for_deletion(actor, instance, key)
    with pytest.raises(ProtectedResource):
        service.delete(BOB, instance, key)
    # The refused attempt did not use up the approval.
    assert service.get_key(instance, key).policies.set_for_deletion
    service.delete(BOB, instance, key, force=True)


def test_list_registrations(service: KeyService, actor: Principal, instance: str) -> None:
    one = service.create_key(actor, instance, "one")
    two = service.create_key(actor, instance, "two")
    crns = {
        "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst:bucket:a_1": one.id,
        "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst:bucket:a%1": one.id,
        "crn:v1:bluemix:public:databases-for-postgresql:us-south:a/acct:db:deployment:x": two.id,
    }
    for crn, key_id in crns.items():
        service.create_registration(
            COS, instance, key_id, crn, prevent_key_deletion=crn.endswith("x")
        )
    views, total = service.list_registrations(instance)
    assert total == 3 and len(views) == 3
    views, total = service.list_registrations(instance, one.id)
    assert total == 2 and {v.key_name for v in views} == {"one"}
    views, total = service.list_registrations(
        instance, crn_pattern="crn:v1:bluemix:public:cloud-object-storage:*:a_1"
    )
    assert [v.record.resource_crn for v in views] == [next(iter(crns))]
    views, total = service.list_registrations(instance, crn_pattern="crn:v1:*")
    assert total == 3
    views, total = service.list_registrations(instance, prevent_key_deletion=True)
    assert total == 1 and views[0].record.key_id == two.id
    page, total = service.list_registrations(instance, limit=1, offset=1)
    assert total == 3 and len(page) == 1
    with pytest.raises(InvalidField):
        service.list_registrations(instance, crn_pattern="bucket*")
    with pytest.raises(KeyNotFound):
        service.list_registrations(instance, "missing")


# ---------------------------------------------------------------------------- sync


def test_sync_is_limited_to_once_an_interval(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "root")
    service.create_registration(COS, instance, key.id, CRN)
    with pytest.raises(SyncTooEarly):
        service.sync(actor, instance, key.id)  # the key was just created
    clock.advance(timedelta(hours=1))
    assert service.sync(actor, instance, key.id) == 1
    assert service.get_key(instance, key.id).record.last_synced_at == clock.now()
    with pytest.raises(SyncTooEarly):
        service.sync(actor, instance, key.id)
    clock.advance(timedelta(hours=1))
    service.delete(actor, instance, key.id, force=True)
    with pytest.raises(SyncTooEarly):
        service.sync(actor, instance, key.id)  # just deleted
    clock.advance(timedelta(hours=1))
    assert service.sync(actor, instance, key.id) == 1  # destroyed keys can be synced


def test_sync_without_waiting_when_configured(
    store: object, units: object, clock: FakeClock, actor: Principal
) -> None:
    fast = KeyService(
        store.uow,  # type: ignore[attr-defined]
        units.directory,  # type: ignore[attr-defined]
        clock,
        Timers(sync_interval=timedelta(0)),
    )
    inst = fast.create_instance(actor, "fast").id
    key = fast.create_key(actor, inst, "root")
    assert fast.sync(actor, inst, key.id) == 0
    assert fast.sync(actor, inst, key.id) == 0
