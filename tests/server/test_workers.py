"""``kyok server --workers 2``: one node, two processes, unsealed once.

A real supervisor and two real worker processes on one listening socket, over SQLite, with an
instance under the shares seal (nothing on disk can unseal it). The custodians' parts reach
whichever worker accepts the connection; the node must end up unsealed in every worker, stay
so when a worker is killed and restarted, and a disabled key must be refused by every worker as
soon as the disable call returns.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ceremony_kit import Custodian, ceremony, command, imprint, load, make_custodians
from kyok.audit.verify import verify
from kyok.auth.principals import SYSTEM
from kyok.auth.service import open_admin_credential
from kyok.bootstrap import open_node
from kyok.crypto.encoding import b64e
from kyok.crypto.kem import HybridPrivateKey, HybridPublicKey
from kyok.kms.ledger import AuditQuery
from kyok.settings import Settings
from kyok.unit.commands import Command
from kyok.unit.transport import load_part_command

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Prepared:
    instance: str
    api_key: str
    custodians: list[Custodian]
    key_id: str
    dek: bytes
    ciphertext: str


def _prepare(data: Path) -> Prepared:
    """A shares-sealed instance with a master key, an administrator, a key and a wrapped DEK,
    made in-process; closing the node seals it (nothing on disk can unseal it)."""
    settings = Settings.load(env={}, overrides={"data_dir": data, "seal": "shares"})
    with open_node(settings) as node:
        instance = node.service.create_instance(SYSTEM, "prod", seal="shares").id
        unit = node.units.for_instance(instance)
        custodians = make_custodians(3)
        imprint(unit, custodians, 2, 2)
        ceremony(unit, custodians, "shamir", 2, custodians[:2])
        requester = HybridPrivateKey.generate()
        args = {"principal": "ops", "recipient": b64e(requester.public_key().to_bytes())}
        cmd = command(unit, Command.AUTHORIZE_ADMIN, args, custodians[:2])
        unit.submit(cmd)
        _principal, sealed = node.auth.authorized_admin(instance, cmd.seq)  # type: ignore[attr-defined]
        api_key = open_admin_credential(requester, sealed, instance, cmd.seq)
        key = node.service.create_key(SYSTEM, instance, "root")
        wrapped = node.service.wrap(instance, key.record.id)
        assert wrapped.dek is not None
        return Prepared(
            instance,
            api_key,
            custodians,
            key.record.id,
            wrapped.dek,
            base64.b64encode(wrapped.ciphertext).decode(),
        )


class Node:
    """``kyok server --workers 2`` as a subprocess."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
        env.update(
            KYOK_DATA_DIR=str(data),
            KYOK_SEAL="shares",
            KYOK_PORT=self.url.rsplit(":", 1)[1],
            KYOK_SCHEDULER_INTERVAL="0s",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kyok.cli.main", "server", "--workers", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.health_of_both()

    def health(self) -> dict[str, object]:
        """One /health answer on a fresh connection (so either worker may take it)."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            body: dict[str, object] = client.get("/health").json()
            return body

    def health_of_both(self, deadline: float = 60) -> dict[int, dict[str, object]]:
        """/health of each worker (fresh connections until both answered)."""
        seen: dict[int, dict[str, object]] = {}
        end = time.monotonic() + deadline
        while len(seen) < 2:
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < end, f"saw only workers {sorted(seen)}"
            try:
                body = self.health()
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            seen[int(body["worker"])] = body  # type: ignore[call-overload]
        return seen

    def workers(self) -> list[int]:
        """The worker processes' pids (children of the supervisor)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(entry.name))
        return pids

    def output(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stdout.read() if self.proc.stdout else ""

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    return _prepare(tmp_path / "data")


@pytest.fixture
def node(tmp_path: Path, prepared: Prepared) -> Iterator[Node]:
    running = Node(tmp_path / "data")
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.stop()


def _headers(node: Node, prepared: Prepared) -> dict[str, str]:
    token = httpx.post(
        node.url + "/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": prepared.api_key},
        timeout=10,
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}", "Bluemix-Instance": prepared.instance}


def _load_part(node: Node, prepared: Prepared, custodian: Custodian) -> dict[str, object]:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        status = client.get("/api/v2/kyok/unit", headers={"Bluemix-Instance": prepared.instance})
        assert status.status_code == 200, status.text
        unit = status.json()
        cmd, sealed = load_part_command(
            unit_id=unit["unitId"],
            seq=unit["seq"],
            register="current",
            part=custodian.part,
            transport=HybridPublicKey.from_bytes(base64.b64decode(unit["transportKey"])),
        )
        body = {**cmd.signed_by(custodian.key).to_json(), "sealedPart": b64e(sealed)}
        answer = client.post(
            "/api/v2/kyok/unit/commands",
            headers={"Bluemix-Instance": prepared.instance},
            json=body,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        return result


ANSWERED: dict[str, int] = {}  # correlation id -> status, of every call _per_worker made


def _reader_token(node: Node, prepared: Prepared, admin: dict[str, str]) -> tuple[str, str]:
    """A new principal with the Reader role: (its access token, its id)."""
    base = node.url + "/api/v2/kyok/principals"
    made = httpx.post(base, json={"name": "auditor", "kind": "user"}, headers=admin, timeout=10)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    role = {"role": "Reader", "scope": "instance"}
    assert httpx.post(f"{base}/{pid}/roles", json=role, headers=admin, timeout=10).is_success
    key = httpx.post(f"{base}/{pid}/apikeys", json={"name": "k"}, headers=admin, timeout=10)
    token = httpx.post(
        node.url + "/identity/token",
        data={
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
            "apikey": key.json()["apikey"],
        },
        timeout=10,
    ).json()["access_token"]
    return str(token), str(pid)


def _per_worker(
    node: Node,
    prepared: Prepared,
    path: str,
    body: dict[str, object],
    tries: int = 40,
    *,
    method: str = "POST",
    token: tuple[str, str] | None = None,
    answered: dict[str, int] | None = None,
) -> dict[int, list[int]]:
    """POST ``path`` on ``tries`` fresh connections; the statuses by the worker that answered
    (each connection asks /health first, then makes the call on the same connection)."""
    headers = _headers(node, prepared)
    if token is not None:
        headers = {**headers, "Authorization": f"Bearer {token[0]}"}
    seen: dict[int, list[int]] = {}
    for _ in range(tries):
        with httpx.Client(base_url=node.url, timeout=10) as client:
            worker = int(client.get("/health").json()["worker"])
            correlation = str(uuid.uuid4())
            status = client.request(
                method,
                path,
                headers={**headers, "Correlation-Id": correlation},
                json=body if method == "POST" else None,
            ).status_code
            (ANSWERED if answered is None else answered)[correlation] = status
            seen.setdefault(worker, []).append(status)
    return seen


def test_custodians_unseal_a_two_worker_node_once(node: Node, prepared: Prepared) -> None:
    before = node.health_of_both()
    assert {w: b["status"] for w, b in before.items()} == {0: "sealed", 1: "sealed"}

    _load_part(node, prepared, prepared.custodians[2])
    _load_part(node, prepared, prepared.custodians[0])

    after = node.health_of_both()
    assert {w: b["status"] for w, b in after.items()} == {0: "ok", 1: "ok"}
    unwrap = f"/api/v2/keys/{prepared.key_id}/actions/unwrap"
    seen = _per_worker(node, prepared, unwrap, {"ciphertext": prepared.ciphertext})
    assert set(seen) == {0, 1} and all(s == 200 for codes in seen.values() for s in codes), seen

    # A worker killed outright comes back unsealed: the supervisor hands it the node's keys.
    for pid in node.workers():
        os.kill(pid, signal.SIGKILL)
    again = node.health_of_both()
    assert {w: b["status"] for w, b in again.items()} == {0: "ok", 1: "ok"}

    # Once a disable returns, no worker wraps with the key any more (though each had it cached).
    seen = _per_worker(node, prepared, unwrap, {"ciphertext": prepared.ciphertext}, tries=20)
    assert set(seen) == {0, 1} and all(s == 200 for codes in seen.values() for s in codes), seen
    headers = _headers(node, prepared)
    disabled = httpx.post(
        node.url + f"/api/v2/keys/{prepared.key_id}/actions/disable", headers=headers, timeout=10
    )
    assert disabled.status_code == 204, disabled.text
    wrap = f"/api/v2/keys/{prepared.key_id}/actions/wrap"
    seen = _per_worker(node, prepared, wrap, {})
    assert set(seen) == {0, 1} and all(s == 409 for codes in seen.values() for s in codes), seen
    # Once a principal's deletion returns, no worker honours its token (cached grants or not).
    reader = _reader_token(node, prepared, headers)
    seen = _per_worker(node, prepared, "/api/v2/keys", {}, tries=20, method="GET", token=reader)
    assert set(seen) == {0, 1} and all(s == 200 for codes in seen.values() for s in codes), seen
    deleted = httpx.delete(
        node.url + f"/api/v2/kyok/principals/{reader[1]}", headers=headers, timeout=10
    )
    assert deleted.status_code == 204, deleted.text
    seen = _per_worker(node, prepared, "/api/v2/keys", {}, method="GET", token=reader)
    assert set(seen) == {0, 1} and all(s == 401 for codes in seen.values() for s in codes), seen
    node.stop()
    assert not node.workers()
    _every_call_is_on_one_verified_chain(node.data, prepared)


def _ledger_writer(node: Node) -> int:
    """The pid of the node's ledger writer (the child started without a listening socket)."""
    for pid in node.workers():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        fds = next((v for v in environ if v.startswith(b"KYOK_WORKER_FDS=")), b"")
        if fds.split(b":")[1:2] == [b"-"]:
            return pid
    raise AssertionError("no ledger writer among the node's processes")


def test_a_killed_ledger_writer_is_replaced_and_every_answered_call_is_on_the_record(
    node: Node, prepared: Prepared
) -> None:
    _load_part(node, prepared, prepared.custodians[0])
    _load_part(node, prepared, prepared.custodians[1])
    wrap = f"/api/v2/keys/{prepared.key_id}/actions/wrap"
    answered: dict[str, int] = {}
    seen = _per_worker(node, prepared, wrap, {}, tries=10, answered=answered)
    assert all(s == 200 for codes in seen.values() for s in codes), seen
    writer = _ledger_writer(node)
    os.kill(writer, signal.SIGKILL)
    # Calls go on: while no writer takes events a call waits (or, after 5 s, is refused with
    # 503); a new writer is started and takes over.
    deadline = time.monotonic() + 60
    while True:
        seen = _per_worker(node, prepared, wrap, {}, tries=10, answered=answered)
        if set(seen) == {0, 1} and all(s == 200 for codes in seen.values() for s in codes):
            break
        assert all(s in (200, 503) for codes in seen.values() for s in codes), seen
        assert time.monotonic() < deadline, seen
    assert _ledger_writer(node) != writer
    node.stop()
    on_record = _every_call_is_on_one_verified_chain(node.data, prepared, answered)
    assert sum(1 for c, s in answered.items() if s == 200 and c in on_record) >= 20


def _every_call_is_on_one_verified_chain(
    data: Path, prepared: Prepared, answered: dict[str, int] | None = None
) -> set[str]:
    """Both workers' events went through the node's ledger writer into one chain that
    verifies, and every answered call (``answered``, default: every call ``_per_worker``
    made) is on it with its outcome; a call refused because the ledger could not take its
    event (503) may or may not be. Returns the correlation ids on the record."""
    settings = Settings.load(env={}, overrides={"data_dir": data, "seal": "shares"})
    with open_node(settings) as again:
        unit = again.units.for_instance(prepared.instance)
        load(unit, prepared.custodians[0], "current")
        load(unit, prepared.custodians[1], "current")
        events = again.audit_reader.events(AuditQuery(prepared.instance, limit=10_000))
        checkpoints = again.audit_reader.checkpoints(prepared.instance, None, None, limit=10_000)
        public = again.audit_key(prepared.instance)
    by_correlation = {e.event.correlation_id: e.event for e in events if e.event.correlation_id}
    calls = ANSWERED if answered is None else answered
    kept = {c: status for c, status in calls.items() if status != 503}
    assert kept and all(c in by_correlation for c in kept)
    for correlation, status in kept.items():
        event = by_correlation[correlation]
        assert event.outcome == ("success" if status < 400 else "failure"), event
    assert [e.seq for e in events] == list(range(len(events)))
    items = sorted(
        [*events, *checkpoints], key=lambda x: (x.seq, 1 if hasattr(x, "signature") else 0)
    )
    assert public is not None
    report = verify(items, public, instance_id=prepared.instance, allow_unsigned_tail=True)
    assert report.ok, report.first_problem
    return set(by_correlation)
