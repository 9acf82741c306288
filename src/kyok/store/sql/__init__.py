"""The SQL store (SQLAlchemy Core): SQLite by default, PostgreSQL for shared deployments.

``open_store(url)`` is the entry point; ``sqlite_url(data_dir)`` names the default database.
"""

from __future__ import annotations

from kyok.store.sql.engine import create_engine_for, sqlite_url
from kyok.store.sql.store import SqlStore, open_store
from kyok.store.sql.units import SqlUnitStateStore
from kyok.store.sql.uow import SqlUnitOfWork

__all__ = [
    "SqlStore",
    "SqlUnitOfWork",
    "SqlUnitStateStore",
    "create_engine_for",
    "open_store",
    "sqlite_url",
]
