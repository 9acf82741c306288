"""A kill -9 of the server while many clients create keys loses no acknowledged key.

Key creations share transactions (group commit: ``kyok.kms.shared_commit``). A real
``kyok server --dev`` subprocess serves sixteen client threads that only create keys, each
with its own name and ``Correlation-Id``. Part way through, the server gets SIGKILL. Then,
with the node reopened on the same data directory:

* every key a client got a 201 for is in the store, with the name it asked for;
* every key of the load in the store has exactly one ``kms.keys.create`` event, naming it (a
  key and its event commit together or not at all), and the keys nobody heard about are at
  most the requests that were in flight;
* the ledger verifies (one unbroken chain, checkpoints signed by the instance's audit key);
* the sealed material of the keys opens: they wrap and unwrap.

Load is bounded in count and time and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from kyok.audit import verify
from kyok.bootstrap import open_node
from kyok.kms.ledger import AuditQuery
from kyok.settings import Settings
from kyok.store.records import KeyQuery

from .test_audit_kill9 import API_KEY, INSTANCE, _free_port, _key_body, _start

pytestmark = pytest.mark.slow

THREADS = 16
MAX_REQUESTS = 4000  # per thread, a bound that the kill always comes before
LOAD_SECONDS = 2.5


def test_kill_9_while_creating_keys_loses_no_acknowledged_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(data, port)
    acknowledged: dict[str, str] = {}  # key id -> name, for every 201
    sent: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        token = httpx.post(
            f"{url}/identity/token",
            data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": API_KEY},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE}

        def load(n: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
                for i in range(MAX_REQUESTS):
                    if stop.is_set():
                        return
                    name = f"ck9-{n}-{i}"
                    with lock:
                        sent.add(name)
                    try:
                        r = client.post(
                            "/api/v2/keys", json=_key_body(name), headers={"Correlation-Id": name}
                        )
                    except httpx.TransportError:
                        return  # the server is gone: this request got no answer
                    assert r.status_code == 201, r.text
                    with lock:
                        acknowledged[r.json()["resources"][0]["id"]] = name

        threads = [threading.Thread(target=load, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    assert len(acknowledged) > 100, "the load did not get going before the kill"

    node = open_node(Settings(data_dir=data, seal="dev"))
    try:
        service = node.service
        stored = {}
        offset = 0
        while True:
            page, _total = service.list_keys(KeyQuery(INSTANCE, limit=5000, offset=offset))
            stored.update({k.id: k.record.name for k in page if k.record.name in sent})
            if len(page) < 5000:
                break
            offset += len(page)
        events = []
        after: int | None = None
        while True:
            batch = node.audit_reader.events(AuditQuery(INSTANCE, after_seq=after, limit=10_000))
            events.extend(batch)
            if len(batch) < 10_000:
                break
            after = batch[-1].seq
        checkpoints = node.audit_reader.checkpoints(INSTANCE, None, None, limit=10_000)
        audit_key = node.audit_key(INSTANCE)
        sample = sorted(acknowledged)[:: max(1, len(acknowledged) // 20)]
        for key_id in sample:
            wrapped = service.wrap(INSTANCE, key_id, b"\x07" * 32)
            assert service.unwrap(INSTANCE, key_id, wrapped.ciphertext).plaintext == b"\x07" * 32
    finally:
        node.close()

    lost = {k: n for k, n in acknowledged.items() if stored.get(k) != n}
    assert not lost, f"{len(lost)} acknowledged keys are missing, e.g. {list(lost)[:5]}"
    unheard = set(stored) - set(acknowledged)
    assert len(unheard) <= THREADS, f"{len(unheard)} keys nobody was told about"
    created = {}
    for e in events:
        if e.event.action == "kms.keys.create" and e.event.target.id in stored:
            assert e.event.target.id not in created, f"two events for {e.event.target.id}"
            created[e.event.target.id] = e.event
    assert set(created) == set(stored), "a stored key has no create event, or an event no key"
    for key_id, event in created.items():
        assert event.outcome == "success" and event.correlation_id == stored[key_id]
    assert [e.seq for e in events] == list(range(len(events)))
    items = sorted(
        [*events, *checkpoints], key=lambda x: (x.seq, 1 if hasattr(x, "signature") else 0)
    )
    assert audit_key is not None
    report = verify(items, audit_key, instance_id=INSTANCE, allow_unsigned_tail=True)
    assert report.ok, report.first_problem
