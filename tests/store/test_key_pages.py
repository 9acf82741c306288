"""Pages and capped counts of keys (issue 7): how PostgreSQL reads a page (ids first; per-state
id-ordered scans merged) changes how fast, never which rows, in which order, or how many."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from kyok.store._keyquery import check_query
from kyok.store.memory import MemoryStore
from kyok.store.records import KeyFilter, KeyQuery, KeyRecord, KeySearch
from kyok.store.sql import SqlStore, open_store
from kyok.store.sql import key_query as sql_key_query

from . import factories as f
from .factories import AnyStore

OTHER = "inst-2"
STATES = (1, 5, 2, 1, 0, 3, 1, 2, 1, 5, 3)
ALL = frozenset({0, 1, 2, 3, 5})


def _keys() -> list[KeyRecord]:
    """90 keys whose id order interleaves every state (ids are not made in state order), in
    two instances and two rings, some extractable, with creation times that repeat."""
    out = []
    for n in range(90):
        out.append(
            f.key(
                # a permutation of 0..89, so that id order is not creation order
                f"k{(n * 37) % 90:03d}",
                instance_id=OTHER if n % 9 == 4 else f.INSTANCE,
                state=STATES[n % len(STATES)],
                key_ring_id="ring-a" if n % 4 == 1 else "default",
                extractable=n % 3 == 0,
                created_at=f.at(n % 7),
                deleted_at=f.at(100) if STATES[n % len(STATES)] == 5 else None,
            )
        )
    return out


def _load(store: AnyStore) -> None:
    with store.uow() as uow:
        for record in _keys():
            uow.keys.add(record)
        uow.commit()


STATE_SETS = [None, ALL, frozenset({1, 5}), frozenset({0, 2, 3}), frozenset({2}), frozenset()]
PAGES = [(200, 0), (1, 0), (7, 3), (10, 40), (5, 76), (3, 79), (50, 200)]
QUERIES = [
    *(
        f.query(states=states, limit=limit, offset=offset)
        for states, (limit, offset) in itertools.product(STATE_SETS, PAGES)
    ),
    f.query(states=ALL, key_ring_id="ring-a", limit=4, offset=2),
    f.query(extractable=True, limit=6, offset=5),
    f.query(states=ALL, filters=(KeyFilter("deleted_at", "eq", None),), limit=9, offset=9),
    f.query(states=ALL, filters=(KeyFilter("created_at", "gte", f.at(3)),), offset=10),
    f.query(states=ALL, sort=(("created_at", True),), limit=11, offset=20),
    f.query(states=ALL, sort=(("state", False), ("id", True)), limit=13, offset=30),
    f.query(states=ALL, search=KeySearch("name of k0"), limit=8, offset=4),
    f.query(instance_id=OTHER, states=ALL, limit=3, offset=1),
]


def reference(query: KeyQuery) -> tuple[list[str], int]:
    """The page and the total, straight from the records (default sort: id)."""
    states = query.states if query.states is not None else frozenset({0, 1, 2, 3})
    rows = [
        r
        for r in _keys()
        if r.instance_id == query.instance_id
        and r.state in states
        and (query.extractable is None or r.extractable == query.extractable)
        and (query.key_ring_id is None or r.key_ring_id == query.key_ring_id)
    ]
    rows.sort(key=lambda r: r.id)
    return [r.id for r in rows[query.offset : query.offset + query.limit]], len(rows)


def _answers(store: AnyStore) -> list[tuple[list[str], int]]:
    with store.uow(read_only=True) as uow:
        return [([k.id for k in uow.keys.find(q)], uow.keys.count(q)) for q in QUERIES]


@pytest.fixture
def loaded(any_store: AnyStore) -> AnyStore:
    _load(any_store)
    if isinstance(any_store, SqlStore):
        with any_store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return any_store


def test_pages_are_those_of_the_reference(loaded: AnyStore) -> None:
    memory = MemoryStore()
    _load(memory)
    expected = _answers(memory)
    assert _answers(loaded) == expected
    plain = [
        i
        for i, q in enumerate(QUERIES)
        if q.sort == (("id", False),) and not q.filters and q.search is None
    ]
    for i in plain:  # and the reference agrees with the memory store
        assert expected[i] == reference(QUERIES[i]), QUERIES[i]
    # the pages cross state boundaries: the merged scans interleave states
    page = expected[QUERIES.index(f.query(states=ALL, limit=10, offset=40))][0]
    states = {r.id: r.state for r in _keys() if r.instance_id == f.INSTANCE}
    assert len({states[key_id] for key_id in page}) >= 3


def test_full_rows_come_back(loaded: AnyStore) -> None:
    """The page's rows are whole records, equal to what ``get`` returns."""
    with loaded.uow(read_only=True) as uow:
        page = uow.keys.find(f.query(states=ALL, limit=20, offset=15))
        assert page and all(uow.keys.get(r.instance_id, r.id) == r for r in page)


@pytest.mark.parametrize("cap", [0, 1, 5, 42, 43, 1000])
def test_capped_count_stops_at_the_cap(loaded: AnyStore, cap: int) -> None:
    with loaded.uow(read_only=True) as uow:
        for query in QUERIES:
            total = uow.keys.count(query)
            assert uow.keys.count(query, cap=cap) == min(total, cap)


def test_negative_cap_is_refused(any_store: AnyStore) -> None:
    with any_store.uow(read_only=True) as uow, pytest.raises(ValueError):
        uow.keys.count(f.query(), cap=-1)


@pytest.fixture
def index_first(loaded: AnyStore) -> Iterator[SqlStore]:
    """The loaded PostgreSQL database, through connections that use an index wherever one
    applies (a 90-key table is otherwise read whole, whatever the statement)."""
    if not isinstance(loaded, SqlStore) or loaded.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL plans only")
    url = loaded.engine.url
    options = f"{url.query.get('options', '')} -cenable_seqscan=off -cenable_sort=off"
    store = open_store(url.update_query_dict({"options": options.strip()}), migrate=False)
    try:
        yield store
    finally:
        store.close()


def _plan(store: SqlStore, query: KeyQuery) -> str:
    stmt = sql_key_query.select_page(check_query(query), "postgresql")
    with store.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))


def test_postgresql_merges_index_only_scans_for_an_id_ordered_page(
    index_first: SqlStore,
) -> None:
    """Several states in id order: one index-only scan per state, merged, with no sort and
    no heap read before the page (the deep-offset case of issue 7)."""
    plan = _plan(index_first, f.query(states=ALL, limit=5, offset=60))
    assert "Merge Append" in plan, plan
    scans = [line for line in plan.splitlines() if "Scan" in line]
    merged = [s for s in scans if "Index Only Scan using ix_keys_instance_id_state_id" in s]
    assert len(merged) == len(ALL), plan
    # the rest: the page's rows, by primary key
    assert all("pk_keys" in s for s in scans if s not in merged), plan
    assert "Sort" not in plan.replace("Sort Key", ""), plan
    # answers through these plans are the memory store's too
    assert _answers(index_first) == _answers(_memory())


def _memory() -> MemoryStore:
    memory = MemoryStore()
    _load(memory)
    return memory


def test_other_backends_read_a_page_in_one_statement() -> None:
    """SQLite keeps its single, index-ordered statement (no join, no sort of the page)."""
    stmt = sql_key_query.select_page(check_query(KeyQuery("i", states=ALL)), "sqlite")
    sql = str(stmt.compile(compile_kwargs={"literal_binds": True}))
    assert "JOIN" not in sql and "UNION" not in sql


def test_pages_and_totals_through_the_buckets_are_the_same(
    loaded: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query above with every offset counted as deep: where ``key_buckets`` answers
    (PostgreSQL, id order, states only) it gives the memory store's pages and totals."""
    monkeypatch.setattr(sql_key_query, "BUCKET_THRESHOLD", 0)
    assert _answers(loaded) == _answers(_memory())


def test_sqlite_reads_a_rings_page_from_the_ring_in_id_order(sql_store: SqlStore) -> None:
    """A search within a small key ring reads that ring's keys in id order (one index range,
    no sort), not every key of the instance along the primary key (issue 7: ~2.2 s a request
    with 1,000,000 keys on SQLite)."""
    if sql_store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite plans only")
    with sql_store.uow() as uow:
        uow.key_rings.add(f.key_ring("small"))
        for n in range(300):
            uow.keys.add(f.key(f"key-{n:03d}", key_ring_id="small" if n % 50 == 0 else "default"))
        uow.commit()
    with sql_store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    query = f.query(key_ring_id="small", search=KeySearch("name of"), limit=5, states=ALL)
    stmt = sql_key_query.select_page(check_query(query), "sqlite")
    with sql_store.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        ids = [row._mapping["id"] for row in conn.exec_driver_sql(sql)]
    assert any(
        line.startswith("SEARCH keys USING INDEX ix_keys_instance_id_key_ring_id_id")
        and "key_ring_id=?" in line
        for line in plan
    ), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan  # no sort
    assert ids[:5] == ["key-000", "key-050", "key-100", "key-150", "key-200"]
