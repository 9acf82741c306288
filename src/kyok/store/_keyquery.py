"""What every backend agrees on about a :class:`~kyok.store.records.KeyQuery`.

Validation (field names, operators, paging), the effective states and sort order, how text is
folded for case-insensitive search, and how LIKE patterns are escaped. The memory and the SQL
backends both use these, so they accept and reject the same queries and order results the same
way. Search folds case with Python's ``str.lower`` on both sides (PostgreSQL: ``lower()``,
which agrees under a UTF-8 locale) and matches literally: ``%``, ``_`` and ``\\`` are plain
characters. Ordering rules: ``None`` sorts after every value (so a descending sort is the
exact reverse of an ascending one), strings sort by code point, and ``id`` is always the last
tiebreak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kyok.store._times import aware_utc
from kyok.store.records import (
    FILTER_OPS,
    KEY_FILTER_FIELDS,
    KEY_SORT_FIELDS,
    KeyFilter,
    KeyQuery,
)

#: States listed when a query names none: everything but destroyed (5).
DEFAULT_STATES: frozenset[int] = frozenset({0, 1, 2, 3})

#: Escape character used in LIKE patterns built from user text.
LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class CheckedQuery:
    """A validated query with its defaults resolved."""

    query: KeyQuery
    states: frozenset[int]
    filters: tuple[KeyFilter, ...]
    sort: tuple[tuple[str, bool], ...]


def check_query(query: KeyQuery) -> CheckedQuery:
    """Validate ``query`` and resolve its defaults.

    Raises:
        ValueError: an unknown filter or sort field, an unknown operator, ``None`` with an
            operator other than ``eq``, a naive datetime, or a negative limit or offset.
    """
    check_page(query.limit, query.offset)
    filters = tuple(check_filter(f) for f in query.filters)
    sort: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for name, descending in query.sort:
        if name not in KEY_SORT_FIELDS:
            raise ValueError(f"cannot sort keys by {name!r}")
        if name not in seen:
            seen.add(name)
            sort.append((name, bool(descending)))
    if "id" not in seen:
        sort.append(("id", False))
    states = DEFAULT_STATES if query.states is None else frozenset(query.states)
    return CheckedQuery(query=query, states=states, filters=filters, sort=tuple(sort))


def check_page(limit: int, offset: int) -> None:
    """Raise ``ValueError`` if ``limit`` or ``offset`` is negative."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


def check_cap(cap: int | None) -> None:
    """Raise ``ValueError`` if a count's ``cap`` is given and negative."""
    if cap is not None and cap < 0:
        raise ValueError("a count's cap must not be negative")


def check_filter(key_filter: KeyFilter) -> KeyFilter:
    """Validate one filter; datetimes come back in UTC.

    Raises:
        ValueError: see :func:`check_query`.
    """
    if key_filter.field not in KEY_FILTER_FIELDS:
        raise ValueError(f"cannot filter keys by {key_filter.field!r}")
    if key_filter.op not in FILTER_OPS:
        raise ValueError(f"unknown filter operator {key_filter.op!r}")
    value = key_filter.value
    if value is None:
        if key_filter.op != "eq":
            raise ValueError("only 'eq' can test for an unset field")
        return key_filter
    if isinstance(value, datetime):
        return KeyFilter(key_filter.field, key_filter.op, aware_utc(value, key_filter.field))
    return key_filter


def fold(text: str) -> str:
    """Case-fold ``text`` for case-insensitive search (the SQLite backend registers this)."""
    return text.lower()


def escape_like(text: str, escape: str = LIKE_ESCAPE) -> str:
    """Escape ``%``, ``_`` and the escape character itself so ``text`` matches literally."""
    return (
        text.replace(escape, escape + escape).replace("%", escape + "%").replace("_", escape + "_")
    )
