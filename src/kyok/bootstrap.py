"""The composition root: the one place that wires the real store, units and service together.

Used by the CLI, the server and tests. Nothing else constructs adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kyok.clock import Clock, SystemClock
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers
from kyok.settings import Settings
from kyok.store.sql import SqlStore, open_store
from kyok.unit.directory import UnitDirectory
from kyok.unit.seal import DevSeal, SealProvider, SharesSeal


@dataclass
class Node:
    """A running kyok node's parts."""

    settings: Settings
    store: SqlStore
    units: UnitDirectory
    service: KeyService
    clock: Clock

    def close(self) -> None:
        """Seal every unit and release the database."""
        for unit in self.units.loaded():
            unit.seal()
        self.store.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory (mode 0700) if needed."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def seal_providers(settings: Settings) -> dict[str, SealProvider]:
    """The seal providers this node offers."""
    return {"dev": DevSeal(settings.data_dir), "shares": SharesSeal()}


def open_node(
    settings: Settings, *, clock: Clock | None = None, timers: Timers | None = None
) -> Node:
    """Open the store (migrating it), the unit directory and the key service."""
    if settings.database_url is None:
        ensure_data_dir(settings.data_dir)
    clock = clock or SystemClock()
    store = open_store(settings.resolved_database_url, migrate=True)
    units = UnitDirectory(
        store.units, seal_providers(settings), clock, cache_size=settings.handle_cache_size
    )
    service = KeyService(store.uow, units, clock, timers or Timers())
    return Node(settings, store, units, service, clock)
