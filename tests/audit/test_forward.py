"""Forwarders: the Forwarder loop over in-memory fakes, the JSONL file destination, the RFC 5424
format and the syslog/TLS destination against an in-process TLS receiver.

The fakes (:class:`MemoryFeed`, :class:`MemoryCursors`) are also used by ``test_rsyslog.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from kyok.audit import ChainedEvent, ChainHead, LedgerBroken
from kyok.audit.forward import (
    MAX_PASSES,
    DeliveryFailed,
    Forwarder,
    backoff_delay,
    describe_error,
)
from kyok.audit.jsonl_sink import JsonlFileDestination, jsonl_line
from kyok.audit.syslog import (
    BOM,
    DEFAULT_SD_ID,
    SyslogTlsDestination,
    escape_sd_value,
    format_rfc5424,
    frame_octet_counting,
)
from kyok.crypto.encoding import canonical_json
from kyok.errors import KyokError

from ._kit import INSTANCE_A, INSTANCE_B, make_event

# --------------------------------------------------------------------------------------------
# fakes


class MemoryFeed:
    """A :class:`~kyok.audit.feed.LedgerFeed` over lists; another thread may append meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledgers: dict[str, list[ChainedEvent]] = {}

    def append(self, instance_id: str, count: int = 1, *, fail: bool = False) -> list[ChainedEvent]:
        """Commit ``count`` more events of ``instance_id`` (real chain hashes)."""
        with self._lock:
            ledger = self._ledgers.setdefault(instance_id, [])
            head = ChainHead.after(ledger[-1]) if ledger else ChainHead.genesis(instance_id)
            events = [make_event(instance_id, head.next_seq + i, fail=fail) for i in range(count)]
            chained, _ = head.extend(events, renumber=True)
            ledger.extend(chained)
            return chained

    def events(self, instance_id: str) -> list[ChainedEvent]:
        """Everything committed for ``instance_id``."""
        with self._lock:
            return list(self._ledgers.get(instance_id, []))

    def instance_ids(self) -> list[str]:
        with self._lock:
            return sorted(i for i, ledger in self._ledgers.items() if ledger)

    def read_after(self, instance_id: str, after_seq: int | None, limit: int) -> list[ChainedEvent]:
        start = 0 if after_seq is None else after_seq + 1
        with self._lock:
            return list(self._ledgers.get(instance_id, [])[start : start + limit])


class MemoryCursors:
    """A :class:`~kyok.audit.feed.CursorStore` in a dict; records every save."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.positions: dict[tuple[str, str], int] = {}
        self.saves: list[tuple[str, str, int]] = []
        self.fail_next_save = False

    def load(self, sink: str, instance_id: str) -> int | None:
        with self._lock:
            return self.positions.get((sink, instance_id))

    def save(self, sink: str, instance_id: str, seq: int) -> None:
        with self._lock:
            if self.fail_next_save:
                self.fail_next_save = False
                raise RuntimeError("cursor store unavailable")
            self.saves.append((sink, instance_id, seq))
            old = self.positions.get((sink, instance_id))
            self.positions[(sink, instance_id)] = seq if old is None else max(old, seq)


class RecordingDestination:
    """Keeps what it was given; can be switched down, or fail on chosen calls."""

    def __init__(self, *, fail_calls: Sequence[int] = ()) -> None:
        self.batches: list[list[ChainedEvent]] = []
        self.calls = 0
        self.down = False
        self.closed = False
        self.fail_calls = set(fail_calls)
        self.before: Callable[[Sequence[ChainedEvent]], None] | None = None
        self._lock = threading.Lock()

    def deliver(self, events: Sequence[ChainedEvent]) -> None:
        with self._lock:
            self.calls += 1
            if self.before is not None:
                self.before(events)
            if self.down or self.calls in self.fail_calls:
                raise DeliveryFailed("test destination is down")
            self.batches.append(list(events))

    def close(self) -> None:
        self.closed = True

    def received(self, instance_id: str | None = None) -> list[ChainedEvent]:
        with self._lock:
            return [
                e
                for batch in self.batches
                for e in batch
                if instance_id is None or e.event.instance_id == instance_id
            ]


def first_occurrences(events: Sequence[ChainedEvent]) -> list[int]:
    """The seqs in the order they were first seen."""
    seen: set[int] = set()
    out: list[int] = []
    for chained in events:
        if chained.seq not in seen:
            seen.add(chained.seq)
            out.append(chained.seq)
    return out


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def feed() -> MemoryFeed:
    return MemoryFeed()


@pytest.fixture
def cursors() -> MemoryCursors:
    return MemoryCursors()


# --------------------------------------------------------------------------------------------
# Forwarder.run_once


def test_delivers_everything_in_order_in_batches(feed: MemoryFeed, cursors: MemoryCursors) -> None:
    feed.append(INSTANCE_A, 7)
    dest = RecordingDestination()
    fwd = Forwarder("jsonl", feed, cursors, dest, batch=3)

    assert fwd.run_once() == 7
    assert [len(b) for b in dest.batches] == [3, 3, 1]
    assert [e.seq for e in dest.received()] == list(range(7))
    assert dest.received() == feed.events(INSTANCE_A)
    assert cursors.load("jsonl", INSTANCE_A) == 6
    assert fwd.run_once() == 0  # caught up
    assert dest.calls == 3

    feed.append(INSTANCE_A, 2)
    assert fwd.run_once() == 2
    assert [e.seq for e in dest.received()] == list(range(9))
    status = fwd.status()
    assert status.delivered == 9 and status.failures == 0 and status.last_error is None
    assert status.last_success is not None and status.backlog_since is None


def test_failure_keeps_the_cursor_and_the_retry_resumes_there(
    feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 10)
    dest = RecordingDestination(fail_calls=[2])
    fwd = Forwarder("syslog", feed, cursors, dest, batch=4)

    with pytest.raises(DeliveryFailed):
        fwd.run_once()
    assert cursors.load("syslog", INSTANCE_A) == 3  # the first batch only
    status = fwd.status()
    assert status.failures == 1 and status.delivered == 4
    assert status.last_error == "DeliveryFailed: test destination is down"
    assert status.last_failure is not None
    assert status.backlog_since == feed.events(INSTANCE_A)[4].event.event_time

    assert fwd.run_once() == 6
    assert [e.seq for e in dest.received()] == list(range(10))
    assert cursors.load("syslog", INSTANCE_A) == 9
    status = fwd.status()
    assert status.failures == 0 and status.last_error is None and status.backlog_since is None


def test_two_instances_take_turns_and_keep_their_own_order(
    feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 5)
    feed.append(INSTANCE_B, 3, fail=True)
    dest = RecordingDestination()
    fwd = Forwarder("jsonl", feed, cursors, dest, batch=2)

    assert fwd.run_once() == 8
    owners = [b[0].event.instance_id for b in dest.batches]
    assert owners == sorted([INSTANCE_A, INSTANCE_B]) * 2 + [INSTANCE_A]  # round-robin
    for batch in dest.batches:
        assert len({e.event.instance_id for e in batch}) == 1
    assert [e.seq for e in dest.received(INSTANCE_A)] == [0, 1, 2, 3, 4]
    assert [e.seq for e in dest.received(INSTANCE_B)] == [0, 1, 2]
    assert cursors.load("jsonl", INSTANCE_A) == 4
    assert cursors.load("jsonl", INSTANCE_B) == 2
    assert cursors.load("other-sink", INSTANCE_A) is None  # cursors are per sink


def test_cursor_is_saved_only_after_deliver_returned(
    feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 6)
    dest = RecordingDestination(fail_calls=[3])
    fwd = Forwarder("s", feed, cursors, dest, batch=2)
    seen: list[tuple[int | None, int]] = []

    def check(events: Sequence[ChainedEvent]) -> None:
        # while a batch is being delivered, the cursor still points before it
        seen.append((cursors.load("s", INSTANCE_A), events[0].seq))

    dest.before = check
    with pytest.raises(DeliveryFailed):
        fwd.run_once()
    assert seen == [(None, 0), (1, 2), (3, 4)]
    assert cursors.saves == [("s", INSTANCE_A, 1), ("s", INSTANCE_A, 3)]  # none for the failure


def test_a_failed_cursor_save_means_a_duplicate_never_a_gap(
    feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 4)
    dest = RecordingDestination()
    fwd = Forwarder("s", feed, cursors, dest, batch=2)
    cursors.fail_next_save = True
    with pytest.raises(RuntimeError):
        fwd.run_once()
    assert fwd.status().last_error == "RuntimeError"  # the class only: no message text
    assert fwd.run_once() == 4
    received = [e.seq for e in dest.received()]
    assert received == [0, 1, 0, 1, 2, 3]
    assert first_occurrences(dest.received()) == [0, 1, 2, 3]


def test_a_round_is_bounded_and_the_rest_follows(feed: MemoryFeed, cursors: MemoryCursors) -> None:
    feed.append(INSTANCE_A, MAX_PASSES + 6)
    dest = RecordingDestination()
    fwd = Forwarder("s", feed, cursors, dest, batch=1)
    assert fwd.run_once() == MAX_PASSES  # a writer that keeps up cannot hold a round forever
    assert fwd.status().last_success is not None
    assert fwd.run_once() == 6
    assert [e.seq for e in dest.received()] == list(range(MAX_PASSES + 6))


class GappyFeed(MemoryFeed):
    """Returns a hole (seq 3 missing) for one instance."""

    def read_after(self, instance_id: str, after_seq: int | None, limit: int) -> list[ChainedEvent]:
        events = super().read_after(instance_id, after_seq, limit)
        return [e for e in events if not (instance_id == INSTANCE_A and e.seq == 3)]


def test_a_gap_in_the_feed_stops_that_instance_only(cursors: MemoryCursors) -> None:
    feed = GappyFeed()
    feed.append(INSTANCE_A, 6)
    feed.append(INSTANCE_B, 2)
    dest = RecordingDestination()
    fwd = Forwarder("s", feed, cursors, dest, batch=10)
    with pytest.raises(LedgerBroken) as info:
        fwd.run_once()
    assert info.value.seq == 3
    assert [e.seq for e in dest.received(INSTANCE_A)] == [0, 1, 2]  # nothing after the hole
    assert [e.seq for e in dest.received(INSTANCE_B)] == [0, 1]
    assert cursors.load("s", INSTANCE_A) == 2
    with pytest.raises(LedgerBroken):
        fwd.run_once()  # stays stuck rather than skipping
    assert [e.seq for e in dest.received(INSTANCE_A)] == [0, 1, 2]


class ForeignFeed(MemoryFeed):
    """Hands out another instance's events."""

    def read_after(self, instance_id: str, after_seq: int | None, limit: int) -> list[ChainedEvent]:
        return super().read_after(INSTANCE_B, after_seq, limit)


def test_events_of_another_instance_are_never_delivered(cursors: MemoryCursors) -> None:
    feed = ForeignFeed()
    feed.append(INSTANCE_A, 1)
    feed.append(INSTANCE_B, 2)
    dest = RecordingDestination()
    fwd = Forwarder("s", feed, cursors, dest)
    with pytest.raises(LedgerBroken):
        fwd.run_once()
    assert all(e.event.instance_id == INSTANCE_B for e in dest.received())  # B's own read is fine
    assert cursors.load("s", INSTANCE_A) is None


def test_constructor_rejects_nonsense(feed: MemoryFeed, cursors: MemoryCursors) -> None:
    dest = RecordingDestination()
    with pytest.raises(ValueError):
        Forwarder("", feed, cursors, dest)
    with pytest.raises(ValueError):
        Forwarder("s", feed, cursors, dest, batch=0)
    with pytest.raises(ValueError):
        Forwarder("s", feed, cursors, dest, interval=0)
    with pytest.raises(ValueError):
        Forwarder("s", feed, cursors, dest, backoff_initial=2, backoff_max=1)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 0.5, 30.0) for n in range(0, 9)] == [
        0.0,
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert backoff_delay(10_000, 0.5, 30.0) == 30.0


def test_error_descriptions_hold_no_foreign_text() -> None:
    assert describe_error(DeliveryFailed("receiver down")) == "DeliveryFailed: receiver down"
    assert describe_error(ValueError("secret-looking text")) == "ValueError"


def test_delivery_failed_is_a_kyok_error() -> None:
    exc = DeliveryFailed("x")
    assert isinstance(exc, KyokError)
    assert exc.code == "AUDIT_DELIVERY_FAILED_ERR" and exc.status == 503


# --------------------------------------------------------------------------------------------
# the background thread


def test_background_thread_forwards_backs_off_and_recovers(
    feed: MemoryFeed, cursors: MemoryCursors, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kyok.audit.forward")
    feed.append(INSTANCE_A, 5)
    dest = RecordingDestination()
    dest.down = True
    fwd = Forwarder(
        "bg", feed, cursors, dest, batch=2, interval=0.01, backoff_initial=0.01, backoff_max=0.04
    )
    fwd.start()
    try:
        fwd.start()  # a second start is a no-op
        wait_for(lambda: fwd.status().failures >= 3, what="three failed rounds")
        status = fwd.status()
        assert status.running and status.delivered == 0
        assert status.last_error == "DeliveryFailed: test destination is down"
        assert cursors.load("bg", INSTANCE_A) is None

        dest.down = False
        feed.append(INSTANCE_B, 3)
        wait_for(lambda: fwd.status().delivered == 8, what="everything delivered")
        wait_for(lambda: fwd.status().failures == 0, what="the failure count to reset")
        assert fwd.status().last_error is None
    finally:
        assert fwd.stop(timeout=5)
    assert not fwd.status().running
    assert first_occurrences(dest.received(INSTANCE_A)) == [0, 1, 2, 3, 4]
    assert first_occurrences(dest.received(INSTANCE_B)) == [0, 1, 2]

    messages = [r.getMessage() for r in caplog.records]
    assert any("round failed" in m and "DeliveryFailed" in m for m in messages)
    assert any("delivering again after" in m for m in messages)
    contents = {INSTANCE_A, INSTANCE_B, "ServiceId-app", "alias-", "kms.secrets", "192.0.2.10"}
    for message in messages:
        assert not any(c in message for c in contents), message


def test_wake_starts_a_round_without_waiting_for_the_interval(
    feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 1)
    dest = RecordingDestination()
    fwd = Forwarder("wake", feed, cursors, dest, interval=60.0)
    fwd.start()
    try:
        wait_for(lambda: fwd.status().delivered == 1, what="the first round")
        feed.append(INSTANCE_A, 2)
        fwd.wake()  # without it, the next round would come after 60 s
        wait_for(lambda: fwd.status().delivered == 3, timeout=10.0, what="the woken round")
    finally:
        assert fwd.stop(timeout=5)


def test_stop_interrupts_a_long_back_off(feed: MemoryFeed, cursors: MemoryCursors) -> None:
    feed.append(INSTANCE_A, 1)
    dest = RecordingDestination()
    dest.down = True
    fwd = Forwarder("s", feed, cursors, dest, backoff_initial=30.0, backoff_max=30.0)
    fwd.start()
    wait_for(lambda: fwd.status().failures == 1, what="the first failure")
    fwd.wake()  # ignored while backing off
    time.sleep(0.05)
    assert dest.calls == 1
    assert fwd.close(timeout=5)  # a 30 s back-off would outlast the 5 s without the interrupt
    assert dest.closed


# --------------------------------------------------------------------------------------------
# JSONL file destination


def _parse_jsonl(path: Path) -> list[ChainedEvent]:
    return [ChainedEvent.from_json(json.loads(line)) for line in path.read_bytes().splitlines()]


def test_jsonl_lines_are_the_canonical_chained_json(tmp_path: Path, feed: MemoryFeed) -> None:
    path = tmp_path / "audit.jsonl"
    dest = JsonlFileDestination(path)
    events = feed.append(INSTANCE_A, 3) + feed.append(INSTANCE_B, 1, fail=True)
    dest.deliver(events[:2])
    dest.deliver(events[2:])
    dest.deliver([])
    dest.close()
    dest.close()  # idempotent

    data = path.read_bytes()
    assert data == b"".join(canonical_json(e.to_json()) + b"\n" for e in events)
    assert data == b"".join(jsonl_line(e) for e in events)
    parsed = _parse_jsonl(path)
    assert parsed == events
    assert all(e.hash_ok() for e in parsed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dest.path == str(path)


def test_jsonl_appends_to_an_existing_file_and_fsyncs_each_batch(
    tmp_path: Path, feed: MemoryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"earlier":true}\n')
    path.chmod(0o640)
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    dest = JsonlFileDestination(path)
    events = feed.append(INSTANCE_A, 4)
    dest.deliver(events[:3])
    dest.deliver(events[3:])
    dest.close()
    assert len(synced) == 2
    lines = path.read_bytes().splitlines()
    assert lines[0] == b'{"earlier":true}' and len(lines) == 5
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its mode


def test_jsonl_refuses_a_symbolic_link(tmp_path: Path, feed: MemoryFeed) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    dest = JsonlFileDestination(link)
    with pytest.raises(DeliveryFailed, match="symbolic link"):
        dest.deliver(feed.append(INSTANCE_A, 1))
    assert target.read_bytes() == b""
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "not-there")
    with pytest.raises(DeliveryFailed, match="symbolic link"):
        JsonlFileDestination(dangling).deliver(feed.append(INSTANCE_A, 1))
    assert not (tmp_path / "not-there").exists()


def test_jsonl_refuses_a_fifo_without_blocking(tmp_path: Path, feed: MemoryFeed) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DeliveryFailed):
        JsonlFileDestination(fifo).deliver(feed.append(INSTANCE_A, 1))


def test_jsonl_write_failure_rolls_the_batch_back(
    tmp_path: Path, feed: MemoryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    dest = JsonlFileDestination(path)
    events = feed.append(INSTANCE_A, 4)
    dest.deliver(events[:1])
    before = path.read_bytes()

    real_write = os.write

    def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 20:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(DeliveryFailed, match="ENOSPC"):
        dest.deliver(events[1:])
    monkeypatch.undo()
    assert path.read_bytes() == before  # the torn half batch is gone
    dest.deliver(events[1:])
    assert _parse_jsonl(path) == events


def test_jsonl_ends_a_torn_line_before_appending(tmp_path: Path, feed: MemoryFeed) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"torn":')
    dest = JsonlFileDestination(path)
    events = feed.append(INSTANCE_A, 2)
    dest.deliver(events)
    lines = path.read_bytes().splitlines()
    assert lines[0] == b'{"torn":'
    assert [ChainedEvent.from_json(json.loads(x)) for x in lines[1:]] == events


def test_forwarder_into_a_jsonl_file(
    tmp_path: Path, feed: MemoryFeed, cursors: MemoryCursors
) -> None:
    feed.append(INSTANCE_A, 7)
    feed.append(INSTANCE_B, 5)
    path = tmp_path / "audit.jsonl"
    fwd = Forwarder("jsonl", feed, cursors, JsonlFileDestination(path), batch=3)
    assert fwd.run_once() == 12
    assert fwd.close()
    parsed = _parse_jsonl(path)
    for instance_id in (INSTANCE_A, INSTANCE_B):
        mine = [e for e in parsed if e.event.instance_id == instance_id]
        assert mine == feed.events(instance_id)
        assert all(a.hash == b.prev_hash for a, b in itertools.pairwise(mine))


# --------------------------------------------------------------------------------------------
# RFC 5424


@dataclass(frozen=True)
class Parsed:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd_id: str
    params: dict[str, str]
    msg: bytes


_PRINT = rb"[\x21-\x7e]"
_NAME = rb"[!#-<>-\\^-~]{1,32}"  # printable US-ASCII without '=', ']', '"' and SP
_VALUE = rb'(?:[^"\\\]]|\\.)*'
_MESSAGE = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>" + _PRINT + rb"{1,255}) "
    rb"(?P<app>" + _PRINT + rb"{1,48}) (?P<proc>" + _PRINT + rb"{1,128}) "
    rb"(?P<msgid>" + _PRINT + rb"{1,32}) "
    rb"\[(?P<sdid>" + _NAME + rb")(?P<params>(?: " + _NAME + rb'="' + _VALUE + rb'")*)\]'
    rb" (?P<msg>.*)",
    re.DOTALL,
)
_PARAM = re.compile(rb" (" + _NAME + rb')="(' + _VALUE + rb')"', re.DOTALL)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def unescape_sd_value(text: str) -> str:
    return re.sub(r'\\(["\\\]])', r"\1", text)


def parse_rfc5424(data: bytes) -> Parsed:
    """A strict parser for the messages kyok writes (one SD element)."""
    m = _MESSAGE.fullmatch(data)
    assert m is not None, data[:200]
    params = {
        k.decode(): unescape_sd_value(v.decode("utf-8"))
        for k, v in _PARAM.findall(m.group("params"))
    }
    return Parsed(
        pri=int(m.group("pri")),
        timestamp=m.group("ts").decode(),
        hostname=m.group("host").decode(),
        app_name=m.group("app").decode(),
        procid=m.group("proc").decode(),
        msgid=m.group("msgid").decode(),
        sd_id=m.group("sdid").decode(),
        params=params,
        msg=m.group("msg"),
    )


def _one(instance_id: str = INSTANCE_A, *, fail: bool = False, **changes: Any) -> ChainedEvent:
    chained, _ = ChainHead.genesis(instance_id).extend(
        [make_event(instance_id, 0, fail=fail, **changes)], renumber=True
    )
    return chained[0]


def test_rfc5424_message_fields() -> None:
    chained = _one()
    data = format_rfc5424(chained, hostname="kms-1.example", procid=4242)
    p = parse_rfc5424(data)
    assert p.pri == 16 * 8 + 6  # local0.info
    assert p.timestamp == "2026-01-15T09:00:00.000000Z" and _TIME.fullmatch(p.timestamp)
    assert (p.hostname, p.app_name, p.procid, p.msgid) == (
        "kms-1.example",
        "kyok",
        "4242",
        "kms.secrets.wrap",
    )
    assert p.sd_id == DEFAULT_SD_ID == "kyok@32473"
    assert p.params == {"instance": INSTANCE_A, "seq": "0", "hash": chained.hash.hex()}
    assert p.msg.startswith(BOM)
    body = p.msg[len(BOM) :]
    assert body == canonical_json(chained.to_json())
    assert ChainedEvent.from_json(json.loads(body)) == chained
    assert data.startswith(b"<134>1 2026-01-15T09:00:00.000000Z kms-1.example kyok 4242 ")


def test_rfc5424_failure_is_notice_and_facility_is_a_parameter() -> None:
    chained = _one(fail=True)
    assert parse_rfc5424(format_rfc5424(chained, hostname="h")).pri == 16 * 8 + 5
    assert parse_rfc5424(format_rfc5424(chained, hostname="h", facility=13)).pri == 13 * 8 + 5
    assert format_rfc5424(_one(), hostname="h", facility=0).startswith(b"<6>1 ")
    with pytest.raises(ValueError):
        format_rfc5424(chained, hostname="h", facility=24)


def test_rfc5424_nilvalues_and_header_validation() -> None:
    chained = _one()
    p = parse_rfc5424(format_rfc5424(chained, hostname=None, app_name=None))
    assert (p.hostname, p.app_name, p.procid) == ("-", "-", "-")
    assert parse_rfc5424(format_rfc5424(chained, hostname="")).hostname == "-"
    assert parse_rfc5424(format_rfc5424(chained, hostname="h" * 255)).hostname == "h" * 255
    for bad in ("h" * 256, "two words", "caf\u00e9", "tab\there"):
        with pytest.raises(ValueError, match="hostname"):
            format_rfc5424(chained, hostname=bad)
    with pytest.raises(ValueError, match="app-name"):
        format_rfc5424(chained, hostname="h", app_name="a" * 49)
    with pytest.raises(ValueError, match="procid"):
        format_rfc5424(chained, hostname="h", procid="p" * 129)
    with pytest.raises(ValueError, match="SD-ID"):
        format_rfc5424(chained, hostname="h", sd_id="no-at-sign")
    assert parse_rfc5424(format_rfc5424(chained, hostname="h", sd_id="kyok@99999")).sd_id == (
        "kyok@99999"
    )


def test_rfc5424_msgid_is_cut_to_32_characters() -> None:
    action = "kms.keys.rotate-with-a-rather-long-suffix-for-tests"
    chained = _one(action=action)
    p = parse_rfc5424(format_rfc5424(chained, hostname="h"))
    assert p.msgid == action[:32] and len(p.msgid) == 32
    assert json.loads(p.msg[len(BOM) :])["action"] == action  # MSG keeps the whole action


def test_rfc5424_sd_escaping_of_an_awkward_instance_id() -> None:
    instance_id = 'in"st\\an]ce [x=1] \u00e9'
    chained = _one(instance_id)
    data = format_rfc5424(chained, hostname="h")
    assert b'instance="in\\"st\\\\an\\]ce [x=1\\] \xc3\xa9"' in data
    assert parse_rfc5424(data).params["instance"] == instance_id


def test_sd_escape_examples() -> None:
    assert escape_sd_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert escape_sd_value("plain") == "plain"
    assert escape_sd_value("\\]") == "\\\\\\]"


_VALUE_RE = re.compile(r'(?:[^"\\\]]|\\.)*', re.DOTALL)


@given(st.text())
def test_sd_escaping_round_trips(value: str) -> None:
    escaped = escape_sd_value(value)
    assert _VALUE_RE.fullmatch(escaped) is not None  # no bare '"', ']' or trailing '\'
    assert unescape_sd_value(escaped) == value


_INSTANCE_IDS = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"),
        blacklist_characters="\x7f\u2028\u2029" + "".join(map(chr, range(0x80, 0xA0))),
    ),
    min_size=1,
    max_size=60,
)
_ACTIONS = st.from_regex(r"[a-z][a-z0-9_-]{0,30}(\.[a-z0-9_-]{1,30}){1,3}", fullmatch=True)


@given(_INSTANCE_IDS, _ACTIONS, st.booleans())
def test_rfc5424_parses_back_for_any_event(instance_id: str, action: str, fail: bool) -> None:
    chained = _one(instance_id, action=action, fail=fail)
    p = parse_rfc5424(format_rfc5424(chained, hostname="h"))
    assert p.params["instance"] == instance_id
    assert p.params["seq"] == "0"
    assert p.msgid == action[:32]
    assert p.pri == 16 * 8 + (5 if fail else 6)
    assert ChainedEvent.from_json(json.loads(p.msg[len(BOM) :])) == chained


def split_octet_frames(stream: bytes) -> list[bytes]:
    """Undo :func:`frame_octet_counting` over a stream of frames."""
    frames: list[bytes] = []
    while stream:
        length, _, rest = stream.partition(b" ")
        assert length.isdigit() and not length.startswith(b"0")
        n = int(length)
        assert len(rest) >= n
        frames.append(rest[:n])
        stream = rest[n:]
    return frames


def test_octet_counting_framing() -> None:
    assert frame_octet_counting(b"hello") == b"5 hello"
    assert frame_octet_counting(b"") == b"0 "
    msgs = [format_rfc5424(e, hostname="h") for e in MemoryFeed().append(INSTANCE_A, 3)]
    stream = b"".join(frame_octet_counting(m) for m in msgs)
    assert split_octet_frames(stream) == msgs
    assert len("é".encode()) == 2
    assert frame_octet_counting("é".encode()) == b"2 \xc3\xa9"  # octets, not characters


# --------------------------------------------------------------------------------------------
# syslog over TLS against an in-process receiver


@dataclass
class Pki:
    ca_file: str
    cert_file: str
    key_file: str
    ca: trustme.CA
    server: trustme.LeafCert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("kyok-forwarder.test")
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(base / "client.pem"))
    client.private_key_pem.write_to_path(str(base / "client.key"))
    return Pki(str(base / "ca.pem"), str(base / "client.pem"), str(base / "client.key"), ca, server)


class TlsReceiver:
    """A TLS syslog receiver in a thread; ``mode`` says how it treats the next connections.

    consume: read to the client's close_notify, answer it, keep the bytes.
    reset:   handshake, then close with the client's bytes unread (the kernel sends a reset).
    close:   handshake, then send close_notify first and close (without reading).
    chatty:  consume, then write bytes after its close_notify (no TLS peer may).
    """

    def __init__(self, pki: Pki, port: int = 0) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki.server.configure_cert(ctx)
        pki.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._ctx = ctx
        self.mode = "consume"
        self.payloads: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def messages(self) -> list[Parsed]:
        return [parse_rfc5424(m) for p in self.payloads for m in split_octet_frames(p)]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        tls = self._ctx.wrap_socket(conn, server_side=True)
        if self.mode == "consume":
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            tls.unwrap()
            self.payloads.append(data)
        elif self.mode == "reset":
            time.sleep(0.1)  # the client's batch arrives and stays unread
            tls.close()
        elif self.mode == "chatty":
            while tls.recv(65536):
                pass
            tls.unwrap().sendall(b"stray log line\n")
        elif self.mode == "close":
            with contextlib.suppress(OSError):
                tls.unwrap()  # close_notify first; the client's data is then refused
            tls.close()


@pytest.fixture
def receiver(pki: Pki) -> Iterator[TlsReceiver]:
    r = TlsReceiver(pki)
    yield r
    r.stop()


def _destination(pki: Pki, port: int, **kwargs: Any) -> SyslogTlsDestination:
    return SyslogTlsDestination(
        "127.0.0.1",
        port,
        ca_file=pki.ca_file,
        cert_file=pki.cert_file,
        key_file=pki.key_file,
        timeout=2.0,
        hostname="kyok-test",
        **kwargs,
    )


def test_tls_destination_delivers_a_confirmed_batch(
    pki: Pki, receiver: TlsReceiver, feed: MemoryFeed
) -> None:
    dest = _destination(pki, receiver.port, procid=7)
    events = feed.append(INSTANCE_A, 5)
    dest.deliver(events[:3])
    dest.deliver(events[3:])
    dest.deliver([])  # no connection for nothing
    dest.close()
    assert receiver.connections == 2
    got = receiver.messages()
    assert [int(m.params["seq"]) for m in got] == [0, 1, 2, 3, 4]
    assert all(m.hostname == "kyok-test" and m.procid == "7" for m in got)
    assert [ChainedEvent.from_json(json.loads(m.msg[len(BOM) :])) for m in got] == events
    assert dest.replayed_events == 0


@pytest.mark.parametrize("mode", ["reset", "close", "chatty"])
def test_tls_destination_fails_unless_the_receiver_confirms(
    pki: Pki, receiver: TlsReceiver, feed: MemoryFeed, mode: str
) -> None:
    receiver.mode = mode
    dest = _destination(pki, receiver.port)
    with pytest.raises(DeliveryFailed) as info:
        dest.deliver(feed.append(INSTANCE_A, 3))
    assert f"127.0.0.1:{receiver.port}" in info.value.message
    assert INSTANCE_A not in info.value.message


def test_tls_destination_refused_and_unverified(pki: Pki, feed: MemoryFeed) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free_port = probe.getsockname()[1]
    with pytest.raises(DeliveryFailed, match="connect failed: ECONNREFUSED"):
        _destination(pki, free_port).deliver(feed.append(INSTANCE_A, 1))

    receiver = TlsReceiver(pki)
    try:
        wrong_name = _destination(pki, receiver.port, server_name="other.example")
        with pytest.raises(DeliveryFailed, match="certificate verification failed"):
            wrong_name.deliver(feed.append(INSTANCE_A, 1))
        other_ca = trustme.CA()
        other_ca_file = Path(pki.ca_file).with_name("other-ca.pem")
        other_ca.cert_pem.write_to_path(str(other_ca_file))
        untrusted = SyslogTlsDestination(
            "127.0.0.1",
            receiver.port,
            ca_file=str(other_ca_file),
            cert_file=pki.cert_file,
            key_file=pki.key_file,
            timeout=2.0,
        )
        with pytest.raises(DeliveryFailed, match="certificate verification failed"):
            untrusted.deliver(feed.append(INSTANCE_A, 1))
        assert receiver.payloads == []
    finally:
        receiver.stop()


def test_tls_destination_replays_recent_batches_after_a_failure(pki: Pki, feed: MemoryFeed) -> None:
    receiver = TlsReceiver(pki)
    port = receiver.port
    dest = _destination(pki, port, replay_batches=2)
    events = feed.append(INSTANCE_A, 9)
    dest.deliver(events[0:2])
    dest.deliver(events[2:4])
    dest.deliver(events[4:6])
    receiver.stop()  # the receiver goes away (and may have lost what it held)
    with pytest.raises(DeliveryFailed):
        dest.deliver(events[6:8])
    receiver = TlsReceiver(pki, port)
    try:
        dest.deliver(events[6:8])  # replays the last two confirmed batches first
        dest.deliver(events[8:9])  # and then no more replay
        seqs = [int(m.params["seq"]) for m in receiver.messages()]
        assert seqs == [2, 3, 4, 5, 6, 7, 8]
        assert receiver.connections == 2
        assert dest.replayed_events == 4
    finally:
        receiver.stop()


def test_tls_destination_validates_its_configuration(pki: Pki) -> None:
    with pytest.raises(ValueError):
        _destination(pki, 0)
    with pytest.raises(ValueError):
        SyslogTlsDestination(
            "127.0.0.1",
            6514,
            ca_file=pki.ca_file,
            cert_file=pki.cert_file,
            key_file=pki.key_file,
            hostname="bad host",
        )
    with pytest.raises(ValueError):
        _destination(pki, 6514, facility=99)
    with pytest.raises(OSError):
        SyslogTlsDestination(
            "127.0.0.1",
            6514,
            ca_file=pki.ca_file,
            cert_file=pki.cert_file + ".missing",
            key_file=pki.key_file,
        )
    assert repr(_destination(pki, 6514)) == "SyslogTlsDestination('127.0.0.1', 6514)"
