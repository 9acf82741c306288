"""Key policies (rotation, dual authorisation) and instance policies, at the service."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kyok.auth.principals import Principal
from kyok.clock import FakeClock
from kyok.kms import policies as pol
from kyok.kms.errors import (
    BodyQueryParamMismatch,
    DualAuthLocked,
    DuplicatePolicy,
    InvalidField,
    RootKeyRequired,
)
from kyok.kms.keys import KeyState
from kyok.kms.policies import KeyPolicySpec, validate_instance_policy
from kyok.kms.service import KeyService

MONTH = timedelta(days=30)


def _rotation(service: KeyService, instance: str, key_id: str) -> Any:
    found = [p for p in service.get_key_policies(instance, key_id) if p.policy_type == "rotation"]
    return found[0] if found else None


# ---------------------------------------------------------------------------- key policies


def test_rotation_policy_rotates_when_due(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "rotating")
    old = service.wrap(instance, key.id, aad=["a"])
    service.set_key_policies(
        actor, instance, key.id, KeyPolicySpec(rotation_enabled=True, interval_months=2)
    )
    policy = _rotation(service, instance, key.id)
    assert policy.enabled and policy.interval_months == 2
    assert policy.next_rotation_at == key.record.created_at + 2 * MONTH
    view = service.get_key(instance, key.id)
    assert view.policies.rotation_enabled and view.policies.rotation_months == 2

    clock.advance(2 * MONTH - timedelta(seconds=1))
    assert service.rotate_due() == 0
    clock.advance(timedelta(seconds=1))
    assert service.rotate_due() == 1
    rotated = service.get_key(instance, key.id)
    assert rotated.version_id != key.version_id
    assert rotated.record.last_rotated_at == clock.now()
    assert _rotation(service, instance, key.id).next_rotation_at == clock.now() + 2 * MONTH
    assert service.rotate_due() == 0  # not due again until two more months

    # Old ciphertexts still unwrap and come back rewrapped under the new version.
    result = service.unwrap(instance, key.id, old.ciphertext, ["a"])
    assert result.plaintext == old.dek
    assert result.rewrapped_version_id == rotated.version_id
    assert result.rewrapped is not None
    again = service.unwrap(instance, key.id, result.rewrapped, ["a"])
    assert again.plaintext == old.dek and again.rewrapped is None


def test_manual_rotation_moves_the_due_date(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "rotating")
    service.set_key_policies(
        actor, instance, key.id, KeyPolicySpec(rotation_enabled=True, interval_months=1)
    )
    clock.advance(timedelta(days=20))
    service.rotate(actor, instance, key.id)
    assert _rotation(service, instance, key.id).next_rotation_at == clock.now() + MONTH
    clock.advance(timedelta(days=15))
    assert service.rotate_due() == 0


def test_disabled_rotation_is_never_due(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "rotating")
    service.set_key_policies(
        actor, instance, key.id, KeyPolicySpec(rotation_enabled=True, interval_months=1)
    )
    service.set_key_policies(actor, instance, key.id, KeyPolicySpec(rotation_enabled=False))
    policy = _rotation(service, instance, key.id)
    assert not policy.enabled and policy.interval_months == 1 and policy.next_rotation_at is None
    clock.advance(13 * MONTH)
    assert service.rotate_due() == 0


def test_a_suspended_key_is_not_rotated_and_tried_again_later(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    key = service.create_key(actor, instance, "rotating")
    service.set_key_policies(
        actor, instance, key.id, KeyPolicySpec(rotation_enabled=True, interval_months=1)
    )
    service.disable(actor, instance, key.id)
    clock.advance(MONTH)
    assert service.rotate_due() == 0
    assert _rotation(service, instance, key.id).next_rotation_at == clock.now() + timedelta(days=1)
    clock.advance(timedelta(days=1))
    service.enable(actor, instance, key.id)
    assert service.rotate_due() == 1
    assert service.get_key(instance, key.id).state is KeyState.ACTIVE


def test_rotation_policy_rules(service: KeyService, actor: Principal, instance: str) -> None:
    standard = service.create_key(actor, instance, "std", extractable=True)
    with pytest.raises(RootKeyRequired):
        service.set_key_policies(
            actor, instance, standard.id, KeyPolicySpec(rotation_enabled=True, interval_months=1)
        )
    imported = service.create_key(actor, instance, "imp", material=os.urandom(32))
    with pytest.raises(InvalidField, match="imported"):
        service.set_key_policies(
            actor, instance, imported.id, KeyPolicySpec(rotation_enabled=True, interval_months=1)
        )
    with pytest.raises(InvalidField):
        KeyPolicySpec(rotation_enabled=True)  # no interval
    for bad in (0, 13, -1, True):
        with pytest.raises(InvalidField):
            KeyPolicySpec(rotation_enabled=True, interval_months=bad)
    key = service.create_key(actor, instance, "root")
    with pytest.raises(InvalidField):
        service.set_key_policies(actor, instance, key.id, KeyPolicySpec())


def test_dual_auth_cannot_be_turned_off(
    service: KeyService, actor: Principal, instance: str
) -> None:
    key = service.create_key(actor, instance, "dual")
    service.set_key_policies(actor, instance, key.id, KeyPolicySpec(dual_auth_delete=True))
    assert service.get_key(instance, key.id).policies.dual_auth_delete
    with pytest.raises(DualAuthLocked):
        service.set_key_policies(actor, instance, key.id, KeyPolicySpec(dual_auth_delete=False))
    service.set_key_policies(actor, instance, key.id, KeyPolicySpec(dual_auth_delete=True))
    # Standard keys may have dual authorisation too.
    standard = service.create_key(actor, instance, "std", extractable=True)
    service.set_key_policies(actor, instance, standard.id, KeyPolicySpec(dual_auth_delete=True))


def test_policies_in_listings(service: KeyService, actor: Principal, instance: str) -> None:
    from kyok.store.records import KeyQuery

    plain = service.create_key(actor, instance, "plain")
    dual = service.create_key(actor, instance, "dual")
    service.set_key_policies(actor, instance, dual.id, KeyPolicySpec(dual_auth_delete=True))
    views, _ = service.list_keys(KeyQuery(instance))
    by_id = {v.id: v for v in views}
    assert by_id[dual.id].policies.dual_auth_delete
    assert not by_id[plain.id].policies.dual_auth_delete


# ---------------------------------------------------------------------------- instance policies


def test_instance_policies_apply_to_new_keys(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    before = service.create_key(actor, instance, "before")
    service.set_instance_policies(
        actor,
        instance,
        [
            validate_instance_policy("dualAuthDelete", True, None),
            validate_instance_policy("rotation", True, {"interval_month": 3}),
        ],
    )
    generated = service.create_key(actor, instance, "generated")
    imported = service.create_key(actor, instance, "imported", material=os.urandom(32))
    standard = service.create_key(actor, instance, "standard", extractable=True)
    assert not service.get_key(instance, before.id).policies.dual_auth_delete
    for view in (generated, imported, standard):
        assert service.get_key(instance, view.id).policies.dual_auth_delete
    assert generated.policies.rotation_months == 3 and generated.policies.rotation_enabled
    assert _rotation(service, instance, generated.id).next_rotation_at == clock.now() + 3 * MONTH
    assert _rotation(service, instance, imported.id) is None
    assert _rotation(service, instance, standard.id) is None
    # The override endpoint's per-key policies win over the instance's.
    override = service.create_key(
        actor,
        instance,
        "override",
        policies=KeyPolicySpec(rotation_enabled=True, interval_months=6, dual_auth_delete=False),
    )
    assert override.policies.rotation_months == 6
    assert not override.policies.dual_auth_delete


def test_override_rotation_refused_for_imported_and_standard(
    service: KeyService, actor: Principal, instance: str
) -> None:
    spec = KeyPolicySpec(rotation_enabled=True, interval_months=1)
    with pytest.raises(InvalidField, match="imported"):
        service.create_key(actor, instance, "imp", material=os.urandom(32), policies=spec)
    with pytest.raises(InvalidField, match="standard"):
        service.create_key(actor, instance, "std", extractable=True, policies=spec)


@pytest.mark.parametrize(
    ("policy_type", "enabled", "attributes", "target"),
    [
        ("nope", True, None, "policy_type"),
        ("metrics", "yes", None, "enabled"),
        ("metrics", True, {"x": 1}, "attributes"),
        ("dualAuthDelete", False, {"x": 1}, "attributes"),
        ("rotation", True, None, "interval_month"),
        ("rotation", True, {"interval_month": 0}, "interval_month"),
        ("rotation", True, {"interval_month": 13}, "interval_month"),
        ("rotation", True, {"interval_month": "3"}, "interval_month"),
        ("rotation", True, {"interval_month": 3, "extra": 1}, "attributes"),
        ("rotation", False, {"interval_month": 3}, "attributes"),
        ("allowedIP", True, None, "allowed_ip"),
        ("allowedIP", True, {"allowed_ip": []}, "allowed_ip"),
        ("allowedIP", True, {"allowed_ip": ["10.0.0.1"]}, "allowed_ip"),
        ("allowedIP", True, {"allowed_ip": ["300.0.0.0/8"]}, "allowed_ip"),
        ("allowedIP", True, {"allowed_ip": "10.0.0.0/8"}, "allowed_ip"),
        ("allowedNetwork", True, {"allowed_network": "public"}, "allowed_network"),
        ("allowedNetwork", True, None, "allowed_network"),
        ("keyCreateImportAccess", True, {"create_root_key": "no"}, "create_root_key"),
        ("keyCreateImportAccess", True, {"delete_keys": False}, "attributes"),
    ],
)
def test_instance_policy_validation(
    policy_type: str, enabled: Any, attributes: Any, target: str
) -> None:
    with pytest.raises(InvalidField) as caught:
        validate_instance_policy(policy_type, enabled, attributes)
    assert caught.value.target == target


def test_instance_policy_normalisation() -> None:
    spec = validate_instance_policy(
        "allowedIP", True, {"allowed_ip": ["10.1.2.3/8", "10.0.0.0/8", "2001:db8::1/32"]}
    )
    assert spec.attributes == {"allowed_ip": ["10.0.0.0/8", "2001:db8::/32"]}
    access = validate_instance_policy("keyCreateImportAccess", True, {"enforce_token": True})
    assert access.attributes == {
        "create_root_key": True,
        "create_standard_key": True,
        "import_root_key": True,
        "import_standard_key": True,
        "enforce_token": True,
    }
    assert validate_instance_policy("rotation", False, None).attributes == {}


def test_set_instance_policies_collection_rules(
    service: KeyService, actor: Principal, instance: str
) -> None:
    metrics = validate_instance_policy("metrics", True, None)
    dual = validate_instance_policy("dualAuthDelete", True, None)
    with pytest.raises(DuplicatePolicy):
        service.set_instance_policies(actor, instance, [metrics, metrics])
    with pytest.raises(BodyQueryParamMismatch):
        service.set_instance_policies(actor, instance, [metrics], policy_type="dualAuthDelete")
    with pytest.raises(InvalidField):
        service.set_instance_policies(actor, instance, [])
    stored = service.set_instance_policies(actor, instance, [metrics, dual])
    assert {p.policy_type for p in stored} == {"metrics", "dualAuthDelete"}
    assert [p.policy_type for p in service.get_instance_policies(instance, "metrics")] == [
        "metrics"
    ]
    with pytest.raises(InvalidField):
        service.get_instance_policies(instance, "nope")


def test_instance_policy_keeps_its_creation(
    service: KeyService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    service.set_instance_policies(
        actor, instance, [validate_instance_policy("metrics", True, None)]
    )
    created = service.get_instance_policies(instance)[0]
    clock.advance(timedelta(minutes=5))
    bob = Principal("user-bob")
    service.set_instance_policies(bob, instance, [validate_instance_policy("metrics", False, None)])
    updated = service.get_instance_policies(instance)[0]
    assert updated.created_at == created.created_at and updated.created_by == actor.id
    assert updated.updated_at == clock.now() and updated.updated_by == "user-bob"
    assert not updated.enabled


def test_instance_rules(service: KeyService, actor: Principal, instance: str) -> None:
    assert service.instance_rules(instance).admits("203.0.113.9")
    service.set_instance_policies(
        actor,
        instance,
        [
            validate_instance_policy("allowedIP", True, {"allowed_ip": ["10.0.0.0/8", "::1/128"]}),
            validate_instance_policy("allowedNetwork", True, {"allowed_network": "private-only"}),
        ],
    )
    rules = service.instance_rules(instance)  # the change is seen at once
    assert rules.admits("10.20.30.40") and rules.admits("::1") and rules.admits("::ffff:10.0.0.1")
    assert not rules.admits("127.0.0.1") and not rules.admits(None) and not rules.admits("x")
    assert rules.private_only
    service.set_instance_policies(
        actor, instance, [validate_instance_policy("allowedIP", False, None)]
    )
    assert service.instance_rules(instance).admits("127.0.0.1")


def test_next_rotation_counts_months_of_thirty_days() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert pol.next_rotation(start, 1) == datetime(2026, 1, 31, tzinfo=UTC)
    assert pol.next_rotation(start, 12) == start + timedelta(days=360)
