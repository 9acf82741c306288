"""Key states and the read model of a key.

:class:`KeyState` uses the Key Protect / NIST SP 800-57 numbers. :class:`KeyView` is what every
use case returns for a key: the stored record, its aliases, and the fields derived from the record,
the clock and the timers (effective state, current version, restore and purge windows), so that an
adapter renders it without knowing any key rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from kyok.errors import InternalError
from kyok.kms.timers import Timers
from kyok.store.records import KeyRecord

__all__ = [
    "EXPIRABLE_STATES",
    "NO_POLICIES",
    "KeyPolicyState",
    "KeyState",
    "KeyView",
    "effective_state",
    "stored_state_of",
    "view_of",
]


class KeyState(IntEnum):
    """Key Protect key states."""

    PRE_ACTIVATION = 0
    ACTIVE = 1
    SUSPENDED = 2
    DEACTIVATED = 3
    DESTROYED = 5


#: States from which a passed expiration date makes a key Deactivated.
EXPIRABLE_STATES = frozenset({KeyState.ACTIVE, KeyState.SUSPENDED})


def stored_state_of(record: KeyRecord) -> KeyState:
    """The state number stored in ``record``, as a :class:`KeyState`.

    Args:
        record: the stored key.

    Returns:
        The stored state.

    Raises:
        InternalError: the record holds a number that is not a Key Protect state.
    """
    try:
        return KeyState(record.state)
    except ValueError:
        raise InternalError("a stored key has an unknown state") from None


def effective_state(record: KeyRecord, now: datetime) -> KeyState:
    """The state the key rules apply to ``record`` at ``now``.

    A key whose expiration date has passed is Deactivated at once, even before the scheduler
    (``KeyService.expire_due``) has written state 3: a stale row never lets an expired key wrap.

    Args:
        record: the stored key.
        now: the current time.

    Returns:
        The state the rules use.

    Raises:
        InternalError: the record holds a number that is not a Key Protect state.
    """
    state = stored_state_of(record)
    if state in EXPIRABLE_STATES and record.expires_at is not None and record.expires_at <= now:
        return KeyState.DEACTIVATED
    return state


@dataclass(frozen=True, slots=True)
class KeyPolicyState:
    """A key's policies as its representation shows them (``rotation``, ``dualAuthDelete``).

    Attributes:
        rotation_enabled: the scheduler rotates the key automatically.
        rotation_months: the rotation interval, when a rotation policy exists.
        dual_auth_delete: deleting the key needs a prior approval by another principal.
        set_for_deletion: such an approval exists and has not expired.
        auth_expires_at: when that approval expires.
    """

    rotation_enabled: bool = False
    rotation_months: int | None = None
    dual_auth_delete: bool = False
    set_for_deletion: bool = False
    auth_expires_at: datetime | None = None


NO_POLICIES = KeyPolicyState()


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as callers see it.

    Attributes:
        record: the stored metadata (``record.state`` may lag behind ``state``, see
            :func:`effective_state`).
        aliases: the key's aliases, sorted.
        state: the effective state.
        version_id: id of the newest key version (the one wrap uses).
        version_created_at: when that version was made (creation or last rotation).
        deleted: the key is destroyed (state 5).
        restore_allowed: ``restore`` would pass the window and expiration checks now.
        restore_expires_at: end of the restore window (destroyed keys only).
        purge_allowed: ``purge`` would be accepted now.
        purge_allowed_from: when purge becomes possible (destroyed keys only).
        purge_scheduled_on: when ``purge_overdue`` will purge the key (destroyed keys only).
        policies: the key's rotation and dual-authorisation policies.
    """

    record: KeyRecord
    aliases: tuple[str, ...]
    state: KeyState
    version_id: str
    version_created_at: datetime
    deleted: bool
    restore_allowed: bool
    restore_expires_at: datetime | None
    purge_allowed: bool
    purge_allowed_from: datetime | None
    purge_scheduled_on: datetime | None
    policies: KeyPolicyState = NO_POLICIES

    @property
    def id(self) -> str:
        """The key id (``record.id``)."""
        return self.record.id

    @property
    def instance_id(self) -> str:
        """The instance id (``record.instance_id``)."""
        return self.record.instance_id

    @property
    def extractable(self) -> bool:
        """True for a standard key (``record.extractable``)."""
        return self.record.extractable


def view_of(
    record: KeyRecord,
    aliases: list[str] | tuple[str, ...],
    now: datetime,
    timers: Timers,
    policies: KeyPolicyState = NO_POLICIES,
) -> KeyView:
    """Build the :class:`KeyView` of ``record`` at ``now``.

    Args:
        record: the stored key.
        aliases: its aliases (any order).
        now: the current time.
        timers: the service timers that define the windows.
        policies: the key's policies (none when omitted).

    Returns:
        The view, with every derived field computed.
    """
    state = effective_state(record, now)
    deleted = state is KeyState.DESTROYED
    restore_expires_at = purge_from = purge_on = None
    restore_allowed = purge_allowed = False
    if deleted and record.deleted_at is not None:
        restore_expires_at = record.deleted_at + timers.restore_window
        purge_from = record.deleted_at + timers.purge_after
        purge_on = record.deleted_at + timers.auto_purge_after
        expired = record.expires_at is not None and record.expires_at <= now
        restore_allowed = now <= restore_expires_at and not expired
        purge_allowed = now >= purge_from
    return KeyView(
        record=record,
        aliases=tuple(sorted(aliases)),
        state=state,
        version_id=record.current_version_id,
        version_created_at=record.last_rotated_at or record.created_at,
        deleted=deleted,
        restore_allowed=restore_allowed,
        restore_expires_at=restore_expires_at,
        purge_allowed=purge_allowed,
        purge_allowed_from=purge_from,
        purge_scheduled_on=purge_on,
        policies=policies,
    )
