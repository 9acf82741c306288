"""Restarts, dev auto-unseal, and an operator who rewrites the transcript in the database."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kyok.clock import FakeClock
from kyok.crypto.encoding import b64e
from kyok.store.memory import MemoryStore
from kyok.unit import ceremony as rules
from kyok.unit.blob import PURPOSE_ROOT_KEY, BlobRef
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.errors import UnitSealed, UnitTampered
from kyok.unit.seal import SealProvider
from kyok.unit.state import GENESIS_HASH
from kyok.unit.transcript import TranscriptEntry, entry_hash, make_entry
from kyok.unit.unit import CryptoUnit

from .conftest import Custodian, ceremony, imprint, load, make_custodians

NewUnit = Callable[..., CryptoUnit]
Reopen = Callable[[CryptoUnit], CryptoUnit]


class RewrittenStore:
    """The operator's view: the same store, but with a transcript of their choosing."""

    def __init__(self, inner: Any, entries: Sequence[TranscriptEntry]) -> None:
        self._inner = inner
        self.entries = list(entries)

    def transcript(self, unit_id: str, after: int = -1) -> list[TranscriptEntry]:
        return [e for e in self.entries if e.n > after]

    def append_transcript(self, unit_id: str, entries: Sequence[TranscriptEntry]) -> None:
        self.entries.extend(entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def rechain(
    bodies: list[dict[str, Any]], keep_macs: dict[int, str | None] | None = None
) -> list[TranscriptEntry]:
    """Renumber and re-hash entry bodies into a consistent chain (what a forger would do)."""
    out: list[TranscriptEntry] = []
    prev = GENESIS_HASH
    for n, body in enumerate(bodies):
        body = {**body, "n": n, "prev": prev}
        e = make_entry(body)
        mac = (keep_macs or {}).get(n)
        out.append(TranscriptEntry(e.n, e.entry, e.hash, mac))
        prev = e.hash
    return out


def test_dev_unit_auto_unseals_and_keeps_its_file_private(
    new_unit: NewUnit, reopen: Reopen, tmp_path: Path
) -> None:
    unit = new_unit("dev")
    mkvp = unit.bootstrap_dev()
    assert not unit.sealed and unit.state.current is not None and unit.state.current.mkvp == mkvp
    seal_file = tmp_path / "dev-seal.json"
    assert stat.S_IMODE(seal_file.stat().st_mode) == 0o600
    b = unit.generate_blob(
        BlobRef("inst-1", "k", "00000000-0000-4000-8000-000000000001", PURPOSE_ROOT_KEY)
    )
    ct, dek = unit.handle(b).wrap(None)
    again = reopen(unit)
    assert not again.sealed
    assert again.handle(b).unwrap(ct) == dek
    assert unit.bootstrap_dev() == mkvp  # idempotent


def test_shares_unit_never_writes_the_master_key(new_unit: NewUnit, tmp_path: Path) -> None:
    unit = new_unit("shares")
    cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 2, cs)
    assert not (tmp_path / "dev-seal.json").exists()


def test_seal_kills_handles(new_unit: NewUnit) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    b = unit.generate_blob(
        BlobRef("inst-1", "k", "00000000-0000-4000-8000-000000000001", PURPOSE_ROOT_KEY)
    )
    h = unit.handle(b)
    ct, _ = h.wrap(None)
    unit.seal()
    assert unit.sealed
    with pytest.raises(UnitSealed):
        h.unwrap(ct)
    with pytest.raises(UnitSealed):
        unit.handle(b)


def _activated(new_unit: NewUnit) -> tuple[CryptoUnit, list[Custodian]]:
    unit = new_unit("shares")
    cs = make_custodians(3)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "shamir", 2, cs[:2])
    return unit, cs


def _open_with(
    store: Any, unit: CryptoUnit, seals: dict[str, SealProvider], clock: FakeClock
) -> CryptoUnit:
    return CryptoUnit.open(store, unit.unit_id, seals, clock)


def test_forged_transcript_with_a_new_admin_set_is_caught_at_unseal(
    new_unit: NewUnit, memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> None:
    """The operator rewrites the whole transcript: their own administrator imprints the unit,
    adds the real custodians (their public keys are public), lowers the thresholds to 1 and
    signs a commit and an activation of the real master-key record (also public). The real
    custodians load their real parts; the unit assembles the real master key, then finds no
    MAC it can verify, refuses to unseal and writes nothing."""
    unit, cs = _activated(new_unit)
    bodies = [e.body() for e in unit.transcript()]
    record = next(b for b in bodies if b.get("command") == Command.COMMIT)["result"]["record"]
    mallory = make_custodians(1)[0]

    def cmd_body(
        seq: int, name: str, args: dict[str, Any], result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        signed = SignedCommand(unit.unit_id, seq, name, args)
        if seq > 0:
            signed = signed.signed_by(mallory.key)
        return {
            "time": "2026-01-01T00:00:00Z",
            "unit": unit.unit_id,
            "type": "command",
            "seq": seq,
            "command": name,
            "args": args,
            "signatures": signed.signatures_json(),
            "result": result or {},
        }

    forged = [
        bodies[0],
        cmd_body(
            0,
            Command.ADD_ADMIN,
            {"name": "mallory", "public_key": b64e(mallory.key.verifying_key().der)},
        ),
    ]
    for seq, c in enumerate(cs, start=1):
        forged.append(
            cmd_body(
                seq,
                Command.ADD_ADMIN,
                {"name": c.name, "public_key": b64e(c.key.verifying_key().der)},
            )
        )
    forged.append(cmd_body(4, Command.SET_THRESHOLDS, {"signature": 1, "revocation": 1}))
    seq = 5
    parts = len(record["kcvs"])
    for i, kcv in enumerate(
        record["kcvs"], start=1
    ):  # KCVs are public: "load" them, signed by mallory
        args = {
            "register": "new",
            "parts": parts,
            "kcv": kcv,
            "transport": "00" * 32,
            "sealed_part_sha256": "00" * 32,
        }
        forged.append(
            cmd_body(seq, Command.LOAD_PART, args, {"register": "new", "kcv": kcv, "loaded": i})
        )
        seq += 1
    commit_args = {"mkvp": record["mkvp"], "scheme": "shamir", "threshold": 2}
    forged.append(cmd_body(seq, Command.COMMIT, commit_args, {"record": record}))
    forged.append(cmd_body(seq + 1, Command.ACTIVATE, {"mkvp": record["mkvp"]}))
    fake = RewrittenStore(memory_store.units, rechain(forged))

    victim = _open_with(fake, unit, seals, clock)  # the forgery obeys every rule
    assert victim.sealed and victim.state.admins[0].name == "mallory"
    load(victim, cs[0], "current")
    before = len(fake.entries)
    with pytest.raises(UnitTampered, match="not authenticated"):
        load(victim, cs[1], "current")
    assert victim.sealed and len(fake.entries) == before
    with pytest.raises(UnitTampered):
        victim.require_unsealed()
    # the genuine transcript, untouched, still unseals with the same parts
    genuine = _open_with(memory_store.units, unit, seals, clock)
    load(genuine, cs[0], "current")
    load(genuine, cs[1], "current")
    assert not genuine.sealed


def test_appended_unauthenticated_event_is_caught(
    new_unit: NewUnit, memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> None:
    unit, cs = _activated(new_unit)
    real = unit.transcript()
    state = unit.state
    event = {
        "n": state.n,
        "prev": state.head,
        "time": "2026-01-01T00:00:00Z",
        "unit": unit.unit_id,
        "type": "event",
        "event": rules.EVENT_UNSEALED,
        "data": {},
    }
    e = make_entry(event)
    fake = RewrittenStore(memory_store.units, [*real, e])
    victim = _open_with(fake, unit, seals, clock)
    load(victim, cs[0], "current")
    with pytest.raises(UnitTampered, match="unauthenticated event"):
        load(victim, cs[1], "current")
    assert victim.sealed


def test_edited_entry_breaks_the_chain(
    new_unit: NewUnit, memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> None:
    unit, _ = _activated(new_unit)
    real = unit.transcript()
    body = real[2].body()
    body["time"] = "2030-01-01T00:00:00Z"
    edited = [
        *real[:2],
        TranscriptEntry(2, make_entry(body).entry, real[2].hash, real[2].mac),
        *real[3:],
    ]
    with pytest.raises(UnitTampered, match="entry 2"):
        _open_with(RewrittenStore(memory_store.units, edited), unit, seals, clock)
    assert entry_hash(body) != real[2].hash


def test_dev_unit_with_a_stripped_mac_stays_sealed(
    new_unit: NewUnit, memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    stripped = [TranscriptEntry(e.n, e.entry, e.hash, None) for e in unit.transcript()]
    victim = _open_with(RewrittenStore(memory_store.units, stripped), unit, seals, clock)
    assert victim.sealed and victim.tampered
    with pytest.raises(UnitTampered):
        victim.require_unsealed()


def test_blob_is_bound_to_its_place(new_unit: NewUnit) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    from dataclasses import replace

    from kyok.unit.blob import SealedBlob
    from kyok.unit.errors import BlobCorrupt

    r = BlobRef("inst-1", "key-a", "00000000-0000-4000-8000-000000000001", PURPOSE_ROOT_KEY)
    b = unit.generate_blob(r)
    for moved in (
        replace(r, owner_id="key-b"),
        replace(r, instance_id="inst-2"),
        replace(r, id="00000000-0000-4000-8000-000000000002"),
    ):
        with pytest.raises(BlobCorrupt):
            unit.handle(SealedBlob(moved, b.epoch, b.data))
    flipped = bytearray(b.data)
    flipped[-1] ^= 1
    with pytest.raises(BlobCorrupt):
        unit.handle(
            SealedBlob(
                replace(r, id="00000000-0000-4000-8000-000000000009"), b.epoch, bytes(flipped)
            )
        )


def test_random_bytes_do_not_open(new_unit: NewUnit) -> None:
    from kyok.unit.blob import SealedBlob
    from kyok.unit.errors import BlobCorrupt

    unit = new_unit("dev")
    unit.bootstrap_dev()
    r = BlobRef("inst-1", "k", "00000000-0000-4000-8000-000000000001", PURPOSE_ROOT_KEY)
    for data in (
        b"",
        os.urandom(10),
        b"\x01" + os.urandom(60),
        b"\x01\x00\x00\x00\x07" + os.urandom(60),
    ):
        with pytest.raises(BlobCorrupt):
            unit.handle(SealedBlob(r, 1, data))
