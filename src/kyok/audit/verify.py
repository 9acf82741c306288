"""Offline verification of an audit export: needs the file and the audit public key, nothing else.

The verifier walks the items in file order and stops at the first problem, which it names
precisely (:class:`Problem`: kind, seq, what was expected and what was found; hashes, seqs and ids
only, never event content). In order, for each event:

1. it belongs to the export's instance (``wrong-instance``);
2. its seq is the next one (``duplicate``, ``reordered`` when the expected seq comes later in the
   file, ``missing-range a..b`` when it does not, ``out-of-range`` beyond the header's range);
3. its recorded hash is the hash of its content (``altered``);
4. its ``prevHash`` is the hash of the event before, or for seq 0 the genesis hash of the
   instance (``broken-link``). An export that starts after seq 0 has nothing to link its first
   event to; the checkpoints after it vouch for it (a warning says so).

For each checkpoint: it names the export's instance (``wrong-instance``), its signature verifies
under a given key whose fingerprint is its ``keyId`` (``forged-checkpoint``), it comes right after
the event it covers (``missing-range`` when that event is absent, ``reordered`` otherwise), and its
``headHash`` is that event's hash (``checkpoint-mismatch``). A valid checkpoint at ``n``
authenticates every event up to ``n`` (``last_verified_seq``).

At the end: the events must run to the header's ``toSeq`` (``missing-range``); and the **tail
rule**: events after the last valid checkpoint can be cut off, or rewritten, by anyone who can edit
the file, without a trace. So an export whose last event is not covered by a checkpoint is refused
(``unsigned-tail a..b``) unless the caller passes ``allow_unsigned_tail`` (``kyok audit verify
--allow-unsigned-tail``), which turns it into a warning. Exports made by ``build_export`` end at a
checkpoint whenever one exists.

Truncation that also rewrites the header so that the file ends at an older checkpoint is
undetectable from the file alone; the auditor who knows when the export was asked for passes
``not_before`` (``--not-before TIME``), and the newest valid checkpoint must have been issued at or
after it (``stale``). The exporter signs a fresh checkpoint when it exports up to the head.

Dropping an intermediate checkpoint loses nothing (a later one covers the same events) and is not
reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from kyok.audit.chain import ChainedEvent, genesis_hash
from kyok.audit.checkpoint import Checkpoint
from kyok.audit.errors import ExportMalformed
from kyok.audit.event import format_time
from kyok.audit.export import AuditExport, ExportHeader, ExportItem, read_export
from kyok.crypto.encoding import ct_equal
from kyok.crypto.errors import InvalidSignature
from kyok.crypto.sign import VerifyingKey

__all__ = ["Problem", "ProblemKind", "PublicKeys", "VerifyReport", "verify", "verify_file"]

PublicKeys = VerifyingKey | bytes | str | Iterable[VerifyingKey]


class ProblemKind(StrEnum):
    """What kind of damage was found."""

    MALFORMED = "malformed"
    WRONG_INSTANCE = "wrong-instance"
    MISSING_RANGE = "missing-range"
    DUPLICATE = "duplicate"
    REORDERED = "reordered"
    OUT_OF_RANGE = "out-of-range"
    ALTERED = "altered"
    BROKEN_LINK = "broken-link"
    FORGED_CHECKPOINT = "forged-checkpoint"
    CHECKPOINT_MISMATCH = "checkpoint-mismatch"
    UNSIGNED_TAIL = "unsigned-tail"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``message`` is for people; the other fields are for programs."""

    kind: ProblemKind
    seq: int | None
    message: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class VerifyReport:
    """The result of :func:`verify`.

    Attributes:
        ok: no problem was found.
        problems: the first problem (verification stops there); empty when ``ok``.
        warnings: what the auditor should know although nothing is broken.
        events: event lines checked (up to the first problem).
        checkpoints: valid checkpoints found (up to the first problem).
        last_verified_seq: the seq of the newest valid checkpoint: events up to it are
            authenticated. None when there is none.
        instance_id: the instance the export is for.
    """

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    events: int = 0
    checkpoints: int = 0
    last_verified_seq: int | None = None
    instance_id: str | None = None

    @property
    def first_problem(self) -> Problem | None:
        """The first problem, or None."""
        return self.problems[0] if self.problems else None


def _keys(public_key: PublicKeys) -> dict[str, VerifyingKey]:
    if isinstance(public_key, VerifyingKey):
        found = [public_key]
    elif isinstance(public_key, bytes | str):
        pem = public_key.encode("ascii") if isinstance(public_key, str) else public_key
        found = [VerifyingKey.from_pem(pem)]
    else:
        found = list(public_key)
    if not found or not all(isinstance(k, VerifyingKey) for k in found):
        raise ValueError("give at least one audit verifying key")
    return {k.fingerprint: k for k in found}


def _hex(h: bytes) -> str:
    return h.hex()


def _range(a: int, b: int) -> str:
    return f"{a}" if a == b else f"{a}..{b}"


def verify(
    items: Sequence[ExportItem],
    public_key: PublicKeys,
    *,
    header: ExportHeader | None = None,
    instance_id: str | None = None,
    allow_unsigned_tail: bool = False,
    not_before: datetime | None = None,
) -> VerifyReport:
    """Verify exported events and checkpoints offline.

    Args:
        items: events and checkpoints in file order.
        public_key: the instance's audit verifying key (a :class:`VerifyingKey`, PEM bytes or
            text), or several keys (a rotated audit key).
        header: the export's header; its range is then held to (recommended).
        instance_id: the instance the auditor expects; by default the header's (or the first
            item's).
        allow_unsigned_tail: report events after the last checkpoint as a warning, not a problem.
        not_before: the newest valid checkpoint must have been issued at or after this time.

    Returns:
        The report; ``ok`` only when nothing is wrong.
    """
    keys = _keys(public_key)
    report = VerifyReport(ok=False)

    def fail(
        kind: ProblemKind,
        seq: int | None,
        message: str,
        expected: str | None = None,
        found: str | None = None,
    ) -> VerifyReport:
        report.problems.append(Problem(kind, seq, message, expected, found))
        report.ok = False
        return report

    first_instance = next(
        (i.event.instance_id if isinstance(i, ChainedEvent) else i.instance_id for i in items),
        None,
    )
    expected_instance = instance_id or (header.instance_id if header else first_instance)
    report.instance_id = expected_instance
    if header is not None and expected_instance != header.instance_id:
        return fail(
            ProblemKind.WRONG_INSTANCE,
            None,
            f"the export is for instance {header.instance_id}, not {expected_instance}",
            expected_instance,
            header.instance_id,
        )
    event_seqs = {i.seq for i in items if isinstance(i, ChainedEvent)}
    seen: set[int] = set()
    prev: ChainedEvent | None = None
    newest_checkpoint: Checkpoint | None = None

    for item in items:
        if isinstance(item, ChainedEvent):
            e, seq = item.event, item.seq
            if e.instance_id != expected_instance:
                return fail(
                    ProblemKind.WRONG_INSTANCE,
                    seq,
                    f"event at seq {seq} belongs to instance {e.instance_id}, "
                    f"not {expected_instance}",
                    expected_instance,
                    e.instance_id,
                )
            if prev is None:
                want = header.from_seq if header is not None else seq
                if want is None:
                    return fail(
                        ProblemKind.OUT_OF_RANGE,
                        seq,
                        f"the header says the export holds no events, but seq {seq} is in it",
                        "no events",
                        str(seq),
                    )
            else:
                want = prev.seq + 1
            if seq != want:
                if seq in seen:
                    return fail(
                        ProblemKind.DUPLICATE,
                        seq,
                        f"seq {seq} appears twice",
                        str(want),
                        str(seq),
                    )
                if seq < want:
                    return fail(
                        ProblemKind.OUT_OF_RANGE,
                        seq,
                        f"seq {seq} is before the export's first seq {want}",
                        str(want),
                        str(seq),
                    )
                if want in event_seqs:
                    return fail(
                        ProblemKind.REORDERED,
                        want,
                        f"seq {want} is out of order: found seq {seq} in its place",
                        str(want),
                        str(seq),
                    )
                return fail(
                    ProblemKind.MISSING_RANGE,
                    want,
                    f"missing range {_range(want, seq - 1)}",
                    str(want),
                    str(seq),
                )
            if header is not None and header.to_seq is not None and seq > header.to_seq:
                return fail(
                    ProblemKind.OUT_OF_RANGE,
                    seq,
                    f"seq {seq} is after the export's last seq {header.to_seq}",
                    str(header.to_seq),
                    str(seq),
                )
            seen.add(seq)
            report.events += 1
            computed = item.computed_hash()
            if not ct_equal(computed, item.hash):
                return fail(
                    ProblemKind.ALTERED,
                    seq,
                    f"event at seq {seq} was altered: its content does not match its hash",
                    _hex(computed),
                    _hex(item.hash),
                )
            if prev is not None:
                link = prev.hash
            elif seq == 0:
                link = genesis_hash(expected_instance or "")
            else:
                link = None
                report.warnings.append(
                    f"the export starts at seq {seq}: the link to seq {seq - 1} cannot be "
                    "checked; the checkpoints after it vouch for it"
                )
            if link is not None and not ct_equal(link, item.prev_hash):
                what = "the hash of seq " + str(seq - 1) if seq else "the genesis hash"
                return fail(
                    ProblemKind.BROKEN_LINK,
                    seq,
                    f"broken link at seq {seq}: its prevHash is not {what}",
                    _hex(link),
                    _hex(item.prev_hash),
                )
            prev = item
            continue

        cp, seq = item, item.seq
        if cp.instance_id != expected_instance:
            return fail(
                ProblemKind.WRONG_INSTANCE,
                seq,
                f"checkpoint at seq {seq} belongs to instance {cp.instance_id}, "
                f"not {expected_instance}",
                expected_instance,
                cp.instance_id,
            )
        key = keys.get(cp.key_id)
        if key is None:
            return fail(
                ProblemKind.FORGED_CHECKPOINT,
                seq,
                f"forged checkpoint at seq {seq}: signed by key {cp.key_id[:16]}…, "
                "which is not a given audit key",
                ", ".join(sorted(keys)),
                cp.key_id,
            )
        try:
            cp.verify(key)
        except InvalidSignature:
            return fail(
                ProblemKind.FORGED_CHECKPOINT,
                seq,
                f"forged checkpoint at seq {seq}: its signature does not verify",
                "a valid signature",
                "an invalid signature",
            )
        if prev is None or seq != prev.seq:
            after = "the start" if prev is None else f"seq {prev.seq}"
            if seq not in event_seqs and (prev is None or seq > prev.seq):
                start = prev.seq + 1 if prev is not None else seq
                return fail(
                    ProblemKind.MISSING_RANGE,
                    start,
                    f"missing range {_range(start, seq)}: the checkpoint at seq {seq} "
                    f"follows {after}",
                    str(seq),
                    None if prev is None else str(prev.seq),
                )
            return fail(
                ProblemKind.REORDERED,
                seq,
                f"the checkpoint at seq {seq} is out of order: it follows {after}",
                str(seq),
                None if prev is None else str(prev.seq),
            )
        if not ct_equal(cp.head_hash, prev.hash):
            return fail(
                ProblemKind.CHECKPOINT_MISMATCH,
                seq,
                f"checkpoint does not match the chain at seq {seq}",
                _hex(prev.hash),
                _hex(cp.head_hash),
            )
        report.checkpoints += 1
        report.last_verified_seq = seq
        if newest_checkpoint is None or cp.issued_at > newest_checkpoint.issued_at:
            newest_checkpoint = cp

    if (
        header is not None
        and header.to_seq is not None
        and (prev is None or prev.seq < header.to_seq)
    ):
        start = prev.seq + 1 if prev is not None else (header.from_seq or 0)
        return fail(
            ProblemKind.MISSING_RANGE,
            start,
            f"missing range {_range(start, header.to_seq)} (the header's range ends at "
            f"seq {header.to_seq})",
            str(header.to_seq),
            "none" if prev is None else str(prev.seq),
        )
    if prev is None:
        report.warnings.append("the export holds no events")
    elif report.last_verified_seq is None or report.last_verified_seq < prev.seq:
        start = 0 if report.last_verified_seq is None else report.last_verified_seq + 1
        start = max(start, min(seen))
        message = (
            f"unsigned tail: seq {_range(start, prev.seq)} is not covered by a checkpoint "
            "(it could have been cut off or rewritten without a trace)"
        )
        if not allow_unsigned_tail:
            return fail(
                ProblemKind.UNSIGNED_TAIL,
                start,
                message,
                f"a checkpoint at seq {prev.seq}",
                "none" if report.last_verified_seq is None else str(report.last_verified_seq),
            )
        report.warnings.append(message)
    if not_before is not None and (
        newest_checkpoint is None or newest_checkpoint.issued_at < not_before
    ):
        found = "none" if newest_checkpoint is None else format_time(newest_checkpoint.issued_at)
        return fail(
            ProblemKind.STALE,
            None if newest_checkpoint is None else newest_checkpoint.seq,
            f"stale export: the newest checkpoint was issued at {found}, "
            f"before {format_time(not_before)}",
            f">= {format_time(not_before)}",
            found,
        )
    report.ok = True
    return report


def verify_file(
    path: str | os.PathLike[str],
    public_key: PublicKeys,
    *,
    instance_id: str | None = None,
    allow_unsigned_tail: bool = False,
    not_before: datetime | None = None,
) -> VerifyReport:
    """Read an export file and :func:`verify` it; a malformed file is a ``malformed`` problem.

    Raises:
        OSError: the file cannot be read.
        ValueError: ``public_key`` is not a usable public key.
    """
    keys = _keys(public_key)
    try:
        export: AuditExport = read_export(path)
    except ExportMalformed as exc:
        return VerifyReport(
            ok=False,
            problems=[Problem(ProblemKind.MALFORMED, None, f"malformed export: {exc.message}")],
        )
    return verify(
        export.items,
        list(keys.values()),
        header=export.header,
        instance_id=instance_id,
        allow_unsigned_tail=allow_unsigned_tail,
        not_before=not_before,
    )
