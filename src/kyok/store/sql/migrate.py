"""Schema migrations, run from code (no ``alembic.ini`` needed at runtime).

``upgrade(engine)`` builds an Alembic ``Config`` whose ``script_location`` is the
``kyok/store/migrations`` directory of the installed package and hands Alembic our own
connection through ``config.attributes["connection"]``. The whole upgrade runs in one
transaction (SQLite and PostgreSQL both have transactional DDL); on SQLite that transaction
holds the write lock, on PostgreSQL an advisory lock keeps two nodes from migrating at once.

A database already at the newest revision is the common case (every start of a node): the
newest revision is then read from the migration files' ``revision`` and ``down_revision`` lines
(:func:`source_head`) and compared with ``alembic_version`` in that same transaction, and Alembic
is not loaded at all. Anything else (an older or empty database, history that is not one
straight line) goes through Alembic.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from kyok.store.sql._errors import translated

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Key of the PostgreSQL advisory lock taken while migrating (with the schema's hash).
_ADVISORY_LOCK_CLASS = 0x6B796F6B  # "kyok"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at kyok's migrations, optionally bound to a
    connection (which ``env.py`` then uses)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision in kyok's migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("kyok's migrations have no head revision")
    return head


@functools.cache
def source_head() -> str | None:
    """The newest revision as kyok's migration files spell it (see :func:`head_in`)."""
    return head_in(MIGRATIONS_DIR / "versions")


def head_in(versions: Path) -> str | None:
    """The newest revision of the migration files in ``versions``, read without running them.

    Args:
        versions: a directory of Alembic revision files.

    Returns:
        The revision no file names as its ``down_revision``; None when the files are not one
        straight line of plain literals (a merge, a branch label, a dependency, a computed
        value, no file): Alembic then decides.
    """
    parents: dict[str, str | None] = {}
    for path in sorted(versions.glob("*.py")):
        if path.name.startswith("_"):
            continue
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError):
                    values[target.id] = value  # not a literal: not plain
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or revision in parents:
            return None
        if not (down is None or isinstance(down, str)):
            return None
        if values.get("branch_labels") or values.get("depends_on"):
            return None
        parents[revision] = down
    downs = list(parents.values())
    if downs.count(None) != 1 or not set(downs) <= set(parents) | {None}:
        return None  # not one base, or a parent that no file defines
    heads = set(parents) - set(downs)
    return heads.pop() if len(heads) == 1 else None


def _is_at(conn: Connection, revision: str) -> bool:
    """Whether the database's ``alembic_version`` says exactly ``revision``."""
    if not inspect(conn).has_table("alembic_version"):  # Alembic's default; env.py keeps it
        return False
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found == [revision]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

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
        head = source_head()
        if head is not None and revision in ("head", head) and _is_at(conn, head):
            return
        from alembic import command

        command.upgrade(alembic_config(conn), revision)
