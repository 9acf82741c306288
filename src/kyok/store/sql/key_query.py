"""A :class:`~kyok.store.records.KeyQuery` as SQL: WHERE and ORDER BY over ``keys``, and the
statements for a page and for a count.

Semantics are those of ``kyok.store._keyquery`` and the memory store: search folds case on
both sides (``fold``) and escapes LIKE wildcards in the user's text, so ``%``, ``_`` and ``\\``
match only themselves; ``None`` sorts after every value; ``id`` breaks ties.

How a page is read on PostgreSQL (:func:`select_page`), for a million keys in one instance:

- First the page's ids, alone, then the full rows of just those ids (a join on the primary
  key). Whatever the page's ids cost to find (a walk over ``offset`` index entries, a sort of
  every match), it is paid on the narrow ids, never on whole rows.
- An id-ordered list of several states and no search reads its ids as one
  id-ordered stream per state from the ``(instance_id, state, id)`` index, merged (a Merge
  Append of index-only scans; see :func:`_merged_ids`). ``state IN (...) ORDER BY id`` alone
  cannot use that index for its order, so PostgreSQL would otherwise walk the primary key and
  read every row's heap tuple for its state: at ``offset=900000`` that is 900,000 random heap
  reads (seconds) instead of 900,000 index entries (~0.15 s: still linear in the offset).

Other backends read a page with one plain statement. On every backend a count that only needs
to know whether it passes a bound stops there (``cap``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.selectable import Subquery

from kyok.store._keyquery import LIKE_ESCAPE, CheckedQuery, check_cap, escape_like
from kyok.store.records import KeyFilter, KeySearch
from kyok.store.sql.functions import fold
from kyok.store.sql.tables import aliases, keys


def where(checked: CheckedQuery, *, state: int | None = None) -> ColumnElement[bool]:
    """The WHERE clause selecting the keys ``checked`` matches (paging and sort aside).

    Args:
        checked: the query.
        state: only the matches in this one state (one of ``checked.states``).
    """
    query = checked.query
    conditions: list[ColumnElement[bool]] = [
        keys.c.instance_id == query.instance_id,
        keys.c.state.in_(sorted(checked.states)) if state is None else keys.c.state == state,
    ]
    if query.extractable is not None:
        conditions.append(keys.c.extractable == query.extractable)
    if query.key_ring_id is not None:
        conditions.append(keys.c.key_ring_id == query.key_ring_id)
    conditions.extend(_filter(f) for f in checked.filters)
    if query.search is not None:
        conditions.append(_search(query.search, query.instance_id))
    return and_(*conditions)


def order_by(checked: CheckedQuery) -> list[UnaryExpression[Any]]:
    """ORDER BY terms; nullable columns put NULL last ascending, first descending."""
    terms: list[UnaryExpression[Any]] = []
    for field, descending in checked.sort:
        column = keys.c[field]
        if descending:
            term = column.desc()
            terms.append(term.nulls_first() if column.nullable else term)
        else:
            term = column.asc()
            terms.append(term.nulls_last() if column.nullable else term)
    return terms


def select_page(checked: CheckedQuery, dialect: str) -> Select[Any]:
    """The full rows of one page of ``checked``, in its order.

    Args:
        checked: the query, with its limit and offset.
        dialect: the SQLAlchemy dialect name: ``postgresql`` reads ids first (and merges
            per-state scans where it can), any other reads the page in one plain statement.

    Returns:
        ``SELECT keys.* ...``: the same rows in the same order as
        ``SELECT * FROM keys WHERE ... ORDER BY ... LIMIT ... OFFSET ...``.
    """
    query = checked.query
    if dialect != "postgresql":
        # SQLite: the plain statement already walks an index in the page's order, with no
        # sort (tests/store/test_sqlite_engine.py pins that plan); ids first would add one.
        return (
            select(keys)
            .where(where(checked))
            .order_by(*order_by(checked))
            .limit(query.limit)
            .offset(query.offset)
        )
    if _mergeable(checked):
        ids = _merged_ids(checked)
    else:
        ids = (
            select(keys.c.id)
            .where(where(checked))
            .order_by(*order_by(checked))
            .limit(query.limit)
            .offset(query.offset)
            .subquery("page")
        )
    return (
        select(keys)
        .join(ids, and_(keys.c.instance_id == query.instance_id, keys.c.id == ids.c.id))
        .order_by(*order_by(checked))
    )


def select_count(checked: CheckedQuery, cap: int | None = None) -> Select[Any]:
    """How many keys ``checked`` matches (limit, offset and sort ignored).

    Args:
        checked: the query.
        cap: stop counting at this many (the answer is then ``min(matches, cap)``): enough to
            tell whether a count passes ``cap - 1``, without counting a million keys.
    """
    check_cap(cap)
    if cap is None:
        return select(func.count()).select_from(keys).where(where(checked))
    matches = select(literal(1).label("one")).where(where(checked)).limit(cap).subquery()
    return select(func.count()).select_from(matches)


def _mergeable(checked: CheckedQuery) -> bool:
    """Whether the page's ids can come from per-state id-ordered index scans: ordered by id
    alone, over more than one state, without a search (each state's scan would repeat it)."""
    return (
        checked.sort == (("id", False),)
        and len(checked.states) > 1
        and checked.query.search is None
    )


def _merged_ids(checked: CheckedQuery) -> Subquery:
    """The page's ids as a merge of one id-ordered scan per state (PostgreSQL).

    Each state's branch is its own subquery with ORDER BY id (and a LIMIT of offset + limit:
    no state contributes more): PostgreSQL then reads each from the ``(instance_id, state,
    id)`` index, index-only, and merges them (Merge Append). Without the inner ORDER BY it
    flattens the UNION ALL and, on the ``C``-collated id, sorts everything instead.
    """
    query = checked.query
    branches = [
        select(keys.c.id)
        .where(where(checked, state=state))
        .order_by(keys.c.id)
        .limit(query.offset + query.limit)
        .subquery(f"state_{state}")
        for state in sorted(checked.states)
    ]
    merged = union_all(*(select(b.c.id) for b in branches)).subquery("merged")
    return (
        select(merged.c.id)
        .order_by(merged.c.id)
        .limit(query.limit)
        .offset(query.offset)
        .subquery("page")
    )


def _filter(key_filter: KeyFilter) -> ColumnElement[bool]:
    column = keys.c[key_filter.field]
    value = key_filter.value
    if value is None:
        return column.is_(None)
    op = key_filter.op
    if op == "eq":
        return column == value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    raise ValueError(f"unknown filter operator {op!r}")  # check_query rejects it earlier


def _search(search: KeySearch, instance_id: str) -> ColumnElement[bool]:
    if search.exact:
        needle = fold(bindparam(None, search.text, type_=Text))

        def matches(column: ColumnElement[str]) -> ColumnElement[bool]:
            return fold(column) == needle

    else:
        pattern = fold(bindparam(None, f"%{escape_like(search.text)}%", type_=Text))

        def matches(column: ColumnElement[str]) -> ColumnElement[bool]:
            return fold(column).like(pattern, escape=LIKE_ESCAPE)

    parts: list[ColumnElement[bool]] = []
    if search.names:
        parts.append(matches(keys.c.name))
    if search.aliases:
        # The instance as a value, not only through keys.instance_id: PostgreSQL runs this as
        # one (hashed) scan of matching aliases, which then reads only this instance's (through
        # the primary key, or the trigram index where migration 0005 could make one).
        parts.append(
            exists().where(
                aliases.c.instance_id == instance_id,
                aliases.c.key_id == keys.c.id,
                matches(aliases.c.alias),
            )
        )
    found = or_(*parts) if parts else false()
    return not_(found) if search.negate else found
