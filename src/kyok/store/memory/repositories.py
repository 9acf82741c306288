"""The in-memory repositories: one class per port of :mod:`kyok.store.ports`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from kyok.errors import AlreadyExists, VersionConflict
from kyok.store._keyquery import CheckedQuery, check_cap, check_page, check_query, fold
from kyok.store._times import aware_utc, normalize_record
from kyok.store.memory._session import Pk, Session, Table
from kyok.store.records import (
    AliasRecord,
    BlobRecord,
    InstanceRecord,
    KeyFilter,
    KeyQuery,
    KeyRecord,
    KeyRingRecord,
    KeySearch,
    KeyVersionRecord,
)

R = TypeVar("R")
_EXPIRING_STATES = frozenset({1, 2})


def _add(session: Session, table: Table[R], pk: Pk, row: R, what: str) -> None:
    """Insert ``row`` unless its primary key is taken (now, or by the time of commit)."""
    session.require_writable()
    with session.state.lock:
        if session.get(table, pk) is not None:
            raise AlreadyExists(f"{what} already exists")
        session.guard(table, pk, lambda: AlreadyExists(f"{what} already exists"))
        session.set(table, pk, row)


def _sort_key(value: Any) -> tuple[int, Any]:
    """``None`` after every value."""
    return (1, 0) if value is None else (0, value)


def _page(rows: list[R], limit: int, offset: int) -> list[R]:
    check_page(limit, offset)
    return rows[offset : offset + limit]


def _key_record(record: KeyRecord) -> KeyRecord:
    record = normalize_record(record)
    return dataclasses.replace(
        record,
        tags=tuple(record.tags),
        extractable=bool(record.extractable),
        imported=bool(record.imported),
    )


class MemoryInstanceRepository:
    """Instances (tenants)."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.instances

    def add(self, record: InstanceRecord) -> None:
        _add(self._s, self._t, ("", record.id), normalize_record(record), "instance")

    def get(self, instance_id: str) -> InstanceRecord | None:
        return self._s.get(self._t, ("", instance_id))

    def list(self) -> list[InstanceRecord]:
        return sorted(self._s.scan(self._t, ""), key=lambda r: (r.created_at, r.id))


class MemoryKeyRepository:
    """Key metadata, with the query language of :class:`~kyok.store.records.KeyQuery`."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.keys
        self._aliases = session.state.aliases

    def add(self, record: KeyRecord) -> None:
        _add(self._s, self._t, (record.instance_id, record.id), _key_record(record), "key")

    def get(self, instance_id: str, key_id: str) -> KeyRecord | None:
        return self._s.get(self._t, (instance_id, key_id))

    def update(self, record: KeyRecord, expected_row_version: int) -> KeyRecord:
        stored = dataclasses.replace(_key_record(record), row_version=expected_row_version + 1)
        pk = (record.instance_id, record.id)
        self._s.require_writable()
        with self._s.state.lock:
            current = self._s.get(self._t, pk)
            if current is None or current.row_version != expected_row_version:
                raise VersionConflict("the key was changed or removed by someone else")
            self._s.guard(self._t, pk, _key_changed)
            self._s.set(self._t, pk, stored)
        return stored

    def delete(self, instance_id: str, key_id: str) -> None:
        self._s.set(self._t, (instance_id, key_id), None)

    def find(self, query: KeyQuery) -> list[KeyRecord]:
        checked = check_query(query)
        rows = self._matching(checked)
        for field, descending in reversed(checked.sort):
            rows.sort(key=_field_sort_key(field), reverse=descending)
        return rows[query.offset : query.offset + query.limit]

    def count(self, query: KeyQuery, *, cap: int | None = None) -> int:
        """How many keys match ``query``; with ``cap``, at most ``cap``."""
        checked = check_query(query)
        check_cap(cap)
        found = len(self._matching(checked))
        return found if cap is None else min(found, cap)

    def expiring(self, now: datetime, limit: int) -> list[KeyRecord]:
        now = aware_utc(now, "now")
        rows = [
            r
            for r in self._s.scan_all(self._t)
            if r.state in _EXPIRING_STATES and r.expires_at is not None and r.expires_at <= now
        ]
        rows.sort(key=lambda r: (r.expires_at, r.instance_id, r.id))
        return _page(rows, limit, 0)

    def count_in_ring(
        self, instance_id: str, key_ring_id: str, states: frozenset[int] | None = None
    ) -> int:
        """Keys in the ring; ``states`` None counts keys in every state (destroyed too)."""
        return sum(
            1
            for r in self._s.scan(self._t, instance_id)
            if r.key_ring_id == key_ring_id and (states is None or r.state in states)
        )

    def move_ring(
        self, instance_id: str, from_ring: str, to_ring: str, states: frozenset[int]
    ) -> int:
        """Move keys in ``states``; each moved key's ``row_version`` goes up by one."""
        self._s.require_writable()
        moved = 0
        with self._s.state.lock:
            for r in self._s.scan(self._t, instance_id):
                if r.key_ring_id == from_ring and r.state in states:
                    pk = (instance_id, r.id)
                    self._s.guard(self._t, pk, _key_changed)
                    self._s.set(
                        self._t,
                        pk,
                        dataclasses.replace(r, key_ring_id=to_ring, row_version=r.row_version + 1),
                    )
                    moved += 1
        return moved

    # ------------------------------------------------------------ matching

    def _matching(self, checked: CheckedQuery) -> list[KeyRecord]:
        query = checked.query
        aliases: dict[str, list[str]] = {}
        if query.search is not None and query.search.aliases:
            for a in self._s.scan(self._aliases, query.instance_id):
                aliases.setdefault(a.key_id, []).append(a.alias)
        return [
            r
            for r in self._s.scan(self._t, query.instance_id)
            if r.state in checked.states
            and (query.extractable is None or r.extractable == query.extractable)
            and (query.key_ring_id is None or r.key_ring_id == query.key_ring_id)
            and all(_filter_matches(r, f) for f in checked.filters)
            and (
                query.search is None or search_matches(query.search, r.name, aliases.get(r.id, ()))
            )
        ]


def search_matches(search: KeySearch, name: str, aliases: Sequence[str]) -> bool:
    """The reference semantics of :class:`~kyok.store.records.KeySearch`.

    A search over neither names nor aliases matches nothing (negated: everything).
    """
    text = fold(search.text)

    def hit(value: str) -> bool:
        folded = fold(value)
        return folded == text if search.exact else text in folded

    found = (search.names and hit(name)) or (search.aliases and any(hit(a) for a in aliases))
    return not found if search.negate else found


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "lt": lambda a, b: bool(a < b),
    "lte": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "gte": lambda a, b: bool(a >= b),
}


def _filter_matches(record: KeyRecord, key_filter: KeyFilter) -> bool:
    value = getattr(record, key_filter.field)
    if key_filter.value is None:
        return value is None
    if value is None:
        return False
    return _COMPARE[key_filter.op](value, key_filter.value)


def _field_sort_key(field: str) -> Callable[[KeyRecord], tuple[int, Any]]:
    return lambda r: _sort_key(getattr(r, field))


def _key_changed() -> VersionConflict:
    return VersionConflict("the key was changed or removed by someone else")


class MemoryKeyVersionRepository:
    """Key versions; ``(instance_id, key_id, number)`` is unique."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.versions

    def add(self, record: KeyVersionRecord) -> None:
        record = normalize_record(record)
        pk = (record.instance_id, record.id)
        self._s.require_writable()
        with self._s.state.lock:
            if self._number_taken(record, self._s.scan(self._t, record.instance_id)):
                raise AlreadyExists("key version already exists")
            _add(self._s, self._t, pk, record, "key version")
            self._s.on_commit(lambda: self._check_number_free(record, pk))

    def _number_taken(self, record: KeyVersionRecord, rows: Sequence[KeyVersionRecord]) -> bool:
        return any(
            r.key_id == record.key_id and r.number == record.number and r.id != record.id
            for r in rows
        )

    def _check_number_free(self, record: KeyVersionRecord, pk: Pk) -> None:
        if self._s.pending(self._t, pk) is not record:
            return  # replaced or deleted again in the same unit of work
        mine = self._s.overlay_pks(self._t)
        committed = self._s.state.versions.partition(record.instance_id).values()
        others = [r for r in committed if (r.instance_id, r.id) not in mine]
        if self._number_taken(record, others):
            raise AlreadyExists("key version already exists")

    def get(self, instance_id: str, version_id: str) -> KeyVersionRecord | None:
        return self._s.get(self._t, (instance_id, version_id))

    def _for_key(self, instance_id: str, key_id: str) -> list[KeyVersionRecord]:
        return [r for r in self._s.scan(self._t, instance_id) if r.key_id == key_id]

    def list_for_key(
        self, instance_id: str, key_id: str, limit: int, offset: int
    ) -> list[KeyVersionRecord]:
        rows = sorted(self._for_key(instance_id, key_id), key=lambda r: r.number, reverse=True)
        return _page(rows, limit, offset)

    def count_for_key(self, instance_id: str, key_id: str) -> int:
        return len(self._for_key(instance_id, key_id))

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        rows = self._for_key(instance_id, key_id)
        for r in rows:
            self._s.set(self._t, (instance_id, r.id), None)
        return len(rows)


class MemoryBlobRepository:
    """Sealed blobs."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.blobs

    def add(self, record: BlobRecord) -> None:
        record = dataclasses.replace(record, data=bytes(record.data))
        _add(self._s, self._t, (record.instance_id, record.id), record, "blob")

    def get(self, instance_id: str, blob_id: str) -> BlobRecord | None:
        return self._s.get(self._t, (instance_id, blob_id))

    def get_many(self, instance_id: str, blob_ids: Sequence[str]) -> dict[str, BlobRecord]:
        found: dict[str, BlobRecord] = {}
        for blob_id in blob_ids:
            row = self.get(instance_id, blob_id)
            if row is not None:
                found[blob_id] = row
        return found

    def delete_for_owner(self, instance_id: str, owner_id: str) -> int:
        rows = [r for r in self._s.scan(self._t, instance_id) if r.owner_id == owner_id]
        for r in rows:
            self._s.set(self._t, (instance_id, r.id), None)
        return len(rows)


class MemoryAliasRepository:
    """Aliases; unique within an instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.aliases

    def add(self, record: AliasRecord) -> None:
        record = normalize_record(record)
        _add(self._s, self._t, (record.instance_id, record.alias), record, "alias")

    def get(self, instance_id: str, alias: str) -> AliasRecord | None:
        return self._s.get(self._t, (instance_id, alias))

    def _for_key(self, instance_id: str, key_id: str) -> list[AliasRecord]:
        rows = [r for r in self._s.scan(self._t, instance_id) if r.key_id == key_id]
        return sorted(rows, key=lambda r: (r.created_at, r.alias))

    def list_for_key(self, instance_id: str, key_id: str) -> list[AliasRecord]:
        return self._for_key(instance_id, key_id)

    def list_for_keys(self, instance_id: str, key_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {key_id: [] for key_id in key_ids}
        rows = sorted(self._s.scan(self._t, instance_id), key=lambda r: (r.created_at, r.alias))
        for r in rows:
            if r.key_id in found:
                found[r.key_id].append(r.alias)
        return found

    def delete(self, instance_id: str, alias: str) -> bool:
        self._s.require_writable()
        existed = self.get(instance_id, alias) is not None
        if existed:
            self._s.set(self._t, (instance_id, alias), None)
        return existed

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        rows = self._for_key(instance_id, key_id)
        for r in rows:
            self._s.set(self._t, (instance_id, r.alias), None)
        return len(rows)

    def count_for_instance(self, instance_id: str) -> int:
        return len(self._s.scan(self._t, instance_id))


class MemoryKeyRingRepository:
    """Key rings."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.key_rings

    def add(self, record: KeyRingRecord) -> None:
        record = normalize_record(record)
        _add(self._s, self._t, (record.instance_id, record.id), record, "key ring")

    def get(self, instance_id: str, key_ring_id: str) -> KeyRingRecord | None:
        return self._s.get(self._t, (instance_id, key_ring_id))

    def list(self, instance_id: str, limit: int, offset: int) -> list[KeyRingRecord]:
        rows = sorted(self._s.scan(self._t, instance_id), key=lambda r: (r.created_at, r.id))
        return _page(rows, limit, offset)

    def count(self, instance_id: str) -> int:
        return len(self._s.scan(self._t, instance_id))

    def delete(self, instance_id: str, key_ring_id: str) -> bool:
        self._s.require_writable()
        existed = self.get(instance_id, key_ring_id) is not None
        if existed:
            self._s.set(self._t, (instance_id, key_ring_id), None)
        return existed
