"""The in-memory repositories of import tokens, key and instance policies, deletion
authorisations and registrations.

Every table is partitioned by instance. An instance's import token has the row id ``""``;
key policies are keyed by ``(key_id, policy_type)``, registrations by
``(key_id, resource_crn)``. ``put`` is a blind insert-or-replace (the last commit wins, as
with the SQL upsert); the import token's optimistic ``update`` and the registration's
``update`` record what they relied on and are re-checked at commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from kyok.errors import VersionConflict
from kyok.store._crn import check_registration_query, crn_regex
from kyok.store._keyquery import check_page
from kyok.store._times import aware_utc, normalize_record
from kyok.store.memory._session import MISSING, Pk, Session
from kyok.store.memory.repositories import _add
from kyok.store.records import (
    KEY_POLICY_ROTATION,
    DeletionAuthorizationRecord,
    ImportTokenRecord,
    InstancePolicyRecord,
    KeyPolicyRecord,
    RegistrationQuery,
    RegistrationRecord,
)

__all__ = [
    "MemoryDeletionAuthorizationRepository",
    "MemoryImportTokenRepository",
    "MemoryInstancePolicyRepository",
    "MemoryKeyPolicyRepository",
    "MemoryRegistrationRepository",
]

#: Row id of an instance's (only) import token.
_TOKEN = ""


def _token_record(record: ImportTokenRecord) -> ImportTokenRecord:
    record = normalize_record(record)
    return dataclasses.replace(
        record,
        nonce=bytes(record.nonce),
        public_key=bytes(record.public_key),
        hybrid_public_key=bytes(record.hybrid_public_key),
    )


def _token_changed() -> VersionConflict:
    return VersionConflict("the import token was replaced, changed or removed by someone else")


class MemoryImportTokenRepository:
    """Import tokens, one per instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.import_tokens

    def get(self, instance_id: str) -> ImportTokenRecord | None:
        """The instance's token, if it has one."""
        return self._s.get(self._t, (instance_id, _TOKEN))

    def put(self, record: ImportTokenRecord) -> None:
        """Store the instance's token, replacing any earlier one."""
        self._s.set(self._t, (record.instance_id, _TOKEN), _token_record(record))

    def update(self, record: ImportTokenRecord, expected_row_version: int) -> ImportTokenRecord:
        """Write ``record`` if the same token is still at ``expected_row_version``."""
        stored = dataclasses.replace(_token_record(record), row_version=expected_row_version + 1)
        pk = (record.instance_id, _TOKEN)
        self._s.require_writable()
        with self._s.state.lock:
            current = self._s.get(self._t, pk)
            if (
                current is None
                or current.id != record.id
                or current.row_version != expected_row_version
            ):
                raise _token_changed()
            self._s.guard(self._t, pk, _token_changed)
            self._s.set(self._t, pk, stored)
        return stored

    def delete(self, instance_id: str) -> bool:
        """Remove the instance's token; False if it had none."""
        self._s.require_writable()
        existed = self.get(instance_id) is not None
        if existed:
            self._s.set(self._t, (instance_id, _TOKEN), None)
        return existed

    def expired(self, now: datetime, limit: int) -> list[ImportTokenRecord]:
        """Tokens of any instance with ``expires_at <= now``, oldest first."""
        now = aware_utc(now, "now")
        check_page(limit, 0)
        rows = [r for r in self._s.scan_all(self._t) if r.expires_at <= now]
        rows.sort(key=lambda r: (r.expires_at, r.instance_id))
        return rows[:limit]


def _policy_record(record: KeyPolicyRecord) -> KeyPolicyRecord:
    return dataclasses.replace(normalize_record(record), enabled=bool(record.enabled))


class MemoryKeyPolicyRepository:
    """Key policies; ``(key_id, policy_type)`` is the row id within the instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.key_policies

    def get(self, instance_id: str, key_id: str, policy_type: str) -> KeyPolicyRecord | None:
        """One policy of a key."""
        return self._s.get(self._t, (instance_id, (key_id, policy_type)))

    def list_for_key(self, instance_id: str, key_id: str) -> list[KeyPolicyRecord]:
        """The key's policies by ``policy_type``."""
        rows = [r for r in self._s.scan(self._t, instance_id) if r.key_id == key_id]
        return sorted(rows, key=lambda r: r.policy_type)

    def list_for_keys(
        self, instance_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[KeyPolicyRecord]]:
        """The policies of several keys by ``policy_type``; keys without any are absent."""
        wanted = set(key_ids)
        found: dict[str, list[KeyPolicyRecord]] = {}
        rows = sorted(self._s.scan(self._t, instance_id), key=lambda r: r.policy_type)
        for r in rows:
            if r.key_id in wanted:
                found.setdefault(r.key_id, []).append(r)
        return found

    def put(self, record: KeyPolicyRecord) -> None:
        """Insert or replace the policy."""
        record = _policy_record(record)
        self._s.set(self._t, (record.instance_id, (record.key_id, record.policy_type)), record)

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        """Remove every policy of the key; returns how many there were."""
        self._s.require_writable()
        rows = [r for r in self._s.scan(self._t, instance_id) if r.key_id == key_id]
        for r in rows:
            self._s.set(self._t, (instance_id, (key_id, r.policy_type)), None)
        return len(rows)

    def rotation_due(self, now: datetime, limit: int) -> list[KeyPolicyRecord]:
        """Enabled rotation policies (any instance) due by ``now``, earliest first."""
        now = aware_utc(now, "now")
        check_page(limit, 0)
        rows = [
            r
            for r in self._s.scan_all(self._t)
            if r.policy_type == KEY_POLICY_ROTATION
            and r.enabled
            and r.next_rotation_at is not None
            and r.next_rotation_at <= now
        ]
        rows.sort(key=lambda r: (r.next_rotation_at, r.instance_id, r.key_id))
        return rows[:limit]


class MemoryDeletionAuthorizationRepository:
    """Dual-authorisation approvals, one per key."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.deletion_authorizations

    def get(self, instance_id: str, key_id: str) -> DeletionAuthorizationRecord | None:
        """The key's approval, if any."""
        return self._s.get(self._t, (instance_id, key_id))

    def put(self, record: DeletionAuthorizationRecord) -> None:
        """Insert or replace the key's approval."""
        record = normalize_record(record)
        self._s.set(self._t, (record.instance_id, record.key_id), record)

    def delete(self, instance_id: str, key_id: str) -> bool:
        """Remove the key's approval; False if it had none."""
        self._s.require_writable()
        existed = self.get(instance_id, key_id) is not None
        if existed:
            self._s.set(self._t, (instance_id, key_id), None)
        return existed


class MemoryInstancePolicyRepository:
    """Instance policies; ``policy_type`` is the row id within the instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.instance_policies

    def get(self, instance_id: str, policy_type: str) -> InstancePolicyRecord | None:
        """One policy of the instance."""
        return self._s.get(self._t, (instance_id, policy_type))

    def list(self, instance_id: str) -> list[InstancePolicyRecord]:
        """The instance's policies by ``policy_type``."""
        return sorted(self._s.scan(self._t, instance_id), key=lambda r: r.policy_type)

    def put(self, record: InstancePolicyRecord) -> None:
        """Insert or replace the policy."""
        record = dataclasses.replace(normalize_record(record), enabled=bool(record.enabled))
        self._s.set(self._t, (record.instance_id, record.policy_type), record)


def _registration_record(record: RegistrationRecord) -> RegistrationRecord:
    record = normalize_record(record)
    return dataclasses.replace(record, prevent_key_deletion=bool(record.prevent_key_deletion))


def _registration_pk(instance_id: str, key_id: str, resource_crn: str) -> Pk:
    return (instance_id, (key_id, resource_crn))


def _registration_removed() -> VersionConflict:
    return VersionConflict("the registration was removed by someone else")


class MemoryRegistrationRepository:
    """Registrations; ``(key_id, resource_crn)`` is the row id within the instance."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._t = session.state.registrations

    def add(self, record: RegistrationRecord) -> None:
        """Insert; ``AlreadyExists`` if the key has a registration for the CRN."""
        record = _registration_record(record)
        pk = _registration_pk(record.instance_id, record.key_id, record.resource_crn)
        _add(self._s, self._t, pk, record, "registration")

    def get(self, instance_id: str, key_id: str, resource_crn: str) -> RegistrationRecord | None:
        """One registration."""
        return self._s.get(self._t, _registration_pk(instance_id, key_id, resource_crn))

    def update(self, record: RegistrationRecord) -> bool:
        """Replace the stored registration; False if there is none.

        If the registration was committed when this unit of work found it, commit raises
        ``VersionConflict`` should someone else have removed it meanwhile (rather than bring
        it back); concurrent updates are otherwise last-writer-wins, as in SQL.
        """
        record = _registration_record(record)
        pk = _registration_pk(record.instance_id, record.key_id, record.resource_crn)
        self._s.require_writable()
        with self._s.state.lock:
            if self._s.get(self._t, pk) is None:
                return False
            if self._s.pending(self._t, pk) is MISSING:
                table = self._t

                def check() -> None:
                    if table.get(pk) is None:
                        raise _registration_removed()

                self._s.on_commit(check)
            self._s.set(self._t, pk, record)
        return True

    def delete(self, instance_id: str, key_id: str, resource_crn: str) -> bool:
        """Remove one registration; False if there was none."""
        self._s.require_writable()
        pk = _registration_pk(instance_id, key_id, resource_crn)
        existed = self._s.get(self._t, pk) is not None
        if existed:
            self._s.set(self._t, pk, None)
        return existed

    def _matching(self, query: RegistrationQuery) -> list[RegistrationRecord]:
        check_registration_query(query)
        pattern = None if query.crn_pattern is None else crn_regex(query.crn_pattern)
        rows = [
            r
            for r in self._s.scan(self._t, query.instance_id)
            if (query.key_id is None or r.key_id == query.key_id)
            and (
                query.prevent_key_deletion is None
                or r.prevent_key_deletion == query.prevent_key_deletion
            )
            and (pattern is None or pattern.fullmatch(r.resource_crn) is not None)
        ]
        return sorted(rows, key=lambda r: (r.key_id, r.resource_crn))

    def find(self, query: RegistrationQuery) -> list[RegistrationRecord]:
        """Matching registrations by ``(key_id, resource_crn)``, paged."""
        rows = self._matching(query)
        return rows[query.offset : query.offset + query.limit]

    def count(self, query: RegistrationQuery) -> int:
        """How many registrations match (limit and offset aside)."""
        return len(self._matching(query))

    def delete_for_key(self, instance_id: str, key_id: str) -> int:
        """Remove every registration of the key; returns how many there were."""
        self._s.require_writable()
        rows = [r for r in self._s.scan(self._t, instance_id) if r.key_id == key_id]
        for r in rows:
            self._s.set(self._t, _registration_pk(instance_id, key_id, r.resource_crn), None)
        return len(rows)
