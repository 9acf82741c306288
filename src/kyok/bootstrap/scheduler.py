"""The node's background job: deactivate expired keys, purge keys destroyed long ago, rotate
keys whose rotation policy is due, remove expired import tokens.

The schedule follows the service :class:`~kyok.clock.Clock`, not the wall clock: :meth:`tick`
runs the job when the clock has reached the next due time, so a test drives it with a
``FakeClock`` and calls ``tick()``. :meth:`start` adds a thread that calls ``tick()`` every
``poll`` seconds of real time until :meth:`stop`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from kyok.clock import Clock

__all__ = ["Scheduler", "SchedulerRun"]

log = logging.getLogger("kyok.server.scheduler")


class _Jobs(Protocol):
    """What the scheduler calls on the key service (``KeyService`` satisfies it)."""

    def expire_due(self, now: datetime | None = None, *, batch: int = 500) -> int: ...

    def purge_overdue(self, now: datetime | None = None, *, batch: int = 500) -> int: ...

    def rotate_due(self, now: datetime | None = None, *, batch: int = 100) -> int: ...


class _TokenJobs(Protocol):
    """What the scheduler calls on the import tokens (``ImportTokenService`` satisfies it)."""

    def expire_due(self, now: datetime | None = None, *, batch: int = 100) -> int: ...


@dataclass(frozen=True, slots=True)
class SchedulerRun:
    """What one run did."""

    at: datetime
    expired: int
    purged: int
    rotated: int = 0
    tokens_expired: int = 0


class Scheduler:
    """Calls ``expire_due``, ``purge_overdue`` and ``rotate_due`` of the key service, and
    ``expire_due`` of the import tokens, every ``interval`` of the service clock.

    Args:
        jobs: the key service.
        clock: the service clock.
        interval: time between runs (must be positive).
        poll: seconds of real time between checks of the clock in the background thread.
        import_tokens: the import-token service (None: tokens are not expired by this job).
    """

    def __init__(
        self,
        jobs: _Jobs,
        clock: Clock,
        interval: timedelta,
        *,
        poll: float = 1.0,
        import_tokens: _TokenJobs | None = None,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError("the scheduler interval must be positive")
        self._jobs = jobs
        self._tokens = import_tokens
        self._clock = clock
        self._interval = interval
        self._poll = poll
        self._next: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def next_due(self) -> datetime | None:
        """When the next run is due (None: at the next tick)."""
        return self._next

    def tick(self) -> SchedulerRun | None:
        """Run the jobs if they are due.

        Returns:
            What the run did, or None when nothing was due.
        """
        with self._lock:
            now = self._clock.now()
            if self._next is not None and now < self._next:
                return None
            self._next = now + self._interval
            expired = self._jobs.expire_due(now)
            purged = self._jobs.purge_overdue(now)
            rotated = self._jobs.rotate_due(now)
            tokens = self._tokens.expire_due(now) if self._tokens is not None else 0
        if expired or purged or rotated or tokens:
            log.info(
                "scheduler: %d keys deactivated, %d keys purged, %d keys rotated, "
                "%d import tokens expired",
                expired,
                purged,
                rotated,
                tokens,
            )
        return SchedulerRun(now, expired, purged, rotated, tokens)

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="kyok-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the background thread and wait for a run in progress to end.

        Args:
            timeout: seconds to wait at most.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                # The next tick tries again; one failed run (a database hiccup) must not stop it.
                log.exception("scheduler run failed")
            self._stop.wait(self._poll)
