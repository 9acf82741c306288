"""Import tokens, key and instance policies, deletion authorisations and registrations.

``put`` is an upsert (``INSERT ... ON CONFLICT DO UPDATE``). The import token's ``update`` is
optimistic like the key's: ``UPDATE ... WHERE id = :id AND row_version = :expected``.
A registration's ``crn_pattern`` becomes a case-sensitive LIKE on PostgreSQL and a GLOB on
SQLite (whose LIKE ignores ASCII case); see :mod:`kyok.store._crn`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, delete, func, select, true, update

from kyok.errors import VersionConflict
from kyok.store._crn import check_registration_query, crn_glob, crn_like
from kyok.store._keyquery import LIKE_ESCAPE, check_page
from kyok.store._times import aware_utc, normalize_record
from kyok.store.records import (
    KEY_POLICY_ROTATION,
    DeletionAuthorizationRecord,
    ImportTokenRecord,
    InstancePolicyRecord,
    KeyPolicyRecord,
    RegistrationQuery,
    RegistrationRecord,
)
from kyok.store.sql._transaction import Transaction
from kyok.store.sql.blobs import ID_CHUNK
from kyok.store.sql.tables import (
    deletion_authorizations,
    import_tokens,
    instance_policies,
    key_policies,
    registrations,
)

__all__ = [
    "SqlDeletionAuthorizationRepository",
    "SqlImportTokenRepository",
    "SqlInstancePolicyRepository",
    "SqlKeyPolicyRepository",
    "SqlRegistrationRepository",
]


def _values(record: Any) -> dict[str, Any]:
    """Column values of a record whose fields are exactly its table's columns."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


# ---------------------------------------------------------------- import tokens


def import_token_from_row(row: Row[Any]) -> ImportTokenRecord:
    """Build an :class:`ImportTokenRecord` from a row of ``import_tokens``."""
    return ImportTokenRecord(
        instance_id=row.instance_id,
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        max_retrievals=row.max_retrievals,
        remaining_retrievals=row.remaining_retrievals,
        nonce=bytes(row.nonce),
        public_key=bytes(row.public_key),
        hybrid_public_key=bytes(row.hybrid_public_key),
        row_version=row.row_version,
    )


def _import_token_values(record: ImportTokenRecord) -> dict[str, Any]:
    values = _values(record)
    for name in ("nonce", "public_key", "hybrid_public_key"):
        values[name] = bytes(values[name])
    return values


class SqlImportTokenRepository:
    """``ImportTokenRepository`` over ``import_tokens`` (one row per instance)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, instance_id: str) -> ImportTokenRecord | None:
        """The instance's token, if it has one."""
        t = import_tokens
        row = self._tx.execute(select(t).where(t.c.instance_id == instance_id)).first()
        return None if row is None else import_token_from_row(row)

    def put(self, record: ImportTokenRecord) -> None:
        """Store the instance's token, replacing any earlier one."""
        values = _import_token_values(normalize_record(record))
        self._tx.upsert(import_tokens, values, what="import token")

    def update(self, record: ImportTokenRecord, expected_row_version: int) -> ImportTokenRecord:
        """``UPDATE ... WHERE id = :id AND row_version = :expected``; else ``VersionConflict``."""
        t = import_tokens
        stored = dataclasses.replace(normalize_record(record), row_version=expected_row_version + 1)
        values = {k: v for k, v in _import_token_values(stored).items() if k != "instance_id"}
        stmt = (
            update(t)
            .where(
                t.c.instance_id == record.instance_id,
                t.c.id == record.id,
                t.c.row_version == expected_row_version,
            )
            .values(values)
        )
        if self._tx.write(stmt, what="import token").rowcount != 1:
            raise VersionConflict(
                "the import token was replaced, changed or removed by someone else"
            )
        return stored

    def delete(self, instance_id: str) -> bool:
        """Remove the instance's token; False if it had none."""
        t = import_tokens
        return self._tx.write(delete(t).where(t.c.instance_id == instance_id)).rowcount > 0

    def expired(self, now: datetime, limit: int) -> list[ImportTokenRecord]:
        """Tokens of any instance with ``expires_at <= now``, oldest first."""
        now = aware_utc(now, "now")
        check_page(limit, 0)
        t = import_tokens
        stmt = (
            select(t)
            .where(t.c.expires_at <= now)
            .order_by(t.c.expires_at, t.c.instance_id)
            .limit(limit)
        )
        return [import_token_from_row(row) for row in self._tx.execute(stmt)]


# ---------------------------------------------------------------- key policies


def key_policy_from_row(row: Row[Any]) -> KeyPolicyRecord:
    """Build a :class:`KeyPolicyRecord` from a row of ``key_policies``."""
    return KeyPolicyRecord(
        instance_id=row.instance_id,
        key_id=row.key_id,
        policy_type=row.policy_type,
        enabled=bool(row.enabled),
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        interval_months=row.interval_months,
        next_rotation_at=row.next_rotation_at,
    )


class SqlKeyPolicyRepository:
    """``KeyPolicyRepository`` over ``key_policies``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, instance_id: str, key_id: str, policy_type: str) -> KeyPolicyRecord | None:
        """One policy of a key."""
        t = key_policies
        stmt = select(t).where(
            t.c.instance_id == instance_id, t.c.key_id == key_id, t.c.policy_type == policy_type
        )
        row = self._tx.execute(stmt).first()
        return None if row is None else key_policy_from_row(row)

    def list_for_key(self, instance_id: str, key_id: str) -> list[KeyPolicyRecord]:
        """The key's policies by ``policy_type``."""
        t = key_policies
        stmt = (
            select(t)
            .where(t.c.instance_id == instance_id, t.c.key_id == key_id)
            .order_by(t.c.policy_type)
        )
        return [key_policy_from_row(row) for row in self._tx.execute(stmt)]

    def list_for_keys(
        self, instance_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[KeyPolicyRecord]]:
        """The policies of several keys by ``policy_type``; keys without any are absent."""
        t = key_policies
        unique = list(dict.fromkeys(key_ids))
        records: list[KeyPolicyRecord] = []
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            stmt = select(t).where(t.c.instance_id == instance_id, t.c.key_id.in_(chunk))
            records.extend(key_policy_from_row(row) for row in self._tx.execute(stmt))
        # sorted here: the same code-point order on every backend, whatever the DB's locale
        records.sort(key=lambda r: (r.key_id, r.policy_type))
        found: dict[str, list[KeyPolicyRecord]] = {}
        for record in records:
            found.setdefault(record.key_id, []).append(record)
        return found

    def put(self, record: KeyPolicyRecord) -> None:
        """Insert or replace the policy."""
        values = _values(normalize_record(record))
        values["enabled"] = bool(record.enabled)
        self._tx.upsert(key_policies, values, what="key policy")

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        """Remove every policy of the key; returns how many there were."""
        t = key_policies
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        return int(self._tx.write(stmt).rowcount)

    def rotation_due(self, now: datetime, limit: int) -> list[KeyPolicyRecord]:
        """Enabled rotation policies (any instance) due by ``now``, earliest first."""
        now = aware_utc(now, "now")
        check_page(limit, 0)
        t = key_policies
        stmt = (
            select(t)
            .where(
                t.c.enabled == true(),
                t.c.next_rotation_at.is_not(None),
                t.c.next_rotation_at <= now,
                t.c.policy_type == KEY_POLICY_ROTATION,
            )
            .order_by(t.c.next_rotation_at, t.c.instance_id, t.c.key_id)
            .limit(limit)
        )
        return [key_policy_from_row(row) for row in self._tx.execute(stmt)]


# ---------------------------------------------------------------- deletion authorisations


def deletion_authorization_from_row(row: Row[Any]) -> DeletionAuthorizationRecord:
    """Build a :class:`DeletionAuthorizationRecord` from a row of
    ``deletion_authorizations``."""
    return DeletionAuthorizationRecord(
        instance_id=row.instance_id,
        key_id=row.key_id,
        principal_id=row.principal_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class SqlDeletionAuthorizationRepository:
    """``DeletionAuthorizationRepository`` over ``deletion_authorizations``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, instance_id: str, key_id: str) -> DeletionAuthorizationRecord | None:
        """The key's approval, if any."""
        t = deletion_authorizations
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        row = self._tx.execute(stmt).first()
        return None if row is None else deletion_authorization_from_row(row)

    def put(self, record: DeletionAuthorizationRecord) -> None:
        """Insert or replace the key's approval."""
        values = _values(normalize_record(record))
        self._tx.upsert(deletion_authorizations, values, what="deletion authorization")

    def delete(self, instance_id: str, key_id: str) -> bool:
        """Remove the key's approval; False if it had none."""
        t = deletion_authorizations
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        return self._tx.write(stmt).rowcount > 0


# ---------------------------------------------------------------- instance policies


def instance_policy_from_row(row: Row[Any]) -> InstancePolicyRecord:
    """Build an :class:`InstancePolicyRecord` from a row of ``instance_policies``."""
    return InstancePolicyRecord(
        instance_id=row.instance_id,
        policy_type=row.policy_type,
        enabled=bool(row.enabled),
        attributes=row.attributes,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


_LIST_INSTANCE_POLICIES = (
    select(instance_policies)
    .where(instance_policies.c.instance_id == bindparam("instance_id"))
    .order_by(instance_policies.c.policy_type)
)


class SqlInstancePolicyRepository:
    """``InstancePolicyRepository`` over ``instance_policies``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, instance_id: str, policy_type: str) -> InstancePolicyRecord | None:
        """One policy of the instance."""
        t = instance_policies
        stmt = select(t).where(t.c.instance_id == instance_id, t.c.policy_type == policy_type)
        row = self._tx.execute(stmt).first()
        return None if row is None else instance_policy_from_row(row)

    def list(self, instance_id: str) -> list[InstancePolicyRecord]:
        """The instance's policies by ``policy_type``."""
        rows = self._tx.execute(_LIST_INSTANCE_POLICIES, {"instance_id": instance_id})
        return [instance_policy_from_row(row) for row in rows]

    def put(self, record: InstancePolicyRecord) -> None:
        """Insert or replace the policy."""
        values = _values(normalize_record(record))
        values["enabled"] = bool(record.enabled)
        self._tx.upsert(instance_policies, values, what="instance policy")


# ---------------------------------------------------------------- registrations


def registration_from_row(row: Row[Any]) -> RegistrationRecord:
    """Build a :class:`RegistrationRecord` from a row of ``registrations``."""
    return RegistrationRecord(
        instance_id=row.instance_id,
        key_id=row.key_id,
        resource_crn=row.resource_crn,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        key_version_id=row.key_version_id,
        prevent_key_deletion=bool(row.prevent_key_deletion),
        description=row.description,
        registration_metadata=row.registration_metadata,
    )


def _registration_values(record: RegistrationRecord) -> dict[str, Any]:
    values = _values(normalize_record(record))
    values["prevent_key_deletion"] = bool(record.prevent_key_deletion)
    return values


class SqlRegistrationRepository:
    """``RegistrationRepository`` over ``registrations``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, record: RegistrationRecord) -> None:
        """Insert; ``AlreadyExists`` if the key has a registration for the CRN."""
        self._tx.insert_new(registrations, _registration_values(record), what="registration")

    def get(self, instance_id: str, key_id: str, resource_crn: str) -> RegistrationRecord | None:
        """One registration."""
        row = self._tx.execute(
            select(registrations).where(self._pk(instance_id, key_id, resource_crn))
        ).first()
        return None if row is None else registration_from_row(row)

    def update(self, record: RegistrationRecord) -> bool:
        """Replace the stored registration; False if there is none."""
        values = _registration_values(record)
        pk = self._pk(record.instance_id, record.key_id, record.resource_crn)
        changes = {k: v for k, v in values.items() if k not in _REGISTRATION_PK}
        stmt = update(registrations).where(pk).values(changes)
        return self._tx.write(stmt, what="registration").rowcount > 0

    def delete(self, instance_id: str, key_id: str, resource_crn: str) -> bool:
        """Remove one registration; False if there was none."""
        stmt = delete(registrations).where(self._pk(instance_id, key_id, resource_crn))
        return self._tx.write(stmt).rowcount > 0

    def find(self, query: RegistrationQuery) -> list[RegistrationRecord]:
        """Matching registrations by ``(key_id, resource_crn)``, paged."""
        t = registrations
        stmt = (
            select(t)
            .where(self._where(query))
            .order_by(t.c.key_id, t.c.resource_crn)
            .limit(query.limit)
            .offset(query.offset)
        )
        return [registration_from_row(row) for row in self._tx.execute(stmt)]

    def count(self, query: RegistrationQuery) -> int:
        """How many registrations match (limit and offset aside)."""
        stmt = select(func.count()).select_from(registrations).where(self._where(query))
        return int(self._tx.execute(stmt).scalar_one())

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        """Remove every registration of the key; returns how many there were."""
        t = registrations
        stmt = delete(t).where(t.c.instance_id == instance_id, t.c.key_id == key_id)
        return int(self._tx.write(stmt).rowcount)

    @staticmethod
    def _pk(instance_id: str, key_id: str, resource_crn: str) -> ColumnElement[bool]:
        t = registrations
        return and_(
            t.c.instance_id == instance_id,
            t.c.key_id == key_id,
            t.c.resource_crn == resource_crn,
        )

    def _where(self, query: RegistrationQuery) -> ColumnElement[bool]:
        check_registration_query(query)
        t = registrations
        conditions: list[ColumnElement[bool]] = [t.c.instance_id == query.instance_id]
        if query.key_id is not None:
            conditions.append(t.c.key_id == query.key_id)
        if query.prevent_key_deletion is not None:
            conditions.append(t.c.prevent_key_deletion == bool(query.prevent_key_deletion))
        if query.crn_pattern is not None:
            conditions.append(self._crn_matches(query.crn_pattern))
        return and_(*conditions)

    def _crn_matches(self, pattern: str) -> ColumnElement[bool]:
        column = registrations.c.resource_crn
        if self._tx.dialect_name == "sqlite":
            # SQLite's LIKE ignores ASCII case; GLOB is case-sensitive
            return column.op("GLOB", is_comparison=True)(crn_glob(pattern))
        return column.like(crn_like(pattern), escape=LIKE_ESCAPE)


_REGISTRATION_PK = frozenset({"instance_id", "key_id", "resource_crn"})
