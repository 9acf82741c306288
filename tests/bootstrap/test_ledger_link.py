"""The ledger link: workers' events committed by one writer, over real sockets and a real store.

Each test runs the writer's :class:`LedgerServer` (with a real :class:`GroupCommitter` on the
SQL store) and one or two workers' :class:`LedgerClient` on one event loop, joined by real
``socketpair`` s, and checks what the callers were told against what the ledger holds.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.audit import AuditEvent, CheckpointPolicy, Initiator, KeySigner, Target, verify
from kyok.audit.chain import ChainLink, EncodedEvent
from kyok.bootstrap.ledger_link import LedgerClient, LedgerServer, decode_rows, encode_rows
from kyok.bootstrap.link import FrameReader, Hub
from kyok.clock import FakeClock
from kyok.crypto.sign import SigningKey
from kyok.kms.ledger import AuditUnavailable, ChainedEvent, GroupCommitter, Ledger, LedgerReader
from kyok.store.records import AuditQuery
from kyok.store.sql import SqlStore

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SIGNER = KeySigner(SigningKey.generate())


def event(instance: str = "i1", n: int = 0, outcome: str = "success") -> AuditEvent:
    return AuditEvent(
        instance_id=instance,
        seq=0,
        event_time=T0,
        action="kms.secrets.wrap",
        outcome=outcome,
        initiator=Initiator("alice", "user", "token", "127.0.0.1"),
        target=Target(f"key-{n}", "kms/key"),
        status=200 if outcome == "success" else 409,
        request_id=f"req-{n}",
    )


# ------------------------------------------------------------------------- encoding

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12
)


@settings(max_examples=60)
@given(
    instance=_text,
    target=_text,
    request_id=st.none() | _text,
    detail=st.lists(st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _text), max_size=3),
    seq=st.integers(0, 2**62),
    micros=st.integers(0, 10**12),
)
def test_an_encoded_event_is_the_events_canonical_bytes_at_any_seq(
    instance: str,
    target: str,
    request_id: str | None,
    detail: list[tuple[str, str]],
    seq: int,
    micros: int,
) -> None:
    names = dict(detail)  # detail names are unique
    original = AuditEvent(
        instance_id=instance,
        seq=0,
        event_time=datetime.fromtimestamp(micros / 1e6, UTC).replace(microsecond=micros % 10**6),
        action="kms.secrets.unwrap",
        outcome="failure",
        initiator=Initiator("bob", "user", "api_key", None),
        target=Target(target, "kms/key", None, None),
        status=404,
        reason_code="KEY_NOT_FOUND_ERR",
        request_id=request_id,
        detail=tuple(names.items()),
    )
    encoded = EncodedEvent.of(original)
    assert encoded.body(seq) == original.with_seq(seq).canonical_bytes()
    (back,) = decode_rows(encode_rows([encoded]))
    assert back == encoded


@pytest.mark.parametrize(
    "rows",
    [
        {"not": "a list"},
        [["i1", 0, "kms.secrets.wrap", "success", '{"action":']],  # five members
        [["i1", 1.5, "kms.secrets.wrap", "success", '{"action":', ',"target":']],
        [["i1", 0, "kms.secrets.wrap", "success", "{}", ',"target":']],  # not a head
        [["i1", 0, "kms.secrets.wrap", "success", '{"action":', "}"]],  # not a tail
        [["i1", 0, "kms.secrets.wrap", "success", '{"action":\u00e9', ',"target":']],
    ],
)
def test_rows_that_are_not_encoded_events_are_refused(rows: object) -> None:
    with pytest.raises(ValueError):
        decode_rows(orjson.dumps(rows))


# ------------------------------------------------------------------------- the link


class HeldLedger(Ledger):
    """A real ledger whose appends can be held at the door (to catch a batch in flight)."""

    def __init__(self) -> None:
        super().__init__(
            lambda instance: SIGNER,
            FakeClock(T0),
            CheckpointPolicy(every_events=4, every_seconds=60),
        )
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.failing = False  # every append fails while set
        self.sizes: list[int] = []  # events per append, in order

    def append_encoded(self, uow: object, events: Sequence[EncodedEvent]) -> list[ChainLink]:  # type: ignore[override]
        self.entered.set()
        assert self.release.wait(10)
        if self.failing:
            raise OSError("disk full")
        self.sizes.append(len(events))
        return super().append_encoded(uow, events)  # type: ignore[arg-type]


@contextmanager
def committer(store: SqlStore) -> Iterator[tuple[GroupCommitter, HeldLedger]]:
    ledger = HeldLedger()
    appender = store.ledger_writer()
    writer = GroupCommitter(store.uow, ledger, batch=appender.batch)
    try:
        yield writer, ledger
    finally:
        writer.stop()
        appender.close()


def verified(store: SqlStore, instance: str) -> list[ChainedEvent]:
    """The instance's ledger, checked end to end (hashes, links, checkpoints)."""
    reader = LedgerReader(store.uow)
    events = reader.events(AuditQuery(instance, limit=10_000))
    checkpoints = reader.checkpoints(instance, None, None, limit=10_000)
    items = sorted(
        [*events, *checkpoints], key=lambda x: (x.seq, 1 if hasattr(x, "signature") else 0)
    )
    report = verify(items, SIGNER.public_key(), instance_id=instance, allow_unsigned_tail=True)
    assert report.ok, report.first_problem
    assert [e.seq for e in events] == list(range(len(events)))
    return events


class WriterThread:
    """A ledger writer on an event loop of its own: it blocks that loop while it commits, as
    the writer process does, so a batch can be held in flight while the worker's loop runs."""

    def __init__(self, server: LedgerServer, socks: list[socket.socket]) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(server.serve(socks),), daemon=True
        )
        self.thread.start()

    async def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        await asyncio.to_thread(self.thread.join, 10)
        assert not self.thread.is_alive()
        self.loop.close()


async def until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_two_workers_events_go_on_one_chain_and_each_caller_hears_its_place(
    sql_store: SqlStore,
) -> None:
    with committer(sql_store) as (writer, _ledger):

        async def run() -> list[ChainLink]:
            server = LedgerServer(writer)
            (w1, c1), (w2, c2) = socket.socketpair(), socket.socketpair()
            serving = asyncio.create_task(server.serve([w1, w2]))
            one, two = LedgerClient(commit_delay=0.005), LedgerClient(commit_delay=0.005)
            one.attach(c1)
            two.attach(c2)
            waits = []
            for n in range(60):
                client = one if n % 2 else two
                waits.append(client.submit_async(event("i1" if n % 3 else "i2", n)))
            answers = await asyncio.gather(*waits)
            assert one.stats()["events"] + two.stats()["events"] == 60
            assert one.stats()["failed_batches"] == two.stats()["failed_batches"] == 0
            server.stop()
            await serving
            return list(answers)

        answers = asyncio.run(run())
    stored = {(e.event.instance_id, e.seq): e for i in ("i1", "i2") for e in verified(sql_store, i)}
    assert len(stored) == 60
    for n, answer in enumerate(answers):
        # What the caller was told is exactly where the ledger holds its event.
        held = stored[(answer.instance_id, answer.seq)]
        assert (held.prev_hash, held.hash) == (answer.prev_hash, answer.hash)
        assert held.event.request_id == f"req-{n}"


@pytest.mark.parametrize(
    ("max_batch", "sizes"),
    [(2000, [1, 6]), (4, [1, 3, 3])],  # at most max_batch events, whole frames, a transaction
)
def test_what_both_workers_sent_during_a_commit_goes_in_the_next_one(
    sql_store: SqlStore, max_batch: int, sizes: list[int]
) -> None:
    with committer(sql_store) as (writer, ledger):

        async def run() -> list[ChainLink]:
            (w1, c1), (w2, c2) = socket.socketpair(), socket.socketpair()
            serving = WriterThread(LedgerServer(writer, max_batch=max_batch), [w1, w2])
            one, two = LedgerClient(commit_delay=0.001), LedgerClient(commit_delay=0.001)
            one.attach(c1)
            two.attach(c2)
            ledger.release.clear()
            first = one.submit_async(event(n=0))
            await until(ledger.entered.is_set)  # the writer is committing event 0
            later = [(one if n % 2 else two).submit_async(event(n=n)) for n in range(1, 7)]
            await until(
                lambda: (
                    one._handed
                    and two._handed
                    and all(h.sent for c in (one, two) for h in c._handed.values())
                )
            )
            await asyncio.sleep(0.05)  # both frames are in the writer's sockets
            ledger.release.set()
            answers = await asyncio.gather(first, *later)
            await serving.stop()
            return list(answers)

        answers = asyncio.run(run())
    assert ledger.sizes == sizes  # both workers' frames together, up to max_batch
    stored = verified(sql_store, "i1")
    # Every caller was told exactly where its event is (frames go in the order read).
    assert len(answers) == len(stored) == 7
    for n, answer in enumerate(answers):
        held = stored[answer.seq]
        assert (answer.instance_id, answer.prev_hash, answer.hash) == (
            "i1",
            held.prev_hash,
            held.hash,
        )
        assert held.event.request_id == f"req-{n}"


def test_a_commit_that_fails_refuses_its_callers_and_the_writer_serves_on(
    sql_store: SqlStore,
) -> None:
    with committer(sql_store) as (writer, ledger):

        async def run() -> ChainLink:
            (w1, c1), (w2, c2) = socket.socketpair(), socket.socketpair()
            serving = WriterThread(LedgerServer(writer), [w1, w2])
            one, two = LedgerClient(commit_delay=0.001), LedgerClient(commit_delay=0.001)
            one.attach(c1)
            two.attach(c2)
            ledger.failing = True
            for refused in (one.submit_async(event(n=1)), two.submit_async(event(n=2))):
                with pytest.raises(AuditUnavailable):
                    await asyncio.wait_for(refused, 5)
            ledger.failing = False
            placed = await asyncio.wait_for(two.submit_async(event(n=3)), 5)
            await serving.stop()
            return placed

        placed = asyncio.run(run())
    assert writer.stats()["failed_batches"] >= 1
    assert [e.event.request_id for e in verified(sql_store, "i1")] == ["req-3"]
    assert placed.seq == 0


def test_when_the_writer_goes_away_calls_in_flight_are_refused_and_new_ones_wait_for_the_next(
    sql_store: SqlStore,
) -> None:
    with committer(sql_store) as (writer, ledger):

        async def run() -> None:
            w1, c1 = socket.socketpair()
            first = WriterThread(LedgerServer(writer), [w1])
            client = LedgerClient(commit_delay=0.001, wait=5.0)
            client.attach(c1)
            assert (await client.submit_async(event(n=1))).seq == 0

            # A batch caught in the writer when it goes: its caller is refused, not left waiting.
            ledger.release.clear()
            ledger.entered.clear()
            in_flight = client.submit_async(event(n=2))
            await until(ledger.entered.is_set)
            w1.shutdown(socket.SHUT_RDWR)  # the writer dies with the batch in its hands
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(in_flight, 5)
            ledger.release.set()  # the old writer's batch lands: the record may hold more
            await first.stop()

            # No writer: a new call waits (it is not refused) and goes to the next writer.
            waiting = client.submit_async(event(n=3))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            w2, c2 = socket.socketpair()
            again = WriterThread(LedgerServer(writer), [w2])
            client.attach(c2)
            placed = await asyncio.wait_for(waiting, 5)
            assert placed.seq == 2  # after req-1 and the old writer's req-2
            await again.stop()

        asyncio.run(run())
    events = verified(sql_store, "i1")
    assert [e.event.request_id for e in events] == ["req-1", "req-2", "req-3"]


def test_a_new_socket_while_a_batch_is_in_flight_refuses_that_batch_and_serves_on(
    sql_store: SqlStore,
) -> None:
    """The supervisor may pass a new socket before the old connection is seen to close: what
    was sent on the old one is refused then, not left waiting for an answer that never comes."""
    with committer(sql_store) as (writer, ledger):

        async def run() -> None:
            server = LedgerServer(writer)
            w1, c1 = socket.socketpair()
            serving = WriterThread(server, [w1])
            client = LedgerClient(commit_delay=0.001)
            client.attach(c1)
            ledger.release.clear()
            in_flight = client.submit_async(event(n=1))
            await until(ledger.entered.is_set)
            w2, c2 = socket.socketpair()
            server.attach(w2)
            client.attach(c2)
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(in_flight, 5)
            ledger.release.set()
            placed = await asyncio.wait_for(client.submit_async(event(n=2)), 5)
            assert placed.seq == 1  # after the refused batch's req-1, which landed
            await serving.stop()

        asyncio.run(run())
    assert [e.event.request_id for e in verified(sql_store, "i1")] == ["req-1", "req-2"]


def test_without_a_writer_for_too_long_calls_are_refused(sql_store: SqlStore) -> None:
    async def run() -> None:
        client = LedgerClient(commit_delay=0.001, wait=0.2)
        started = time.monotonic()
        with pytest.raises(AuditUnavailable):
            await asyncio.wait_for(client.submit_async(event()), 5)
        assert time.monotonic() - started >= 0.2
        assert client.stats()["failed_batches"] == 1

    asyncio.run(run())


def test_fail_open_events_wait_for_a_writer_and_are_written_once_it_comes(
    sql_store: SqlStore,
) -> None:
    with committer(sql_store) as (writer, _ledger):

        async def run() -> None:
            client = LedgerClient(commit_delay=0.001, wait=0.1)
            loop_bound = client.submit_async(event(n=0))  # binds the loop; refused later
            client.defer(event(n=1))
            client.defer(event(n=2))
            with pytest.raises(AuditUnavailable):
                await loop_bound
            await asyncio.sleep(0.3)  # far past `wait`: fail-open events are not given up
            assert client.deferred == 2 and client.stats()["deferred"] == 2
            server = LedgerServer(writer)
            w1, c1 = socket.socketpair()
            serving = asyncio.create_task(server.serve([w1]))
            client.attach(c1)
            await until(lambda: client.deferred == 0)
            server.stop()
            await serving

        asyncio.run(run())
    assert [e.event.request_id for e in verified(sql_store, "i1")] == ["req-1", "req-2"]


def test_a_frame_that_is_not_events_is_refused_and_the_connection_goes_on(
    sql_store: SqlStore,
) -> None:
    with committer(sql_store) as (writer, _ledger):

        async def run() -> bytes:
            server = LedgerServer(writer)
            w1, c1 = socket.socketpair()
            serving = asyncio.create_task(server.serve([w1]))
            reader, sender = await asyncio.open_unix_connection(sock=c1)
            garbage = b"E" + (7).to_bytes(8, "big") + b"[[1,2]]"
            sender.write(len(garbage).to_bytes(4, "big") + garbage)
            good = b"E" + (8).to_bytes(8, "big") + encode_rows([EncodedEvent.of(event(n=9))])
            sender.write(len(good).to_bytes(4, "big") + good)
            answers = await reader.readexactly(4 + 9 + 4 + 9 + 72)
            sender.close()
            server.stop()
            await serving
            return answers

        answers = asyncio.run(run())
    assert answers[:13] == (9).to_bytes(4, "big") + b"N" + (7).to_bytes(8, "big")
    assert answers[13:26] == (81).to_bytes(4, "big") + b"A" + (8).to_bytes(8, "big")
    assert int.from_bytes(answers[26:34], "big") == 0  # the good event's seq
    assert [e.event.request_id for e in verified(sql_store, "i1")] == ["req-9"]


def test_the_hub_passes_a_working_socket_over_the_node_link() -> None:
    hub = Hub()
    ours, theirs = socket.socketpair()
    hub.attach(1, ours)
    a, b = socket.socketpair()
    try:
        assert hub.pass_socket(1, b)
        assert not hub.pass_socket(2, b)  # nobody there
        b.close()  # the supervisor's copy: the worker holds its own now
        reader = FrameReader()
        theirs.settimeout(5)
        messages: list[dict[str, object]] = []
        fds: list[int] = []
        while not any(m["t"] == "ledger" for m in messages):
            data, got, _flags, _addr = socket.recv_fds(theirs, 1 << 16, 4)
            fds.extend(got)
            messages.extend(reader.feed(data))
        assert len(fds) == 1
        passed = socket.socket(fileno=fds[0])
        a.sendall(b"ping")
        assert passed.recv(4) == b"ping"
        passed.close()
    finally:
        hub.detach(1)
        a.close()
        theirs.close()
