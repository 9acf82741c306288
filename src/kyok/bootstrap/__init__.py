"""The composition root: the one place that wires the real store, units and services together.

Used by the CLI, the server and tests. Nothing else constructs adapters. A :class:`Node` holds
what one kyok process runs on; the HTTP adapter (``kyok.api``) sees it through its own port
(``kyok.api.ports.NodePort``), so the API never imports this package.

Modules: :mod:`~kyok.bootstrap.units` (the crypto units as the HTTP ceremony endpoints see them),
:mod:`~kyok.bootstrap.scheduler` (expiry, auto-purge, rotation policies, import tokens), :mod:`~kyok.bootstrap.dev` (the dev
server's instance and credentials), :mod:`~kyok.bootstrap.auth` (the auth service's wiring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from kyok.audit import CheckpointPolicy
from kyok.audit.forward import Forwarder
from kyok.audit.jsonl_sink import JsonlFileDestination
from kyok.audit.syslog import SyslogTlsDestination
from kyok.bootstrap.auth import AuthProvider, make_auth
from kyok.bootstrap.link import RemoteUnitConsole
from kyok.bootstrap.units import UnitConsole
from kyok.clock import Clock, SystemClock
from kyok.crypto.sign import VerifyingKey
from kyok.errors import KyokError
from kyok.kms.audit_settings import AuditSettings
from kyok.kms.cache import KeyCache
from kyok.kms.imports import ImportTokenService
from kyok.kms.ledger import (
    EventWriter,
    GroupCommitter,
    Ledger,
    LedgerReader,
    LedgerSink,
    unit_signers,
)
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers
from kyok.settings import Settings
from kyok.store.sql import SqlStore, open_store
from kyok.store.sql.ledger_writer import SqlLedgerWriter
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
        import_tokens: the instances' import tokens (secure key import).
        ledger: appends to the audit ledger.
        audit_writer: group-commits the events of calls that change nothing.
        audit_reader: reads the ledger back.
        audit_settings: the instances' audit choices (fail open for wrap/unwrap).
        forwarders: copy the ledger to the configured JSONL file and syslog receiver (started
            by the server, not by opening the node).
        ledger_appender: the dedicated connection the group committer writes through.
        key_cache: the key service's data-plane cache (a multi-worker node's link tells the
            sibling workers of what this one drops).
        worker: this process's worker number when the node runs several, else None.
    """

    settings: Settings
    store: SqlStore
    units: UnitDirectory
    service: KeyService
    clock: Clock
    auth: AuthProvider
    unit_console: UnitConsole | RemoteUnitConsole
    import_tokens: ImportTokenService
    ledger: Ledger
    audit_writer: EventWriter
    audit_reader: LedgerReader
    audit_settings: AuditSettings
    forwarders: list[Forwarder] = field(default_factory=list)
    ledger_appender: SqlLedgerWriter | None = None
    key_cache: KeyCache = field(default_factory=KeyCache)
    worker: int | None = None

    def audit_key(self, instance_id: str) -> VerifyingKey | None:
        """The public key of the instance's audit signing key (None while its unit is sealed)."""
        try:
            return self.units.for_instance(instance_id).audit_public_key()
        except KyokError:
            return None

    def start_forwarders(self) -> None:
        """Start copying the ledger to the configured sinks (each commit wakes them)."""
        for forwarder in self.forwarders:
            forwarder.start()

    def close(self) -> None:
        """Write the queued audit events, let the forwarders catch up, seal every unit and
        release the database."""
        self.audit_writer.stop()
        if self.ledger_appender is not None:
            self.ledger_appender.close()
        for forwarder in self.forwarders:
            forwarder.close()
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
    """Open the store (migrating it), the unit directory, the key, import-token and auth
    services.

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
    # Several worker processes on one SQLite file queue their writers at a gate rather than in
    # SQLite's sleeping busy handler (kyok.store.sql.write_gate).
    store = open_store(
        settings.resolved_database_url,
        migrate=True,
        clock=clock,
        kyok_write_gate=settings.server.workers > 1,
    )
    if settings.database_url is None:
        # The store holds only sealed material, but metadata and credentials' MACs are nobody
        # else's business either: owner-only, like the directory (SQLite gives its -wal and
        # -shm files the database file's mode).
        for path in settings.data_dir.glob("kyok.db*"):
            path.chmod(0o600)
    units = UnitDirectory(
        store.units, seal_providers(settings), clock, cache_size=settings.handle_cache_size
    )
    ledger = Ledger(
        unit_signers(units),
        clock,
        CheckpointPolicy(
            every_events=settings.audit.checkpoint_every_events,
            every_seconds=settings.audit.checkpoint_every_seconds,
        ),
    )
    sink = LedgerSink(ledger)
    key_cache = KeyCache()
    service = KeyService(
        store.uow, units, clock, timers or timers_from(settings), audit=sink, cache=key_cache
    )
    import_tokens = ImportTokenService(
        store.uow, units, clock, rsa_bits=settings.server.import_token_rsa_bits, audit=sink
    )
    reader = LedgerReader(store.uow)
    forwarders = make_forwarders(settings, reader)
    appender = store.ledger_writer()
    writer = GroupCommitter(
        store.uow,
        ledger,
        batch=appender.batch,
        max_batch=settings.audit.max_batch,
        commit_delay=settings.audit.commit_delay_ms / 1000,
        on_commit=_waker(forwarders),
    )
    provider = auth or make_auth(settings, store, units, clock)
    console = UnitConsole(units, store.units, service.list_instances)
    return Node(
        settings,
        store,
        units,
        service,
        clock,
        provider,
        console,
        import_tokens,
        ledger,
        writer,
        reader,
        AuditSettings(store.uow, sink, clock),
        forwarders,
        appender,
        key_cache,
    )


def _waker(forwarders: list[Forwarder]) -> Callable[[], None] | None:
    """Wake every forwarder (after each group commit), or None without forwarders."""
    if not forwarders:
        return None

    def wake() -> None:
        for forwarder in forwarders:
            forwarder.wake()

    return wake


def make_forwarders(settings: Settings, reader: LedgerReader) -> list[Forwarder]:
    """The forwarders ``settings.audit`` asks for (a JSONL file, a syslog receiver over TLS)."""
    audit = settings.audit
    forwarders: list[Forwarder] = []
    if audit.jsonl_path is not None:
        destination = JsonlFileDestination(audit.jsonl_path)
        forwarders.append(Forwarder("jsonl", reader, reader, destination))
    if audit.syslog_host is not None:
        assert audit.syslog_ca and audit.syslog_cert and audit.syslog_key  # checked by settings
        syslog = SyslogTlsDestination(
            audit.syslog_host,
            audit.syslog_port,
            ca_file=str(audit.syslog_ca),
            cert_file=str(audit.syslog_cert),
            key_file=str(audit.syslog_key),
        )
        forwarders.append(Forwarder("syslog", reader, reader, syslog))
    return forwarders
