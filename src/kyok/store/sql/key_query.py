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

- A deep page (``offset >= BUCKET_THRESHOLD``) of such a list, or of one state, with no other
  filter (:func:`bucketed`) skips the walk: ``key_buckets`` (migration 0006, kept exact by
  triggers) holds how many keys of each state have ids starting with each 3-character prefix.
  One statement sums the requested states per bucket in bucket order, finds the bucket holding
  position ``offset`` and how many matches come before it, and reads the ids from that
  bucket's prefix on (``id >= bucket``: a prefix sorts before every id it starts, and after
  every id of an earlier bucket) with ``OFFSET offset - before``, through the same merged
  per-state scans. The work is the ~4,096 bucket counts per state plus less than one bucket
  of ids (~250 at a million keys), whatever the offset. One statement, so the counts and the
  ids come from one snapshot (READ COMMITTED takes one per statement).
- In descending id order the same statement sums the buckets from the last one down and reads
  each state's ids backwards from the start bucket's *end*: ``id < next``, ``next`` being the
  following bucket among the requested states' (``id <= bucket`` would miss the ids that sort
  after the prefix and start with it, ``abcd`` in bucket ``abc``). Every requested id below
  ``next`` is in the start bucket or an earlier one: a bucket between the two would be a
  requested bucket too. The last bucket has no ``next``: its scans start above the
  instance's greatest id (``max(id) || '~'``, one primary-key lookup).
- A count of such a list (no cap, or a cap of at least ``BUCKET_THRESHOLD``) is the sum of its
  states' bucket counts.

SQLite reads deep pages and counts of such lists from ``key_buckets`` the same way (its
triggers keep it too; each state's scan is a range of the same index from the start bucket on,
tests/store/test_key_buckets.py pins that plan): at 300,000 keys a page at offset 270,000
falls from ~140 ms to ~19 ms and the total from ~16 ms to ~3 ms (ad hoc, this session's
machine). Every other page SQLite reads with one plain statement. On every backend a count
that only needs to know whether it passes a bound stops there (``cap``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
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
from sqlalchemy.sql.selectable import CTE, Subquery

from kyok.store._keyquery import LIKE_ESCAPE, CheckedQuery, check_cap, escape_like
from kyok.store.records import KeyFilter, KeySearch
from kyok.store.sql.functions import fold
from kyok.store.sql.tables import aliases, key_buckets, keys

#: Offsets from which a page of a :func:`bucketed` query is found through ``key_buckets``
#: (below it, walking the ids is as cheap as summing the bucket counts), and the smallest cap
#: for which a capped count sums them (a smaller cap stops after fewer index entries than there
#: are bucket rows). Tests lower it.
BUCKET_THRESHOLD = 10_000

#: The dialects that read ``key_buckets`` (every dialect's triggers keep it).
BUCKET_DIALECTS = frozenset({"postgresql", "sqlite"})


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
            per-state scans where it can), any other reads the page in one plain statement;
            both read a deep :func:`bucketed` page through ``key_buckets``.

    Returns:
        ``SELECT keys.* ...``: the same rows in the same order as
        ``SELECT * FROM keys WHERE ... ORDER BY ... LIMIT ... OFFSET ...``.
    """
    query = checked.query
    if dialect in BUCKET_DIALECTS and bucketed(checked) and query.offset >= BUCKET_THRESHOLD:
        return _page_rows(checked, _bucketed_ids(checked))
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
    return _page_rows(checked, ids)


def _page_rows(checked: CheckedQuery, ids: Subquery) -> Select[Any]:
    """The full rows of the page whose ids are ``ids``, in the page's order."""
    return (
        select(keys)
        .join(ids, and_(keys.c.instance_id == checked.query.instance_id, keys.c.id == ids.c.id))
        .order_by(*order_by(checked))
    )


def select_count(
    checked: CheckedQuery, cap: int | None = None, dialect: str | None = None
) -> Select[Any]:
    """How many keys ``checked`` matches (limit, offset and sort ignored).

    Args:
        checked: the query.
        cap: stop counting at this many (the answer is then ``min(matches, cap)``): enough to
            tell whether a count passes ``cap - 1``, without counting a million keys.
        dialect: the SQLAlchemy dialect name; on ``postgresql`` and ``sqlite`` a
            :func:`bucketed` query is counted from ``key_buckets`` (unless ``cap`` is below
            ``BUCKET_THRESHOLD``).
    """
    check_cap(cap)
    small_cap = cap is not None and cap < BUCKET_THRESHOLD
    if dialect in BUCKET_DIALECTS and bucketed(checked) and not small_cap:
        total: ColumnElement[Any] = func.coalesce(func.sum(key_buckets.c.n), 0)
        if cap is not None:  # SQLite's two-argument min() is PostgreSQL's least()
            total = (func.least if dialect == "postgresql" else func.min)(total, cap)
        return select(total).where(_bucket_rows(checked))
    if cap is None:
        return select(func.count()).select_from(keys).where(where(checked))
    matches = select(literal(1).label("one")).where(where(checked)).limit(cap).subquery()
    return select(func.count()).select_from(matches)


def _descending(checked: CheckedQuery) -> bool:
    """Whether ``checked`` lists in descending id order (else, where it matters: ascending)."""
    return checked.sort == (("id", True),)


def _mergeable(checked: CheckedQuery) -> bool:
    """Whether the page's ids can come from per-state id-ordered index scans: ordered by id
    alone, over more than one state, without a search (each state's scan would repeat it)."""
    return (
        checked.sort == (("id", False),)
        and len(checked.states) > 1
        and checked.query.search is None
    )


def _merged_ids(
    checked: CheckedQuery,
    skip: int | ColumnElement[Any] | None = None,
    start: ColumnElement[Any] | None = None,
) -> Subquery:
    """The page's ids as a merge of one id-ordered scan per state (PostgreSQL; and SQLite
    from a start bucket), in the page's id order (ascending, or descending: :func:`_descending`).

    Each state's branch is its own subquery with ORDER BY id (and a LIMIT of skip + limit:
    no state contributes more): PostgreSQL then reads each from the ``(instance_id, state,
    id)`` index, index-only (backwards when descending), and merges them (Merge Append).
    Without the inner ORDER BY it flattens the UNION ALL and, on the ``C``-collated id, sorts
    everything instead.

    Args:
        checked: the query.
        skip: how many merged ids come before the page (default: the query's offset).
        start: where every scan starts: ascending at ``id >= start``, descending below it
            (``id < start``); default: at the first id in the page's order.

    Returns:
        A subquery ``page`` with one column, ``id``: the page's ids, in its order.
    """
    query = checked.query
    descending = _descending(checked)
    if skip is None:
        skip = query.offset
    bound: list[ColumnElement[bool]] = []
    if start is not None:
        bound.append(keys.c.id < start if descending else keys.c.id >= start)
    branches = [
        select(keys.c.id)
        .where(where(checked, state=state), *bound)
        .order_by(keys.c.id.desc() if descending else keys.c.id)
        .limit(skip + query.limit)
        .subquery(f"state_{state}")
        for state in sorted(checked.states)
    ]
    merged = union_all(*(select(b.c.id) for b in branches)).subquery("merged")
    return (
        select(merged.c.id)
        .order_by(merged.c.id.desc() if descending else merged.c.id)
        .limit(query.limit)
        .offset(skip)
        .subquery("page")
    )


def bucketed(checked: CheckedQuery) -> bool:
    """Whether ``key_buckets`` answers for ``checked``: its matches are exactly an instance's
    keys in some states (no search, key ring, extractable or other filter), in ascending or
    descending id order (the order of the buckets, either way)."""
    query = checked.query
    return (
        checked.sort in ((("id", False),), (("id", True),))
        and bool(checked.states)
        and not checked.filters
        and query.search is None
        and query.key_ring_id is None
        and query.extractable is None
    )


def _bucket_rows(checked: CheckedQuery) -> ColumnElement[bool]:
    return and_(
        key_buckets.c.instance_id == checked.query.instance_id,
        key_buckets.c.state.in_(sorted(checked.states)),
    )


def _bucket_start(checked: CheckedQuery) -> CTE:
    """One row, or none when ``offset`` is past the last match: where the page's scans start
    and ``skip``, how many matches they pass before the page.

    Ascending: ``bucket``, the bucket holding the match at position ``offset`` (0-based, in id
    order); ``skip`` is that position within the matches of that bucket and the later ones
    (``offset`` minus the matches before it). Descending: the same in descending bucket order,
    with ``bucket_end`` instead of ``bucket``: every requested id below it is in that bucket or
    an earlier one, and every id of the bucket is below it (see the module docstring).
    """
    offset = checked.query.offset
    descending = _descending(checked)
    sums = (
        select(
            key_buckets.c.bucket,
            cast(func.sum(key_buckets.c.n), BigInteger).label("n"),
        )
        .where(_bucket_rows(checked))
        .group_by(key_buckets.c.bucket)
        .subquery("bucket_sums")
    )
    order = sums.c.bucket.desc() if descending else sums.c.bucket
    through = cast(func.sum(sums.c.n).over(order_by=order), BigInteger)
    columns = [sums.c.bucket, sums.c.n, (through - sums.c.n).label("before")]
    if descending:  # the bucket after this one in id order: the one before it in this order
        columns.append(func.lag(sums.c.bucket).over(order_by=order).label("next_bucket"))
    running = select(*columns).subquery("running")
    start: ColumnElement[Any] = running.c.bucket
    if descending:  # after the last bucket: above every id of the instance
        greatest = (
            select(func.max(keys.c.id))
            .where(keys.c.instance_id == checked.query.instance_id)
            .scalar_subquery()
        )
        start = func.coalesce(running.c.next_bucket, greatest.concat("~")).label("bucket_end")
    return (
        select(start, (literal(offset) - running.c.before).label("skip"))
        .where(running.c.before <= offset, running.c.before + running.c.n > offset)
        .cte("bucket_start")
    )


def _bucketed_ids(checked: CheckedQuery) -> Subquery:
    """The page's ids, read from the bucket holding position ``offset`` on: the merged
    per-state scans of :func:`_merged_ids`, each starting at the bucket's prefix (descending:
    at its end), skipping ``skip`` (the page's position within that bucket and the later
    ones). With no start bucket (``offset`` past the end) the scans compare ids with NULL: no
    rows.

    Returns:
        A subquery ``page`` with one column, ``id``: the page's ids, in its order.
    """
    start = _bucket_start(checked)
    where_from = start.c.bucket_end if _descending(checked) else start.c.bucket
    first_id = select(where_from).scalar_subquery()
    # No start bucket: no ids pass ``id >= NULL`` (or ``<``), and LIMIT/OFFSET get 0 (SQLite
    # refuses NULL).
    skip = func.coalesce(select(start.c.skip).scalar_subquery(), 0)
    return _merged_ids(checked, skip, first_id)


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
