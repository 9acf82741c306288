"""DekCache: fewer key-service calls within its bounds (messages, bytes, age, capacity), never
beyond them, and never a repeated content key."""

from __future__ import annotations

import io
import pickle
import threading

import pytest

from kyok.client import envelope as ev
from kyok.client.envelope.testing import LocalKeyService

from ._util import Chunky


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(**kwargs: object) -> ev.DekCache:
    args: dict[str, object] = {"max_age": 60.0, "max_messages": 100, "max_bytes": 1 << 20}
    args.update(kwargs)
    return ev.DekCache(**args)  # type: ignore[arg-type]


def wrapped(sealed: bytes) -> str:
    return ev.read_header(io.BytesIO(sealed)).wrapped_dek


def test_encrypt_side_reuses_a_dek_until_max_messages(keys: LocalKeyService, key_id: str) -> None:
    c = cache(max_messages=3)
    sealed = [ev.encrypt_bytes(b"m%d" % i, keys=keys, key=key_id, cache=c) for i in range(7)]
    assert keys.calls["wrap"] == 3  # files 1-3, 4-6, 7
    assert len({wrapped(s) for s in sealed[:3]}) == 1
    assert wrapped(sealed[2]) != wrapped(sealed[3])
    assert (c.hits, c.misses) == (4, 3)
    # same DEK, but each file its own salt and so its own content key
    assert len({s[12:44] for s in sealed}) == 7
    for i, s in enumerate(sealed):
        assert ev.decrypt_bytes(s, keys=keys) == b"m%d" % i


def test_encrypt_side_respects_max_bytes(keys: LocalKeyService, key_id: str) -> None:
    c = cache(max_bytes=100)
    for size in (40, 40, 40, 100, 101):
        ev.encrypt_bytes(bytes(size), keys=keys, key=key_id, cache=c)
    # 40+40 share a DEK; the third 40 would exceed 100; 100 needs a fresh one; 101 never caches
    assert keys.calls["wrap"] == 4
    assert c.stats.hits == 1


def test_encrypt_side_respects_max_age() -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    clock = FakeClock()
    c = cache(max_age=10, clock=clock)
    ev.encrypt_bytes(b"a", keys=keys, key=key, cache=c)
    clock.now += 9.9
    ev.encrypt_bytes(b"b", keys=keys, key=key, cache=c)
    assert keys.calls["wrap"] == 1
    clock.now += 0.2
    ev.encrypt_bytes(b"c", keys=keys, key=key, cache=c)
    assert keys.calls["wrap"] == 2


def test_entries_are_per_key_and_aad(keys: LocalKeyService, key_id: str) -> None:
    other = keys.create_key()
    c = cache()
    for key in (key_id, other):
        for aad in (None, ["a"], ["a", "b"], ["ab"]):
            ev.encrypt_bytes(b"x", keys=keys, key=key, aad=aad, cache=c)
            ev.encrypt_bytes(b"y", keys=keys, key=key, aad=aad, cache=c)
    assert keys.calls["wrap"] == 8 and c.hits == 8


def test_capacity_drops_the_least_recently_used(keys: LocalKeyService, key_id: str) -> None:
    c = cache(capacity=2)
    for aad in (["1"], ["2"], ["1"], ["3"], ["1"], ["2"]):
        ev.encrypt_bytes(b"x", keys=keys, key=key_id, aad=aad, cache=c)
    # 1 miss, 2 miss, 1 hit, 3 miss (drops 2), 1 hit, 2 miss
    assert (c.hits, c.misses) == (2, 4)


def test_streams_of_unknown_size_bypass_the_cache(keys: LocalKeyService, key_id: str) -> None:
    c = cache()
    for _ in range(3):
        ev.encrypt(Chunky(b"piped"), io.BytesIO(), keys=keys, key=key_id, cache=c)  # type: ignore[arg-type]
    assert keys.calls["wrap"] == 3 and c.hits == 0
    for _ in range(3):
        ev.encrypt(io.BytesIO(b"seekable"), io.BytesIO(), keys=keys, key=key_id, cache=c)
    assert keys.calls["wrap"] == 4 and c.hits == 2


def test_decrypt_side_saves_unwraps_for_max_age() -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    clock = FakeClock()
    c = cache(max_age=5, clock=clock)
    sealed = ev.encrypt_bytes(b"data", keys=keys, key=key)
    for _ in range(4):
        assert ev.decrypt_bytes(sealed, keys=keys, cache=c) == b"data"
    assert keys.calls["unwrap"] == 1
    clock.now += 5
    assert ev.decrypt_bytes(sealed, keys=keys, cache=c) == b"data"
    assert keys.calls["unwrap"] == 2
    # a cached DEK keeps working while the key is disabled, until it expires or is cleared
    keys.disable(key)
    assert ev.decrypt_bytes(sealed, keys=keys, cache=c) == b"data"
    c.clear()
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.decrypt_bytes(sealed, keys=keys, cache=c)
    assert info.value.reason == "suspended"


def test_decrypt_side_is_keyed_by_wrapped_dek_and_aad(keys: LocalKeyService, key_id: str) -> None:
    c = cache()
    a = ev.encrypt_bytes(b"a", keys=keys, key=key_id, aad=["x"])
    b = ev.encrypt_bytes(b"b", keys=keys, key=key_id, aad=["x"])
    assert ev.decrypt_bytes(a, keys=keys, aad=["x"], cache=c) == b"a"
    assert ev.decrypt_bytes(b, keys=keys, aad=["x"], cache=c) == b"b"
    assert ev.decrypt_bytes(a, keys=keys, aad=["x"], cache=c) == b"a"
    assert keys.calls["unwrap"] == 2 and c.hits == 1


def test_a_cached_decrypt_still_reports_a_newer_key_version(
    keys: LocalKeyService, key_id: str
) -> None:
    c = cache()
    sealed = ev.encrypt_bytes(b"a", keys=keys, key=key_id)
    keys.rotate(key_id)
    first = ev.decrypt(io.BytesIO(sealed), io.BytesIO(), keys=keys, cache=c)
    second = ev.decrypt(io.BytesIO(sealed), io.BytesIO(), keys=keys, cache=c)
    assert first.is_stale and second.is_stale and keys.calls["unwrap"] == 1
    assert first.rewrapped_dek == second.rewrapped_dek


def test_threads_share_one_cache_safely(keys: LocalKeyService, key_id: str) -> None:
    c = cache(max_messages=50)
    results: list[bytes] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(25):
            sealed = ev.encrypt_bytes(b"%d-%d" % (n, i), keys=keys, key=key_id, cache=c)
            assert ev.decrypt_bytes(sealed, keys=keys, cache=c) == b"%d-%d" % (n, i)
            with lock:
                results.append(sealed)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    # 200 files at most 50 per DEK: at least 4 wraps; racing misses may add a few, never many
    assert 4 <= keys.calls["wrap"] <= 4 + 8 * 2
    assert c.hits + c.misses == 400
    per_dek: dict[str, int] = {}
    for sealed in results:
        per_dek[wrapped(sealed)] = per_dek.get(wrapped(sealed), 0) + 1
    assert max(per_dek.values()) <= 50


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_age": 0}, ValueError),
        ({"max_age": -1.0}, ValueError),
        ({"max_age": "60"}, TypeError),
        ({"max_messages": 0}, ValueError),
        ({"max_messages": (1 << 32) + 1}, ValueError),
        ({"max_bytes": -1}, ValueError),
        ({"capacity": 0}, ValueError),
        ({"capacity": 1.5}, TypeError),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        cache(**kwargs)


def test_the_cache_does_not_show_or_pickle_deks(keys: LocalKeyService, key_id: str) -> None:
    c = cache()
    ev.encrypt_bytes(b"x", keys=keys, key=key_id, cache=c)
    assert repr(c) == "DekCache(max_age=60.0, max_messages=100, max_bytes=1048576, capacity=100)"
    with pytest.raises(TypeError):
        pickle.dumps(c)
    assert c.stats.entries == 1
    c.clear()
    assert c.stats.entries == 0 and c.stats.misses == 1
