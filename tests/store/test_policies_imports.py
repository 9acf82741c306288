"""Import tokens, key and instance policies and deletion authorisations on every backend;
also the unit of work over them and ``KeyRecord.last_synced_at``."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kyok.errors import InternalError, VersionConflict
from kyok.store.records import (
    KEY_POLICY_DUAL_AUTH_DELETE,
    KEY_POLICY_ROTATION,
    DeletionAuthorizationRecord,
    ImportTokenRecord,
    InstancePolicyRecord,
    KeyPolicyRecord,
    RegistrationQuery,
    RegistrationRecord,
)
from kyok.store.sql import SqlStore

from . import factories as f
from .factories import AnyStore
from .test_concurrency import TIMEOUT, _race

OTHER = "inst-2"


def token(
    id: str = "tok-1", *, instance_id: str = f.INSTANCE, **overrides: Any
) -> ImportTokenRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "id": id,
        "created_at": f.T0,
        "created_by": "importer",
        "expires_at": f.at(600),
        "max_retrievals": 3,
        "remaining_retrievals": 3,
        "nonce": b"\x00nonce\xff" + id.encode(),
        "public_key": bytes(range(256)) * 3,  # binary, longer than any inline limit
        "hybrid_public_key": b"\x01" * 1216 + b"\x00",
    }
    values.update(overrides)
    return ImportTokenRecord(**values)


def policy(
    key_id: str = "key-1",
    policy_type: str = KEY_POLICY_ROTATION,
    *,
    instance_id: str = f.INSTANCE,
    **overrides: Any,
) -> KeyPolicyRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "key_id": key_id,
        "policy_type": policy_type,
        "enabled": True,
        "created_at": f.T0,
        "created_by": "manager",
        "updated_at": f.T0,
        "updated_by": "manager",
    }
    if policy_type == KEY_POLICY_ROTATION:
        values["interval_months"] = 3
        values["next_rotation_at"] = f.at(3600)
    values.update(overrides)
    return KeyPolicyRecord(**values)


def approval(
    key_id: str = "key-1", *, instance_id: str = f.INSTANCE, **overrides: Any
) -> DeletionAuthorizationRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "key_id": key_id,
        "principal_id": "p-first",
        "created_at": f.T0,
        "expires_at": f.at(7 * 86400),
    }
    values.update(overrides)
    return DeletionAuthorizationRecord(**values)


def instance_policy(
    policy_type: str = "dualAuthDelete", *, instance_id: str = f.INSTANCE, **overrides: Any
) -> InstancePolicyRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "policy_type": policy_type,
        "enabled": True,
        "attributes": "{}",
        "created_at": f.T0,
        "created_by": "admin",
        "updated_at": f.T0,
        "updated_by": "admin",
    }
    values.update(overrides)
    return InstancePolicyRecord(**values)


def registration(
    key_id: str = "key-1", crn: str = "crn:v1:bluemix:public:cos:us-south:a/1::bucket:b1"
) -> RegistrationRecord:
    return RegistrationRecord(
        instance_id=f.INSTANCE,
        key_id=key_id,
        resource_crn=crn,
        created_at=f.T0,
        created_by="service",
        updated_at=f.T0,
        updated_by="service",
        key_version_id=f"{key_id}-v1",
    )


# ------------------------------------------------------------------ import tokens


def test_import_token_put_and_get_round_trip_every_field(any_store: AnyStore) -> None:
    record = token(row_version=4)
    with any_store.uow() as uow:
        uow.import_tokens.put(record)
        assert uow.import_tokens.get(f.INSTANCE) == record  # seen before commit
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        got = uow.import_tokens.get(f.INSTANCE)
        assert got == record
        assert got is not None and isinstance(got.nonce, bytes)
        assert isinstance(got.public_key, bytes) and isinstance(got.hybrid_public_key, bytes)
        assert uow.import_tokens.get(OTHER) is None


def test_a_new_import_token_replaces_the_instances_token(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token("tok-1"))
        uow.import_tokens.put(token("tok-x", instance_id=OTHER))
        uow.commit()
    replacement = token("tok-2", created_at=f.at(10), expires_at=f.at(20), max_retrievals=1)
    with any_store.uow() as uow:
        uow.import_tokens.put(replacement)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.get(f.INSTANCE) == replacement
        assert uow.import_tokens.get(OTHER) == token("tok-x", instance_id=OTHER)
        # one token per instance: the old one is gone, not merely hidden
        assert [t.id for t in uow.import_tokens.expired(f.at(10**6), 10)] == ["tok-2", "tok-x"]


def test_import_token_update_bumps_row_version(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token())
        uow.commit()
    with any_store.uow() as uow:
        current = uow.import_tokens.get(f.INSTANCE)
        assert current is not None and current.row_version == 1
        used = dataclasses.replace(current, remaining_retrievals=2)
        stored = uow.import_tokens.update(used, expected_row_version=1)
        assert stored == dataclasses.replace(used, row_version=2)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.get(f.INSTANCE) == stored
        again = uow.import_tokens.update(
            dataclasses.replace(stored, remaining_retrievals=1), expected_row_version=2
        )
        assert again.row_version == 3
        uow.commit()
    with any_store.uow() as uow:
        got = uow.import_tokens.get(f.INSTANCE)
        assert got is not None and got.remaining_retrievals == 1 and got.row_version == 3


def test_import_token_update_with_a_stale_row_version_conflicts(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token())
        uow.commit()
    with any_store.uow() as uow:
        current = uow.import_tokens.get(f.INSTANCE)
        assert current is not None
        uow.import_tokens.update(dataclasses.replace(current, remaining_retrievals=2), 1)
        with pytest.raises(VersionConflict):
            uow.import_tokens.update(dataclasses.replace(current, remaining_retrievals=0), 1)
        with pytest.raises(VersionConflict):
            uow.import_tokens.update(current, 7)
        uow.commit()
    with any_store.uow() as uow:
        got = uow.import_tokens.get(f.INSTANCE)
        assert got is not None and got.remaining_retrievals == 2 and got.row_version == 2


def test_import_token_update_after_replacement_conflicts(any_store: AnyStore) -> None:
    """The replacement has the same row_version as the token it replaced: only ``id`` tells."""
    with any_store.uow() as uow:
        uow.import_tokens.put(token("tok-old"))
        uow.commit()
    with any_store.uow() as uow:
        old = uow.import_tokens.get(f.INSTANCE)
        assert old is not None
        uow.import_tokens.put(token("tok-new"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(VersionConflict):
            uow.import_tokens.update(dataclasses.replace(old, remaining_retrievals=0), 1)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.get(f.INSTANCE) == token("tok-new")


def test_import_token_update_after_delete_conflicts(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        with pytest.raises(VersionConflict):
            uow.import_tokens.update(token(), 1)
        uow.import_tokens.put(token())
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.delete(f.INSTANCE) is True
        assert uow.import_tokens.delete(f.INSTANCE) is False
        assert uow.import_tokens.delete(OTHER) is False
        with pytest.raises(VersionConflict):
            uow.import_tokens.update(token(), 1)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.get(f.INSTANCE) is None


def test_expired_import_tokens_oldest_first_with_limit(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token("t-a", instance_id="a", expires_at=f.at(30)))
        uow.import_tokens.put(token("t-b", instance_id="b", expires_at=f.at(10)))
        uow.import_tokens.put(token("t-c", instance_id="c", expires_at=f.at(20)))
        uow.import_tokens.put(token("t-d", instance_id="d", expires_at=f.at(20)))  # tie: by id
        uow.import_tokens.put(token("t-e", instance_id="e", expires_at=f.at(31)))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        expired = uow.import_tokens.expired(f.at(30), 10)
        assert [t.id for t in expired] == ["t-b", "t-c", "t-d", "t-a"]  # boundary included
        assert [t.id for t in uow.import_tokens.expired(f.at(30), 2)] == ["t-b", "t-c"]
        assert uow.import_tokens.expired(f.at(30), 0) == []
        assert uow.import_tokens.expired(f.at(9), 10) == []
        # any offset for now: the same instant
        plus_two = timezone(timedelta(hours=2))
        assert len(uow.import_tokens.expired(f.at(30).astimezone(plus_two), 10)) == 4
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.import_tokens.expired(datetime(2026, 1, 1), 10)
        with pytest.raises(ValueError):
            uow.import_tokens.expired(f.at(30), -1)


def test_two_uses_of_one_import_token_at_most_one_wins(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token())
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        seen = uow.import_tokens.get(f.INSTANCE)
    assert seen is not None

    def use(first_wrote: threading.Event | None, second_started: threading.Event | None) -> None:
        with any_store.uow() as uow:
            used = dataclasses.replace(seen, remaining_retrievals=seen.remaining_retrievals - 1)
            uow.import_tokens.update(used, seen.row_version)
            if first_wrote is not None and second_started is not None:
                first_wrote.set()
                assert second_started.wait(TIMEOUT)
                time.sleep(0.1)
            uow.commit()

    def first(first_wrote: threading.Event, second_started: threading.Event) -> None:
        use(first_wrote, second_started)

    def second(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        second_started.set()
        use(None, None)

    outcomes = _race(first, second)
    assert sum(o is None for o in outcomes) == 1, outcomes
    assert isinstance(next(o for o in outcomes if o is not None), VersionConflict)
    with any_store.uow() as uow:
        got = uow.import_tokens.get(f.INSTANCE)
        assert got is not None and got.remaining_retrievals == 2 and got.row_version == 2


def test_a_use_racing_a_replacement_never_lands_on_the_new_token(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.import_tokens.put(token("tok-old"))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        old = uow.import_tokens.get(f.INSTANCE)
    assert old is not None

    def replace(first_wrote: threading.Event, second_started: threading.Event) -> None:
        with any_store.uow() as uow:
            uow.import_tokens.put(token("tok-new"))
            first_wrote.set()
            assert second_started.wait(TIMEOUT)
            time.sleep(0.1)
            uow.commit()

    def use(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        with any_store.uow() as uow:
            second_started.set()
            uow.import_tokens.update(dataclasses.replace(old, remaining_retrievals=0), 1)
            uow.commit()

    outcomes = _race(replace, use)
    # SQL: the use waits for the replacement and then conflicts. The memory store does not
    # wait: the use may commit first, serialised before the replacement, which then wins.
    assert outcomes[0] is None
    if isinstance(any_store, SqlStore):
        assert isinstance(outcomes[1], VersionConflict), outcomes
    else:
        assert outcomes[1] is None or isinstance(outcomes[1], VersionConflict), outcomes
    with any_store.uow() as uow:
        assert uow.import_tokens.get(f.INSTANCE) == token("tok-new")


# ------------------------------------------------------------------ key policies


def test_key_policy_put_get_and_replace(any_store: AnyStore) -> None:
    rotation = policy()
    dual = policy(policy_type=KEY_POLICY_DUAL_AUTH_DELETE, enabled=False)
    with any_store.uow() as uow:
        uow.key_policies.put(rotation)
        uow.key_policies.put(dual)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_policies.get(f.INSTANCE, "key-1", KEY_POLICY_ROTATION) == rotation
        got = uow.key_policies.get(f.INSTANCE, "key-1", KEY_POLICY_DUAL_AUTH_DELETE)
        assert got == dual
        assert got is not None and got.enabled is False and got.interval_months is None
        assert uow.key_policies.get(f.INSTANCE, "key-2", KEY_POLICY_ROTATION) is None
        assert uow.key_policies.get(OTHER, "key-1", KEY_POLICY_ROTATION) is None
        changed = dataclasses.replace(
            rotation,
            interval_months=12,
            next_rotation_at=None,
            enabled=False,
            updated_at=f.at(5),
            updated_by="other",
        )
        uow.key_policies.put(changed)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_policies.get(f.INSTANCE, "key-1", KEY_POLICY_ROTATION) == changed
        assert uow.key_policies.list_for_key(f.INSTANCE, "key-1") == [dual, changed]


def test_key_policies_listed_per_key_and_for_several_keys(any_store: AnyStore) -> None:
    k1_rot, k1_dual = policy("k1"), policy("k1", KEY_POLICY_DUAL_AUTH_DELETE)
    k2_rot = policy("k2")
    elsewhere = policy("k1", instance_id=OTHER)
    with any_store.uow() as uow:
        for record in (k1_rot, k2_rot, k1_dual, elsewhere):
            uow.key_policies.put(record)
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.key_policies.list_for_key(f.INSTANCE, "k1") == [k1_dual, k1_rot]
        assert uow.key_policies.list_for_key(f.INSTANCE, "k3") == []
        found = uow.key_policies.list_for_keys(f.INSTANCE, ["k1", "k2", "k3", "k1"])
        assert found == {"k1": [k1_dual, k1_rot], "k2": [k2_rot]}
        assert uow.key_policies.list_for_keys(f.INSTANCE, []) == {}
        assert uow.key_policies.list_for_keys(OTHER, ["k1", "k2"]) == {"k1": [elsewhere]}


def test_key_policies_for_many_keys(any_store: AnyStore) -> None:
    """More ids than one ``IN (...)`` list holds on the SQL backends."""
    key_ids = [f"k{i:04d}" for i in range(1200)]
    with any_store.uow() as uow:
        for key_id in key_ids[::2]:
            uow.key_policies.put(policy(key_id))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        found = uow.key_policies.list_for_keys(f.INSTANCE, key_ids)
    assert sorted(found) == key_ids[::2]
    assert all(len(v) == 1 and v[0].key_id == k for k, v in found.items())


def test_key_policies_delete_for_key(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.key_policies.put(policy("k1"))
        uow.key_policies.put(policy("k1", KEY_POLICY_DUAL_AUTH_DELETE))
        uow.key_policies.put(policy("k2"))
        uow.key_policies.put(policy("k1", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_policies.delete_for_key(f.INSTANCE, "k1") == 2
        assert uow.key_policies.delete_for_key(f.INSTANCE, "k1") == 0
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_policies.list_for_key(f.INSTANCE, "k1") == []
        assert len(uow.key_policies.list_for_key(f.INSTANCE, "k2")) == 1
        assert len(uow.key_policies.list_for_key(OTHER, "k1")) == 1


def test_rotation_due_enabled_policies_earliest_first(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.key_policies.put(policy("k-late", instance_id="a", next_rotation_at=f.at(300)))
        uow.key_policies.put(policy("k-early", instance_id="b", next_rotation_at=f.at(100)))
        uow.key_policies.put(policy("k-mid-b", instance_id="b", next_rotation_at=f.at(200)))
        uow.key_policies.put(policy("k-mid-a", instance_id="a", next_rotation_at=f.at(200)))
        uow.key_policies.put(policy("k-future", next_rotation_at=f.at(301)))
        uow.key_policies.put(policy("k-off", enabled=False, next_rotation_at=f.at(50)))
        uow.key_policies.put(policy("k-unset", next_rotation_at=None))
        # not a rotation policy, however it looks
        uow.key_policies.put(
            policy("k-dual", KEY_POLICY_DUAL_AUTH_DELETE, next_rotation_at=f.at(10))
        )
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        due = uow.key_policies.rotation_due(f.at(300), 10)
        assert [(p.instance_id, p.key_id) for p in due] == [
            ("b", "k-early"),
            ("a", "k-mid-a"),  # a tie: by instance, then key
            ("b", "k-mid-b"),
            ("a", "k-late"),  # the boundary is due
        ]
        assert all(p.policy_type == KEY_POLICY_ROTATION and p.enabled for p in due)
        assert [p.key_id for p in uow.key_policies.rotation_due(f.at(300), 2)] == [
            "k-early",
            "k-mid-a",
        ]
        assert uow.key_policies.rotation_due(f.at(300), 0) == []
        assert uow.key_policies.rotation_due(f.at(99), 10) == []
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.key_policies.rotation_due(datetime(2026, 1, 1), 10)
        with pytest.raises(ValueError):
            uow.key_policies.rotation_due(f.at(300), -1)


def test_disabling_a_policy_makes_it_not_due(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.key_policies.put(policy("k1", next_rotation_at=f.at(1)))
        uow.commit()
    with any_store.uow() as uow:
        assert [p.key_id for p in uow.key_policies.rotation_due(f.at(1), 10)] == ["k1"]
        uow.key_policies.put(policy("k1", enabled=False, next_rotation_at=f.at(1)))
        assert uow.key_policies.rotation_due(f.at(1), 10) == []  # its own change counts
        uow.commit()
    with any_store.uow() as uow:
        assert uow.key_policies.rotation_due(f.at(10**6), 10) == []


def test_policy_times_come_back_aware_utc(any_store: AnyStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 14, 30, 0, 999999, tzinfo=plus_two)
    with any_store.uow() as uow:
        uow.key_policies.put(policy(next_rotation_at=local, created_at=local))
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.key_policies.put(policy("k2", updated_at=datetime(2026, 1, 1)))
        uow.commit()
    with any_store.uow() as uow:
        got = uow.key_policies.get(f.INSTANCE, "key-1", KEY_POLICY_ROTATION)
        assert got is not None and got.next_rotation_at == local
        assert got.next_rotation_at.tzinfo == UTC and got.created_at.tzinfo == UTC
        assert got.created_at.hour == 12


def test_concurrent_puts_of_one_new_policy_both_succeed(any_store: AnyStore) -> None:
    """``put`` is an upsert: two units of work creating the same policy never clash."""

    def writer(
        by: str, first_wrote: threading.Event | None, second_started: threading.Event | None
    ) -> None:
        with any_store.uow() as uow:
            uow.key_policies.put(policy(updated_by=by))
            if first_wrote is not None and second_started is not None:
                first_wrote.set()
                assert second_started.wait(TIMEOUT)
                time.sleep(0.1)
            uow.commit()

    def first(first_wrote: threading.Event, second_started: threading.Event) -> None:
        writer("first", first_wrote, second_started)

    def second(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        second_started.set()
        writer("second", None, None)

    assert _race(first, second) == [None, None]
    with any_store.uow() as uow:
        got = uow.key_policies.get(f.INSTANCE, "key-1", KEY_POLICY_ROTATION)
        assert got is not None and got.updated_by in {"first", "second"}


# ------------------------------------------------------------------ deletion authorisations


def test_deletion_authorization_put_get_replace_delete(any_store: AnyStore) -> None:
    first = approval()
    with any_store.uow() as uow:
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") is None
        uow.deletion_authorizations.put(first)
        uow.deletion_authorizations.put(approval("key-2"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") == first
        assert uow.deletion_authorizations.get(OTHER, "key-1") is None
        again = approval(principal_id="p-other", created_at=f.at(60), expires_at=f.at(120))
        uow.deletion_authorizations.put(again)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") == again
        assert uow.deletion_authorizations.delete(f.INSTANCE, "key-1") is True
        assert uow.deletion_authorizations.delete(f.INSTANCE, "key-1") is False
        assert uow.deletion_authorizations.delete(OTHER, "key-2") is False
        uow.commit()
    with any_store.uow() as uow:
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") is None
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-2") == approval("key-2")


# ------------------------------------------------------------------ instance policies


def test_instance_policies_put_get_list_replace(any_store: AnyStore) -> None:
    dual = instance_policy("dualAuthDelete")
    allowed = instance_policy(
        "allowedNetwork", attributes='{"network_type":"private","ünï":"\\"x\\""}'
    )
    with any_store.uow() as uow:
        uow.instance_policies.put(dual)
        uow.instance_policies.put(allowed)
        uow.instance_policies.put(instance_policy("keyCreateImportAccess", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.instance_policies.get(f.INSTANCE, "allowedNetwork") == allowed
        assert uow.instance_policies.get(f.INSTANCE, "keyCreateImportAccess") is None
        assert uow.instance_policies.list(f.INSTANCE) == [allowed, dual]  # by policy_type
        assert uow.instance_policies.list("nobody") == []
        off = dataclasses.replace(dual, enabled=False, updated_at=f.at(9), updated_by="x")
        uow.instance_policies.put(off)
        uow.commit()
    with any_store.uow() as uow:
        got = uow.instance_policies.get(f.INSTANCE, "dualAuthDelete")
        assert got == off and got is not None and got.enabled is False
        assert len(uow.instance_policies.list(f.INSTANCE)) == 2


# ------------------------------------------------------------------ the unit of work


def _write_one_of_each(uow: Any) -> None:
    uow.import_tokens.put(token())
    uow.key_policies.put(policy())
    uow.deletion_authorizations.put(approval())
    uow.instance_policies.put(instance_policy())
    uow.registrations.add(registration())


def _nothing_there(any_store: AnyStore) -> None:
    with any_store.uow(read_only=True) as uow:
        assert uow.import_tokens.get(f.INSTANCE) is None
        assert uow.key_policies.list_for_key(f.INSTANCE, "key-1") == []
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") is None
        assert uow.instance_policies.list(f.INSTANCE) == []
        assert uow.registrations.count(RegistrationQuery(instance_id=f.INSTANCE)) == 0


def test_uncommitted_writes_roll_back(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        _write_one_of_each(uow)
        assert uow.import_tokens.get(f.INSTANCE) is not None  # its own work is visible
        with any_store.uow(read_only=True) as other:
            assert other.import_tokens.get(f.INSTANCE) is None  # nobody else's
    _nothing_there(any_store)
    with pytest.raises(RuntimeError, match="boom"), any_store.uow() as uow:
        _write_one_of_each(uow)
        raise RuntimeError("boom")
    _nothing_there(any_store)


def test_explicit_rollback_discards_changes_and_deletes(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        _write_one_of_each(uow)
        uow.rollback()
        assert uow.import_tokens.get(f.INSTANCE) is None
        assert uow.registrations.get(f.INSTANCE, "key-1", registration().resource_crn) is None
        uow.commit()
    _nothing_there(any_store)
    with any_store.uow() as uow:
        _write_one_of_each(uow)
        uow.commit()
    with any_store.uow() as uow:
        assert uow.import_tokens.delete(f.INSTANCE)
        assert uow.key_policies.delete_for_key(f.INSTANCE, "key-1") == 1
        assert uow.deletion_authorizations.delete(f.INSTANCE, "key-1")
        assert uow.registrations.delete_for_key(f.INSTANCE, "key-1") == 1
        uow.rollback()
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.import_tokens.get(f.INSTANCE) == token()
        assert uow.key_policies.list_for_key(f.INSTANCE, "key-1") == [policy()]
        assert uow.deletion_authorizations.get(f.INSTANCE, "key-1") == approval()
        assert uow.registrations.find(RegistrationQuery(instance_id=f.INSTANCE)) == [registration()]


def test_read_only_units_of_work_refuse_these_writes(any_store: AnyStore) -> None:
    with any_store.uow(read_only=True) as uow:
        attempts: list[Callable[[], object]] = [
            lambda: uow.import_tokens.put(token()),
            lambda: uow.import_tokens.update(token(), 1),
            lambda: uow.import_tokens.delete(f.INSTANCE),
            lambda: uow.key_policies.put(policy()),
            lambda: uow.key_policies.delete_for_key(f.INSTANCE, "key-1"),
            lambda: uow.deletion_authorizations.put(approval()),
            lambda: uow.deletion_authorizations.delete(f.INSTANCE, "key-1"),
            lambda: uow.instance_policies.put(instance_policy()),
            lambda: uow.registrations.add(registration()),
            lambda: uow.registrations.update(registration()),
            lambda: uow.registrations.delete(f.INSTANCE, "key-1", "crn"),
            lambda: uow.registrations.delete_for_key(f.INSTANCE, "key-1"),
        ]
        for attempt in attempts:
            with pytest.raises(InternalError):
                attempt()
    _nothing_there(any_store)


# ------------------------------------------------------------------ KeyRecord.last_synced_at


def test_key_last_synced_at_round_trips_on_add_and_update(any_store: AnyStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    with any_store.uow() as uow:
        uow.keys.add(f.key("k-never"))
        uow.keys.add(f.key("k-synced", last_synced_at=f.at(5).astimezone(plus_two)))
        uow.commit()
    with any_store.uow() as uow:
        never = uow.keys.get(f.INSTANCE, "k-never")
        synced = uow.keys.get(f.INSTANCE, "k-synced")
        assert never is not None and never.last_synced_at is None
        assert synced is not None and synced.last_synced_at == f.at(5)
        assert synced.last_synced_at.tzinfo == UTC
        uow.keys.update(dataclasses.replace(never, last_synced_at=f.at(7)), 1)
        uow.keys.update(dataclasses.replace(synced, last_synced_at=None), 1)
        uow.commit()
    with any_store.uow() as uow:
        never = uow.keys.get(f.INSTANCE, "k-never")
        synced = uow.keys.get(f.INSTANCE, "k-synced")
        assert never is not None and never.last_synced_at == f.at(7) and never.row_version == 2
        assert synced is not None and synced.last_synced_at is None
        with pytest.raises(ValueError, match="timezone-aware"):
            uow.keys.add(f.key("k-naive", last_synced_at=datetime(2026, 1, 1)))
