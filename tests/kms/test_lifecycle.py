"""DESIGN §4, state by state and action by action.

``EXPECTED`` is written by hand from DESIGN §4 and the Key Protect reference (§3), independently
of ``kyok.kms.lifecycle``: the tests compare the lifecycle data against it, and then drive the
real service through every (state, action) pair, forbidden ones included.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from typing import Any

import pytest

from kyok.kms import lifecycle
from kyok.kms.errors import (
    KeyDeleted,
    KeyNotFound,
    KeyStateConflict,
    NotExtractable,
    RootKeyRequired,
)
from kyok.kms.keys import KeyState
from kyok.kms.lifecycle import Action, check, check_kind

OK_SAME = "same"  # allowed, state unchanged
C409 = KeyStateConflict
G410 = KeyDeleted
GONE = "gone"  # allowed, and the key no longer exists

# fmt: off
EXPECTED: dict[int, dict[str, Any]] = {
    0: {"read": OK_SAME, "export": C409, "wrap": C409, "unwrap": C409, "rewrap": C409,
        "rotate": C409, "disable": C409, "enable": C409, "delete": 5, "restore": C409,
        "purge": C409, "expire": C409, "edit": OK_SAME, "list_versions": C409},
    1: {"read": OK_SAME, "export": OK_SAME, "wrap": OK_SAME, "unwrap": OK_SAME,
        "rewrap": OK_SAME, "rotate": OK_SAME, "disable": 2, "enable": C409, "delete": 5,
        "restore": C409, "purge": C409, "expire": 3, "edit": OK_SAME, "list_versions": OK_SAME},
    2: {"read": OK_SAME, "export": OK_SAME, "wrap": C409, "unwrap": C409, "rewrap": C409,
        "rotate": C409, "disable": C409, "enable": 1, "delete": 5, "restore": C409,
        "purge": C409, "expire": 3, "edit": OK_SAME, "list_versions": C409},
    3: {"read": OK_SAME, "export": OK_SAME, "wrap": C409, "unwrap": OK_SAME, "rewrap": OK_SAME,
        "rotate": OK_SAME, "disable": C409, "enable": C409, "delete": 5, "restore": C409,
        "purge": C409, "expire": C409, "edit": OK_SAME, "list_versions": C409},
    5: {"read": OK_SAME, "export": G410, "wrap": G410, "unwrap": G410, "rewrap": G410,
        "rotate": G410, "disable": G410, "enable": G410, "delete": G410, "restore": 1,
        "purge": GONE, "expire": G410, "edit": G410, "list_versions": C409},
}
# fmt: on

ROOT_ONLY_BY_HAND = {"wrap", "unwrap", "rewrap", "rotate", "disable", "enable"}
STANDARD_ONLY_BY_HAND = {"export"}
PAIRS = list(itertools.product(KeyState, Action))


def _table_outcome(state: KeyState, action: Action) -> Any:
    """What ``lifecycle.check`` does, in the vocabulary of EXPECTED."""
    try:
        after = check(state, action)
    except (KeyStateConflict, KeyDeleted) as exc:
        return type(exc)
    if action in lifecycle.REMOVES:
        return GONE
    return OK_SAME if after is state else int(after)


def test_expectation_covers_every_state_and_action() -> None:
    assert set(EXPECTED) == {int(s) for s in KeyState}
    for row in EXPECTED.values():
        assert set(row) == {a.value for a in Action}


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_lifecycle_table_matches_hand_written_expectation(state: KeyState, action: Action) -> None:
    expected = EXPECTED[int(state)][action.value]
    if action is Action.LIST_VERSIONS and state is KeyState.DESTROYED:
        expected = G410  # the table says "not allowed"; the service turns it into 409 (below)
    assert _table_outcome(state, action) == expected


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_check_follows_its_own_data(state: KeyState, action: Action) -> None:
    """Generated from ALLOWED/TRANSITIONS: allowed pairs return the transition, others raise."""
    if action in lifecycle.ALLOWED[state]:
        assert check(state, action) is lifecycle.TRANSITIONS.get((state, action), state)
    else:
        expected = KeyDeleted if state is KeyState.DESTROYED else KeyStateConflict
        with pytest.raises(expected) as info:
            check(state, action)
        if expected is KeyStateConflict:
            assert info.value.state == int(state)
            assert info.value.action == action.value
            assert info.value.status == 409
            assert info.value.code == "KEY_ACTION_INVALID_STATE_ERR"
        else:
            assert info.value.status == 410
            assert info.value.code == "KEY_DELETED_ERR"


def test_transitions_only_from_allowed_pairs() -> None:
    for (state, action), _target in lifecycle.TRANSITIONS.items():
        assert action in lifecycle.ALLOWED[state]


@pytest.mark.parametrize("action", list(Action))
def test_kind_rules(action: Action) -> None:
    if action.value in ROOT_ONLY_BY_HAND:
        with pytest.raises(RootKeyRequired) as info:
            check_kind(True, action)
        assert info.value.code == "KEY_ROOT_REQ_ERR" and info.value.status == 400
    else:
        check_kind(True, action)
    if action.value in STANDARD_ONLY_BY_HAND:
        with pytest.raises(NotExtractable):
            check_kind(False, action)
    else:
        check_kind(False, action)


# --------------------------------------------------------------------- through the service


def _force_state(
    store: Any, instance: str, key_id: str, state: int, now: Any, service: Any
) -> None:
    """Write ``state`` straight into the store (state 0 cannot be reached through the API), and
    tell the service, whose data-plane cache would otherwise keep the old record for its ttl."""
    long_ago = now - timedelta(hours=5)
    with store.uow() as uow:
        record = uow.keys.get(instance, key_id)
        changes: dict[str, Any] = {"state": state, "last_action_at": long_ago}
        if state == 5:
            changes.update(deleted_at=long_ago, deleted_by="someone")
        uow.keys.update(dataclasses.replace(record, **changes), record.row_version)
        uow.commit()
    service.invalidate_cached(instance, key_id)


def _perform(
    service: Any,
    store: Any,
    actor: Any,
    instance: str,
    key_id: str,
    action: Action,
    ct: bytes,
    clock: Any,
) -> None:
    if action is Action.READ:
        service.get_key(instance, key_id)
    elif action is Action.EXPORT:
        service.get_key_material(instance, key_id)
    elif action is Action.WRAP:
        service.wrap(instance, key_id, b"k" * 32)
    elif action is Action.UNWRAP:
        assert service.unwrap(instance, key_id, ct).plaintext == b"d" * 32
    elif action is Action.REWRAP:
        service.rewrap(instance, key_id, ct)
    elif action is Action.ROTATE:
        service.rotate(actor, instance, key_id)
    elif action is Action.DISABLE:
        service.disable(actor, instance, key_id)
    elif action is Action.ENABLE:
        service.enable(actor, instance, key_id)
    elif action is Action.DELETE:
        service.delete(actor, instance, key_id)
    elif action is Action.RESTORE:
        service.restore(actor, instance, key_id)
    elif action is Action.PURGE:
        service.purge(actor, instance, key_id)
    elif action is Action.EXPIRE:
        # Give the key an expiration in the past, then let the scheduler run.
        with store.uow() as uow:
            record = uow.keys.get(instance, key_id)
            past = clock.now() - timedelta(seconds=1)
            uow.keys.update(dataclasses.replace(record, expires_at=past), record.row_version)
            uow.commit()
        if service.expire_due() != 1:
            state = service.get_key(instance, key_id).record.state
            raise KeyDeleted() if state == 5 else KeyStateConflict(state, "expire")
        with store.uow() as uow:
            assert uow.keys.get(instance, key_id).state == 3
    elif action is Action.EDIT:
        service.create_alias(actor, instance, key_id, "an-alias")
    elif action is Action.LIST_VERSIONS:
        service.list_versions(instance, key_id)
    else:  # pragma: no cover
        raise AssertionError(action)


SERVICE_PAIRS = list(itertools.product([0, 1, 2, 3, 5], Action))


@pytest.mark.parametrize(
    ("state", "action"), SERVICE_PAIRS, ids=[f"{s}-{a.value}" for s, a in SERVICE_PAIRS]
)
def test_service_follows_design_table(service, store, actor, instance, clock, state, action):
    extractable = action is Action.EXPORT
    key = service.create_key(actor, instance, "table-key", extractable=extractable)
    ct = b""
    if not extractable:
        ct = service.wrap(instance, key.id, b"d" * 32).ciphertext
    _force_state(store, instance, key.id, state, clock.now(), service)
    expected = EXPECTED[state][action.value]

    if isinstance(expected, type):
        before = service.get_key(instance, key.id).record
        with pytest.raises(expected):
            _perform(service, store, actor, instance, key.id, action, ct, clock)
        after = service.get_key(instance, key.id).record
        if action is not Action.EXPIRE:  # the expire probe itself writes expires_at
            assert after == before, "a refused action must not change the key"
        return

    _perform(service, store, actor, instance, key.id, action, ct, clock)
    if expected == GONE:
        with pytest.raises(KeyNotFound):
            service.get_key(instance, key.id)
        return
    view = service.get_key(instance, key.id)
    assert int(view.state) == (state if expected == OK_SAME else expected)
