"""The small TTL cache behind authentication."""

from __future__ import annotations

import pytest

from auth_kit import AuthHarness, bearer
from kyok.auth._cache import MISSING, TtlCache
from kyok.auth.errors import TokenExpired, TokenInvalid


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_none_is_a_value() -> None:
    timer = Timer()
    cache: TtlCache[str, int | None] = TtlCache(5, timer=timer)
    cache.put("a", 1, cache.generation())
    cache.put("gone", None, cache.generation())
    assert cache.get("a") == 1
    assert cache.lookup("gone") is None and cache.lookup("never") is MISSING
    timer.now = 4.9
    assert cache.get("a") == 1
    timer.now = 5.0
    assert cache.get("a") is None and cache.lookup("gone") is MISSING


def test_a_load_that_raced_an_invalidation_is_not_stored() -> None:
    cache: TtlCache[str, str] = TtlCache(5)
    stamp = cache.generation()  # a request starts loading
    cache.invalidate("p")  # an administrator revokes a role meanwhile
    cache.put("p", "stale grants", stamp)
    assert cache.get("p") is None
    cache.put("p", "fresh", cache.generation())
    assert cache.get("p") == "fresh"
    cache.clear()
    assert cache.get("p") is None


def test_size_is_bounded_and_ttl_zero_disables() -> None:
    cache: TtlCache[int, int] = TtlCache(5, max_size=3)
    for i in range(5):
        cache.put(i, i, cache.generation())
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]
    off: TtlCache[int, int] = TtlCache(0)
    off.put(1, 1, off.generation())
    assert off.get(1) is None
    with pytest.raises(ValueError):
        TtlCache(-1)


def test_a_token_is_verified_once_and_still_expires(
    harness: AuthHarness, instance: str, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kyok.auth.service as service_module

    calls = []
    real = service_module.verify_access_token

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "verify_access_token", counting)
    grant = harness.token(admin_key)
    for _ in range(5):
        harness.auth.authenticate(bearer(grant), instance)
    assert len(calls) == 1
    harness.clock.advance(harness.auth.token_ttl + 3600)
    with pytest.raises(TokenExpired):
        harness.auth.authenticate(bearer(grant), instance)
    # a token that was never verified is still checked in full
    tampered = grant.access_token[:-2] + ("AA" if not grant.access_token.endswith("AA") else "BB")
    with pytest.raises((TokenInvalid, TokenExpired)):
        harness.auth.authenticate(bearer(tampered), instance)


def test_invalidations_are_told_unless_they_came_from_another_worker() -> None:
    cache: TtlCache[str, int] = TtlCache(5)
    told: list[str | None] = []
    cache.on_invalidate = told.append
    cache.invalidate("a")
    cache.clear()
    cache.invalidate("b", propagate=False)
    cache.clear(propagate=False)
    assert told == ["a", None]
