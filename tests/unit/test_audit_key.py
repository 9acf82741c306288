"""The instance's audit signing key: a unit blob of its own, stable across restarts and
master-key rotation, never available while sealed, loaded without store access once in memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kyok.crypto.errors import InvalidSignature
from kyok.store.memory import MemoryStore
from kyok.unit.blob import PURPOSE_AUDIT_SIGNING
from kyok.unit.errors import UnitSealed
from kyok.unit.keypart import KeyPart
from kyok.unit.unit import CryptoUnit

from .conftest import Custodian, ceremony, imprint, load, make_custodians

NewUnit = Callable[..., CryptoUnit]
Reopen = Callable[[CryptoUnit], CryptoUnit]


def test_audit_key_is_a_stable_sealed_blob(
    new_unit: NewUnit, reopen: Reopen, memory_store: MemoryStore
) -> None:
    unit = new_unit("shares")
    cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 2, cs)
    assert not unit.audit_key_loaded()
    public = unit.audit_public_key()
    assert unit.audit_key_loaded()
    signature = unit.audit_sign(b"checkpoint")
    public.verify(signature, b"checkpoint")
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"another checkpoint")
    with memory_store.uow(read_only=True) as uow:
        row = uow.blobs.get(unit.instance_id, f"audit-signing:{unit.instance_id}")
    assert row is not None and row.purpose == PURPOSE_AUDIT_SIGNING
    assert public.to_pem() not in row.data and public.der not in row.data

    again = reopen(unit)
    with pytest.raises(UnitSealed):
        again.audit_public_key()
    for c in cs:
        load(again, c, "current")
    assert again.audit_public_key() == public

    new = [Custodian(c.name, c.key, KeyPart.generate(c.name)) for c in cs]
    ceremony(again, new, "xor", 2, cs)
    assert again.reencrypt() == 1  # the audit key's blob moved to the new master key
    third = reopen(again)
    for c in new:
        load(third, c, "current")
    assert third.audit_public_key() == public


def test_each_instance_has_its_own_audit_key_and_seal_forgets_it(new_unit: NewUnit) -> None:
    a, b = new_unit("dev", "inst-a"), new_unit("dev", "inst-b")
    a.bootstrap_dev()
    b.bootstrap_dev()
    assert a.audit_public_key() != b.audit_public_key()
    a.seal()
    assert not a.audit_key_loaded()
    with pytest.raises(UnitSealed):
        a.audit_sign(b"m")
