"""The in-memory repositories of credentials: principals, API keys, role bindings and refresh
tokens (the ports at the end of :mod:`kyok.store.ports`).

Principals and role bindings are partitioned by instance. API keys and refresh tokens are found
by ``lookup`` across instances, so they sit in one partition (``""``) keyed by it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from kyok.errors import AlreadyExists, VersionConflict
from kyok.store._keyquery import check_page
from kyok.store._times import aware_utc, normalize_record
from kyok.store.memory._session import Pk, Session, Table
from kyok.store.records import (
    ApiKeyRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RoleBindingRecord,
)

__all__ = [
    "MemoryApiKeyRepository",
    "MemoryPrincipalRepository",
    "MemoryRefreshTokenRepository",
    "MemoryRoleBindingRepository",
]

R = TypeVar("R")
_GLOBAL = ""


def _add_unique(
    session: Session,
    table: Table[R],
    pk: Pk,
    row: R,
    what: str,
    part: str,
    clashes: Callable[[R, R], bool],
) -> None:
    """Insert ``row`` unless its primary key is taken or another row of partition ``part``
    ``clashes`` with it (a unique secondary key), now or by the time of commit."""
    session.require_writable()

    def taken(rows: list[R], skip: set[Pk]) -> bool:
        return any(clashes(row, other) for other in rows if _pk_of(table, other) not in skip)

    with session.state.lock:
        if session.get(table, pk) is not None:
            raise AlreadyExists(f"{what} already exists")
        if taken(session.scan(table, part), {pk}):
            raise AlreadyExists(f"{what} already exists")
        session.guard(table, pk, lambda: AlreadyExists(f"{what} already exists"))
        session.set(table, pk, row)

        def check() -> None:
            if session.pending(table, pk) is not row:
                return  # replaced or deleted again in the same unit of work
            mine = session.overlay_pks(table)
            committed = list(table.partition(part).values())
            if taken(committed, mine | {pk}):
                raise AlreadyExists(f"{what} already exists")

        session.on_commit(check)


def _pk_of(table: Table[R], row: R) -> Pk:
    if isinstance(row, ApiKeyRecord | RefreshTokenRecord):
        return (_GLOBAL, row.lookup)
    return (row.instance_id, row.id)  # type: ignore[attr-defined]


def _oldest_first(rows: list[R]) -> list[R]:
    return sorted(rows, key=lambda r: (r.created_at, r.id))  # type: ignore[attr-defined]


class MemoryPrincipalRepository:
    """Principals; names are unique within an instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.principals

    def add(self, record: PrincipalRecord) -> None:
        record = normalize_record(record)
        _add_unique(
            self._s,
            self._t,
            (record.instance_id, record.id),
            record,
            "principal",
            record.instance_id,
            lambda new, old: new.name == old.name,
        )

    def get(self, instance_id: str, principal_id: str) -> PrincipalRecord | None:
        return self._s.get(self._t, (instance_id, principal_id))

    def get_by_name(self, instance_id: str, name: str) -> PrincipalRecord | None:
        for row in self._s.scan(self._t, instance_id):
            if row.name == name:
                return row
        return None

    def list(self, instance_id: str) -> list[PrincipalRecord]:
        return _oldest_first(self._s.scan(self._t, instance_id))

    def count(self, instance_id: str) -> int:
        return len(self._s.scan(self._t, instance_id))

    def delete(self, instance_id: str, principal_id: str) -> bool:
        self._s.require_writable()
        existed = self.get(instance_id, principal_id) is not None
        if existed:
            self._s.set(self._t, (instance_id, principal_id), None)
        return existed


class MemoryApiKeyRepository:
    """API keys, by lookup; ids are unique within an instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.api_keys

    def add(self, record: ApiKeyRecord) -> None:
        record = normalize_record(record)
        _add_unique(
            self._s,
            self._t,
            (_GLOBAL, record.lookup),
            record,
            "API key",
            _GLOBAL,
            lambda new, old: new.instance_id == old.instance_id and new.id == old.id,
        )

    def get_by_lookup(self, lookup: str) -> ApiKeyRecord | None:
        return self._s.get(self._t, (_GLOBAL, lookup))

    def _rows(self, instance_id: str) -> list[ApiKeyRecord]:
        return [r for r in self._s.scan(self._t, _GLOBAL) if r.instance_id == instance_id]

    def get(self, instance_id: str, api_key_id: str) -> ApiKeyRecord | None:
        for row in self._rows(instance_id):
            if row.id == api_key_id:
                return row
        return None

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[ApiKeyRecord]:
        return _oldest_first([r for r in self._rows(instance_id) if r.principal_id == principal_id])

    def delete(self, instance_id: str, api_key_id: str) -> bool:
        self._s.require_writable()
        row = self.get(instance_id, api_key_id)
        if row is not None:
            self._s.set(self._t, (_GLOBAL, row.lookup), None)
        return row is not None

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        self._s.require_writable()
        rows = self.list_for_principal(instance_id, principal_id)
        for row in rows:
            self._s.set(self._t, (_GLOBAL, row.lookup), None)
        return len(rows)


class MemoryRoleBindingRepository:
    """Role bindings; ``(principal, role, scope)`` is unique within an instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.role_bindings

    def add(self, record: RoleBindingRecord) -> None:
        record = normalize_record(record)
        _add_unique(
            self._s,
            self._t,
            (record.instance_id, record.id),
            record,
            "role binding",
            record.instance_id,
            lambda new, old: (
                (new.principal_id, new.role, new.scope) == (old.principal_id, old.role, old.scope)
            ),
        )

    def get(self, instance_id: str, binding_id: str) -> RoleBindingRecord | None:
        return self._s.get(self._t, (instance_id, binding_id))

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[RoleBindingRecord]:
        rows = self._s.scan(self._t, instance_id)
        return _oldest_first([r for r in rows if r.principal_id == principal_id])

    def list_for_role(
        self, instance_id: str, role: str, *, lock: bool = False
    ) -> list[RoleBindingRecord]:
        if lock:
            self._s.require_writable()
        with self._s.state.lock:
            rows = _oldest_first([r for r in self._s.scan(self._t, instance_id) if r.role == role])
            if lock:
                for r in rows:
                    self._s.guard(self._t, (instance_id, r.id), _bindings_changed)
        return rows

    def delete(self, instance_id: str, binding_id: str) -> bool:
        self._s.require_writable()
        existed = self.get(instance_id, binding_id) is not None
        if existed:
            self._s.set(self._t, (instance_id, binding_id), None)
        return existed

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        self._s.require_writable()
        rows = self.list_for_principal(instance_id, principal_id)
        for row in rows:
            self._s.set(self._t, (instance_id, row.id), None)
        return len(rows)


def _bindings_changed() -> VersionConflict:
    return VersionConflict("role bindings were changed by someone else")


class MemoryRefreshTokenRepository:
    """Refresh tokens, by lookup."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.refresh_tokens

    def add(self, record: RefreshTokenRecord) -> None:
        record = normalize_record(record)
        _add_unique(
            self._s,
            self._t,
            (_GLOBAL, record.lookup),
            record,
            "refresh token",
            _GLOBAL,
            lambda new, old: False,
        )

    def get(self, lookup: str) -> RefreshTokenRecord | None:
        return self._s.get(self._t, (_GLOBAL, lookup))

    def consume(self, lookup: str) -> bool:
        self._s.require_writable()
        pk = (_GLOBAL, lookup)
        with self._s.state.lock:
            if self._s.get(self._t, pk) is None:
                return False
            self._s.guard(self._t, pk, _token_consumed)
            self._s.set(self._t, pk, None)
        return True

    def _where(self, keep: Callable[[RefreshTokenRecord], bool]) -> int:
        self._s.require_writable()
        rows = [r for r in self._s.scan(self._t, _GLOBAL) if keep(r)]
        for row in rows:
            self._s.set(self._t, (_GLOBAL, row.lookup), None)
        return len(rows)

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        return self._where(
            lambda r: r.instance_id == instance_id and r.principal_id == principal_id
        )

    def delete_for_api_key(self, instance_id: str, api_key_id: str) -> int:
        return self._where(lambda r: r.instance_id == instance_id and r.api_key_id == api_key_id)

    def delete_expired(self, now: datetime, limit: int) -> int:
        now = aware_utc(now, "now")
        check_page(limit, 0)
        rows = sorted(
            (r for r in self._s.scan(self._t, _GLOBAL) if r.expires_at <= now),
            key=lambda r: (r.expires_at, r.lookup),
        )[:limit]
        self._s.require_writable()
        for row in rows:
            self._s.set(self._t, (_GLOBAL, row.lookup), None)
        return len(rows)


def _token_consumed() -> VersionConflict:
    return VersionConflict("the refresh token was used by someone else")
