"""Timestamps as the store keeps them: timezone-aware and in UTC.

Both backends reject naive datetimes (a naive value is a bug upstream: whose clock was it?) and
hand back aware UTC values, whatever offset they were given in.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, TypeVar

R = TypeVar("R")


def aware_utc(value: datetime, what: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        ValueError: ``value`` is naive.
    """
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def normalize_record(record: R) -> R:
    """A copy of the dataclass ``record`` with every datetime field converted to UTC.

    Raises:
        ValueError: a datetime field is naive.
    """
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            utc_value = aware_utc(value, f.name)
            if utc_value is not value:
                changes[f.name] = utc_value
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[type-var]
