"""What a forwarder reads from and where it keeps its place.

The ledger (the store's ``audit_events`` table) is the source of truth. Forwarders (the JSONL file
sink, the syslog sink) copy it elsewhere, per instance, in seq order, at least once: they read a
batch after their cursor, deliver it, and only then move the cursor. Both sides are protocols so
this package does not import the store; ``kyok.store`` implements them.
"""

from __future__ import annotations

from typing import Protocol

from kyok.audit.chain import ChainedEvent

__all__ = ["CursorStore", "LedgerFeed"]


class LedgerFeed(Protocol):
    """Read access to the committed ledger."""

    def instance_ids(self) -> list[str]:
        """The instances that have at least one event, sorted."""
        ...

    def read_after(self, instance_id: str, after_seq: int | None, limit: int) -> list[ChainedEvent]:
        """Up to ``limit`` committed events of ``instance_id`` with ``seq > after_seq``, by seq.

        ``after_seq=None`` reads from the first event (seq 0).
        """
        ...


class CursorStore(Protocol):
    """Durable positions of the forwarders: the last seq delivered, per sink and instance."""

    def load(self, sink: str, instance_id: str) -> int | None:
        """The last seq ``sink`` delivered for ``instance_id`` (None: nothing yet)."""
        ...

    def save(self, sink: str, instance_id: str, seq: int) -> None:
        """Record that ``sink`` delivered everything up to ``seq`` (never moves backwards)."""
        ...
