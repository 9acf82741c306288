"""Schema migrations, run from code (no ``alembic.ini`` needed at runtime).

``upgrade(engine)`` builds an Alembic ``Config`` whose ``script_location`` is the
``kyok/store/migrations`` directory of the installed package and hands Alembic our own
connection through ``config.attributes["connection"]``. The whole upgrade runs in one
transaction (SQLite and PostgreSQL both have transactional DDL); on SQLite that transaction
holds the write lock, on PostgreSQL an advisory lock keeps two nodes from migrating at once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from kyok.store.sql._errors import translated

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Key of the PostgreSQL advisory lock taken while migrating (with the schema's hash).
_ADVISORY_LOCK_CLASS = 0x6B796F6B  # "kyok"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at kyok's migrations, optionally bound to a
    connection (which ``env.py`` then uses)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision in kyok's migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("kyok's migrations have no head revision")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with translated(), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (default: the newest)."""
    with translated(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:cls, hashtext(current_schema()))"),
                {"cls": _ADVISORY_LOCK_CLASS},
            )
        command.upgrade(alembic_config(conn), revision)
