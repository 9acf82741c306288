"""Every tamper case is detected with the right problem kind and seq; an untouched export
verifies."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from kyok.audit import (
    ChainedEvent,
    Checkpoint,
    ExportHeader,
    ExportItem,
    KeySigner,
    ProblemKind,
    VerifyReport,
    entry_hash,
    make_checkpoint,
    verify,
)
from kyok.crypto.sign import SigningKey

from ._kit import (
    INSTANCE_A,
    INSTANCE_B,
    T0,
    build_ledger,
    checkpoint_index,
    event_index,
    make_event,
    rehash,
)

# 13 events (0..12), checkpoints after 4, 9 and 12 (the last one made at export time).
N, CPS = 13, (4, 9, 12)


@pytest.fixture
def ledger(signer: KeySigner) -> tuple[ExportHeader, list[ExportItem]]:
    return build_ledger(signer, N, CPS)


def check(
    items: list[ExportItem],
    signer: KeySigner,
    header: ExportHeader | None,
    kind: ProblemKind,
    seq: int | None,
    **kwargs: object,
) -> VerifyReport:
    report = verify(items, signer.public_key(), header=header, **kwargs)  # type: ignore[arg-type]
    assert not report.ok
    problem = report.first_problem
    assert problem is not None, report
    assert (problem.kind, problem.seq) == (kind, seq), problem.message
    assert str(problem) == problem.message
    return report


def test_untouched_export_verifies(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    report = verify(items, signer.public_key(), header=header)
    assert report.ok, report.problems
    assert report.problems == [] and report.warnings == []
    assert (report.events, report.checkpoints, report.last_verified_seq) == (13, 3, 12)
    assert report.instance_id == INSTANCE_A
    # the key can also be given as PEM, or as a list (rotated keys)
    pem = signer.public_key().to_pem()
    assert verify(items, pem, header=header).ok
    assert verify(items, pem.decode(), header=header).ok
    assert verify(items, [SigningKey.generate().verifying_key(), signer.public_key()]).ok


def test_edited_field_is_altered(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = event_index(items, 6)
    e = items[i]
    assert isinstance(e, ChainedEvent)
    items[i] = dataclasses.replace(e, event=dataclasses.replace(e.event, outcome="failure"))
    report = check(items, signer, header, ProblemKind.ALTERED, 6)
    assert report.last_verified_seq == 4
    problem = report.problems[0]
    assert problem.found == e.hash.hex() and problem.expected != problem.found


def test_edited_field_with_recomputed_hash_breaks_the_next_link(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = event_index(items, 6)
    e = items[i]
    assert isinstance(e, ChainedEvent)
    edited = dataclasses.replace(e.event, action="kms.keys.list")
    items[i] = ChainedEvent(edited, e.prev_hash, entry_hash(e.prev_hash, edited))
    check(items, signer, header, ProblemKind.BROKEN_LINK, 7)


def test_edited_field_with_whole_chain_recomputed_fails_the_next_checkpoint(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = event_index(items, 6)
    e = items[i]
    assert isinstance(e, ChainedEvent)
    items[i] = dataclasses.replace(e, event=dataclasses.replace(e.event, status=500))
    check(rehash(items, i), signer, header, ProblemKind.CHECKPOINT_MISMATCH, 9)


def test_deleted_event_is_a_missing_range(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    del items[event_index(items, 7)]
    report = check(items, signer, header, ProblemKind.MISSING_RANGE, 7)
    assert "missing range 7" in report.problems[0].message


def test_deleted_event_under_its_checkpoint(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    del items[event_index(items, 9)]  # the checkpoint at 9 now follows event 8
    check(items, signer, header, ProblemKind.MISSING_RANGE, 9)


def test_deleted_event_with_the_chain_recomputed(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    """The attacker deletes seq 7, renumbers and rehashes everything after it."""
    header, items = ledger
    i = event_index(items, 7)
    del items[i]
    for j in range(i, len(items)):
        x = items[j]
        if isinstance(x, ChainedEvent):
            items[j] = dataclasses.replace(x, event=dataclasses.replace(x.event, seq=x.seq - 1))
    items = rehash(items, i)
    header = dataclasses.replace(header, to_seq=N - 2)
    # the checkpoint at 9 now follows the event renumbered 8
    check(items, signer, header, ProblemKind.REORDERED, 9)


def test_two_events_swapped_is_reordered(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    a, b = event_index(items, 5), event_index(items, 6)
    items[a], items[b] = items[b], items[a]
    report = check(items, signer, header, ProblemKind.REORDERED, 5)
    assert "found seq 6" in report.problems[0].message


def test_inserted_forged_event_is_a_duplicate(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    """A forged event with a correct hash and link, slipped in at seq 6."""
    header, items = ledger
    prev = items[event_index(items, 5)]
    assert isinstance(prev, ChainedEvent)
    forged = make_event(INSTANCE_A, 6, action="kms.keys.delete")
    items.insert(
        event_index(items, 6), ChainedEvent(forged, prev.hash, entry_hash(prev.hash, forged))
    )
    check(items, signer, header, ProblemKind.DUPLICATE, 6)


def test_inserted_forged_event_with_everything_renumbered_and_rehashed(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = event_index(items, 6)
    for j in range(i, len(items)):
        x = items[j]
        if isinstance(x, ChainedEvent):
            items[j] = dataclasses.replace(x, event=dataclasses.replace(x.event, seq=x.seq + 1))
    items.insert(i, ChainedEvent(make_event(INSTANCE_A, 6), bytes(32), bytes(32)))
    items = rehash(items, i)
    header = dataclasses.replace(header, to_seq=N)
    # the old checkpoint "at 9" now follows the event renumbered 10: it is out of order
    check(items, signer, header, ProblemKind.REORDERED, 9)


def test_cut_tail_after_the_last_intermediate_checkpoint(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    """Everything after the checkpoint at 9 is cut off; the header still says seq 12."""
    header, items = ledger
    items = items[: checkpoint_index(items, 9) + 1]
    report = check(items, signer, header, ProblemKind.MISSING_RANGE, 10)
    assert "missing range 10..12" in report.problems[0].message


def test_final_checkpoint_dropped_leaves_an_unsigned_tail(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    del items[checkpoint_index(items, 12)]
    report = check(items, signer, header, ProblemKind.UNSIGNED_TAIL, 10)
    assert "unsigned tail: seq 10..12" in report.problems[0].message
    assert report.last_verified_seq == 9
    allowed = verify(items, signer.public_key(), header=header, allow_unsigned_tail=True)
    assert allowed.ok and any("unsigned tail: seq 10..12" in w for w in allowed.warnings)


def test_an_export_without_checkpoints_is_an_unsigned_tail(signer: KeySigner) -> None:
    header, items = build_ledger(signer, 4, ())
    check(items, signer, header, ProblemKind.UNSIGNED_TAIL, 0)
    assert verify(items, signer.public_key(), header=header, allow_unsigned_tail=True).ok


def test_cut_tail_and_rewritten_header_is_caught_by_not_before(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    """The file alone cannot show this; the auditor's "exported after" time can."""
    header, items = ledger
    items = items[: checkpoint_index(items, 9) + 1]
    header = dataclasses.replace(header, to_seq=9)
    assert verify(items, signer.public_key(), header=header).ok
    fresh_after = T0 + timedelta(seconds=12)  # the final checkpoint was signed then
    assert verify(items, signer.public_key(), header=header, not_before=T0).ok
    check(items, signer, header, ProblemKind.STALE, 9, not_before=fresh_after)


def test_checkpoint_forged_with_another_key(
    signer: KeySigner, other_signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    e9 = items[event_index(items, 9)]
    assert isinstance(e9, ChainedEvent)
    items[checkpoint_index(items, 9)] = make_checkpoint(other_signer, e9, issued_at=T0)
    report = check(items, signer, header, ProblemKind.FORGED_CHECKPOINT, 9)
    assert "not a given audit key" in report.problems[0].message


def test_checkpoint_forged_with_another_key_claiming_ours(
    signer: KeySigner, other_signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    e9 = items[event_index(items, 9)]
    assert isinstance(e9, ChainedEvent)
    cp = make_checkpoint(other_signer, e9, issued_at=T0)
    cp = dataclasses.replace(cp, key_id=signer.public_key().fingerprint)
    cp = dataclasses.replace(cp, signature=other_signer.sign(cp.message()))
    items[checkpoint_index(items, 9)] = cp
    report = check(items, signer, header, ProblemKind.FORGED_CHECKPOINT, 9)
    assert "does not verify" in report.problems[0].message


def test_checkpoint_head_altered(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = checkpoint_index(items, 4)
    cp = items[i]
    assert isinstance(cp, Checkpoint)
    items[i] = dataclasses.replace(cp, head_hash=bytes(32))
    check(items, signer, header, ProblemKind.FORGED_CHECKPOINT, 4)


def test_checkpoint_moved_is_reordered(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    cp = items.pop(checkpoint_index(items, 4))
    items.insert(event_index(items, 6) + 1, cp)
    check(items, signer, header, ProblemKind.REORDERED, 4)


def test_splice_two_instances(signer: KeySigner) -> None:
    """A's first half followed by B's second half, each with its own (valid) checkpoints."""
    header, a_items = build_ledger(signer, 10, (4, 9), instance_id=INSTANCE_A)
    _, b_items = build_ledger(signer, 10, (4, 9), instance_id=INSTANCE_B)
    spliced = a_items[: checkpoint_index(a_items, 4) + 1] + b_items[event_index(b_items, 5) :]
    report = check(spliced, signer, header, ProblemKind.WRONG_INSTANCE, 5)
    assert INSTANCE_B in report.problems[0].message
    # the same with B's events relabelled as A's: their hashes no longer match
    relabelled: list[ExportItem] = []
    for x in b_items[event_index(b_items, 5) :]:
        if isinstance(x, ChainedEvent):
            relabelled.append(
                dataclasses.replace(x, event=dataclasses.replace(x.event, instance_id=INSTANCE_A))
            )
    spliced = a_items[: checkpoint_index(a_items, 4) + 1] + relabelled
    check(spliced, signer, header, ProblemKind.ALTERED, 5)
    # relabelled and each rehashed in place: the link to A's seq 4 is broken
    spliced = a_items[: checkpoint_index(a_items, 4) + 1] + rehash(relabelled, 0)
    check(spliced, signer, header, ProblemKind.BROKEN_LINK, 5)


def test_export_of_another_instance(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    check(items, signer, header, ProblemKind.WRONG_INSTANCE, None, instance_id=INSTANCE_B)
    _, b_items = build_ledger(signer, N, CPS, instance_id=INSTANCE_B)
    check(b_items, signer, header, ProblemKind.WRONG_INSTANCE, 0)


def test_chain_of_another_instance_relabelled_fails_genesis(signer: KeySigner) -> None:
    header, b_items = build_ledger(signer, 3, (2,), instance_id=INSTANCE_B)
    relabelled: list[ExportItem] = []
    for x in b_items:
        if isinstance(x, ChainedEvent):
            relabelled.append(
                dataclasses.replace(x, event=dataclasses.replace(x.event, instance_id=INSTANCE_A))
            )
    header = dataclasses.replace(header, instance_id=INSTANCE_A)
    check(rehash(relabelled, 0), signer, header, ProblemKind.BROKEN_LINK, 0)


def test_partial_export_starting_after_zero(signer: KeySigner) -> None:
    header, items = build_ledger(signer, 13, CPS, first_seq=5)
    report = verify(items, signer.public_key(), header=header)
    assert report.ok, report.problems
    assert any("starts at seq 5" in w for w in report.warnings)
    check(items[1:], signer, header, ProblemKind.MISSING_RANGE, 5)


def test_events_beyond_the_header_range(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    check(items, signer, dataclasses.replace(header, to_seq=11), ProblemKind.OUT_OF_RANGE, 12)
    check(items, signer, dataclasses.replace(header, from_seq=1), ProblemKind.OUT_OF_RANGE, 0)
    empty = dataclasses.replace(header, from_seq=None, to_seq=None)
    check(items, signer, empty, ProblemKind.OUT_OF_RANGE, 0)


def test_empty_export(signer: KeySigner) -> None:
    header = ExportHeader(INSTANCE_A, None, None, T0)
    report = verify([], signer.public_key(), header=header)
    assert report.ok and report.warnings == ["the export holds no events"]
    check([], signer, header, ProblemKind.STALE, None, not_before=T0)
    check([], signer, ExportHeader(INSTANCE_A, 0, 3, T0), ProblemKind.MISSING_RANGE, 0)


def test_problem_messages_hold_no_event_content(
    signer: KeySigner, ledger: tuple[ExportHeader, list[ExportItem]]
) -> None:
    header, items = ledger
    i = event_index(items, 3)
    e = items[i]
    assert isinstance(e, ChainedEvent)
    items[i] = dataclasses.replace(
        e, event=dataclasses.replace(e.event, detail=(("note", "sensitive-value"),))
    )
    report = check(items, signer, header, ProblemKind.ALTERED, 3)
    p = report.problems[0]
    assert "sensitive-value" not in f"{p.message}{p.expected}{p.found}"


def test_bad_public_key_is_refused(ledger: tuple[ExportHeader, list[ExportItem]]) -> None:
    header, items = ledger
    with pytest.raises(ValueError):
        verify(items, b"not a key", header=header)
    with pytest.raises(ValueError):
        verify(items, [], header=header)
