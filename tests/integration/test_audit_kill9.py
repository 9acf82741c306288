"""A kill -9 of the server under load loses no event of any request that got a response.

A real ``kyok server --dev`` subprocess serves eight client threads (wraps, unwraps, failing
wraps of a missing key, reads and key creations: both the group-committed events and the ones
written in a change's own transaction). Each request carries its own ``Correlation-Id``. Part
way through, the server gets SIGKILL. Then, with the node reopened on the same data directory,
every request that had received a response has its event in the ledger, with the outcome the
client saw, and the ledger verifies: one unbroken chain, checkpoints signed by the instance's
audit key. Load is bounded in count and time and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kyok.audit import verify
from kyok.bootstrap import open_node
from kyok.kms.ledger import AuditQuery
from kyok.settings import Settings

pytestmark = pytest.mark.slow

API_KEY = "kyok-test-kill9-api-key-0001"
INSTANCE = "kill9-instance"
THREADS = 8
MAX_REQUESTS = 4000  # per thread, a bound that the kill always comes before
LOAD_SECONDS = 2.5


def _key_body(name: str) -> dict[str, object]:
    kind = "application/vnd.ibm.kms.key+json"
    return {
        "metadata": {"collectionType": kind, "collectionTotal": 1},
        "resources": [{"type": kind, "name": name}],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
    env |= {
        "KYOK_DEV_INSTANCE_ID": INSTANCE,
        "KYOK_DEV_API_KEY": API_KEY,
        "KYOK_AUDIT_CHECKPOINT_EVERY_EVENTS": "50",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "kyok.cli.main", "server", "--dev"),
            *("--data-dir", str(data), "--port", str(port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.1)


def test_kill_9_under_load_loses_no_answered_event(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(data, port)
    try:
        token = httpx.post(
            f"{url}/identity/token",
            data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": API_KEY},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE}
        key = httpx.post(
            f"{url}/api/v2/keys",
            headers=headers,
            json=_key_body("k9-key"),
        ).json()["resources"][0]["id"]
        plaintext = base64.b64encode(os.urandom(32)).decode()
        ciphertext = httpx.post(
            f"{url}/api/v2/keys/{key}/actions/wrap", headers=headers, json={"plaintext": plaintext}
        ).json()["ciphertext"]

        answered: dict[str, int] = {}  # correlation id -> status the client saw
        lock = threading.Lock()
        stop = threading.Event()

        def load(n: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
                for i in range(MAX_REQUESTS):
                    if stop.is_set():
                        return
                    cid = f"k9-{n}-{i}"
                    kind = i % 10
                    try:
                        if kind == 0:
                            r = client.post(
                                "/api/v2/keys/no-such-key/actions/wrap",
                                json={"plaintext": plaintext},
                                headers={"Correlation-Id": cid},
                            )
                        elif kind == 1:
                            r = client.post(
                                f"/api/v2/keys/{key}/actions/unwrap",
                                json={"ciphertext": ciphertext},
                                headers={"Correlation-Id": cid},
                            )
                        elif kind == 2:
                            r = client.get(
                                f"/api/v2/keys/{key}/metadata", headers={"Correlation-Id": cid}
                            )
                        elif kind == 3 and n < 2:
                            r = client.post(
                                "/api/v2/keys",
                                json=_key_body(cid),
                                headers={"Correlation-Id": cid},
                            )
                        else:
                            r = client.post(
                                f"/api/v2/keys/{key}/actions/wrap",
                                json={"plaintext": plaintext},
                                headers={"Correlation-Id": cid},
                            )
                    except httpx.TransportError:
                        return  # the server is gone: this request got no answer
                    with lock:
                        answered[cid] = r.status_code

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

    assert len(answered) > 100, "the load did not get going before the kill"
    assert {s for s in answered.values()} <= {200, 201, 404}, set(answered.values())

    node = open_node(Settings(data_dir=data, seal="dev"))
    try:
        events = []
        after: int | None = None
        while True:
            page = node.audit_reader.events(AuditQuery(INSTANCE, after_seq=after, limit=10_000))
            events.extend(page)
            if len(page) < 10_000:
                break
            after = page[-1].seq
        checkpoints = node.audit_reader.checkpoints(INSTANCE, None, None, limit=10_000)
        key_pub = node.audit_key(INSTANCE)
    finally:
        node.close()

    by_correlation = {e.event.correlation_id: e.event for e in events if e.event.correlation_id}
    missing = [cid for cid in answered if cid not in by_correlation]
    assert not missing, f"{len(missing)} answered requests have no event, e.g. {missing[:5]}"
    for cid, status in answered.items():
        event = by_correlation[cid]
        assert event.outcome == ("success" if status < 400 else "failure"), (cid, event)
        if status == 404:
            assert event.reason_code == "KEY_NOT_FOUND_ERR"
    assert [e.seq for e in events] == list(range(len(events)))
    items = sorted(
        [*events, *checkpoints], key=lambda x: (x.seq, 1 if hasattr(x, "signature") else 0)
    )
    assert key_pub is not None
    report = verify(items, key_pub, instance_id=INSTANCE, allow_unsigned_tail=True)
    assert report.ok, report.first_problem
    assert checkpoints, "no checkpoint was signed under load"
