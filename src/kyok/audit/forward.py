"""Forwarders: copy the committed audit ledger to another place (a JSONL file, a syslog receiver).

A :class:`Forwarder` reads each instance's ledger through a :class:`~kyok.audit.feed.LedgerFeed`
after the position kept in a :class:`~kyok.audit.feed.CursorStore`, hands the batch to a
:class:`Destination`, and moves the cursor only after :meth:`Destination.deliver` returned. That
gives the delivery guarantee, per instance and destination:

* **at least once**: an event whose delivery failed (or whose cursor could not be saved) is read
  and delivered again in a later round; a receiver may see an event twice (same instance and
  seq), never miss one;
* **in order**: events of one instance are delivered in seq order, and a batch always starts
  right after the cursor, so the first occurrences a receiver sees run 0, 1, 2, … without a gap.
  A feed that returns a gap or an event of another instance stops that instance
  (:class:`~kyok.audit.errors.LedgerBroken`) instead of skipping anything.

What "deliver returned" means is the destination's promise: the JSONL file has fsynced the lines,
the syslog destination has seen the receiver consume every byte (``kyok.audit.syslog``).

The background thread (:meth:`Forwarder.start`) runs a round every ``interval`` seconds or as soon
as a writer calls :meth:`Forwarder.wake` after a commit; after a failure it backs off
exponentially (0.5 s doubling up to 30 s by default) and ignores wake-ups until the back-off
ends. Failures are logged with the error class and message only (kyok messages never hold event
contents; other exceptions are logged by class name alone).

This module does I/O only through the protocols it is given; it is not imported by
``kyok.audit`` itself, which stays pure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from kyok.audit.chain import ChainedEvent
from kyok.audit.errors import LedgerBroken
from kyok.audit.feed import CursorStore, LedgerFeed
from kyok.clock import Clock, SystemClock
from kyok.errors import KyokError, Unavailable

__all__ = [
    "DEFAULT_BATCH",
    "MAX_PASSES",
    "DeliveryFailed",
    "Destination",
    "Forwarder",
    "ForwarderStatus",
    "backoff_delay",
    "describe_error",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH: Final = 500
DEFAULT_INTERVAL: Final = 0.5
DEFAULT_BACKOFF_INITIAL: Final = 0.5
DEFAULT_BACKOFF_MAX: Final = 30.0
MAX_PASSES: Final = 64  # batches per instance in one round; more work wakes the next round


class DeliveryFailed(Unavailable):
    """A destination could not take a batch; nothing of it may be assumed delivered.

    The message names the destination and the cause (an errno name, a TLS reason), never an
    event's contents.
    """

    code = "AUDIT_DELIVERY_FAILED_ERR"


class Destination(Protocol):
    """Where a forwarder copies the ledger to."""

    def deliver(self, events: Sequence[ChainedEvent]) -> None:
        """Deliver ``events`` (one instance, consecutive seqs, in order) completely.

        Returning means every event is delivered durably as far as this destination can tell.

        Raises:
            DeliveryFailed: not (or not surely) delivered; the caller delivers them again later.
        """
        ...

    def close(self) -> None:
        """Release files and connections (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class ForwarderStatus:
    """A snapshot of a forwarder's health.

    Attributes:
        name: the forwarder's (and its cursors') name.
        running: the background thread is alive.
        delivered: events delivered since this object was made (duplicates included).
        failures: consecutive failed rounds (0 after a successful round).
        last_error: what the latest round failed with (class and message), None if it succeeded.
        last_success: when a round last completed without error.
        last_failure: when a round last failed.
        backlog_since: event time of the first event of the batch that could not be delivered
            (how far the copy lags behind), None when the latest round caught up.
    """

    name: str
    running: bool
    delivered: int
    failures: int
    last_error: str | None
    last_success: datetime | None
    last_failure: datetime | None
    backlog_since: datetime | None


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` consecutive failed rounds: ``initial`` doubling, capped."""
    if failures < 1:
        return 0.0
    return min(maximum, initial * 2.0 ** min(failures - 1, 60))


def describe_error(exc: BaseException) -> str:
    """A log-safe description of ``exc``: class and message for kyok errors, else the class."""
    if isinstance(exc, KyokError):
        return f"{type(exc).__name__}: {exc.message}"
    return type(exc).__name__


class Forwarder:
    """Copies every instance's ledger to one destination, in order, at least once.

    Args:
        name: the sink name the cursors are kept under (e.g. ``"jsonl"``, ``"syslog"``).
        feed: read access to the committed ledger.
        cursors: durable positions.
        destination: where the events go; the forwarder owns it (:meth:`close` closes it).
        batch: events per :meth:`Destination.deliver` call.
        interval: seconds between rounds of the background thread when idle.
        backoff_initial: seconds to wait after the first failed round (doubles per failure).
        backoff_max: cap of the back-off.
        clock: source of the times in :meth:`status`.
    """

    def __init__(
        self,
        name: str,
        feed: LedgerFeed,
        cursors: CursorStore,
        destination: Destination,
        *,
        batch: int = DEFAULT_BATCH,
        interval: float = DEFAULT_INTERVAL,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        clock: Clock | None = None,
    ) -> None:
        if not name:
            raise ValueError("a forwarder needs a name")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if interval <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("interval and back-off must be positive, backoff_max >= initial")
        self.name = name
        self._feed = feed
        self._cursors = cursors
        self._destination = destination
        self._batch = batch
        self._interval = interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._clock: Clock = clock or SystemClock()

        self._run_lock = threading.Lock()  # one round at a time (thread or direct caller)
        self._state_lock = threading.Lock()
        self._delivered = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_success: datetime | None = None
        self._last_failure: datetime | None = None
        self._backlog_since: datetime | None = None

        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- one round ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Deliver everything committed after the cursors; returns the number of events delivered.

        Instances take turns, one batch each, until every instance is caught up (or after
        :data:`MAX_PASSES` turns, or when :meth:`stop` was called; the background thread then
        goes on without waiting). A delivery failure ends the round at once (the destination is
        shared); the cursor of the failed batch stays where it was.

        Raises:
            DeliveryFailed: the destination refused a batch (earlier batches stay delivered).
            LedgerBroken: the feed returned a gap or a foreign event for an instance (the other
                instances were still forwarded).
            Exception: whatever the feed or the cursor store raised.
        """
        with self._run_lock:
            delivered = 0
            broken: LedgerBroken | None = None
            try:
                pending = list(self._feed.instance_ids())
                for _ in range(MAX_PASSES):
                    if not pending or self._stop.is_set():
                        break
                    more: list[str] = []
                    for instance_id in pending:
                        try:
                            count, full = self._forward_batch(instance_id)
                        except LedgerBroken as exc:
                            broken = broken or exc
                            continue
                        delivered += count
                        if full:
                            more.append(instance_id)
                    pending = more
                if pending:
                    self._wake.set()  # not caught up: the thread runs the next round at once
                if broken is not None:
                    raise broken
            except BaseException as exc:
                self._record_failure(exc)
                raise
            self._record_success()
            return delivered

    def _forward_batch(self, instance_id: str) -> tuple[int, bool]:
        """Deliver one batch of ``instance_id``; returns (events delivered, maybe more)."""
        after = self._cursors.load(self.name, instance_id)
        events = self._feed.read_after(instance_id, after, self._batch)
        run = _contiguous(instance_id, after, events)
        if run:
            try:
                self._destination.deliver(run)
            except BaseException:
                with self._state_lock:
                    self._backlog_since = run[0].event.event_time
                raise
            self._cursors.save(self.name, instance_id, run[-1].seq)
            with self._state_lock:
                self._delivered += len(run)
        if len(run) < len(events):
            expected = 0 if after is None else after + 1
            raise LedgerBroken(
                expected + len(run),
                f"the feed of forwarder {self.name!r} skipped or misplaced an event",
            )
        return len(run), len(events) >= self._batch

    def _record_success(self) -> None:
        with self._state_lock:
            self._failures = 0
            self._last_error = None
            self._backlog_since = None
            self._last_success = self._clock.now()

    def _record_failure(self, exc: BaseException) -> None:
        with self._state_lock:
            self._failures += 1
            self._last_error = describe_error(exc)
            self._last_failure = self._clock.now()

    # -- background thread -------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (no-op when it already runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"kyok-audit-forward-{self.name}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Ask for a round now (after a commit); ignored while backing off after a failure."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the background thread; returns False if it is still busy after ``timeout`` s."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """:meth:`stop`, then close the destination (unless the thread is still using it)."""
        stopped = self.stop(timeout)
        if stopped:
            self._destination.close()
        return stopped

    def status(self) -> ForwarderStatus:
        """A snapshot of the counters and the latest outcome."""
        thread = self._thread
        with self._state_lock:
            return ForwarderStatus(
                name=self.name,
                running=thread is not None and thread.is_alive(),
                delivered=self._delivered,
                failures=self._failures,
                last_error=self._last_error,
                last_success=self._last_success,
                last_failure=self._last_failure,
                backlog_since=self._backlog_since,
            )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._state_lock:
                failed_before = self._failures
            try:
                count = self.run_once()
            except Exception as exc:
                with self._state_lock:
                    failures = self._failures
                delay = backoff_delay(failures, self._backoff_initial, self._backoff_max)
                logger.warning(
                    "audit forwarder %s: round failed (%s); attempt %d, retrying in %.1f s",
                    self.name,
                    describe_error(exc),
                    failures,
                    delay,
                )
                self._stop.wait(delay)
                continue
            if failed_before:
                logger.info(
                    "audit forwarder %s: delivering again after %d failed attempts",
                    self.name,
                    failed_before,
                )
            if count:
                logger.debug("audit forwarder %s: delivered %d events", self.name, count)
            self._wake.wait(self._interval)


def _contiguous(
    instance_id: str, after: int | None, events: Sequence[ChainedEvent]
) -> list[ChainedEvent]:
    """The leading events of ``events`` that continue the cursor ``after`` without a gap."""
    expected = 0 if after is None else after + 1
    run: list[ChainedEvent] = []
    for chained in events:
        if chained.event.instance_id != instance_id or chained.seq != expected:
            break
        run.append(chained)
        expected += 1
    return run
