"""The SDK's audit ledger calls (``/api/v2/kyok/audit``): against the real server (a dev node
under uvicorn in a thread, one for the module), plus what goes on the wire over MockTransport.

The dev server signs a checkpoint every 5 events, so the ledger has several."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from kyok.audit import ChainedEvent, Checkpoint
from kyok.client import BadRequest, Forbidden, InvalidResponse, KyokClient, NotFound
from live_server import LiveServer, dev_server

from ._mock import Recorder


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(
        tmp_path_factory.mktemp("kyok-audit-calls"), **{"audit.checkpoint_every_events": 5}
    ) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        yield kms


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _top(kms: KyokClient) -> int:
    """The seq of the newest event now."""
    return int(kms.audit_head()["nextSeq"]) - 1


def _since(kms: KyokClient, seq: int, **filters: Any) -> list[dict[str, Any]]:
    """Every event after ``seq`` up to the head as it stands now."""
    return list(kms.iter_audit_events(after_seq=seq, until_seq=_top(kms), **filters))


def _principal(admin: KyokClient, live: LiveServer, role: str) -> tuple[str, KyokClient]:
    svc = admin.create_principal(_name(role.lower()), kind="service")
    admin.grant_role(svc.id, role)
    secret = admin.create_api_key(svc.id, "audit-test").secret
    assert secret is not None
    return svc.id, KyokClient(live.url, live.instance_id, api_key=secret)


# ---------------------------------------------------------------- events of calls


def test_the_calls_made_are_on_the_record(admin: KyokClient, live: LiveServer) -> None:
    mark = _top(admin)
    key = admin.create_key(_name("audited"))
    admin.wrap(key.id)
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound):
        admin.wrap(missing)
    me = admin.whoami().principal.id

    events = _since(admin, mark)
    by_action: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_action.setdefault(event["action"], []).append(event)
        assert event["instanceId"] == live.instance_id
        ChainedEvent.from_json(event)  # the stored shape, exactly
    created = [e for e in by_action["kms.keys.create"] if e["target"]["id"] == key.id]
    assert len(created) == 1 and created[0]["outcome"] == "success"
    assert created[0]["initiator"]["id"] == me
    wraps = by_action["kms.secrets.wrap"]
    ok = [e for e in wraps if e["target"]["id"] == key.id]
    assert len(ok) == 1 and ok[0]["outcome"] == "success" and ok[0]["reason"]["status"] == 200
    failed = [e for e in wraps if e["target"]["id"] == missing]
    assert len(failed) == 1
    assert failed[0]["outcome"] == "failure"
    assert failed[0]["reason"] == {"reasonCode": "KEY_NOT_FOUND_ERR", "status": 404}
    assert created[0]["seq"] < ok[0]["seq"] < failed[0]["seq"]
    # seqs are consecutive, and each event links to the one before
    assert [e["seq"] for e in events] == list(range(mark + 1, mark + 1 + len(events)))
    for before, after in itertools.pairwise(events):
        assert after["prevHash"] == before["hash"]


def test_filters_by_action_and_outcome(admin: KyokClient) -> None:
    mark = _top(admin)
    key = admin.create_key(_name("filtered"))
    ciphertext = admin.wrap(key.id).ciphertext
    admin.unwrap(key.id, ciphertext)
    for _ in range(2):
        with pytest.raises(NotFound):
            admin.wrap(str(uuid.uuid4()))

    wraps = _since(admin, mark, actions="kms.secrets.wrap")
    assert len(wraps) == 3 and {e["action"] for e in wraps} == {"kms.secrets.wrap"}
    both = _since(admin, mark, actions=["kms.secrets.wrap", "kms.secrets.unwrap"])
    assert len(both) == 4
    assert _since(admin, mark, actions="kms.secrets.wrap,kms.secrets.unwrap") == both
    failures = _since(admin, mark, outcome="failure")
    assert len(failures) == 2
    assert all(e["reason"]["reasonCode"] == "KEY_NOT_FOUND_ERR" for e in failures)
    assert _since(admin, mark, actions="kms.secrets.wrap", outcome="success") == [
        e for e in wraps if e["outcome"] == "success"
    ]
    assert _since(admin, mark, actions="kms.keys.purge") == []


def test_seq_bounds_and_paging(admin: KyokClient) -> None:
    for _ in range(3):
        admin.create_key(_name("page"))
    top = _top(admin)
    first = top - 6
    page = admin.audit_events(after_seq=first, until_seq=top, limit=2)
    assert page["instanceId"] == admin.instance_id
    assert [e["seq"] for e in page["events"]] == [first + 1, first + 2]
    assert page["nextAfterSeq"] == first + 2
    last = admin.audit_events(after_seq=top - 2, until_seq=top, limit=2)
    assert [e["seq"] for e in last["events"]] == [top - 1, top]
    assert last["nextAfterSeq"] == top  # a full page: the next one may be empty
    assert admin.audit_events(after_seq=top, until_seq=top)["events"] == []
    short = admin.audit_events(after_seq=top - 1, until_seq=top, limit=5)
    assert [e["seq"] for e in short["events"]] == [top] and short["nextAfterSeq"] is None

    paged = list(admin.iter_audit_events(after_seq=first, until_seq=top, page=2))
    whole = admin.audit_events(after_seq=first, until_seq=top, limit=1000)["events"]
    assert paged == whole and [e["seq"] for e in paged] == list(range(first + 1, top + 1))
    everything = list(admin.iter_audit_events(until_seq=top, page=7))
    assert [e["seq"] for e in everything] == list(range(0, top + 1))
    assert everything[0]["action"] == "kms.instances.create"
    assert everything[0]["prevHash"] == ChainedEvent.from_json(everything[0]).prev_hash.hex()


def test_time_bounds(admin: KyokClient) -> None:
    mark = _top(admin)
    admin.create_key(_name("timed"))
    events = _since(admin, mark)
    t = datetime.fromisoformat(events[0]["eventTime"])
    at = admin.audit_events(since=t, until=t + timedelta(microseconds=1), limit=1000)["events"]
    assert events[0] in at and all(e["eventTime"] == events[0]["eventTime"] for e in at)
    assert events[0] not in admin.audit_events(since=t + timedelta(microseconds=1))["events"]
    assert events[0] not in admin.audit_events(until=t, after_seq=mark)["events"]  # exclusive
    text = events[0]["eventTime"]
    assert events[0] in admin.audit_events(since=text, after_seq=mark)["events"]
    naive = t.astimezone(UTC).replace(tzinfo=None)
    with pytest.raises(ValueError):
        admin.audit_events(since=naive)  # refused before sending


def test_bad_arguments(admin: KyokClient) -> None:
    with pytest.raises(ValueError):
        admin.audit_events(outcome="maybe")
    with pytest.raises(ValueError):
        admin.audit_events(limit=0)
    with pytest.raises(ValueError):
        admin.audit_events(after_seq=-1)
    with pytest.raises(ValueError):
        list(admin.iter_audit_events(page=0))
    with pytest.raises(ValueError):
        admin.audit_checkpoints(max_count=0)
    with pytest.raises(BadRequest) as info:
        admin.audit_events(limit=1001)
    assert info.value.code == "BAD_QUERY_PARAM_ERR" and info.value.target == "limit"
    with pytest.raises(BadRequest) as info:
        admin.audit_events(since="yesterday")
    assert info.value.target == "since"
    with pytest.raises(BadRequest):
        admin.audit_events(actions="Not An Action")


# ---------------------------------------------------------------- checkpoints, head, key


def test_checkpoints_are_signed_by_the_instance_key(admin: KyokClient, live: LiveServer) -> None:
    for _ in range(6):
        admin.create_key(_name("cp"))
    key = live.node.audit_key(live.instance_id)
    assert key is not None
    found = admin.audit_checkpoints()
    assert len(found) >= 2
    seqs = [c["seq"] for c in found]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    top = _top(admin)
    events = {e["seq"]: e for e in admin.iter_audit_events(until_seq=top)}
    for obj in found:
        checkpoint = Checkpoint.from_json(obj)
        checkpoint.verify(key)
        assert checkpoint.instance_id == live.instance_id
        if checkpoint.seq in events:
            assert obj["headHash"] == events[checkpoint.seq]["hash"]

    assert admin.audit_checkpoints(limit=1, to_seq=seqs[-1]) == found
    assert admin.audit_checkpoints(from_seq=seqs[1], to_seq=seqs[-1]) == found[1:]
    assert admin.audit_checkpoints(from_seq=seqs[0] + 1, max_count=1) == [found[1]]
    assert admin.audit_checkpoints(to_seq=seqs[0]) == [found[0]]
    assert admin.audit_checkpoints(from_seq=10**9) == []


def test_head_names_the_newest_event_and_checkpoint(admin: KyokClient) -> None:
    admin.create_key(_name("head"))
    head = admin.audit_head()
    assert head["instanceId"] == admin.instance_id and head["nextSeq"] > 0
    newest = admin.audit_events(after_seq=head["nextSeq"] - 2, until_seq=head["nextSeq"] - 1)
    assert newest["events"][-1]["hash"] == head["hash"]
    if head["checkpointSeq"] is not None:
        covering = admin.audit_checkpoints(from_seq=head["checkpointSeq"], max_count=1)
        assert covering[0]["seq"] == head["checkpointSeq"]
        assert covering[0]["issuedAt"] == head["checkpointAt"]


def test_public_key_is_the_units_audit_key(admin: KyokClient, live: LiveServer) -> None:
    key = live.node.audit_key(live.instance_id)
    assert key is not None
    info = admin.audit_public_key()
    assert info == {
        "instanceId": live.instance_id,
        "algorithm": "ed25519",
        "keyId": key.fingerprint,
        "publicKey": key.to_pem().decode(),
    }


# ---------------------------------------------------------------- who may read the ledger


def test_an_auditor_reads_the_ledger_and_nothing_else(admin: KyokClient, live: LiveServer) -> None:
    auditor_id, auditor = _principal(admin, live, "KyokAuditor")
    with auditor:
        assert auditor.audit_public_key() == admin.audit_public_key()
        top = _top(auditor)
        events = list(auditor.iter_audit_events(until_seq=top))
        assert [e["seq"] for e in events] == list(range(top + 1))
        assert auditor.audit_checkpoints()
        with pytest.raises(Forbidden):
            auditor.list_keys()
        with pytest.raises(Forbidden):
            auditor.create_key(_name("nope"))
        refused = _since(admin, top, outcome="failure")
    mine = [e for e in refused if e["initiator"]["id"] == auditor_id]
    assert {e["action"] for e in mine} == {"kms.keys.list", "kms.keys.create"}
    assert all(e["reason"]["status"] == 403 for e in mine)


def test_a_reader_may_not_read_the_ledger(admin: KyokClient, live: LiveServer) -> None:
    reader_id, reader = _principal(admin, live, "Reader")
    mark = _top(admin)
    with reader:
        reader.list_keys()
        for call in (
            reader.audit_head,
            reader.audit_public_key,
            reader.audit_checkpoints,
            lambda: reader.audit_events(),
            lambda: list(reader.iter_audit_events()),
        ):
            with pytest.raises(Forbidden):
                call()
    refused = [
        e for e in _since(admin, mark, outcome="failure") if e["initiator"]["id"] == reader_id
    ]
    assert {e["action"] for e in refused} == {
        "audit.head.get",
        "audit.pubkey.get",
        "audit.checkpoints.get",
        "audit.events.get",
    }


# ---------------------------------------------------------------- on the wire (MockTransport)


def _page(*seqs: int, following: int | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "instanceId": "inst-1",
            "events": [{"seq": s} for s in seqs],
            "nextAfterSeq": following,
        },
    )


def _query(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode())


def test_query_parameters_on_the_wire(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(_page(3))
    since = datetime(2026, 1, 2, 5, 5, 6, 7, tzinfo=timezone(timedelta(hours=1)))
    client.audit_events(
        after_seq=2,
        until_seq=9,
        since=since,
        until="2026-01-03T00:00:00Z",
        actions=["kms.secrets.wrap", "kms.secrets.unwrap"],
        outcome="failure",
        limit=50,
    )
    request = recorder.last
    assert request.method == "GET" and request.url.path == "/api/v2/kyok/audit/events"
    assert request.headers["Bluemix-Instance"] == "inst-1"
    assert sorted(_query(request)) == sorted(
        [
            ("afterSeq", "2"),
            ("untilSeq", "9"),
            ("since", "2026-01-02T04:05:06.000007Z"),
            ("until", "2026-01-03T00:00:00Z"),
            ("action", "kms.secrets.wrap"),
            ("action", "kms.secrets.unwrap"),
            ("outcome", "failure"),
            ("limit", "50"),
        ]
    )
    recorder.answer(_page())
    client.audit_events()
    assert _query(recorder.last) == [("limit", "100")]


def test_iteration_follows_next_after_seq(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(_page(1, 2, following=2), _page(3, 4, following=4), _page())
    assert [e["seq"] for e in client.iter_audit_events(page=2, outcome="success")] == [1, 2, 3, 4]
    assert [dict(_query(r)).get("afterSeq") for r in recorder.requests] == [None, "2", "4"]
    assert all(dict(_query(r))["outcome"] == "success" for r in recorder.requests)

    recorder.answer(_page(5, 6, following=6), _page(5, 6, following=6))
    with pytest.raises(InvalidResponse):
        list(client.iter_audit_events(after_seq=4, page=2))


def test_checkpoints_page_until_a_short_page(client: KyokClient, recorder: Recorder) -> None:
    def page(*seqs: int) -> httpx.Response:
        return httpx.Response(
            200, json={"instanceId": "inst-1", "checkpoints": [{"seq": s} for s in seqs]}
        )

    recorder.answer(page(4, 9), page(14, 19), page(24))
    assert [c["seq"] for c in client.audit_checkpoints(from_seq=0, limit=2)] == [4, 9, 14, 19, 24]
    assert [dict(_query(r)).get("fromSeq") for r in recorder.requests] == ["0", "10", "20"]
    recorder.requests.clear()
    recorder.answer(page(4, 9))
    assert [c["seq"] for c in client.audit_checkpoints(limit=5, max_count=2)] == [4, 9]
    assert len(recorder.requests) == 1 and dict(_query(recorder.last))["limit"] == "2"


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("audit_events", {"events": "nope"}),
        ("audit_events", {"events": [], "nextAfterSeq": "3"}),
        ("audit_head", {"instanceId": "inst-1"}),
        ("audit_public_key", {"publicKey": 3}),
        ("audit_checkpoints", {"checkpoints": None}),
    ],
)
def test_malformed_answers(
    client: KyokClient, recorder: Recorder, call: str, body: dict[str, Any]
) -> None:
    recorder.answer(httpx.Response(200, json=body))
    with pytest.raises(InvalidResponse):
        getattr(client, call)()
