"""Export files: round trip, 0600, atomic replace, strict parsing, and choosing a time range."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from kyok.audit import (
    EXPORT_FORMAT,
    Chain,
    ChainedEvent,
    Checkpoint,
    ExportHeader,
    ExportMalformed,
    KeySigner,
    ProblemKind,
    build_export,
    dumps_export,
    loads_export,
    make_checkpoint,
    read_export,
    verify,
    verify_file,
    write_export,
)
from kyok.crypto.encoding import canonical_json

from ._kit import INSTANCE_A, T0, build_ledger, make_event


def test_file_round_trip_and_mode(signer: KeySigner, tmp_path: Path) -> None:
    header, items = build_ledger(signer, 8, (3, 7))
    path = tmp_path / "audit.jsonl"
    write_export(path, header, items)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    export = read_export(path)
    assert export.header == header and list(export.items) == items
    assert [p.name for p in tmp_path.iterdir()] == ["audit.jsonl"]  # no temporary left behind
    report = verify_file(path, signer.public_key().to_pem())
    assert report.ok and report.last_verified_seq == 7


def test_write_replaces_atomically_and_keeps_0600(signer: KeySigner, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("old")
    os.chmod(path, 0o644)
    header, items = build_ledger(signer, 2, (1,))
    write_export(path, header, items)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_export(path).header == header


def test_lines_are_canonical_json(signer: KeySigner) -> None:
    header, items = build_ledger(signer, 2, (1,))
    data = dumps_export(header, items)
    lines = data.decode().splitlines()
    assert len(lines) == 4 and data.endswith(b"\n")
    for line in lines:
        assert canonical_json(json.loads(line)).decode() == line
    first = json.loads(lines[0])
    assert first["type"] == "header" and first["format"] == EXPORT_FORMAT
    assert [json.loads(x)["type"] for x in lines[1:]] == ["event", "event", "checkpoint"]
    # readers accept any whitespace
    pretty = "\n".join(
        json.dumps(json.loads(x), indent=None, separators=(", ", ": ")) for x in lines
    )
    assert loads_export(pretty) == loads_export(data)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("", None),
        ("not json\n", 1),
        ('{"type":"header","format":"kyok-audit-export/9"}\n', 1),
        ("HEADER\n{}\n", 2),
        ("HEADER\n[]\n", 2),
        ('HEADER\n{"type":"note"}\n', 2),
        ('HEADER\n{"type":"event","seq":0}\n', 2),
        ('HEADER\n{"type":"checkpoint","seq":0}\n', 2),
    ],
)
def test_malformed_files_name_the_line(signer: KeySigner, content: str, line: int | None) -> None:
    header, _ = build_ledger(signer, 1, ())
    text = content.replace("HEADER", canonical_json(header.to_json()).decode())
    with pytest.raises(ExportMalformed) as info:
        loads_export(text)
    assert info.value.line == line
    if line is not None:
        assert info.value.message.startswith(f"line {line}:")


def test_verify_file_reports_a_malformed_file(signer: KeySigner, tmp_path: Path) -> None:
    header, items = build_ledger(signer, 3, (2,))
    path = tmp_path / "a.jsonl"
    write_export(path, header, items)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"seq":1', '"seq":"1"')
    path.write_text("\n".join(lines) + "\n")
    report = verify_file(path, signer.public_key())
    assert not report.ok
    assert report.problems[0].kind is ProblemKind.MALFORMED and "line 3" in str(report.problems[0])
    path.write_bytes(b"\xff\xfe")
    assert verify_file(path, signer.public_key()).problems[0].kind is ProblemKind.MALFORMED


def test_edit_in_the_file_is_detected(signer: KeySigner, tmp_path: Path) -> None:
    header, items = build_ledger(signer, 6, (5,))
    path = tmp_path / "a.jsonl"
    write_export(path, header, items)
    path.write_text(path.read_text().replace('"outcome":"success"', '"outcome":"failure"', 1))
    report = verify_file(path, signer.public_key())
    assert report.problems[0].kind is ProblemKind.ALTERED and report.problems[0].seq == 0


def test_header_validation() -> None:
    with pytest.raises(ValueError):
        ExportHeader(INSTANCE_A, 0, None, T0)
    with pytest.raises(ValueError):
        ExportHeader(INSTANCE_A, 5, 4, T0)
    h = ExportHeader(INSTANCE_A, 0, 4, T0, T0, T0 + timedelta(hours=1))
    assert ExportHeader.from_json(h.to_json()) == h
    with pytest.raises(ValueError):
        ExportHeader.from_json({**h.to_json(), "signed": True})


def _stored(
    signer: KeySigner, n: int, cps: tuple[int, ...]
) -> tuple[list[ChainedEvent], list[Checkpoint]]:
    chain = Chain.new(INSTANCE_A)
    events = [chain.append(make_event(INSTANCE_A, i)) for i in range(n)]
    checkpoints = [
        make_checkpoint(signer, events[s], issued_at=T0 + timedelta(seconds=s)) for s in cps
    ]
    return events, checkpoints


def test_build_export_rounds_the_end_up_to_a_checkpoint(signer: KeySigner) -> None:
    events, checkpoints = _stored(signer, 20, (4, 9, 14))
    # event i happens at T0 + i seconds; ask for 6..11
    header, items = build_export(
        INSTANCE_A,
        events,
        checkpoints,
        exported_at=T0 + timedelta(hours=1),
        from_time=T0 + timedelta(seconds=6),
        to_time=T0 + timedelta(seconds=11),
    )
    assert (header.from_seq, header.to_seq) == (6, 14)
    assert [type(i).__name__ for i in items].count("Checkpoint") == 2  # at 9 and 14
    assert isinstance(items[-1], Checkpoint) and items[-1].seq == 14
    report = verify(items, signer.public_key(), header=header)
    assert report.ok and report.last_verified_seq == 14


def test_build_export_without_a_covering_checkpoint_has_an_unsigned_tail(signer: KeySigner) -> None:
    events, checkpoints = _stored(signer, 20, (4, 9))
    header, items = build_export(INSTANCE_A, events, checkpoints, exported_at=T0)
    assert (header.from_seq, header.to_seq) == (0, 19)
    report = verify(items, signer.public_key(), header=header)
    assert report.problems[0].kind is ProblemKind.UNSIGNED_TAIL
    assert verify(items, signer.public_key(), header=header, allow_unsigned_tail=True).ok


def test_build_export_of_an_empty_range(signer: KeySigner) -> None:
    events, checkpoints = _stored(signer, 5, (4,))
    header, items = build_export(
        INSTANCE_A, events, checkpoints, exported_at=T0, from_time=T0 + timedelta(days=1)
    )
    assert items == [] and header.from_seq is None and header.to_seq is None
    with pytest.raises(ValueError):
        build_export(INSTANCE_A, [events[0], events[2]], [], exported_at=T0)
