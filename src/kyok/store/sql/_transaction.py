"""The connection and transaction behind one SQL unit of work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Dialect,
    Engine,
    Executable,
    Table,
    and_,
    delete,
    insert,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kyok.errors import AlreadyExists, InternalError
from kyok.store.sql._errors import translated, translated_dbapi
from kyok.store.sql.engine import connect


class Transaction:
    """One connection, one transaction at a time (begun by the first statement).

    Repositories run every statement through :meth:`execute` (reads) or :meth:`write`, so that
    database errors are translated and writes in a read-only unit of work are refused.
    """

    def __init__(self, engine: Engine, *, read_only: bool) -> None:
        self._engine = engine
        self.read_only = read_only
        self._conn: Connection | None = None
        self._used = False

    def open(self) -> None:
        if self._used:
            raise RuntimeError("a unit of work can be entered only once")
        self._used = True
        with translated():
            self._conn = connect(self._engine, read_only=self.read_only)

    def close(self) -> None:
        """Roll back whatever was not committed and return the connection to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with translated():
                conn.close()

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside its 'with' block")
        return self._conn

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    def commit(self) -> None:
        conn = self.conn
        with translated():
            conn.commit()

    def rollback(self) -> None:
        conn = self.conn
        with translated():
            conn.rollback()

    def execute(
        self,
        statement: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        conn = self.conn
        with translated():
            return conn.execute(statement, params)

    def write(
        self,
        statement: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        what: str = "row",
    ) -> CursorResult[Any]:
        if self.read_only:
            raise InternalError("write attempted in a read-only unit of work")
        conn = self.conn
        with translated(what):
            return conn.execute(statement, params)

    def insert_new(self, table: Table, values: Mapping[str, Any], *, what: str) -> None:
        """Insert one row; ``AlreadyExists`` if a primary key or unique value is taken.

        Uses ``ON CONFLICT DO NOTHING ... RETURNING``, so a duplicate leaves the transaction
        usable on PostgreSQL too (a failed INSERT would abort it there).
        """
        result = self.write(insert_ignoring_conflicts(self.dialect_name, table), values, what=what)
        if result.first() is None:
            raise AlreadyExists(f"{what} already exists")

    def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]], *, what: str) -> None:
        """Insert ``rows`` (each naming every column) with one ``executemany``;
        ``AlreadyExists`` if any primary key or unique value is taken (on PostgreSQL that
        aborts the transaction, so use it for rows whose keys are fresh).

        The statement goes to the DB-API cursor of this transaction's connection directly:
        SQLAlchemy's per-row parameter handling cost more than the insert itself (the hot path
        of key creation, bench/keys_create.sh). Each value is converted by its column type's
        own bind processor, so the stored values are exactly those SQLAlchemy would store.
        """
        if not rows:
            return
        if self.read_only:
            raise InternalError("write attempted in a read-only unit of work")
        dialect = self._engine.dialect
        plan = _raw_insert(table, dialect)
        params: Any = [plan.values(row) for row in rows]  # all tuples, or all dicts
        conn = self.conn
        if not conn.in_transaction():
            # The driver's cursor does not begin SQLAlchemy's transaction (SQLite's BEGIN
            # IMMEDIATE comes from its begin event): begin it first, or the rows would be
            # written outside the unit of work (SQLite autocommits) or lost (PostgreSQL).
            with translated():
                conn.begin()
        with translated_dbapi(dialect.loaded_dbapi, what):
            cursor = conn.connection.cursor()
            try:
                cursor.executemany(plan.sql, params)
            finally:
                cursor.close()

    def upsert(self, table: Table, values: Mapping[str, Any], *, what: str) -> None:
        """Insert one row or, if its primary key is taken, replace that row's other columns.

        ``INSERT ... ON CONFLICT (<primary key>) DO UPDATE`` on SQLite and PostgreSQL (atomic
        even against a concurrent insert of the same key); elsewhere DELETE, then INSERT.
        ``values`` must name every column.
        """
        statement = upsert_statement(self.dialect_name, table, values)
        if statement is not None:
            self.write(statement, what=what)
            return
        pk = and_(*(column == values[column.name] for column in table.primary_key.columns))
        self.write(delete(table).where(pk), what=what)
        self.write(insert(table).values(dict(values)), what=what)


class _RawInsert:
    """``INSERT INTO table (every column) VALUES (...)`` as SQLAlchemy compiles it for the
    dialect (its parameter style), and how each column's value is converted (its type's bind
    processor for the dialect)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect)
        self.sql = str(compiled)
        processors = {c.name: c.type.bind_processor(dialect) for c in table.columns}
        self._positional = bool(compiled.positional)
        names = list(compiled.positiontup or []) if self._positional else list(processors)
        self._columns = [(name, processors[name]) for name in names]

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = [
            (name, row[name] if process is None or row[name] is None else process(row[name]))
            for name, process in self._columns
        ]
        if self._positional:
            return tuple(value for _, value in converted)
        return dict(converted)


_raw_inserts: dict[tuple[str, str, str], _RawInsert] = {}


def _raw_insert(table: Table, dialect: Dialect) -> _RawInsert:
    key = (table.name, dialect.name, dialect.driver)
    plan = _raw_inserts.get(key)
    if plan is None:
        plan = _raw_inserts[key] = _RawInsert(table, dialect)
    return plan


def insert_ignoring_conflicts(dialect_name: str, table: Table) -> Executable:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING <first primary key column>`` for ``table``.

    The statement returns a row if and only if it inserted one (``rowcount`` is not reliable
    for INSERT on every driver).
    """
    first_pk = next(iter(table.primary_key.columns))
    if dialect_name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing().returning(first_pk)
    if dialect_name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing().returning(first_pk)
    return insert(table).returning(first_pk)


def upsert_statement(
    dialect_name: str, table: Table, values: Mapping[str, Any]
) -> Executable | None:
    """``INSERT ... ON CONFLICT (<primary key>) DO UPDATE SET <other columns>`` of ``values``
    into ``table``, or None on a dialect without it."""
    pk = [column.name for column in table.primary_key.columns]
    if dialect_name == "sqlite":
        sqlite_stmt = sqlite_insert(table).values(dict(values))
        changes = {k: sqlite_stmt.excluded[k] for k in values if k not in pk}
        return sqlite_stmt.on_conflict_do_update(index_elements=pk, set_=changes)
    if dialect_name == "postgresql":
        postgresql_stmt = postgresql_insert(table).values(dict(values))
        changes = {k: postgresql_stmt.excluded[k] for k in values if k not in pk}
        return postgresql_stmt.on_conflict_do_update(index_elements=pk, set_=changes)
    return None
