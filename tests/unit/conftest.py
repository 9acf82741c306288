"""Fixtures for crypto-unit tests: custodians with real keys, a unit on an in-memory store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ceremony_kit import Custodian, ceremony, command, imprint, load, make_custodians, run
from kyok.clock import FakeClock
from kyok.store.memory import MemoryStore
from kyok.unit.seal import DevSeal, SealProvider, SharesSeal
from kyok.unit.unit import CryptoUnit

__all__ = ["Custodian", "ceremony", "command", "imprint", "load", "make_custodians", "run"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def seals(tmp_path: Path) -> dict[str, SealProvider]:
    return {"dev": DevSeal(tmp_path), "shares": SharesSeal()}


@pytest.fixture
def new_unit(
    memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> Callable[..., CryptoUnit]:
    def make(seal: str = "shares", instance_id: str = "inst-1") -> CryptoUnit:
        return CryptoUnit.create(
            memory_store.units, instance_id=instance_id, seal=seals[seal], clock=clock
        )

    return make


@pytest.fixture
def reopen(
    memory_store: MemoryStore, seals: dict[str, SealProvider], clock: FakeClock
) -> Callable[[CryptoUnit], CryptoUnit]:
    """Simulate a restart: a fresh unit object on the same store (volatile state gone)."""

    def again(unit: CryptoUnit) -> CryptoUnit:
        return CryptoUnit.open(memory_store.units, unit.unit_id, seals, clock)

    return again
