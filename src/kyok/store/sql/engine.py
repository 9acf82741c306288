"""Engines for SQLite and PostgreSQL, configured for a key store.

SQLite (the default; one file, one node): every connection gets ``journal_mode=WAL``,
``synchronous=FULL`` (a committed key survives power loss), ``foreign_keys=ON``,
``busy_timeout=5000`` and ``secure_delete=ON`` (purged blobs are overwritten on disk). The
driver's own transaction handling is switched off and SQLAlchemy's ``begin`` event emits the
BEGIN itself (the recipe in SQLAlchemy's SQLite documentation): ``BEGIN IMMEDIATE`` for units
of work that may write, so a writer takes the write lock up front and waits for it (busy
timeout) instead of failing with SQLITE_BUSY when a read lock would have to be upgraded;
plain deferred ``BEGIN`` for read-only work, which WAL lets run beside a writer.

PostgreSQL (shared, multi-node): ``postgresql+psycopg://`` (psycopg 3), READ COMMITTED.
Read-only units of work run in READ ONLY transactions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from kyok.store._keyquery import fold
from kyok.store.sql.write_gate import WriteGate, gate_of, set_gate

#: Connection execution option: this transaction only reads.
READ_ONLY = "kyok_read_only"

SQLITE_PRAGMAS: tuple[tuple[str, str], ...] = (
    ("journal_mode", "WAL"),
    ("synchronous", "FULL"),
    ("foreign_keys", "ON"),
    ("busy_timeout", "5000"),
    ("secure_delete", "ON"),
)

#: Name of the case-folding SQL function registered on SQLite connections (see ``functions``).
SQLITE_FOLD_FUNCTION = "kyok_fold"


def sqlite_url(data_dir: Path) -> str:
    """The URL of the SQLite database kept in ``data_dir``: ``sqlite:///<data_dir>/kyok.db``."""
    return f"sqlite:///{Path(data_dir).absolute() / 'kyok.db'}"


def create_engine_for(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://...``).

    Args:
        url: database URL. ``postgresql://`` without a driver is taken to mean psycopg 3.
        kwargs: passed to :func:`sqlalchemy.create_engine`, except ``kyok_write_gate``: True
            puts a SQLite file's writers in line through a :class:`WriteGate` (several worker
            processes on one file; ignored elsewhere).

    Raises:
        ValueError: a database kyok does not support.
    """
    parsed = make_url(url)
    write_gate = bool(kwargs.pop("kyok_write_gate", False))
    # Statement parameters (blob data, names) never go into error messages or logs.
    kwargs.setdefault("hide_parameters", True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, kwargs, write_gate=write_gate)
    if backend == "postgresql":
        if "+" not in parsed.drivername:  # no driver named: SQLAlchemy would pick psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise ValueError("kyok speaks to PostgreSQL through psycopg 3 (postgresql+psycopg://)")
        kwargs.setdefault("pool_pre_ping", True)  # survive a database restart
        return create_engine(parsed, **kwargs)
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_engine(url: URL, kwargs: dict[str, Any], *, write_gate: bool = False) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, so that every unit of work sees the same in-memory database;
        # hence one unit of work at a time (for many, use a file or kyok.store.memory).
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    if write_gate and not in_memory:
        _install_gate(engine, WriteGate(Path(f"{url.database}.write-lock")))
    return engine


def _install_gate(engine: Engine, gate: WriteGate) -> None:
    """Writers pass ``gate`` in ``_sqlite_begin``; every commit and rollback opens it."""
    set_gate(engine, gate)
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            gate.release(getattr(dbapi_connection, "dbapi_connection", dbapi_connection))

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            gate.release(getattr(dbapi_connection, "dbapi_connection", dbapi_connection))

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _sqlite_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # Stop the sqlite3 module from issuing BEGIN itself (it skips it before SELECTs and DDL);
    # _sqlite_begin issues it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for name, value in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {name} = {value}")
    finally:
        cursor.close()
    dbapi_connection.create_function(SQLITE_FOLD_FUNCTION, 1, _fold_or_none, deterministic=True)


def _fold_or_none(value: object) -> object:
    return fold(value) if isinstance(value, str) else value


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
        return
    gate = gate_of(conn.engine)
    if gate is None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    owner = conn.connection.dbapi_connection
    gate.acquire(owner)
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        gate.release(owner)
        raise


def connect(engine: Engine, *, read_only: bool = False) -> Connection:
    """Check out a connection whose next transaction is read-only or may write.

    See the module docstring for what that means on each backend.
    """
    conn = engine.connect()
    if not read_only:
        return conn
    if engine.dialect.name == "postgresql":
        return conn.execution_options(**{READ_ONLY: True}, postgresql_readonly=True)
    return conn.execution_options(**{READ_ONLY: True})
