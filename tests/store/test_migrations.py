"""Alembic migrations: an empty database upgrades to exactly what ``tables.metadata`` says."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, insert, inspect, text

from kyok.store.sql import SqlStore, open_store
from kyok.store.sql.keys import key_values
from kyok.store.sql.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade
from kyok.store.sql.tables import OPTIONAL_INDEXES, keys, metadata

from . import factories as f


def _declared(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave out the indexes migrations make only where the backend can (OPTIONAL_INDEXES)."""
    return not (type_ == "index" and name in OPTIONAL_INDEXES)


def schema_differences(engine: Engine, target: MetaData = metadata) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _declared}
        )
        return list(compare_metadata(context, target))


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    assert not list(MIGRATIONS_DIR.glob("*.ini"))  # configured in code, not by a file


def test_upgrade_from_empty_matches_the_tables(store_url: str) -> None:
    store = open_store(store_url, migrate=False)
    try:
        assert inspect(store.engine).get_table_names() == []
        assert current_revision(store.engine) is None
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        assert schema_differences(store.engine) == []
        expected = set(metadata.tables) | {"alembic_version"}
        assert set(inspect(store.engine).get_table_names()) == expected
    finally:
        store.close()


def test_upgrading_a_0002_database_keeps_its_keys(store_url: str) -> None:
    """0003 adds ``keys.last_synced_at`` to a table that already holds rows."""
    store = open_store(store_url, migrate=False)
    try:
        upgrade(store.engine, "0002")
        assert "last_synced_at" not in {
            c["name"] for c in inspect(store.engine).get_columns("keys")
        }
        old = f.key("k-old", expires_at=f.at(5))
        values = {k: v for k, v in key_values(old).items() if k != "last_synced_at"}
        with store.engine.begin() as conn:
            conn.execute(insert(keys).values(values))
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        assert schema_differences(store.engine) == []
        with store.uow() as uow:
            assert uow.keys.get(f.INSTANCE, "k-old") == old
            assert uow.keys.find(f.query()) == [old]
    finally:
        store.close()


def test_the_comparison_would_notice_a_difference(sql_store: SqlStore) -> None:
    """Guard for the test above: a schema that drifted from the tables is reported."""
    with sql_store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_keys_instance_id_name"))
    diffs = schema_differences(sql_store.engine)
    assert [d[0] for d in diffs] == ["add_index"]
    assert diffs[0][1].name == "ix_keys_instance_id_name"


def test_migrating_again_is_a_no_op(sql_store: SqlStore) -> None:
    with sql_store.uow() as uow:
        uow.keys.add(f.key("k1"))
        uow.commit()
    sql_store.migrate()
    assert current_revision(sql_store.engine) == head_revision()
    with sql_store.uow() as uow:
        assert uow.keys.get(f.INSTANCE, "k1") is not None


def test_identifiers_sort_bytewise_on_every_backend(sql_store: SqlStore) -> None:
    ids = ["B", "a", "a-b", "ab", "Z", "_x", "é", "~"]
    with sql_store.uow() as uow:
        for key_id in ids:
            uow.keys.add(f.key(key_id))
        uow.commit()
    with sql_store.uow() as uow:
        assert [k.id for k in uow.keys.find(f.query())] == sorted(ids)


@pytest.mark.postgres
def test_postgresql_identifiers_collate_bytewise(postgres_url: str) -> None:
    """Alembic's comparison ignores collations, so check them here: identifier columns are
    ``COLLATE "C"`` (ordering independent of the database locale), nothing else is."""
    with open_store(postgres_url) as store, store.engine.connect() as conn:
        dialect = store.engine.dialect
        rows = conn.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name <> 'alembic_version'"
            )
        ).all()
    actual = {(table, column): collation for table, column, collation in rows}
    expected = {
        (table.name, column.name): (
            "C" if 'COLLATE "C"' in column.type.compile(dialect=dialect) else None
        )
        for table in metadata.sorted_tables
        for column in table.columns
    }
    assert actual == expected
    assert actual[("keys", "id")] == "C" and actual[("keys", "name")] is None
