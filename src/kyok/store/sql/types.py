"""Column types: UTC timestamps, tag lists as JSON text, and byte-ordered identifiers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from kyok.store._times import aware_utc


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC ``datetime``.

    PostgreSQL keeps ``timestamptz``. SQLite has no such type: the value is stored as naive
    UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``), which sorts and compares chronologically.
    Binding a naive datetime raises ``ValueError``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc_value = aware_utc(value)
        if dialect.name == "sqlite":
            return utc_value.replace(tzinfo=None)
        return utc_value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TagList(TypeDecorator[tuple[str, ...]]):
    """A tuple of strings stored as a JSON array in a text column."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[str] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(json.loads(value))


def ident() -> TypeEngine[str]:
    """Text for identifiers, compared byte-wise (code point order) on every backend.

    SQLite compares text byte-wise already; on PostgreSQL the column gets ``COLLATE "C"`` so
    that ordering does not depend on the database's locale.
    """
    return Text().with_variant(Text(collation="C"), "postgresql")
