"""Group commit for changes made from threads: many callers, one transaction, one fsync.

A durable commit has a fixed cost (on SQLite with ``synchronous=FULL``: an fsync of the WAL),
so committing each key creation on its own caps creation at one commit per key. Here
concurrent callers share commits:

* :class:`GroupCommit` is a leader/follower queue. A thread that finds nobody committing
  becomes the *leader*: it takes everything queued (its own item first) and hands the batch to
  ``run_batch``; callers that arrive meanwhile queue and wait. When the batch is done, every
  caller in it is woken with its own outcome, and the first caller still queued becomes the
  next leader. No waiting for a batch to fill: a batch holds whatever queued during the
  previous commit (with one caller it is one item, committed at once). Each caller returns
  only after ``run_batch`` settled its item, i.e. after the transaction holding it committed
  (or it was refused). Coroutines queue too (:meth:`GroupCommit.submit_async`) without
  blocking their event loop: their batches are led by one worker thread, and each loop is
  woken once per batch. With a ``commit_delay``, a batch of coroutines' items waits (at most
  that long after its first item queued) until as many items are queued as the previous
  batch held: a steady set of callers then shares one batch instead of splitting into two
  that alternate (each batch has a fixed cost: the transaction, its statements, the fsync),
  and the worker does not compete with the event loop while the loop is still taking the
  requests of that batch. A lone caller (previous batch of one) never waits.
* :class:`BatchUnitOfWork` wraps the batch's unit of work so that audit events appended one at
  a time (the ledger chains each change's event when the change hands it over) reach the
  store as one append per instance: the head is read (and locked) once per batch and moved
  once, and the entries go in one multi-row insert. What a reader of the wrapped ``audit``
  sees is what the transaction will hold.
* :func:`add_all` inserts records through a repository's ``add_many`` when it has one (the
  SQL repositories: one multi-row statement), else one ``add`` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kyok.errors import VersionConflict
from kyok.store.ports import AuditRepository, UnitOfWork
from kyok.store.records import AuditCheckpointRecord, AuditEntryRecord, AuditHeadRecord

__all__ = ["BatchUnitOfWork", "GroupCommit", "Slot", "add_all"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False, slots=True)
class Slot(Generic[T, R]):
    """One caller's item in a batch; ``run_batch`` settles it with :meth:`succeed` or :meth:`fail`.

    Attributes:
        item: what the caller asked for.
        context: the caller's context variables (copied when it queued), for code that must
            see them while the leader's thread runs the batch (``context.run(fn, ...)``).
    """

    item: T
    context: contextvars.Context
    result: R | None = None
    error: BaseException | None = None
    settled: bool = False
    # A thread waits on _wake (and may be told to lead); a coroutine awaits _future on _loop.
    _wake: threading.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _future: asyncio.Future[R] | None = None

    def succeed(self, result: R) -> None:
        """Settle the slot with ``result``."""
        self.result, self.error, self.settled = result, None, True

    def fail(self, error: BaseException) -> None:
        """Settle the slot with ``error`` (raised to its caller)."""
        self.result, self.error, self.settled = None, error, True


class GroupCommit(Generic[T, R]):
    """Leader/follower group commit (see the module docstring).

    Args:
        run_batch: processes a batch in one transaction and settles every slot in it; called
            in the leader's thread, one batch at a time. If it raises, every slot it left
            unsettled fails with that exception.
        max_batch: the most items in one batch (>= 1).
        commit_delay: the longest a batch led by the worker thread (coroutines' items) waits
            for as many items as the previous batch held, in seconds (module docstring);
            0 lets every batch go at once.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Slot[T, R]]], None],
        *,
        max_batch: int = 256,
        commit_delay: float = 0.0,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if commit_delay < 0:
            raise ValueError("commit_delay must not be negative")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._commit_delay = commit_delay
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._queue: deque[Slot[T, R]] = deque()
        self._busy = False
        self._worker: ThreadPoolExecutor | None = None
        # The size of the last batch, the queue length the worker waits for (0: nobody waits)
        # and when the oldest queued item arrived (see _await_fill).
        self._last_size = 0
        self._want = 0
        self._first_at = 0.0
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> R:
        """Queue ``item``, wait until the batch holding it is settled, return its result.

        Raises:
            BaseException: whatever ``run_batch`` settled the item with.
        """
        slot: Slot[T, R] = Slot(item, contextvars.copy_context(), _wake=threading.Event())
        if not self._enqueue(slot):
            assert slot._wake is not None
            slot._wake.wait()
        if not slot.settled:
            # The first caller, or woken to lead (its slot is the first one queued).
            self._lead(in_worker=False)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # R may itself allow None

    async def submit_async(self, item: T) -> R:
        """Queue ``item`` from a coroutine and await its result (as :meth:`submit`).

        The event loop is never blocked: batches that hold coroutines' items are run by the
        worker thread. A cancelled caller's item is still created or refused; nobody hears.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        slot: Slot[T, R] = Slot(item, contextvars.copy_context(), _loop=loop, _future=future)
        if self._enqueue(slot):
            self._start_worker()
        return await future

    def _enqueue(self, slot: Slot[T, R]) -> bool:
        """Queue ``slot``; True when nobody is leading, so its caller must see to it."""
        with self._lock:
            if not self._queue:
                self._first_at = time.monotonic()
            self._queue.append(slot)
            if self._want and len(self._queue) >= self._want:
                self._filled.notify()
            lead = not self._busy
            self._busy = True
        return lead

    def _await_fill(self) -> None:
        """In the worker thread, before a batch: wait (at most ``commit_delay`` after the
        oldest queued item arrived) until as many items are queued as the last batch held."""
        if not self._commit_delay:
            return
        with self._lock:
            want = min(self._last_size, self._max_batch)
            if len(self._queue) >= want:
                return
            self._want = want
            try:
                deadline = self._first_at + self._commit_delay
                while len(self._queue) < want:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._filled.wait(left)
            finally:
                self._want = 0

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="kyok-group-commit")
            worker = self._worker
        worker.submit(self._lead, in_worker=True)

    def _lead(self, *, in_worker: bool) -> None:
        """Run batches while this thread should: one for a caller's thread, as many in a row
        as coroutines are next in line for the worker."""
        while True:
            if in_worker:
                self._await_fill()
            successor = self._one_batch()
            if successor is None:
                return
            if successor._loop is None:  # a thread is next: it leads itself
                assert successor._wake is not None
                successor._wake.set()
                return
            if not in_worker:
                self._start_worker()
                return

    def _one_batch(self) -> Slot[T, R] | None:
        """Run and settle one batch; return who is next in line (None: nobody, not busy)."""
        with self._lock:
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
        try:
            self._run_batch(batch)
        except BaseException as exc:
            for slot in batch:
                if not slot.settled:
                    slot.fail(exc)
        finally:
            for slot in batch:
                if not slot.settled:  # run_batch forgot one: never leave a caller hanging
                    slot.fail(RuntimeError("the batch left this item unsettled"))
            self.batches += 1
            self.items += len(batch)
            self._last_size = len(batch)
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
            _wake_all(batch)
        return successor


def _wake_all(batch: list[Slot[T, R]]) -> None:
    """Wake the threads of a settled batch, and each event loop once."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Slot[T, R]]] = {}
    for slot in batch:
        if slot._wake is not None:
            slot._wake.set()
        elif slot._loop is not None:
            by_loop.setdefault(slot._loop, []).append(slot)
    for loop, slots in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, slots)


def _resolve(slots: list[Slot[T, R]]) -> None:
    """On an event loop: hand settled slots' outcomes to their coroutines."""
    for slot in slots:
        future = slot._future
        if future is None or future.done():  # the caller went away
            continue
        if slot.error is not None:
            future.set_exception(slot.error)
        else:
            future.set_result(slot.result)  # type: ignore[arg-type]


def add_all(repository: Any, records: Sequence[Any]) -> None:
    """Insert ``records`` through ``repository.add_many`` if it has one, else one by one."""
    if not records:
        return
    add_many = getattr(repository, "add_many", None)
    if add_many is not None:
        add_many(records)
        return
    for record in records:
        repository.add(record)


class _BufferedAudit:
    """The audit repository of a batch: appends are kept and written by :meth:`flush`."""

    def __init__(self, inner: AuditRepository) -> None:
        self._inner = inner
        self._heads: dict[str, AuditHeadRecord] = {}
        self._expected: dict[str, int] = {}
        self._entries: dict[str, list[AuditEntryRecord]] = {}
        self._checkpoints: list[AuditCheckpointRecord] = []

    def ensure_head(self, genesis: AuditHeadRecord) -> AuditHeadRecord:
        head = self._heads.get(genesis.instance_id)
        if head is None:
            head = self._inner.ensure_head(genesis)  # locks it until the batch commits
            self._heads[genesis.instance_id] = head
        return head

    def head(self, instance_id: str, *, lock: bool = False) -> AuditHeadRecord | None:
        if instance_id in self._heads:
            return self._heads[instance_id]
        return self._inner.head(instance_id, lock=lock)

    def append(
        self, entries: Sequence[AuditEntryRecord], head: AuditHeadRecord, expected_next_seq: int
    ) -> None:
        instance_id = head.instance_id
        known = self._heads.get(instance_id)
        if known is None or known.next_seq != expected_next_seq:
            raise VersionConflict("the audit head moved")
        self._expected.setdefault(instance_id, expected_next_seq)
        self._entries.setdefault(instance_id, []).extend(entries)
        self._heads[instance_id] = head

    def add_checkpoint(self, record: AuditCheckpointRecord) -> None:
        self._checkpoints.append(record)

    def flush(self) -> None:
        """Write what was appended: per instance its entries and the head's last position,
        then the checkpoints (they name events written before them)."""
        for instance_id, expected in self._expected.items():
            self._inner.append(self._entries[instance_id], self._heads[instance_id], expected)
        for checkpoint in self._checkpoints:
            self._inner.add_checkpoint(checkpoint)
        self._expected.clear()
        self._entries.clear()
        self._checkpoints.clear()

    def __getattr__(self, name: str) -> Any:
        # Reads of the ledger itself (entries, checkpoints, ...) must see what was appended.
        self.flush()
        return getattr(self._inner, name)


class BatchUnitOfWork:
    """A unit of work whose ``audit`` keeps appends until :meth:`flush` (module docstring);
    everything else is the wrapped unit of work's. Flush before committing the wrapped one.

    Args:
        uow: the batch's unit of work (entered).
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._audit = _BufferedAudit(uow.audit)

    @property
    def audit(self) -> Any:
        """The buffering audit repository."""
        return self._audit

    def flush(self) -> None:
        """Write the buffered audit appends into the wrapped unit of work."""
        self._audit.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)
