"""The operator has the database, not the crypto unit: rows they write themselves are not
credentials. Each test plays "the operator" with direct store access."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import uuid

import pytest

from auth_kit import AuthHarness, bearer
from kyok.auth import AuthContext, InvalidApiKey, InvalidRefreshToken, Role, TokenInvalid
from kyok.auth.apikeys import lookup_of
from kyok.auth.context import Scope
from kyok.auth.integrity import api_key_mac, role_binding_mac
from kyok.auth.roles import Permission
from kyok.store.records import ApiKeyRecord, PrincipalRecord, RoleBindingRecord

OPERATOR_KEY = "kyok_operator-chose-this-key-0123456789abcdef"


def _guessed_mac(*fields: str) -> str:
    """What an operator can compute: a MAC under a key of their own."""
    return hmac.new(b"operator's guess", "|".join(fields).encode(), hashlib.sha256).hexdigest()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_api_key_row_inserted_by_the_operator_is_rejected(
    harness: AuthHarness, instance: str, admin: AuthContext, caplog: pytest.LogCaptureFixture
) -> None:
    lookup = lookup_of(OPERATOR_KEY)
    row = ApiKeyRecord(
        lookup=lookup,
        instance_id=instance,
        id=str(uuid.uuid4()),
        principal_id=admin.principal.id,  # the administrator's principal
        name="backdoor",
        created_at=harness.clock.now(),
        created_by=admin.principal.id,
        mac=_guessed_mac(instance, admin.principal.id, lookup),
    )
    with harness.store.uow() as uow:
        uow.api_keys.add(row)
        uow.commit()
    caplog.set_level(logging.INFO, logger="kyok.auth")
    with pytest.raises(InvalidApiKey):
        harness.auth.issue_token(OPERATOR_KEY)
    warnings = _warnings(caplog)
    assert any("failed its MAC" in w and row.id in w for w in warnings), warnings
    assert all(OPERATOR_KEY not in r.getMessage() for r in caplog.records)
    # nor does the forged row show up as the administrator's key
    assert row.id not in {k.id for k in harness.auth.list_api_keys(admin, admin.principal.id)}


def test_a_valid_api_key_row_moved_to_another_principal_or_instance_is_rejected(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    """The operator knows a low-privilege key (their own) and re-points its row."""
    reader_id, reader_key = harness.principal_with(admin, "reader", [(Role.READER, "instance")])
    other = harness.new_instance("B")
    other_key = harness.admin_key(other)
    other_admin = harness.ctx(other_key, other)
    lookup = lookup_of(reader_key)
    with harness.store.uow() as uow:
        original = uow.api_keys.get_by_lookup(lookup)
        assert original is not None
    for forged in (
        dataclasses.replace(original, principal_id=admin.principal.id),
        dataclasses.replace(original, instance_id=other, principal_id=other_admin.principal.id),
    ):
        with harness.store.uow() as uow:
            uow.api_keys.delete(original.instance_id, original.id)
            uow.api_keys.delete(forged.instance_id, forged.id)
            uow.api_keys.add(forged)
            uow.commit()
        with pytest.raises(InvalidApiKey):
            harness.auth.issue_token(reader_key)
    # put the genuine row back: the key works again
    with harness.store.uow() as uow:
        uow.api_keys.delete(other, original.id)
        uow.api_keys.add(original)
        uow.commit()
    assert harness.ctx(reader_key, instance).principal.id == reader_id


def test_a_role_binding_inserted_by_the_operator_is_ignored(
    harness: AuthHarness, instance: str, admin: AuthContext, caplog: pytest.LogCaptureFixture
) -> None:
    reader_id, reader_key = harness.principal_with(admin, "reader", [(Role.READER, "instance")])
    forged = RoleBindingRecord(
        instance_id=instance,
        id=str(uuid.uuid4()),
        principal_id=reader_id,
        role=Role.MANAGER.value,
        scope="instance",
        created_at=harness.clock.now(),
        created_by=admin.principal.id,
        mac=_guessed_mac(instance, reader_id, "Manager", "instance"),
    )
    with harness.store.uow() as uow:
        uow.role_bindings.add(forged)
        uow.commit()
    harness.auth.invalidate_caches()
    caplog.set_level(logging.WARNING, logger="kyok.auth")
    ctx = harness.ctx(reader_key, instance)
    assert [g.role for g in ctx.grants] == [Role.READER]
    assert not ctx.allows(Permission.KEYS_DELETE)
    assert any("failed its MAC" in w and forged.id in w for w in _warnings(caplog))
    assert forged.id not in {b.id for b in harness.auth.list_grants(admin, reader_id)}
    assert forged.id not in {b.id for b in harness.auth.whoami(ctx).bindings}


def test_a_genuine_binding_cannot_be_re_pointed(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    """Copy the administrator's KyokInstanceAdmin binding onto another principal, or turn a
    key-scoped Manager binding into an instance-wide one: both fail their MAC."""
    key_id = str(uuid.uuid4())
    reader_id, reader_key = harness.principal_with(
        admin, "reader", [(Role.MANAGER, f"key:{key_id}")]
    )
    with harness.store.uow() as uow:
        admin_binding = next(
            b
            for b in uow.role_bindings.list_for_principal(instance, admin.principal.id)
            if b.role == Role.INSTANCE_ADMIN.value
        )
        (scoped,) = uow.role_bindings.list_for_principal(instance, reader_id)
        uow.role_bindings.add(
            dataclasses.replace(admin_binding, id=str(uuid.uuid4()), principal_id=reader_id)
        )
        uow.role_bindings.delete(instance, scoped.id)
        uow.role_bindings.add(dataclasses.replace(scoped, scope="instance"))
        uow.commit()
    harness.auth.invalidate_caches()
    ctx = harness.ctx(reader_key, instance)
    assert ctx.grants == ()
    assert not ctx.allows(Permission.PRINCIPALS_MANAGE)
    assert not ctx.allows(Permission.KEYS_DELETE, key_id=key_id)


def test_a_principal_row_inserted_or_renamed_by_the_operator_is_not_a_principal(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    forged = PrincipalRecord(
        instance_id=instance,
        id=str(uuid.uuid4()),
        name="ghost",
        kind="service",
        created_at=harness.clock.now(),
        created_by="operator",
        mac=_guessed_mac(instance, "ghost"),
    )
    with harness.store.uow() as uow:
        uow.principals.add(forged)
        uow.commit()
    assert forged.id not in {p.id for p in harness.auth.list_principals(admin)}
    # even with a genuine-looking binding and key, the principal does not authenticate: the
    # operator cannot MAC those either, so give them the benefit of real MACs from a test
    unit = harness.units.for_instance(instance)
    binding = RoleBindingRecord(
        instance, str(uuid.uuid4()), forged.id, "Manager", "instance", forged.created_at, "x", ""
    )
    key = ApiKeyRecord(
        lookup_of(OPERATOR_KEY),
        instance,
        str(uuid.uuid4()),
        forged.id,
        "k",
        forged.created_at,
        "x",
        "",
    )
    with harness.store.uow() as uow:
        uow.role_bindings.add(dataclasses.replace(binding, mac=role_binding_mac(unit, binding)))
        uow.api_keys.add(dataclasses.replace(key, mac=api_key_mac(unit, key)))
        uow.commit()
    with pytest.raises(InvalidApiKey):
        harness.auth.issue_token(OPERATOR_KEY)


def test_a_refresh_token_row_inserted_by_the_operator_is_rejected(
    harness: AuthHarness, instance: str, admin_key: str, admin: AuthContext
) -> None:
    grant = harness.token(admin_key)
    token = "kyok_rt_" + "Q" * 43
    with harness.store.uow() as uow:
        genuine = uow.refresh_tokens.get(lookup_of(grant.refresh_token))
        assert genuine is not None
        uow.refresh_tokens.add(dataclasses.replace(genuine, lookup=lookup_of(token)))
        uow.commit()
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(token)
    # extending a genuine session by editing its expiry fails too
    with harness.store.uow() as uow:
        uow.refresh_tokens.consume(genuine.lookup)
        uow.refresh_tokens.add(
            dataclasses.replace(genuine, expires_at=genuine.expires_at.replace(year=2099))
        )
        uow.commit()
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(grant.refresh_token)


def test_deleting_rows_is_denial_of_service_only(
    harness: AuthHarness, instance: str, admin_key: str, admin: AuthContext
) -> None:
    """The documented limit: the operator can remove credentials, and the holders notice."""
    grant = harness.token(admin_key)
    with harness.store.uow() as uow:
        uow.role_bindings.delete_for_principal(instance, admin.principal.id)
        uow.principals.delete(instance, admin.principal.id)
        uow.commit()
    harness.auth.invalidate_caches()
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(grant), instance)


def test_grants_from_bindings_cover_instance_ring_and_key_scopes(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    key_a, key_b = str(uuid.uuid4()), str(uuid.uuid4())
    _, key = harness.principal_with(
        admin,
        "app",
        [
            (Role.READER, "instance"),
            (Role.WRITER, "key_ring:payments"),
            (Role.MANAGER, f"key:{key_a}"),
            (Role.KEY_PURGE, f"key:{key_b}"),
        ],
    )
    ctx = harness.ctx(key, instance)
    assert set(ctx.grants) == {
        harness_grant(Role.READER, "instance"),
        harness_grant(Role.WRITER, "key_ring:payments"),
        harness_grant(Role.MANAGER, f"key:{key_a}"),
        harness_grant(Role.KEY_PURGE, f"key:{key_b}"),
    }
    P = Permission
    # instance-wide Reader
    assert ctx.allows(P.KEYS_LIST) and ctx.allows(P.KEYS_WRAP, key_id="any", key_ring_id="x")
    assert not ctx.allows(P.KEYS_CREATE)
    # Writer in the ring "payments" only
    assert ctx.allows(P.KEYS_CREATE, key_ring_id="payments")
    assert ctx.allows(P.KEYS_ROTATE, key_ring_id="payments", key_id="k")
    assert not ctx.allows(P.KEYS_CREATE, key_ring_id="other")
    assert not ctx.allows(P.KEYS_DELETE, key_ring_id="payments", key_id="k")
    # Manager of key A only; purge of key B only
    assert ctx.allows(P.KEYS_DELETE, key_id=key_a)
    assert not ctx.allows(P.KEYS_DELETE, key_id=key_b)
    assert ctx.allows(P.KEYS_PURGE, key_id=key_b) and not ctx.allows(P.KEYS_PURGE, key_id=key_a)
    # nothing here manages principals
    assert not ctx.allows(P.PRINCIPALS_MANAGE)


def harness_grant(role: Role, scope: str) -> object:
    from kyok.auth import Grant

    return Grant(role, Scope.parse(scope))
