"""Fixtures for kyok.auth: a real stack (dev-sealed units) on the memory store and SQLite.

- ``harness``: :class:`auth_kit.AuthHarness` (parametrised over the stores);
- ``instance``: a new instance; ``admin_key`` its bootstrap administrator's API key;
  ``admin``: that administrator's AuthContext.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auth_kit import STORES, AuthHarness, make_store
from kyok.auth import AuthContext
from kyok.clock import FakeClock

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=STORES)
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[AuthHarness]:
    h = AuthHarness(make_store(request.param, tmp_path, clock), tmp_path / "data", clock)
    yield h
    h.close()


@pytest.fixture
def instance(harness: AuthHarness) -> str:
    return harness.new_instance()


@pytest.fixture
def admin_key(harness: AuthHarness, instance: str) -> str:
    return harness.admin_key(instance)


@pytest.fixture
def admin(harness: AuthHarness, instance: str, admin_key: str) -> AuthContext:
    return harness.ctx(admin_key, instance)
