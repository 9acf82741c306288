"""The audit ledger tables on every backend, and the ledger writer over them.

Through ``kyok.kms.ledger.Ledger`` (the only writer) with real Ed25519 signers: events chain
without gaps, checkpoints are signed when due, concurrent writers never fork a chain (the head
row serialises them), and what is read back verifies offline.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest

from kyok.audit import (
    AuditEvent,
    CheckpointPolicy,
    Initiator,
    KeySigner,
    Target,
    verify,
)
from kyok.audit.chain import genesis_hash
from kyok.clock import FakeClock
from kyok.crypto.sign import SigningKey
from kyok.errors import VersionConflict
from kyok.kms.ledger import GroupCommitter, Ledger, LedgerReader
from kyok.store.records import AuditHeadRecord, AuditQuery
from kyok.store.sql import SqlStore

from .factories import AnyStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SIGNER = KeySigner(SigningKey.generate())


def event(instance: str, action: str = "kms.secrets.wrap", outcome: str = "success") -> AuditEvent:
    return AuditEvent(
        instance_id=instance,
        seq=0,
        event_time=T0,
        action=action,
        outcome=outcome,
        initiator=Initiator("alice", "user", "token", "127.0.0.1"),
        target=Target("key-1", "kms/key"),
        status=200 if outcome == "success" else 404,
        reason_code=None if outcome == "success" else "KEY_NOT_FOUND_ERR",
    )


def ledger(clock: FakeClock, every: int = 3) -> Ledger:
    return Ledger(
        lambda instance: SIGNER if instance != "unsigned" else None,
        clock,
        CheckpointPolicy(every_events=every, every_seconds=60),
    )


def verified(store: AnyStore, instance: str) -> None:
    reader = LedgerReader(store.uow)
    events = reader.events(AuditQuery(instance, limit=10_000))
    checkpoints = reader.checkpoints(instance, None, None, limit=10_000)
    items = sorted(
        [*events, *checkpoints],
        key=lambda item: (item.seq, 1 if hasattr(item, "signature") else 0),
    )
    report = verify(items, SIGNER.public_key(), instance_id=instance, allow_unsigned_tail=True)
    assert report.ok, report.first_problem


def test_append_chains_and_checkpoints(any_store: AnyStore) -> None:
    clock = FakeClock(T0)
    writer = ledger(clock, every=3)
    for _ in range(7):
        with any_store.uow() as uow:
            writer.append(uow, [event("i1")])
            uow.commit()
    reader = LedgerReader(any_store.uow)
    events = reader.events(AuditQuery("i1"))
    assert [e.seq for e in events] == list(range(7))
    assert events[0].prev_hash == genesis_hash("i1")
    assert all(e.hash_ok() for e in events)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    # the first event is signed at once (no checkpoint yet), then every 3 events
    assert [c.seq for c in reader.checkpoints("i1", None, None)] == [0, 3, 6]
    head = reader.head("i1")
    assert head is not None and head.next_seq == 7 and head.checkpoint_seq == 6
    verified(any_store, "i1")


def test_time_makes_a_checkpoint_due_and_the_sweep_signs_a_quiet_tail(any_store: AnyStore) -> None:
    clock = FakeClock(T0)
    writer = ledger(clock, every=1000)
    for _ in range(3):
        with any_store.uow() as uow:
            writer.append(uow, [event("i1")])
            uow.commit()
    reader = LedgerReader(any_store.uow)
    assert [c.seq for c in reader.checkpoints("i1", None, None)] == [0]
    with any_store.uow() as uow:  # not stale yet
        assert writer.checkpoint_stale(uow, "i1") is None
    clock.advance(timedelta(seconds=61))
    committer = GroupCommitter(any_store.uow, writer)
    assert committer.sign_stale() == 1
    assert [c.seq for c in reader.checkpoints("i1", None, None)] == [0, 2]
    assert committer.sign_stale() == 0  # nothing new
    verified(any_store, "i1")


def test_filters(any_store: AnyStore) -> None:
    clock = FakeClock(T0)
    writer = ledger(clock)
    with any_store.uow() as uow:
        writer.append(
            uow,
            [
                event("i1", "kms.secrets.wrap"),
                event("i1", "kms.secrets.unwrap", "failure"),
                event("i2", "kms.keys.create"),
                event("i1", "kms.keys.read"),
            ],
        )
        uow.commit()
    reader = LedgerReader(any_store.uow)
    assert [e.seq for e in reader.events(AuditQuery("i1"))] == [0, 1, 2]
    assert [e.seq for e in reader.events(AuditQuery("i2"))] == [0]
    assert [e.seq for e in reader.events(AuditQuery("i1", outcome="failure"))] == [1]
    assert [
        e.event.action for e in reader.events(AuditQuery("i1", actions=("kms.keys.read",)))
    ] == ["kms.keys.read"]
    assert [e.seq for e in reader.events(AuditQuery("i1", after_seq=0, limit=1))] == [1]
    assert [e.seq for e in reader.events(AuditQuery("i1", until_seq=1))] == [0, 1]
    assert reader.events(AuditQuery("i1", since=T0 + timedelta(seconds=1))) == []
    assert len(reader.events(AuditQuery("i1", until=T0 + timedelta(seconds=1)))) == 3
    assert reader.instance_ids() == ["i1", "i2"]
    with pytest.raises(ValueError):
        reader.events(AuditQuery("i1", limit=0))


def test_a_stale_head_is_refused(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.audit.ensure_head(AuditHeadRecord("i1", 0, genesis_hash("i1"), None, None))
        uow.commit()
    with any_store.uow() as uow:
        head = AuditHeadRecord("i1", 5, b"\x01" * 32, None, None)
        with pytest.raises(VersionConflict):
            uow.audit.append([], head, expected_next_seq=3)
            uow.commit()


def test_cursors_never_move_back(any_store: AnyStore) -> None:
    reader = LedgerReader(any_store.uow)
    assert reader.load("syslog", "i1") is None
    reader.save("syslog", "i1", 4)
    reader.save("syslog", "i1", 2)
    reader.save("file", "i1", 1)
    assert reader.load("syslog", "i1") == 4
    assert reader.load("file", "i1") == 1
    assert reader.load("syslog", "i2") is None


def test_an_unsigned_ledger_still_chains(any_store: AnyStore) -> None:
    writer = ledger(FakeClock(T0))
    with any_store.uow() as uow:
        writer.append(uow, [event("unsigned"), event("unsigned")])
        uow.commit()
    reader = LedgerReader(any_store.uow)
    assert [e.seq for e in reader.events(AuditQuery("unsigned"))] == [0, 1]
    assert reader.checkpoints("unsigned", None, None) == []


def test_concurrent_writers_never_fork_the_chain(any_store: AnyStore) -> None:
    """Group committers and change transactions write one instance at once: one chain."""
    clock = FakeClock(T0)
    writer = ledger(clock, every=10)
    # on the SQL stores one committer writes through the dedicated connection, one through units
    # of work: both lock the same head
    dedicated = getattr(any_store, "ledger_writer", None)
    committers = [
        GroupCommitter(any_store.uow, writer, max_batch=7, commit_delay=0.001),
        GroupCommitter(
            any_store.uow, writer, max_batch=5, batch=dedicated().batch if dedicated else None
        ),
    ]
    errors: list[BaseException] = []

    def through_committer(committer: GroupCommitter) -> None:
        try:
            futures = [committer.submit(event("i1")) for _ in range(40)]
            for future in futures:
                future.result(60)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def in_transactions() -> None:
        try:
            for _ in range(20):
                for attempt in range(20):
                    try:
                        with any_store.uow() as uow:
                            writer.append(uow, [event("i1", "kms.keys.rotate")])
                            uow.commit()
                        break
                    except VersionConflict:  # the in-memory store's way of saying "wait"
                        if attempt == 19:
                            raise
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=through_committer, args=(c,)) for c in committers]
    threads.append(threading.Thread(target=in_transactions))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for committer in committers:
        committer.stop()
    assert not errors, errors
    events = LedgerReader(any_store.uow).events(AuditQuery("i1", limit=10_000))
    assert [e.seq for e in events] == list(range(100))
    verified(any_store, "i1")


def test_the_dedicated_writer_stores_what_units_of_work_read(sql_store: SqlStore) -> None:
    """Rows written through SqlLedgerWriter read back through the repository unchanged."""
    clock = FakeClock(T0)
    writer = ledger(clock, every=2)
    appender = sql_store.ledger_writer()
    committer = GroupCommitter(sql_store.uow, writer, batch=appender.batch)
    try:
        written = [committer.write(event("i1")) for _ in range(5)]
    finally:
        committer.stop()
        appender.close()
    reader = LedgerReader(sql_store.uow)
    assert reader.events(AuditQuery("i1")) == written
    assert [e.event.event_time for e in reader.events(AuditQuery("i1"))] == [T0] * 5
    assert len(reader.events(AuditQuery("i1", since=T0, until=T0 + timedelta(microseconds=1)))) == 5
    head = reader.head("i1")
    assert head is not None and head.next_seq == 5 and head.checkpoint_at == T0
    assert [c.seq for c in reader.checkpoints("i1", None, None)] == [0, 2, 4]
    verified(sql_store, "i1")


def test_a_failed_batch_leaves_nothing_and_the_writer_recovers(sql_store: SqlStore) -> None:
    writer = ledger(FakeClock(T0))
    appender = sql_store.ledger_writer()
    try:
        with pytest.raises(RuntimeError), appender.batch() as target:
            writer.append(target, [event("i1")])
            raise RuntimeError("the batch fails before its commit")
        with appender.batch() as target:
            writer.append(target, [event("i1")])
    finally:
        appender.close()
    assert [e.seq for e in LedgerReader(sql_store.uow).events(AuditQuery("i1"))] == [0]
