"""``key_buckets`` (migration 0006): triggers keep it equal to a count of ``keys`` per instance,
state and id prefix, whoever writes; deep pages (ascending and descending id order) and totals
read through it are those of the plain statements."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, inspect, literal, select, text, update

from kyok.errors import VersionConflict
from kyok.store._keyquery import check_query
from kyok.store.ports import UnitOfWork
from kyok.store.records import KeyFilter, KeyRecord, KeySearch
from kyok.store.sql import SqlStore, open_store
from kyok.store.sql import key_query as sql_key_query
from kyok.store.sql.keys import key_values
from kyok.store.sql.migrate import alembic_config, upgrade
from kyok.store.sql.tables import KEY_BUCKET_TRIGGERS, key_buckets, keys

from . import factories as f

ALL = frozenset({0, 1, 2, 3, 5})
STATE_SETS: list[frozenset[int] | None] = [None, ALL, frozenset({1}), frozenset({1, 5})]
# Few characters, so that ids share buckets and some are shorter than a bucket's prefix;
# "é" and "~" check byte-wise order past ASCII.
ID_TEXT = st.text(alphabet="0ab~é", min_size=1, max_size=5)
_instances = itertools.count()


def add_many(uow: UnitOfWork, records: Sequence[KeyRecord]) -> None:
    uow.keys.add_many(records)  # type: ignore[attr-defined]  # the SQL repositories have it


def stored_buckets(store: SqlStore) -> dict[tuple[str, int, str], int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(key_buckets)).all()
    return {(r.instance_id, r.state, r.bucket): r.n for r in rows}


def counted_buckets(store: SqlStore) -> dict[tuple[str, int, str], int]:
    """What ``key_buckets`` must hold, counted here from ``keys`` (prefix cut in Python)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(keys.c.instance_id, keys.c.state, keys.c.id)).all()
    return dict(Counter((r.instance_id, r.state, r.id[:3]) for r in rows))


def ids_by_state(store: SqlStore, instance_id: str) -> list[tuple[str, int]]:
    """(id, state) of an instance's keys, in id order (code points: the byte-wise order)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(keys.c.id, keys.c.state).where(keys.c.instance_id == instance_id)
        ).all()
    return sorted((r.id, r.state) for r in rows)


@pytest.fixture
def every_offset_bucketed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read every page and count of a bucketed query through ``key_buckets``."""
    monkeypatch.setattr(sql_key_query, "BUCKET_THRESHOLD", 0)


#: Ascending and descending id order.
ID_SORTS = [(("id", False),), (("id", True),)]


def check_pages(store: SqlStore, instance_id: str, limits: tuple[int, ...] = (1, 3)) -> None:
    """Every page (each offset up to past the end) and total of ``instance_id``'s keys in a
    few state sets, in ascending and descending id order, equals the reference cut from the
    sorted ids."""
    everything = ids_by_state(store, instance_id)
    with store.uow(read_only=True) as uow:
        for states, sort in itertools.product(STATE_SETS, ID_SORTS):
            wanted = frozenset({0, 1, 2, 3}) if states is None else states
            matches = [key_id for key_id, state in everything if state in wanted]
            if sort[0][1]:
                matches.reverse()
            for cap in (None, 0, 1, len(matches), len(matches) + 1):
                query = f.query(instance_id, states=states, sort=sort)
                assert uow.keys.count(query, cap=cap) == (
                    len(matches) if cap is None else min(cap, len(matches))
                ), (states, sort, cap)
            for limit, offset in itertools.product(limits, range(len(matches) + 2)):
                query = f.query(instance_id, states=states, sort=sort, limit=limit, offset=offset)
                got = [k.id for k in uow.keys.find(query)]
                assert got == matches[offset : offset + limit], (states, sort, limit, offset)


# ---------------------------------------------------------------- random writes


WRITES = st.lists(
    st.sampled_from(
        [
            "add",
            "add_many",
            "set_state",
            "rename",
            "delete",
            "rolled_back",
            "sql_insert",
            "sql_copy",
            "sql_set_state",
            "sql_move_instance",
            "sql_change_id",
            "sql_delete",
        ]
    ),
    min_size=1,
    max_size=14,
)


class Writer:
    """Applies one kind of write, through the repository or in plain SQL, to two instances."""

    def __init__(self, store: SqlStore, data: st.DataObject) -> None:
        n = next(_instances)
        self.store, self.data = store, data
        self.instances = (f"bk-{n}-a", f"bk-{n}-b")

    def _instance(self) -> str:
        return self.data.draw(st.sampled_from(self.instances))

    def _state(self) -> int:
        return self.data.draw(st.sampled_from(sorted(ALL)))

    def _existing(self, instance_id: str, most: int) -> list[str]:
        present = [key_id for key_id, _ in ids_by_state(self.store, instance_id)]
        if not present:
            return []
        return self.data.draw(st.lists(st.sampled_from(present), max_size=most, unique=True))

    def _new_ids(self, instance_id: str, most: int, least: int = 1) -> list[str]:
        """Ids not in the instance yet: drawn from ``ID_TEXT``, made unique with a suffix."""
        present = {key_id for key_id, _ in ids_by_state(self.store, instance_id)}
        out = []
        for key_id in self.data.draw(st.lists(ID_TEXT, min_size=least, max_size=most)):
            while key_id in present:
                key_id += self.data.draw(st.sampled_from(["0", "b", "é"]))
            present.add(key_id)
            out.append(key_id)
        return out

    def _new_keys(
        self, most: int, instance_id: str | None = None, least: int = 1
    ) -> list[KeyRecord]:
        instance_id = instance_id or self._instance()
        return [
            f.key(key_id, instance_id, state=self._state())
            for key_id in self._new_ids(instance_id, most, least)
        ]

    def seed(self) -> None:
        """Some keys in each instance to begin with (or none)."""
        for instance_id in self.instances:
            with self.store.uow() as uow:
                add_many(uow, self._new_keys(30, instance_id, least=0))
                uow.commit()

    def apply(self, kind: str) -> None:
        getattr(self, kind)()

    # through the repository

    def add(self) -> None:
        with self.store.uow() as uow:
            uow.keys.add(self._new_keys(1)[0])
            uow.commit()

    def add_many(self) -> None:
        with self.store.uow() as uow:
            add_many(uow, self._new_keys(6))
            uow.commit()

    def rolled_back(self) -> None:
        with self.store.uow() as uow:
            add_many(uow, self._new_keys(3))  # never committed

    def _update_each(self, state: bool) -> None:
        instance_id = self._instance()
        with self.store.uow() as uow:
            for key_id in self._existing(instance_id, 3):
                record = uow.keys.get(instance_id, key_id)
                assert record is not None
                if state:
                    changed = dataclasses.replace(record, state=self._state())
                else:
                    changed = dataclasses.replace(record, name=f"{record.name}!")
                uow.keys.update(changed, record.row_version)
            uow.commit()

    def set_state(self) -> None:
        self._update_each(state=True)

    def rename(self) -> None:
        self._update_each(state=False)

    def delete(self) -> None:
        instance_id = self._instance()
        with self.store.uow() as uow:
            for key_id in self._existing(instance_id, 3):
                uow.keys.delete(instance_id, key_id)
            uow.commit()

    # in plain SQL: one statement for several keys

    def sql_insert(self) -> None:
        rows = [key_values(record) for record in self._new_keys(6)]
        with self.store.engine.begin() as conn:
            conn.execute(insert(keys).values(rows))

    def sql_copy(self) -> None:
        """``INSERT ... SELECT``: copies of some keys under new ids, in new states."""
        instance_id = self._instance()
        chosen = self._existing(instance_id, 4)
        suffix = self.data.draw(st.sampled_from(["~", "0", "é0"]))
        state = self._state()
        present = {key_id for key_id, _ in ids_by_state(self.store, instance_id)}
        chosen = [key_id for key_id in chosen if key_id + suffix not in present]
        columns = [c.name for c in keys.columns]
        source = select(
            *(
                (keys.c.id + suffix).label("id")
                if c.name == "id"
                else literal(state).label("state")
                if c.name == "state"
                else c
                for c in keys.columns
            )
        ).where(keys.c.instance_id == instance_id, keys.c.id.in_(chosen))
        with self.store.engine.begin() as conn:
            conn.execute(insert(keys).from_select(columns, source))

    def sql_set_state(self) -> None:
        instance_id = self._instance()
        chosen = self._existing(instance_id, 4)
        with self.store.engine.begin() as conn:
            conn.execute(
                update(keys)
                .where(keys.c.instance_id == instance_id, keys.c.id.in_(chosen))
                .values(state=self._state())
            )

    def sql_move_instance(self) -> None:
        source, target = self.instances
        taken = {key_id for key_id, _ in ids_by_state(self.store, target)}
        chosen = [key_id for key_id in self._existing(source, 3) if key_id not in taken]
        with self.store.engine.begin() as conn:
            conn.execute(
                update(keys)
                .where(keys.c.instance_id == source, keys.c.id.in_(chosen))
                .values(instance_id=target)
            )

    def sql_change_id(self) -> None:
        instance_id = self._instance()
        chosen = self._existing(instance_id, 1)
        if not chosen:
            return
        new_id = self._new_ids(instance_id, 1)[0]  # may share the old id's bucket
        with self.store.engine.begin() as conn:
            conn.execute(
                update(keys)
                .where(keys.c.instance_id == instance_id, keys.c.id == chosen[0])
                .values(id=new_id)
            )

    def sql_delete(self) -> None:
        instance_id = self._instance()
        chosen = self._existing(instance_id, 4)
        with self.store.engine.begin() as conn:
            conn.execute(
                delete(keys).where(keys.c.instance_id == instance_id, keys.c.id.in_(chosen))
            )


@settings(
    max_examples=50,
    deadline=None,
    # the store outlives the examples on purpose: each example uses new instance ids
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kinds=WRITES, data=st.data())
def test_buckets_follow_every_write_and_pages_agree(
    sql_store: SqlStore, every_offset_bucketed: None, kinds: list[str], data: st.DataObject
) -> None:
    writer = Writer(sql_store, data)
    writer.seed()
    for kind in kinds:
        writer.apply(kind)
        assert stored_buckets(sql_store) == counted_buckets(sql_store), kind
    for instance_id in writer.instances:
        size = len(ids_by_state(sql_store, instance_id))
        event(f"keys in an instance: {'0' if not size else '1-9' if size < 10 else '10+'}")
        check_pages(sql_store, instance_id)


# ---------------------------------------------------------------- fixed cases


def test_pages_of_ids_longer_than_their_bucket(
    sql_store: SqlStore, every_offset_bucketed: None
) -> None:
    """Ids that sort after their bucket's prefix and still belong to it (``abc0`` ... ``abc~é``
    in bucket ``abc``), buckets shorter than a prefix (``ab``, ``b``), a state absent from a
    bucket, and a last bucket (``éé~``) with ids past its prefix: every page, both orders."""
    ids = ["ab", "ab0", "abc", "abc0", "abca", "abcé", "abc~", "abc~é", "abd", "b", "b~~~"]
    ids += ["é", "éé~", "éé~0", "éé~é"]
    with sql_store.uow() as uow:
        add_many(uow, [f.key(key_id, state=[1, 5, 2, 1, 0][n % 5]) for n, key_id in enumerate(ids)])
        add_many(uow, [f.key(key_id + "x", instance_id="other") for key_id in ids])
        uow.commit()
    check_pages(sql_store, f.INSTANCE, limits=(1, 2, 5))


def test_buckets_of_a_few_keys(sql_store: SqlStore) -> None:
    with sql_store.uow() as uow:
        add_many(
            uow,
            [
                f.key("abcd", state=1),
                f.key("abce", state=1),
                f.key("abc", state=2),
                f.key("x", state=1),
                f.key("abcd", instance_id="other", state=1),
            ],
        )
        uow.commit()
    assert stored_buckets(sql_store) == {
        (f.INSTANCE, 1, "abc"): 2,
        (f.INSTANCE, 2, "abc"): 1,
        (f.INSTANCE, 1, "x"): 1,
        ("other", 1, "abc"): 1,
    }
    with sql_store.uow() as uow:
        record = uow.keys.get(f.INSTANCE, "abc")
        assert record is not None
        uow.keys.update(dataclasses.replace(record, state=1), record.row_version)
        uow.keys.delete(f.INSTANCE, "x")
        uow.commit()
    # a bucket that reaches zero keys is removed
    assert stored_buckets(sql_store) == {(f.INSTANCE, 1, "abc"): 3, ("other", 1, "abc"): 1}


def test_statements_over_many_keys(sql_store: SqlStore) -> None:
    """One INSERT, UPDATE or DELETE of several keys of one bucket (PostgreSQL counts each
    statement's rows together)."""
    rows = [key_values(f.key(f"abc{n}", state=1)) for n in range(5)]
    with sql_store.engine.begin() as conn:
        conn.execute(insert(keys).values(rows))  # one multi-row statement
    assert stored_buckets(sql_store) == {(f.INSTANCE, 1, "abc"): 5}
    copies = select(
        *((keys.c.id + "x").label("id") if c.name == "id" else c for c in keys.columns)
    ).where(keys.c.id.in_(["abc0", "abc1", "abc2"]))
    with sql_store.engine.begin() as conn:
        conn.execute(insert(keys).from_select([c.name for c in keys.columns], copies))
        conn.execute(update(keys).where(keys.c.id.like("abc_")).values(state=2))
    assert stored_buckets(sql_store) == {(f.INSTANCE, 1, "abc"): 3, (f.INSTANCE, 2, "abc"): 5}
    with sql_store.engine.begin() as conn:
        conn.execute(delete(keys).where(keys.c.state == 2, keys.c.id != "abc4"))
    assert stored_buckets(sql_store) == {(f.INSTANCE, 1, "abc"): 3, (f.INSTANCE, 2, "abc"): 1}
    with sql_store.engine.begin() as conn:
        conn.execute(delete(keys))
    assert stored_buckets(sql_store) == {}


@pytest.mark.postgres
def test_truncating_keys_empties_the_buckets(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        with store.uow() as uow:
            add_many(uow, [f.key(f"k{n}", state=n % 3) for n in range(9)])
            uow.commit()
        assert stored_buckets(store)
        with store.engine.begin() as conn:
            conn.execute(text("TRUNCATE keys"))
        assert stored_buckets(store) == {}


def test_concurrent_writers_sharing_buckets_all_commit(sql_store: SqlStore) -> None:
    """Batches whose keys fall in the same few buckets, each batch in a random order, and state
    changes among them, from several threads: nothing deadlocks (add_many sorts its rows; a
    state change upserts its two rows in one ordered statement) and the counts stay exact."""
    prefixes = ["aaa", "bbb", "ccc", "ddd"]
    threads, rounds = 4, 15
    made: list[str] = []
    lock = threading.Lock()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(rounds):
            with lock:
                flip = made and rng.random() < 0.3
                key_id = rng.choice(made) if flip else ""
            if flip:  # one key's state, in a transaction of its own (as the service does)
                with sql_store.uow() as uow:
                    record = uow.keys.get(f.INSTANCE, key_id)
                    assert record is not None
                    flipped = dataclasses.replace(record, state=3 - record.state)
                    try:
                        uow.keys.update(flipped, record.row_version)
                    except VersionConflict:
                        continue
                    uow.commit()
                continue
            new = [
                f.key(f"{rng.choice(prefixes)}{uuid.uuid4()}", state=rng.choice([1, 2]))
                for _ in range(8)
            ]
            rng.shuffle(new)
            with sql_store.uow() as uow:
                add_many(uow, new)
                uow.commit()
            with lock:
                made.extend(k.id for k in new)

    with ThreadPoolExecutor(threads) as pool:
        for fut in [pool.submit(write, seed) for seed in range(threads)]:
            fut.result(timeout=120)
    assert stored_buckets(sql_store) == counted_buckets(sql_store)
    assert sum(stored_buckets(sql_store).values()) == len(made)


def test_only_plain_id_ordered_lists_are_bucketed() -> None:
    def bucketed(**overrides: Any) -> bool:
        return sql_key_query.bucketed(check_query(f.query(**overrides)))

    assert bucketed()
    assert bucketed(states=frozenset({5}))
    assert bucketed(states=ALL, sort=(("id", False),))
    assert bucketed(states=ALL, sort=(("id", True),))
    assert not bucketed(states=frozenset())
    assert not bucketed(sort=(("state", False),))
    assert not bucketed(sort=(("id", True), ("state", False)))
    assert not bucketed(search=KeySearch("x"))
    assert not bucketed(key_ring_id="default")
    assert not bucketed(extractable=False)
    assert not bucketed(filters=(KeyFilter("deleted_at", "eq", None),))


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, False),
        (sql_key_query.BUCKET_THRESHOLD - 1, False),
        (sql_key_query.BUCKET_THRESHOLD, True),
    ],
)
def test_buckets_are_read_only_for_deep_pages(offset: int, expected: bool) -> None:
    def sql(dialect: str, **overrides: Any) -> str:
        query = check_query(f.query(offset=offset, **overrides))
        return str(sql_key_query.select_page(query, dialect))

    for dialect in ("postgresql", "sqlite"):
        assert ("key_buckets" in sql(dialect)) == expected
        assert ("key_buckets" in sql(dialect, sort=(("id", True),))) == expected
        assert "key_buckets" not in sql(dialect, sort=(("created_at", True),))
    assert "key_buckets" not in sql("mysql")  # a dialect not known to keep them
    assert "key_buckets" not in sql("mysql", sort=(("id", True),))


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_counts_read_buckets_unless_the_cap_is_small(dialect: str) -> None:
    def sql(cap: int | None, **overrides: Any) -> str:
        query = check_query(f.query(**overrides))
        return str(sql_key_query.select_count(query, cap, dialect))

    threshold = sql_key_query.BUCKET_THRESHOLD
    assert "key_buckets" in sql(None)
    assert "key_buckets" in sql(threshold)
    assert "key_buckets" not in sql(threshold - 1)
    assert "key_buckets" not in sql(None, key_ring_id="default")
    # a total does not depend on the order
    assert "key_buckets" in sql(None, sort=(("id", True),))
    assert "key_buckets" in sql(threshold, sort=(("id", True),))


@pytest.mark.parametrize(
    ("sort", "bound"), [((("id", False),), "AND id>?"), ((("id", True),), "AND id<?")]
)
def test_sqlite_deep_page_starts_each_states_index_scan_at_its_bucket(
    sql_store: SqlStore, sort: tuple[tuple[str, bool], ...], bound: str
) -> None:
    """Ascending from the start bucket's prefix up, descending from its end down."""
    if sql_store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite plans only")
    query = f.query(limit=20, offset=sql_key_query.BUCKET_THRESHOLD, sort=sort)  # states 0-3
    stmt = sql_key_query.select_page(check_query(query), "sqlite")
    with sql_store.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert any(line.startswith("SEARCH key_buckets") for line in plan), plan
    # one index range per state, from the start bucket on: no walk over the ids before it
    ranges = [line for line in plan if "ix_keys_instance_id_state_id" in line]
    assert len(ranges) == 4, plan
    assert all(bound in line for line in ranges), plan
    assert not any(line.startswith("SCAN keys") for line in plan), plan


# ---------------------------------------------------------------- PostgreSQL plans


@pytest.fixture
def deep(sql_store: SqlStore) -> Iterator[SqlStore]:
    """3,000 keys with UUID ids in four states, analyzed (PostgreSQL)."""
    if sql_store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL plans only")
    rng = random.Random(7)
    with sql_store.uow() as uow:
        add_many(
            uow,
            [
                f.key(str(uuid.UUID(int=rng.getrandbits(128), version=4)), state=n % 4)
                for n in range(3000)
            ],
        )
        uow.commit()
    with sql_store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    yield sql_store


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
# 0: in the first bucket (descending: in the last one, which has no next bucket to end at)
@pytest.mark.parametrize("offset", [2000, 0])
def test_postgresql_deep_page_starts_at_its_bucket(
    deep: SqlStore, every_offset_bucketed: None, descending: bool, offset: int
) -> None:
    sort = (("id", descending),)
    query = f.query(limit=20, offset=offset, sort=sort)  # states 0-3: 3,000 matches
    stmt = sql_key_query.select_page(check_query(query), "postgresql")
    with deep.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
        )
    assert "key_buckets" in plan, plan
    assert "Merge Append" in plan, plan
    # each state's scan reads less than a bucket and the page, not the 1,500 ids before it
    scans = [line for line in plan.splitlines() if "ix_keys_instance_id_state_id" in line]
    assert len(scans) == 4, plan
    for line in scans:
        assert ("Index Only Scan Backward" in line) == descending, plan
        rows = int(line.split("rows=")[1].split()[0])
        assert rows < 120, plan
    with deep.uow(read_only=True) as uow:
        everything = [key_id for key_id, _ in ids_by_state(deep, f.INSTANCE)]  # plain SQL
        if descending:
            everything.reverse()
        assert [k.id for k in uow.keys.find(query)] == everything[offset : offset + 20]
        assert uow.keys.count(f.query(sort=sort)) == 3000


# ---------------------------------------------------------------- the migration


def test_upgrade_fills_the_buckets_and_downgrade_removes_them(store_url: str) -> None:
    store = open_store(store_url, migrate=False)
    try:
        upgrade(store.engine, "0005")
        old = [
            f.key(f"{prefix}{n}", instance_id=instance, state=state)
            for n, (prefix, instance, state) in enumerate(
                itertools.product(["ab", "abc", "b~", "é"], ["i1", "i2"], [0, 1, 5])
            )
        ]
        with store.engine.begin() as conn:
            conn.execute(insert(keys), [key_values(r) for r in old])
        store.migrate()
        assert stored_buckets(store) == counted_buckets(store) != {}
        assert _triggers(store) >= KEY_BUCKET_TRIGGERS
        with store.uow() as uow:  # and the triggers count from there on
            uow.keys.add(f.key("abz", instance_id="i1", state=1))
            uow.commit()
        assert stored_buckets(store) == counted_buckets(store)

        with store.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
        assert "key_buckets" not in inspect(store.engine).get_table_names()
        assert not _triggers(store)
        assert not _functions(store)
        with store.uow() as uow:  # keys are written as before 0006
            uow.keys.add(f.key("after-downgrade"))
            uow.commit()
        store.migrate()
        assert stored_buckets(store) == counted_buckets(store)
    finally:
        store.close()


def _triggers(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                    " AND tgrelid = 'keys'::regclass"
                )
            )
        else:
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return {row[0] for row in rows}


def _functions(store: SqlStore) -> set[str]:
    if store.engine.dialect.name != "postgresql":
        return set()
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema() AND p.proname LIKE 'kyok_key_buckets%'"
            )
        )
        return {row[0] for row in rows}


def test_bucket_counts_sum_to_the_key_count(sql_store: SqlStore) -> None:
    with sql_store.uow() as uow:
        add_many(uow, [f.key(f"{n:03x}", state=n % 5) for n in range(50)])
        uow.commit()
    with sql_store.engine.connect() as conn:
        total = conn.execute(select(func.sum(key_buckets.c.n))).scalar_one()
    assert total == 50
