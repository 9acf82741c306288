"""Data-volume LUKS passphrases (reference hpcr-contract.md §6): the two-seed value HPVS
computes, checked against ``openssl``; kyok's three-seed combination, checked against
``openssl kdf HKDF``; the wrapped-seed file; and the three-seed scheme end to end through a
real kyok server: reproducible, different when any seed differs, and impossible while the root
key is suspended."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.cli.contract_attest import KyokSeedKms
from kyok.client import KyokClient
from kyok.contract.volume import (
    SeedError,
    SeedOrder,
    ThirdSeedUnavailable,
    WrappedSeed,
    WrappedSeedError,
    check_seed,
    combine_seeds,
    new_third_seed,
    seed_aad,
    three_seed_passphrase,
    two_seed_passphrase,
)
from kyok.errors import Conflict
from live_server import LiveServer, dev_server

ENV_SEED = "env-seed-0123456789"
WORKLOAD_SEED = "workload-seed-ABCDEF!@#"


def openssl_sha256(text: str) -> str:
    """``echo -n "seed1seed2" | sha256sum``, with openssl."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-r"], input=text.encode(), capture_output=True, check=True
    )
    return out.stdout.split()[0].decode()


def openssl_hkdf(ikm: bytes, salt: bytes, info: bytes) -> str:
    out = subprocess.run(
        [
            "openssl",
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SHA256",
            "-kdfopt",
            f"hexkey:{ikm.hex()}",
            "-kdfopt",
            f"hexsalt:{salt.hex()}",
            "-kdfopt",
            f"hexinfo:{info.hex()}",
            "HKDF",
        ],
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().strip().replace(":", "").lower()


# ---------------------------------------------------------------- two seeds


def test_two_seeds_hash_like_the_docs_say() -> None:
    value = two_seed_passphrase(ENV_SEED, WORKLOAD_SEED)
    assert value == openssl_sha256(ENV_SEED + WORKLOAD_SEED)
    assert len(value) == 64 and value == value.lower()
    swapped = two_seed_passphrase(ENV_SEED, WORKLOAD_SEED, order=SeedOrder.WORKLOAD_ENV)
    assert swapped == openssl_sha256(WORKLOAD_SEED + ENV_SEED) != value
    assert two_seed_passphrase(ENV_SEED, WORKLOAD_SEED, order="workload-env") == swapped  # type: ignore[arg-type]


def test_legacy_seeds_hash_as_utf8() -> None:
    """The old docs' example seeds have spaces; a legacy volume may even have non-ASCII ones."""
    value = two_seed_passphrase("env phrase", "workload phrase ü", legacy=True)
    assert value == openssl_sha256("env phraseworkload phrase ü")
    with pytest.raises(SeedError, match="--legacy-seeds"):
        two_seed_passphrase("env phrase", "workload phrase ü")


@pytest.mark.parametrize(
    ("seed", "reason"),
    [
        ("short-seed", "has 10 characters; the contract schema requires at least 15"),
        ("fourteen-chars", "has 14 characters"),
        ("has a space in it!", "characters the contract schema does not allow"),
        ("fifteen-chars-é", "characters the contract schema does not allow"),
        ("newline-at-end-\n", "characters the contract schema does not allow"),
    ],
)
def test_seeds_follow_the_schema(seed: str, reason: str) -> None:
    with pytest.raises(SeedError, match=reason):
        check_seed(seed, what="env seed")
    assert check_seed("fifteen-chars-0", what="x") == "fifteen-chars-0"
    assert check_seed('all!@#$%^&*(),.?":{}|<>_-ok') == 'all!@#$%^&*(),.?":{}|<>_-ok'
    with pytest.raises(SeedError, match="at least 3"):
        check_seed("ab", legacy=True)


_SEED = st.text(
    alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*(),.?":{}|<>_-',
    min_size=15,
    max_size=40,
)


@settings(max_examples=40)
@given(env=_SEED, workload=_SEED, other=_SEED, third=st.binary(min_size=32, max_size=32))
def test_the_passphrase_changes_when_any_seed_changes(
    env: str, workload: str, other: str, third: bytes
) -> None:
    interim = two_seed_passphrase(env, workload)
    assert two_seed_passphrase(env, workload) == interim  # reproducible
    value = combine_seeds(interim, third, volume="data")
    assert combine_seeds(interim, third, volume="data") == value
    if other != env:
        assert two_seed_passphrase(other, workload) != interim
    if other != workload:
        assert two_seed_passphrase(env, other) != interim
    flipped = bytes([third[0] ^ 1]) + third[1:]
    assert combine_seeds(interim, flipped, volume="data") != value
    assert combine_seeds(interim, third, volume="data2") != value
    assert value != interim


# ---------------------------------------------------------------- the three-seed combination


def test_the_combination_is_hkdf_as_documented() -> None:
    third = bytes(range(32))
    interim = two_seed_passphrase(ENV_SEED, WORKLOAD_SEED)
    expected = openssl_hkdf(
        third, interim.encode("ascii"), b"kyok/v1/luks-three-seed\x00data-volume"
    )
    assert combine_seeds(interim, third, volume="data-volume") == expected
    # the vector printed in docs/contract-attestation.md
    assert interim == "0828eeb3151fc692711f575e27e747f3788dd4e591cdcb2c797dfe8eec6b0d4b"
    assert (
        combine_seeds(interim, third, volume="data")
        == "58685a716d134a0ccef0ed2f80074e37649d7cb581c8a8ed8188240f4c0f3bca"
    )


def test_the_combination_checks_its_inputs() -> None:
    interim = two_seed_passphrase(ENV_SEED, WORKLOAD_SEED)
    with pytest.raises(WrappedSeedError, match="32 bytes"):
        combine_seeds(interim, b"\x00" * 31, volume="data")
    with pytest.raises(SeedError, match="two-seed passphrase"):
        combine_seeds(interim.upper(), b"\x00" * 32, volume="data")
    with pytest.raises(SeedError, match="volume name"):
        combine_seeds(interim, b"\x00" * 32, volume="Data Volume")


# ---------------------------------------------------------------- the wrapped-seed file


def _wrapped(**changes: object) -> WrappedSeed:
    fields: dict[str, object] = {
        "volume": "data",
        "key_id": "0b5b7c1e-key",
        "wrapped": "eyJ2IjoxfQ==",
        "aad": seed_aad("data", ["tenant:7"]),
        "key_version": "v1",
        "created_at": "2026-01-01T00:00:00Z",
    }
    fields.update(changes)
    return WrappedSeed(**fields)  # type: ignore[arg-type]


_VOLUME = st.from_regex(r"[a-z_][a-z0-9_-]{0,20}", fullmatch=True)


@settings(max_examples=40)
@given(
    volume=_VOLUME,
    extra=st.lists(st.text(max_size=20), max_size=3),
    version=st.none() | st.text(min_size=1, max_size=10),
)
def test_the_wrapped_seed_file_round_trips(
    volume: str, extra: list[str], version: str | None
) -> None:
    item = _wrapped(volume=volume, aad=seed_aad(volume, extra), key_version=version)
    text = item.to_json()
    assert WrappedSeed.from_json(text) == item
    assert WrappedSeed.from_json(text.encode()) == item
    data = json.loads(text)
    assert data["format"] == "kyok-luks-third-seed" and data["version"] == 1
    assert data["aad"][:2] == ["kyok/v1/luks-third-seed", f"volume={volume}"]
    assert item.extra_aad == tuple(extra)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d.update(volume="other"), "not made for this volume"),
        (lambda d: d.update(format="x"), "not a kyok wrapped-seed file"),
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (lambda d: d.update(surprise=1), "unknown fields"),
        (lambda d: d.pop("keyId"), "lacks the fields"),
        (lambda d: d.update(seedBytes=16), "seedBytes must be 32"),
        (lambda d: d.update(aad="x"), "aad must be a list"),
        (lambda d: d.update(aad=[1, 2]), "AAD must be a list of strings"),
        (lambda d: d.update(wrappedSeed="a b"), "white space"),
        (lambda d: d.update(keyId=" "), "names no key id"),
        (lambda d: d.update(volume="Bad Name"), "volume name"),
    ],
)
def test_a_bad_wrapped_seed_file_is_refused(edit: object, reason: str) -> None:
    data = json.loads(_wrapped().to_json())
    edit(data)  # type: ignore[operator]
    with pytest.raises(SeedError if reason == "volume name" else WrappedSeedError, match=reason):
        WrappedSeed.from_json(json.dumps(data))


def test_not_json_is_refused() -> None:
    with pytest.raises(WrappedSeedError, match="not JSON"):
        WrappedSeed.from_json(b"\xff")
    with pytest.raises(WrappedSeedError, match="not a JSON object"):
        WrappedSeed.from_json("[]")


# ---------------------------------------------------------------- through a real kyok server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-volume")) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as c:
        yield c


@pytest.fixture
def root_key(client: KyokClient) -> str:
    return client.create_root_key(f"luks-{uuid.uuid4().hex[:8]}").id


def test_three_seeds_end_to_end_with_crypto_shredding(client: KyokClient, root_key: str) -> None:
    kms = KyokSeedKms(client)
    wrapped = new_third_seed(kms, root_key, volume="data", aad=["tenant:7"])
    assert wrapped.key_id == root_key and wrapped.key_version
    assert wrapped.aad == ("kyok/v1/luks-third-seed", "volume=data", "tenant:7")
    stored = WrappedSeed.from_json(wrapped.to_json())  # as read back from the file

    value = three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, stored, kms)
    assert three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, stored, kms) == value  # reproducible
    assert len(value) == 64 and value != two_seed_passphrase(ENV_SEED, WORKLOAD_SEED)
    assert three_seed_passphrase("x" + ENV_SEED, WORKLOAD_SEED, stored, kms) != value
    assert three_seed_passphrase(ENV_SEED, "x" + WORKLOAD_SEED, stored, kms) != value
    other = new_third_seed(kms, root_key, volume="data", aad=["tenant:7"])
    assert three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, other, kms) != value
    swapped = three_seed_passphrase(
        ENV_SEED, WORKLOAD_SEED, stored, kms, order=SeedOrder.WORKLOAD_ENV
    )
    assert swapped != value

    client.disable_key(root_key)
    with pytest.raises(ThirdSeedUnavailable, match="no passphrase can be derived") as info:
        three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, stored, kms)
    assert isinstance(info.value, Conflict)
    assert ENV_SEED not in info.value.message and value not in info.value.message
    with pytest.raises(ThirdSeedUnavailable, match="cannot wrap"):
        new_third_seed(kms, root_key, volume="data")

    client.enable_key(root_key)
    assert three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, stored, kms) == value


def test_a_seed_moved_to_another_volume_does_not_unwrap(client: KyokClient, root_key: str) -> None:
    kms = KyokSeedKms(client)
    wrapped = new_third_seed(kms, root_key, volume="data")
    moved = WrappedSeed(
        volume="logs",
        key_id=wrapped.key_id,
        wrapped=wrapped.wrapped,
        aad=seed_aad("logs"),
        key_version=wrapped.key_version,
    )
    with pytest.raises(WrappedSeedError, match="does not unwrap"):
        three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, moved, kms)
    other_key = client.create_root_key(f"luks-{uuid.uuid4().hex[:8]}").id
    elsewhere = WrappedSeed(
        volume="data", key_id=other_key, wrapped=wrapped.wrapped, aad=wrapped.aad
    )
    with pytest.raises(WrappedSeedError, match="does not unwrap"):
        three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, elsewhere, kms)


def test_a_destroyed_key_shreds_the_volume(client: KyokClient, root_key: str) -> None:
    kms = KyokSeedKms(client)
    wrapped = new_third_seed(kms, root_key, volume="data")
    client.delete_key(root_key)
    with pytest.raises(ThirdSeedUnavailable, match=root_key):
        three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, wrapped, kms)


def test_after_rotation_the_same_passphrase_and_a_rewrapped_seed(
    client: KyokClient, root_key: str
) -> None:
    kms = KyokSeedKms(client)
    wrapped = new_third_seed(kms, root_key, volume="data")
    value = three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, wrapped, kms)
    assert kms.rewrapped is None
    client.rotate_key(root_key)
    assert three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, wrapped, kms) == value
    assert kms.rewrapped is not None and kms.rewrapped.key_version != wrapped.key_version
    newer = wrapped.rewrapped(kms.rewrapped.ciphertext, kms.rewrapped.key_version)
    fresh = KyokSeedKms(client)
    assert three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, newer, fresh) == value
    assert fresh.rewrapped is None


def test_bad_seeds_are_refused_before_the_server_is_asked(tmp_path: Path) -> None:
    class Refuses:
        def wrap(self, key_id: str, plaintext: bytes, *, aad: object) -> str:
            raise AssertionError("not reached")

        def unwrap(self, key_id: str, wrapped: str, *, aad: object) -> bytes:
            raise AssertionError("not reached")

    with pytest.raises(SeedError, match="env seed"):
        three_seed_passphrase("short", WORKLOAD_SEED, _wrapped(), Refuses())
    with pytest.raises(SeedError, match="volume name"):
        new_third_seed(Refuses(), "k", volume="No Good")
    with pytest.raises(SeedError, match="root key"):
        new_third_seed(Refuses(), "", volume="data")
