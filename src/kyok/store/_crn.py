"""What a :attr:`~kyok.store.records.RegistrationQuery.crn_pattern` means, for every backend.

A pattern matches a whole CRN; ``*`` stands for any run of characters (none included) and
every other character, ``%``, ``_``, ``?``, ``[`` and ``\\`` included, only for itself, case
sensitively. The memory store uses :func:`crn_regex`; PostgreSQL a LIKE pattern
(:func:`crn_like`, with :data:`~kyok.store._keyquery.LIKE_ESCAPE`); SQLite, whose LIKE
ignores ASCII case, a GLOB pattern (:func:`crn_glob`).
"""

from __future__ import annotations

import re

from kyok.store._keyquery import LIKE_ESCAPE, check_page, escape_like
from kyok.store.records import RegistrationQuery

#: The one wildcard of a CRN pattern.
WILDCARD = "*"

_GLOB_SPECIAL = frozenset("*?[")


def check_registration_query(query: RegistrationQuery) -> RegistrationQuery:
    """Validate ``query``.

    Raises:
        ValueError: a negative limit or offset.
    """
    check_page(query.limit, query.offset)
    return query


def crn_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression that ``fullmatch``-es exactly the CRNs ``pattern`` matches."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split(WILDCARD)), re.DOTALL)


def crn_like(pattern: str, escape: str = LIKE_ESCAPE) -> str:
    """``pattern`` as a LIKE pattern (``ESCAPE escape``), for a case-sensitive LIKE."""
    return "%".join(escape_like(part, escape) for part in pattern.split(WILDCARD))


def crn_glob(pattern: str) -> str:
    """``pattern`` as an SQLite GLOB pattern: ``*`` stays, ``?`` and ``[`` become literal."""
    return WILDCARD.join(_glob_literal(part) for part in pattern.split(WILDCARD))


def _glob_literal(text: str) -> str:
    # In a GLOB, "[c]" matches just c; "]" outside brackets is literal already.
    return "".join(f"[{c}]" if c in _GLOB_SPECIAL else c for c in text)
