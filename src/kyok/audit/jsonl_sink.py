"""A forwarder destination that appends the ledger to a local JSONL file.

Each event becomes one line, ``canonical_json(chained.to_json())`` followed by ``\\n`` (the same
object as an event line of an export, see ``docs/formats.md``). A batch is written and then
``fsync``-ed before :meth:`JsonlFileDestination.deliver` returns, so a returned delivery survives
a crash of the machine.

The file is opened with ``O_APPEND | O_CREAT | O_NOFOLLOW``: created with mode 0600 (the events
name principals, keys and client addresses), never through a symbolic link in its last path
component, and it must be a regular file (a FIFO or a device is refused, without blocking).

If a write fails half-way, the destination cuts the file back to where the batch started; if even
that fails, the next open finds a last line without its newline and ends it, so the torn line
stands alone and the retried batch starts on a fresh line. A reader therefore skips lines that do
not parse, and may see an event twice (at-least-once delivery; duplicates carry the same instance
and seq). One forwarder owns a destination; the file must not have another writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Sequence
from typing import Final

from kyok.audit.chain import ChainedEvent
from kyok.audit.forward import DeliveryFailed
from kyok.crypto.encoding import canonical_json

__all__ = ["JsonlFileDestination", "jsonl_line"]

FILE_MODE: Final = 0o600
_OPEN_FLAGS: Final = (
    os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
)


def jsonl_line(chained: ChainedEvent) -> bytes:
    """The line written for ``chained``: its canonical JSON and a newline."""
    return canonical_json(chained.to_json()) + b"\n"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link"
    name = errno.errorcode.get(exc.errno or 0)
    return name or type(exc).__name__


class JsonlFileDestination:
    """Appends events to the JSONL file at ``path`` (opened on first use, kept open)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The file's path."""
        return self._path

    def deliver(self, events: Sequence[ChainedEvent]) -> None:
        """Append one line per event, then fsync.

        Raises:
            DeliveryFailed: the file could not be opened (symbolic link, not a regular file,
                permissions) or written; the batch counts as not delivered.
        """
        if not events:
            return
        data = b"".join(jsonl_line(chained) for chained in events)
        with self._lock:
            fd = self._open()
            start: int | None = None
            try:
                start = os.fstat(fd).st_size
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                if start is not None:
                    # best effort; if this fails too, the next open ends the torn line
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                self._close_fd()
                raise DeliveryFailed(
                    f"cannot write the audit file {self._path}: {_reason(exc)}"
                ) from exc

    def close(self) -> None:
        """Close the file (idempotent); a later :meth:`deliver` opens it again."""
        with self._lock:
            self._close_fd()

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            fd = os.open(self._path, _OPEN_FLAGS, FILE_MODE)
        except OSError as exc:
            raise DeliveryFailed(
                f"cannot open the audit file {self._path}: {_reason(exc)}"
            ) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise DeliveryFailed(
                    f"cannot open the audit file {self._path}: it is not a regular file"
                )
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                os.write(fd, b"\n")  # end a line torn by an earlier failure
        except OSError as exc:
            os.close(fd)
            raise DeliveryFailed(
                f"cannot open the audit file {self._path}: {_reason(exc)}"
            ) from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
