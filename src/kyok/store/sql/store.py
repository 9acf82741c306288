"""The SQL store: one engine, units of work over it, and the crypto units' state."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from kyok.clock import Clock
from kyok.store.sql import migrate as _migrate
from kyok.store.sql.engine import create_engine_for
from kyok.store.sql.ledger_writer import SqlLedgerWriter
from kyok.store.sql.units import SqlUnitStateStore
from kyok.store.sql.uow import SqlUnitOfWork


class SqlStore:
    """kyok's persistence on SQLite or PostgreSQL.

    ``uow()`` opens a unit of work (``kyok.store.ports.UnitOfWork``); ``units`` is the crypto
    unit's ``UnitStateStore``; ``migrate()`` brings the schema up to date. Close it (or use it
    as a context manager) to release the connection pool.

    Args:
        url: ``sqlite:///path/kyok.db`` or ``postgresql+psycopg://user@host/db``.
        clock: source of the units' creation times (default: the system clock).
        engine_kwargs: passed to :func:`kyok.store.sql.engine.create_engine_for`.
    """

    def __init__(self, url: str | URL, *, clock: Clock | None = None, **engine_kwargs: Any):
        self.engine: Engine = create_engine_for(url, **engine_kwargs)
        self.units = SqlUnitStateStore(self.engine, clock)

    def uow(self, *, read_only: bool = False) -> SqlUnitOfWork:
        """A new unit of work (see :class:`SqlUnitOfWork`)."""
        return SqlUnitOfWork(self.engine, read_only=read_only)

    def migrate(self) -> None:
        """Apply every pending schema migration (idempotent; safe with several nodes)."""
        _migrate.upgrade(self.engine)

    def ledger_writer(self) -> SqlLedgerWriter:
        """A dedicated connection for the audit ledger's group commits."""
        return SqlLedgerWriter(self.engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    url: str | URL, *, migrate: bool = True, clock: Clock | None = None, **engine_kwargs: Any
) -> SqlStore:
    """Open the store at ``url`` and, unless ``migrate`` is false, bring its schema up to date.

    Raises:
        ValueError: an unsupported database URL.
        kyok.errors.Unavailable: the database cannot be reached.
    """
    store = SqlStore(url, clock=clock, **engine_kwargs)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
