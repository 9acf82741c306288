"""Principals, API keys and role bindings through the service: validation, permissions,
instance isolation, last-admin protection and immediate effect (cache invalidation)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from auth_kit import AuthHarness, bearer
from kyok.auth import (
    ApiKeyNotFound,
    AuthContext,
    InvalidAuthField,
    LastAdmin,
    NotAllowed,
    PrincipalExists,
    PrincipalNotFound,
    Role,
    RoleBindingExists,
    RoleBindingNotFound,
    TokenInvalid,
)
from kyok.auth.context import Scope, ScopeKind
from kyok.auth.roles import Permission
from kyok.errors import Conflict


def test_principal_lifecycle(harness: AuthHarness, instance: str, admin: AuthContext) -> None:
    harness.clock.advance(1)
    created = harness.auth.create_principal(admin, "ci pipeline", "service")
    assert created.instance_id == instance and created.kind == "service"
    assert created.created_by == admin.principal.id
    assert created.created_at == harness.clock.now()
    uuid.UUID(created.id)
    assert harness.auth.get_principal(admin, created.id) == created
    names = [p.name for p in harness.auth.list_principals(admin)]
    assert names == ["admin", "ci pipeline"]
    with pytest.raises(PrincipalExists) as info:
        harness.auth.create_principal(admin, "ci pipeline", "user")
    assert info.value.status == 409
    harness.auth.delete_principal(admin, created.id)
    with pytest.raises(PrincipalNotFound):
        harness.auth.get_principal(admin, created.id)
    with pytest.raises(PrincipalNotFound):
        harness.auth.delete_principal(admin, created.id)
    assert harness.auth.create_principal(admin, "ci pipeline", "USER").kind == "user"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a", "user"),
        ("x" * 65, "user"),
        (" padded", "user"),
        ("new\nline", "user"),
        (42, "user"),
        (None, "user"),
        ("fine", "robot"),
        ("fine", "system"),
        ("fine", 1),
    ],
)
def test_principal_input_is_validated(
    harness: AuthHarness, admin: AuthContext, name: Any, kind: Any
) -> None:
    with pytest.raises(InvalidAuthField) as info:
        harness.auth.create_principal(admin, name, kind)
    assert info.value.status == 400 and info.value.target in ("name", "kind")


def test_deleting_a_principal_removes_its_keys_bindings_and_refresh_tokens(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    pid, key = harness.principal_with(admin, "svc", [(Role.WRITER, "instance")])
    harness.auth.create_api_key(admin, pid, "second")
    harness.token(key)
    harness.auth.delete_principal(admin, pid)
    with harness.store.uow(read_only=True) as uow:
        assert uow.api_keys.list_for_principal(instance, pid) == []
        assert uow.role_bindings.list_for_principal(instance, pid) == []
        assert uow.principals.get(instance, pid) is None


def test_api_keys(harness: AuthHarness, instance: str, admin: AuthContext) -> None:
    principal = harness.auth.create_principal(admin, "svc", "service")
    record, secret = harness.auth.create_api_key(admin, principal.id, "deploy key")
    assert secret.reveal().startswith("kyok_") and len(secret.reveal()) == 48
    assert record.name == "deploy key" and record.principal_id == principal.id
    assert secret.reveal() not in repr(record) and record.lookup not in repr(record)
    harness.clock.advance(1)
    second, _ = harness.auth.create_api_key(admin, principal.id, "k2")
    listed = harness.auth.list_api_keys(admin, principal.id)
    assert [k.id for k in listed] == [record.id, second.id]
    assert harness.ctx(secret.reveal(), instance).principal.id == principal.id
    harness.auth.delete_api_key(admin, record.id)
    with pytest.raises(ApiKeyNotFound):
        harness.auth.delete_api_key(admin, record.id)
    assert [k.id for k in harness.auth.list_api_keys(admin, principal.id)] == [second.id]
    with pytest.raises(PrincipalNotFound):
        harness.auth.create_api_key(admin, "no-such-principal", "k")
    with pytest.raises(PrincipalNotFound):
        harness.auth.list_api_keys(admin, "no-such-principal")
    for bad in ("", "x" * 65, "\t"):
        with pytest.raises(InvalidAuthField):
            harness.auth.create_api_key(admin, principal.id, bad)


def test_grant_and_revoke_take_effect_at_once(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    pid, key = harness.principal_with(admin, "app")
    grant = harness.token(key)
    assert harness.auth.authenticate(bearer(grant), instance).grants == ()  # cached now
    binding = harness.auth.grant(admin, pid, "writer", "key_ring:payments")
    assert binding.role == "Writer" and binding.scope == "key_ring:payments"
    ctx = harness.auth.authenticate(bearer(grant), instance)
    assert ctx.allows(Permission.KEYS_CREATE, key_ring_id="payments")
    with pytest.raises(RoleBindingExists):
        harness.auth.grant(admin, pid, Role.WRITER, Scope(ScopeKind.KEY_RING, "payments"))
    assert [b.id for b in harness.auth.list_grants(admin, pid)] == [binding.id]
    harness.auth.revoke(admin, binding.id)
    assert harness.auth.authenticate(bearer(grant), instance).grants == ()
    with pytest.raises(RoleBindingNotFound):
        harness.auth.revoke(admin, binding.id)


@pytest.mark.parametrize(
    ("role", "scope", "target"),
    [
        ("Owner", "instance", "role"),
        ("", "instance", "role"),
        (None, "instance", "role"),
        ("Reader", "everything", "scope"),
        ("Reader", "instance:x", "scope"),
        ("Reader", "key_ring:", "scope"),
        ("Reader", "key_ring:UPPER", "scope"),
        ("Reader", "key_ring:-dash", "scope"),
        ("Reader", "key:", "scope"),
        ("Reader", "key:not-a-uuid", "scope"),
        ("Reader", "key:" + "0" * 32, "scope"),
        ("Reader", 7, "scope"),
        ("KyokInstanceAdmin", "key_ring:payments", "scope"),
        ("KyokInstanceAdmin", "key:3f1e8a52-6b0d-4c4e-9a57-0c2f6d1b7e11", "scope"),
    ],
)
def test_grant_input_is_validated(
    harness: AuthHarness, admin: AuthContext, role: Any, scope: Any, target: str
) -> None:
    pid = harness.auth.create_principal(admin, "app", "service").id
    with pytest.raises(InvalidAuthField) as info:
        harness.auth.grant(admin, pid, role, scope)
    assert info.value.target == target and info.value.status == 400


def test_key_scopes_are_stored_canonically_and_need_no_key(
    harness: AuthHarness, admin: AuthContext
) -> None:
    pid = harness.auth.create_principal(admin, "app", "service").id
    key_id = uuid.uuid4()
    binding = harness.auth.grant(admin, pid, "Reader", f"key:{str(key_id).upper()}")
    assert binding.scope == f"key:{key_id}"  # no such key exists: that is fine


def test_without_the_permission_nothing_is_managed(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    pid, key = harness.principal_with(admin, "manager", [(Role.MANAGER, "instance")])
    manager = harness.ctx(key, instance)
    binding = harness.auth.list_grants(admin, pid)[0]
    calls: list[Callable[[], object]] = [
        lambda: harness.auth.create_principal(manager, "x1", "user"),
        lambda: harness.auth.list_principals(manager),
        lambda: harness.auth.get_principal(manager, pid),
        lambda: harness.auth.delete_principal(manager, admin.principal.id),
        lambda: harness.auth.create_api_key(manager, pid, "mine"),
        lambda: harness.auth.list_api_keys(manager, pid),
        lambda: harness.auth.delete_api_key(manager, "x"),
        lambda: harness.auth.grant(manager, pid, "KyokInstanceAdmin", "instance"),
        lambda: harness.auth.list_grants(manager, pid),
        lambda: harness.auth.revoke(manager, binding.id),
    ]
    for call in calls:
        with pytest.raises(NotAllowed) as info:
            call()
        assert info.value.status == 403
    # but anyone may ask who they are
    identity = harness.auth.whoami(manager)
    assert identity.principal.id == pid and [b.role for b in identity.bindings] == ["Manager"]


def test_another_instances_principals_are_not_found(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    other = harness.new_instance("B")
    other_admin = harness.ctx(harness.admin_key(other), other)
    theirs = harness.auth.create_principal(other_admin, "theirs", "user")
    (their_binding,) = [
        b
        for b in harness.auth.list_grants(other_admin, other_admin.principal.id)
        if b.role == "Manager"
    ]
    their_key, _ = harness.auth.create_api_key(other_admin, theirs.id, "k")
    with pytest.raises(PrincipalNotFound):
        harness.auth.get_principal(admin, theirs.id)
    with pytest.raises(PrincipalNotFound):
        harness.auth.delete_principal(admin, theirs.id)
    with pytest.raises(PrincipalNotFound):
        harness.auth.grant(admin, theirs.id, "Reader", "instance")
    with pytest.raises(ApiKeyNotFound):
        harness.auth.delete_api_key(admin, their_key.id)
    with pytest.raises(RoleBindingNotFound):
        harness.auth.revoke(admin, their_binding.id)
    assert "theirs" not in {p.name for p in harness.auth.list_principals(admin)}


def test_the_last_instance_admin_cannot_be_removed(
    harness: AuthHarness, instance: str, admin_key: str, admin: AuthContext
) -> None:
    admin_grant = harness.token(admin_key)
    (admin_binding,) = [
        b
        for b in harness.auth.list_grants(admin, admin.principal.id)
        if b.role == "KyokInstanceAdmin"
    ]
    with pytest.raises(LastAdmin) as info:
        harness.auth.revoke(admin, admin_binding.id)
    assert info.value.status == 409 and isinstance(info.value, Conflict)
    with pytest.raises(LastAdmin):
        harness.auth.delete_principal(admin, admin.principal.id)
    # other roles of the last admin can go
    for b in harness.auth.list_grants(admin, admin.principal.id):
        if b.role != "KyokInstanceAdmin":
            harness.auth.revoke(admin, b.id)
    # with a second administrator, the first may go
    second_id, second_key = harness.principal_with(
        admin, "second admin", [(Role.INSTANCE_ADMIN, "instance")]
    )
    harness.auth.delete_principal(admin, admin.principal.id)
    second = harness.ctx(second_key, instance)
    (second_binding,) = harness.auth.list_grants(second, second_id)
    with pytest.raises(LastAdmin):
        harness.auth.revoke(second, second_binding.id)
    with pytest.raises(TokenInvalid):  # the deleted administrator's session is over
        harness.auth.authenticate(bearer(admin_grant), instance)


def test_an_admin_binding_of_a_forged_principal_does_not_count(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    """Last-admin counts only administrators that authenticate."""
    pid, _ = harness.principal_with(admin, "second", [(Role.INSTANCE_ADMIN, "instance")])
    with harness.store.uow() as uow:  # the operator renames the second admin: its MAC fails
        row = uow.principals.get(instance, pid)
        assert row is not None
        uow.principals.delete(instance, pid)
        uow.principals.add(dataclasses.replace(row, name="renamed"))
        uow.commit()
    (admin_binding,) = [
        b
        for b in harness.auth.list_grants(admin, admin.principal.id)
        if b.role == "KyokInstanceAdmin"
    ]
    with pytest.raises(LastAdmin):
        harness.auth.revoke(admin, admin_binding.id)


def test_two_admins_removing_each_other_leave_one(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    second_id, second_key = harness.principal_with(
        admin, "second", [(Role.INSTANCE_ADMIN, "instance")]
    )
    second = harness.ctx(second_key, instance)
    start = threading.Barrier(2)

    def remove(ctx: AuthContext, victim: str) -> BaseException | None:
        start.wait(10)
        try:
            harness.auth.delete_principal(ctx, victim)
        except (LastAdmin, Conflict) as exc:
            return exc
        return None

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(remove, admin, second_id)
        b = pool.submit(remove, second, admin.principal.id)
        outcomes = [a.result(timeout=30), b.result(timeout=30)]
    assert sum(o is None for o in outcomes) == 1, outcomes
    with harness.store.uow(read_only=True) as uow:
        assert len(uow.role_bindings.list_for_role(instance, "KyokInstanceAdmin")) == 1
