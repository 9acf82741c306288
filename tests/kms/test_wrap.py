"""Wrap, unwrap and rewrap (Key Protect reference §4)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyok.auth.principals import Principal
from kyok.errors import InternalError
from kyok.kms.errors import (
    InvalidField,
    KeyDeleted,
    KeyNotFound,
    KeyStateConflict,
    RootKeyRequired,
    UnwrapFailed,
)
from kyok.unit import wrapping
from kyok.unit.errors import UnitSealed

DEK = bytes(range(32))


def test_wrap_returns_ciphertext_naming_the_current_version(service, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK, ["a1"])
    assert res.key_version_id == key.version_id
    assert wrapping.version_of(res.ciphertext) == key.version_id
    assert res.dek is None
    assert DEK not in res.ciphertext
    assert repr(res) == f"WrapResult(key_version_id={key.version_id!r})"  # no bytes in logs


def test_wrap_without_plaintext_generates_a_32_byte_dek(service, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id)
    assert res.dek is not None and len(res.dek) == 32
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == res.dek
    other = service.wrap(instance, key.id)
    assert other.dek != res.dek


def test_unwrap_of_current_version_has_no_rewrap(service, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK)
    out = service.unwrap(instance, key.id, res.ciphertext)
    assert out.plaintext == DEK
    assert out.key_version_id == key.version_id
    assert out.rewrapped is None and out.rewrapped_version_id is None


def test_aad_must_match(service, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK, ["tenant=1", "db"])
    assert service.unwrap(instance, key.id, res.ciphertext, ["tenant=1", "db"]).plaintext == DEK
    for wrong in (None, [], ["tenant=1"], ["db", "tenant=1"], ["tenant=2", "db"], ["tenant=1db"]):
        with pytest.raises(UnwrapFailed) as info:
            service.unwrap(instance, key.id, res.ciphertext, wrong)
        assert info.value.status == 422 and info.value.code == "UNPROCESSABLE_CIPHERTEXT_ERR"


def test_no_aad_and_empty_aad_are_the_same(service, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK, None)
    assert service.unwrap(instance, key.id, res.ciphertext, []).plaintext == DEK


def test_old_versions_unwrap_and_are_rewrapped_to_the_newest(
    service, actor, instance, clock, root_key
):
    key = root_key()
    wrapped = [(service.wrap(instance, key.id, bytes([0]) * 32, ["v1"]), bytes([0]) * 32)]
    for n in range(1, 4):
        clock.advance(3600)
        key = service.rotate(actor, instance, key.id)
        dek = bytes([n]) * 32
        wrapped.append((service.wrap(instance, key.id, dek, [f"v{n + 1}"]), dek))
    newest = key.version_id
    assert len({w.key_version_id for w, _ in wrapped}) == 4
    for i, (w, dek) in enumerate(wrapped):
        out = service.unwrap(instance, key.id, w.ciphertext, [f"v{i + 1}"])
        assert out.plaintext == dek
        assert out.key_version_id == w.key_version_id
        if w.key_version_id == newest:
            assert out.rewrapped is None
        else:
            assert out.rewrapped_version_id == newest
            assert wrapping.version_of(out.rewrapped) == newest
            again = service.unwrap(instance, key.id, out.rewrapped, [f"v{i + 1}"])
            assert again.plaintext == dek and again.rewrapped is None


def test_rewrap_moves_to_the_newest_version_without_returning_the_dek(
    service, actor, instance, clock, root_key
):
    key = root_key()
    old = service.wrap(instance, key.id, DEK, ["x"])
    clock.advance(3600)
    key = service.rotate(actor, instance, key.id)
    res = service.rewrap(instance, key.id, old.ciphertext, ["x"])
    assert not hasattr(res, "plaintext") and not hasattr(res, "dek")
    assert res.key_version_id == old.key_version_id
    assert res.rewrapped_version_id == key.version_id
    assert service.unwrap(instance, key.id, res.ciphertext, ["x"]).plaintext == DEK
    with pytest.raises(UnwrapFailed):
        service.rewrap(instance, key.id, old.ciphertext, ["y"])
    # Rewrapping a ciphertext of the newest version makes a fresh one of the same version.
    fresh = service.rewrap(instance, key.id, res.ciphertext, ["x"])
    assert fresh.key_version_id == fresh.rewrapped_version_id == key.version_id
    assert fresh.ciphertext != res.ciphertext


def test_standard_keys_cannot_wrap(service, instance, root_key):
    key = root_key(extractable=True)
    for call in (
        lambda: service.wrap(instance, key.id, DEK),
        lambda: service.unwrap(instance, key.id, b"\x01" + b"\x00" * 60),
        lambda: service.rewrap(instance, key.id, b"\x01" + b"\x00" * 60),
    ):
        with pytest.raises(RootKeyRequired) as info:
            call()
        assert info.value.code == "KEY_ROOT_REQ_ERR" and info.value.status == 400


@pytest.mark.parametrize("where", list(range(0, 90, 7)))
def test_tampered_ciphertext_is_422(service, instance, root_key, where):
    key = root_key()
    ct = bytearray(service.wrap(instance, key.id, DEK).ciphertext)
    ct[where % len(ct)] ^= 0x01
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, key.id, bytes(ct))


@pytest.mark.parametrize(
    "junk",
    [
        b"x",
        b"\x01",
        b"\x02" + b"\x00" * 80,
        b"\x01" + b"\xff" * 16,
        b"\x01" * 5000,
        b"not ours at all" * 3,
    ],
)
def test_malformed_ciphertext_is_422(service, instance, root_key, junk):
    key = root_key()
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, key.id, junk)
    with pytest.raises(UnwrapFailed):
        service.rewrap(instance, key.id, junk)


def test_truncated_ciphertext_is_422(service, instance, root_key):
    key = root_key()
    ct = service.wrap(instance, key.id, DEK).ciphertext
    for cut in (1, 16, len(ct) - 17, len(ct) - 1):
        with pytest.raises(UnwrapFailed):
            service.unwrap(instance, key.id, ct[:cut])


def test_ciphertext_of_another_key_is_422(service, instance, root_key):
    a, b = root_key("key-a"), root_key("key-b")
    ct = service.wrap(instance, a.id, DEK).ciphertext
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, b.id, ct)
    # Even with the header rewritten to name b's version, a's ciphertext does not open.
    forged = wrapping.header(b.version_id) + ct[wrapping.HEADER_SIZE :]
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, b.id, forged)


def test_ciphertext_of_another_instance_is_422(service, actor, instance, root_key):
    a = root_key()
    other = service.create_instance(actor, "other").id
    b = service.create_key(actor, other, "kb")
    ct = service.wrap(other, b.id, DEK).ciphertext
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, a.id, ct)
    with pytest.raises(KeyNotFound):  # and the key itself is invisible from another instance
        service.unwrap(instance, b.id, ct)


def test_ciphertext_naming_an_unknown_version_is_422(service, instance, root_key):
    key = root_key()
    ct = service.wrap(instance, key.id, DEK).ciphertext
    forged = wrapping.header(str(uuid.uuid4())) + ct[wrapping.HEADER_SIZE :]
    with pytest.raises(UnwrapFailed):
        service.unwrap(instance, key.id, forged)


def test_key_checks_come_before_the_ciphertext(service, actor, instance, root_key):
    """A bad ciphertext on a suspended, destroyed or missing key reports the key's problem."""
    key = root_key()
    with pytest.raises(KeyNotFound):
        service.unwrap(instance, str(uuid.uuid4()), b"junk")
    service.disable(actor, instance, key.id)
    with pytest.raises(KeyStateConflict):
        service.unwrap(instance, key.id, b"junk")


def test_wrap_inputs_are_validated(service, instance, root_key):
    key = root_key()
    for plaintext, aad, target in [
        (b"", None, "plaintext"),
        (b"p" * 4097, None, "plaintext"),
        (DEK, ["a" * 256], "aad"),
        (DEK, "aad", "aad"),
    ]:
        with pytest.raises(InvalidField) as info:
            service.wrap(instance, key.id, plaintext, aad)
        assert info.value.target == target
    with pytest.raises(InvalidField) as info:
        service.unwrap(instance, key.id, b"")
    assert info.value.target == "ciphertext"
    big = service.wrap(instance, key.id, b"p" * 4096)
    assert service.unwrap(instance, key.id, big.ciphertext).plaintext == b"p" * 4096


def test_alias_works_as_id(service, instance, root_key):
    key = root_key(aliases=["payments-root"])
    res = service.wrap(instance, "payments-root", DEK)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK
    assert service.unwrap(instance, "payments-root", res.ciphertext).plaintext == DEK
    assert service.unwrap(instance, key.id.upper(), res.ciphertext).plaintext == DEK


def test_sealed_unit_refuses(service, units, instance, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK)
    units.seal(instance)
    for call in (
        lambda: service.wrap(instance, key.id, DEK),
        lambda: service.unwrap(instance, key.id, res.ciphertext),
        lambda: service.rewrap(instance, key.id, res.ciphertext),
        lambda: service.create_key(Principal("user-bob"), instance, "while-sealed"),
    ):
        with pytest.raises(UnitSealed) as info:
            call()
        assert info.value.status == 503
    units.unseal(instance)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK


def test_disabled_and_deleted_keys_refuse_and_recover(service, actor, instance, clock, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK)
    service.disable(actor, instance, key.id)
    with pytest.raises(KeyStateConflict):
        service.wrap(instance, key.id, DEK)
    with pytest.raises(KeyStateConflict):
        service.unwrap(instance, key.id, res.ciphertext)
    clock.advance(31)
    service.enable(actor, instance, key.id)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK
    service.delete(actor, instance, key.id)
    with pytest.raises(KeyDeleted) as info:
        service.unwrap(instance, key.id, res.ciphertext)
    assert info.value.status == 410
    clock.advance(31)
    service.restore(actor, instance, key.id)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK


def test_expired_key_unwraps_but_does_not_wrap(service, instance, clock, root_key):
    key = root_key(expires_at=clock.now() + timedelta(hours=2))
    res = service.wrap(instance, key.id, DEK)
    clock.advance(2 * 3600)
    with pytest.raises(KeyStateConflict):
        service.wrap(instance, key.id, DEK)  # refused at once, before the scheduler ran
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK
    assert service.rewrap(instance, key.id, res.ciphertext).key_version_id == key.version_id


def test_handles_are_cached_and_forgotten_on_state_change(fake_env, actor, clock):
    service, unit, instance = fake_env.service, fake_env.unit, fake_env.instance
    key = service.create_key(actor, instance, "cached")
    for _ in range(5):
        service.wrap(instance, key.id, DEK)
    assert unit.handles_made == 1
    service.disable(actor, instance, key.id)
    assert unit.forgotten == [key.id]
    clock.advance(31)
    service.enable(actor, instance, key.id)
    service.wrap(instance, key.id, DEK)
    assert unit.handles_made == 2


def test_purge_shreds_every_wrapped_dek(service, store, actor, instance, clock, root_key):
    key = root_key()
    res = service.wrap(instance, key.id, DEK)
    service.delete(actor, instance, key.id)
    clock.advance(4 * 3600)
    service.purge(actor, instance, key.id)
    with pytest.raises(KeyNotFound):
        service.unwrap(instance, key.id, res.ciphertext)
    with store.uow() as uow:  # nothing of the key is left
        assert uow.blobs.get(instance, key.version_id) is None
        assert uow.versions.get(instance, key.version_id) is None
        assert uow.keys.get(instance, key.id) is None


def test_missing_blob_is_an_internal_error(service, store, instance, root_key):
    key = root_key()
    with store.uow() as uow:
        uow.blobs.delete_for_owner(instance, key.id)
        uow.commit()
    with pytest.raises(InternalError):
        service.wrap(instance, key.id, DEK)


def test_handle_revoked_between_read_and_use_is_retried(fake_env, actor):
    """A state change that revokes handles while a wrap is in flight: the wrap re-reads."""
    service, unit, instance = fake_env.service, fake_env.unit, fake_env.instance
    key = service.create_key(actor, instance, "revoked")
    service.wrap(instance, key.id, DEK)
    original = unit.handle
    calls = {"n": 0}

    def revoking_handle(blob):
        handle = original(blob)
        if calls["n"] == 0:
            calls["n"] += 1
            unit.forget(key.id)  # as if a disable on another thread had just committed
        return handle

    unit.handle = revoking_handle
    res = service.wrap(instance, key.id, DEK)
    assert service.unwrap(instance, key.id, res.ciphertext).plaintext == DEK
    assert calls["n"] == 1


@given(st.binary(min_size=16, max_size=16), st.binary(max_size=64))
def test_the_version_named_by_a_ciphertext_is_its_header_uuid(raw: bytes, rest: bytes) -> None:
    """``version_of`` writes the header's 16 bytes as ``str(uuid.UUID(bytes=...))`` does."""
    ciphertext = bytes([wrapping.WRAP_VERSION]) + raw + bytes(wrapping.MIN_SIZE) + rest
    assert wrapping.version_of(ciphertext) == str(uuid.UUID(bytes=raw))
