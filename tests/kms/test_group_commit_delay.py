"""``GroupCommit(commit_delay=...)``: a batch of coroutines' items waits for as many items as
the previous batch held (so a steady set of callers shares one batch instead of two that
alternate), a lone caller never waits, and the delay bounds the wait when callers go away."""

from __future__ import annotations

import asyncio
import threading

from kyok.kms.shared_commit import GroupCommit, Slot


class Recorder:
    """Settles every item with ten times its value and remembers each batch; the first batch
    waits for ``gate`` when ``hold_first``."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not hold_first:
            self.gate.set()

    def __call__(self, slots: list[Slot[int, int]]) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        self.batches.append([slot.item for slot in slots])
        for slot in slots:
            slot.succeed(slot.item * 10)


async def _settle(commit: GroupCommit[int, int], run: Recorder) -> list[int]:
    """One batch of [0], then one of [1, 2, 3, 4] (queued while the first was held)."""
    first = asyncio.ensure_future(commit.submit_async(0))
    while not run.entered.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(commit.submit_async(n)) for n in range(1, 5)]
    await asyncio.sleep(0)  # all four queued behind the held batch
    run.gate.set()
    return await asyncio.gather(first, *rest)


def test_a_batch_waits_for_as_many_callers_as_the_last_one_held() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run, commit_delay=60.0)

    async def main() -> list[int]:
        assert await _settle(commit, run) == [0, 10, 20, 30, 40]
        # Four callers again, arriving one at a time with the loop going round in between:
        # without the delay the first would go alone.
        later = []
        for n in range(5, 9):
            later.append(asyncio.ensure_future(commit.submit_async(n)))
            await asyncio.sleep(0.01)
        return await asyncio.wait_for(asyncio.gather(*later), 30)

    assert asyncio.run(main()) == [50, 60, 70, 80]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]


def test_a_lone_caller_never_waits() -> None:
    run = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(run, commit_delay=600.0)

    async def main() -> list[int]:
        # Each would wait ten minutes if a lone caller waited for company.
        return [await asyncio.wait_for(commit.submit_async(n), 60) for n in range(3)]

    assert asyncio.run(main()) == [0, 10, 20]
    assert run.batches == [[0], [1], [2]]


def test_the_delay_bounds_the_wait_when_callers_go_away() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run, commit_delay=0.05)

    async def main() -> int:
        await _settle(commit, run)
        # The last batch held four; only one caller is left: it goes once the delay is over.
        return await asyncio.wait_for(commit.submit_async(9), 30)

    assert asyncio.run(main()) == 90
    assert run.batches == [[0], [1, 2, 3, 4], [9]]


def test_without_a_delay_nothing_waits() -> None:
    run = Recorder(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(run)

    async def main() -> list[int]:
        await _settle(commit, run)
        later = []
        for n in range(5, 7):
            later.append(asyncio.ensure_future(commit.submit_async(n)))
            await asyncio.sleep(0.05)
        return await asyncio.gather(*later)

    assert asyncio.run(main()) == [50, 60]
    assert run.batches == [[0], [1, 2, 3, 4], [5], [6]]


def test_a_negative_delay_is_refused() -> None:
    try:
        GroupCommit(Recorder(), commit_delay=-1.0)
    except ValueError:
        return
    raise AssertionError("a negative commit_delay was accepted")
