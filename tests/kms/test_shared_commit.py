"""The group commit of key creations (``kyok.kms.shared_commit``): callers from threads and
from event loops share batches, each gets its own outcome only once its batch is settled, a
failing batch fails only its unsettled items, and the buffered audit appends reach the store
as one append per instance."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from kyok.errors import VersionConflict
from kyok.kms.shared_commit import BatchUnitOfWork, GroupCommit, Slot, add_all
from kyok.store.memory import MemoryStore
from kyok.store.records import AuditCheckpointRecord, AuditEntryRecord, AuditHeadRecord

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Recorder:
    """A ``run_batch`` that remembers its batches; ``gate`` holds the first batch until
    released, so that the callers arriving meanwhile queue behind it."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        if not hold_first:
            self.gate.set()

    def __call__(self, slots: list[Slot[int, int]]) -> None:
        self.batches.append([s.item for s in slots])
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(10)
        for slot in slots:
            if slot.item < 0:
                slot.fail(ValueError(f"refused {slot.item}"))
            else:
                slot.succeed(slot.item * 10)


def wait_queued(commit: GroupCommit[int, int], count: int) -> None:
    for _ in range(1000):
        if len(commit._queue) >= count:
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"{count} items never queued")


def test_one_caller_is_one_batch_at_once() -> None:
    run = Recorder()
    commit = GroupCommit(run)
    assert commit.submit(3) == 30
    assert run.batches == [[3]]


def test_callers_arriving_during_a_commit_share_the_next_batch() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run)
    results: dict[int, int] = {}

    def call(n: int) -> None:
        results[n] = commit.submit(n)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert run.entered.wait(10)
    others = [threading.Thread(target=call, args=(n,)) for n in range(1, 9)]
    for t in others:
        t.start()
    wait_queued(commit, 8)
    run.gate.set()
    for t in [first, *others]:
        t.join(10)
    assert results == {n: n * 10 for n in range(9)}
    assert run.batches[0] == [0]
    assert sorted(run.batches[1]) == list(range(1, 9))  # the eight that waited: one batch
    assert commit.batches == 2 and commit.items == 9


def test_a_refused_item_fails_only_its_own_caller() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run)
    outcomes: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            outcomes[n] = commit.submit(n)
        except ValueError as exc:
            outcomes[n] = str(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert run.entered.wait(10)
    others = [threading.Thread(target=call, args=(n,)) for n in (1, -2, 3)]
    for t in others:
        t.start()
    wait_queued(commit, 3)
    run.gate.set()
    for t in [first, *others]:
        t.join(10)
    assert outcomes == {0: 0, 1: 10, -2: "refused -2", 3: 30}
    assert len(run.batches) == 2


def test_a_batch_that_raises_fails_the_items_it_left_unsettled() -> None:
    gate, entered = threading.Event(), threading.Event()

    def run(slots: list[Slot[int, int]]) -> None:
        entered.set()
        assert gate.wait(10)
        for slot in slots:
            if slot.item < 10:
                slot.succeed(slot.item)
        if any(slot.item >= 10 for slot in slots):
            raise OSError("disk full")

    commit: GroupCommit[int, int] = GroupCommit(run)
    outcomes: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            outcomes[n] = commit.submit(n)
        except OSError as exc:
            outcomes[n] = str(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert entered.wait(10)
    others = [threading.Thread(target=call, args=(n,)) for n in (1, 11, 2)]
    for t in others:
        t.start()
    wait_queued(commit, 3)
    gate.set()
    for t in [first, *others]:
        t.join(10)
    # 1 and 2 were settled before the batch raised; only 11 gets the batch's error.
    assert outcomes == {0: 0, 1: 1, 11: "disk full", 2: 2}
    assert commit._busy is False  # nobody left leading


def test_an_item_the_batch_forgot_is_failed_not_left_hanging() -> None:
    commit: GroupCommit[int, int] = GroupCommit(lambda slots: None)
    with pytest.raises(RuntimeError, match="unsettled"):
        commit.submit(1)


def test_max_batch_splits_a_long_queue() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=3)
    threads = [threading.Thread(target=commit.submit, args=(n,)) for n in range(8)]
    threads[0].start()
    assert run.entered.wait(10)
    for t in threads[1:]:
        t.start()
    wait_queued(commit, 7)
    run.gate.set()
    for t in threads:
        t.join(10)
    assert [len(b) for b in run.batches] == [1, 3, 3, 1]
    assert sorted(n for b in run.batches for n in b) == list(range(8))


def test_coroutines_share_a_batch_led_by_the_worker_thread() -> None:
    run = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(run)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(commit.submit_async(n) for n in range(10))))

    assert asyncio.run(main()) == [n * 10 for n in range(10)]
    # All ten were queued before the loop let the worker run: at most a first, lone batch.
    assert sum(len(b) for b in run.batches) == 10
    assert len(run.batches) <= 2
    assert all(name.startswith("kyok-group-commit") for name in run.threads)


def test_a_coroutine_gets_its_own_error() -> None:
    commit: GroupCommit[int, int] = GroupCommit(Recorder())

    async def main() -> tuple[int, str]:
        ok = await commit.submit_async(2)
        try:
            await commit.submit_async(-1)
        except ValueError as exc:
            return ok, str(exc)
        raise AssertionError("no error")

    assert asyncio.run(main()) == (20, "refused -1")


def test_threads_and_coroutines_mixed() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run)
    results: dict[int, int] = {}

    def call(n: int) -> None:
        results[n] = commit.submit(n)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert run.entered.wait(10)

    async def coroutines() -> list[int]:
        tasks = [asyncio.ensure_future(commit.submit_async(n)) for n in (1, 2, 3)]
        await asyncio.sleep(0)
        later = threading.Thread(target=call, args=(4,))
        later.start()
        await asyncio.to_thread(wait_queued, commit, 4)
        run.gate.set()
        done = list(await asyncio.gather(*tasks))
        await asyncio.to_thread(later.join, 10)
        return done

    assert asyncio.run(coroutines()) == [10, 20, 30]
    first.join(10)
    assert results == {0: 0, 4: 40}
    assert sorted(n for b in run.batches for n in b) == [0, 1, 2, 3, 4]


def test_add_all_uses_add_many_when_there_is_one() -> None:
    class Many:
        def __init__(self) -> None:
            self.calls: list[list[int]] = []

        def add_many(self, records: list[int]) -> None:
            self.calls.append(list(records))

    class One:
        def __init__(self) -> None:
            self.added: list[int] = []

        def add(self, record: int) -> None:
            self.added.append(record)

    many, one = Many(), One()
    add_all(many, [1, 2, 3])
    add_all(many, [])
    add_all(one, [1, 2])
    assert many.calls == [[1, 2, 3]]
    assert one.added == [1, 2]


def _entry(instance: str, seq: int) -> AuditEntryRecord:
    return AuditEntryRecord(
        instance_id=instance,
        seq=seq,
        event_time=T0,
        action="kms.keys.create",
        outcome="success",
        body="{}",
        prev_hash=bytes(32),
        hash=bytes([seq % 256]) * 32,
    )


def test_buffered_audit_appends_reach_the_store_as_one_append() -> None:
    store = MemoryStore()
    genesis = AuditHeadRecord("i1", 0, bytes(32), None, None)
    with store.uow() as uow:
        batch = BatchUnitOfWork(uow)
        head = batch.audit.ensure_head(genesis)
        for seq in range(3):
            new = AuditHeadRecord("i1", seq + 1, bytes([seq]) * 32, None, None)
            batch.audit.append([_entry("i1", seq)], new, head.next_seq)
            head = batch.audit.ensure_head(genesis)  # sees the buffered head
            assert head == new
        checkpoint = AuditCheckpointRecord("i1", 2, T0, "{}")
        batch.audit.add_checkpoint(checkpoint)
        assert batch.keys is uow.keys  # everything else is the wrapped unit of work's
        batch.flush()
        uow.commit()
    with store.uow(read_only=True) as uow:
        stored = uow.audit.head("i1")
        assert stored is not None and stored.next_seq == 3
        assert len(uow.audit.checkpoints("i1", None, None)) == 1


def test_buffered_audit_refuses_an_append_from_a_stale_head() -> None:
    store = MemoryStore()
    genesis = AuditHeadRecord("i1", 0, bytes(32), None, None)
    with store.uow() as uow:
        batch = BatchUnitOfWork(uow)
        batch.audit.ensure_head(genesis)
        batch.audit.append([_entry("i1", 0)], AuditHeadRecord("i1", 1, b"x" * 32, None, None), 0)
        with pytest.raises(VersionConflict):
            batch.audit.append(
                [_entry("i1", 0)], AuditHeadRecord("i1", 1, b"y" * 32, None, None), 0
            )


def test_reading_the_buffered_ledger_writes_what_was_appended_first() -> None:
    store = MemoryStore()
    genesis = AuditHeadRecord("i1", 0, bytes(32), None, None)
    with store.uow() as uow:
        batch = BatchUnitOfWork(uow)
        batch.audit.ensure_head(genesis)
        batch.audit.append([_entry("i1", 0)], AuditHeadRecord("i1", 1, b"x" * 32, None, None), 0)
        assert batch.audit.instance_ids() == ["i1"]  # a read through the wrapper flushes
        uow.commit()
