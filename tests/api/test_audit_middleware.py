"""Every API call on the ledger, before its answer; fail closed, or open for wrap/unwrap only.

Against a real dev server (uvicorn, SQLite): each call adds exactly one event with the outcome
and reason the client saw; failed sign-ins and unknown instances are recorded too; no event
holds a plaintext, a ciphertext or a token. A ledger that cannot be written (an SQLite trigger
refuses inserts) makes every call 503 and changes nothing, unless the instance chose to fail
open, which lets wrap/unwrap through and writes their events once the ledger is back.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from kyok.kms.ledger import SYSTEM_LEDGER, AuditQuery
from live_server import LiveServer, dev_server

KIND = "application/vnd.ibm.kms.key+json"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("audit-mw")) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        token = c.post(
            "/identity/token",
            data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": srv.api_key},
        ).json()["access_token"]
        c.headers.update({"Authorization": f"Bearer {token}", "Bluemix-Instance": srv.instance_id})
        yield c


def events(srv: LiveServer, instance: str | None = None) -> list[Any]:
    return srv.node.audit_reader.events(AuditQuery(instance or srv.instance_id, limit=10_000))


def new_key(client: httpx.Client, name: str) -> str:
    body = {
        "metadata": {"collectionType": KIND, "collectionTotal": 1},
        "resources": [{"type": KIND, "name": name}],
    }
    response = client.post("/api/v2/keys", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["resources"][0]["id"])


def test_each_call_is_one_event_with_what_the_client_saw(
    srv: LiveServer, client: httpx.Client
) -> None:
    key = new_key(client, "mw-key")
    plaintext = base64.b64encode(os.urandom(32)).decode()
    start = len(events(srv))
    calls = [
        ("POST", f"/api/v2/keys/{key}/actions/wrap", {"plaintext": plaintext}, {}, 200),
        ("POST", f"/api/v2/keys/{key}/actions/wrap", {"plaintext": "***"}, {}, 400),
        ("GET", f"/api/v2/keys/{key}/metadata", None, {}, 200),
        ("GET", "/api/v2/keys/no-such-key", None, {}, 404),
        ("GET", "/api/v2/keys", None, {"Authorization": "Bearer not-a-token"}, 401),
        ("POST", f"/api/v2/keys/{key}?action=disable", None, {}, 204),
        ("POST", f"/api/v2/keys/{key}/actions/wrap", {"plaintext": plaintext}, {}, 409),
    ]
    for i, (method, url, body, headers, status) in enumerate(calls):
        r = client.request(method, url, json=body, headers={**headers, "Correlation-Id": f"mw-{i}"})
        assert r.status_code == status, (url, r.text)
    recorded = events(srv)[start:]
    assert [e.event.correlation_id for e in recorded] == [f"mw-{i}" for i in range(len(calls))]
    outcomes = [
        (e.event.action, e.event.outcome, e.event.status, e.event.reason_code) for e in recorded
    ]
    assert outcomes[0] == ("kms.secrets.wrap", "success", 200, None)
    assert outcomes[1][:3] == ("kms.secrets.wrap", "failure", 400)
    assert outcomes[2] == ("kms.keys.read-metadata", "success", 200, None)
    assert outcomes[3] == ("kms.keys.read", "failure", 404, "KEY_NOT_FOUND_ERR")
    assert outcomes[4][1:3] == ("failure", 401)
    assert recorded[4].event.initiator.id == "anonymous"
    assert outcomes[5][:2] == ("kms.keys.disable", "success")  # written with the change
    assert outcomes[6][:3] == ("kms.secrets.wrap", "failure", 409)
    assert [e.event.target.id for e in recorded] == [key] * 3 + ["no-such-key", srv.instance_id] + [
        key
    ] * 2
    assert recorded[4].event.action == "kms.keys.list"
    assert recorded[0].event.initiator.id != "anonymous"
    assert recorded[0].event.initiator.credential == "token"
    assert recorded[0].event.initiator.address == "127.0.0.1"


def test_no_secret_reaches_an_event(srv: LiveServer, client: httpx.Client) -> None:
    key = new_key(client, "mw-secret")
    plaintext = base64.b64encode(os.urandom(32)).decode()
    wrapped = client.post(f"/api/v2/keys/{key}/actions/wrap", json={"plaintext": plaintext}).json()
    client.post(f"/api/v2/keys/{key}/actions/unwrap", json={"ciphertext": wrapped["ciphertext"]})
    token = client.headers["Authorization"].split()[1]
    bodies = " ".join(e.event.canonical_bytes().decode() for e in events(srv))
    for secret in (plaintext, wrapped["ciphertext"], token, srv.api_key):
        assert secret not in bodies


def test_unknown_instances_and_bad_api_keys_go_to_the_system_ledger(
    srv: LiveServer, client: httpx.Client
) -> None:
    before = len(events(srv, SYSTEM_LEDGER))
    r = client.get(
        "/api/v2/keys", headers={"Bluemix-Instance": "no-such-instance", "Correlation-Id": "sys-1"}
    )
    assert r.status_code == 401
    r = httpx.post(
        f"{srv.url}/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "wrong"},
        headers={"Correlation-Id": "sys-2"},
    )
    assert r.status_code == 400
    recorded = events(srv, SYSTEM_LEDGER)[before:]
    assert [e.event.correlation_id for e in recorded] == ["sys-1", "sys-2"]
    assert all(e.event.outcome == "failure" for e in recorded)
    assert recorded[1].event.action == "iam.tokens.create"


def _break_ledger(srv: LiveServer) -> None:
    with srv.node.store.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'ledger disk full'); END"
            )
        )


def _mend_ledger(srv: LiveServer) -> None:
    with srv.node.store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_audit"))


def test_fail_closed_then_fail_open_for_wrap_only(srv: LiveServer, client: httpx.Client) -> None:
    key = new_key(client, "mw-closed")
    plaintext = base64.b64encode(os.urandom(32)).decode()
    _break_ledger(srv)
    try:
        r = client.post(f"/api/v2/keys/{key}/actions/wrap", json={"plaintext": plaintext})
        assert r.status_code == 503
        assert "AUDIT_UNAVAILABLE_ERR" in r.text
        body = {
            "metadata": {"collectionType": KIND, "collectionTotal": 1},
            "resources": [{"type": KIND, "name": "mw-never"}],
        }
        r = client.post("/api/v2/keys", json=body)
        assert r.status_code == 503
    finally:
        _mend_ledger(srv)
    listed = client.get("/api/v2/keys", params={"limit": 5000}).json().get("resources", [])
    assert all(k["name"] != "mw-never" for k in listed), "a refused change was committed"

    r = client.put("/api/v2/kyok/audit/settings", json={"failOpen": True})
    assert r.status_code == 200 and r.json()["failOpen"] is True
    assert events(srv)[-1].event.action == "audit.settings.write"
    assert ("failOpen", "true") in events(srv)[-1].event.detail
    time.sleep(1.1)  # the setting is cached for a second
    _break_ledger(srv)
    try:
        r = client.post(
            f"/api/v2/keys/{key}/actions/wrap",
            json={"plaintext": plaintext},
            headers={"Correlation-Id": "open-1"},
        )
        assert r.status_code == 200, r.text
        assert client.get(f"/api/v2/keys/{key}/metadata").status_code == 503  # reads stay closed
        assert srv.node.audit_writer.deferred >= 1
    finally:
        _mend_ledger(srv)
    deadline = time.monotonic() + 15
    while srv.node.audit_writer.deferred and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.node.audit_writer.deferred == 0  # counts until written, so the event is there
    assert "open-1" in {e.event.correlation_id for e in events(srv)}
    r = client.put("/api/v2/kyok/audit/settings", json={"failOpen": False})
    assert r.status_code == 200 and r.json()["failOpen"] is False


@pytest.mark.parametrize(
    "body", [None, {}, {"failOpen": "yes"}, {"failOpen": True, "x": 1}, [True]]
)
def test_bad_settings_bodies_are_400(client: httpx.Client, body: object) -> None:
    r = client.put("/api/v2/kyok/audit/settings", json=body)
    assert r.status_code == 400, r.text


def test_an_unexpected_error_is_a_recorded_500(srv: LiveServer, client: httpx.Client) -> None:
    key = new_key(client, "mw-boom")

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("an unexpected bug")

    srv.node.service.get_key = boom  # type: ignore[method-assign]
    try:
        r = client.get(f"/api/v2/keys/{key}", headers={"Correlation-Id": "boom-1"})
    finally:
        del srv.node.service.get_key
    assert r.status_code == 500
    assert "unexpected bug" not in r.text
    event = events(srv)[-1].event
    assert (event.correlation_id, event.outcome, event.status) == ("boom-1", "failure", 500)
    assert event.reason_code == "INTERNAL_SERVER_ERR"


def test_a_row_edited_into_garbage_is_served_as_stored(
    srv: LiveServer, client: httpx.Client
) -> None:
    seq = events(srv)[-1].seq
    with srv.node.store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_events SET body = 'not an event' WHERE instance_id = :i AND seq = :s"
            ),
            {"i": srv.instance_id, "s": seq},
        )
    r = client.get("/api/v2/kyok/audit/events", params={"afterSeq": seq - 1, "limit": 1})
    assert r.status_code == 200, r.text
    served = r.json()["events"][0]
    assert served["seq"] == seq and served["unparsable"] == "not an event"
