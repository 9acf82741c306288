"""Shared fixtures: fresh stores on every backend.

- ``any_store``: a fresh, migrated store on ``memory``, ``sqlite`` and ``postgresql``.
- ``sql_store``: a fresh, migrated :class:`~kyok.store.sql.SqlStore` on ``sqlite`` and
  ``postgresql``.
- ``store_url``: the URL of a fresh, *empty* (unmigrated) database on ``sqlite`` and
  ``postgresql``; for tests that open the store themselves (migrations, CLI, server).
- ``postgres_url``: the same, PostgreSQL only (mark such tests ``@pytest.mark.postgres``).

PostgreSQL comes from ``KYOK_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); each test gets its own schema
(``kyok_t_<random>``, selected through ``search_path`` in the URL); schemas are dropped in
batches (dropping is slow, one commit each) and at the latest when the session ends.
If PostgreSQL does not answer, those parameters are skipped, unless ``KYOK_REQUIRE_POSTGRES=1``
(CI), which makes them fail. They carry the ``postgres`` marker (``-m "not postgres"``).
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kyok.store.memory import MemoryStore
from kyok.store.sql import SqlStore, create_engine_for, open_store, sqlite_url

# Tests never assert timings (DESIGN §6): no Hypothesis deadline, and no "too slow" health check,
# which a loaded 2-core CI machine can trip while generating data.
hypothesis_settings.register_profile(
    "kyok", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("kyok")

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

AnyStore = MemoryStore | SqlStore

_POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql")
SQL_BACKENDS = ["sqlite", _POSTGRES]
ALL_BACKENDS = ["memory", "sqlite", _POSTGRES]


def postgres_base_url() -> str:
    """The PostgreSQL server the tests use (see the module docstring)."""
    return os.environ.get("KYOK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None if it answers."""
    engine = create_engine_for(
        postgres_base_url(), poolclass=NullPool, connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip the current test without PostgreSQL (fail instead if KYOK_REQUIRE_POSTGRES=1)."""
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("KYOK_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"KYOK_REQUIRE_POSTGRES=1 but PostgreSQL does not answer: {problem}")
    pytest.skip(f"PostgreSQL does not answer: {problem}")


_schemas_to_drop: list[str] = []
_DROP_BATCH = 20


def _drop_schemas() -> None:
    """Drop the schemas the finished tests used (one transaction per batch)."""
    if not _schemas_to_drop:
        return
    admin = create_engine_for(postgres_base_url(), poolclass=NullPool)
    try:
        while _schemas_to_drop:
            batch = _schemas_to_drop[:_DROP_BATCH]
            with admin.begin() as conn:
                for schema in batch:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            del _schemas_to_drop[: len(batch)]
    finally:
        admin.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_schemas()


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a new, empty schema of their own (dropped later)."""
    require_postgres()
    schema = f"kyok_t_{secrets.token_hex(6)}"
    admin = create_engine_for(postgres_base_url(), poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    try:
        # tests need no durability: not waiting for WAL flushes makes them much faster
        url = make_url(postgres_base_url()).update_query_dict(
            {"options": f"-csearch_path={schema} -csynchronous_commit=off"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        _schemas_to_drop.append(schema)
        if len(_schemas_to_drop) >= _DROP_BATCH:
            _drop_schemas()


@contextmanager
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend`` (``sqlite`` or ``postgresql``)."""
    if backend == "sqlite":
        data_dir = tmp_path / "kyok-data"
        data_dir.mkdir(exist_ok=True)
        yield sqlite_url(data_dir)
    elif backend == "postgresql":
        with postgres_schema_url() as url:
            yield url
    else:
        raise ValueError(f"no database for backend {backend!r}")


@contextmanager
def fresh_store(backend: str, tmp_path: Path) -> Iterator[AnyStore]:
    """A new, migrated store on ``backend`` (``memory``, ``sqlite`` or ``postgresql``)."""
    if backend == "memory":
        yield MemoryStore()
        return
    with fresh_database_url(backend, tmp_path) as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(params=SQL_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty (unmigrated) database: sqlite and postgresql."""
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema (skipped without PostgreSQL)."""
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh, migrated SqlStore: sqlite and postgresql."""
    with fresh_store(request.param, tmp_path) as store:
        assert isinstance(store, SqlStore)
        yield store


@pytest.fixture(params=ALL_BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    """A fresh store: memory, sqlite and postgresql."""
    with fresh_store(request.param, tmp_path) as store:
        yield store
