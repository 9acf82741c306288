"""``kyok audit pubkey | export | verify | tail`` against the real server (a dev node under
uvicorn in a thread, one per module, signing a checkpoint every 5 events), with ``--json`` parsed
and exit codes checked.

``verify`` must find every kind of tampering, in the export file and in the database itself:
exit 0 only when intact, 1 naming the first problem, 2 for a file or key it cannot use. No output
may ever hold the API key."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner, Result

from kyok.audit import ChainedEvent, Checkpoint, KeySigner, entry_hash, make_checkpoint
from kyok.cli import audit as audit_cli
from kyok.cli._output import console
from kyok.cli.main import app
from kyok.client import KyokClient, NotFound
from kyok.crypto.encoding import canonical_json
from kyok.crypto.sign import SigningKey
from kyok.store.sql.tables import audit_events
from live_server import LiveServer, dev_server

CHECKPOINT_EVERY = 5


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(
        tmp_path_factory.mktemp("kyok-audit-cli"),
        **{"audit.checkpoint_every_events": CHECKPOINT_EVERY},
    ) as server:
        yield server


class Kyok:
    """Runs ``kyok …`` in-process against one server, the connection in the environment; every
    run checks that no output holds a secret (the API keys in use)."""

    def __init__(self, live: LiveServer, config: Path, api_key: str | None = None) -> None:
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(config),
            "KYOK_URL": live.url,
            "KYOK_INSTANCE_ID": live.instance_id,
            "KYOK_API_KEY": api_key or live.api_key,
            "KYOK_CACERT": None,
        }
        self.runner = CliRunner()
        self.secrets = [live.api_key, api_key or live.api_key]

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(app, list(args), input="", env=self.env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        for secret in self.secrets:
            assert secret not in result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def lines(self, *args: str) -> list[dict[str, Any]]:
        """``--json`` output of ``kyok audit tail``: one object per line."""
        return [json.loads(line) for line in self(*args, "--json").stdout.splitlines()]


@pytest.fixture
def kyok(live: LiveServer, tmp_path: Path) -> Kyok:
    return Kyok(live, tmp_path / "config")


@pytest.fixture
def admin(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        yield kms


@pytest.fixture(scope="module")
def pem(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The instance's audit public key, saved with ``kyok audit pubkey --out``."""
    path = tmp_path_factory.mktemp("audit-key") / "audit.pem"
    Kyok(live, path.parent / "config")("audit", "pubkey", "--out", str(path))
    return path


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are not folded at 80 columns, so their cells can be looked for whole."""
    monkeypatch.setattr(console, "_width", 250)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def activity(kms: KyokClient, wraps: int = 3) -> tuple[str, str]:
    """A key, some wraps, and a failed wrap: returns the key id and the missing id."""
    key = kms.create_key(_name("audited"))
    for _ in range(wraps):
        kms.wrap(key.id)
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound):
        kms.wrap(missing)
    return key.id, missing


# ---------------------------------------------------------------- export files as lines


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines(path: Path, objs: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(canonical_json(o) + b"\n" for o in objs))
    return path


def body(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "type"}


def event_line(event: ChainedEvent) -> dict[str, Any]:
    return {"type": "event", **event.to_json()}


def is_event(obj: dict[str, Any]) -> bool:
    return obj["type"] == "event"


def is_checkpoint(obj: dict[str, Any]) -> bool:
    return obj["type"] == "checkpoint"


def plain_runs(objs: list[dict[str, Any]]) -> list[int]:
    """Indexes of events followed by another event (no checkpoint in between), after the first
    checkpoint, so that the surroundings are covered."""
    first_cp = next(i for i, o in enumerate(objs) if is_checkpoint(o))
    return [
        i for i in range(first_cp + 1, len(objs) - 1) if is_event(objs[i]) and is_event(objs[i + 1])
    ]


@pytest.fixture(scope="module")
def baseline(live: LiveServer, pem: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An intact export of the whole ledger with several checkpoints."""
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        for _ in range(3):
            activity(kms)
    path = tmp_path_factory.mktemp("baseline") / "ledger.jsonl"
    Kyok(live, path.parent / "config")("audit", "export", "--out", str(path), "--wait", "10")
    objs = lines_of(path)
    assert sum(map(is_checkpoint, objs)) >= 3 and is_checkpoint(objs[-1])
    assert len(plain_runs(objs)) >= 3
    return path


def verify(kyok: Kyok, path: Path, pem: Path, *extra: str, code: int) -> dict[str, Any]:
    """``kyok audit verify --json`` with the expected exit code; the human form agrees."""
    report: dict[str, Any] = kyok.json(
        "audit", "verify", str(path), "--pubkey", str(pem), *extra, code=code
    )
    human = kyok("audit", "verify", str(path), "--pubkey", str(pem), *extra, code=code)
    if code == 0:
        assert human.stdout.startswith("intact: ")
    elif code == 1:
        problem = report["problems"][0]
        where = "" if problem["seq"] is None else f" at seq {problem['seq']}"
        assert human.stdout.startswith(f"problem: {problem['kind']}{where}: {problem['message']}")
    return report


def problem_of(report: dict[str, Any]) -> tuple[str, int | None]:
    assert report["ok"] is False and len(report["problems"]) == 1
    return report["problems"][0]["kind"], report["problems"][0]["seq"]


# ---------------------------------------------------------------- pubkey


def test_pubkey_prints_and_saves_the_instance_key(
    kyok: Kyok, live: LiveServer, tmp_path: Path, pem: Path
) -> None:
    key = live.node.audit_key(live.instance_id)
    assert key is not None
    printed = kyok("audit", "pubkey").stdout
    assert printed == key.to_pem().decode()
    assert pem.read_bytes() == key.to_pem()
    assert stat.S_IMODE(pem.stat().st_mode) == 0o644
    info = kyok.json("audit", "pubkey")
    assert info == {
        "instanceId": live.instance_id,
        "algorithm": "ed25519",
        "keyId": key.fingerprint,
        "publicKey": key.to_pem().decode(),
    }
    out = tmp_path / "again.pem"
    result = kyok("audit", "pubkey", "--out", str(out))
    assert result.stdout == "" and key.fingerprint in result.stderr
    assert out.read_bytes() == key.to_pem()


# ---------------------------------------------------------------- tail


def test_tail_shows_the_newest_events(kyok: Kyok, admin: KyokClient) -> None:
    key_id, missing = activity(admin, wraps=2)
    rows = kyok.lines("audit", "tail", "-n", "4")
    assert len(rows) == 4
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + 4))
    failed = [r for r in rows if r["target"]["id"] == missing]
    assert len(failed) == 1 and failed[0]["outcome"] == "failure"
    assert failed[0]["reason"] == {"reasonCode": "KEY_NOT_FOUND_ERR", "status": 404}

    (newest_failure,) = kyok.lines("audit", "tail", "-n", "1", "--outcome", "failure")
    assert newest_failure["seq"] == failed[0]["seq"]
    created = kyok.lines("audit", "tail", "-n", "1", "--action", "kms.keys.create")
    assert [c["target"]["id"] for c in created] == [key_id]
    wraps = kyok.lines("audit", "tail", "-n", "3", "--action", "kms.secrets.wrap,kms.keys.create")
    assert [w["target"]["id"] for w in wraps] == [key_id, key_id, missing]

    table = kyok("audit", "tail", "-n", "30").stdout  # the tails above were recorded too
    header = table.splitlines()[0].split()
    assert header == ["seq", "time", "action", "outcome", "initiator", "target"]
    row = next(line for line in table.splitlines() if missing[:8] in line)
    assert f"{failed[0]['seq']} " in row and "kms.secrets.wrap" in row
    assert "failure" in row and "KEY_NOT_FOUND_ERR (404)" in row

    assert (
        kyok("audit", "tail", "--action", "kms.keys.purge").stderr.strip() == "no matching events"
    )
    kyok("audit", "tail", "--outcome", "maybe", code=2)
    kyok("audit", "tail", "--action", "Not An Action", code=1)  # the server refuses it


def test_tail_finds_old_matches_behind_newer_events(kyok: Kyok, admin: KyokClient) -> None:
    key_id, _ = activity(admin, wraps=1)
    for _ in range(12):
        admin.get_key_metadata(key_id)
    found = kyok.lines("audit", "tail", "-n", "1", "--action", "kms.keys.create")
    assert [f["target"]["id"] for f in found] == [key_id]


def test_tail_follow_prints_new_events_but_not_its_own_reads(kyok: Kyok, admin: KyokClient) -> None:
    made: list[str] = []

    def later() -> None:
        time.sleep(0.3)
        made.append(activity(admin, wraps=1)[0])

    worker = threading.Thread(target=later)
    worker.start()
    out = kyok(
        "audit", "tail", "-n", "0", "--follow", "--interval", "0.1", "--max-polls", "15", "--json"
    ).stdout
    worker.join()
    rows = [json.loads(line) for line in out.splitlines()]
    actions = [r["action"] for r in rows]
    assert {"kms.keys.create", "kms.secrets.wrap"} <= set(actions)
    assert not any(a.startswith("audit.") for a in actions)
    assert [r["target"]["id"] for r in rows if r["action"] == "kms.keys.create"] == made
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    own = ("-n", "0", "-f", "--interval", "0", "--max-polls", "3", "--show-own-reads")
    shown = kyok.lines("audit", "tail", *own)
    assert "audit.events.get" in {r["action"] for r in shown}

    table = kyok("audit", "tail", "-n", "2", "-f", "--interval", "0", "--max-polls", "2").stdout
    assert table.splitlines()[0].split()[0] == "seq"


def test_tail_follow_ends_cleanly_on_ctrl_c(kyok: Kyok, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(
        audit_cli, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic)
    )
    result = kyok("audit", "tail", "-n", "1", "--follow", "--json")
    assert calls == [1.0, 1.0]  # the default interval: one second
    assert len(result.stdout.splitlines()) == 1


# ---------------------------------------------------------------- export and verify


def test_export_and_verify_an_intact_ledger(
    kyok: Kyok, live: LiveServer, pem: Path, tmp_path: Path
) -> None:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        activity(kms)
    out = tmp_path / "ledger.jsonl"
    summary = kyok.json("audit", "export", "--out", str(out), "--wait", "10")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    objs = lines_of(out)
    events = [o for o in objs if is_event(o)]
    checkpoints = [o for o in objs if is_checkpoint(o)]
    assert objs[0]["type"] == "header" and objs[0]["instanceId"] == live.instance_id
    assert summary["file"] == str(out) and summary["instanceId"] == live.instance_id
    assert (summary["events"], summary["checkpoints"]) == (len(events), len(checkpoints))
    assert (summary["fromSeq"], summary["toSeq"]) == (0, events[-1]["seq"])
    assert summary["signedThroughSeq"] == checkpoints[-1]["seq"] == events[-1]["seq"]
    assert summary["unsignedTail"] is None
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert len(checkpoints) >= 2

    report = verify(kyok, out, pem, code=0)
    assert report["events"] == len(events) and report["checkpoints"] == len(checkpoints)
    assert report["lastVerifiedSeq"] == events[-1]["seq"]
    assert (report["fromSeq"], report["toSeq"]) == (0, events[-1]["seq"])
    human = kyok("audit", "verify", str(out), "--pubkey", str(pem)).stdout
    assert human.strip() == (
        f"intact: {len(events)} events, {len(checkpoints)} checkpoints, seq 0..{events[-1]['seq']}"
    )
    verify(kyok, out, pem, "--instance", live.instance_id, code=0)

    again = kyok("audit", "export", "--out", str(out), code=1)
    assert "exists" in again.stderr
    kyok("audit", "export", "--out", str(out), "--force")
    text_summary = kyok("audit", "export", "--out", str(tmp_path / "b.jsonl")).stdout
    assert text_summary.startswith("exported ") and "checkpoints (seq 0.." in text_summary


def test_export_a_time_range(
    kyok: Kyok, live: LiveServer, admin: KyokClient, pem: Path, tmp_path: Path
) -> None:
    key_id, missing = activity(admin)
    rows = kyok.lines("audit", "tail", "-n", "5")
    start = next(r for r in rows if r["target"]["id"] == key_id)
    stop = next(r for r in rows if r["target"]["id"] == missing)
    out = tmp_path / "range.jsonl"
    summary = kyok.json(
        "audit",
        "export",
        "--out",
        str(out),
        "--since",
        start["eventTime"],
        "--until",
        stop["eventTime"],
        "--wait",
        "10",
    )
    objs = lines_of(out)
    header, events = objs[0], [o for o in objs if is_event(o)]
    assert header["range"]["fromTime"] == start["eventTime"]
    assert header["range"]["toTime"] == stop["eventTime"]  # inclusive: the failed wrap is in it
    assert events[0]["seq"] == start["seq"] == summary["fromSeq"] > 0
    assert stop["seq"] in {e["seq"] for e in events}
    assert is_checkpoint(objs[-1]) and objs[-1]["seq"] == events[-1]["seq"] >= stop["seq"]
    assert events[-1]["seq"] - stop["seq"] < CHECKPOINT_EVERY + 5
    report = verify(kyok, out, pem, code=0)
    assert any("starts at seq" in w for w in report["warnings"])

    before = kyok.json(
        "audit",
        "export",
        "--out",
        str(tmp_path / "none.jsonl"),
        "--until",
        "2001-01-01T00:00:00Z",
    )
    assert before["events"] == 0 and before["fromSeq"] is None
    assert verify(kyok, tmp_path / "none.jsonl", pem, code=0)["events"] == 0

    offset = kyok.json(
        "audit",
        "export",
        "--out",
        str(tmp_path / "offset.jsonl"),
        "--since",
        datetime.fromisoformat(start["eventTime"]).astimezone().isoformat(),
    )
    assert offset["fromSeq"] == start["seq"]
    kyok("audit", "export", "--out", str(tmp_path / "x"), "--since", "yesterday", code=2)
    kyok("audit", "export", "--out", str(tmp_path / "x"), "--since", "2026-01-01T00:00:00", code=2)
    kyok(
        "audit",
        "export",
        "--out",
        str(tmp_path / "x"),
        "--since",
        "2026-02-01T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
        code=2,
    )


def test_an_unsigned_tail_is_reported(
    kyok: Kyok, live: LiveServer, admin: KyokClient, pem: Path, tmp_path: Path
) -> None:
    """With a policy that will not sign for a while, the export's end is not covered."""
    ledger = live.node.ledger
    policy = ledger.policy
    ledger.policy = replace(policy, every_events=10_000, every_seconds=3600)
    try:
        admin.create_key(_name("unsigned"))
        out = tmp_path / "tail.jsonl"
        result = kyok("audit", "export", "--out", str(out), "--json", "--no-sign")
    finally:
        ledger.policy = policy
    summary = json.loads(result.stdout)
    assert summary["unsignedTail"] is not None
    assert summary["unsignedTail"][1] == summary["toSeq"]
    assert "not covered by a signed checkpoint" in result.stderr
    report = verify(kyok, out, pem, code=1)
    assert problem_of(report) == ("unsigned-tail", summary["unsignedTail"][0])
    allowed = verify(kyok, out, pem, "--allow-unsigned-tail", code=0)
    assert any("unsigned tail" in w for w in allowed["warnings"])

    # by default the export asks the server to sign its head, so the same export ends signed
    ledger.policy = replace(policy, every_events=10_000, every_seconds=3600)
    try:
        admin.create_key(_name("signed"))
        signed = tmp_path / "signed.jsonl"
        summary = json.loads(kyok("audit", "export", "--out", str(signed), "--json").stdout)
    finally:
        ledger.policy = policy
    assert summary["unsignedTail"] is None
    verify(kyok, signed, pem, code=0)


# ---------------------------------------------------------------- tampering with the file


def _edit_field(objs: list[dict[str, Any]]) -> int:
    i = plain_runs(objs)[1]
    objs[i]["target"]["id"] = "someone-else"
    return objs[i]["seq"]


def _delete_line(objs: list[dict[str, Any]]) -> int:
    i = plain_runs(objs)[1]
    return objs.pop(i)["seq"]


def _swap_lines(objs: list[dict[str, Any]]) -> int:
    i = plain_runs(objs)[1]
    objs[i], objs[i + 1] = objs[i + 1], objs[i]
    return objs[i + 1]["seq"]


def _insert_forged(objs: list[dict[str, Any]]) -> int:
    """A forged event with a correct hash, linked to the event before, put before the real one."""
    i = plain_runs(objs)[1] + 1
    real = ChainedEvent.from_json(body(objs[i]))
    event = replace(real.event, action="kms.keys.read", outcome="success")
    forged = ChainedEvent(event, real.prev_hash, entry_hash(real.prev_hash, event))
    objs.insert(i, event_line(forged))
    return real.seq


def _rewrite_one(objs: list[dict[str, Any]]) -> int:
    """An event rewritten with its hash recomputed: the next event's link breaks."""
    i = plain_runs(objs)[1]
    real = ChainedEvent.from_json(body(objs[i]))
    event = replace(real.event, outcome="failure")
    objs[i] = event_line(ChainedEvent(event, real.prev_hash, entry_hash(real.prev_hash, event)))
    return real.seq + 1


def _rewrite_chain(objs: list[dict[str, Any]]) -> int:
    """An event and all after it rewritten into a consistent chain: the next checkpoint's head
    hash does not match."""
    i = plain_runs(objs)[1]
    prev = ChainedEvent.from_json(body(objs[i])).prev_hash
    first_cp = None
    for j in range(i, len(objs)):
        if is_checkpoint(objs[j]):
            first_cp = first_cp if first_cp is not None else objs[j]["seq"]
            continue
        real = ChainedEvent.from_json(body(objs[j]))
        event = replace(real.event, outcome="failure") if j == i else real.event
        objs[j] = event_line(ChainedEvent(event, prev, entry_hash(prev, event)))
        prev = entry_hash(prev, event)
    assert first_cp is not None
    return first_cp


def _append_forged(objs: list[dict[str, Any]]) -> int:
    last = ChainedEvent.from_json(body(objs[-2]))
    event = replace(last.event, seq=last.seq + 1)
    objs.append(event_line(ChainedEvent(event, last.hash, entry_hash(last.hash, event))))
    return last.seq + 1


def _cut_tail(objs: list[dict[str, Any]]) -> int:
    """The last checkpoint and the events it alone covers are cut off (the header still says
    where the export ended)."""
    cps = [i for i, o in enumerate(objs) if is_checkpoint(o)]
    del objs[cps[-2] + 1 :]
    return objs[cps[-2]]["seq"] + 1


def _cut_tail_and_header(objs: list[dict[str, Any]]) -> int:
    """The last checkpoint cut off, and the header's range moved back: the events after the
    checkpoint before it are unsigned."""
    cps = [i for i, o in enumerate(objs) if is_checkpoint(o)]
    objs.pop(cps[-1])
    objs[0]["range"]["toSeq"] = objs[-1]["seq"]
    return objs[cps[-2]]["seq"] + 1


def _forged_checkpoint(objs: list[dict[str, Any]]) -> int:
    """The last checkpoint replaced by one that another key signed."""
    i = max(i for i, o in enumerate(objs) if is_checkpoint(o))
    event = ChainedEvent.from_json(body(objs[i - 1]))
    other = make_checkpoint(KeySigner(SigningKey.generate()), event, issued_at=datetime.now(UTC))
    objs[i] = {"type": "checkpoint", **other.to_json()}
    return event.seq


def _resigned_checkpoint(objs: list[dict[str, Any]]) -> int:
    """A checkpoint that names the instance's key but was signed by another one."""
    i = min(i for i, o in enumerate(objs) if is_checkpoint(o))
    real = Checkpoint.from_json(body(objs[i]))
    other = KeySigner(SigningKey.generate())
    forged = replace(real, signature=other.sign(real.message()))
    objs[i] = {"type": "checkpoint", **forged.to_json()}
    return real.seq


def _move_checkpoint(objs: list[dict[str, Any]]) -> int:
    i = min(i for i, o in enumerate(objs) if is_checkpoint(o))
    cp = objs.pop(i)
    objs.insert(i - 1, cp)
    return cp["seq"]


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        (_edit_field, "altered"),
        (_delete_line, "missing-range"),
        (_swap_lines, "reordered"),
        (_insert_forged, "duplicate"),
        (_rewrite_one, "broken-link"),
        (_rewrite_chain, "checkpoint-mismatch"),
        (_append_forged, "out-of-range"),
        (_cut_tail, "missing-range"),
        (_cut_tail_and_header, "unsigned-tail"),
        (_forged_checkpoint, "forged-checkpoint"),
        (_resigned_checkpoint, "forged-checkpoint"),
        (_move_checkpoint, "reordered"),
    ],
)
def test_a_tampered_export_fails_verification(
    kyok: Kyok,
    baseline: Path,
    pem: Path,
    tmp_path: Path,
    tamper: Callable[[list[dict[str, Any]]], int],
    kind: str,
) -> None:
    objs = lines_of(baseline)
    seq = tamper(objs)
    path = write_lines(tmp_path / "tampered.jsonl", objs)
    report = verify(kyok, path, pem, code=1)
    assert problem_of(report) == (kind, seq)


def test_verify_checks_the_key_and_the_instance(
    kyok: Kyok, baseline: Path, pem: Path, tmp_path: Path
) -> None:
    verify(kyok, baseline, pem, code=0)
    other = tmp_path / "other.pem"
    other.write_bytes(SigningKey.generate().verifying_key().to_pem())
    kind, seq = problem_of(verify(kyok, baseline, other, code=1))
    first_cp = next(o["seq"] for o in lines_of(baseline) if is_checkpoint(o))
    assert (kind, seq) == ("forged-checkpoint", first_cp)
    verify(kyok, baseline, other, "--pubkey", str(pem), code=0)  # a rotated key: either one
    assert problem_of(verify(kyok, baseline, pem, "--instance", "another", code=1))[0] == (
        "wrong-instance"
    )
    # dropping an intermediate checkpoint loses nothing: a later one covers the same events
    objs = lines_of(baseline)
    objs.pop(next(i for i, o in enumerate(objs) if is_checkpoint(o)))
    verify(kyok, write_lines(tmp_path / "fewer.jsonl", objs), pem, code=0)
    # --not-before: the newest checkpoint must be at least that recent
    stale = verify(kyok, baseline, pem, "--not-before", "2999-01-01T00:00:00Z", code=1)
    assert problem_of(stale)[0] == "stale"


def test_unusable_input_exits_2(kyok: Kyok, baseline: Path, pem: Path, tmp_path: Path) -> None:
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text(baseline.read_text().replace('"type":"event"', '"type":"evnt"', 1))
    report = kyok.json("audit", "verify", str(garbled), "--pubkey", str(pem), code=2)
    assert problem_of(report)[0] == "malformed" and "line 2" in report["problems"][0]["message"]
    human = kyok("audit", "verify", str(garbled), "--pubkey", str(pem), code=2)
    assert "malformed export: line 2" in human.stderr

    not_json = tmp_path / "not.jsonl"
    not_json.write_text(baseline.read_text() + "{not json\n")
    kyok("audit", "verify", str(not_json), "--pubkey", str(pem), code=2)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    kyok("audit", "verify", str(empty), "--pubkey", str(pem), code=2)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    kyok("audit", "verify", str(binary), "--pubkey", str(pem), code=2)
    missing = kyok("audit", "verify", str(tmp_path / "nope.jsonl"), "--pubkey", str(pem), code=2)
    assert "cannot read" in missing.stderr

    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    assert (
        "not a PEM public key"
        in kyok("audit", "verify", str(baseline), "--pubkey", str(bad_key), code=2).stderr
    )
    kyok("audit", "verify", str(baseline), "--pubkey", str(tmp_path / "none.pem"), code=2)
    kyok("audit", "verify", str(baseline), code=2)  # --pubkey is required


def test_verify_needs_no_server(baseline: Path, pem: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "KYOK_URL": "http://127.0.0.1:9",
        "KYOK_INSTANCE_ID": None,
        "KYOK_API_KEY": None,
    }
    result = runner.invoke(app, ["audit", "verify", str(baseline), "--pubkey", str(pem)], env=env)
    assert result.exit_code == 0 and result.stdout.startswith("intact: ")


# ---------------------------------------------------------------- tampering with the database


@pytest.fixture(scope="module")
def tamper_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own: these tests break its ledger."""
    with dev_server(
        tmp_path_factory.mktemp("kyok-audit-tamper"),
        **{"audit.checkpoint_every_events": CHECKPOINT_EVERY},
    ) as server:
        yield server


def _sql(live: LiveServer, statement: str, **params: Any) -> int:
    with live.node.store.engine.begin() as conn:
        return conn.execute(text(statement), {"instance": live.instance_id, **params}).rowcount


def _row(live: LiveServer, seq: int) -> dict[str, Any]:
    with live.node.store.engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM audit_events WHERE instance_id = :instance AND seq = :seq"),
            {"instance": live.instance_id, "seq": seq},
        ).one()
    return dict(row._mapping)


def test_tampering_with_the_database_is_found(tamper_live: LiveServer, tmp_path: Path) -> None:
    live = tamper_live
    kyok = Kyok(live, tmp_path / "config")
    key_pem = tmp_path / "audit.pem"
    kyok("audit", "pubkey", "--out", str(key_pem))
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        key_id, _ = activity(kms, wraps=4)
        activity(kms, wraps=4)
        wraps = [
            e
            for e in kms.iter_audit_events(actions="kms.secrets.wrap", outcome="success")
            if e["target"]["id"] == key_id
        ]
    victim = wraps[2]["seq"]
    n = 0

    def export() -> Path:
        nonlocal n
        n += 1
        out = tmp_path / f"export-{n}.jsonl"
        kyok("audit", "export", "--out", str(out), "--wait", "10")
        return out

    verify(kyok, export(), key_pem, code=0)
    original = _row(live, victim)

    # an edited body: the event's hash no longer matches its content
    edited = original["body"].replace('"outcome":"success"', '"outcome":"failure"')
    assert edited != original["body"]
    assert (
        _sql(
            live,
            "UPDATE audit_events SET body = :body WHERE instance_id = :instance AND seq = :seq",
            body=edited,
            seq=victim,
        )
        == 1
    )
    assert problem_of(verify(kyok, export(), key_pem, code=1)) == ("altered", victim)

    # an edited body with its hash recomputed: the next event no longer links to it
    event = ChainedEvent.from_json(
        {**json.loads(edited), "prevHash": original["prev_hash"].hex(), "hash": "0" * 64}
    )
    _sql(
        live,
        "UPDATE audit_events SET hash = :hash WHERE instance_id = :instance AND seq = :seq",
        hash=entry_hash(bytes(original["prev_hash"]), event.event),
        seq=victim,
    )
    assert problem_of(verify(kyok, export(), key_pem, code=1)) in {
        ("broken-link", victim + 1),
        ("checkpoint-mismatch", victim),  # when a checkpoint covers exactly the victim
    }

    # put back: intact again
    _sql(
        live,
        "UPDATE audit_events SET body = :body, hash = :hash "
        "WHERE instance_id = :instance AND seq = :seq",
        body=original["body"],
        hash=original["hash"],
        seq=victim,
    )
    verify(kyok, export(), key_pem, code=0)

    # a changed hash alone
    _sql(
        live,
        "UPDATE audit_events SET hash = :hash WHERE instance_id = :instance AND seq = :seq",
        hash=os.urandom(32),
        seq=victim,
    )
    assert problem_of(verify(kyok, export(), key_pem, code=1)) == ("altered", victim)
    _sql(
        live,
        "UPDATE audit_events SET hash = :hash WHERE instance_id = :instance AND seq = :seq",
        hash=original["hash"],
        seq=victim,
    )
    verify(kyok, export(), key_pem, code=0)

    # a deleted row
    assert (
        _sql(
            live,
            "DELETE FROM audit_events WHERE instance_id = :instance AND seq = :seq",
            seq=victim,
        )
        == 1
    )
    out = export()
    assert problem_of(verify(kyok, out, key_pem, code=1)) == ("missing-range", victim)
    summary = kyok.json("audit", "export", "--out", str(out), "--force", "--wait", "10")
    assert summary["missing"] == [[victim, victim]]


def test_events_whose_times_interleave_are_exported_whole(tmp_path: Path) -> None:
    """The ledger is ordered by seq; an event whose time lies outside the range, between
    events inside it, is still exported (the chain has no gap)."""
    with dev_server(tmp_path / "data", **{"audit.checkpoint_every_events": 3}) as live:
        kyok = Kyok(live, tmp_path / "config")
        key_pem = tmp_path / "audit.pem"
        kyok("audit", "pubkey", "--out", str(key_pem))
        with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
            activity(kms, wraps=4)
            top = int(kms.audit_head()["nextSeq"]) - 1
        # the column the time filter reads (the hashed body keeps the real time)
        early = datetime(2001, 1, 1, tzinfo=UTC)
        with live.node.store.engine.begin() as conn:
            conn.execute(
                update(audit_events)
                .where(audit_events.c.instance_id == live.instance_id)
                .where(audit_events.c.seq == top - 2)
                .values(event_time=early)
            )
        out = tmp_path / "range.jsonl"
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        summary = kyok.json("audit", "export", "--out", str(out), "--since", since, "--wait", "10")
        seqs = [o["seq"] for o in lines_of(out) if is_event(o)]
        assert top - 2 in seqs and seqs == list(range(seqs[0], seqs[-1] + 1))
        assert summary["events"] == len(seqs)
        verify(kyok, out, key_pem, code=0)


# ---------------------------------------------------------------- who may read the ledger


def _principal_key(admin: KyokClient, role: str) -> str:
    svc = admin.create_principal(_name(role.lower()), kind="service")
    admin.grant_role(svc.id, role)
    secret = admin.create_api_key(svc.id, "audit-cli").secret
    assert secret is not None
    return secret


def test_an_auditor_reads_the_ledger_and_a_reader_does_not(
    live: LiveServer, admin: KyokClient, tmp_path: Path
) -> None:
    auditor = Kyok(live, tmp_path / "a", _principal_key(admin, "KyokAuditor"))
    auditor("audit", "tail", "-n", "3", "--json")
    auditor.json("audit", "pubkey")
    summary = auditor.json("audit", "export", "--out", str(tmp_path / "by-auditor.jsonl"))
    assert summary["events"] > 0
    refused = auditor("key", "list", code=1)
    assert "HTTP 403" in refused.stderr

    reader = Kyok(live, tmp_path / "r", _principal_key(admin, "Reader"))
    reader("key", "list")
    for args in (
        ("audit", "tail"),
        ("audit", "pubkey"),
        ("audit", "export", "--out", str(tmp_path / "by-reader.jsonl")),
    ):
        assert "HTTP 403" in reader(*args, code=1).stderr
    assert not (tmp_path / "by-reader.jsonl").exists()


def test_a_wrong_api_key_is_not_printed(live: LiveServer, tmp_path: Path) -> None:
    wrong = "kyok-not-the-key-" + uuid.uuid4().hex
    kyok = Kyok(live, tmp_path / "config", wrong)
    result = kyok("audit", "tail", code=1)
    assert "the API key was refused" in result.stderr
