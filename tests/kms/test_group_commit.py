"""When the group committer lets a batch go: events queued from an event loop wait until the
loop has gone round without queueing more (every request it holds is waiting), threads' events
go at once, and a loop that never goes idle still gets its batch after ``commit_delay``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from kyok.audit import AuditEvent, CheckpointPolicy, Initiator, Target
from kyok.audit.chain import ChainLink, EncodedEvent
from kyok.kms import ledger as ledger_module
from kyok.kms.ledger import AuditUnavailable, GroupCommitter

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def event(n: int = 0) -> AuditEvent:
    return AuditEvent(
        instance_id="i1",
        seq=0,
        event_time=T0,
        action="kms.secrets.wrap",
        outcome="success",
        initiator=Initiator("alice", "user", "token", "127.0.0.1"),
        target=Target(f"key-{n}", "kms/key"),
        status=200,
    )


def encoded(n: int) -> EncodedEvent:
    """``event(n)`` as the ledger receives it."""
    return EncodedEvent.of(event(n))


class RecordingLedger:
    """Stores nothing; places the events one after the other (``seq`` counts them, the event
    at place ``seq`` is ``placed[seq]``), remembers each batch's size (and can refuse)."""

    policy = CheckpointPolicy(every_events=1000, every_seconds=3600)

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.placed: list[EncodedEvent] = []
        self.refuse = False
        self.lock = threading.Lock()

    def append_encoded(self, _uow: object, events: Sequence[EncodedEvent]) -> list[ChainLink]:
        if self.refuse:
            raise OSError("disk full")
        with self.lock:
            first = len(self.placed)
            self.placed += events
            self.batches.append(len(events))
        return [
            ChainLink(e.instance_id, first + i, bytes(32), bytes(32)) for i, e in enumerate(events)
        ]

    def placed_at(self, link: ChainLink) -> EncodedEvent:
        """The event placed at ``link``."""
        return self.placed[link.seq]

    def load_keys(self) -> None:
        return None


class NoUow:
    def __enter__(self) -> NoUow:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def commit(self) -> None:
        return None


def committer(ledger: RecordingLedger, **options: float) -> GroupCommitter:
    c = GroupCommitter(lambda read_only=False: NoUow(), ledger, attempts=1, **options)  # type: ignore[arg-type,return-value]
    c.start()
    return c


def test_the_requests_a_loop_holds_share_one_batch() -> None:
    ledger = RecordingLedger()
    c = committer(ledger, commit_delay=5.0)  # long: only the loop's tick lets a batch go

    async def request(n: int) -> ChainLink:
        await asyncio.sleep(0)
        return await c.submit_async(event(n))

    async def main() -> list[ChainLink]:
        return await asyncio.gather(*(request(n) for n in range(16)))

    try:
        started = time.monotonic()
        done = asyncio.run(main())
        assert time.monotonic() - started < 2.0  # not the 5 s bound: the tick flushed
    finally:
        c.stop()
    assert [ledger.placed_at(link) for link in done] == [encoded(n) for n in range(16)]
    assert ledger.batches == [16]


def test_a_loop_that_never_goes_idle_still_gets_its_batch() -> None:
    ledger = RecordingLedger()
    c = committer(ledger, commit_delay=0.05)

    async def main() -> float:
        waiter = c.submit_async(event())
        started = time.monotonic()
        stop = started + 5.0
        # Keep queueing from this loop without ever letting it go round idle.
        n = 0
        while not waiter.done() and time.monotonic() < stop:
            n += 1
            c.submit_async(event(n))
            await asyncio.sleep(0)
        await waiter
        return time.monotonic() - started

    try:
        waited = asyncio.run(main())
    finally:
        c.stop()
    assert waited < 2.0
    assert ledger.batches and ledger.batches[0] > 1


def test_threads_do_not_wait_for_a_tick() -> None:
    ledger = RecordingLedger()
    c = committer(ledger, commit_delay=5.0)
    try:
        started = time.monotonic()
        assert c.write(event()).event.target.id == "key-0"
        assert time.monotonic() - started < 2.0
    finally:
        c.stop()
    assert ledger.batches == [1]


def test_a_batch_that_cannot_be_written_refuses_the_loops_waiters() -> None:
    ledger = RecordingLedger()
    ledger.refuse = True
    c = committer(ledger, commit_delay=5.0)

    async def main() -> list[object]:
        return await asyncio.gather(
            *(c.submit_async(event(n)) for n in range(4)), return_exceptions=True
        )

    try:
        results = asyncio.run(main())
    finally:
        c.stop()
    assert len(results) == 4 and all(isinstance(r, AuditUnavailable) for r in results)


def test_callbacks_run_on_their_loop_with_the_outcome() -> None:
    ledger = RecordingLedger()
    c = committer(ledger, commit_delay=5.0)

    async def main(refuse: bool) -> list[tuple[EncodedEvent | None, bool]]:
        ledger.refuse = refuse
        loop = asyncio.get_running_loop()
        seen: list[tuple[EncodedEvent | None, bool]] = []
        done = loop.create_future()

        def callback(link: ChainLink | None) -> None:
            assert asyncio.get_running_loop() is loop
            seen.append((None if link is None else ledger.placed_at(link), refuse))
            if len(seen) == 3:
                done.set_result(None)

        for n in range(3):
            c.submit_then(event(n), callback)
        await asyncio.wait_for(done, 10)
        return seen

    try:
        written = asyncio.run(main(refuse=False))
        refused = asyncio.run(main(refuse=True))
    finally:
        c.stop()
    assert written == [(encoded(n), False) for n in range(3)]
    assert refused == [(None, True)] * 3
    assert ledger.batches == [3]  # one batch: the loop went round once before it was let go


@pytest.mark.parametrize("loops", [2])
def test_several_loops_share_one_committer(loops: int) -> None:
    ledger = RecordingLedger()
    c = committer(ledger, commit_delay=0.5)
    results: list[EncodedEvent] = []

    def run_loop(base: int) -> None:
        async def main() -> list[ChainLink]:
            return await asyncio.gather(*(c.submit_async(event(base + n)) for n in range(50)))

        results.extend(ledger.placed_at(link) for link in asyncio.run(main()))

    threads = [threading.Thread(target=run_loop, args=(100 * i,)) for i in range(loops)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        c.stop()
    assert sorted(results) == sorted(encoded(100 * i + n) for i in range(loops) for n in range(50))
    assert sum(ledger.batches) == 50 * loops


def test_a_deferred_event_counts_as_waiting_until_it_is_written() -> None:
    """``deferred`` (and the metric) cover a fail-open event until its batch is committed, not
    only until the writer picks it up."""
    ledger = RecordingLedger()
    entered, release = threading.Event(), threading.Event()
    real = ledger.append_encoded

    def slow(uow: object, events: Sequence[EncodedEvent]) -> list[ChainLink]:
        entered.set()
        release.wait(10)
        return real(uow, events)

    ledger.append_encoded = slow  # type: ignore[method-assign]
    c = committer(ledger)
    try:
        c.defer(event(1))
        assert entered.wait(10)  # the writer holds it in a batch now
        assert c.deferred == 1 and c.stats()["deferred"] == 1
        release.set()
        deadline = time.monotonic() + 10
        while c.deferred and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.deferred == 0 and ledger.batches == [1]
    finally:
        release.set()
        c.stop()


def test_a_group_handed_over_together_hears_once_even_across_batches() -> None:
    """``defer_batch_then`` (the multi-worker ledger writer's way in for fail-open events): one
    callback per group, with every link in the order given, even when the group is split over
    two transactions."""
    ledger = RecordingLedger()
    c = committer(ledger, max_batch=3)
    heard: list[list[ChainLink] | None] = []

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()

        def callback(links: list[ChainLink] | None) -> None:
            heard.append(links)
            done.set_result(None)

        c.defer_batch_then([EncodedEvent.of(event(n)) for n in range(5)], callback)
        await asyncio.wait_for(done, 5)
        await asyncio.sleep(0.05)  # nothing more arrives

    try:
        asyncio.run(main())
    finally:
        c.stop()
    assert ledger.batches == [3, 2]
    assert len(heard) == 1 and heard[0] is not None and len(heard[0]) == 5
    assert all(link.instance_id == "i1" for link in heard[0])


def test_a_group_hears_none_once_when_any_part_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_module, "MAX_DEFERRED", 2)
    ledger = RecordingLedger()
    ledger.refuse = True
    c = committer(ledger, max_batch=2)
    heard: list[list[ChainLink] | None] = []

    async def main() -> None:
        c.defer_batch_then([EncodedEvent.of(event(n)) for n in range(5)], heard.append)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # three of the five are dropped: still one answer

    try:
        asyncio.run(main())
    finally:
        c.stop()
    assert heard == [None]


def test_a_deferred_group_is_kept_until_written_then_heard() -> None:
    ledger = RecordingLedger()
    ledger.refuse = True
    c = committer(ledger)
    heard: list[list[ChainLink] | None] = []

    async def main() -> None:
        c.defer_batch_then([EncodedEvent.of(event(n)) for n in range(2)], heard.append)
        await asyncio.sleep(0.2)
        assert heard == [] and c.deferred == 2  # not given up while the ledger refuses
        ledger.refuse = False
        deadline = time.monotonic() + 10  # the committer retries kept events after ~1 s
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    try:
        asyncio.run(main())
    finally:
        c.stop()
    assert len(heard) == 1 and heard[0] is not None and len(heard[0]) == 2
    assert c.deferred == 0


def test_write_now_commits_in_the_callers_thread_one_batch_at_a_time_with_the_writer() -> None:
    ledger = RecordingLedger()
    woken: list[str] = []
    c = GroupCommitter(
        lambda read_only=False: NoUow(),  # type: ignore[arg-type,return-value]
        ledger,  # type: ignore[arg-type]
        attempts=2,
        on_commit=lambda: woken.append(threading.current_thread().name),
    )
    c.start()
    try:
        encoded = [EncodedEvent.of(event(n)) for n in range(3)]
        links = c.write_now(encoded)
        assert links is not None and len(links) == 3
        assert woken == [threading.current_thread().name]  # here, not in the writer thread
        assert c.write_now([]) == []
        # While write_now holds the writer's turn, the thread's own batch waits for it.
        with c._writing:
            future = c.submit(event(9))
            time.sleep(0.1)
            assert not future.done()
        assert future.result(5).seq == 3  # placed after write_now's three
        ledger.refuse = True
        assert c.write_now(encoded) is None
        assert c.stats() | {"deferred": 0} == {
            "events": 4,
            "batches": 2,
            "failed_batches": 1,
            "deferred": 0,
            "dropped": 0,
        }
        assert ledger.batches == [3, 1]
    finally:
        c.stop()
