"""A :class:`~kyok.store.records.KeyQuery` as SQL: WHERE and ORDER BY over ``keys``.

Semantics are those of ``kyok.store._keyquery`` and the memory store: search folds case on
both sides (``fold``) and escapes LIKE wildcards in the user's text, so ``%``, ``_`` and ``\\``
match only themselves; ``None`` sorts after every value; ``id`` breaks ties.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, and_, bindparam, exists, false, not_, or_
from sqlalchemy.sql.elements import UnaryExpression

from kyok.store._keyquery import LIKE_ESCAPE, CheckedQuery, escape_like
from kyok.store.records import KeyFilter, KeySearch
from kyok.store.sql.functions import fold
from kyok.store.sql.tables import aliases, keys


def where(checked: CheckedQuery) -> ColumnElement[bool]:
    """The WHERE clause selecting the keys ``checked`` matches (paging and sort aside)."""
    query = checked.query
    conditions: list[ColumnElement[bool]] = [
        keys.c.instance_id == query.instance_id,
        keys.c.state.in_(sorted(checked.states)),
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
