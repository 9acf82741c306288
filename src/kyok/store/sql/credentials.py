"""Credentials: principals, API keys, role bindings and refresh tokens (``kyok.auth``).

The rows carry a ``mac`` the store neither computes nor checks: the crypto unit does that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select

from kyok.errors import InternalError
from kyok.store._keyquery import check_page
from kyok.store._times import aware_utc, normalize_record
from kyok.store.records import (
    ApiKeyRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RoleBindingRecord,
)
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.tables import api_keys, principals, refresh_tokens, role_bindings

__all__ = [
    "SqlApiKeyRepository",
    "SqlPrincipalRepository",
    "SqlRefreshTokenRepository",
    "SqlRoleBindingRepository",
]


def principal_from_row(row: Row[Any]) -> PrincipalRecord:
    """Build a :class:`PrincipalRecord` from a row of ``principals``."""
    return PrincipalRecord(
        instance_id=row.instance_id,
        id=row.id,
        name=row.name,
        kind=row.kind,
        created_at=row.created_at,
        created_by=row.created_by,
        mac=row.mac,
    )


def api_key_from_row(row: Row[Any]) -> ApiKeyRecord:
    """Build an :class:`ApiKeyRecord` from a row of ``api_keys``."""
    return ApiKeyRecord(
        lookup=row.lookup,
        instance_id=row.instance_id,
        id=row.id,
        principal_id=row.principal_id,
        name=row.name,
        created_at=row.created_at,
        created_by=row.created_by,
        mac=row.mac,
    )


def role_binding_from_row(row: Row[Any]) -> RoleBindingRecord:
    """Build a :class:`RoleBindingRecord` from a row of ``role_bindings``."""
    return RoleBindingRecord(
        instance_id=row.instance_id,
        id=row.id,
        principal_id=row.principal_id,
        role=row.role,
        scope=row.scope,
        created_at=row.created_at,
        created_by=row.created_by,
        mac=row.mac,
    )


def refresh_token_from_row(row: Row[Any]) -> RefreshTokenRecord:
    """Build a :class:`RefreshTokenRecord` from a row of ``refresh_tokens``."""
    return RefreshTokenRecord(
        lookup=row.lookup,
        instance_id=row.instance_id,
        id=row.id,
        principal_id=row.principal_id,
        api_key_id=row.api_key_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        mac=row.mac,
    )


class SqlPrincipalRepository:
    """``PrincipalRepository`` over ``principals``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: PrincipalRecord) -> None:
        record = normalize_record(record)
        values = {
            "instance_id": record.instance_id,
            "id": record.id,
            "name": record.name,
            "kind": record.kind,
            "created_at": record.created_at,
            "created_by": record.created_by,
            "mac": record.mac,
        }
        self._tx.insert_new(principals, values, what="principal")

    def get(self, instance_id: str, principal_id: str) -> PrincipalRecord | None:
        t = principals
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == principal_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else principal_from_row(row)

    def get_by_name(self, instance_id: str, name: str) -> PrincipalRecord | None:
        t = principals
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.name == name)
        row = self._tx.execute(stmt).first()
        return None if row is None else principal_from_row(row)

    def list(self, instance_id: str) -> list[PrincipalRecord]:
        t = principals
        stmt = select(t).where(t.c.instance_id == instance_id).order_by(t.c.created_at, t.c.id)
        return [principal_from_row(row) for row in self._tx.execute(stmt)]

    def count(self, instance_id: str) -> int:
        t = principals
        stmt = select(func.count()).select_from(t).where(t.c.instance_id == instance_id)
        return int(self._tx.execute(stmt).scalar_one())

    def delete(self, instance_id: str, principal_id: str) -> bool:
        t = principals
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.id == principal_id)
        return self._tx.write(stmt).rowcount > 0


class SqlApiKeyRepository:
    """``ApiKeyRepository`` over ``api_keys``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: ApiKeyRecord) -> None:
        record = normalize_record(record)
        values = {
            "lookup": record.lookup,
            "instance_id": record.instance_id,
            "id": record.id,
            "principal_id": record.principal_id,
            "name": record.name,
            "created_at": record.created_at,
            "created_by": record.created_by,
            "mac": record.mac,
        }
        self._tx.insert_new(api_keys, values, what="API key")

    def get_by_lookup(self, lookup: str) -> ApiKeyRecord | None:
        row = self._tx.execute(select(api_keys).where(api_keys.c.lookup == lookup)).first()
        return None if row is None else api_key_from_row(row)

    def get(self, instance_id: str, api_key_id: str) -> ApiKeyRecord | None:
        t = api_keys
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == api_key_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else api_key_from_row(row)

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[ApiKeyRecord]:
        t = api_keys
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id, t.c.principal_id == principal_id)
            .order_by(t.c.created_at, t.c.id)
        )
        return [api_key_from_row(row) for row in self._tx.execute(stmt)]

    def delete(self, instance_id: str, api_key_id: str) -> bool:
        t = api_keys
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.id == api_key_id)
        return self._tx.write(stmt).rowcount > 0

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        t = api_keys
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.principal_id == principal_id)
        return int(self._tx.write(stmt).rowcount)


class SqlRoleBindingRepository:
    """``RoleBindingRepository`` over ``role_bindings``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: RoleBindingRecord) -> None:
        record = normalize_record(record)
        values = {
            "instance_id": record.instance_id,
            "id": record.id,
            "principal_id": record.principal_id,
            "role": record.role,
            "scope": record.scope,
            "created_at": record.created_at,
            "created_by": record.created_by,
            "mac": record.mac,
        }
        self._tx.insert_new(role_bindings, values, what="role binding")

    def get(self, instance_id: str, binding_id: str) -> RoleBindingRecord | None:
        t = role_bindings
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.id == binding_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else role_binding_from_row(row)

    def list_for_principal(self, instance_id: str, principal_id: str) -> list[RoleBindingRecord]:
        t = role_bindings
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id, t.c.principal_id == principal_id)
            .order_by(t.c.created_at, t.c.id)
        )
        return [role_binding_from_row(row) for row in self._tx.execute(stmt)]

    def list_for_role(
        self, instance_id: str, role: str, *, lock: bool = False
    ) -> list[RoleBindingRecord]:
        t = role_bindings
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id, t.c.role == role)
            .order_by(t.c.created_at, t.c.id)
        )
        if lock:
            if self._tx.read_only:
                raise InternalError("locking rows in a read-only unit of work")
            stmt = stmt.with_for_update()  # rendered on PostgreSQL; SQLite holds the DB lock
        return [role_binding_from_row(row) for row in self._tx.execute(stmt)]

    def delete(self, instance_id: str, binding_id: str) -> bool:
        t = role_bindings
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.id == binding_id)
        return self._tx.write(stmt).rowcount > 0

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        t = role_bindings
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.principal_id == principal_id)
        return int(self._tx.write(stmt).rowcount)


class SqlRefreshTokenRepository:
    """``RefreshTokenRepository`` over ``refresh_tokens``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: RefreshTokenRecord) -> None:
        record = normalize_record(record)
        values = {
            "lookup": record.lookup,
            "instance_id": record.instance_id,
            "id": record.id,
            "principal_id": record.principal_id,
            "api_key_id": record.api_key_id,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "mac": record.mac,
        }
        self._tx.insert_new(refresh_tokens, values, what="refresh token")

    def get(self, lookup: str) -> RefreshTokenRecord | None:
        t = refresh_tokens
        row = self._tx.execute(select(t).where(t.c.lookup == lookup)).first()
        return None if row is None else refresh_token_from_row(row)

    def consume(self, lookup: str) -> bool:
        t = refresh_tokens
        return self._tx.write(delete(t).where(t.c.lookup == lookup)).rowcount > 0

    def delete_for_principal(self, instance_id: str, principal_id: str) -> int:
        t = refresh_tokens
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.principal_id == principal_id)
        return int(self._tx.write(stmt).rowcount)

    def delete_for_api_key(self, instance_id: str, api_key_id: str) -> int:
        t = refresh_tokens
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.api_key_id == api_key_id)
        return int(self._tx.write(stmt).rowcount)

    def delete_expired(self, now: datetime, limit: int) -> int:
        now = aware_utc(now, "now")
        check_page(limit, 0)
        t = refresh_tokens
        doomed = (
            select(t.c.lookup)
            .where(t.c.expires_at <= now)
            .order_by(t.c.expires_at, t.c.lookup)
            .limit(limit)
        )
        stmt = delete(t).where(t.c.lookup.in_(doomed.scalar_subquery()))
        return int(self._tx.write(stmt).rowcount)
