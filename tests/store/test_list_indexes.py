"""The indexes of migration 0005 (counting keys by state; on PostgreSQL with pg_trgm, a trigram
index on aliases) change how fast lists, counts and searches are, never what they return."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL

from kyok.store._keyquery import check_query
from kyok.store.memory import MemoryStore
from kyok.store.records import KeyQuery, KeySearch
from kyok.store.sql import SqlStore, open_store, sqlite_url
from kyok.store.sql import key_query as sql_key_query
from kyok.store.sql.tables import OPTIONAL_INDEXES, keys, metadata

from . import factories as f

OTHER = "inst-2"
NAMES = ["Payment key", "payment-KEY_2", "100% secure", "under_score", "back\\slash", "Straße Ä"]
STATES = [1, 2, 0, 3, 5, 1, 1]
RINGS = ["default", "default", "ring-a"]
COUNT_INDEX = "ix_keys_instance_id_state"
TRIGRAM_INDEX = "ix_aliases_alias_trgm"


def _load(store: SqlStore | MemoryStore) -> None:
    """84 keys in two instances with names, states, rings and aliases that exercise every
    corner of search: wildcards, backslashes, case folding, short texts."""
    with store.uow() as uow:
        for n in range(84):
            instance = OTHER if n % 7 == 6 else f.INSTANCE
            key_id = f"k{n:03d}"
            uow.keys.add(
                f.key(
                    key_id,
                    instance_id=instance,
                    name=f"{NAMES[n % len(NAMES)]} {n}",
                    state=STATES[n % len(STATES)],
                    key_ring_id=RINGS[n % len(RINGS)],
                    extractable=n % 4 == 0,
                    created_at=f.at(n % 10),
                )
            )
            if n % 3 == 0:
                uow.aliases.add(f.alias(f"alias-{n}", key_id, instance_id=instance))
            if n % 5 == 0:
                uow.aliases.add(f.alias(f"Pay_ALIAS{n}", key_id, instance_id=instance))
        uow.commit()


ALL_STATES = frozenset({0, 1, 2, 3, 5})
SEARCHES = [
    KeySearch("pay"),
    KeySearch("PAY", names=False),
    KeySearch("pay", aliases=False),
    KeySearch("alias-1"),
    KeySearch("alias-12", exact=True),
    KeySearch("y_a"),
    KeySearch("_"),
    KeySearch("%"),
    KeySearch("\\"),
    KeySearch("straße ä"),
    KeySearch("ÄS"),
    KeySearch("zz"),
    KeySearch("nothing at all"),
    KeySearch("pay", negate=True),
    KeySearch("alias", names=False, negate=True),
]
QUERIES = [
    *(f.query(search=s) for s in SEARCHES),
    *(f.query(search=s, states=ALL_STATES, key_ring_id="ring-a") for s in SEARCHES),
    f.query(),
    f.query(instance_id=OTHER),
    f.query(states=frozenset({1, 5}), limit=7, offset=3),
    f.query(states=frozenset({2})),
    f.query(states=ALL_STATES, sort=(("state", True), ("created_at", False)), limit=10),
    f.query(key_ring_id="ring-a", extractable=True),
    f.query(limit=5, offset=40),
]


def _answers(store: SqlStore | MemoryStore) -> list[tuple[list[str], int]]:
    out = []
    with store.uow(read_only=True) as uow:
        for query in QUERIES:
            out.append(([k.id for k in uow.keys.find(query)], uow.keys.count(query)))
    return out


@pytest.fixture
def loaded(sql_store: SqlStore) -> SqlStore:
    _load(sql_store)
    with sql_store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return sql_store


def _index_first(url: URL) -> SqlStore:
    """A store on the same database whose connections use an index wherever one applies."""
    options = f"{url.query.get('options', '')} -cenable_seqscan=off -cenable_sort=off"
    return open_store(url.update_query_dict({"options": options.strip()}), migrate=False)


@pytest.fixture
def index_first(loaded: SqlStore) -> Iterator[SqlStore]:
    if loaded.engine.dialect.name != "postgresql":
        yield loaded
        return
    store = _index_first(loaded.engine.url)
    try:
        yield store
    finally:
        store.close()


def test_answers_do_not_depend_on_the_list_indexes(loaded: SqlStore, index_first: SqlStore) -> None:
    reference = MemoryStore()  # the backend every other one must agree with
    _load(reference)
    expected = _answers(reference)
    assert _answers(index_first) == expected
    assert _answers(loaded) == expected
    names = {i["name"] for i in inspect_indexes(loaded, "keys")}
    assert COUNT_INDEX in names
    with loaded.engine.begin() as conn:
        conn.execute(text(f"DROP INDEX {COUNT_INDEX}"))
        conn.execute(text(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}"))
    assert _answers(loaded) == expected
    assert _answers(index_first) == expected
    assert any(found for found, _ in expected[: len(SEARCHES)])  # the searches find something


def inspect_indexes(store: SqlStore, table: str) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return list(inspect(conn).get_indexes(table))  # type: ignore[arg-type]


@pytest.mark.postgres
def test_postgresql_searches_aliases_through_the_trigram_index(postgres_url: str) -> None:
    """Where pg_trgm could be had (the test database's owner may install it), migrating makes
    the trigram index, searches can use it, and they find what the memory store finds.
    (Elsewhere the index is absent, and the test above covers searching without it.)"""
    with open_store(postgres_url) as store:
        with store.engine.connect() as conn:
            installed = conn.execute(
                text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            ).scalar()
            present = conn.execute(
                text(
                    "SELECT 1 FROM pg_indexes"
                    " WHERE indexname = :n AND schemaname = current_schema()"
                ),
                {"n": TRIGRAM_INDEX},
            ).scalar()
        assert bool(present) == bool(installed)
        if not present:
            pytest.skip("pg_trgm is not available to this role")
        _load(store)
        with store.engine.begin() as conn:
            # leave the alias search no other index (this schema is the test's own)
            conn.execute(text("DROP INDEX ix_aliases_instance_id_key_id"))
            conn.execute(text("ALTER TABLE aliases DROP CONSTRAINT pk_aliases"))
            conn.execute(text("ANALYZE"))
        trigram_only = _index_first(store.engine.url)
    try:
        query = check_query(f.query(search=KeySearch("alias-12", names=False)))
        stmt = select(keys.c.id).where(sql_key_query.where(query))
        with trigram_only.engine.connect() as conn:
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
        assert TRIGRAM_INDEX in plan, plan
        reference = MemoryStore()
        _load(reference)
        assert _answers(trigram_only) == _answers(reference)
    finally:
        trigram_only.close()


def test_optional_indexes_are_not_in_the_metadata() -> None:
    declared = {i.name for table in metadata.tables.values() for i in table.indexes}
    assert not declared & OPTIONAL_INDEXES
    assert COUNT_INDEX in declared


def test_sqlite_has_no_optional_index(tmp_path: Path) -> None:
    with open_store(sqlite_url(tmp_path)) as store:
        names = {i["name"] for i in inspect_indexes(store, "aliases")}
        assert "ix_aliases_instance_id_key_id" in names
        assert not names & OPTIONAL_INDEXES


def test_alias_search_names_its_instance_as_a_value() -> None:
    """So PostgreSQL reads only that instance's aliases when it scans them once for the whole
    query; the answers themselves are pinned by test_key_query.py on every backend."""
    query = check_query(KeyQuery(instance_id="inst-x", search=KeySearch("abc")))
    sql = str(sql_key_query.where(query).compile(compile_kwargs={"literal_binds": True}))
    assert "aliases.instance_id = 'inst-x'" in sql
    assert "aliases.key_id = keys.id" in sql
