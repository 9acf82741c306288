"""Fixtures for the key service: one ``service`` built from a unit-of-work factory, a unit
directory and a FakeClock.

Both axes are parametrised so that the same tests run on every combination:

* ``store``: ``memory`` (``kyok.store.memory.MemoryStore``) by default; ``sqlite`` too when
  ``KYOK_KMS_TEST_STORES=memory,sqlite`` (a store only needs ``.uow(read_only=...)``,
  ``.units`` and ``.close()``; add others to :func:`make_store`).
* ``units``: ``fake`` (``tests.kms.fakes.FakeUnitDirectory``: real blob and handle code, random
  master key) and ``real`` (``kyok.unit.directory.UnitDirectory`` with the dev seal).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest

from kyok.auth.principals import Principal
from kyok.clock import FakeClock
from kyok.kms.keys import KeyView
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers
from kyok.store.memory import MemoryStore
from kyok.unit.directory import UnitDirectory
from kyok.unit.seal import DevSeal, SharesSeal

from .fakes import FakeUnit, FakeUnitDirectory, RecordingAuditSink

STORES = os.environ.get("KYOK_KMS_TEST_STORES", "memory").split(",")
UNITS = ["fake", "real"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_store(kind: str, clock: FakeClock, tmp_path: Path) -> Any:
    """A fresh, empty store of ``kind`` (anything with ``.uow()``, ``.units`` and ``.close()``)."""
    if kind == "memory":
        return MemoryStore(clock)
    if kind == "sqlite":
        from kyok.store.sql import open_store

        return open_store(f"sqlite:///{tmp_path}/kyok.db", clock=clock)
    raise ValueError(f"unknown store {kind}")


class UnitsHarness(Protocol):
    directory: Any

    def seal(self, instance_id: str) -> None: ...
    def unseal(self, instance_id: str) -> None: ...


class FakeUnits:
    def __init__(self) -> None:
        self.directory = FakeUnitDirectory()

    def seal(self, instance_id: str) -> None:
        self.directory.for_instance(instance_id).seal()

    def unseal(self, instance_id: str) -> None:
        self.directory.for_instance(instance_id).unseal()


class RealUnits:
    def __init__(self, store_units: Any, data_dir: Path, clock: FakeClock) -> None:
        seals = {"dev": DevSeal(data_dir), "shares": SharesSeal()}
        self.directory = UnitDirectory(store_units, seals, clock)

    def seal(self, instance_id: str) -> None:
        self.directory.for_instance(instance_id).seal()

    def unseal(self, instance_id: str) -> None:
        # Dropping the unit makes the directory open it again; the dev seal unseals it.
        self.directory.forget(self.directory.for_instance(instance_id).unit_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, clock: FakeClock, tmp_path: Path) -> Iterator[Any]:
    s = make_store(store_kind, clock, tmp_path)
    yield s
    s.close()


@pytest.fixture(params=UNITS)
def units(
    request: pytest.FixtureRequest, store: Any, tmp_path: Path, clock: FakeClock
) -> UnitsHarness:
    if request.param == "fake":
        return FakeUnits()
    return RealUnits(store.units, tmp_path / "data", clock)


@pytest.fixture
def audit() -> RecordingAuditSink:
    return RecordingAuditSink()


@pytest.fixture
def service(
    store: Any, units: UnitsHarness, clock: FakeClock, audit: RecordingAuditSink
) -> KeyService:
    return KeyService(store.uow, units.directory, clock, Timers(), audit=audit)


@pytest.fixture
def actor() -> Principal:
    return Principal("user-alice", instance_id=None)


@pytest.fixture
def instance(service: KeyService, actor: Principal) -> str:
    return service.create_instance(actor, "test instance").id


@pytest.fixture
def root_key(service: KeyService, actor: Principal, instance: str) -> Callable[..., KeyView]:
    """Make a root key: ``root_key(name="k", **create_key kwargs)``."""

    def make(name: str = "root-key", **kwargs: Any) -> KeyView:
        return service.create_key(actor, instance, name, **kwargs)

    return make


@dataclass
class FakeEnv:
    """A service on the fake unit only, for tests that look inside the unit."""

    service: KeyService
    unit: FakeUnit
    instance: str


@pytest.fixture
def fake_env(store: Any, clock: FakeClock, actor: Principal) -> FakeEnv:
    directory = FakeUnitDirectory()
    service = KeyService(store.uow, directory, clock)
    inst = service.create_instance(actor, "fake unit").id
    return FakeEnv(service, directory.for_instance(inst), inst)
