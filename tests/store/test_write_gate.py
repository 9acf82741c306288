"""The SQLite write gate: writers of several processes and threads queue at one lock, every
commit and rollback opens it, readers never take it, and a stuck holder delays but never blocks."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from kyok.store.sql import write_gate
from kyok.store.sql.engine import connect, create_engine_for, sqlite_url
from kyok.store.sql.write_gate import WriteGate, gate_of

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


def test_another_process_holding_the_gate_makes_a_writer_wait(tmp_path: Path) -> None:
    gate = WriteGate(tmp_path / "db.write-lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(gate.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        got = threading.Event()
        owner = object()
        waiter = threading.Thread(target=lambda: got.set() if gate.acquire(owner) else None)
        waiter.start()
        assert not got.wait(0.3)  # waiting for the other process
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert got.wait(10)
        waiter.join()
        gate.release(owner)
    finally:
        holder.kill()
        holder.wait()
        gate.close()


def test_threads_of_one_process_take_turns_and_a_stranger_cannot_release(tmp_path: Path) -> None:
    gate = WriteGate(tmp_path / "db.write-lock")
    first, second = object(), object()
    assert gate.acquire(first)
    gate.release(second)  # not the holder: nothing happens
    got = threading.Event()
    waiter = threading.Thread(target=lambda: got.set() if gate.acquire(second) else None)
    waiter.start()
    assert not got.wait(0.2)
    gate.release(first)
    assert got.wait(10)
    waiter.join()
    gate.release(second)
    gate.close()


def test_a_writer_goes_on_without_the_gate_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_gate, "GATE_TIMEOUT", 0.2)
    gate = WriteGate(tmp_path / "db.write-lock")
    assert gate.acquire("holder")
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(gate.acquire("late")))
    thread.start()
    thread.join(10)
    assert result == [False]
    gate.release("holder")
    gate.close()


def test_the_engine_opens_the_gate_on_commit_and_rollback_and_readers_skip_it(
    tmp_path: Path,
) -> None:
    engine = create_engine_for(sqlite_url(tmp_path), kyok_write_gate=True)
    gate = gate_of(engine)
    assert gate is not None and gate.path == tmp_path / "kyok.db.write-lock"
    try:
        with connect(engine) as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.commit()
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.rollback()
            conn.execute(text("INSERT INTO t VALUES (2)"))
            conn.commit()
        # Another thread writing and committing shows the gate is open after each of those.
        done = threading.Event()

        def write() -> None:
            with connect(engine) as c:
                c.execute(text("INSERT INTO t VALUES (3)"))
                c.commit()
            done.set()

        with connect(engine, read_only=True) as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
            thread = threading.Thread(target=write)
            thread.start()
            assert done.wait(10)  # a reader does not hold the gate
            thread.join()
        with connect(engine) as conn:
            assert conn.execute(text("SELECT sum(x) FROM t")).scalar() == 5
    finally:
        engine.dispose()
    assert gate_of(create_engine_for(sqlite_url(tmp_path))) is None
