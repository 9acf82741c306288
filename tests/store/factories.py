"""Records for store tests, with defaults that can be overridden field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kyok.store.memory import MemoryStore
from kyok.store.records import (
    AliasRecord,
    BlobRecord,
    InstanceRecord,
    KeyQuery,
    KeyRecord,
    KeyRingRecord,
    KeyVersionRecord,
    TranscriptRecord,
)
from kyok.store.sql import SqlStore

#: What the ``any_store`` fixture yields.
AnyStore = MemoryStore | SqlStore

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
INSTANCE = "inst-1"


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def instance(id: str = INSTANCE, **overrides: Any) -> InstanceRecord:
    values: dict[str, Any] = {
        "id": id,
        "name": f"instance {id}",
        "unit_id": f"unit-{id}",
        "created_at": T0,
        "created_by": "admin",
    }
    values.update(overrides)
    return InstanceRecord(**values)


def key(id: str = "key-1", instance_id: str = INSTANCE, **overrides: Any) -> KeyRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "id": id,
        "name": f"name of {id}",
        "description": None,
        "extractable": False,
        "imported": False,
        "state": 1,
        "key_ring_id": "default",
        "tags": (),
        "created_at": T0,
        "created_by": "manager",
        "updated_at": T0,
        "last_action_at": T0,
        "current_version_id": f"{id}-v1",
        "version_count": 1,
    }
    values.update(overrides)
    return KeyRecord(**values)


def version(
    id: str = "ver-1", key_id: str = "key-1", number: int = 1, instance_id: str = INSTANCE
) -> KeyVersionRecord:
    return KeyVersionRecord(
        instance_id=instance_id, key_id=key_id, id=id, number=number, created_at=at(number)
    )


def blob(
    id: str = "ver-1",
    owner_id: str = "key-1",
    *,
    epoch: int = 1,
    data: bytes = b"\x01sealed",
    purpose: str = "root-key",
    instance_id: str = INSTANCE,
) -> BlobRecord:
    return BlobRecord(
        instance_id=instance_id,
        owner_id=owner_id,
        id=id,
        purpose=purpose,
        mk_epoch=epoch,
        data=data,
    )


def alias(
    alias: str, key_id: str = "key-1", *, instance_id: str = INSTANCE, created_at: datetime = T0
) -> AliasRecord:
    return AliasRecord(
        instance_id=instance_id,
        alias=alias,
        key_id=key_id,
        created_at=created_at,
        created_by="manager",
    )


def key_ring(id: str, *, instance_id: str = INSTANCE, created_at: datetime = T0) -> KeyRingRecord:
    return KeyRingRecord(
        instance_id=instance_id, id=id, created_at=created_at, created_by="manager"
    )


def entry(n: int, *, mac: str | None = None) -> TranscriptRecord:
    return TranscriptRecord(n=n, entry=f'{{"n":{n}}}', hash=f"h{n:04d}", mac=mac)


def query(instance_id: str = INSTANCE, **overrides: Any) -> KeyQuery:
    return KeyQuery(instance_id=instance_id, **overrides)
