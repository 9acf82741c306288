"""Offline verification of an exported ceremony transcript (what an auditor runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.unit.commands import Command
from kyok.unit.transcript import TranscriptEntry, make_entry, parse_export, verify_export
from kyok.unit.unit import CryptoUnit

from .conftest import ceremony, imprint, make_custodians, run

NewUnit = Callable[..., CryptoUnit]


@pytest.fixture(scope="module")
def exported() -> tuple[list[str], str, str]:
    """An exported transcript of a full ceremony plus admin changes; and the unit and first admin ids."""
    from kyok.clock import FakeClock
    from kyok.store.memory import MemoryStore
    from kyok.unit.seal import SharesSeal

    unit = CryptoUnit.create(
        MemoryStore().units, instance_id="i", seal=SharesSeal(), clock=FakeClock()
    )
    cs = make_custodians(4)
    imprint(unit, cs[:3], 2, 2)
    ceremony(unit, cs[:3], "shamir", 2, cs[:2])
    from kyok.crypto.encoding import b64e

    run(
        unit,
        Command.ADD_ADMIN,
        {"name": cs[3].name, "public_key": b64e(cs[3].key.verifying_key().der)},
        cs[:2],
    )
    run(unit, Command.REMOVE_ADMIN, {"admin": cs[3].id}, cs[:2])
    return [e.export_line() for e in unit.transcript()], unit.unit_id, cs[0].id


def test_intact_transcript_verifies(exported: tuple[list[str], str, str]) -> None:
    lines, unit_id, first = exported
    report = verify_export(parse_export(lines), unit_id=unit_id, first_admin=first)
    assert report.ok, report.error
    assert report.entries == len(lines) and report.commands == len(lines) - 1  # everything but init
    assert report.state is not None and len(report.state.admins) == 3


def test_wrong_anchor_is_reported(exported: tuple[list[str], str, str]) -> None:
    lines, unit_id, _ = exported
    assert verify_export(parse_export(lines), unit_id=unit_id).ok
    assert not verify_export(parse_export(lines), unit_id="someone-else").ok
    report = verify_export(parse_export(lines), first_admin="ab" * 32)
    assert not report.ok and "imprinted" in (report.error or "")


def _entries(lines: list[str]) -> list[TranscriptEntry]:
    return parse_export(lines)


def test_altered_argument_is_named(exported: tuple[list[str], str, str]) -> None:
    lines, _, _ = exported
    entries = _entries(lines)
    target = next(
        i for i, e in enumerate(entries) if e.body().get("command") == Command.SET_THRESHOLDS
    )
    body = entries[target].body()
    body["args"]["signature"] = 1
    tampered = [
        *entries[:target],
        TranscriptEntry(target, make_entry(body).entry, entries[target].hash),
        *entries[target + 1 :],
    ]
    report = verify_export(tampered)
    assert not report.ok and report.broken_at == target and "hash" in (report.error or "")


def test_rehashed_forgery_fails_the_signatures(exported: tuple[list[str], str, str]) -> None:
    """Re-hashing after an edit fixes the chain, not the administrators' signatures."""
    lines, _, _ = exported
    entries = _entries(lines)
    target = next(
        i for i, e in enumerate(entries) if e.body().get("command") == Command.SET_THRESHOLDS
    )
    bodies = [e.body() for e in entries]
    bodies[target]["args"]["signature"] = 1
    prev = bodies[0]["prev"]
    rebuilt = []
    for body in bodies:
        body["prev"] = prev
        e = make_entry(body)
        rebuilt.append(e)
        prev = e.hash
    report = verify_export(rebuilt)
    assert (
        not report.ok and report.broken_at == target and "does not verify" in (report.error or "")
    )


def test_missing_and_reordered_entries_are_named(exported: tuple[list[str], str, str]) -> None:
    lines, _, _ = exported
    entries = _entries(lines)
    report = verify_export([*entries[:3], *entries[4:]])
    assert not report.ok and report.broken_at == 3 and "missing" in (report.error or "")
    swapped = [*entries[:3], entries[4], entries[3], *entries[5:]]
    assert verify_export(swapped).broken_at == 3
    assert verify_export(entries[:-2]).ok  # a prefix is an authentic (older) transcript


def test_garbage_lines_are_refused(exported: tuple[list[str], str, str]) -> None:
    lines, _, _ = exported
    with pytest.raises(ValueError, match="line 2"):
        parse_export([lines[0], "{not json", *lines[1:]])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_byte_edit_is_detected(exported: tuple[list[str], str, str], data: Any) -> None:
    lines, _, _ = exported
    i = data.draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    pos = data.draw(st.integers(0, len(line) - 1))
    ch = data.draw(
        st.characters(codec="ascii").filter(lambda c: c != line[pos] and c not in "\n\r")
    )
    edited = line[:pos] + ch + line[pos + 1 :]
    try:
        entries = parse_export([*lines[:i], edited, *lines[i + 1 :]])
    except ValueError:
        return  # no longer parses: detected
    if (
        entries[i].body() == parse_export([line])[0].body()
        and entries[i].hash == parse_export([line])[0].hash
    ):
        return  # the edit only touched the MAC or insignificant JSON layout: nothing verifiable changed
    assert not verify_export(entries).ok


def test_a_rehashed_commit_record_with_other_parts_is_caught(
    exported: tuple[list[str], str, str],
) -> None:
    """The commit's record is unsigned, but it must name the parts the signed loads named."""
    lines, _, _ = exported
    bodies = [e.body() for e in parse_export(lines)]
    target = next(i for i, b in enumerate(bodies) if b.get("command") == Command.COMMIT)
    record = bodies[target]["result"]["record"]
    record["kcvs"] = [record["kcvs"][1], record["kcvs"][0], *record["kcvs"][2:]]
    prev = bodies[0]["prev"]
    rebuilt = []
    for body in bodies:
        body["prev"] = prev
        e = make_entry(body)
        rebuilt.append(e)
        prev = e.hash
    report = verify_export(rebuilt)
    assert not report.ok and report.broken_at == target and "load_part" in (report.error or "")


def test_events_are_reported_as_unverifiable_offline(new_unit: NewUnit) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    report = verify_export(unit.transcript())
    assert report.ok and len(report.warnings) == 1 and "dev_master_key" in report.warnings[0]
    assert report.macs == 1


def test_wrong_first_admin_names_the_imprint_entry(exported: tuple[list[str], str, str]) -> None:
    lines, _, _ = exported
    report = verify_export(parse_export(lines), first_admin="ab" * 32)
    assert not report.ok and report.broken_at == 1 and report.commands > 0
