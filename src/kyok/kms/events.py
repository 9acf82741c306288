"""Domain events: what the service records about each change, for the audit ledger.

Every use case that changes something builds one :class:`KmsEvent` and hands it to the
service's :class:`~kyok.kms.ports.AuditSink` *inside the same unit of work* as the change,
before ``commit()`` (DESIGN §4). The audit issue will provide a sink that appends to the
hash-chained ledger in that transaction; until then :class:`NullAuditSink` drops events.
Events never hold key material, plaintext, ciphertext or secrets: ids, states and times only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kyok.store.ports import UnitOfWork

__all__ = ["EventAction", "KmsEvent", "NullAuditSink"]


class EventAction(StrEnum):
    """What happened."""

    INSTANCE_CREATE = "instance.create"
    KEY_CREATE = "key.create"
    KEY_ROTATE = "key.rotate"
    KEY_DISABLE = "key.disable"
    KEY_ENABLE = "key.enable"
    KEY_DELETE = "key.delete"
    KEY_RESTORE = "key.restore"
    KEY_PURGE = "key.purge"
    KEY_EXPIRE = "key.expire"
    KEY_MOVE = "key.move"
    ALIAS_CREATE = "alias.create"
    ALIAS_DELETE = "alias.delete"
    KEY_RING_CREATE = "key_ring.create"
    KEY_RING_DELETE = "key_ring.delete"
    KEY_POLICY_SET = "key.policy.set"
    KEY_SET_FOR_DELETION = "key.set_for_deletion"
    KEY_UNSET_FOR_DELETION = "key.unset_for_deletion"
    KEY_SYNC = "key.sync"
    IMPORT_TOKEN_CREATE = "import_token.create"  # noqa: S105 (an event name)
    IMPORT_TOKEN_RETRIEVE = "import_token.retrieve"  # noqa: S105 (an event name)
    IMPORT_TOKEN_EXPIRE = "import_token.expire"  # noqa: S105 (an event name)
    INSTANCE_POLICY_SET = "instance.policy.set"
    REGISTRATION_CREATE = "registration.create"
    REGISTRATION_UPDATE = "registration.update"
    REGISTRATION_DELETE = "registration.delete"
    AUDIT_SETTINGS_SET = "audit.settings.set"


@dataclass(frozen=True, slots=True)
class KmsEvent:
    """One committed change.

    Attributes:
        action: what happened.
        instance_id: the instance it happened in.
        resource_id: the key id, key ring id or instance id it happened to.
        actor_id: ``Principal.id`` of who did it (``kyok-system`` for the scheduler).
        at: when (the service clock).
        from_state: key state before (key actions only).
        to_state: key state after (key actions only; None after purge).
        key_version_id: the version made or current (create, rotate).
        detail: further non-secret facts as sorted ``(name, value)`` pairs (alias, rings, force).
    """

    action: EventAction
    instance_id: str
    resource_id: str
    actor_id: str
    at: datetime
    from_state: int | None = None
    to_state: int | None = None
    key_version_id: str | None = None
    detail: tuple[tuple[str, str], ...] = ()


class NullAuditSink:
    """Accepts events and keeps none (until the audit ledger exists)."""

    def record(self, uow: UnitOfWork, event: KmsEvent) -> None:
        """Drop ``event``.

        Args:
            uow: the change's unit of work.
            event: the event (dropped).
        """
