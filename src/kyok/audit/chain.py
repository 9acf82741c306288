"""The per-instance hash chain of audit events.

::

    genesis(instance) = SHA-256("kyok/audit/genesis/v1" || lp(utf8(instance_id)))
    hash(event)       = SHA-256("kyok/audit/v1" || lp(prev_hash, canonical_json(event.to_json())))

``prev_hash`` of event 0 is ``genesis(instance)``; of event ``n`` it is ``hash(event n-1)``. All
hashes are the 32 raw bytes inside the construction and lowercase hex in JSON. The genesis value
depends on the instance, so the chains of two instances cannot be spliced at their start; every
event also names its instance and its ``seq`` inside the hashed bytes, so an event cannot be moved
to another instance or another position without changing its hash.

:class:`ChainHead` is the pure state of a chain (instance, next seq, head hash).
:class:`Chain` is a small mutable holder for a writer; for group commit it can
:meth:`~Chain.prepare` a batch without moving, and :meth:`~Chain.advance` once the batch is
committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, NamedTuple

from kyok.audit.event import AuditEvent
from kyok.crypto.encoding import ct_equal, lp

__all__ = [
    "CHAIN_LABEL",
    "GENESIS_LABEL",
    "Chain",
    "ChainHead",
    "ChainLink",
    "ChainedEvent",
    "EncodedEvent",
    "entry_hash",
    "entry_hash_of",
    "genesis_hash",
    "parse_hash",
]

CHAIN_LABEL: Final = b"kyok/audit/v1"
GENESIS_LABEL: Final = b"kyok/audit/genesis/v1"
HASH_LEN: Final = 32


def genesis_hash(instance_id: str) -> bytes:
    """The ``prev_hash`` of an instance's event 0."""
    return hashlib.sha256(GENESIS_LABEL + lp(instance_id.encode("utf-8"))).digest()


def entry_hash(prev_hash: bytes, event: AuditEvent) -> bytes:
    """The chain hash of ``event`` placed after ``prev_hash``."""
    return entry_hash_of(prev_hash, event.canonical_bytes())


def entry_hash_of(prev_hash: bytes, canonical: bytes) -> bytes:
    """The chain hash of an event whose ``canonical_bytes()`` are ``canonical``."""
    if len(prev_hash) != HASH_LEN:
        raise ValueError("a chain hash is 32 bytes")
    return hashlib.sha256(CHAIN_LABEL + lp(prev_hash, canonical)).digest()


def parse_hash(text: object, what: str) -> bytes:
    """32 bytes from 64 lowercase hex digits (``ValueError`` otherwise)."""
    if (
        not isinstance(text, str)
        or len(text) != 2 * HASH_LEN
        or text.strip("0123456789abcdef") != ""
    ):
        raise ValueError(f"{what} is not 64 lowercase hex digits")
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An event with its place in the chain.

    Attributes:
        event: the event.
        prev_hash: the hash of the event before (or the genesis hash).
        hash: this entry's hash as recorded (a verifier recomputes it: :meth:`hash_ok`).
    """

    event: AuditEvent
    prev_hash: bytes
    hash: bytes

    @property
    def seq(self) -> int:
        """The event's seq."""
        return self.event.seq

    def computed_hash(self) -> bytes:
        """``entry_hash(prev_hash, event)``: what ``hash`` must be."""
        return entry_hash(self.prev_hash, self.event)

    def hash_ok(self) -> bool:
        """True when the recorded hash is the hash of the content."""
        return ct_equal(self.computed_hash(), self.hash)

    def to_json(self) -> dict[str, Any]:
        """The event's JSON plus ``prevHash`` and ``hash`` (hex)."""
        return {**self.event.to_json(), "prevHash": self.prev_hash.hex(), "hash": self.hash.hex()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ChainedEvent:
        """Parse :meth:`to_json` (strict, see :meth:`AuditEvent.from_json`).

        Raises:
            ValueError: malformed.
        """
        if not isinstance(obj, Mapping) or "prevHash" not in obj or "hash" not in obj:
            raise ValueError("a chained event has prevHash and hash")
        body = {k: v for k, v in obj.items() if k not in ("prevHash", "hash")}
        return cls(
            AuditEvent.from_json(body),
            parse_hash(obj["prevHash"], "prevHash"),
            parse_hash(obj["hash"], "hash"),
        )


class EncodedEvent(NamedTuple):
    """An event as a chain writer needs it: its canonical bytes cut around its ``seq``
    (:meth:`AuditEvent.canonical_parts`) and the members the store repeats in columns. The
    writer that places it joins ``head + digits of seq + tail``, exactly the bytes
    :meth:`AuditEvent.canonical_bytes` gives at that seq, without the event itself (so a
    multi-worker node's ledger writer never rebuilds events its workers made)."""

    instance_id: str
    event_time: datetime
    action: str
    outcome: str
    head: bytes
    tail: bytes

    @classmethod
    def of(cls, event: AuditEvent) -> EncodedEvent:
        """``event``, encoded (its own ``seq`` plays no part)."""
        head, tail = event.canonical_parts()
        return cls(event.instance_id, event.event_time, event.action, event.outcome, head, tail)

    def body(self, seq: int) -> bytes:
        """The canonical bytes of the event at position ``seq``."""
        return b"%b%d%b" % (self.head, seq, self.tail)


class ChainLink(NamedTuple):
    """Where an appended event went: its instance, ``seq``, the hash before it and its own."""

    instance_id: str
    seq: int
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: the next event gets ``next_seq`` and links to ``hash``."""

    instance_id: str
    next_seq: int
    hash: bytes

    @classmethod
    def genesis(cls, instance_id: str) -> ChainHead:
        """The head of an empty chain."""
        return cls(instance_id, 0, genesis_hash(instance_id))

    @classmethod
    def after(cls, last: ChainedEvent) -> ChainHead:
        """The head right after ``last`` (to resume a stored chain)."""
        return cls(last.event.instance_id, last.seq + 1, last.hash)

    @property
    def last_seq(self) -> int | None:
        """The seq of the newest event, or None for an empty chain."""
        return self.next_seq - 1 if self.next_seq else None

    def link(self, event: AuditEvent, *, renumber: bool = False) -> ChainedEvent:
        """Chain ``event`` after this head (pure: the head does not change).

        Args:
            event: the event; its ``seq`` must be ``next_seq`` unless ``renumber``.
            renumber: give the event ``next_seq`` instead of checking it.

        Raises:
            ValueError: another instance, or the wrong seq.
        """
        if event.instance_id != self.instance_id:
            raise ValueError("the event belongs to another instance")
        if renumber:
            event = replace(event, seq=self.next_seq)
        elif event.seq != self.next_seq:
            raise ValueError(f"expected seq {self.next_seq}, got {event.seq}")
        return ChainedEvent(event, self.hash, entry_hash(self.hash, event))

    def extend(
        self, events: Iterable[AuditEvent], *, renumber: bool = False
    ) -> tuple[list[ChainedEvent], ChainHead]:
        """Chain ``events`` in order; returns them and the head after them (pure)."""
        head = self
        out: list[ChainedEvent] = []
        for event in events:
            chained = head.link(event, renumber=renumber)
            out.append(chained)
            head = ChainHead.after(chained)
        return out, head


class Chain:
    """A writer's chain: holds the head and moves it as events are appended.

    Not thread-safe: one writer (the ledger sink's committer) owns it.
    """

    def __init__(self, head: ChainHead) -> None:
        self._head = head

    @classmethod
    def new(cls, instance_id: str) -> Chain:
        """An empty chain for ``instance_id``."""
        return cls(ChainHead.genesis(instance_id))

    @classmethod
    def resume(cls, last: ChainedEvent) -> Chain:
        """A chain continuing after the stored event ``last``."""
        return cls(ChainHead.after(last))

    @property
    def head(self) -> ChainHead:
        """The current head."""
        return self._head

    @property
    def next_seq(self) -> int:
        """The seq the next event gets."""
        return self._head.next_seq

    def append(self, event: AuditEvent, *, renumber: bool = False) -> ChainedEvent:
        """Chain one event and move the head past it (see :meth:`ChainHead.link`)."""
        chained = self._head.link(event, renumber=renumber)
        self._head = ChainHead.after(chained)
        return chained

    def prepare(
        self, events: Iterable[AuditEvent], *, renumber: bool = True
    ) -> tuple[list[ChainedEvent], ChainHead]:
        """Chain a batch without moving the head; :meth:`advance` after the batch is committed.

        With ``renumber`` (the default) the events get consecutive seqs from ``next_seq``.
        """
        return self._head.extend(events, renumber=renumber)

    def advance(self, expected: ChainHead, new: ChainHead) -> None:
        """Move the head from ``expected`` to ``new`` (a prepared batch was committed).

        Raises:
            ValueError: the head is no longer ``expected`` (another batch went first), or ``new``
                does not continue it.
        """
        if expected != self._head:
            raise ValueError("the chain moved since the batch was prepared")
        if new.instance_id != expected.instance_id or new.next_seq < expected.next_seq:
            raise ValueError("the new head does not continue the chain")
        self._head = new
