"""Master-key rotation: load and commit a new key, re-encrypt every blob online, retire the old."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from kyok.crypto.mkvp import mkvp as compute_mkvp
from kyok.store.memory import MemoryStore
from kyok.store.records import BlobRecord
from kyok.unit import blob as blobfmt
from kyok.unit.blob import PURPOSE_ROOT_KEY, PURPOSE_STANDARD_KEY, BlobRef, SealedBlob
from kyok.unit.commands import Command
from kyok.unit.errors import CeremonyRejected, UnitSealed
from kyok.unit.handles import STANDARD_KEY_EXPORT
from kyok.unit.keypart import KeyPart
from kyok.unit.unit import CryptoUnit

from .conftest import Custodian, ceremony, imprint, load, make_custodians, run

NewUnit = Callable[..., CryptoUnit]
Reopen = Callable[[CryptoUnit], CryptoUnit]


def store_blobs(store: MemoryStore, unit: CryptoUnit, count: int) -> list[SealedBlob]:
    out = []
    with store.uow() as uow:
        for i in range(count):
            purpose = PURPOSE_ROOT_KEY if i % 3 else PURPOSE_STANDARD_KEY
            ref = BlobRef(
                unit.instance_id, f"key-{i}", f"00000000-0000-4000-8000-{i:012d}", purpose
            )
            sealed = unit.generate_blob(ref)
            uow.blobs.add(
                BlobRecord(
                    ref.instance_id, ref.owner_id, ref.id, ref.purpose, sealed.epoch, sealed.data
                )
            )
            out.append(sealed)
        uow.commit()
    return out


def reload_blobs(store: MemoryStore, blobs: list[SealedBlob]) -> list[SealedBlob]:
    with store.uow() as uow:
        rows = uow.blobs.get_many(blobs[0].ref.instance_id, [b.ref.id for b in blobs])
    return [SealedBlob(b.ref, rows[b.ref.id].mk_epoch, rows[b.ref.id].data) for b in blobs]


def new_parts(cs: list[Custodian]) -> list[Custodian]:
    return [Custodian(c.name, c.key, KeyPart.generate(c.name)) for c in cs]


def test_rotation_reencrypts_everything_and_retires_the_old_key(
    new_unit: NewUnit, memory_store: MemoryStore
) -> None:
    unit = new_unit()
    cs = make_custodians(3)
    imprint(unit, cs, 2, 2)
    old_mkvp = ceremony(unit, cs, "xor", 3, cs[:2])
    blobs = store_blobs(memory_store, unit, 30)
    roots = [b for b in blobs if b.ref.purpose == PURPOSE_ROOT_KEY]
    wrapped = [unit.handle(b).wrap(os.urandom(32)) for b in roots]
    materials = [
        unit.export_material(b, STANDARD_KEY_EXPORT)
        for b in blobs
        if b.ref.purpose == PURPOSE_STANDARD_KEY
    ]

    cs2 = new_parts(cs)
    new_mkvp = ceremony(unit, cs2, "shamir", 2, cs[1:])
    assert new_mkvp != old_mkvp
    state = unit.state
    assert state.current is not None and state.current.epoch == 2 and state.previous is not None
    assert unit.rotation_remaining() == 30
    # new blobs use the new key at once; old ones still open meanwhile
    fresh = unit.generate_blob(
        BlobRef(
            unit.instance_id, "key-new", "00000000-0000-4000-8000-999999999999", PURPOSE_ROOT_KEY
        )
    )
    assert fresh.epoch == 2
    assert unit.handle(roots[0]).unwrap(*wrapped[0][:1]) == wrapped[0][1]
    # a second activation waits for the re-encryption
    with pytest.raises(CeremonyRejected):
        run(unit, Command.ACTIVATE, {"mkvp": new_mkvp}, cs[:2])

    progress: list[tuple[int, int]] = []
    assert unit.reencrypt(batch_size=7, progress=lambda d, t: progress.append((d, t))) == 30
    assert progress[0] == (0, 30) and progress[-1] == (30, 30)
    assert unit.state.previous is None and unit.rotation_remaining() is None
    events = [e.body() for e in unit.transcript()]
    assert events[-1]["event"] == "rotation_complete" and events[-1]["data"]["retired"] == 1

    after = reload_blobs(memory_store, blobs)
    assert all(blobfmt.epoch_of(b.data) == 2 for b in after)
    unit.seal()
    load(unit, cs2[0], "current")
    load(unit, cs2[2], "current")
    roots_after = [b for b in after if b.ref.purpose == PURPOSE_ROOT_KEY]
    for b, (ct, dek) in zip(roots_after, wrapped, strict=True):
        assert unit.handle(b).unwrap(ct) == dek
    exported = [
        unit.export_material(b, STANDARD_KEY_EXPORT)
        for b in after
        if b.ref.purpose == PURPOSE_STANDARD_KEY
    ]
    assert exported == materials
    # the old master key is gone: its parts no longer load anywhere
    with pytest.raises(CeremonyRejected):
        load(unit, cs[0], "previous")
    assert compute_mkvp(b"\0" * 32) != old_mkvp


class Crash(Exception):
    pass


def test_interrupted_reencryption_resumes_after_a_restart(
    new_unit: NewUnit, reopen: Reopen, memory_store: MemoryStore
) -> None:
    unit = new_unit("shares")
    cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 2, cs)
    blobs = store_blobs(memory_store, unit, 25)
    cs2 = new_parts(cs)
    ceremony(unit, cs2, "xor", 2, cs)

    def crash_after_first_batch(done: int, total: int) -> None:
        if done >= 10:
            raise Crash()

    with pytest.raises(Crash):
        unit.reencrypt(batch_size=10, progress=crash_after_first_batch)
    assert unit.rotation_remaining() == 15

    again = reopen(unit)  # the process died: both master keys must be loaded again
    assert again.sealed
    for c in cs2:
        load(again, c, "current")
    with pytest.raises(UnitSealed):
        again.reencrypt()
    for c in cs:
        load(again, c, "previous")
    assert again.reencrypt(batch_size=4) == 15
    assert again.state.previous is None
    assert all(blobfmt.epoch_of(b.data) == 2 for b in reload_blobs(memory_store, blobs))


def test_dev_rotation_recovers_both_keys_from_the_seal(
    new_unit: NewUnit, reopen: Reopen, memory_store: MemoryStore
) -> None:
    unit = new_unit("dev")
    cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 2, cs)
    store_blobs(memory_store, unit, 5)
    ceremony(unit, new_parts(cs), "shamir", 2, cs)
    again = reopen(unit)
    assert not again.sealed
    assert again.reencrypt() == 5
    assert reopen(again).state.previous is None
