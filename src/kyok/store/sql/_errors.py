"""Database errors become kyok errors here, where they enter (like httpx's
``map_httpcore_exceptions``). Messages name what failed, never a value; engines are made with
``hide_parameters=True`` so the chained SQLAlchemy error holds no values either."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from kyok.errors import AlreadyExists, InternalError, KyokError, Unavailable

_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_POSTGRES_UNIQUE = "23505"  # unique_violation


def is_unique_violation(exc: Exception) -> bool:
    """Whether ``exc`` (SQLAlchemy's ``IntegrityError`` or the driver's own) reports a taken
    primary key or unique value (not, say, a NOT NULL)."""
    orig = getattr(exc, "orig", exc)
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return bool(sqlstate == _POSTGRES_UNIQUE)
    errorname = getattr(orig, "sqlite_errorname", None)  # sqlite3
    if errorname is not None:
        return errorname in _SQLITE_UNIQUE
    return True  # another driver: the common case


@contextmanager
def translated(
    what: str = "row", on_unique: Callable[[str], KyokError] | None = None
) -> Iterator[None]:
    """Translate SQLAlchemy errors raised inside the block.

    - a taken primary key or unique value (``IntegrityError``) becomes ``AlreadyExists``, or
      what ``on_unique`` makes of the message;
    - any other ``IntegrityError`` (NOT NULL, foreign key) is a defect: ``InternalError``;
    - ``OperationalError`` (locked past the busy timeout, connection lost, deadlock) becomes
      ``Unavailable``: the caller may retry.
    """
    try:
        yield
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise (on_unique or AlreadyExists)(f"{what} already exists") from exc
        raise InternalError(f"a database constraint on {what} was violated") from exc
    except OperationalError as exc:
        raise Unavailable("the database is unavailable; try again") from exc


@contextmanager
def translated_dbapi(dbapi: Any, what: str = "row") -> Iterator[None]:
    """:func:`translated` for statements run on the DB-API cursor directly (``dbapi`` is the
    driver module: ``IntegrityError`` and ``OperationalError`` are DB-API 2 names). The
    driver's error is not chained: psycopg's messages can quote the values."""
    try:
        yield
    except dbapi.IntegrityError as exc:
        if is_unique_violation(exc):
            raise AlreadyExists(f"{what} already exists") from None
        raise InternalError(f"a database constraint on {what} was violated") from None
    except dbapi.OperationalError:
        raise Unavailable("the database is unavailable; try again") from None
