"""The first administrator of an instance (dev mode and first setup)."""

from __future__ import annotations

import pytest

from auth_kit import AuthHarness
from kyok.auth import AlreadyBootstrapped, InvalidAuthField, Role
from kyok.auth.roles import Permission
from kyok.errors import Conflict, NotFound


def test_bootstrap_creates_an_admin_with_manager_keypurge_and_instance_admin(
    harness: AuthHarness, instance: str
) -> None:
    key = harness.auth.bootstrap_admin(instance)
    assert key.startswith("kyok_") and len(key) == 48
    ctx = harness.ctx(key, instance)
    assert {(g.role, str(g.scope)) for g in ctx.grants} == {
        (Role.MANAGER, "instance"),
        (Role.KEY_PURGE, "instance"),
        (Role.INSTANCE_ADMIN, "instance"),
    }
    assert ctx.allows(Permission.KEYS_PURGE) and ctx.allows(Permission.PRINCIPALS_MANAGE)
    (principal,) = harness.auth.list_principals(ctx)
    assert principal.name == "admin" and principal.created_by == "kyok-system"
    (api_key,) = harness.auth.list_api_keys(ctx, principal.id)
    assert api_key.name == "bootstrap"


def test_a_fixed_dev_key_is_idempotent(harness: AuthHarness, instance: str) -> None:
    fixed = "my development key, any printable text!"
    assert harness.auth.bootstrap_admin(instance, api_key=fixed) == fixed
    ctx = harness.ctx(fixed, instance)
    assert harness.auth.bootstrap_admin(instance, api_key=fixed) == fixed  # a restart
    assert len(harness.auth.list_principals(ctx)) == 1
    assert len(harness.auth.list_api_keys(ctx, ctx.principal.id)) == 1
    assert harness.ctx(fixed, instance).principal.id == ctx.principal.id


def test_bootstrap_refuses_an_instance_with_principals(harness: AuthHarness, instance: str) -> None:
    key = harness.auth.bootstrap_admin(instance)
    with pytest.raises(AlreadyBootstrapped) as info:
        harness.auth.bootstrap_admin(instance)
    assert info.value.status == 409
    with pytest.raises(AlreadyBootstrapped):
        harness.auth.bootstrap_admin(instance, api_key="another key of 16+ chars")
    with pytest.raises(Conflict):  # a known key, but of another principal name
        harness.auth.bootstrap_admin(instance, name="root", api_key=key)


def test_a_key_in_use_by_another_instance_is_refused(harness: AuthHarness, instance: str) -> None:
    fixed = "shared-dev-key-0123456789"
    harness.auth.bootstrap_admin(instance, api_key=fixed)
    other = harness.new_instance("B")
    with pytest.raises(Conflict):
        harness.auth.bootstrap_admin(other, api_key=fixed)


@pytest.mark.parametrize("key", ["short", "x" * 257, "line\nbreak in the key", "\x00" * 20])
def test_bootstrap_checks_the_key(harness: AuthHarness, instance: str, key: str) -> None:
    with pytest.raises(InvalidAuthField):
        harness.auth.bootstrap_admin(instance, api_key=key)


def test_bootstrap_of_an_unknown_instance(harness: AuthHarness) -> None:
    with pytest.raises(NotFound):
        harness.auth.bootstrap_admin("no-such-instance")


def test_a_custom_admin_name(harness: AuthHarness, instance: str) -> None:
    key = harness.auth.bootstrap_admin(instance, name="root")
    ctx = harness.ctx(key, instance)
    assert harness.auth.whoami(ctx).principal.name == "root"
