"""Real concurrency: threads with their own units of work (own connections on SQL backends).

Backends detect conflicts at different moments (PostgreSQL blocks the second writer on the
row lock, SQLite on the write lock taken by BEGIN IMMEDIATE, the memory store at commit), so
these tests assert outcomes, never timings: exactly one of two racing writers wins, and no
update is ever lost.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kyok.errors import AlreadyExists, KyokError, VersionConflict

from . import factories as f
from .factories import AnyStore

TIMEOUT = 30


def _race(
    first: Callable[[threading.Event, threading.Event], None],
    second: Callable[[threading.Event, threading.Event], None],
) -> list[BaseException | None]:
    """Run two writers: ``first`` gets going, then ``second`` starts while ``first`` still
    holds its transaction open. Returns each one's exception (or None)."""
    first_wrote, second_started = threading.Event(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(first, first_wrote, second_started),
            pool.submit(second, first_wrote, second_started),
        ]
        return [fut.exception(timeout=TIMEOUT) for fut in futures]


def test_two_writers_with_the_same_row_version_one_wins(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        seen = uow.keys.get(f.INSTANCE, "k1")  # both writers start from this version
    assert seen is not None

    def first(first_wrote: threading.Event, second_started: threading.Event) -> None:
        with any_store.uow() as uow:
            uow.keys.update(dataclasses.replace(seen, name="by first"), seen.row_version)
            first_wrote.set()
            assert second_started.wait(TIMEOUT)
            time.sleep(0.1)  # let the second writer reach the database and wait there
            uow.commit()

    def second(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        with any_store.uow() as uow:
            second_started.set()
            uow.keys.update(dataclasses.replace(seen, name="by second"), seen.row_version)
            uow.commit()

    outcomes = _race(first, second)
    assert sum(o is None for o in outcomes) == 1, outcomes
    loser = next(o for o in outcomes if o is not None)
    assert isinstance(loser, VersionConflict)
    winner = "by first" if outcomes[0] is None else "by second"
    with any_store.uow() as uow:
        stored = uow.keys.get(f.INSTANCE, "k1")
        assert stored is not None and stored.name == winner and stored.row_version == 2


def test_two_writers_adding_the_same_alias_one_wins(any_store: AnyStore) -> None:
    def first(first_wrote: threading.Event, second_started: threading.Event) -> None:
        with any_store.uow() as uow:
            uow.aliases.add(f.alias("contested", "k-first"))
            first_wrote.set()
            assert second_started.wait(TIMEOUT)
            time.sleep(0.1)
            uow.commit()

    def second(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        with any_store.uow() as uow:
            second_started.set()
            uow.aliases.add(f.alias("contested", "k-second"))
            uow.commit()

    outcomes = _race(first, second)
    assert sum(o is None for o in outcomes) == 1, outcomes
    assert isinstance(next(o for o in outcomes if o is not None), AlreadyExists)
    winner = "k-first" if outcomes[0] is None else "k-second"
    with any_store.uow() as uow:
        assert uow.aliases.get(f.INSTANCE, "contested").key_id == winner  # type: ignore[union-attr]


def test_no_update_is_lost_under_contention(any_store: AnyStore) -> None:
    threads, increments = 4, 15
    with any_store.uow() as uow:
        uow.keys.add(f.key("counter", version_count=0))
        uow.commit()

    def worker() -> None:
        done = 0
        while done < increments:
            try:
                with any_store.uow() as uow:
                    current = uow.keys.get(f.INSTANCE, "counter")
                    assert current is not None
                    bumped = dataclasses.replace(current, version_count=current.version_count + 1)
                    uow.keys.update(bumped, current.row_version)
                    uow.commit()
                done += 1
            except VersionConflict:
                continue  # someone else got there first: read again and retry

    with ThreadPoolExecutor(threads) as pool:
        for fut in [pool.submit(worker) for _ in range(threads)]:
            fut.result(timeout=TIMEOUT)
    with any_store.uow() as uow:
        final = uow.keys.get(f.INSTANCE, "counter")
    assert final is not None
    assert final.version_count == threads * increments
    assert final.row_version == threads * increments + 1


def test_racing_transcript_appends_exactly_one_wins(any_store: AnyStore) -> None:
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0)])
    contenders = 6
    start = threading.Barrier(contenders)

    def append(i: int) -> KyokError | None:
        start.wait(TIMEOUT)
        try:
            units.append_transcript("u1", [f.entry(1, mac=f"1:{i}"), f.entry(2)])
        except KyokError as exc:
            return exc
        return None

    with ThreadPoolExecutor(contenders) as pool:
        outcomes = list(pool.map(append, range(contenders), timeout=TIMEOUT))
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, VersionConflict) for o in outcomes if o is not None)
    winner = outcomes.index(None)
    transcript = units.transcript("u1")
    assert [e.n for e in transcript] == [0, 1, 2]
    assert transcript[1].mac == f"1:{winner}"


def test_appending_in_turn_keeps_the_transcript_gapless(any_store: AnyStore) -> None:
    contenders = 3
    units = any_store.units
    units.create_unit("u1", "i1", [f.entry(0)])

    def append_five() -> None:
        appended = 0
        while appended < 5:
            following = units.transcript("u1")[-1].n + 1
            try:
                units.append_transcript("u1", [f.entry(following)])
                appended += 1
            except VersionConflict:
                pass

    with ThreadPoolExecutor(contenders) as pool:
        for fut in [pool.submit(append_five) for _ in range(contenders)]:
            fut.result(timeout=TIMEOUT)
    assert [e.n for e in units.transcript("u1")] == list(range(contenders * 5 + 1))
