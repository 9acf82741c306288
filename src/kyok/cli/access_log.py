"""The access log, written in batches.

One line per request, each written and flushed on its own, cost a system call per request —
a tenth of a wrap's server CPU (docs/benchmarks.md). :class:`BatchedStreamHandler` formats
each record when it is logged (so a line holds what was true then) and writes what gathered
in one call: every ``interval`` seconds, as soon as ``max_lines`` are waiting, and at exit
(``logging.shutdown`` flushes every handler). A process killed with SIGKILL loses at most the
last ``interval`` of access lines; the audit ledger, not this log, is the record of calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["LINE_FORMAT", "BatchedStreamHandler", "SecondCachingFormatter", "install"]

#: The server's log line (``kyok.cli.server``): the format :meth:`BatchedStreamHandler.sink`
#: writes without logging's records.
LINE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class BatchedStreamHandler(logging.Handler):
    """Writes formatted records to ``stream`` in batches (see the module docstring).

    Args:
        stream: where the lines go (the server's stderr).
        interval: the longest a line waits, in seconds.
        max_lines: a batch this long is written at once.
    """

    def __init__(self, stream: TextIO, interval: float = 0.2, max_lines: int = 1024) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._buffer_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kyok-access-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` now; write it with its batch."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._append(line)

    def _append(self, line: str) -> None:
        """Keep ``line`` for the next batch; write the batch now if it is full."""
        with self._buffer_lock:
            self._lines.append(line)
            full = len(self._lines) >= self.max_lines
        if full:
            self.flush()

    def flush(self) -> None:
        """Write the lines gathered so far, in one call."""
        with self._buffer_lock:
            lines, self._lines = self._lines, []
        if not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stream closed or broken: nothing sensible to do
            pass

    def sink(self, logger_name: str) -> Callable[[str], None] | None:
        """A writer of INFO lines of ``logger_name`` that skips building a
        :class:`logging.LogRecord` (for ``kyok.api.middleware.access_sink``), writing what
        :meth:`emit` would for ``logger.info("%s", message)``; None unless this handler's
        format is :data:`LINE_FORMAT` (any other format goes through logging)."""
        formatter = self.formatter
        if (
            not isinstance(formatter, SecondCachingFormatter)
            or formatter.line_format != LINE_FORMAT
        ):
            return None
        middle = f" {'INFO':<7} {logger_name}: "
        append, now = self._append, time.time

        def write(message: str) -> None:
            append(formatter.time_text(now()) + middle + message)

        return write

    def close(self) -> None:
        """Write what is left and stop the timer thread."""
        self._stopping.set()
        self.flush()
        super().close()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.flush()


class SecondCachingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` (default time format) that renders each second's date and
    time once, not once per line."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.line_format = fmt
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """``YYYY-MM-DD HH:MM:SS,mmm`` in local time, as the default formatter writes it."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.time_text(record.created, record.msecs)

    def time_text(self, created: float, msecs: float | None = None) -> str:
        """:meth:`formatTime` of a record made at ``created`` (``time.time()``)."""
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        if msecs is None:  # as LogRecord computes it
            msecs = (created - second) * 1000
        return f"{self._text},{int(msecs):03d}"  # the default msec format


def install(logger_name: str, stream: TextIO, fmt: str) -> BatchedStreamHandler:
    """Give ``logger_name`` its own batched handler on ``stream`` (it stops propagating, so
    its lines are not also written one by one by the root handler)."""
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(SecondCachingFormatter(fmt))
    logger = logging.getLogger(logger_name)
    for old in [h for h in logger.handlers if isinstance(h, BatchedStreamHandler)]:
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.propagate = False
    return handler
