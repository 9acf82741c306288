"""The ledger link: a multi-worker node's workers hand their audit events to one writer process.

Every call's event goes on its instance's one hash chain, so appends to a chain happen one
after the other. When each worker committed its own events, the workers took turns at the
chain's head (SQLite's one writer, the head row's lock), each with half the batch, and two
workers served less than one (docs/benchmarks.md, "Several workers"). Instead a node of
``server.workers`` > 1 runs one more process, the *ledger writer*, which owns the node's
:class:`~kyok.kms.ledger.GroupCommitter`; each worker's :class:`LedgerClient` sends it the
events of its calls (already encoded, :class:`~kyok.audit.chain.EncodedEvent`: the writer
only places them) and answers each call once the writer says its event is durable. The
chain format does not change: the writer appends exactly as one process did.

Wire (one ``socketpair`` per worker, anonymous and inherited or passed over the node link
like the link itself; frames are a 4-byte big-endian length and a payload whose first byte
says what it is)::

    worker -> writer   E <id:8> <rows>      events to write; answer A or N
                       D <id:8> <rows>      events of calls served fail-open; A once written
    writer -> worker   A <id:8> (<seq:8> <prev hash:32> <hash:32>)*   written, in order
                       N <id:8>             not written (the callers are refused, or fail open)

``rows`` is JSON: ``[[instance id, event time in µs since the epoch, action, outcome, head,
tail], ...]``. A worker's ``id``s start at a random 63-bit value, so answers left over from a
worker that was restarted on the same pair mean nothing to the new one.

Failure: if the writer goes away, a worker fails the events it had sent (``None``: 503, or the
fail-open path), keeps those it could not send yet for up to :data:`WRITER_WAIT` seconds while
the supervisor starts a new writer and passes the worker a new socket, and sends its unwritten
fail-open events again. An event the old writer committed but could not confirm may then be
answered 503 although it is on the record (or, fail-open, recorded twice): the record may hold
more than what was answered, never less.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson

from kyok.audit.chain import ChainLink, EncodedEvent
from kyok.kms.ledger import (
    MAX_DEFERRED,
    AuditEvent,
    GroupCommitter,
    Waiter,
    settle,
)

__all__ = [
    "WRITER_WAIT",
    "LedgerClient",
    "LedgerServer",
    "decode_rows",
    "encode_rows",
]

log = logging.getLogger("kyok.audit")

WRITER_WAIT = 5.0
"""Seconds a worker keeps events it could not hand over (no writer) before refusing them."""

MAX_FRAME = 64 << 20
"""The largest frame either side accepts."""

_FRAME_EVENTS = 512  # events per E frame: a huge batch goes as several frames
_LEN = struct.Struct(">I")
_ID = struct.Struct(">Q")
_LINK = struct.Struct(">Q32s32s")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_HEAD = '{"action":'
_TAIL = ',"target":'


def encode_rows(events: Iterable[EncodedEvent]) -> bytes:
    """The JSON rows of ``events`` (see the module docstring)."""
    return orjson.dumps(
        [
            [
                e.instance_id,
                (e.event_time - _EPOCH) // _MICROSECOND,
                e.action,
                e.outcome,
                e.head.decode("ascii"),
                e.tail.decode("ascii"),
            ]
            for e in events
        ]
    )


def decode_rows(data: bytes | memoryview) -> list[EncodedEvent]:
    """The events :func:`encode_rows` wrote.

    Raises:
        ValueError: not rows of that shape.
    """
    rows = orjson.loads(data)
    if not isinstance(rows, list):
        raise ValueError("rows must be a list")
    events: list[EncodedEvent] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 6:
            raise ValueError("a row has six members")
        instance_id, micros, action, outcome, head, tail = row
        if not (
            isinstance(instance_id, str)
            and type(micros) is int
            and isinstance(action, str)
            and isinstance(outcome, str)
            and isinstance(head, str)
            and isinstance(tail, str)
            and head.startswith(_HEAD)
            and tail.startswith(_TAIL)
        ):
            raise ValueError("a row's members are not an encoded event's")
        events.append(
            EncodedEvent(
                instance_id,
                _EPOCH + micros * _MICROSECOND,
                action,
                outcome,
                head.encode("ascii"),
                tail.encode("ascii"),
            )
        )
    return events


def _frame(kind: bytes, frame_id: int, payload: bytes = b"") -> bytes:
    return _LEN.pack(1 + _ID.size + len(payload)) + kind + _ID.pack(frame_id) + payload


class _Frames(asyncio.Protocol):
    """Cuts a stream into frames and hands each (kind, id, payload) to ``on_frame``."""

    def __init__(
        self,
        on_frame: Callable[[bytes, int, memoryview], None],
        on_lost: Callable[[_Frames], None],
    ) -> None:
        self._buffer = bytearray()
        self._on_frame = on_frame
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not registered as asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        end = len(buffer)
        while end - start >= _LEN.size:
            (size,) = _LEN.unpack_from(buffer, start)
            if size < 1 + _ID.size or size > MAX_FRAME:
                log.error("ledger link: a frame of %d bytes; closing the connection", size)
                del buffer[:]
                if self.transport is not None:
                    self.transport.close()
                return
            if end - start - _LEN.size < size:
                break
            body = start + _LEN.size
            kind = bytes(buffer[body : body + 1])
            (frame_id,) = _ID.unpack_from(buffer, body + 1)
            payload = memoryview(buffer)[body + 1 + _ID.size : body + size]
            try:
                self._on_frame(kind, frame_id, payload)
            except Exception:  # one bad frame must not take the connection down
                log.exception("ledger link: a frame could not be handled")
            finally:
                payload.release()
            start = body + size
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_lost(self)


# ------------------------------------------------------------------ the worker's side


@dataclass(slots=True)
class _Handed:
    """One frame's events, from being queued until the writer answered."""

    frame_id: int
    kind: bytes  # E or D
    events: list[AuditEvent]
    waiters: list[Waiter] | None  # None for fail-open events
    frame: bytes
    queued_at: float
    sent: bool = False


class LedgerClient:
    """A worker's audit writer in a multi-worker node: hands events to the ledger writer.

    Used from the worker's event loop only (as :class:`~kyok.kms.ledger.GroupCommitter` is by
    serving), except :meth:`attach`, which the node link's thread calls. Events queued while
    the loop goes round once go as one frame, when the loop has gone round without queueing
    more or after ``commit_delay`` seconds, as with the in-process committer; the writer
    commits whatever all workers handed it meanwhile in one transaction.

    Args:
        commit_delay: the longest an event waits to be handed over while the loop stays busy.
        wait: how long events wait for a writer to hand them to before they are refused.
    """

    def __init__(self, *, commit_delay: float = 0.002, wait: float = WRITER_WAIT) -> None:
        self._delay = commit_delay
        self._wait = wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the loop and the spare socket, against attach()
        self._spare: socket.socket | None = None
        self._proto: _Frames | None = None
        self._ids = itertools.count(secrets.randbits(63))
        self._handed: dict[int, _Handed] = {}
        self._events: list[AuditEvent] = []
        self._waiters: list[Waiter] = []
        self._queued = 0
        self._first_at = 0.0
        self._ticking = False
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._deferred = 0
        self.events = 0
        self.batches = 0
        self.failed_batches = 0
        self.dropped = 0

    # -- the socket

    def attach(self, sock: socket.socket) -> None:
        """Use ``sock`` (a new connection to the ledger writer) from now on; thread-safe."""
        with self._lock:
            loop = self._loop
            if loop is None:  # no event yet: the first one connects it
                old, self._spare = self._spare, sock
                if old is not None:
                    old.close()
                return
        try:
            loop.call_soon_threadsafe(self._connect, sock)
        except RuntimeError:  # the loop is closed: the worker is stopping
            sock.close()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            with self._lock:
                loop = self._loop = asyncio.get_running_loop()
                spare, self._spare = self._spare, None
            if spare is not None:
                self._connect(spare)
        return loop

    def _connect(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        old = self._proto
        if old is not None:
            # Whatever was sent on the old connection will not be answered on the new one.
            self._lost(old)
            if old.transport is not None:
                old.transport.close()
        sock.setblocking(False)
        proto = _Frames(self._answered, self._lost)
        self._proto = proto

        async def connect() -> None:
            try:
                await loop.connect_accepted_socket(lambda: proto, sock)
            except OSError as exc:
                log.error("ledger link: cannot use the writer's socket: %s", exc)
                sock.close()
                self._lost(proto)
                return
            if self._proto is proto:
                for handed in sorted(self._handed.values(), key=lambda h: h.frame_id):
                    if not handed.sent:
                        self._send(handed)

        task = loop.create_task(connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lost(self, proto: _Frames) -> None:
        if self._proto is not proto:
            return
        self._proto = None
        log.error("ledger link: the connection to the ledger writer is gone; waiting for a new one")
        for handed in sorted(self._handed.values(), key=lambda h: h.frame_id):
            if not handed.sent:
                continue
            if handed.kind == b"D":
                handed.sent = False  # fail-open events: sent again to the next writer
                handed.queued_at = time.monotonic()
            else:
                del self._handed[handed.frame_id]
                self._refuse(handed)
        self._expire_later()

    def _send(self, handed: _Handed) -> None:
        proto = self._proto
        if proto is None or proto.transport is None:
            self._expire_later()
            return
        proto.transport.write(handed.frame)
        handed.sent = True

    # -- queueing

    def submit_then(self, event: AuditEvent, callback: Callable[[ChainLink | None], None]) -> None:
        """Queue ``event``; ``callback`` runs on this loop with its place in the chain once
        the writer made it durable, or with None if it was not written."""
        self._queue(event, callback)

    def submit_async(self, event: AuditEvent) -> asyncio.Future[ChainLink]:
        """Queue ``event``; the future completes once it is durable (or fails with
        :class:`~kyok.kms.ledger.AuditUnavailable`)."""
        future: asyncio.Future[ChainLink] = self._bind().create_future()
        self._queue(event, future)
        return future

    def _queue(self, event: AuditEvent, waiter: Waiter) -> None:
        loop = self._bind()
        self._events.append(event)
        self._waiters.append(waiter)
        self._queued += 1
        if not self._ticking:
            self._ticking = True
            self._first_at = time.monotonic()
            loop.call_soon(self._tick, self._queued)

    def defer(self, event: AuditEvent) -> None:
        """Hand over ``event`` of a call served fail-open; the writer keeps it until the
        ledger takes it. At most :data:`~kyok.kms.ledger.MAX_DEFERRED` wait here."""
        self._bind()
        if self._deferred >= MAX_DEFERRED:
            oldest = min(
                (h for h in self._handed.values() if h.kind == b"D"), key=lambda h: h.frame_id
            )
            del self._handed[oldest.frame_id]
            self._deferred -= len(oldest.events)
            self.dropped += len(oldest.events)
            log.error("audit events dropped while the ledger was unavailable: %d", self.dropped)
        self._hand(b"D", [event], None)

    def _tick(self, seen: int) -> None:
        loop = self._loop
        assert loop is not None
        if self._queued != seen and time.monotonic() - self._first_at < self._delay:
            loop.call_soon(self._tick, self._queued)
            return
        self._ticking = False
        events, self._events = self._events, []
        waiters, self._waiters = self._waiters, []
        for start in range(0, len(events), _FRAME_EVENTS):
            end = start + _FRAME_EVENTS
            self._hand(b"E", events[start:end], waiters[start:end])

    def _hand(
        self,
        kind: bytes,
        events: list[AuditEvent],
        waiters: list[Waiter] | None,
    ) -> None:
        frame_id = next(self._ids)
        try:
            frame = _frame(kind, frame_id, encode_rows(EncodedEvent.of(e) for e in events))
        except Exception:  # an event that cannot be encoded must not keep the others waiting
            log.exception("audit events could not be encoded")
            if waiters is not None:
                settle((waiter, None) for waiter in waiters)
            return
        handed = _Handed(frame_id, kind, events, waiters, frame, time.monotonic())
        self._handed[frame_id] = handed
        if kind == b"D":
            self._deferred += len(events)
        self._send(handed)

    # -- answers

    def _answered(self, kind: bytes, frame_id: int, payload: memoryview) -> None:
        handed = self._handed.pop(frame_id, None)
        if handed is None:
            return  # an answer to an earlier process on this socket, or already refused
        if kind == b"A" and len(payload) == _LINK.size * len(handed.events):
            self.events += len(handed.events)
            self.batches += 1
            if handed.kind == b"D":
                self._deferred -= len(handed.events)
                return
            assert handed.waiters is not None
            links = _LINK.iter_unpack(payload)
            settle(
                (waiter, ChainLink(event.instance_id, seq, prev, digest))
                for event, waiter, (seq, prev, digest) in zip(
                    handed.events, handed.waiters, links, strict=True
                )
            )
            return
        if handed.kind == b"D":  # the writer dropped them (its own limit)
            self._deferred -= len(handed.events)
            self.dropped += len(handed.events)
            return
        self._refuse(handed)

    def _refuse(self, handed: _Handed) -> None:
        self.failed_batches += 1
        if handed.waiters is not None:
            settle((waiter, None) for waiter in handed.waiters)

    def _expire_later(self) -> None:
        if self._expiry is None and self._loop is not None:
            self._expiry = self._loop.call_later(self._wait / 4, self._expire)

    def _expire(self) -> None:
        """Refuse the events that have waited :data:`WRITER_WAIT` for a writer (fail-open
        events wait on, within their limit)."""
        self._expiry = None
        deadline = time.monotonic() - self._wait
        waiting = False
        for handed in sorted(self._handed.values(), key=lambda h: h.frame_id):
            if handed.sent or handed.kind == b"D":
                waiting = waiting or not handed.sent
                continue
            if handed.queued_at <= deadline:
                del self._handed[handed.frame_id]
                self._refuse(handed)
            else:
                waiting = True
        if waiting:
            self._expire_later()

    # -- the rest of a writer's face

    @property
    def deferred(self) -> int:
        """Events served fail-open that the ledger has not yet confirmed."""
        return self._deferred

    def stats(self) -> dict[str, int]:
        """Counters for metrics: this worker's events and frames the writer confirmed, frames
        refused, fail-open events not yet confirmed, and events dropped."""
        return {
            "events": self.events,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "deferred": self._deferred,
            "dropped": self.dropped,
        }

    def start(self) -> None:
        """Nothing to start: the connection is made on the first event."""

    def stop(self, timeout: float = 10.0) -> None:
        """At exit (the loop has stopped): say what could not be handed over."""
        unsent = sum(len(h.events) for h in self._handed.values() if h.kind == b"D")
        if unsent:
            log.error("%d fail-open audit event(s) not confirmed by the ledger writer", unsent)
        if self._spare is not None:
            self._spare.close()


# ------------------------------------------------------------------ the writer's side


class LedgerServer:
    """The ledger writer's end: takes the workers' frames and commits them through
    ``committer``.

    Events to write (``E``) are committed on this loop, not handed to the committer's thread:
    once the loop has read every frame that came in while it was busy, they go in one
    transaction (:meth:`GroupCommitter.write_now`), and the answers go out when it is durable.
    The loop does nothing else, so the frames that arrive during a commit wait in the sockets
    and make the next batch: a group commit without a hand-off to another thread and back
    (which cost the writer ~20 % of its CPU and a few hundred microseconds a batch; see
    docs/benchmarks.md). Fail-open events (``D``) go to the committer, which keeps them until
    the ledger takes them.

    Args:
        committer: the node's group committer (started on first use).
        max_batch: the most events in one transaction.
    """

    def __init__(self, committer: GroupCommitter, *, max_batch: int = 2000) -> None:
        self._committer = committer
        self._max_batch = max_batch
        self._due: list[tuple[_Frames, int, list[EncodedEvent]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._conns: set[_Frames] = set()
        self._early: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self.frames = 0

    def attach(self, sock: socket.socket) -> None:
        """Serve a worker's new connection; thread-safe (the node link's thread calls it)."""
        with self._lock:
            loop = self._loop
            if loop is None:
                self._early.append(sock)
                return
        try:
            loop.call_soon_threadsafe(self._start_connect, sock)
        except RuntimeError:
            sock.close()

    def _start_connect(self, sock: socket.socket) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        proto: _Frames

        def frame(kind: bytes, frame_id: int, payload: memoryview) -> None:
            self._frame(proto, kind, frame_id, payload)

        proto = _Frames(frame, self._conns.discard)
        try:
            await loop.connect_accepted_socket(lambda: proto, sock)
        except OSError as exc:
            log.error("ledger writer: cannot use a worker's socket: %s", exc)
            sock.close()
            return
        self._conns.add(proto)

    def _frame(self, proto: _Frames, kind: bytes, frame_id: int, payload: memoryview) -> None:
        self.frames += 1
        if kind not in (b"E", b"D"):
            log.error("ledger writer: a frame of unknown kind %r; ignored", kind)
            return
        try:
            events = decode_rows(payload)
        except ValueError as exc:
            log.error("ledger writer: a worker's frame is not events (%s); refused", exc)
            self._answer(proto, frame_id, None)
            return

        if kind == b"E":
            if not self._due:
                asyncio.get_running_loop().call_soon(self._commit_due)
            self._due.append((proto, frame_id, events))
            return

        def done(links: list[ChainLink] | None) -> None:
            self._answer(proto, frame_id, links)

        self._committer.defer_batch_then(events, done)

    def _commit_due(self) -> None:
        """Commit the frames read since the last commit (scheduled by the first of them, so
        it runs once the loop has handled every frame that was ready), and answer them."""
        due, self._due = self._due, []
        batch: list[tuple[_Frames, int, list[EncodedEvent]]] = []
        size = 0
        for frame in due:
            if batch and size + len(frame[2]) > self._max_batch:
                self._commit(batch)
                batch, size = [], 0
            batch.append(frame)
            size += len(frame[2])
        self._commit(batch)

    def _commit(self, frames: list[tuple[_Frames, int, list[EncodedEvent]]]) -> None:
        """Commit ``frames`` in one transaction and answer each."""
        links = self._committer.write_now([e for _, _, events in frames for e in events])
        at = 0
        for proto, frame_id, events in frames:
            self._answer(proto, frame_id, None if links is None else links[at : at + len(events)])
            at += len(events)

    def _answer(self, proto: _Frames, frame_id: int, links: list[ChainLink] | None) -> None:
        transport = proto.transport
        if transport is None or transport.is_closing():
            return  # the worker went away; its events are written all the same
        if links is None:
            transport.write(_frame(b"N", frame_id))
            return
        payload = b"".join([_LINK.pack(link.seq, link.prev_hash, link.hash) for link in links])
        transport.write(_frame(b"A", frame_id, payload))

    async def serve(self, socks: Sequence[socket.socket]) -> None:
        """Serve ``socks`` (and those :meth:`attach` adds) until :meth:`stop`."""
        self._stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            early, self._early = self._early, []
        for sock in [*socks, *early]:
            await self._connect(sock)
        await self._stop.wait()
        for proto in list(self._conns):
            if proto.transport is not None:
                proto.transport.close()

    def stop(self) -> None:
        """Make :meth:`serve` return (call on its loop)."""
        if self._stop is not None:
            self._stop.set()
