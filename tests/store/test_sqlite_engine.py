"""SQLite specifics: PRAGMAs, BEGIN IMMEDIATE, readers beside a writer, URLs, durability."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from kyok.store.sql import SqlStore, create_engine_for, open_store, sqlite_url

from . import factories as f


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(sqlite_url(tmp_path)) as opened:
        yield opened


def test_sqlite_url(tmp_path: Path) -> None:
    assert sqlite_url(tmp_path) == f"sqlite:///{tmp_path}/kyok.db"
    assert sqlite_url(Path("relative")).endswith("/relative/kyok.db")
    assert sqlite_url(Path("relative")).startswith("sqlite:////")


def test_every_connection_gets_the_pragmas(store: SqlStore) -> None:
    names = ("journal_mode", "synchronous", "foreign_keys", "secure_delete", "busy_timeout")
    connections = [store.engine.raw_connection() for _ in range(3)]  # distinct connections
    try:
        for conn in connections:
            cursor = conn.cursor()
            pragma = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in names}
            cursor.close()
            assert pragma == {
                "journal_mode": "wal",
                "synchronous": 2,  # FULL
                "foreign_keys": 1,
                "secure_delete": 1,
                "busy_timeout": 5000,
            }
    finally:
        for conn in connections:
            conn.close()


def test_foreign_keys_are_enforced(store: SqlStore) -> None:
    with store.engine.connect() as conn, pytest.raises(Exception, match="FOREIGN KEY"):
        conn.execute(
            text("INSERT INTO unit_transcript (unit_id, n, entry, hash) VALUES ('x', 0, '', '')")
        )


def test_datetimes_are_stored_as_utc_text(store: SqlStore, tmp_path: Path) -> None:
    with store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    raw = sqlite3.connect(tmp_path / "kyok.db")
    try:
        (stored,) = raw.execute("SELECT created_at FROM keys").fetchone()
    finally:
        raw.close()
    assert stored == "2026-01-01 12:00:00.123456"


def test_a_writing_unit_of_work_takes_the_write_lock_at_its_first_read(store: SqlStore) -> None:
    """BEGIN IMMEDIATE: a second writer's *read* waits for the first writer's commit, so a
    read-modify-write never starts from a snapshot that is already stale."""
    first_wrote = threading.Event()

    def second_writer() -> object:
        assert first_wrote.wait(10)
        with store.uow() as uow:
            return uow.keys.get(f.INSTANCE, "k1")

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(second_writer)
        with store.uow() as uow:
            uow.keys.add(f.key("k1"))
            first_wrote.set()
            threading.Event().wait(0.2)
            assert not future.done()  # still waiting for the write lock
            uow.commit()
        assert future.result(timeout=10) == f.key("k1")  # it saw the committed key


def test_a_reader_is_not_blocked_by_a_writer(store: SqlStore) -> None:
    with store.uow() as writer:
        writer.keys.add(f.key("k1"))  # holds the write lock
        with store.uow(read_only=True) as reader:  # WAL: reads the last committed state
            assert reader.keys.get(f.INSTANCE, "k1") is None
            assert reader.keys.count(f.query()) == 0
        writer.commit()


def test_committed_work_survives_reopening(tmp_path: Path) -> None:
    with open_store(sqlite_url(tmp_path)) as store:
        with store.uow() as uow:
            uow.keys.add(f.key("k1"))
            uow.commit()
        store.units.create_unit("u1", "i1", [f.entry(0)])
    with open_store(sqlite_url(tmp_path)) as store:
        with store.uow() as uow:
            assert uow.keys.get(f.INSTANCE, "k1") == f.key("k1")
        assert store.units.transcript("u1") == [f.entry(0)]


def test_in_memory_sqlite_is_shared_by_units_of_work() -> None:
    with open_store("sqlite://") as store:
        with store.uow() as uow:
            uow.keys.add(f.key("k1"))
            uow.commit()
        with store.uow() as uow:
            assert uow.keys.get(f.INSTANCE, "k1") is not None


@pytest.mark.parametrize(
    "url", ["mysql://u@localhost/db", "postgresql+psycopg2://u@localhost/db", "oracle://x"]
)
def test_unsupported_databases_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        create_engine_for(url)


def test_postgresql_without_a_driver_means_psycopg() -> None:
    engine = create_engine_for("postgresql://u@127.0.0.1/db")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def _query_plans(store: SqlStore, action: Callable[[], object]) -> list[str]:
    """Run ``action`` and return SQLite's plan for every SELECT it issued."""
    selects: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        return [
            " | ".join(row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in selects
        ]
    finally:
        raw.close()


def test_rotation_queries_walk_the_epoch_index(store: SqlStore) -> None:
    (plan,) = _query_plans(store, lambda: store.units.blobs_at_epoch(f.INSTANCE, 1, 1000))
    assert "USING INDEX ix_blobs_instance_id_mk_epoch_id (instance_id=? AND mk_epoch=?)" in plan
    assert "TEMP B-TREE" not in plan  # the index also gives the order: no sort
    (plan,) = _query_plans(store, lambda: store.units.count_blobs_at_epoch(f.INSTANCE, 1))
    assert "COVERING INDEX ix_blobs_instance_id_mk_epoch_id" in plan


def test_listing_keys_needs_no_sort_or_full_scan(store: SqlStore) -> None:
    def list_keys() -> object:
        with store.uow(read_only=True) as uow:
            return uow.keys.find(f.query())

    (plan,) = _query_plans(store, list_keys)
    assert plan.startswith("SEARCH keys USING")
    assert "TEMP B-TREE" not in plan
