"""Alembic environment for kyok's schema.

``kyok.store.sql.migrate.upgrade`` passes its connection in ``config.attributes``; run from the
command line instead (``alembic -x url=sqlite:///kyok.db upgrade head`` with a config whose
``script_location`` is this directory) an engine is made from ``-x url=`` or
``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kyok.store.sql.engine import create_engine_for
from kyok.store.sql.tables import metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run against the connection we were given, or one of our own."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine_for(_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _under_alembic() -> bool:
    """Whether Alembic is running this file (not, say, a tool importing every module)."""
    try:
        return context.config is not None
    except AttributeError:
        return False


if _under_alembic():
    if context.is_offline_mode():
        run_offline()
    else:
        run_online()
