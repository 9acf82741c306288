"""Credential repositories (principals, API keys, role bindings, refresh tokens) on every
backend. The store keeps ``mac`` as given; checking it is kyok.auth's business."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest

from kyok.errors import AlreadyExists, InternalError, VersionConflict
from kyok.store.records import (
    ApiKeyRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RoleBindingRecord,
)

from . import factories as f
from .factories import AnyStore
from .test_concurrency import TIMEOUT, _race

OTHER = "inst-2"


def principal(id: str, *, instance_id: str = f.INSTANCE, **overrides: Any) -> PrincipalRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "id": id,
        "name": f"name-{id}",
        "kind": "user",
        "created_at": f.T0,
        "created_by": "admin",
        "mac": f"mac-{id}",
    }
    values.update(overrides)
    return PrincipalRecord(**values)


def api_key(
    id: str, principal_id: str = "p1", *, instance_id: str = f.INSTANCE, **overrides: Any
) -> ApiKeyRecord:
    values: dict[str, Any] = {
        "lookup": f"lookup-{instance_id}-{id}",
        "instance_id": instance_id,
        "id": id,
        "principal_id": principal_id,
        "name": f"key {id}",
        "created_at": f.T0,
        "created_by": "admin",
        "mac": f"mac-{id}",
    }
    values.update(overrides)
    return ApiKeyRecord(**values)


def binding(
    id: str,
    principal_id: str = "p1",
    role: str = "Reader",
    scope: str = "instance",
    *,
    instance_id: str = f.INSTANCE,
    **overrides: Any,
) -> RoleBindingRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "id": id,
        "principal_id": principal_id,
        "role": role,
        "scope": scope,
        "created_at": f.T0,
        "created_by": "admin",
        "mac": f"mac-{id}",
    }
    values.update(overrides)
    return RoleBindingRecord(**values)


def refresh(
    lookup: str,
    principal_id: str = "p1",
    *,
    api_key_id: str = "k1",
    expires_at: datetime | None = None,
    instance_id: str = f.INSTANCE,
) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        lookup=lookup,
        instance_id=instance_id,
        id=f"id-{lookup}",
        principal_id=principal_id,
        api_key_id=api_key_id,
        created_at=f.T0,
        expires_at=expires_at or f.at(3600),
        mac=f"mac-{lookup}",
    )


# ------------------------------------------------------------------ principals


def test_principals_add_get_list_count_delete(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.principals.add(principal("p2", created_at=f.at(1)))
        uow.principals.add(principal("p1", created_at=f.at(2), name="Ünïcode ☃"))
        uow.principals.add(principal("p0", created_at=f.at(1), kind="service"))
        uow.principals.add(principal("p9", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        repo = uow.principals
        assert repo.get(f.INSTANCE, "p1") == principal("p1", created_at=f.at(2), name="Ünïcode ☃")
        assert repo.get(f.INSTANCE, "p9") is None  # another instance's principal
        assert repo.get_by_name(f.INSTANCE, "Ünïcode ☃") == repo.get(f.INSTANCE, "p1")
        assert repo.get_by_name(f.INSTANCE, "name-p9") is None
        assert [p.id for p in repo.list(f.INSTANCE)] == ["p0", "p2", "p1"]  # time, then id
        assert repo.count(f.INSTANCE) == 3 and repo.count(OTHER) == 1 and repo.count("x") == 0
        assert repo.delete(f.INSTANCE, "p2") is True
        assert repo.delete(f.INSTANCE, "p2") is False
        assert repo.delete(f.INSTANCE, "p9") is False
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert [p.id for p in uow.principals.list(f.INSTANCE)] == ["p0", "p1"]
        assert uow.principals.list(OTHER)[0].mac == "mac-p9"


def test_principal_ids_and_names_are_unique_per_instance(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.principals.add(principal("p1", name="alice"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.principals.add(principal("p1", name="bob"))
        with pytest.raises(AlreadyExists):
            uow.principals.add(principal("p2", name="alice"))
        uow.principals.add(principal("p1", name="alice", instance_id=OTHER))  # other instance
        uow.principals.add(principal("p3", name="carol"))  # the unit of work is still usable
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.principals.count(f.INSTANCE) == 2 and uow.principals.count(OTHER) == 1


def test_a_freed_principal_name_can_be_taken_again(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.principals.add(principal("p1", name="alice"))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.principals.delete(f.INSTANCE, "p1")
        uow.principals.add(principal("p2", name="alice"))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.principals.get_by_name(f.INSTANCE, "alice").id == "p2"  # type: ignore[union-attr]


# ------------------------------------------------------------------ API keys


def test_api_keys_are_found_by_lookup_across_instances(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.api_keys.add(api_key("k2", created_at=f.at(5)))
        uow.api_keys.add(api_key("k1", created_at=f.at(5)))
        uow.api_keys.add(api_key("k0", created_at=f.at(9)))
        uow.api_keys.add(api_key("k3", "p2"))
        uow.api_keys.add(api_key("k1", instance_id=OTHER))  # same id, other instance
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        repo = uow.api_keys
        found = repo.get_by_lookup(f"lookup-{OTHER}-k1")
        assert found == api_key("k1", instance_id=OTHER)
        assert repo.get_by_lookup("nope") is None
        assert repo.get(f.INSTANCE, "k1") == api_key("k1", created_at=f.at(5))
        assert repo.get(f.INSTANCE, "nope") is None
        assert [k.id for k in repo.list_for_principal(f.INSTANCE, "p1")] == ["k1", "k2", "k0"]
        assert [k.id for k in repo.list_for_principal(OTHER, "p1")] == ["k1"]
        assert repo.list_for_principal(f.INSTANCE, "nobody") == []


def test_api_key_lookups_and_ids_are_unique(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.api_keys.add(api_key("k1"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.api_keys.add(api_key("k9", lookup=f"lookup-{f.INSTANCE}-k1", instance_id=OTHER))
        with pytest.raises(AlreadyExists):
            uow.api_keys.add(api_key("k1", lookup="fresh"))
        uow.api_keys.add(api_key("k2"))
        uow.commit()


def test_api_keys_delete(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        for key_id in ("k1", "k2", "k3"):
            uow.api_keys.add(api_key(key_id))
        uow.api_keys.add(api_key("k4", "p2"))
        uow.api_keys.add(api_key("k5", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.api_keys.delete(f.INSTANCE, "k1") is True
        assert uow.api_keys.delete(f.INSTANCE, "k1") is False
        assert uow.api_keys.delete(f.INSTANCE, "k5") is False  # another instance's key
        assert uow.api_keys.delete_for_principal(f.INSTANCE, "p1") == 2
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.api_keys.get_by_lookup(f"lookup-{f.INSTANCE}-k2") is None
        assert uow.api_keys.get(f.INSTANCE, "k4") is not None
        assert uow.api_keys.get(OTHER, "k5") is not None


# ------------------------------------------------------------------ role bindings


def test_role_bindings_crud(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.role_bindings.add(binding("b2", created_at=f.at(2)))
        uow.role_bindings.add(
            binding("b1", role="Manager", scope="key_ring:r1", created_at=f.at(2))
        )
        uow.role_bindings.add(binding("b0", role="KyokInstanceAdmin", created_at=f.at(3)))
        uow.role_bindings.add(binding("b3", "p2", role="KyokInstanceAdmin", created_at=f.at(1)))
        uow.role_bindings.add(binding("b4", role="KyokInstanceAdmin", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        repo = uow.role_bindings
        assert repo.get(f.INSTANCE, "b1") == binding(
            "b1", role="Manager", scope="key_ring:r1", created_at=f.at(2)
        )
        assert repo.get(OTHER, "b1") is None
        assert [b.id for b in repo.list_for_principal(f.INSTANCE, "p1")] == ["b1", "b2", "b0"]
        admins = repo.list_for_role(f.INSTANCE, "KyokInstanceAdmin")
        assert [b.id for b in admins] == ["b3", "b0"]
        assert [b.id for b in repo.list_for_role(f.INSTANCE, "KyokInstanceAdmin", lock=True)] == [
            "b3",
            "b0",
        ]
        assert repo.delete(f.INSTANCE, "b2") is True
        assert repo.delete(f.INSTANCE, "b2") is False
        assert repo.delete_for_principal(f.INSTANCE, "p1") == 2
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert [b.id for b in uow.role_bindings.list_for_role(f.INSTANCE, "KyokInstanceAdmin")] == [
            "b3"
        ]
        assert uow.role_bindings.get(OTHER, "b4") is not None


def test_a_role_binding_is_unique_per_principal_role_and_scope(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.role_bindings.add(binding("b1"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.role_bindings.add(binding("b2"))  # same principal, role and scope
        with pytest.raises(AlreadyExists):
            uow.role_bindings.add(binding("b1", role="Writer"))  # same id
        uow.role_bindings.add(binding("b3", scope="key:k1"))
        uow.role_bindings.add(binding("b4", role="Writer"))
        uow.role_bindings.add(binding("b5", "p2"))
        uow.role_bindings.add(binding("b6", instance_id=OTHER))
        uow.commit()


def test_locking_bindings_needs_a_writable_unit_of_work(any_store: AnyStore) -> None:
    with any_store.uow(read_only=True) as uow, pytest.raises(InternalError):
        uow.role_bindings.list_for_role(f.INSTANCE, "KyokInstanceAdmin", lock=True)


def test_locked_bindings_keep_a_last_one_check_true_until_commit(any_store: AnyStore) -> None:
    """Two administrators remove each other concurrently: at most one succeeds."""
    admin = "KyokInstanceAdmin"
    with any_store.uow() as uow:
        uow.role_bindings.add(binding("b1", "p1", admin))
        uow.role_bindings.add(binding("b2", "p2", admin))
        uow.commit()

    def remove(target: str) -> Any:
        def run(first_wrote: threading.Event, second_started: threading.Event) -> None:
            is_first = target == "b1"
            if not is_first:
                assert first_wrote.wait(TIMEOUT)
            with any_store.uow() as uow:
                if not is_first:
                    second_started.set()
                admins = uow.role_bindings.list_for_role(f.INSTANCE, admin, lock=True)
                if len(admins) < 2:
                    raise RuntimeError("last administrator")
                uow.role_bindings.delete(f.INSTANCE, target)
                if is_first:
                    first_wrote.set()
                    assert second_started.wait(TIMEOUT)
                    time.sleep(0.1)
                uow.commit()

        return run

    outcomes = _race(remove("b1"), remove("b2"))
    assert sum(o is None for o in outcomes) == 1, outcomes
    loser = next(o for o in outcomes if o is not None)
    assert isinstance(loser, VersionConflict | RuntimeError), loser
    with any_store.uow(read_only=True) as uow:
        assert len(uow.role_bindings.list_for_role(f.INSTANCE, admin)) == 1


# ------------------------------------------------------------------ refresh tokens


def test_refresh_tokens_are_single_use(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.refresh_tokens.add(refresh("t1"))
        uow.refresh_tokens.add(refresh("t2", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.refresh_tokens.get("t1") == refresh("t1")
        assert uow.refresh_tokens.get("t2") == refresh("t2", instance_id=OTHER)
        assert uow.refresh_tokens.get("nope") is None
        with pytest.raises(AlreadyExists):
            uow.refresh_tokens.add(refresh("t1", "p2"))
        assert uow.refresh_tokens.consume("t1") is True
        assert uow.refresh_tokens.consume("t1") is False
        assert uow.refresh_tokens.consume("nope") is False
        uow.commit()
    with any_store.uow() as uow:
        assert uow.refresh_tokens.get("t1") is None
        assert uow.refresh_tokens.consume("t1") is False


def test_refresh_tokens_bulk_deletes(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.refresh_tokens.add(refresh("a", "p1", api_key_id="k1", expires_at=f.at(10)))
        uow.refresh_tokens.add(refresh("b", "p1", api_key_id="k2", expires_at=f.at(20)))
        uow.refresh_tokens.add(refresh("c", "p2", api_key_id="k3", expires_at=f.at(30)))
        uow.refresh_tokens.add(refresh("d", "p2", api_key_id="k3", expires_at=f.at(40)))
        uow.refresh_tokens.add(
            refresh("e", "p1", api_key_id="k1", expires_at=f.at(5), instance_id=OTHER)
        )
        uow.refresh_tokens.add(refresh("f", "p3", api_key_id="k9", expires_at=f.at(99)))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.refresh_tokens.delete_for_principal(f.INSTANCE, "p1") == 2
        assert uow.refresh_tokens.delete_for_api_key(f.INSTANCE, "k3") == 2
        assert uow.refresh_tokens.delete_for_api_key(f.INSTANCE, "k3") == 0
        uow.commit()
    with any_store.uow() as uow:
        assert uow.refresh_tokens.get("e") is not None
        assert uow.refresh_tokens.delete_expired(f.at(100), limit=1) == 1  # "e", the oldest
        assert uow.refresh_tokens.get("e") is None
        assert uow.refresh_tokens.delete_expired(f.at(50), limit=10) == 0
        assert uow.refresh_tokens.delete_expired(f.at(99), limit=10) == 1
        with pytest.raises(ValueError):
            uow.refresh_tokens.delete_expired(f.at(99), limit=-1)
        uow.commit()


def test_two_refreshes_of_one_token_at_most_one_wins(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.refresh_tokens.add(refresh("t1"))
        uow.commit()
    consumed: list[bool] = []

    def first(first_wrote: threading.Event, second_started: threading.Event) -> None:
        with any_store.uow() as uow:
            consumed.append(uow.refresh_tokens.consume("t1"))
            first_wrote.set()
            assert second_started.wait(TIMEOUT)
            time.sleep(0.1)
            uow.commit()

    def second(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        with any_store.uow() as uow:
            second_started.set()
            consumed.append(uow.refresh_tokens.consume("t1"))
            uow.commit()

    outcomes = _race(first, second)
    errors = [o for o in outcomes if o is not None]
    assert all(isinstance(e, VersionConflict) for e in errors), errors
    # exactly one consumer both saw the token and committed
    assert consumed.count(True) - len(errors) == 1


def test_credential_writes_are_refused_in_read_only_units_of_work(any_store: AnyStore) -> None:
    with any_store.uow(read_only=True) as uow:
        for write in (
            lambda: uow.principals.add(principal("p1")),
            lambda: uow.api_keys.add(api_key("k1")),
            lambda: uow.role_bindings.add(binding("b1")),
            lambda: uow.refresh_tokens.add(refresh("t1")),
            lambda: uow.refresh_tokens.consume("t1"),
            lambda: uow.principals.delete(f.INSTANCE, "p1"),
        ):
            with pytest.raises(InternalError):
                write()


def test_uncommitted_credentials_are_not_visible(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.principals.add(principal("p1"))
        uow.api_keys.add(api_key("k1"))
        uow.role_bindings.add(binding("b1"))
        uow.refresh_tokens.add(refresh("t1"))
        # a unit of work sees its own writes
        assert uow.api_keys.get(f.INSTANCE, "k1") is not None
        assert len(uow.role_bindings.list_for_principal(f.INSTANCE, "p1")) == 1
    with any_store.uow(read_only=True) as uow:
        assert uow.principals.get(f.INSTANCE, "p1") is None
        assert uow.api_keys.get_by_lookup(f"lookup-{f.INSTANCE}-k1") is None
        assert uow.role_bindings.get(f.INSTANCE, "b1") is None
        assert uow.refresh_tokens.get("t1") is None


def test_credential_records_hide_secrets_in_repr() -> None:
    for record in (principal("p1"), api_key("k1"), binding("b1"), refresh("t1")):
        text = repr(record)
        assert "mac=" not in text and "lookup=" not in text
