"""The composition root: the one place that wires the real store, units and services together.

Used by the CLI, the server and tests. Nothing else constructs adapters. A :class:`Node` holds
what one kyok process runs on; the HTTP adapter (``kyok.api``) sees it through its own port
(``kyok.api.ports.NodePort``), so the API never imports this package.

Modules: :mod:`~kyok.bootstrap.units` (the crypto units as the HTTP ceremony endpoints see them),
:mod:`~kyok.bootstrap.scheduler` (expiry and auto-purge), :mod:`~kyok.bootstrap.dev` (the dev
server's instance and credentials), :mod:`~kyok.bootstrap.auth` (the auth service's wiring).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from kyok.bootstrap.auth import AuthProvider, make_auth
from kyok.bootstrap.units import UnitConsole
from kyok.clock import Clock, SystemClock
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers
from kyok.settings import Settings
from kyok.store.sql import SqlStore, open_store
from kyok.unit.directory import UnitDirectory
from kyok.unit.seal import DevSeal, SealProvider, SharesSeal

__all__ = [
    "AuthProvider",
    "Node",
    "ensure_data_dir",
    "make_auth",
    "open_node",
    "seal_providers",
    "timers_from",
]


@dataclass
class Node:
    """A running kyok node's parts.

    Attributes:
        settings: what the node was configured with.
        store: the SQL store.
        units: the crypto units of this process (they hold the master keys).
        service: the key service (every key rule).
        clock: the time source of every rule.
        auth: authenticates requests and makes the first administrator of an instance.
        unit_console: the units as the ceremony endpoints see them.
    """

    settings: Settings
    store: SqlStore
    units: UnitDirectory
    service: KeyService
    clock: Clock
    auth: AuthProvider
    unit_console: UnitConsole

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
    """Create the data directory (mode 0700) if needed.

    Args:
        path: the directory.

    Returns:
        ``path``.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def seal_providers(settings: Settings) -> dict[str, SealProvider]:
    """The seal providers this node offers.

    Args:
        settings: the node's settings (the dev seal keeps its file in ``data_dir``).

    Returns:
        Seal providers by name.
    """
    return {"dev": DevSeal(settings.data_dir), "shares": SharesSeal()}


def timers_from(settings: Settings) -> Timers:
    """The key-rule timers configured in ``settings``.

    Args:
        settings: the node's settings.

    Returns:
        The :class:`~kyok.kms.timers.Timers`.

    Raises:
        ValueError: an inconsistent combination (purge_after longer than auto_purge_after).
    """
    return Timers(**{f.name: getattr(settings.timers, f.name) for f in fields(Timers)})


def open_node(
    settings: Settings,
    *,
    clock: Clock | None = None,
    timers: Timers | None = None,
    auth: AuthProvider | None = None,
) -> Node:
    """Open the store (migrating it), the unit directory, the key and auth services.

    Args:
        settings: the node's settings.
        clock: the time source (default: the system clock).
        timers: the key-rule timers (default: from ``settings``).
        auth: the authentication service (default: ``kyok.auth``'s, from ``settings``).

    Returns:
        The node; close it (or use it as a context manager) to seal its units.
    """
    if settings.database_url is None:
        ensure_data_dir(settings.data_dir)
    clock = clock or SystemClock()
    store = open_store(settings.resolved_database_url, migrate=True, clock=clock)
    if settings.database_url is None:
        # The store holds only sealed material, but metadata and credentials' MACs are nobody
        # else's business either: owner-only, like the directory (SQLite gives its -wal and
        # -shm files the database file's mode).
        for path in settings.data_dir.glob("kyok.db*"):
            path.chmod(0o600)
    units = UnitDirectory(
        store.units, seal_providers(settings), clock, cache_size=settings.handle_cache_size
    )
    service = KeyService(store.uow, units, clock, timers or timers_from(settings))
    provider = auth or make_auth(settings, store, units, clock)
    console = UnitConsole(units, store.units, service.list_instances)
    return Node(settings, store, units, service, clock, provider, console)
