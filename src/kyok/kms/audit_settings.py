"""An instance's audit choices: whether wrap, unwrap and rewrap fail open.

By default every call fails closed: if its event cannot be written to the ledger, the call is
refused with 503. An instance that values availability of its data plane over a complete record
may choose ``fail_open``: then wrap, unwrap and rewrap (and nothing else) are still served while
the ledger is down, and their events wait in memory (bounded) until it takes writes again. The
choice is itself a change on the record (``audit.settings.write``), written in the same
transaction as the setting.
"""

from __future__ import annotations

import threading
import time

from kyok.auth.principals import Principal
from kyok.clock import Clock
from kyok.kms.events import EventAction, KmsEvent
from kyok.kms.ports import AuditSink
from kyok.store.ports import UnitOfWorkFactory
from kyok.store.records import AuditSettingsRecord

__all__ = ["FAIL_OPEN_ACTIONS", "AuditSettings"]

#: The only actions an instance may let through while its ledger cannot be written.
FAIL_OPEN_ACTIONS = frozenset({"kms.secrets.wrap", "kms.secrets.unwrap", "kms.secrets.rewrap"})


class AuditSettings:
    """Reads (cached for ``ttl`` seconds) and writes the instances' audit settings.

    Args:
        uow_factory: units of work.
        sink: where the change's event goes (in the change's transaction).
        clock: the time of changes.
        ttl: how long a read is reused (the data plane asks on every failure only).
    """

    def __init__(
        self, uow_factory: UnitOfWorkFactory, sink: AuditSink, clock: Clock, ttl: float = 1.0
    ) -> None:
        self._uow = uow_factory
        self._sink = sink
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def get(self, instance_id: str) -> AuditSettingsRecord | None:
        """The stored settings of ``instance_id`` (None: never set, i.e. fail closed)."""
        with self._uow(read_only=True) as uow:
            return uow.audit.settings(instance_id)

    def fail_open(self, instance_id: str) -> bool:
        """Whether ``instance_id`` lets wrap/unwrap/rewrap through without the ledger.

        If even this cannot be read (the database is down), the answer is False: fail closed.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(instance_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            record = self.get(instance_id)
        except Exception:
            return False
        value = bool(record and record.fail_open)
        with self._lock:
            self._cache[instance_id] = (now, value)
        return value

    def set_fail_open(
        self, actor: Principal, instance_id: str, fail_open: bool
    ) -> AuditSettingsRecord:
        """Choose fail-open (or back to fail-closed) for ``instance_id``, on the record.

        Raises:
            AuditUnavailable: the ledger cannot be written (so the setting is not changed either).
        """
        now = self._clock.now()
        record = AuditSettingsRecord(instance_id, fail_open, now, actor.id)
        with self._uow() as uow:
            uow.audit.put_settings(record)
            self._sink.record(
                uow,
                KmsEvent(
                    EventAction.AUDIT_SETTINGS_SET,
                    instance_id,
                    instance_id,
                    actor.id,
                    now,
                    detail=(("failOpen", "true" if fail_open else "false"),),
                ),
            )
            uow.commit()
        with self._lock:
            self._cache.pop(instance_id, None)
        return record
