"""Whole key ceremonies through the unit's public calls, and every refusal path."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from kyok.crypto.encoding import b64e
from kyok.crypto.kem import HybridPrivateKey
from kyok.crypto.mkvp import mkvp as compute_mkvp
from kyok.crypto.xorsplit import xor_bytes
from kyok.unit.blob import PURPOSE_ROOT_KEY, BlobRef
from kyok.unit.commands import Command, Signature, SignedCommand
from kyok.unit.errors import CeremonyRejected, MasterKeyMismatch, UnitSealed
from kyok.unit.transport import load_part_command, sealed_digest
from kyok.unit.unit import CryptoUnit

from .conftest import Custodian, ceremony, command, imprint, load, make_custodians, run

NewUnit = Callable[..., CryptoUnit]
Reopen = Callable[[CryptoUnit], CryptoUnit]


def snapshot(unit: CryptoUnit) -> tuple[Any, ...]:
    """Everything a refused command must leave unchanged."""
    status = unit.status()
    return (
        unit.state,
        len(unit.transcript()),
        [r.to_json() for r in status.registers],
        unit.sealed,
    )


def assert_refused(
    unit: CryptoUnit, exc: type[Exception], fn: Callable[[], object], match: str | None = None
) -> None:
    before = snapshot(unit)
    with pytest.raises(exc, match=match):
        fn()
    assert snapshot(unit) == before


def ref(n: int = 1) -> BlobRef:
    return BlobRef("inst-1", f"key-{n}", f"00000000-0000-4000-8000-{n:012d}", PURPOSE_ROOT_KEY)


def test_xor_three_of_three_ceremony(new_unit: NewUnit) -> None:
    unit = new_unit()
    alice, bob, carol = cs = make_custodians(3)
    assert unit.sealed and unit.state.imprint
    imprint(unit, cs, signature=2, revocation=2)
    assert not unit.state.imprint
    assert [a.name for a in unit.state.admins] == ["alice", "bob", "carol"]

    assert load(unit, alice, "new", parts=3)["loaded"] == 1
    status = {r.register: r for r in unit.status().registers}
    assert status["new"].state == "partial" and status["new"].kcvs == (alice.part.kcv,)
    load(unit, bob, "new", parts=3)
    result = load(unit, carol, "new", parts=3)
    expected = compute_mkvp(xor_bytes(alice.part.secret(), bob.part.secret(), carol.part.secret()))
    assert result["mkvp"] == expected
    status = {r.register: r for r in unit.status().registers}
    assert status["new"].state == "full" and status["new"].mkvp == expected

    run(unit, Command.COMMIT, {"mkvp": expected, "scheme": "xor", "threshold": 3}, [alice, bob])
    assert unit.state.pending is not None and unit.state.pending.mkvp == expected
    assert unit.sealed  # committed but not active
    run(unit, Command.ACTIVATE, {"mkvp": expected}, [bob, carol])
    assert not unit.sealed and unit.state.current is not None
    assert unit.state.current.mkvp == expected and unit.state.current.epoch == 1

    sealed = unit.generate_blob(ref())
    ct, dek = unit.handle(sealed).wrap(None, ["aad"])
    assert len(dek) == 32
    assert unit.handle(sealed).unwrap(ct, ["aad"]) == dek


def test_shamir_two_of_three_survives_restart(new_unit: NewUnit, reopen: Reopen) -> None:
    unit = new_unit()
    alice, bob, carol = cs = make_custodians(3, ["ed25519", "ecdsa-p256", "ml-dsa-65"])
    imprint(unit, cs, signature=2, revocation=2)
    mkvp = ceremony(unit, cs, "shamir", 2, [alice, carol])
    blobs = [unit.generate_blob(ref(i)) for i in range(5)]
    wrapped = [unit.handle(b).wrap(os.urandom(32), [f"doc-{i}"]) for i, b in enumerate(blobs)]

    restarted = reopen(unit)
    assert restarted.sealed
    with pytest.raises(UnitSealed):
        restarted.handle(blobs[0])
    with pytest.raises(UnitSealed):
        restarted.generate_blob(ref(9))
    first = load(restarted, bob, "current")
    assert first["loaded"] == 1 and first["needed"] == 2 and restarted.sealed
    second = load(restarted, carol, "current")
    assert second["unsealed"] is True and second["mkvp"] == mkvp
    assert not restarted.sealed
    for i, (b, (ct, dek)) in enumerate(zip(blobs, wrapped, strict=True)):
        assert restarted.handle(b).unwrap(ct, [f"doc-{i}"]) == dek


def test_any_two_shamir_parts_unseal(new_unit: NewUnit, reopen: Reopen) -> None:
    unit = new_unit()
    cs = make_custodians(3)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "shamir", 2, cs[:2])
    for pair in [(0, 1), (0, 2), (1, 2)]:
        again = reopen(unit)
        for i in pair:
            load(again, cs[i], "current")
        assert not again.sealed, pair


def test_xor_restart_needs_every_part(new_unit: NewUnit, reopen: Reopen) -> None:
    unit = new_unit()
    cs = make_custodians(3)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 3, cs[:2])
    again = reopen(unit)
    load(again, cs[0], "current")
    load(again, cs[2], "current")
    assert again.sealed
    load(again, cs[1], "current")
    assert not again.sealed


@pytest.fixture
def ready(new_unit: NewUnit) -> tuple[CryptoUnit, list[Custodian]]:
    """A unit out of imprint mode with 3 administrators, thresholds 2/2, no master key."""
    unit = new_unit()
    cs = make_custodians(3)
    imprint(unit, cs, 2, 2)
    return unit, cs


def test_wrong_mkvp_on_commit_changes_nothing(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    for c in cs:
        load(unit, c, "new", parts=3)
    wrong = "00" * 16
    assert_refused(
        unit,
        MasterKeyMismatch,
        lambda: run(unit, Command.COMMIT, {"mkvp": wrong, "scheme": "xor", "threshold": 3}, cs[:2]),
    )


def test_replayed_command_is_refused(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    extra = make_custodians(4)[3]
    cmd = command(
        unit,
        Command.ADD_ADMIN,
        {"name": "dave", "public_key": b64e(extra.key.verifying_key().der)},
        cs[:2],
    )
    unit.submit(cmd)
    run(unit, Command.REMOVE_ADMIN, {"admin": extra.id}, cs[:2])
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(cmd), match="sequence number")


def test_unsigned_and_under_signed_commands_are_refused(
    ready: tuple[CryptoUnit, list[Custodian]],
) -> None:
    unit, cs = ready
    args = {"signature": 1, "revocation": 1}
    assert_refused(
        unit, CeremonyRejected, lambda: run(unit, Command.SET_THRESHOLDS, args, []), match="needs 2"
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.SET_THRESHOLDS, args, cs[:1]),
        match="needs 2",
    )


def test_altered_command_is_refused(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    signed = command(unit, Command.SET_THRESHOLDS, {"signature": 2, "revocation": 3}, cs[:2])
    altered = SignedCommand(
        signed.unit_id,
        signed.seq,
        signed.command,
        {"signature": 1, "revocation": 1},
        signed.signatures,
    )
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(altered), match="does not verify")
    renamed = SignedCommand(signed.unit_id, signed.seq, Command.CLEAR_NEW, {}, signed.signatures)
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(renamed), match="does not verify")
    other_unit = SignedCommand(
        "another-unit", signed.seq, signed.command, signed.args, signed.signatures
    )
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(other_unit), match="another unit")


def test_signature_tricks_are_refused(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    outsider = make_custodians(4)[3]
    one = command(unit, Command.SET_THRESHOLDS, {"signature": 2, "revocation": 2}, cs[:1])
    doubled = SignedCommand(one.unit_id, one.seq, one.command, one.args, one.signatures * 2)
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(doubled), match="twice")
    foreign = command(
        unit, Command.SET_THRESHOLDS, {"signature": 2, "revocation": 2}, [cs[0], outsider]
    )
    assert_refused(
        unit, CeremonyRejected, lambda: unit.submit(foreign), match="unknown administrator"
    )
    # a valid signature presented under another administrator's id
    sig = one.signatures[0]
    swapped = SignedCommand(
        one.unit_id, one.seq, one.command, one.args, (sig, Signature(cs[1].id, sig.signature))
    )
    assert_refused(unit, CeremonyRejected, lambda: unit.submit(swapped), match="does not verify")


def test_imprint_mode_rules(new_unit: NewUnit) -> None:
    unit = new_unit()
    a, b = make_custodians(2)
    # the first administrator needs no signature, the second needs the first's
    run(
        unit,
        Command.ADD_ADMIN,
        {"name": "alice", "public_key": b64e(a.key.verifying_key().der)},
        [],
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit,
            Command.ADD_ADMIN,
            {"name": "bob", "public_key": b64e(b.key.verifying_key().der)},
            [],
        ),
        match="needs 1",
    )
    run(
        unit, Command.ADD_ADMIN, {"name": "bob", "public_key": b64e(b.key.verifying_key().der)}, [a]
    )
    # no master-key work in imprint mode
    assert_refused(unit, CeremonyRejected, lambda: load(unit, a, "new", parts=2), match="imprint")
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.SET_THRESHOLDS, {"signature": 3, "revocation": 1}, [a]),
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.SET_THRESHOLDS, {"signature": 0, "revocation": 1}, [a]),
    )
    run(unit, Command.SET_THRESHOLDS, {"signature": 2, "revocation": 2}, [a])
    assert not unit.state.imprint
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.REMOVE_ADMIN, {"admin": b.id}, [a, b]),
        match="fewer",
    )


def test_admin_rules(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    again = {"name": "zed", "public_key": b64e(cs[0].key.verifying_key().der)}
    assert_refused(
        unit, CeremonyRejected, lambda: run(unit, Command.ADD_ADMIN, again, cs[:2]), match="already"
    )
    junk = {"name": "zed", "public_key": b64e(b"not a key")}
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.ADD_ADMIN, junk, cs[:2]),
        match="public_key",
    )
    dup_name = {"name": "alice", "public_key": b64e(make_custodians(1)[0].key.verifying_key().der)}
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.ADD_ADMIN, dup_name, cs[:2]),
        match="named",
    )
    extra = make_custodians(9)[3:]
    for c in extra[:5]:
        run(
            unit,
            Command.ADD_ADMIN,
            {"name": c.name, "public_key": b64e(c.key.verifying_key().der)},
            cs[:2],
        )
    ninth = extra[5]
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit,
            Command.ADD_ADMIN,
            {"name": ninth.name, "public_key": b64e(ninth.key.verifying_key().der)},
            cs[:2],
        ),
        match="at most 8",
    )
    # removing needs the revocation threshold
    run(unit, Command.SET_THRESHOLDS, {"signature": 2, "revocation": 3}, cs[:2])
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.REMOVE_ADMIN, {"admin": extra[0].id}, cs[:2]),
        match="needs 3",
    )
    run(unit, Command.REMOVE_ADMIN, {"admin": extra[0].id}, cs)
    assert unit.state.admin(extra[0].id) is None
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.REMOVE_ADMIN, {"admin": "ff" * 32}, cs),
        match="no such",
    )
    unknown = {"name": "x", "public_key": b64e(extra[1].key.verifying_key().der), "role": "root"}
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.ADD_ADMIN, unknown, cs[:2]),
        match="unexpected",
    )


def test_part_loading_refusals(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, (alice, bob, carol) = ready
    load(unit, alice, "new", parts=3)
    # the same custodian cannot load a second part, nor anyone the same part twice
    bob_part_by_alice = Custodian("alice", alice.key, bob.part)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: load(unit, bob_part_by_alice, "new", parts=3),
        match="one part",
    )
    alice_part_by_bob = Custodian("bob", bob.key, alice.part)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: load(unit, alice_part_by_bob, "new", parts=3),
        match="loaded already",
    )
    assert_refused(
        unit, CeremonyRejected, lambda: load(unit, bob, "new", parts=2), match="filled with 3"
    )
    # a part sealed for another unit process (another transport key) does not load
    other = make_custodians(1)[0]
    cmd, sealed = load_part_command(
        unit_id=unit.unit_id,
        seq=unit.state.seq,
        register="new",
        part=bob.part,
        transport=HybridPrivateKey.generate().public_key(),
        parts=3,
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: unit.submit(cmd.signed_by(bob.key), sealed_part=sealed),
        match="transport",
    )
    # sealed bytes that are not the signed ones
    cmd, sealed = load_part_command(
        unit_id=unit.unit_id,
        seq=unit.state.seq,
        register="new",
        part=bob.part,
        transport=unit.transport_public_key(),
        parts=3,
    )
    _, other_sealed = load_part_command(
        unit_id=unit.unit_id,
        seq=unit.state.seq,
        register="new",
        part=other.part,
        transport=unit.transport_public_key(),
        parts=3,
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: unit.submit(cmd.signed_by(bob.key), sealed_part=other_sealed),
        match="signature covers",
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: unit.submit(cmd.signed_by(bob.key)),
        match="needs the sealed part",
    )
    corrupted = sealed[:-1] + bytes([sealed[-1] ^ 1])
    forged = SignedCommand(
        cmd.unit_id,
        cmd.seq,
        cmd.command,
        {**cmd.args, "sealed_part_sha256": sealed_digest(corrupted)},
    ).signed_by(bob.key)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: unit.submit(forged, sealed_part=corrupted),
        match="does not open",
    )
    # commit before the register is full; activate before commit
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit, Command.COMMIT, {"mkvp": "0" * 32, "scheme": "xor", "threshold": 3}, [alice, bob]
        ),
        match="not full",
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.ACTIVATE, {"mkvp": "0" * 32}, [alice, bob]),
        match="no committed",
    )
    # loading into a register that has no master key
    assert_refused(unit, CeremonyRejected, lambda: load(unit, carol, "current"), match="no current")


def test_commit_rules(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    results = [load(unit, c, "new", parts=3) for c in cs]
    mkvp = results[-1]["mkvp"]
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "xor", "threshold": 2}, cs[:2]),
        match="all 3",
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "shamir", "threshold": 1}, cs[:2]
        ),
        match="between 2",
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "shamir", "threshold": 4}, cs[:2]
        ),
        match="between 2",
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "dev", "threshold": 3}, cs[:2]),
    )
    run(unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "shamir", "threshold": 2}, cs[:2])
    pending = unit.state.pending
    assert (
        pending is not None
        and len(pending.envelopes) == 3
        and pending.kcvs == tuple(c.part.kcv for c in cs)
    )
    # the wrong MKVP cannot be activated
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.ACTIVATE, {"mkvp": "f" * 32}, cs[:2]),
        match="not the committed",
    )
    # clearing discards the committed key
    run(unit, Command.CLEAR_NEW, {}, cs[:2])
    assert unit.state.pending is None


def test_a_single_administrator_cannot_load_the_master_key(new_unit: NewUnit) -> None:
    """With thresholds of 2, one person holding every part file still cannot commit."""
    unit = new_unit()
    alice, bob = cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    load(unit, alice, "new", parts=2)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: load(unit, Custodian("alice", alice.key, bob.part), "new", parts=2),
    )
    result = load(unit, bob, "new", parts=2)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit, Command.COMMIT, {"mkvp": result["mkvp"], "scheme": "xor", "threshold": 2}, [alice]
        ),
    )


def test_the_last_administrator_cannot_be_removed_even_in_imprint_mode(new_unit: NewUnit) -> None:
    """Otherwise an empty unit would take an unsigned "first" administrator again, and an
    auditor's --first-admin anchor would no longer mean anything."""
    unit = new_unit()
    (a,) = make_custodians(1)
    run(
        unit,
        Command.ADD_ADMIN,
        {"name": "alice", "public_key": b64e(a.key.verifying_key().der)},
        [],
    )
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.REMOVE_ADMIN, {"admin": a.id}, [a]),
        match="fewer",
    )


def test_a_rotation_needs_new_parts(ready: tuple[CryptoUnit, list[Custodian]]) -> None:
    unit, cs = ready
    ceremony(unit, cs, "xor", 3, cs[:2])
    # the very same parts: the same master key again
    for c in cs:
        load(unit, c, "new", parts=3)
    mkvp = unit.status().registers[0].mkvp
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(unit, Command.COMMIT, {"mkvp": mkvp, "scheme": "xor", "threshold": 3}, cs[:2]),
        match="new parts",
    )
    run(unit, Command.CLEAR_NEW, {}, cs[:2])
    # one old part among new ones
    from kyok.unit.keypart import KeyPart

    mixed = [
        cs[0],
        Custodian("bob", cs[1].key, KeyPart.generate()),
        Custodian("carol", cs[2].key, KeyPart.generate()),
    ]
    for c in mixed:
        result = load(unit, c, "new", parts=3)
    assert_refused(
        unit,
        CeremonyRejected,
        lambda: run(
            unit, Command.COMMIT, {"mkvp": result["mkvp"], "scheme": "xor", "threshold": 3}, cs[:2]
        ),
        match="reused",
    )
