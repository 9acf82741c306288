"""Concurrent key creations share one transaction (``KeyService._create_batch``): every key of
a batch is checked as it would be on its own (seeing the batch's earlier keys), a refused key
fails only its own caller, and anything else that goes wrong (the ledger, the store) makes each
key of the batch go again in a transaction of its own, so one key's trouble never fails
another. Run on the in-memory store and on SQLite (the raw multi-row inserts and the
buffered ledger appends), with the real ledger where the chain matters."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kyok.audit import verify
from kyok.auth.principals import Principal
from kyok.clock import FakeClock
from kyok.kms import validation as v
from kyok.kms.errors import AliasExists, AliasLimitExceeded, KeyRingNotFound
from kyok.kms.events import KmsEvent
from kyok.kms.keys import KeyView
from kyok.kms.ledger import AuditQuery, Ledger, LedgerReader, LedgerSink, unit_signers
from kyok.kms.service import KeyService
from kyok.store.ports import UnitOfWork
from kyok.store.records import KeyQuery

from .conftest import RealUnits, UnitsHarness

THREADS = 8


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class GatedSink:
    """Records events like the ledger sink would (in the change's unit of work); the first
    call waits for ``gate``, so that callers arriving meanwhile queue for the next batch.
    ``fail_rings`` makes the event of a key in such a key ring fail (a broken ledger)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        # (unit of work, key id); the units of work are kept, so their ids stay unique
        self.calls: list[tuple[object, str]] = []
        self.fail_rings: set[str] = set()
        self._first = True
        self._lock = threading.Lock()

    def record(self, uow: UnitOfWork, event: KmsEvent) -> None:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.entered.set()
            assert self.gate.wait(10)
        if dict(event.detail).get("key_ring_id") in self.fail_rings:
            raise OSError("ledger down")
        with self._lock:
            self.calls.append((uow, event.resource_id))


def run_concurrently(first: Callable[[], Any], rest: list[Callable[[], Any]], sink: GatedSink,
                     service: KeyService) -> tuple[Any, list[Any]]:  # fmt: skip
    """Start ``first``; once it holds its batch open, start ``rest`` and wait until they are
    all queued behind it; let the batch go; return every outcome (value or exception)."""
    out: dict[int, Any] = {}

    def call(i: int, fn: Callable[[], Any]) -> None:
        try:
            out[i] = fn()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=call, args=(0, first))]
    threads[0].start()
    assert sink.entered.wait(10)
    threads += [threading.Thread(target=call, args=(i + 1, fn)) for i, fn in enumerate(rest)]
    for t in threads[1:]:
        t.start()
    for _ in range(2000):
        if len(service._creations._queue) >= len(rest):
            break
        threading.Event().wait(0.005)
    sink.gate.set()
    for t in threads:
        t.join(30)
    return out[0], [out[i + 1] for i in range(len(rest))]


@pytest.fixture
def gated(store: Any, units: UnitsHarness, clock: FakeClock) -> tuple[KeyService, GatedSink]:
    sink = GatedSink()
    return KeyService(store.uow, units.directory, clock, audit=sink), sink


def count_keys(service: KeyService, instance: str) -> int:
    return service.list_keys(KeyQuery(instance, limit=1000))[1]


def test_concurrent_creations_share_one_transaction(gated, actor) -> None:
    service, sink = gated
    sink.gate.set()
    inst = service.create_instance(actor, "i").id
    sink.gate.clear()
    sink.entered.clear()
    sink._first = True
    first, rest = run_concurrently(
        lambda: service.create_key(actor, inst, "k-0"),
        [lambda n=n: service.create_key(actor, inst, f"k-{n}") for n in range(1, THREADS + 1)],
        sink,
        service,
    )
    views = [first, *rest]
    assert all(isinstance(view, KeyView) for view in views), views
    assert len({view.id for view in views}) == THREADS + 1
    for view in views:
        assert service.get_key(inst, view.id).record.name == view.record.name
    # The first key went alone; the eight that queued behind it shared one unit of work.
    key_ids = {view.id for view in rest}
    batches = {id(uow) for uow, key_id in sink.calls if key_id in key_ids}
    assert len(batches) == 1
    assert count_keys(service, inst) == THREADS + 1


def test_a_refused_key_fails_only_its_caller(gated, actor) -> None:
    service, sink = gated
    sink.gate.set()
    inst = service.create_instance(actor, "i").id
    sink.gate.clear()
    sink.entered.clear()
    sink._first = True
    first, rest = run_concurrently(
        lambda: service.create_key(actor, inst, "k-0"),
        [
            lambda: service.create_key(actor, inst, "k-1"),
            lambda: service.create_key(actor, inst, "k-2", key_ring_id="no-such-ring"),
            lambda: service.create_key(actor, inst, "k-3", aliases=["shared"]),
            lambda: service.create_key(actor, inst, "k-4", aliases=["shared"]),
            lambda: service.create_key(actor, inst, "k-5"),
        ],
        sink,
        service,
    )
    assert isinstance(first, KeyView)
    assert isinstance(rest[0], KeyView) and isinstance(rest[4], KeyView)
    assert isinstance(rest[1], KeyRingNotFound)
    # Two keys of one batch asked for one alias: the first in the batch has it.
    with_alias = [r for r in rest[2:4] if isinstance(r, KeyView)]
    refused = [r for r in rest[2:4] if isinstance(r, AliasExists)]
    assert len(with_alias) == 1 and len(refused) == 1
    assert service.get_key(inst, "shared").id == with_alias[0].id
    assert count_keys(service, inst) == 4  # k-0, k-1, one of k-3/k-4, k-5


def test_the_alias_limit_counts_the_batchs_own_aliases(gated, actor, monkeypatch) -> None:
    service, sink = gated
    sink.gate.set()
    inst = service.create_instance(actor, "i").id
    service.create_key(actor, inst, "k-a", aliases=["a1"])
    monkeypatch.setattr(v, "ALIASES_PER_INSTANCE", 3)
    sink.gate.clear()
    sink.entered.clear()
    sink._first = True
    first, rest = run_concurrently(
        lambda: service.create_key(actor, inst, "k-0"),
        [
            lambda: service.create_key(actor, inst, "k-1", aliases=["b1"]),
            lambda: service.create_key(actor, inst, "k-2", aliases=["c1"]),
            lambda: service.create_key(actor, inst, "k-3", aliases=["d1"]),
        ],
        sink,
        service,
    )
    assert isinstance(first, KeyView)
    assert sum(isinstance(r, KeyView) for r in rest) == 2
    assert sum(isinstance(r, AliasLimitExceeded) for r in rest) == 1


def test_a_broken_ledger_for_one_key_fails_only_that_key(gated, actor) -> None:
    service, sink = gated
    sink.gate.set()
    inst = service.create_instance(actor, "i").id
    service.create_key_ring(actor, inst, "doomed")
    sink.fail_rings.add("doomed")  # the ledger refuses the event of a key in this ring
    sink.gate.clear()
    sink.entered.clear()
    sink._first = True
    first, rest = run_concurrently(
        lambda: service.create_key(actor, inst, "k-0"),
        [lambda n=n: service.create_key(actor, inst, f"k-{n}") for n in range(1, 4)]
        + [lambda: service.create_key(actor, inst, "k-doomed", key_ring_id="doomed")],
        sink,
        service,
    )
    assert isinstance(first, KeyView)
    assert all(isinstance(r, KeyView) for r in rest[:3]), rest
    assert isinstance(rest[3], OSError)  # the sink's own error, as without batching
    names = {k.record.name for k in service.list_keys(KeyQuery(inst, limit=100))[0]}
    assert names == {"k-0", "k-1", "k-2", "k-3"}
    # The batch was given up and each of its keys went again on its own.
    by_uow: dict[int, set[str]] = {}
    for uow, key_id in sink.calls:
        by_uow.setdefault(id(uow), set()).add(key_id)
    for view in rest[:3]:
        assert {view.id} in by_uow.values()


def test_create_key_async_from_an_event_loop(service, actor, instance) -> None:
    async def main() -> list[KeyView]:
        return list(
            await asyncio.gather(
                *(service.create_key_async(actor, instance, f"k-{n}") for n in range(12))
            )
        )

    views = asyncio.run(main())
    assert sorted(view.record.name for view in views) == sorted(f"k-{n}" for n in range(12))
    assert count_keys(service, instance) == 12


def test_create_key_async_refusal(service, actor, instance) -> None:
    async def main() -> None:
        await service.create_key_async(actor, instance, "k-1", key_ring_id="nope")

    with pytest.raises(KeyRingNotFound):
        asyncio.run(main())


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_batched_keys_and_their_events_form_one_verifiable_chain(
    store: Any, tmp_path: Path, clock: FakeClock, actor: Principal
) -> None:
    units = RealUnits(store.units, tmp_path / "data", clock)
    ledger = Ledger(unit_signers(units.directory), clock)
    service = KeyService(store.uow, units.directory, clock, audit=LedgerSink(ledger))
    inst = service.create_instance(actor, "i").id
    ledger.load_key(inst)
    barrier = threading.Barrier(THREADS)
    views: list[KeyView] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        barrier.wait(10)
        for i in range(5):
            view = service.create_key(actor, inst, f"k-{n}-{i}")
            with lock:
                views.append(view)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(views) == THREADS * 5
    events = LedgerReader(store.uow).events(AuditQuery(inst, limit=1000))
    created = [e for e in events if e.event.action == "kms.keys.create"]
    assert sorted(e.event.target.id for e in created) == sorted(view.id for view in views)
    assert [e.seq for e in events] == list(range(len(events)))
    key = units.directory.for_instance(inst).audit_public_key()
    checkpoints = LedgerReader(store.uow).checkpoints(inst, None, None)
    items = sorted([*events, *checkpoints], key=lambda x: (x.seq, hasattr(x, "signature")))
    report = verify(items, key, instance_id=inst, allow_unsigned_tail=True)
    assert report.ok, report.first_problem
    for view in views[:3]:  # the sealed material of a batched key opens
        assert service.wrap(inst, view.id, b"\x01" * 32).ciphertext
