"""The Key Protect list-keys query language, parsed into :class:`~kyok.store.records.KeyQuery`.

This is the grammar of ``GET /api/v2/keys`` (the adapter passes the raw, URL-decoded strings;
the names in it - ``creationDate``, ``lastRotateDate`` ... - are part of the grammar):

``search``
    ``[prefix:]... text``. Prefixes, in any order: ``not:`` (invert), ``exact:`` (whole value,
    still case-insensitive), ``alias:`` and ``name:`` (scopes, OR'ed; none = both), and
    ``escape:``, after which everything is literal text (so ``escape:not:x`` searches for
    ``not:x``). One trailing comma is dropped: the Go client appends one to every search.
    The text must not be empty and is at most 256 characters.
``sort``
    Comma list of ``id state extractable imported creationDate lastUpdateDate lastRotateDate
    deletionDate expirationDate``; ``-`` in front = descending; no field twice. ``id`` is
    appended as the final tie-breaker so that pages are stable. Default ``id``.
``filter``
    Space-separated ``prop=value`` or ``prop=op:value`` terms, op one of ``lt lte gt gte``.
    Date props (``creationDate deletionDate expirationDate lastRotateDate lastUpdateDate``)
    take an RFC 3339 date-time with a zone, quoted (``"2026-01-01T00:00:00Z"``; unquoted is
    also accepted), or ``none`` (= not set; no op). ``state=1,5`` and ``extractable=true`` take
    no op and may appear once.
``state``
    Comma list of 0, 1, 2, 3, 5. Without it (and without ``state`` in the filter) destroyed
    keys are hidden.
``extractable``
    ``true`` or ``false``.

``state`` or ``extractable`` given both as a parameter and in ``filter`` is refused. An empty
string means "not given". Every malformed input raises
:class:`~kyok.kms.errors.InvalidQueryParam` naming the parameter, and nothing else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from kyok.kms.errors import InvalidQueryParam
from kyok.kms.keys import KeyState
from kyok.kms.validation import LIMIT_MAX, OFFSET_MAX
from kyok.store.records import (
    FILTER_OPS,
    KEY_FILTER_FIELDS,
    KEY_SORT_FIELDS,
    KeyFilter,
    KeyQuery,
    KeySearch,
)

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_FIELDS",
    "SEARCH_MAX",
    "SORT_FIELDS",
    "check_key_query",
    "parse_extractable",
    "parse_filter",
    "parse_key_query",
    "parse_search",
    "parse_sort",
    "parse_states",
]

DEFAULT_LIMIT = 200
SEARCH_MAX = 256
FILTER_MAX = 2048

#: ``sort`` names -> KeyRecord attributes.
SORT_FIELDS = {
    "id": "id",
    "state": "state",
    "extractable": "extractable",
    "imported": "imported",
    "creationDate": "created_at",
    "lastUpdateDate": "updated_at",
    "lastRotateDate": "last_rotated_at",
    "deletionDate": "deleted_at",
    "expirationDate": "expires_at",
}

#: ``filter`` date names -> KeyRecord attributes.
FILTER_FIELDS = {
    "creationDate": "created_at",
    "deletionDate": "deleted_at",
    "expirationDate": "expires_at",
    "lastRotateDate": "last_rotated_at",
    "lastUpdateDate": "updated_at",
}

_SEARCH_PREFIXES = ("not", "exact", "escape", "alias", "name")
_FILTER_OPS = frozenset({"lt", "lte", "gt", "gte"})
_TERM_RE = re.compile(r'([A-Za-z]+)=(?:(lt|lte|gt|gte):)?("[^"]*"|[^\s"]+)')
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_INT_RE = re.compile(r"[0-9]{1,10}")


def _given(value: str | None, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidQueryParam(param, "must be a string")
    return value if value.strip() else None


def parse_search(text: str | None) -> KeySearch | None:
    """Parse a ``search`` value.

    Args:
        text: the raw ``search`` value (None or empty: not given).

    Returns:
        The search, or None when not given.

    Raises:
        InvalidQueryParam: empty text after the prefixes, or longer than 256 characters.
    """
    raw = _given(text, "search")
    if raw is None:
        return None
    if len(raw) > SEARCH_MAX:
        raise InvalidQueryParam("search", f"at most {SEARCH_MAX} characters")
    if raw.endswith(","):
        raw = raw[:-1]
    negate = exact = False
    scopes: set[str] = set()
    rest = raw
    while True:
        head, sep, tail = rest.partition(":")
        if not sep or head not in _SEARCH_PREFIXES:
            break
        rest = tail
        if head == "escape":
            break
        if head == "not":
            negate = True
        elif head == "exact":
            exact = True
        else:
            scopes.add(head)
    if not rest:
        raise InvalidQueryParam("search", "the search text is empty")
    names = not scopes or "name" in scopes
    aliases = not scopes or "alias" in scopes
    return KeySearch(text=rest, names=names, aliases=aliases, exact=exact, negate=negate)


def parse_sort(text: str | None) -> tuple[tuple[str, bool], ...]:
    """Parse a ``sort`` value.

    Args:
        text: the raw ``sort`` value (None or empty: default).

    Returns:
        ``(record attribute, descending)`` pairs, ending with ``id`` as the tie-breaker.

    Raises:
        InvalidQueryParam: an unknown or repeated field, or an empty item.
    """
    raw = _given(text, "sort")
    if raw is None:
        return (("id", False),)
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for item in raw.split(","):
        name = item.strip()
        descending = name.startswith("-")
        if descending:
            name = name[1:]
        field = SORT_FIELDS.get(name)
        if field is None:
            raise InvalidQueryParam("sort", "unknown sort field; use " + ", ".join(SORT_FIELDS))
        if field in seen:
            raise InvalidQueryParam("sort", "a field is named twice")
        seen.add(field)
        out.append((field, descending))
    if "id" not in seen:
        out.append(("id", False))
    return tuple(out)


def parse_states(text: str | None, param: str = "state") -> frozenset[int] | None:
    """Parse a comma list of key states.

    Args:
        text: the raw comma list.
        param: the parameter named on failure.

    Returns:
        The states, or None when not given.

    Raises:
        InvalidQueryParam: an item that is not 0, 1, 2, 3 or 5.
    """
    raw = _given(text, param)
    if raw is None:
        return None
    states: set[int] = set()
    for item in raw.split(","):
        item = item.strip()
        if _INT_RE.fullmatch(item) is None or int(item) not in KeyState._value2member_map_:
            raise InvalidQueryParam(param, "states are a comma list of 0, 1, 2, 3, 5")
        states.add(int(item))
    return frozenset(states)


def parse_extractable(text: str | None, param: str = "extractable") -> bool | None:
    """Parse ``true``/``false`` (any case).

    Args:
        text: the raw value.
        param: the parameter named on failure.

    Returns:
        True, False, or None when not given.

    Raises:
        InvalidQueryParam: any other value.
    """
    raw = _given(text, param)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise InvalidQueryParam(param, "must be true or false")


def _parse_date(text: str) -> datetime:
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise InvalidQueryParam(
            "filter", 'dates are RFC 3339 with a zone, e.g. "2026-01-01T00:00:00Z"'
        )
    year, month, day, hour, minute, second, frac, z, sign, off_h, off_m = match.groups()
    try:
        if z:
            zone = UTC
        else:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(offset if sign == "+" else -offset)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        second_n = 59 if int(second) == 60 else int(second)  # a leap second counts as :59
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), second_n, micro, zone
        )
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidQueryParam("filter", "not a valid date") from None


def parse_filter(
    text: str | None,
) -> tuple[tuple[KeyFilter, ...], frozenset[int] | None, bool | None]:
    """Parse a ``filter`` value.

    Args:
        text: the raw ``filter`` value.

    Returns:
        ``(date filters, states or None, extractable or None)``.

    Raises:
        InvalidQueryParam: an unknown property, a bad operator or value, ``state`` or
            ``extractable`` twice or with an operator, or text that is not a term.
    """
    raw = _given(text, "filter")
    if raw is None:
        return (), None, None
    if len(raw) > FILTER_MAX:
        raise InvalidQueryParam("filter", f"at most {FILTER_MAX} characters")
    filters: list[KeyFilter] = []
    states: frozenset[int] | None = None
    extractable: bool | None = None
    pos = 0
    while True:
        while pos < len(raw) and raw[pos] in " \t":
            pos += 1
        if pos >= len(raw):
            break
        match = _TERM_RE.match(raw, pos)
        if match is None or (match.end() < len(raw) and raw[match.end()] not in " \t"):
            raise InvalidQueryParam(
                "filter", "terms are prop=value or prop=op:value, separated by spaces"
            )
        pos = match.end()
        prop, op, value = match.group(1), match.group(2), match.group(3)
        quoted = value.startswith('"')
        if quoted:
            value = value[1:-1]
        if prop == "state":
            if op or quoted or states is not None:
                raise InvalidQueryParam(
                    "filter", "state takes a comma list, once, without an operator"
                )
            states = parse_states(value, "filter")
            if states is None:
                raise InvalidQueryParam("filter", "state needs a value")
        elif prop == "extractable":
            if op or quoted or extractable is not None:
                raise InvalidQueryParam(
                    "filter", "extractable takes true or false, once, without an operator"
                )
            extractable = parse_extractable(value, "filter")
            if extractable is None:
                raise InvalidQueryParam("filter", "extractable needs a value")
        elif prop in FILTER_FIELDS:
            field = FILTER_FIELDS[prop]
            if value == "none" and not quoted:
                if op:
                    raise InvalidQueryParam("filter", "none takes no operator")
                filters.append(KeyFilter(field, "eq", None))
            else:
                filters.append(KeyFilter(field, op or "eq", _parse_date(value)))
        else:
            raise InvalidQueryParam(
                "filter", "unknown property; use state, extractable, " + ", ".join(FILTER_FIELDS)
            )
    return tuple(filters), states, extractable


def _parse_count(value: int | str | None, param: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidQueryParam(param, "must be a whole number")
    if isinstance(value, str):
        if _INT_RE.fullmatch(value.strip()) is None:
            raise InvalidQueryParam(param, "must be a whole number")
        value = int(value.strip())
    if not isinstance(value, int) or not low <= value <= high:
        raise InvalidQueryParam(param, f"must be from {low} to {high}")
    return value


def parse_key_query(
    instance_id: str,
    *,
    limit: int | str | None = None,
    offset: int | str | None = None,
    state: str | None = None,
    extractable: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    filter: str | None = None,
    key_ring_id: str | None = None,
) -> KeyQuery:
    """Build the :class:`KeyQuery` of a list-keys request.

    Args:
        instance_id: the instance being listed.
        limit: page size, 1-5,000 (default 200).
        offset: 0-based start.
        state: ``state`` parameter (comma list).
        extractable: ``extractable`` parameter.
        search: ``search`` parameter.
        sort: ``sort`` parameter.
        filter: ``filter`` parameter.
        key_ring_id: restrict to one key ring (``X-Kms-Key-Ring``), not validated here.

    Returns:
        The query for ``KeyService.list_keys``.

    Raises:
        InvalidQueryParam: any malformed part, or ``state``/``extractable`` given twice.
    """
    page_limit = _parse_count(limit, "limit", DEFAULT_LIMIT, 1, LIMIT_MAX)
    page_offset = _parse_count(offset, "offset", 0, 0, OFFSET_MAX)
    states = parse_states(state)
    is_extractable = parse_extractable(extractable)
    filters, filter_states, filter_extractable = parse_filter(filter)
    if filter_states is not None:
        if states is not None:
            raise InvalidQueryParam(
                "filter", "state is given both as a parameter and in the filter"
            )
        states = filter_states
    if filter_extractable is not None:
        if is_extractable is not None:
            raise InvalidQueryParam(
                "filter", "extractable is given both as a parameter and in the filter"
            )
        is_extractable = filter_extractable
    return KeyQuery(
        instance_id=instance_id,
        states=states,
        extractable=is_extractable,
        key_ring_id=key_ring_id,
        search=parse_search(search),
        filters=filters,
        sort=parse_sort(sort),
        limit=page_limit,
        offset=page_offset,
    )


def check_key_query(query: KeyQuery) -> KeyQuery:
    """Check a :class:`KeyQuery` built by code rather than by :func:`parse_key_query`.

    Args:
        query: the query.

    Returns:
        The query, unchanged.

    Raises:
        InvalidQueryParam: an unknown state, sort or filter field, or operator; ``None`` with an
            operator other than ``eq``; a date without a zone; a bad limit or offset.
    """
    if isinstance(query.limit, bool) or not isinstance(query.limit, int):
        raise InvalidQueryParam("limit", "must be a whole number")
    if not 1 <= query.limit <= LIMIT_MAX:
        raise InvalidQueryParam("limit", f"must be from 1 to {LIMIT_MAX}")
    if isinstance(query.offset, bool) or not isinstance(query.offset, int):
        raise InvalidQueryParam("offset", "must be a whole number")
    if not 0 <= query.offset <= OFFSET_MAX:
        raise InvalidQueryParam("offset", f"must be from 0 to {OFFSET_MAX}")
    if query.states is not None and not set(query.states) <= set(KeyState._value2member_map_):
        raise InvalidQueryParam("state", "states are 0, 1, 2, 3, 5")
    for name, _ in query.sort:
        if name not in KEY_SORT_FIELDS:
            raise InvalidQueryParam("sort", "unknown sort field")
    for key_filter in query.filters:
        if key_filter.field not in KEY_FILTER_FIELDS or key_filter.op not in FILTER_OPS:
            raise InvalidQueryParam("filter", "unknown filter field or operator")
        value = key_filter.value
        if value is None and key_filter.op != "eq":
            raise InvalidQueryParam("filter", "none takes no operator")
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise InvalidQueryParam("filter", "dates need a zone")
    return query
