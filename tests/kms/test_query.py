"""The Key Protect list-keys query language: search, sort, filter, state, extractable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kyok.kms.errors import InvalidQueryParam
from kyok.kms.query import (
    check_key_query,
    parse_extractable,
    parse_filter,
    parse_key_query,
    parse_search,
    parse_sort,
    parse_states,
)
from kyok.store.records import KeyFilter, KeyQuery, KeySearch


def _bad(fn: Any, *args: Any, target: str, **kwargs: Any) -> None:
    with pytest.raises(InvalidQueryParam) as info:
        fn(*args, **kwargs)
    assert info.value.target == target
    assert info.value.status == 400
    assert info.value.code == "INVALID_QUERY_PARAM_ERR"


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo", KeySearch("foo")),
        ("Foo Bar", KeySearch("Foo Bar")),
        ("not:foo", KeySearch("foo", negate=True)),
        ("exact:foo", KeySearch("foo", exact=True)),
        ("alias:foo", KeySearch("foo", names=False, aliases=True)),
        ("name:foo", KeySearch("foo", names=True, aliases=False)),
        ("alias:name:foo", KeySearch("foo")),
        ("not:exact:alias:foo", KeySearch("foo", names=False, exact=True, negate=True)),
        ("exact:not:foo", KeySearch("foo", exact=True, negate=True)),  # any order
        ("escape:not:foo", KeySearch("not:foo")),
        ("not:escape:exact:x", KeySearch("exact:x", negate=True)),
        ("foo:bar", KeySearch("foo:bar")),  # not a prefix: literal
        ("foo,", KeySearch("foo")),  # the Go client appends a comma
        ("exact:foo,", KeySearch("foo", exact=True)),
        ("a,b", KeySearch("a,b")),
    ],
)
def test_search(text: str, expected: KeySearch) -> None:
    assert parse_search(text) == expected


def test_search_absent_and_bad() -> None:
    assert parse_search(None) is None
    assert parse_search("") is None
    assert parse_search("   ") is None
    _bad(parse_search, "not:", target="search")
    _bad(parse_search, "escape:", target="search")
    _bad(parse_search, "alias:exact:,", target="search")
    _bad(parse_search, "x" * 257, target="search")


# ----------------------------------------------------------------------------- sort


def test_sort() -> None:
    assert parse_sort(None) == (("id", False),)
    assert parse_sort("id") == (("id", False),)
    assert parse_sort("-id") == (("id", True),)
    assert parse_sort("-creationDate,state") == (
        ("created_at", True),
        ("state", False),
        ("id", False),
    )
    assert parse_sort(
        "lastUpdateDate,-lastRotateDate,deletionDate,expirationDate,imported,extractable"
    ) == (
        ("updated_at", False),
        ("last_rotated_at", True),
        ("deleted_at", False),
        ("expires_at", False),
        ("imported", False),
        ("extractable", False),
        ("id", False),
    )


@pytest.mark.parametrize(
    "text", ["name", "id,", ",id", "id,id", "state,-state", "--id", "creation_date", "-"]
)
def test_sort_bad(text: str) -> None:
    _bad(parse_sort, text, target="sort")


# ----------------------------------------------------------------------------- state, extractable


def test_states() -> None:
    assert parse_states(None) is None
    assert parse_states("1") == {1}
    assert parse_states("0,1,2,3,5") == {0, 1, 2, 3, 5}
    assert parse_states("1, 5") == {1, 5}
    for bad in ("4", "6", "1,,2", "-1", "one", "1;2", "99999999999"):
        _bad(parse_states, bad, target="state")


def test_extractable() -> None:
    assert parse_extractable(None) is None
    assert parse_extractable("true") is True
    assert parse_extractable("False") is False
    for bad in ("yes", "1", "t"):
        _bad(parse_extractable, bad, target="extractable")


# ----------------------------------------------------------------------------- filter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_filter_terms() -> None:
    filters, states, extractable = parse_filter(
        ' creationDate=gt:"2026-01-01T00:00:00Z" expirationDate=none state=1,2 extractable=false'
    )
    assert filters == (KeyFilter("created_at", "gt", T0), KeyFilter("expires_at", "eq", None))
    assert states == {1, 2}
    assert extractable is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('lastRotateDate="2026-01-01T00:00:00Z"', KeyFilter("last_rotated_at", "eq", T0)),
        ("deletionDate=lte:2026-01-01T00:00:00Z", KeyFilter("deleted_at", "lte", T0)),
        ('lastUpdateDate=gte:"2026-01-01T01:00:00+01:00"', KeyFilter("updated_at", "gte", T0)),
        ('creationDate=lt:"2025-12-31T19:00:00-05:00"', KeyFilter("created_at", "lt", T0)),
        (  # Go's RFC3339Nano: nine fraction digits, kept to microseconds
            'creationDate=gt:"2026-01-01T00:00:00.123456789Z"',
            KeyFilter("created_at", "gt", T0 + timedelta(microseconds=123456)),
        ),
        ('creationDate="2026-01-01t00:00:00z"', KeyFilter("created_at", "eq", T0)),
    ],
)
def test_filter_dates(text: str, expected: KeyFilter) -> None:
    filters, _, _ = parse_filter(text)
    assert filters == (expected,)
    assert filters[0].value is None or filters[0].value.tzinfo is not None


def test_filter_range_on_one_field() -> None:
    filters, _, _ = parse_filter(
        'creationDate=gte:"2026-01-01T00:00:00Z"  creationDate=lt:"2026-02-01T00:00:00Z"'
    )
    assert [f.op for f in filters] == ["gte", "lt"]


@pytest.mark.parametrize(
    "text",
    [
        "name=foo",  # not a filter property
        "creationDate",  # no value
        "creationDate=",  # empty value
        'creationDate=eq:"2026-01-01T00:00:00Z"',  # eq is not an operator here
        'creationDate=between:"2026-01-01T00:00:00Z"',
        'creationDate="2026-01-01"',  # date only
        'creationDate="2026-01-01T00:00:00"',  # no zone
        'creationDate="2026-13-01T00:00:00Z"',  # no such month
        'creationDate="2026-01-01T00:00:61Z"',
        'creationDate="2026-01-01T00:00:00+25:00"',
        "creationDate=gt:none",
        'creationDate="none"x',
        'creationDate="2026-01-01T00:00:00Z',  # unterminated quote
        "state=1 state=2",
        "state=gt:1",
        "state=4",
        "extractable=maybe",
        "extractable=true extractable=false",
        "state=1,extractable=true",
        "garbage",
    ],
)
def test_filter_bad(text: str) -> None:
    _bad(parse_filter, text, target="filter")


# ----------------------------------------------------------------------------- whole query


def test_parse_key_query_defaults() -> None:
    q = parse_key_query("inst")
    assert q == KeyQuery(instance_id="inst", limit=200, offset=0, sort=(("id", False),))
    assert q.states is None  # the store then hides destroyed keys


def test_parse_key_query_all_parts() -> None:
    q = parse_key_query(
        "inst",
        limit="10",
        offset=5,
        state="1,5",
        extractable="false",
        search="alias:prod",
        sort="-state",
        filter='creationDate=gt:"2026-01-01T00:00:00Z"',
        key_ring_id="ring-a",
    )
    assert q.limit == 10 and q.offset == 5
    assert q.states == {1, 5} and q.extractable is False
    assert q.search == KeySearch("prod", names=False)
    assert q.sort == (("state", True), ("id", False))
    assert q.filters == (KeyFilter("created_at", "gt", T0),)
    assert q.key_ring_id == "ring-a"


def test_state_and_extractable_from_filter() -> None:
    q = parse_key_query("inst", filter="state=5 extractable=true")
    assert q.states == {5} and q.extractable is True


def test_state_or_extractable_twice_is_refused() -> None:
    _bad(parse_key_query, "inst", state="1", filter="state=1", target="filter")
    _bad(parse_key_query, "inst", extractable="true", filter="extractable=false", target="filter")


@pytest.mark.parametrize(
    ("kwargs", "target"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "5001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": True}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": 2**31}, "offset"),
    ],
)
def test_paging_bad(kwargs: dict[str, Any], target: str) -> None:
    _bad(parse_key_query, "inst", target=target, **kwargs)


def test_check_key_query() -> None:
    ok = KeyQuery("inst", filters=(KeyFilter("expires_at", "eq", None),))
    assert check_key_query(ok) is ok
    _bad(check_key_query, KeyQuery("inst", sort=(("name", False),)), target="sort")
    _bad(check_key_query, KeyQuery("inst", filters=(KeyFilter("name", "eq", 1),)), target="filter")
    _bad(
        check_key_query,
        KeyQuery("inst", filters=(KeyFilter("expires_at", "gt", None),)),
        target="filter",
    )
    naive = datetime(2026, 1, 1)
    _bad(
        check_key_query,
        KeyQuery("inst", filters=(KeyFilter("created_at", "gt", naive),)),
        target="filter",
    )
    _bad(check_key_query, KeyQuery("inst", states=frozenset({4})), target="state")
    _bad(check_key_query, KeyQuery("inst", limit=0), target="limit")
    _bad(check_key_query, KeyQuery("inst", offset=-1), target="offset")


# ----------------------------------------------------------------------------- fuzzing

_grammar_bits = st.sampled_from(
    [
        "not:",
        "exact:",
        "escape:",
        "alias:",
        "name:",
        ",",
        " ",
        '"',
        "=",
        ":",
        "-",
        "none",
        "state=",
        "extractable=",
        "creationDate=",
        "gt:",
        "lte:",
        "1",
        "5",
        "true",
        "2026-01-01T00:00:00Z",
        "T",
        "Z",
        "+01:00",
        ".999999999",
        "id",
        "-id",
    ]
)
_fuzz = st.one_of(st.text(), st.lists(st.one_of(_grammar_bits, st.text(max_size=3))).map("".join))


@given(
    search=_fuzz,
    sort=_fuzz,
    filter_=_fuzz,
    state=_fuzz,
    extractable=_fuzz,
    limit=_fuzz,
    offset=_fuzz,
)
@example(
    search="not:",
    sort="",
    filter_='creationDate="9999-12-31T23:59:59-23:59"',
    state="",
    extractable="",
    limit="",
    offset="",
)
@example(
    search="",
    sort="",
    filter_='creationDate="0001-01-01T00:00:00+23:59"',
    state="",
    extractable="",
    limit="",
    offset="",
)
def test_arbitrary_strings_raise_only_invalid_query_param(
    search: str, sort: str, filter_: str, state: str, extractable: str, limit: str, offset: str
) -> None:
    for call in (
        lambda: parse_search(search),
        lambda: parse_sort(sort),
        lambda: parse_filter(filter_),
        lambda: parse_states(state),
        lambda: parse_extractable(extractable),
        lambda: parse_key_query(
            "inst",
            search=search,
            sort=sort,
            filter=filter_,
            state=state,
            extractable=extractable,
            limit=limit or None,
            offset=offset or None,
        ),
    ):
        try:
            result = call()
        except InvalidQueryParam:
            continue
        if isinstance(result, KeyQuery):
            check_key_query(result)  # whatever parses is a query every store accepts


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_dates_round_trip(when: datetime) -> None:
    text = when.isoformat()
    filters, _, _ = parse_filter(f'expirationDate=gt:"{text}"')
    assert filters[0].value == when
