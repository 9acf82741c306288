"""What both audit repositories check about a query."""

from __future__ import annotations

from kyok.store._times import aware_utc
from kyok.store.records import AuditQuery

__all__ = ["MAX_READ", "check_audit_query"]

MAX_READ = 10_000


def check_audit_query(query: AuditQuery) -> None:
    """``ValueError`` for a query no backend should run."""
    if not 1 <= query.limit <= MAX_READ:
        raise ValueError(f"limit must be from 1 to {MAX_READ}")
    for name in ("after_seq", "until_seq"):
        value = getattr(query, name)
        if value is not None and value < -1:
            raise ValueError(f"{name} must be >= -1")
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None:
            aware_utc(value, name)
