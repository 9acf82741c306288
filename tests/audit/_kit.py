"""Builders for audit tests: events, chains, checkpoints and exports with a real Ed25519 key."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kyok.audit import (
    AuditEvent,
    Chain,
    ChainedEvent,
    Checkpoint,
    ExportHeader,
    ExportItem,
    Initiator,
    KeySigner,
    Target,
    entry_hash,
    make_checkpoint,
)

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
INSTANCE_A = "3f1e8a52-6b0d-4c4e-9a57-0c2f6d1b7e11"
INSTANCE_B = "9b2d7c40-1e5f-4a8b-8c3d-2f6e1a0b9c77"

ACTIONS = ("kms.secrets.wrap", "kms.secrets.unwrap", "kms.keys.create", "kms.keys.rotate")


def make_event(instance_id: str, seq: int, *, fail: bool = False, **changes: object) -> AuditEvent:
    """A plausible event; ``changes`` override fields."""
    event = AuditEvent(
        instance_id=instance_id,
        seq=seq,
        event_time=T0 + timedelta(seconds=seq),
        action=ACTIONS[seq % len(ACTIONS)],
        outcome="failure" if fail else "success",
        reason_code="KEY_NOT_FOUND_ERR" if fail else None,
        status=404 if fail else 200,
        initiator=Initiator("ServiceId-app", "service", "api_key", "192.0.2.10"),
        target=Target(f"key-{seq % 3}", "kms/key", f"name-{seq % 3}", f"v{seq % 2}"),
        correlation_id=f"corr-{seq // 2}",
        request_id=f"req-{seq}",
        detail=(("alias", f"alias-{seq}"),),
    )
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[arg-type]


def build_ledger(
    signer: KeySigner,
    n: int,
    checkpoint_at: Sequence[int],
    *,
    instance_id: str = INSTANCE_A,
    first_seq: int = 0,
) -> tuple[ExportHeader, list[ExportItem]]:
    """``n`` events of ``instance_id`` from seq 0, with checkpoints after the given seqs; the
    export holds seqs ``first_seq..n-1``."""
    chain = Chain.new(instance_id)
    items: list[ExportItem] = []
    for seq in range(n):
        chained = chain.append(make_event(instance_id, seq))
        if seq >= first_seq:
            items.append(chained)
        if seq in checkpoint_at and seq >= first_seq:
            items.append(make_checkpoint(signer, chained, issued_at=T0 + timedelta(seconds=seq)))
    header = ExportHeader(instance_id, first_seq, n - 1, T0 + timedelta(hours=1))
    return header, items


def rehash(items: list[ExportItem], start: int) -> list[ExportItem]:
    """Recompute every event hash from position ``start`` on (an attacker without the key)."""
    out = list(items[:start])
    prev = next(
        (i.hash for i in reversed(out) if isinstance(i, ChainedEvent)),
        None,
    )
    for item in items[start:]:
        if isinstance(item, ChainedEvent):
            p = prev if prev is not None else item.prev_hash
            item = ChainedEvent(item.event, p, entry_hash(p, item.event))
            prev = item.hash
        out.append(item)
    return out


def event_index(items: Sequence[ExportItem], seq: int) -> int:
    """Position of the event with ``seq``."""
    return next(i for i, x in enumerate(items) if isinstance(x, ChainedEvent) and x.seq == seq)


def checkpoint_index(items: Sequence[ExportItem], seq: int) -> int:
    """Position of the checkpoint at ``seq``."""
    return next(i for i, x in enumerate(items) if isinstance(x, Checkpoint) and x.seq == seq)
