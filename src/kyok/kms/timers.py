"""The service timers of DESIGN §4, as configuration.

Defaults are Key Protect's. Tests pass a ``FakeClock`` and, where useful, shorter timers; nothing
in kyok sleeps to honour them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta

__all__ = ["Timers"]


@dataclass(frozen=True, slots=True)
class Timers:
    """How long the key rules wait.

    Attributes:
        enable_delay: ``enable`` is refused this soon after the key's last action.
        restore_delay: ``restore`` is refused this soon after the key's last action (its deletion).
        min_rotate_interval: a root key is not rotated again this soon after its last rotation.
        purge_after: a destroyed key can be purged this long after its deletion, not earlier.
        restore_window: a destroyed key can be restored for this long after its deletion.
        auto_purge_after: destroyed keys older than this are purged by ``purge_overdue``.
        dual_auth_window: how long a first dual-authorisation approval stays valid.
        sync_interval: ``sync`` is refused this soon after the last sync or the key's last
            action.
    """

    enable_delay: timedelta = timedelta(seconds=30)
    restore_delay: timedelta = timedelta(seconds=30)
    min_rotate_interval: timedelta = timedelta(hours=1)
    purge_after: timedelta = timedelta(hours=4)
    restore_window: timedelta = timedelta(days=30)
    auto_purge_after: timedelta = timedelta(days=90)
    dual_auth_window: timedelta = timedelta(days=7)
    sync_interval: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, timedelta):
                raise TypeError(f"{f.name} must be a timedelta")
            if value < timedelta(0):
                raise ValueError(f"{f.name} must not be negative")
        if self.purge_after > self.auto_purge_after:
            raise ValueError("purge_after must not exceed auto_purge_after")
