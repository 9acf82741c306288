"""The key state machine of DESIGN §4, as data.

:data:`ALLOWED` says which actions each state permits, :data:`TRANSITIONS` which of them move the
key to another state, :data:`ROOT_ONLY`/:data:`STANDARD_ONLY` which need a particular kind of key.
:func:`check` and :func:`check_kind` are the only code that reads these tables; the service calls
them before every change, with the *effective* state (:func:`kyok.kms.keys.effective_state`).

=====  ==============  =====================================================================
state  name            allowed
=====  ==============  =====================================================================
0      Pre-activation  read, delete, edit
1      Active          read, export, wrap, unwrap, rewrap, rotate, disable, delete, edit,
                       list_versions, expire
2      Suspended       read, export, enable, delete, edit, expire
3      Deactivated     read, export, unwrap, rewrap, rotate, delete, edit
5      Destroyed       read, restore, purge
=====  ==============  =====================================================================

``read`` is get metadata and list; ``export`` returns a standard key's material ("get" with
payload; not before activation); ``edit`` is alias and key-ring changes; ``expire`` is the
scheduler's move to Deactivated; ``list_versions`` outside Active needs ``all_states``.
A refused action on a destroyed key is ``KeyDeleted`` (410), any other refusal
``KeyStateConflict`` (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from kyok.kms.errors import KeyDeleted, KeyStateConflict, NotExtractable, RootKeyRequired
from kyok.kms.keys import KeyState

__all__ = [
    "ALLOWED",
    "REMOVES",
    "ROOT_ONLY",
    "STANDARD_ONLY",
    "TRANSITIONS",
    "Action",
    "check",
    "check_kind",
]


class Action(StrEnum):
    """Everything a caller or the scheduler can do to a key."""

    READ = "read"
    EXPORT = "export"
    WRAP = "wrap"
    UNWRAP = "unwrap"
    REWRAP = "rewrap"
    ROTATE = "rotate"
    DISABLE = "disable"
    ENABLE = "enable"
    DELETE = "delete"
    RESTORE = "restore"
    PURGE = "purge"
    EXPIRE = "expire"
    EDIT = "edit"
    LIST_VERSIONS = "list_versions"


_S = KeyState
_A = Action

ALLOWED: Mapping[KeyState, frozenset[Action]] = MappingProxyType(
    {
        _S.PRE_ACTIVATION: frozenset({_A.READ, _A.DELETE, _A.EDIT}),
        _S.ACTIVE: frozenset(
            {
                _A.READ,
                _A.EXPORT,
                _A.WRAP,
                _A.UNWRAP,
                _A.REWRAP,
                _A.ROTATE,
                _A.DISABLE,
                _A.DELETE,
                _A.EDIT,
                _A.LIST_VERSIONS,
                _A.EXPIRE,
            }
        ),
        _S.SUSPENDED: frozenset({_A.READ, _A.EXPORT, _A.ENABLE, _A.DELETE, _A.EDIT, _A.EXPIRE}),
        _S.DEACTIVATED: frozenset(
            {_A.READ, _A.EXPORT, _A.UNWRAP, _A.REWRAP, _A.ROTATE, _A.DELETE, _A.EDIT}
        ),
        _S.DESTROYED: frozenset({_A.READ, _A.RESTORE, _A.PURGE}),
    }
)

#: Allowed actions that change the state; every other allowed action keeps it.
TRANSITIONS: Mapping[tuple[KeyState, Action], KeyState] = MappingProxyType(
    {
        (_S.ACTIVE, _A.DISABLE): _S.SUSPENDED,
        (_S.SUSPENDED, _A.ENABLE): _S.ACTIVE,
        (_S.PRE_ACTIVATION, _A.DELETE): _S.DESTROYED,
        (_S.ACTIVE, _A.DELETE): _S.DESTROYED,
        (_S.SUSPENDED, _A.DELETE): _S.DESTROYED,
        (_S.DEACTIVATED, _A.DELETE): _S.DESTROYED,
        (_S.DESTROYED, _A.RESTORE): _S.ACTIVE,
        (_S.ACTIVE, _A.EXPIRE): _S.DEACTIVATED,
        (_S.SUSPENDED, _A.EXPIRE): _S.DEACTIVATED,
    }
)

#: Actions after which the key no longer exists (crypto-shredding).
REMOVES = frozenset({_A.PURGE})

#: Actions defined only for root keys (``extractable = False``).
ROOT_ONLY = frozenset({_A.WRAP, _A.UNWRAP, _A.REWRAP, _A.ROTATE, _A.DISABLE, _A.ENABLE})

#: Actions defined only for standard keys (``extractable = True``).
STANDARD_ONLY = frozenset({_A.EXPORT})


def check(state: KeyState, action: Action) -> KeyState:
    """Refuse ``action`` unless ``state`` allows it; say which state follows.

    Args:
        state: the key's effective state.
        action: what is about to happen.

    Returns:
        The state after the action (the same state for actions that do not move the key; for
        :data:`REMOVES` actions the key is gone afterwards and the value is ``state``).

    Raises:
        KeyDeleted: the key is destroyed and the action is not restore, purge or read.
        KeyStateConflict: any other state that does not allow the action.
    """
    if action not in ALLOWED[state]:
        if state is KeyState.DESTROYED:
            raise KeyDeleted()
        raise KeyStateConflict(int(state), action.value)
    return TRANSITIONS.get((state, action), state)


def check_kind(extractable: bool, action: Action) -> None:
    """Refuse actions that the kind of key (root or standard) does not have.

    Args:
        extractable: the key is a standard key.
        action: what is about to happen.

    Raises:
        RootKeyRequired: a root-only action on a standard key.
        NotExtractable: material export of a root key.
    """
    if extractable and action in ROOT_ONLY:
        raise RootKeyRequired(action.value)
    if not extractable and action in STANDARD_ONLY:
        raise NotExtractable()
