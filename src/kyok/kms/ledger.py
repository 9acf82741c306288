"""The audit ledger in the store: appending chained events, signed checkpoints, group commit.

* :class:`Ledger` appends events to their instances' chains inside a unit of work: it locks the
  instance's head row, links the events (:mod:`kyok.audit.chain`), writes them, moves the head
  and, when :class:`~kyok.audit.CheckpointPolicy` says one is due, adds a checkpoint signed by
  the instance's crypto unit (its audit signing key never leaves the unit). A sealed unit cannot
  sign: the events are still written and the checkpoint follows once it can.
* :class:`LedgerSink` is the :class:`~kyok.kms.ports.AuditSink` of the key service: every change
  writes its event through it *in the change's own transaction*, so a change and its event
  commit together or not at all.
* :class:`GroupCommitter` writes the events of calls that change nothing (reads, wrap/unwrap,
  failures): callers hand it an event and wait; one thread writes whatever has queued up in one
  transaction, so many concurrent requests share one commit (group commit), and each request
  returns only once the batch holding its event is durable. If the batch cannot be written the
  waiting callers get :class:`AuditUnavailable` (503): fail closed. On the SQL store it writes
  through a dedicated connection (:mod:`kyok.store.sql.ledger_writer`). A batch goes as soon
  as each event loop that queued events has gone round without queueing more (then every
  request it holds is waiting for the ledger), so batches hold all a loop had to give and no
  time is lost between the loop going idle and the commit; each loop is woken once per batch.
  In a node of several workers it runs in the ledger writer process, which commits the
  workers' encoded events itself (:meth:`GroupCommitter.write_now`) and leaves the committer
  their fail-open ones (:meth:`GroupCommitter.defer_batch_then`; see
  :mod:`kyok.bootstrap.ledger_link`).
* :class:`LedgerReader` reads it back (API, export, forwarders' feed and cursors).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from kyok.audit import (
    AuditEvent,
    ChainedEvent,
    ChainHead,
    Checkpoint,
    CheckpointPolicy,
    Initiator,
    ItemRun,
    Signer,
    Target,
)
from kyok.audit.chain import ChainLink, EncodedEvent, entry_hash_of, genesis_hash
from kyok.audit.checkpoint import checkpoint_over
from kyok.audit.event import MAX_DETAIL_VALUE
from kyok.auth.principals import SYSTEM, PrincipalKind
from kyok.clock import Clock
from kyok.crypto.encoding import canonical_json
from kyok.crypto.sign import VerifyingKey
from kyok.errors import KyokError, Unavailable, VersionConflict
from kyok.kms.events import EventAction, KmsEvent
from kyok.kms.ports import UnitDirectory
from kyok.store.ports import AuditAppendTarget, UnitOfWork, UnitOfWorkFactory
from kyok.store.records import (
    AuditCheckpointRecord,
    AuditEntryRecord,
    AuditHeadRecord,
    AuditQuery,
)

__all__ = [
    "SYSTEM_LEDGER",
    "AuditEvent",
    "AuditPublicKey",
    "AuditQuery",
    "AuditUnavailable",
    "ChainLink",
    "ChainedEvent",
    "EventWriter",
    "GroupCommitter",
    "Ledger",
    "LedgerReader",
    "LedgerSink",
    "RequestAudit",
    "call_event",
    "current_request",
    "unit_signers",
]

log = logging.getLogger("kyok.audit")

#: The public half of an instance's audit signing key (Ed25519).
AuditPublicKey = VerifyingKey

#: The ledger of events that belong to no (known) instance: failed sign-ins with an unknown
#: instance, token requests before an instance is known.
SYSTEM_LEDGER = "kyok-system"

_NO_LINK = ChainLink("", -1, b"", b"")  # a placeholder, always replaced


class AuditUnavailable(Unavailable):
    """The audit ledger cannot be written, so the request is refused (fail closed)."""

    code = "AUDIT_UNAVAILABLE_ERR"

    def __init__(self) -> None:
        super().__init__(
            "The audit ledger cannot be written right now, so the request was refused; "
            "try again later"
        )


# ------------------------------------------------------------------ the request being audited


@dataclass(slots=True)
class RequestAudit:
    """What the HTTP layer knows about the request being served, for its audit event.

    One object per request, shared (by reference) with every thread the request runs code in;
    the key service marks it ``recorded`` when it wrote the request's event with its change.
    """

    request_id: str | None = None
    correlation_id: str | None = None
    address: str | None = None
    instance_id: str | None = None
    principal_id: str | None = None
    principal_type: str | None = None
    credential: str = "api_key"
    key_version: str | None = None
    recorded: bool = False
    detail: list[tuple[str, str]] = field(default_factory=list)
    #: a batch call's per-item results (kyok.api.batch sets them; see AuditEvent.items)
    items: tuple[ItemRun, ...] = ()

    def initiator(self) -> Initiator:
        """The initiator of the request's events."""
        return _initiator(
            self.principal_id or "anonymous",
            self.principal_type or "unauthenticated",
            self.credential,
            self.address,
        )


current_request: ContextVar[RequestAudit | None] = ContextVar("kyok_request_audit", default=None)


# ------------------------------------------------------------------ appending


SignerFor = Callable[[str], Signer | None]
"""The audit signer of an instance, or None when it has none (no unit, or the system ledger)."""


class Ledger:
    """Appends events to instances' chains inside a unit of work (see the module docstring).

    Args:
        signer_for: the signer of an instance (its crypto unit).
        clock: checkpoint times.
        policy: when checkpoints are due.
    """

    def __init__(
        self, signer_for: SignerFor, clock: Clock, policy: CheckpointPolicy | None = None
    ) -> None:
        self._signer_for = signer_for
        self._clock = clock
        self.policy = policy or CheckpointPolicy()
        self._lock = threading.Lock()
        self._unloaded: set[str] = set()
        self._geneses: dict[str, AuditHeadRecord] = {}

    def _genesis(self, instance_id: str) -> AuditHeadRecord:
        genesis = self._geneses.get(instance_id)
        if genesis is None:
            genesis = AuditHeadRecord(instance_id, 0, genesis_hash(instance_id), None, None)
            if len(self._geneses) < 10_000:
                self._geneses[instance_id] = genesis
        return genesis

    def load_keys(self) -> None:
        """Load the signing keys that appends found missing (call outside any transaction)."""
        with self._lock:
            pending, self._unloaded = self._unloaded, set()
        for instance_id in sorted(pending):
            self.load_key(instance_id)  # a sealed unit: tried again after the next append

    def append(self, uow: AuditAppendTarget, events: Iterable[AuditEvent]) -> list[ChainedEvent]:
        """Chain and write ``events`` (their ``seq`` is assigned here) in ``uow``.

        Returns:
            The chained events, in the order given.
        """
        given = list(events)
        links = self.append_encoded(uow, [EncodedEvent.of(event) for event in given])
        return [
            ChainedEvent(event.with_seq(link.seq), link.prev_hash, link.hash)
            for event, link in zip(given, links, strict=True)
        ]

    def append_encoded(
        self, uow: AuditAppendTarget, events: Sequence[EncodedEvent]
    ) -> list[ChainLink]:
        """Chain and write already encoded ``events`` in ``uow`` (what :meth:`append` does,
        for a writer that holds no :class:`AuditEvent`).

        Returns:
            Where each went, in the order given.
        """
        by_instance: dict[str, list[int]] = defaultdict(list)
        for i, event in enumerate(events):
            by_instance[event.instance_id].append(i)
        links: list[ChainLink] = [_NO_LINK] * len(events)
        for instance_id in sorted(by_instance):  # one order everywhere: no lock cycles
            places = by_instance[instance_id]
            written = self._append_one(uow, instance_id, [events[i] for i in places])
            for i, link in zip(places, written, strict=True):
                links[i] = link
        return links

    def _append_one(
        self, uow: AuditAppendTarget, instance_id: str, events: Sequence[EncodedEvent]
    ) -> list[ChainLink]:
        stored = uow.audit.ensure_head(self._genesis(instance_id))
        # Each event is encoded once: the same canonical bytes are hashed and stored.
        prev = stored.hash
        seq = stored.next_seq
        links: list[ChainLink] = []
        entries: list[AuditEntryRecord] = []
        for event in events:
            body = event.body(seq)
            digest = entry_hash_of(prev, body)
            links.append(ChainLink(instance_id, seq, prev, digest))
            entries.append(
                AuditEntryRecord(
                    instance_id=instance_id,
                    seq=seq,
                    event_time=event.event_time,
                    action=event.action,
                    outcome=event.outcome,
                    body=body.decode("ascii"),
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
            seq += 1
        new_head = ChainHead(instance_id, seq, prev)
        checkpoint = self._checkpoint_if_due(stored, new_head, links[-1] if links else None)
        uow.audit.append(
            entries,
            AuditHeadRecord(
                instance_id,
                new_head.next_seq,
                new_head.hash,
                checkpoint.seq if checkpoint else stored.checkpoint_seq,
                checkpoint.issued_at if checkpoint else stored.checkpoint_at,
            ),
            stored.next_seq,
        )
        if checkpoint is not None:
            uow.audit.add_checkpoint(_checkpoint_record(checkpoint))
        return links

    def _checkpoint_if_due(
        self, stored: AuditHeadRecord, head: ChainHead, last: ChainLink | None
    ) -> Checkpoint | None:
        if last is None:
            return None
        now = self._clock.now()
        if stored.checkpoint_seq is not None and stored.checkpoint_at is not None:
            since = head.next_seq - 1 - stored.checkpoint_seq
            if since < self.policy.every_events and now - stored.checkpoint_at < timedelta(
                seconds=self.policy.every_seconds
            ):
                return None
        return self._sign(last, now)

    def _sign(self, last: ChainLink, now: datetime) -> Checkpoint | None:
        instance_id = last.instance_id
        signer = self._signer_for(instance_id)
        if signer is None:
            return None
        ready = getattr(signer, "ready", None)
        if ready is not None and not ready():
            # Loading the key may write the store, which must not happen inside the caller's
            # transaction: load it afterwards (load_keys) and sign the next time.
            with self._lock:
                self._unloaded.add(instance_id)
            return None
        try:
            return checkpoint_over(signer, instance_id, last.seq, last.hash, issued_at=now)
        except KyokError as exc:  # a sealed unit: the next append or the timer tries again
            log.info("no audit checkpoint for now (%s)", exc.code)
            return None

    def checkpoint_now(self, uow: UnitOfWork, instance_id: str) -> Checkpoint | None:
        """Sign a checkpoint over the head of ``instance_id`` now, unless it is signed already
        (then that checkpoint is returned). None for an empty ledger or when nothing can sign
        (a sealed unit, the system ledger). Load the key first (:meth:`load_key`)."""
        stored = uow.audit.head(instance_id, lock=True)
        if stored is None or stored.next_seq == 0:
            return None
        last_seq = stored.next_seq - 1
        if stored.checkpoint_seq == last_seq:
            found = uow.audit.checkpoints(instance_id, last_seq, last_seq, limit=1)
            return checkpoint_of(found[0]) if found else None
        return self._sign_head(uow, stored, self._clock.now())

    def load_key(self, instance_id: str) -> None:
        """Load (or make) the signing key of ``instance_id``; call outside any transaction."""
        signer = self._signer_for(instance_id)
        load = getattr(signer, "load", None)
        if load is not None:
            try:
                load()
            except KyokError as exc:
                log.info("audit signing key not loaded (%s)", exc.code)

    def _sign_head(
        self, uow: UnitOfWork, stored: AuditHeadRecord, now: datetime
    ) -> Checkpoint | None:
        instance_id = stored.instance_id
        last_seq = stored.next_seq - 1
        found = uow.audit.entries(AuditQuery(instance_id, after_seq=last_seq - 1, limit=1))
        if not found:
            return None
        last = found[0]
        checkpoint = self._sign(ChainLink(instance_id, last.seq, last.prev_hash, last.hash), now)
        if checkpoint is None:
            return None
        uow.audit.append(
            [],
            AuditHeadRecord(instance_id, stored.next_seq, stored.hash, last_seq, now),
            stored.next_seq,
        )
        uow.audit.add_checkpoint(_checkpoint_record(checkpoint))
        return checkpoint

    def checkpoint_stale(self, uow: UnitOfWork, instance_id: str) -> Checkpoint | None:
        """Sign a checkpoint over the head of ``instance_id`` if events after the last one are
        older than the policy's interval (the timer calls this, so a quiet ledger's tail gets
        signed too). Returns the new checkpoint, if one was made."""
        stored = uow.audit.head(instance_id, lock=True)
        if stored is None or stored.next_seq == 0:
            return None
        last_seq = stored.next_seq - 1
        if stored.checkpoint_seq == last_seq:
            return None
        now = self._clock.now()
        if stored.checkpoint_at is not None and now - stored.checkpoint_at < timedelta(
            seconds=self.policy.every_seconds
        ):
            return None
        return self._sign_head(uow, stored, now)


def _checkpoint_record(checkpoint: Checkpoint) -> AuditCheckpointRecord:
    return AuditCheckpointRecord(
        checkpoint.instance_id,
        checkpoint.seq,
        checkpoint.issued_at,
        canonical_json(checkpoint.to_json()).decode(),
    )


def chained_of(entry: AuditEntryRecord) -> ChainedEvent:
    """The :class:`ChainedEvent` a stored entry holds (as stored: a verifier checks it)."""
    return ChainedEvent(AuditEvent.from_json(json.loads(entry.body)), entry.prev_hash, entry.hash)


def checkpoint_of(record: AuditCheckpointRecord) -> Checkpoint:
    """The :class:`Checkpoint` a stored record holds."""
    return Checkpoint.from_json(json.loads(record.body))


class _UnitSigner:
    """An instance's crypto unit as a :class:`~kyok.audit.Signer`."""

    def __init__(self, unit: Any) -> None:
        self._unit = unit

    def ready(self) -> bool:
        """The key is in memory (signing needs no store access)."""
        return bool(self._unit.audit_key_loaded())

    def load(self) -> None:
        """Load (or on first use make) the key; call outside any transaction."""
        self._unit.audit_public_key()

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._unit.audit_sign(message)
        return signature

    def public_key(self) -> VerifyingKey:
        key: VerifyingKey = self._unit.audit_public_key()
        return key


def unit_signers(units: UnitDirectory) -> SignerFor:
    """``signer_for`` over the instances' crypto units (the system ledger has no signer)."""

    def signer_for(instance_id: str) -> Signer | None:
        if instance_id == SYSTEM_LEDGER:
            return None
        try:
            unit = units.for_instance(instance_id)
        except KyokError:
            return None
        return _UnitSigner(unit) if hasattr(unit, "audit_sign") else None

    return signer_for


# ------------------------------------------------------------------ events of changes


#: KmsEvent action -> (audit action, target type).
_ACTIONS: dict[EventAction, tuple[str, str]] = {
    EventAction.INSTANCE_CREATE: ("kms.instances.create", "kms/instance"),
    EventAction.KEY_CREATE: ("kms.keys.create", "kms/key"),
    EventAction.KEY_ROTATE: ("kms.keys.rotate", "kms/key"),
    EventAction.KEY_DISABLE: ("kms.keys.disable", "kms/key"),
    EventAction.KEY_ENABLE: ("kms.keys.enable", "kms/key"),
    EventAction.KEY_DELETE: ("kms.keys.delete", "kms/key"),
    EventAction.KEY_RESTORE: ("kms.keys.restore", "kms/key"),
    EventAction.KEY_PURGE: ("kms.keys.purge", "kms/key"),
    EventAction.KEY_EXPIRE: ("kms.keys.expire", "kms/key"),
    EventAction.KEY_MOVE: ("kms.keys.move", "kms/key"),
    EventAction.ALIAS_CREATE: ("kms.aliases.create", "kms/key"),
    EventAction.ALIAS_DELETE: ("kms.aliases.delete", "kms/key"),
    EventAction.KEY_RING_CREATE: ("kms.key-rings.create", "kms/key_ring"),
    EventAction.KEY_RING_DELETE: ("kms.key-rings.delete", "kms/key_ring"),
    EventAction.KEY_POLICY_SET: ("kms.policies.write", "kms/key"),
    EventAction.KEY_SET_FOR_DELETION: ("kms.keys.set-for-deletion", "kms/key"),
    EventAction.KEY_UNSET_FOR_DELETION: ("kms.keys.unset-for-deletion", "kms/key"),
    EventAction.KEY_SYNC: ("kms.keys.sync", "kms/key"),
    EventAction.IMPORT_TOKEN_CREATE: ("kms.import-token.create", "kms/import_token"),
    EventAction.IMPORT_TOKEN_RETRIEVE: ("kms.import-token.read", "kms/import_token"),
    EventAction.IMPORT_TOKEN_EXPIRE: ("kms.import-token.expire", "kms/import_token"),
    EventAction.INSTANCE_POLICY_SET: ("kms.instance-policies.write", "kms/instance"),
    EventAction.REGISTRATION_CREATE: ("kms.registrations.create", "kms/key"),
    EventAction.REGISTRATION_UPDATE: ("kms.registrations.update", "kms/key"),
    EventAction.REGISTRATION_DELETE: ("kms.registrations.delete", "kms/key"),
    EventAction.AUDIT_SETTINGS_SET: ("audit.settings.write", "audit/ledger"),
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DETAIL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def audit_event_of(event: KmsEvent, request: RequestAudit | None) -> AuditEvent:
    """The ledger event of a committed change (``seq`` is assigned when it is chained)."""
    action, target_type = _ACTIONS.get(event.action, (f"kms.{event.action}", "kms/resource"))
    if request is not None and request.principal_id == event.actor_id:
        initiator = request.initiator()
    elif event.actor_id == SYSTEM.id:
        initiator = Initiator(SYSTEM.id, PrincipalKind.SYSTEM.value, "system")
    else:
        initiator = Initiator(event.actor_id, "principal", "api_key")
    detail = list(event.detail)
    if event.from_state is not None:
        detail.append(("fromState", str(event.from_state)))
    if event.to_state is not None:
        detail.append(("toState", str(event.to_state)))
    unique: dict[str, str] = {}
    for name, value in detail:
        text = _CONTROL.sub(" ", str(value))[:MAX_DETAIL_VALUE]
        if text and _DETAIL_NAME.fullmatch(name):
            unique.setdefault(name, text)
    return AuditEvent(
        instance_id=event.instance_id,
        seq=0,
        event_time=event.at,
        action=action,
        outcome="success",
        initiator=initiator,
        target=Target(event.resource_id, target_type, key_version=event.key_version_id),
        status=None,
        correlation_id=request.correlation_id if request else None,
        request_id=request.request_id if request else None,
        detail=tuple(sorted(unique.items())[:32]),
    )


# Initiators and targets of calls are built (and checked) once per distinct value: they are
# immutable, and a busy data plane names the same few callers and keys over and over. A value
# that fails its checks raises every time (lru_cache keeps only results).


@functools.lru_cache(maxsize=4096)
def _initiator(id: str, type: str, credential: str, address: str | None) -> Initiator:
    return Initiator(id, type, credential, address)


@functools.lru_cache(maxsize=4096)
def _target(id: str, type: str, key_version: str | None) -> Target:
    return Target(id, type, key_version=key_version)


def call_event(
    request: RequestAudit,
    *,
    instance_id: str,
    action: str,
    target_id: str,
    target_type: str,
    status: int,
    reason_code: str | None,
    at: datetime,
) -> AuditEvent:
    """The ledger event of an API call that carried no change of its own (a read, a wrap, a
    failure); ``seq`` is assigned when it is chained."""
    return AuditEvent(
        instance_id=instance_id,
        seq=0,
        event_time=at,
        action=action,
        outcome="success" if status < 400 else "failure",
        initiator=request.initiator(),
        target=_target(target_id, target_type, request.key_version),
        reason_code=reason_code,
        status=status,
        correlation_id=request.correlation_id,
        request_id=request.request_id,
        detail=tuple(sorted(dict(request.detail).items())),
        items=request.items,
    )


class LedgerSink:
    """The key service's :class:`~kyok.kms.ports.AuditSink`: writes each change's event into the
    ledger in the change's own unit of work (a failure aborts the change)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def record(self, uow: UnitOfWork, event: KmsEvent) -> None:
        """Chain and write ``event`` in ``uow`` (before the service commits it)."""
        request = current_request.get()
        try:
            self._ledger.append_encoded(uow, [EncodedEvent.of(audit_event_of(event, request))])
        except VersionConflict:
            raise
        except KyokError as exc:
            log.error("the audit ledger refused an event: %s", exc.code)
            raise AuditUnavailable() from None
        if request is not None and event.instance_id == (request.instance_id or event.instance_id):
            request.recorded = True


# ------------------------------------------------------------------ group commit


class _Group:
    """Fail-open events handed over together (:meth:`GroupCommitter.defer_batch_then`) and the
    one callback that hears how all of them went: their links once every one is durable, or
    None as soon as one was dropped."""

    __slots__ = ("callback", "links", "loop", "settled", "waiting")

    def __init__(
        self,
        size: int,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[list[ChainLink] | None], None],
    ) -> None:
        self.callback = callback
        self.loop = loop
        self.links: list[ChainLink] = [_NO_LINK] * size
        self.waiting = size
        self.settled = False

    def settle(self, index: int, link: ChainLink | None) -> list[ChainLink] | bool | None:
        """Record event ``index``'s outcome; the group's result once it is known (a list, or
        None for a failure), else False."""
        if self.settled:
            return False
        if link is None:
            self.settled = True
            return None
        self.links[index] = link
        self.waiting -= 1
        if self.waiting:
            return False
        self.settled = True
        return self.links


@dataclass(slots=True)
class _Pending:
    """A queued event and who waits for it: a thread (``future``), a coroutine or a callback
    (``waiter`` on ``loop``: an asyncio future, or a function), a group of events handed over
    together (``group``, this event being its ``index``-th), or nobody (``deferred``: served
    fail-open)."""

    event: AuditEvent | EncodedEvent
    future: Future[ChainedEvent] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: Waiter | None = None
    deferred: bool = False
    group: _Group | None = None
    index: int = 0

    def encoded(self) -> EncodedEvent:
        """The event as the ledger appends it."""
        event = self.event
        return event if isinstance(event, EncodedEvent) else EncodedEvent.of(event)

    def chained(self, link: ChainLink) -> ChainedEvent:
        """The event at its place (for a thread waiting on :meth:`GroupCommitter.submit`)."""
        event = self.event
        assert isinstance(event, AuditEvent)  # futures come with events
        return ChainedEvent(event.with_seq(link.seq), link.prev_hash, link.hash)


Waiter = asyncio.Future[ChainLink] | Callable[[ChainLink | None], None]
"""Who waits on an event loop for one event: a future (failed with :class:`AuditUnavailable`
if the event was not written) or a function (called with None then). Either gets the event's
:class:`ChainLink` (its place), not a :class:`ChainedEvent`: serving only needs to know that it
is durable, and the link is already made."""

Outcome = tuple[Any, Any]
"""A waiter (an asyncio future or a function) and what it gets."""


def settle(outcomes: Iterable[Outcome]) -> None:
    """On the waiters' event loop: complete their futures, or call their functions, with what
    they get (None: not written). A function that raises does not keep the others waiting."""
    for waiter, result in outcomes:
        if not isinstance(waiter, asyncio.Future):
            try:
                waiter(result)
            except Exception:  # one caller's failure must not keep the others waiting
                log.exception("audit commit callback failed")
            continue
        if waiter.done():
            continue  # the request went away meanwhile
        if result is None:
            waiter.set_exception(AuditUnavailable())
        else:
            waiter.set_result(result)


def _notify(batch: Sequence[_Pending], links: Sequence[ChainLink] | None) -> None:
    """Tell everyone waiting for ``batch`` how it went (``links`` None: it failed). Waiters
    on an event loop are woken with one call per loop and batch, not one per event."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for i, pending in enumerate(batch):
        link = None if links is None else links[i]
        if pending.group is not None:
            result = pending.group.settle(pending.index, link)
            if result is not False:
                group = pending.group
                by_loop.setdefault(group.loop, []).append((group.callback, result))
            continue
        if pending.future is not None and not pending.future.done():
            if link is None:
                pending.future.set_exception(AuditUnavailable())
            else:
                pending.future.set_result(pending.chained(link))
        if pending.waiter is not None and pending.loop is not None:
            by_loop.setdefault(pending.loop, []).append((pending.waiter, link))
    for loop, outcomes in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(settle, outcomes)


class EventWriter(Protocol):
    """What serving needs of a node's audit writer: :class:`GroupCommitter` in one process, or
    a multi-worker node's :class:`kyok.bootstrap.ledger_link.LedgerClient`, which hands the
    events to the node's one ledger writer process."""

    def submit_then(self, event: AuditEvent, callback: Callable[[ChainLink | None], None]) -> None:
        """Queue ``event`` from the running loop; ``callback`` runs there with its place once
        durable, or None if it could not be written."""

    def submit_async(self, event: AuditEvent) -> asyncio.Future[ChainLink]:
        """Queue ``event`` from a coroutine; the future gets its place once durable, or fails
        with :class:`AuditUnavailable` if it could not be written."""

    def defer(self, event: AuditEvent) -> None:
        """Keep the event of a call served fail-open until the ledger takes it."""

    def stats(self) -> dict[str, int]:
        """Counters for metrics (events, batches, failed_batches, deferred, dropped)."""

    def stop(self, timeout: float = 10.0) -> None:
        """Write (or hand over) what is queued, then stop."""


#: The most events a fail-open instance may have waiting for the ledger to come back.
MAX_DEFERRED = 100_000


class GroupCommitter:
    """Writes queued events in batches, one transaction per batch (see the module docstring).

    Args:
        uow_factory: opens the batch's unit of work.
        ledger: chains and writes.
        max_batch: the most events in one transaction.
        attempts: how often a batch is tried before its callers are refused.
        on_commit: called (in the writer thread) after every committed batch, e.g. to wake the
            forwarders.
        commit_delay: events queued from an event loop go in one batch once the loop has
            gone round without queueing more (every request it holds waits), or at the latest
            this many seconds after the first of them (a loop that never goes idle). Each
            commit has a fixed cost, so under load fewer, larger batches cost less per event;
            events queued from threads (:meth:`submit`) go at once.
        batch: opens one group-commit transaction and commits it on leaving (the SQL store's
            dedicated writer); default: a unit of work from ``uow_factory``.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        ledger: Ledger,
        *,
        max_batch: int = 2000,
        attempts: int = 3,
        on_commit: Callable[[], None] | None = None,
        commit_delay: float = 0.0,
        batch: Callable[[], AbstractContextManager[AuditAppendTarget]] | None = None,
    ) -> None:
        self._uow = uow_factory
        self._ledger = ledger
        self._max_batch = max_batch
        self._attempts = attempts
        self._on_commit = on_commit
        self._commit_delay = commit_delay
        self._batch = batch
        self._queue: list[_Pending] = []
        self._deferred: list[_Pending] = []
        self._deferred_writing = 0  # deferred events moved into a batch, not yet committed
        self._retry_at = 0.0
        self.dropped = 0
        self._cond = threading.Condition()
        # One batch at a time: the writer thread's, or write_now's in its caller's thread.
        self._writing = threading.Lock()
        # Event loops with a flush tick scheduled, how many events were ever queued (the ticks
        # compare it), and whether a batch should go now (see _tick).
        self._ticking: set[asyncio.AbstractEventLoop] = set()
        self._queued = 0
        self._first_at = 0.0
        self._flush = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0
        self.events = 0
        self.failed_batches = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="kyok-audit-commit", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def submit(self, event: AuditEvent) -> Future[ChainedEvent]:
        """Queue ``event``; the future completes once it is committed (or fails with
        :class:`AuditUnavailable`)."""
        future: Future[ChainedEvent] = Future()
        self._enqueue(_Pending(event, future=future), flush=True)
        return future

    def submit_then(self, event: AuditEvent, callback: Callable[[ChainLink | None], None]) -> None:
        """Queue ``event`` from the running event loop; ``callback`` runs on that loop with its
        place in the chain once it is durable, or with None if it could not be written. (What
        :meth:`submit_async` does without a future per event, for the socket-level data
        plane.)"""
        loop = asyncio.get_running_loop()
        if self._enqueue(_Pending(event, loop=loop, waiter=callback), loop=loop):
            loop.call_soon(self._tick, loop, self._queued)

    def defer_batch_then(
        self, events: Sequence[EncodedEvent], callback: Callable[[list[ChainLink] | None], None]
    ) -> None:
        """Keep encoded ``events`` of calls already served fail-open, as :meth:`defer` does,
        until the ledger takes them, however long that is; ``callback`` runs once on the
        running event loop with their links once all are written, or with None as soon as one
        had to be dropped. The multi-worker node's ledger writer hands over its workers'
        fail-open events this way."""
        loop = asyncio.get_running_loop()
        if not events:
            loop.call_soon(callback, [])
            return
        group = _Group(len(events), loop, callback)
        for i, event in enumerate(events):
            self._keep(_Pending(event, deferred=True, group=group, index=i))

    def submit_async(self, event: AuditEvent) -> asyncio.Future[ChainLink]:
        """Queue ``event`` from a coroutine; await its place in the chain (or
        :class:`AuditUnavailable`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[ChainLink] = loop.create_future()
        if self._enqueue(_Pending(event, loop=loop, waiter=waiter), loop=loop):
            loop.call_soon(self._tick, loop, self._queued)
        return waiter

    def _enqueue(
        self,
        pending: _Pending,
        *,
        flush: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> bool:
        """Queue ``pending``; True when the caller must schedule a tick on ``loop``."""
        if self._thread is None:
            self.start()
        with self._cond:
            if not self._queue:
                self._first_at = time.monotonic()
            self._queue.append(pending)
            self._queued += 1
            if flush or len(self._queue) >= self._max_batch:
                self._flush = True
                self._cond.notify()
            if loop is None or loop in self._ticking:
                return False
            self._ticking.add(loop)
            return True

    def _tick(self, loop: asyncio.AbstractEventLoop, seen: int) -> None:
        """On an event loop that queued events: flush once the loop has gone round without
        queueing another one. A callback scheduled with ``call_soon`` runs after the loop has
        polled its sockets (without blocking, since a callback is ready) and run what they
        made ready; if that queued no event, every request the loop holds is waiting for the
        ledger (or for something else), so the batch goes now: batches hold everything the
        loop had to give, and no time passes between the loop going idle and the commit. A
        loop that never goes idle flushes once the oldest event has waited ``commit_delay``."""
        with self._cond:
            if self._queued != seen and time.monotonic() - self._first_at < self._commit_delay:
                again = self._queued
            else:
                self._ticking.discard(loop)
                self._flush = True
                self._cond.notify()
                return
        loop.call_soon(self._tick, loop, again)

    def defer(self, event: AuditEvent) -> None:
        """Keep ``event`` of a call that was served although the ledger could not be written
        (an instance that fails open); it is written as soon as the ledger takes writes again.
        At most :data:`MAX_DEFERRED` wait; beyond that the oldest are dropped (and counted)."""
        self._keep(_Pending(event, deferred=True))

    def _keep(self, pending: _Pending) -> None:
        if self._thread is None:
            self.start()
        dropped = None
        with self._cond:
            self._deferred.append(pending)
            if len(self._deferred) > MAX_DEFERRED:
                dropped = self._deferred.pop(0)
                self.dropped += 1
                log.error("audit events dropped while the ledger was unavailable: %d", self.dropped)
            self._cond.notify()
        if dropped is not None and dropped.group is not None:
            _notify([dropped], None)

    def stats(self) -> dict[str, int]:
        """Counters for metrics: events and batches committed, failed batches, events waiting
        (fail-open) and dropped."""
        with self._cond:
            waiting = len(self._deferred) + self._deferred_writing
        return {
            "events": self.events,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "deferred": waiting,
            "dropped": self.dropped,
        }

    @property
    def deferred(self) -> int:
        """Events served fail-open that still wait to be written."""
        with self._cond:
            return len(self._deferred) + self._deferred_writing

    def write(self, event: AuditEvent, timeout: float = 30.0) -> ChainedEvent:
        """Queue ``event`` and wait until it is committed.

        Raises:
            AuditUnavailable: it could not be written.
        """
        try:
            return self.submit(event).result(timeout)
        except AuditUnavailable:
            raise
        except Exception:
            raise AuditUnavailable() from None

    def _run(self) -> None:
        next_sweep = time.monotonic() + self._ledger.policy.every_seconds
        while True:
            with self._cond:
                if not (self._flush and self._queue) and not self._stopping:
                    self._cond.wait(timeout=1.0)
                if self._deferred and time.monotonic() >= self._retry_at:
                    self._queue[:0] = self._deferred  # older than anything queued now
                    self._deferred_writing += len(self._deferred)
                    self._deferred = []
                    self._flush = True
                if not self._queue and self._stopping:
                    return
                batch: list[_Pending] = []
                if self._flush or self._stopping:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: len(batch)]
                    self._flush = bool(self._queue)  # more than a batch: the next goes at once
            if batch:
                self._commit(batch)
            else:
                self._ledger.load_keys()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self._ledger.policy.every_seconds
                self.sign_stale()

    def sign_stale(self) -> int:
        """Sign a checkpoint over every ledger whose unsigned tail is older than the policy's
        interval, so a quiet ledger ends with a checkpoint too. Returns how many were signed."""
        signed = 0
        try:
            with self._uow(read_only=True) as uow:
                instance_ids = uow.audit.instance_ids()
            for instance_id in instance_ids:
                with self._uow() as uow:
                    if self._ledger.checkpoint_stale(uow, instance_id) is not None:
                        uow.commit()
                        signed += 1
            self._ledger.load_keys()
        except Exception as exc:  # the next sweep tries again
            log.warning(
                "audit checkpoint sweep failed: %s", getattr(exc, "code", type(exc).__name__)
            )
        return signed

    def write_now(self, events: Sequence[EncodedEvent]) -> list[ChainLink] | None:
        """Append ``events`` in one transaction in the calling thread and commit it: their
        links, in the order given, or None if the batch could not be written (after
        ``attempts`` tries). Blocks until the commit is durable, one batch at a time with the
        writer thread's. For a caller that does nothing but write the ledger (the multi-worker
        node's ledger writer, on its event loop), which saves the hand-off to the writer
        thread and back and the two threads' turns at the GIL."""
        if not events:
            return []
        links = self._write_tried(events)
        if links is not None:
            self._ledger.load_keys()
            self._woken()
        return links

    def _write_tried(self, events: Sequence[EncodedEvent]) -> list[ChainLink] | None:
        """Append ``events`` in one transaction and commit it, tried ``attempts`` times;
        None if every try failed (logged and counted)."""
        with self._writing:
            for attempt in range(1, self._attempts + 1):
                try:
                    if self._batch is not None:
                        with self._batch() as target:
                            links = self._ledger.append_encoded(target, events)
                    else:
                        with self._uow() as uow:
                            links = self._ledger.append_encoded(uow, events)
                            uow.commit()
                except Exception as exc:
                    if attempt < self._attempts:
                        time.sleep(0.01 * attempt)
                        continue
                    log.error(
                        "could not write %d audit event(s): %s",
                        len(events),
                        getattr(exc, "code", type(exc).__name__),
                    )
                    self.failed_batches += 1
                    return None
                self.batches += 1
                self.events += len(events)
                return links
        return None  # pragma: no cover - attempts >= 1

    def _woken(self) -> None:
        if self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:  # a wake-up must never fail a commit
                log.exception("audit on_commit hook failed")

    def _commit(self, batch: list[_Pending]) -> None:
        links = self._write_tried([p.encoded() for p in batch])
        if links is None:
            with self._cond:
                self._retry_at = time.monotonic() + 1.0
                back = [p for p in batch if p.deferred]
                self._deferred[:0] = back
                self._deferred_writing -= len(back)
            _notify([p for p in batch if not p.deferred], None)
            return
        written = sum(1 for p in batch if p.deferred)
        if written:
            with self._cond:
                self._deferred_writing -= written
        self._ledger.load_keys()
        _notify(batch, links)
        self._woken()


# ------------------------------------------------------------------ reading


class LedgerReader:
    """Reads the committed ledger: for the API, exports, and the forwarders (it is their
    :class:`~kyok.audit.feed.LedgerFeed` and :class:`~kyok.audit.feed.CursorStore`)."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow = uow_factory

    def events(self, query: AuditQuery) -> list[ChainedEvent]:
        """Events matching ``query``, by seq."""
        with self._uow(read_only=True) as uow:
            return [chained_of(e) for e in uow.audit.entries(query)]

    def events_as_stored(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Events matching ``query`` as JSON objects exactly as stored, parsed but not checked:
        a row someone edited into something that is no event at all still comes back (as
        ``{"instanceId", "seq", "unparsable": <stored text>}``), for the verifier to name."""
        with self._uow(read_only=True) as uow:
            entries = uow.audit.entries(query)
        out: list[dict[str, Any]] = []
        for entry in entries:
            try:
                obj = json.loads(entry.body)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                obj = {"instanceId": entry.instance_id, "seq": entry.seq, "unparsable": entry.body}
            obj["prevHash"] = bytes(entry.prev_hash).hex()
            obj["hash"] = bytes(entry.hash).hex()
            out.append(obj)
        return out

    def sign_now(self, ledger: Ledger, instance_id: str) -> Checkpoint | None:
        """Sign a checkpoint over the head of ``instance_id`` now (see
        :meth:`Ledger.checkpoint_now`)."""
        ledger.load_key(instance_id)
        with self._uow() as uow:
            checkpoint = ledger.checkpoint_now(uow, instance_id)
            uow.commit()
        return checkpoint

    def checkpoints(
        self, instance_id: str, from_seq: int | None, to_seq: int | None, limit: int = 1000
    ) -> list[Checkpoint]:
        """Checkpoints with ``from_seq <= seq <= to_seq``, by seq."""
        with self._uow(read_only=True) as uow:
            return [
                checkpoint_of(c)
                for c in uow.audit.checkpoints(instance_id, from_seq, to_seq, limit)
            ]

    def head(self, instance_id: str) -> AuditHeadRecord | None:
        """Where the ledger of ``instance_id`` stands."""
        with self._uow(read_only=True) as uow:
            return uow.audit.head(instance_id)

    # LedgerFeed
    def instance_ids(self) -> list[str]:
        """Instances with a ledger."""
        with self._uow(read_only=True) as uow:
            return uow.audit.instance_ids()

    def read_after(self, instance_id: str, after_seq: int | None, limit: int) -> list[ChainedEvent]:
        """Up to ``limit`` events after ``after_seq``."""
        return self.events(AuditQuery(instance_id, after_seq=after_seq, limit=max(1, limit)))

    # CursorStore
    def load(self, sink: str, instance_id: str) -> int | None:
        """The forwarder's cursor."""
        with self._uow(read_only=True) as uow:
            return uow.audit.cursor(sink, instance_id)

    def save(self, sink: str, instance_id: str, seq: int) -> None:
        """Move the forwarder's cursor."""
        with self._uow() as uow:
            uow.audit.save_cursor(sink, instance_id, seq)
            uow.commit()
