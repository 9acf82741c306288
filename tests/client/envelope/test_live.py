"""Envelope encryption against a real kyok dev server over HTTP: one call per file, rotation and
rewrap in place, and control through the root key (disable, enable, delete, purge)."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kyok.client import KyokClient, RewrapResult, UnwrapResult, WrapResult
from kyok.client import envelope as ev
from kyok.client.envelope import _format as fmt
from live_server import LiveServer, dev_server

AAD = ["tenant=acme", "bucket=reports"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-envelope")) as server:
        yield server


@pytest.fixture
def kyok(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as client:
        yield client


@pytest.fixture
def root(kyok: KyokClient) -> str:
    return kyok.create_root_key(f"envelope-{uuid.uuid4().hex[:8]}").id


class Counting:
    """Passes every call to the real client and counts them."""

    def __init__(self, client: KyokClient) -> None:
        self.client = client
        self.calls = {"wrap": 0, "unwrap": 0, "rewrap": 0}

    def wrap(
        self, key_id: str, plaintext: bytes | None = None, *, aad: Sequence[str] | None = None
    ) -> WrapResult:
        self.calls["wrap"] += 1
        return self.client.wrap(key_id, plaintext, aad=aad)

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        self.calls["unwrap"] += 1
        return self.client.unwrap(key_id, ciphertext, aad=aad)

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        self.calls["rewrap"] += 1
        return self.client.rewrap(key_id, ciphertext, aad=aad)


def _plain(tmp_path: Path, size: int = 3 * (1 << 20) + 12345) -> bytes:
    data = os.urandom(size)
    (tmp_path / "plain").write_bytes(data)
    return data


def test_file_round_trip_costs_one_call_each_way(
    tmp_path: Path, kyok: KyokClient, root: str
) -> None:
    data = _plain(tmp_path)
    keys = Counting(kyok)
    header = ev.encrypt_file(tmp_path / "plain", tmp_path / "f.kyok", keys=keys, key=root, aad=AAD)
    assert keys.calls == {"wrap": 1, "unwrap": 0, "rewrap": 0}
    assert header.key_id == root and header.key_version_id is not None
    assert header.key_version_id == kyok.get_key_metadata(root).key_version.id  # type: ignore[union-attr]
    opened = ev.decrypt_file(tmp_path / "f.kyok", tmp_path / "out", keys=keys, aad=AAD)
    assert keys.calls == {"wrap": 1, "unwrap": 1, "rewrap": 0}
    assert (tmp_path / "out").read_bytes() == data and not opened.is_stale
    # the wrapped DEK in the header is kyok's: kyok itself unwraps it to the file's DEK
    dek = kyok.unwrap(root, header.wrapped_dek, aad=AAD).plaintext
    assert len(dek) == 32 and dek not in (tmp_path / "f.kyok").read_bytes()


def test_rotate_twice_rewrap_file_decrypt(tmp_path: Path, kyok: KyokClient, root: str) -> None:
    data = _plain(tmp_path)
    path = tmp_path / "f.kyok"
    first = ev.encrypt_file(tmp_path / "plain", path, keys=kyok, key=root, aad=AAD)
    before = path.read_bytes()
    kyok.rotate_key(root)
    kyok.rotate_key(root)
    newest = kyok.get_key_metadata(root).key_version.id  # type: ignore[union-attr]
    assert newest != first.key_version_id

    # decrypt still works, says a newer version exists, and does not change the file
    out = io.BytesIO()
    with open(path, "rb") as f:
        stale = ev.decrypt(f, out, keys=kyok, aad=AAD)
    assert out.getvalue() == data
    assert stale.is_stale and stale.rewrapped_key_version_id == newest
    assert path.read_bytes() == before

    keys = Counting(kyok)
    assert ev.rewrap_file(path, keys=keys, aad=AAD) is True
    assert keys.calls == {"wrap": 0, "unwrap": 0, "rewrap": 1}
    after = path.read_bytes()
    assert len(after) == len(before) and after[first.header_size :] == before[first.header_size :]
    assert after[: fmt.FIXED_SIZE] == before[: fmt.FIXED_SIZE]
    with open(path, "rb") as f:
        header = ev.read_header(f)
    assert header.key_version_id == newest and header.wrapped_dek != first.wrapped_dek
    assert ev.rewrap_file(path, keys=kyok, aad=AAD) is False
    assert path.read_bytes() == after

    fresh = ev.decrypt_file(path, tmp_path / "out", keys=kyok, aad=AAD)
    assert (tmp_path / "out").read_bytes() == data and not fresh.is_stale


def test_disable_suspends_decryption_and_enable_restores_it(
    tmp_path: Path, kyok: KyokClient, root: str
) -> None:
    data = _plain(tmp_path, 5000)
    ev.encrypt_file(tmp_path / "plain", tmp_path / "f.kyok", keys=kyok, key=root, aad=AAD)
    kyok.disable_key(root)
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.decrypt_file(tmp_path / "f.kyok", tmp_path / "out", keys=kyok, aad=AAD)
    error = info.value
    assert (error.reason, error.key_id, error.status) == ("suspended", root, 409)
    assert str(error).startswith(f"root key {root} is suspended (disabled): enable it to decrypt")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.encrypt_bytes(b"new", keys=kyok, key=root)
    assert info.value.reason == "suspended"
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.rewrap_file(tmp_path / "f.kyok", keys=kyok, aad=AAD)
    assert info.value.reason == "suspended"

    kyok.enable_key(root)
    ev.decrypt_file(tmp_path / "f.kyok", tmp_path / "out", keys=kyok, aad=AAD)
    assert (tmp_path / "out").read_bytes() == data


def test_delete_then_purge_crypto_shreds(tmp_path: Path, kyok: KyokClient, root: str) -> None:
    data = _plain(tmp_path, 5000)
    path = tmp_path / "f.kyok"
    ev.encrypt_file(tmp_path / "plain", path, keys=kyok, key=root, aad=AAD)

    kyok.delete_key(root)
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.decrypt_file(path, tmp_path / "out", keys=kyok, aad=AAD)
    assert (info.value.reason, info.value.status) == ("destroyed", 410)
    assert "was deleted" in str(info.value) and "restored" in str(info.value)
    assert not (tmp_path / "out").exists()

    kyok.restore_key(root)  # within the restore period the data comes back
    ev.decrypt_file(path, tmp_path / "out", keys=kyok, aad=AAD)
    assert (tmp_path / "out").read_bytes() == data
    (tmp_path / "out").unlink()

    kyok.delete_key(root)
    kyok.purge_key(root)
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.decrypt_file(path, tmp_path / "out", keys=kyok, aad=AAD)
    # kyok answers a purged key like one that never existed (404)
    error = info.value
    assert (error.reason, error.key_id, error.status) == ("not_found", root, 404)
    assert "deleted and purged, the data is unrecoverable (crypto-shredded)" in str(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.kyok", "plain"]
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.rewrap_file(path, keys=kyok, aad=AAD)
    assert info.value.reason == "not_found"


def test_the_wrong_aad_never_reaches_kyok(tmp_path: Path, kyok: KyokClient, root: str) -> None:
    sealed = ev.encrypt_bytes(b"secret", keys=kyok, key=root, aad=AAD)
    keys = Counting(kyok)
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(sealed, keys=keys, aad=["tenant=evil", "bucket=reports"])
    assert info.value.code == "AAD_MISMATCH" and keys.calls["unwrap"] == 0


def test_kyok_refuses_a_wrapped_dek_under_another_key(kyok: KyokClient, root: str) -> None:
    sealed = ev.encrypt_bytes(b"secret", keys=kyok, key=root, aad=AAD)
    other = kyok.create_root_key(f"other-{uuid.uuid4().hex[:8]}").id
    fixed = sealed[: fmt.FIXED_SIZE]
    slot = fmt.parse_slots(fixed, sealed[fmt.FIXED_SIZE :], fmt.DEFAULT_SLOT_CAPACITY).slot
    moved = fmt.encode_slot(fixed, fmt.KeySlot(1, other, None, slot.wrapped_dek))
    assert moved is not None
    bad = fixed + moved + sealed[fmt.FIXED_SIZE + fmt.DEFAULT_SLOT_CAPACITY :]
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(bad, keys=kyok, aad=AAD)
    assert info.value.code == "DEK_UNWRAP_FAILED" and info.value.status == 422


def test_unknown_key_and_missing_role(live: LiveServer, kyok: KyokClient, root: str) -> None:
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.encrypt_bytes(b"x", keys=kyok, key=str(uuid.uuid4()))
    assert info.value.reason == "not_found" and "check the key id" in str(info.value)
    sealed = ev.encrypt_bytes(b"x", keys=kyok, key=root)
    principal = kyok.create_principal(f"noroles-{uuid.uuid4().hex[:6]}", kind="service")
    secret = kyok.create_api_key(principal.id, "k").secret
    assert secret is not None
    with KyokClient(live.url, live.instance_id, api_key=secret) as nobody:
        with pytest.raises(ev.KeyUnavailable) as info:
            ev.decrypt_bytes(sealed, keys=nobody)
        assert (info.value.reason, info.value.status) == ("forbidden", 403)
        with pytest.raises(ev.KeyUnavailable) as info:
            ev.encrypt_bytes(b"x", keys=nobody, key=root)
        assert info.value.reason == "forbidden"


def test_the_cache_cuts_calls_for_many_small_objects(kyok: KyokClient, root: str) -> None:
    keys = Counting(kyok)
    cache = ev.DekCache(max_age=300, max_messages=25, max_bytes=1 << 20)
    objects = [os.urandom(100 + i) for i in range(100)]
    sealed = [ev.encrypt_bytes(o, keys=keys, key=root, aad=AAD, cache=cache) for o in objects]
    assert keys.calls["wrap"] == 4
    opened = [ev.decrypt_bytes(s, keys=keys, aad=AAD, cache=cache) for s in sealed]
    assert opened == objects and keys.calls["unwrap"] == 4


def test_random_access_through_kyok(tmp_path: Path, kyok: KyokClient, root: str) -> None:
    data = _plain(tmp_path, 3 * fmt.MIN_SEGMENT_SIZE + 10)
    ev.encrypt_file(
        tmp_path / "plain",
        tmp_path / "f.kyok",
        keys=kyok,
        key=root,
        segment_size=fmt.MIN_SEGMENT_SIZE,
    )
    with open(tmp_path / "f.kyok", "rb") as f:
        reader = ev.SegmentReader(f, keys=kyok)
        assert reader.segment_count == 4
        assert reader.read_range(4000, 200) == data[4000:4200]
