"""Output helpers: write everything, and write from a background thread.

``encrypt_file``/``decrypt_file`` hand their segments to a :class:`ThreadedWriter`, so that the
``write`` system calls (which release the GIL) overlap the encryption of the next segment; that
keeps file-to-file encryption as fast as a plain copy. At most ``depth`` segments wait in the
queue, so memory stays O(segment size).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

__all__ = ["ThreadedWriter", "Writer", "write_all"]


class Writer(Protocol):
    """A binary stream we write to."""

    def write(self, data: bytes, /) -> int | None: ...


def write_all(dst: Writer, data: bytes) -> None:
    """Write all of ``data`` (a raw stream may take only part of it per call)."""
    written = dst.write(data)
    if written is None or written >= len(data):
        return
    view = memoryview(data)
    while written < len(data):
        more = dst.write(bytes(view[written:]))
        if not more:
            raise OSError("the output stream accepted no more bytes")
        written += more


class ThreadedWriter:
    """Writes the chunks given to :meth:`write` to ``dst`` in a background thread, in order.

    Chunks must not change after they are given (``bytes`` cannot). Call :meth:`close` to wait
    for the last chunk (it raises the writer's error, if it had one) or :meth:`abort` to drop
    what is queued; either joins the thread.
    """

    def __init__(self, dst: Writer, *, depth: int = 2) -> None:
        self._dst = dst
        self._depth = depth
        self._queue: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kyok-envelope-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes, /) -> int:
        """Queue ``data`` (waits while ``depth`` chunks are queued)."""
        with self._cond:
            while len(self._queue) >= self._depth and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ValueError("write to a closed ThreadedWriter")
            self._queue.append(data)
            self._cond.notify_all()
        return len(data)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                data = self._queue[0]
            try:
                write_all(self._dst, data)
            except BaseException as exc:  # handed to the caller's thread
                with self._cond:
                    self._error = exc
                    self._queue.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                if self._queue:  # abort() may have emptied it meanwhile
                    self._queue.popleft()
                self._cond.notify_all()

    def close(self) -> None:
        """Wait until everything queued is written; raise the writer's error if it had one."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Drop what is queued and stop the thread (after the chunk being written, if any)."""
        with self._cond:
            self._queue.clear()
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
