"""In-memory store: every port of :mod:`kyok.store.ports` and ``unit.ports.UnitStateStore``.

The reference implementation the SQL backends are checked against, and a fast fake for domain
tests. Use it as ``store = MemoryStore(); with store.uow() as uow: ...; uow.commit()``.
"""

from __future__ import annotations

from kyok.store.memory.repositories import search_matches
from kyok.store.memory.store import MemoryStore, MemoryUnitOfWork
from kyok.store.memory.units import MemoryUnitStateStore

__all__ = ["MemoryStore", "MemoryUnitOfWork", "MemoryUnitStateStore", "search_matches"]
