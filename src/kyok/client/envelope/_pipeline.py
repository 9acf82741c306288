"""The file helpers' three-stage pipeline over a fixed pool of buffers.

::

    reader thread    readinto a free input buffer ─────────────► filled
    calling thread   filled → AES-GCM *_into a free output buffer ─► ready  (input buffer freed)
    writer thread    ready → write ──────────────────────────────► output buffer freed

``encrypt_file``/``decrypt_file`` run their segments through a :class:`Pipeline`, so that the
``read`` and ``write`` system calls and AES-GCM (all three release the GIL) run at the same time
on different cores. Every buffer is allocated once per call (``in_count`` input and
``out_count`` output buffers of one segment each) and handed round: nothing is allocated per
segment, and memory does not grow with the file's size.

Failure in any stage (an exception in the reader, the transform or the writer, a
``KeyboardInterrupt`` in the calling thread) stops all three: the other stages see it at their
next hand-over (within one segment), the threads are joined, and :meth:`Pipeline.run` raises
the first error. A transform that fails must leave nothing it should not in the output buffer
it was given (``SegmentCipher.open_into`` zeroes it); that buffer never reaches the writer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import TypeVar

from kyok.client.envelope import _format as fmt
from kyok.client.envelope._header import Reader, read_into
from kyok.client.envelope._segments import SegmentCipher
from kyok.client.envelope._stream import Progress, raise_truncated
from kyok.client.envelope._writer import Writer, write_all

__all__ = ["Pipeline", "Transform", "open_pipelined", "seal_pipelined"]

T = TypeVar("T")

Transform = Callable[[int, bool, memoryview, memoryview], int]
"""``(index, last, input, output) -> n``: process segment ``index`` (``last`` when the input
was short: the end of the source) from ``input`` into the start of ``output``; ``n`` bytes of
``output`` are then written (none when 0)."""


class _Stopped(Exception):
    """Another stage failed: this one stops (never leaves this module)."""


_Item = tuple[memoryview, int]


class Pipeline:
    """Read ``src`` in segments of ``in_size`` bytes, transform them, write them to ``dst``.

    Every segment but the last has exactly ``in_size`` bytes; the last has fewer (possibly
    none): it is where the source ended. One pipeline runs once.

    ``reader_thread=False`` reads in the calling thread instead of a reader thread: for a
    source that may block indefinitely (a pipe), whose reader thread could not be interrupted.
    ``writer_thread=False`` writes in the calling thread. With neither (on one core, where
    threads would only take turns) it is a plain loop over the same buffers.
    """

    def __init__(
        self,
        src: Reader,
        dst: Writer,
        *,
        in_size: int,
        out_size: int,
        in_count: int = 2,
        out_count: int = 3,
        reader_thread: bool = True,
        writer_thread: bool = True,
    ) -> None:
        if in_count < 1 or out_count < 1:
            raise ValueError("a pipeline needs at least one buffer of each kind")
        self._src = src
        self._dst = dst
        self._in_size = in_size
        self._reader_thread = reader_thread
        self._writer_thread = writer_thread
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._started = False
        # Hand-overs are C queues (one producer, one consumer each): a put costs no Python-level
        # lock or condition, and a blocked get waits without the GIL. ``None`` in a queue means
        # "stop" (after a failure; in ``_ready``, also "everything was written" when no error).
        self._free_in: SimpleQueue[memoryview | None] = SimpleQueue()
        self._free_out: SimpleQueue[memoryview | None] = SimpleQueue()
        self._filled: SimpleQueue[_Item | None] = SimpleQueue()
        self._ready: SimpleQueue[_Item | None] = SimpleQueue()
        for _ in range(in_count):
            self._free_in.put(memoryview(bytearray(in_size)))
        for _ in range(out_count):
            self._free_out.put(memoryview(bytearray(out_size)))
        self._threads: list[threading.Thread] = []

    # -- hand-overs (every wait also wakes on failure) ----------------------------------------

    def _take(self, queue: SimpleQueue[T | None]) -> T:
        item = queue.get()
        if item is None or self._error is not None:
            raise _Stopped
        return item

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is not None:
                return
            self._error = exc
        for queue in (self._free_in, self._free_out, self._filled, self._ready):
            queue.put(None)  # wakes whichever stage waits there

    # -- the stages ----------------------------------------------------------------------------

    def _fill(self) -> _Item:
        buffer = self._take(self._free_in)
        return buffer, read_into(self._src, buffer)

    def _read_loop(self) -> None:
        try:
            while True:
                buffer, n = self._fill()
                self._filled.put((buffer, n))
                if n < self._in_size:
                    return
        except _Stopped:
            return
        except BaseException as exc:  # raised again by run(), in the calling thread
            self._fail(exc)

    def _write_loop(self) -> None:
        try:
            ready, free_out, dst = self._ready, self._free_out, self._dst
            while (item := ready.get()) is not None and self._error is None:
                buffer, n = item
                write_all(dst, buffer[:n])
                free_out.put(buffer)
        except BaseException as exc:  # raised again by run(), in the calling thread
            self._fail(exc)

    def _pump(self, transform: Transform) -> int:
        index = 0
        filled, free_in, free_out, ready = self._filled, self._free_in, self._free_out, self._ready
        while True:
            source, n = self._take(filled) if self._reader_thread else self._fill()
            last = n < self._in_size
            out = self._take(free_out)
            written = transform(index, last, source[:n], out)
            free_in.put(source)
            if written and self._writer_thread:
                ready.put((out, written))
            else:
                if written:
                    write_all(self._dst, out[:written])
                free_out.put(out)
            if last:
                return index + 1
            index += 1

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _finish(self) -> None:
        """Let the writer drain (or, after a failure, stop) and join every thread."""
        if self._writer_thread:
            self._ready.put(None)
        try:
            for thread in self._threads:
                thread.join()
        except BaseException as exc:  # interrupted while joining: stop them, let it through
            self._fail(exc)
            raise

    def run(self, transform: Transform) -> int:
        """Run every segment through ``transform``, in order; returns how many there were.

        Returns once everything is written and the threads are gone. On failure the threads
        are stopped and joined too, and the first error (from whichever stage) is raised.
        """
        if self._started:
            raise RuntimeError("a pipeline runs once")
        self._started = True
        try:
            if self._writer_thread:
                self._start(self._write_loop, "kyok-envelope-writer")
            if self._reader_thread:
                self._start(self._read_loop, "kyok-envelope-reader")
            count = self._pump(transform)
        except _Stopped:
            count = 0  # another stage failed: its error is raised below
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._finish()
        if self._error is not None:
            raise self._error
        return count


def _seekable(src: Reader) -> bool:
    """True for a seekable stream (a file, not a pipe, socket or terminal): its reads never
    wait indefinitely for a writer, so a reader thread on it always stops."""
    try:
        return bool(src.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _cores() -> int:
    """How many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_SMALL_SEGMENTS = 4 << 20


def _file_pipeline(src: Reader, dst: Writer, in_size: int, out_size: int) -> Pipeline:
    """Threads only where they can run at the same time (more than one core), and a reader
    thread only for a seekable source. Pools of 3 input and 4 output buffers for segments up to
    4 MiB (7 MiB at the default 1 MiB: a little slack for the stages' jitter; on two cores
    that was ~5% faster than 2 + 3), 2 + 2 for larger ones. (Moving two or four segments per
    read/write and hand-over, in buffers of that many segments, measured slower on two
    cores, decrypt most, and needs more memory.)"""
    threads = _cores() > 1
    small = max(in_size, out_size) <= _SMALL_SEGMENTS + fmt.TAG_SIZE
    return Pipeline(
        src,
        dst,
        in_size=in_size,
        out_size=out_size,
        in_count=3 if small else 2,
        out_count=4 if small else 2,
        reader_thread=threads and _seekable(src),
        writer_thread=threads,
    )


def seal_pipelined(
    src: Reader,
    dst: Writer,
    cipher: SegmentCipher,
    segment_size: int,
    progress: Progress | None = None,
) -> None:
    """:func:`~kyok.client.envelope._stream.seal_segments` through a :class:`Pipeline`."""

    def transform(index: int, last: bool, plaintext: memoryview, out: memoryview) -> int:
        written = cipher.seal_into(index, last, plaintext, out)
        if progress is not None and plaintext:
            progress(len(plaintext))
        return written

    _file_pipeline(src, dst, segment_size, segment_size + fmt.TAG_SIZE).run(transform)


def open_pipelined(
    src: Reader,
    dst: Writer,
    cipher: SegmentCipher,
    segment_size: int,
    progress: Progress | None = None,
) -> None:
    """:func:`~kyok.client.envelope._stream.open_segments` through a :class:`Pipeline`: a
    segment reaches the writer only once its tag verified; a segment that fails leaves zeros
    in its output buffer, which is never written, and stops the pipeline."""

    def transform(index: int, last: bool, data: memoryview, out: memoryview) -> int:
        if last and len(data) < fmt.TAG_SIZE:
            raise_truncated(index)
        written = cipher.open_into(index, last, data, out)
        if progress is not None and written:
            progress(written)
        return written

    _file_pipeline(src, dst, segment_size + fmt.TAG_SIZE, segment_size).run(transform)
