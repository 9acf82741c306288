"""Property tests: SQL backends answer every key query exactly like a reference.

Search text may hold any character (``%``, ``_``, ``\\``, quotes, emoji, RTL marks, ...): it
never errors and always matches literally. SQLite is checked on the full Unicode range;
PostgreSQL on Latin text, where its ``lower()`` and Python's ``str.lower`` agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyok.store.memory import MemoryStore
from kyok.store.records import KeyFilter, KeyQuery, KeySearch
from kyok.store.sql import open_store, sqlite_url

from . import factories as f
from .factories import AnyStore

# Every character a name can hold in both databases: no NUL (C strings) and no surrogates.
ANY_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
# Latin text with wildcards and escapes; U+0130 lowers differently in libc and Python.
LATIN_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0x17F, exclude_characters="\u0130")
# Characters that matter to LIKE and to case folding, drawn often so that values collide.
FEW = st.sampled_from(["%", "_", "\\", "'", "a", "A", "b", "ß", "Ä", "ä"])

_instances = itertools.count()
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    # the store outlives the examples on purpose: each example uses a new instance id
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def reference_search(search: KeySearch, name: str, aliases: list[str]) -> bool:
    """What a KeySearch means, written independently of the store code."""
    needle = search.text.lower()

    def hit(value: str) -> bool:
        return value.lower() == needle if search.exact else needle in value.lower()

    found = (search.names and hit(name)) or (search.aliases and any(map(hit, aliases)))
    return found != search.negate


@st.composite
def corpus_and_searches(
    draw: st.DrawFn, chars: st.SearchStrategy[str]
) -> tuple[list[tuple[str, list[str]]], list[KeySearch]]:
    text = st.text(st.one_of(chars, FEW), max_size=8)
    names = draw(st.lists(text, min_size=1, max_size=6))
    alias_pool = draw(st.lists(text.filter(bool), unique=True, max_size=6))
    corpus = [(name, alias_pool[i :: len(names)]) for i, name in enumerate(names)]
    every_value = [v for name, aliases in corpus for v in (name, *aliases)]

    @st.composite
    def needle(draw2: st.DrawFn) -> str:
        """Random text, or a piece of a stored value: as is, upper-cased, or with a LIKE
        wildcard put in (which must then match only literally)."""
        kind = draw2(st.integers(0, 4))
        if kind == 0 or not every_value:
            return draw2(text)
        value = draw2(st.sampled_from(every_value))
        start = draw2(st.integers(0, len(value)))
        end = draw2(st.integers(start, len(value)))
        piece = value[start:end]
        if kind == 2:
            return piece.upper()
        if kind >= 3:
            at = draw2(st.integers(0, len(piece)))
            wildcard = draw2(st.sampled_from(["%", "_", "\\"]))
            return piece[:at] + wildcard + piece[at + (kind == 4) :]
        return piece

    searches = draw(
        st.lists(
            st.builds(
                KeySearch,
                text=needle(),
                names=st.booleans(),
                aliases=st.booleans(),
                exact=st.booleans(),
                negate=st.booleans(),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return corpus, searches


def _check_searches(
    stores: list[AnyStore], corpus: list[tuple[str, list[str]]], searches: list[KeySearch]
) -> None:
    instance_id = f"prop-{next(_instances)}"
    for store in stores:
        with store.uow() as uow:
            for i, (name, aliases) in enumerate(corpus):
                uow.keys.add(f.key(f"k{i:02d}", instance_id=instance_id, name=name))
                for alias in aliases:
                    uow.aliases.add(f.alias(alias, f"k{i:02d}", instance_id=instance_id))
            uow.commit()
    for search in searches:
        expected = [
            f"k{i:02d}"
            for i, (name, aliases) in enumerate(corpus)
            if reference_search(search, name, aliases)
        ]
        query = KeyQuery(instance_id=instance_id, search=search)
        for store in stores:
            with store.uow(read_only=True) as uow:
                assert [k.id for k in uow.keys.find(query)] == expected, (store, search)
                assert uow.keys.count(query) == len(expected)


@pytest.fixture
def memory_and_sqlite(tmp_path: Path) -> Iterator[list[AnyStore]]:
    with open_store(sqlite_url(tmp_path)) as sqlite:
        yield [MemoryStore(), sqlite]


@PROPERTY_SETTINGS
@given(case=corpus_and_searches(ANY_TEXT))
def test_search_any_text_memory_and_sqlite(
    memory_and_sqlite: list[AnyStore],
    case: tuple[list[tuple[str, list[str]]], list[KeySearch]],
) -> None:
    _check_searches(memory_and_sqlite, *case)


@pytest.mark.postgres
@PROPERTY_SETTINGS
@given(case=corpus_and_searches(LATIN_TEXT))
def test_search_latin_text_postgresql(
    postgres_store: AnyStore,
    case: tuple[list[tuple[str, list[str]]], list[KeySearch]],
) -> None:
    _check_searches([postgres_store], *case)


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[AnyStore]:
    with open_store(postgres_url) as store:
        yield store


# ------------------------------------------------------------------ whole queries

STATES = st.sampled_from([0, 1, 2, 3, 5])
TIME = st.integers(0, 5).map(lambda h: f.T0 + timedelta(hours=h))
MAYBE_TIME = st.one_of(st.none(), TIME)
KEY_FIELDS = st.fixed_dictionaries(
    {
        "state": STATES,
        "extractable": st.booleans(),
        "imported": st.booleans(),
        "key_ring_id": st.sampled_from(["default", "r1"]),
        "created_at": TIME,
        "expires_at": MAYBE_TIME,
        "last_rotated_at": MAYBE_TIME,
        "deleted_at": MAYBE_TIME,
    }
)
FILTERS = st.one_of(
    st.builds(
        KeyFilter,
        field=st.sampled_from(["created_at", "expires_at", "last_rotated_at", "deleted_at"]),
        op=st.sampled_from(["eq", "lt", "lte", "gt", "gte"]),
        value=TIME,
    ),
    st.builds(
        KeyFilter,
        field=st.sampled_from(["expires_at", "last_rotated_at", "deleted_at"]),
        op=st.just("eq"),
        value=st.none(),
    ),
    st.builds(
        KeyFilter, field=st.just("state"), op=st.sampled_from(["eq", "lt", "gte"]), value=STATES
    ),
    st.builds(KeyFilter, field=st.just("extractable"), op=st.just("eq"), value=st.booleans()),
)
SORT = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "id",
                "state",
                "extractable",
                "imported",
                "created_at",
                "expires_at",
                "last_rotated_at",
                "deleted_at",
                "updated_at",
            ]
        ),
        st.booleans(),
    ),
    max_size=3,
).map(tuple)


@PROPERTY_SETTINGS
@given(
    keys=st.lists(KEY_FIELDS, min_size=0, max_size=12),
    states=st.one_of(st.none(), st.frozensets(STATES)),
    extractable=st.one_of(st.none(), st.booleans()),
    ring=st.one_of(st.none(), st.just("r1")),
    filters=st.lists(FILTERS, max_size=2).map(tuple),
    sort=SORT,
    limit=st.integers(0, 14),
    offset=st.integers(0, 14),
)
def test_whole_queries_agree_between_memory_and_sqlite(
    memory_and_sqlite: list[AnyStore],
    keys: list[dict[str, object]],
    states: frozenset[int] | None,
    extractable: bool | None,
    ring: str | None,
    filters: tuple[KeyFilter, ...],
    sort: tuple[tuple[str, bool], ...],
    limit: int,
    offset: int,
) -> None:
    instance_id = f"prop-{next(_instances)}"
    for store in memory_and_sqlite:
        with store.uow() as uow:
            for i, fields in enumerate(keys):
                uow.keys.add(f.key(f"k{i:02d}", instance_id=instance_id, **fields))
            uow.commit()
    query = KeyQuery(
        instance_id=instance_id,
        states=states,
        extractable=extractable,
        key_ring_id=ring,
        filters=filters,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    answers = []
    for store in memory_and_sqlite:
        with store.uow(read_only=True) as uow:
            answers.append(([k.id for k in uow.keys.find(query)], uow.keys.count(query)))
    assert answers[0] == answers[1]
    found, total = answers[0]
    assert len(found) == max(0, min(limit, total - offset))
