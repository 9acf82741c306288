"""One SQLite writer at a time across a node's worker processes, without SQLite's sleeps.

SQLite lets one transaction write at a time; a second ``BEGIN IMMEDIATE`` waits in SQLite's busy
handler, which *sleeps* 1, 2, 5, 10 … 100 ms between attempts while the holder may take the lock
again and again. With several worker processes on one database file (``server.workers``) each
with its own group committer, that starved one worker for hundreds of milliseconds (measured:
bench/workers.py, p99 from 8 ms to 100-960 ms). The gate puts the writers in line first: a
thread lock among the threads of a process, and among processes an ``flock`` on
``<database>.write-lock``, which the waiting side polls at sub-millisecond steps. Turns are
fair: a process must first hold ``<database>.write-queue`` to wait for the gate, and lets it go
once through, so a process that just wrote and wants to write again queues behind the one
already waiting instead of taking the gate straight back. SQLite's own lock stays the guard of
correctness: a writer that cannot pass the gate within :data:`GATE_TIMEOUT` seconds goes on
without it and meets SQLite's busy handling as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine

__all__ = ["GATE_TIMEOUT", "WriteGate", "gate_of", "set_gate"]

GATE_TIMEOUT = 10.0
"""Seconds a writer waits at the gate before it goes on without it."""

_FIRST_POLL = 20e-6
_MAX_POLL = 200e-6

_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


class WriteGate:
    """A lock for write transactions, shared by the threads of a process and, through the lock
    file, by every process that opens the same file.

    Args:
        path: the lock file (created with mode 0600; it holds nothing). The queue's lock file
            is beside it (``.write-queue`` instead of its suffix).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        queue = path.with_suffix(".write-queue")
        self._queue_fd = os.open(queue, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._local = threading.Lock()
        self._holder: int | None = None

    def acquire(self, owner: object) -> bool:
        """Wait for the gate on behalf of ``owner`` (a connection).

        Returns:
            True when ``owner`` holds the gate (release it with :meth:`release`), False when
            :data:`GATE_TIMEOUT` passed first.
        """
        deadline = time.monotonic() + GATE_TIMEOUT
        if not self._local.acquire(timeout=GATE_TIMEOUT):
            return False
        if not _lock(self._queue_fd, deadline):
            self._local.release()
            return False
        try:
            if not _lock(self._fd, deadline):
                self._local.release()
                return False
        finally:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
        self._holder = id(owner)
        return True

    def release(self, owner: object) -> None:
        """Open the gate if ``owner`` holds it (a no-op otherwise, so it can follow every
        commit and rollback)."""
        if self._holder != id(owner):
            return
        self._holder = None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def close(self) -> None:
        """Close the lock files."""
        os.close(self._fd)
        os.close(self._queue_fd)


def _lock(fd: int, deadline: float) -> bool:
    """Take an exclusive ``flock`` on ``fd``, polling until ``deadline``; False if it passed."""
    delay = _FIRST_POLL
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL)


def set_gate(engine: Engine, gate: WriteGate) -> None:
    """Make ``gate`` the write gate of ``engine``'s writers."""
    _GATES[engine] = gate


def gate_of(engine: Engine) -> WriteGate | None:
    """The write gate of ``engine`` (None: writers go straight to SQLite)."""
    return _GATES.get(engine)
