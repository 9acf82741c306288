"""The unit's own secret: sealed like any blob, survives restarts and master-key rotation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kyok.crypto.errors import InvalidSignature
from kyok.store.memory import MemoryStore
from kyok.unit.errors import UnitSealed
from kyok.unit.keypart import KeyPart
from kyok.unit.unit import CryptoUnit

from .conftest import Custodian, ceremony, imprint, load, make_custodians

NewUnit = Callable[..., CryptoUnit]
Reopen = Callable[[CryptoUnit], CryptoUnit]


def test_secret_is_stable_across_restarts_and_rotation(
    new_unit: NewUnit, reopen: Reopen, memory_store: MemoryStore
) -> None:
    unit = new_unit("shares")
    cs = make_custodians(2)
    imprint(unit, cs, 2, 2)
    ceremony(unit, cs, "xor", 2, cs)
    mac = unit.secret_hmac("api-keys", b"data")
    assert unit.secret_hmac("api-keys", b"data") == mac
    assert unit.secret_hmac("other-purpose", b"data") != mac
    sig = unit.secret_sign("tokens", b"message")
    unit.secret_public_key("tokens").verify(sig, b"message")
    with pytest.raises(InvalidSignature):
        unit.secret_public_key("tokens").verify(sig, b"other message")

    again = reopen(unit)
    with pytest.raises(UnitSealed):
        again.secret_hmac("api-keys", b"data")
    for c in cs:
        load(again, c, "current")
    assert again.secret_hmac("api-keys", b"data") == mac

    new = [Custodian(c.name, c.key, KeyPart.generate(c.name)) for c in cs]
    ceremony(again, new, "xor", 2, cs)
    assert again.reencrypt() >= 1  # the secret's blob moved to the new master key
    third = reopen(again)
    for c in new:
        load(third, c, "current")
    assert third.secret_hmac("api-keys", b"data") == mac
    assert third.secret_public_key("tokens") == unit.secret_public_key("tokens")


def test_each_unit_has_its_own_secret(new_unit: NewUnit) -> None:
    a, b = new_unit("dev", "inst-a"), new_unit("dev", "inst-b")
    a.bootstrap_dev()
    b.bootstrap_dev()
    assert a.secret_hmac("x", b"d") != b.secret_hmac("x", b"d")
    assert a.secret_public_key("t") != b.secret_public_key("t")


def test_seal_forgets_the_secret(new_unit: NewUnit) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    unit.secret_hmac("x", b"d")
    unit.seal()
    with pytest.raises(UnitSealed):
        unit.secret_sign("t", b"m")
