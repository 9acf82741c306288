"""A server configured with ``audit.jsonl_path`` copies its whole ledger into that file.

A real dev server (SQLite, uvicorn on 127.0.0.1) with the JSONL forwarder: after a token, a key,
wraps and a failed wrap, the file holds exactly the ledger's events, in order, each line the
chained event as the ledger holds it (its hash checks out), owner-only (0600). A stopped and
restarted forwarder goes on from its cursor: nothing twice, nothing missing.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path

import httpx

from kyok.audit import ChainedEvent
from kyok.kms.ledger import AuditQuery
from live_server import dev_server


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _lines(path: Path) -> list[ChainedEvent]:
    if not path.exists():
        return []
    return [ChainedEvent.from_json(json.loads(line)) for line in path.read_text().splitlines()]


def test_jsonl_sink_holds_the_ledger(tmp_path: Path) -> None:
    out = tmp_path / "audit" / "kyok-audit.jsonl"
    out.parent.mkdir()
    with dev_server(tmp_path / "data", **{"audit.jsonl_path": out}) as srv:
        node = srv.node
        node.start_forwarders()
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            token = c.post(
                "/identity/token",
                data={
                    "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
                    "apikey": srv.api_key,
                },
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": srv.instance_id}
            kind = "application/vnd.ibm.kms.key+json"
            key = c.post(
                "/api/v2/keys",
                headers=headers,
                json={
                    "metadata": {"collectionType": kind, "collectionTotal": 1},
                    "resources": [{"type": kind, "name": "sink-key"}],
                },
            ).json()["resources"][0]["id"]
            body = {"plaintext": base64.b64encode(os.urandom(32)).decode()}
            for _ in range(5):
                assert (
                    c.post(
                        f"/api/v2/keys/{key}/actions/wrap", headers=headers, json=body
                    ).status_code
                    == 200
                )
            assert (
                c.post("/api/v2/keys/missing/actions/wrap", headers=headers, json=body).status_code
                == 404
            )

        def ledger() -> list[ChainedEvent]:
            return node.audit_reader.events(AuditQuery(srv.instance_id, limit=10_000))

        _wait_for(
            lambda: (
                [e.seq for e in _lines(out) if e.event.instance_id == srv.instance_id]
                == [e.seq for e in ledger()]
            )
        )
        copied = [e for e in _lines(out) if e.event.instance_id == srv.instance_id]
        assert copied == ledger()
        assert all(e.hash_ok() for e in copied)
        actions = [e.event.action for e in copied]
        assert actions.count("kms.secrets.wrap") == 6
        assert copied[-1].event.outcome == "failure"
        assert copied[-1].event.reason_code == "KEY_NOT_FOUND_ERR"
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

        # stop the forwarder, make more events, start a new one: it resumes at its cursor
        for forwarder in node.forwarders:
            forwarder.stop()
        before = len(_lines(out))
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for _ in range(3):
                c.get(f"/api/v2/keys/{key}/metadata", headers=headers)
        assert len(_lines(out)) == before
        node.start_forwarders()
        _wait_for(
            lambda: (
                [e.seq for e in _lines(out) if e.event.instance_id == srv.instance_id]
                == [e.seq for e in ledger()]
            )
        )
        seqs = [e.seq for e in _lines(out) if e.event.instance_id == srv.instance_id]
        assert seqs == list(range(len(seqs)))  # nothing twice, nothing missing
