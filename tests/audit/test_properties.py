"""Hypothesis: random event streams verify untouched, and any single tampering is detected.

The auditor in these tests knows when the export was made (``not_before`` = the time of the final
checkpoint, which the exporter signs at export time), so even a cut that also rewrites the header
must be caught.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
    dumps_export,
    entry_hash,
    loads_export,
    make_checkpoint,
    verify,
)
from kyok.crypto.encoding import canonical_json
from kyok.crypto.sign import SigningKey

from ._kit import INSTANCE_A, INSTANCE_B, T0, rehash

SIGNER = KeySigner(SigningKey.generate())
FORGER = KeySigner(SigningKey.generate())

_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_é", min_size=1, max_size=12)

_event_fields = st.fixed_dictionaries(
    {
        "action": st.sampled_from(
            ["kms.secrets.wrap", "kms.secrets.unwrap", "kms.keys.delete", "auth.token.create"]
        ),
        "outcome": st.sampled_from(["success", "failure"]),
        "status": st.one_of(st.none(), st.sampled_from([200, 204, 400, 404, 409])),
        "reason_code": st.one_of(st.none(), st.just("KEY_NOT_FOUND_ERR")),
        "initiator": st.builds(
            Initiator,
            _text,
            st.sampled_from(["user", "service", "system"]),
            st.sampled_from(["api_key", "token", "admin_signature", "system"]),
            st.one_of(st.none(), st.just("192.0.2.7")),
        ),
        "target": st.builds(
            Target, _text, st.just("kms/key"), st.one_of(st.none(), _text), st.none() | _text
        ),
        "request_id": st.one_of(st.none(), _text),
        "detail": st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _text), max_size=2).map(
            lambda pairs: tuple(dict(pairs).items())
        ),
        "gap": st.integers(0, 5_000_000),
    }
)


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[ExportHeader, list[ExportItem]]:
    """1..20 events, checkpoints at random seqs and always at the last one."""
    fields = draw(st.lists(_event_fields, min_size=1, max_size=20))
    n = len(fields)
    cps = set(draw(st.sets(st.integers(0, n - 1), max_size=4))) | {n - 1}
    chain = Chain.new(INSTANCE_A)
    items: list[ExportItem] = []
    when = T0
    for seq, drawn in enumerate(fields):
        f: dict[str, Any] = dict(drawn)
        when += timedelta(microseconds=f.pop("gap"))
        chained = chain.append(AuditEvent(INSTANCE_A, seq, when, **f))
        items.append(chained)
        if seq in cps:
            # the final checkpoint is the one the exporter signs at export time
            issued = when + timedelta(seconds=1 if seq == n - 1 else 0, milliseconds=1)
            items.append(make_checkpoint(SIGNER, chained, issued_at=issued))
    header = ExportHeader(INSTANCE_A, 0, n - 1, when + timedelta(seconds=1, milliseconds=1))
    return header, items


def _events(items: list[ExportItem]) -> list[int]:
    return [i for i, x in enumerate(items) if isinstance(x, ChainedEvent)]


def _cps(items: list[ExportItem]) -> list[int]:
    return [i for i, x in enumerate(items) if isinstance(x, Checkpoint)]


def _edit(event: AuditEvent, how: int) -> AuditEvent:
    changes: list[dict[str, Any]] = [
        {"outcome": "failure" if event.outcome == "success" else "success"},
        {"request_id": (event.request_id or "") + "x"},
        {"event_time": event.event_time + timedelta(microseconds=1)},
        {"target": dataclasses.replace(event.target, id=event.target.id + "x")},
        {"detail": (*event.detail, ("z", "added"))},
        {"seq": event.seq + 1},
    ]
    return dataclasses.replace(event, **changes[how % len(changes)])


def _renumber(items: list[ExportItem], start: int, delta: int) -> None:
    for j in range(start, len(items)):
        x = items[j]
        if isinstance(x, ChainedEvent):
            items[j] = dataclasses.replace(x, event=dataclasses.replace(x.event, seq=x.seq + delta))


MUTATIONS = [
    "edit",
    "edit+rehash-one",
    "edit+rehash-rest",
    "delete",
    "delete+renumber+rehash",
    "swap",
    "insert",
    "insert+renumber+rehash",
    "cut-after-checkpoint",
    "cut-after-checkpoint+header",
    "drop-final-checkpoint",
    "forge-checkpoint",
    "alter-checkpoint",
    "splice-instance",
]


def _mutate(
    draw: Callable[..., Any], kind: str, header: ExportHeader, items: list[ExportItem]
) -> tuple[ExportHeader, list[ExportItem]] | None:
    """Apply one tampering; None when it is impossible on this ledger."""
    ev, cps = _events(items), _cps(items)
    pick = draw(st.integers(0, len(ev) - 1))
    i = ev[pick]
    e = items[i]
    assert isinstance(e, ChainedEvent)
    if kind.startswith("edit"):
        edited = _edit(e.event, draw(st.integers(0, 5)))
        if kind == "edit":
            items[i] = dataclasses.replace(e, event=edited)
        else:
            items[i] = ChainedEvent(edited, e.prev_hash, entry_hash(e.prev_hash, edited))
            if kind == "edit+rehash-rest":
                items = rehash(items, i)
    elif kind.startswith("delete"):
        if kind == "delete":
            del items[i]
        else:
            del items[i]
            _renumber(items, i, -1)
            items = rehash(items, i)
            if header.to_seq == 0:
                return None
            assert header.to_seq is not None
            header = dataclasses.replace(header, to_seq=header.to_seq - 1)
    elif kind == "swap":
        if len(ev) < 2:
            return None
        j = ev[draw(st.integers(0, len(ev) - 1).filter(lambda k: k != pick))]
        items[i], items[j] = items[j], items[i]
    elif kind.startswith("insert"):
        forged = dataclasses.replace(e.event, action="kms.keys.purge")
        items.insert(i, ChainedEvent(forged, e.prev_hash, entry_hash(e.prev_hash, forged)))
        if kind == "insert+renumber+rehash":
            _renumber(items, i + 1, +1)
            items = rehash(items, i)
            assert header.to_seq is not None
            header = dataclasses.replace(header, to_seq=header.to_seq + 1)
    elif kind.startswith("cut-after-checkpoint"):
        if len(cps) < 2:
            return None
        c = cps[draw(st.integers(0, len(cps) - 2))]
        items = items[: c + 1]
        if kind.endswith("+header"):
            cp = items[c]
            assert isinstance(cp, Checkpoint)
            header = dataclasses.replace(header, to_seq=cp.seq)
    elif kind == "drop-final-checkpoint":
        if _events(items)[-1] == len(items) - 1 or len(items) < 2:
            return None
        prev_is_event = isinstance(items[-2], ChainedEvent)
        if not prev_is_event:
            return None
        items = items[:-1]
    elif kind == "forge-checkpoint":
        c = cps[draw(st.integers(0, len(cps) - 1))]
        cp = items[c]
        assert isinstance(cp, Checkpoint)
        target = next(x for x in items if isinstance(x, ChainedEvent) and x.seq == cp.seq)
        assert isinstance(target, ChainedEvent)
        items[c] = make_checkpoint(FORGER, target, issued_at=cp.issued_at)
    elif kind == "alter-checkpoint":
        c = cps[draw(st.integers(0, len(cps) - 1))]
        cp = items[c]
        assert isinstance(cp, Checkpoint)
        change = draw(st.sampled_from(["head", "seq", "time", "sig"]))
        if change == "head":
            items[c] = dataclasses.replace(cp, head_hash=bytes(32))
        elif change == "seq":
            items[c] = dataclasses.replace(cp, seq=cp.seq + 1)
        elif change == "time":
            items[c] = dataclasses.replace(cp, issued_at=cp.issued_at + timedelta(seconds=1))
        else:
            sig = bytearray(cp.signature)
            sig[draw(st.integers(0, len(sig) - 1))] ^= 1 << draw(st.integers(0, 7))
            items[c] = dataclasses.replace(cp, signature=bytes(sig))
    elif kind == "splice-instance":
        # the same stream written to instance B's ledger, spliced in from event ``pick``
        other = Chain.new(INSTANCE_B)
        spliced: list[ExportItem] = []
        for x in items:
            if isinstance(x, ChainedEvent):
                b = other.append(dataclasses.replace(x.event, instance_id=INSTANCE_B))
                spliced.append(b)
            else:
                last = spliced[-1]
                assert isinstance(last, ChainedEvent)
                spliced.append(make_checkpoint(SIGNER, last, issued_at=x.issued_at))
        items = items[:i] + spliced[i:]
    return header, items


@settings(max_examples=400)
@given(ledger=ledgers(), kind=st.sampled_from(MUTATIONS), data=st.data())
def test_any_single_tampering_is_detected(
    ledger: tuple[ExportHeader, list[ExportItem]], kind: str, data: st.DataObject
) -> None:
    header, items = ledger
    final = items[-1]
    assert isinstance(final, Checkpoint)
    auditor_knows = final.issued_at
    clean = verify(items, SIGNER.public_key(), header=header, not_before=auditor_knows)
    assert clean.ok, clean.problems
    mutated = _mutate(data.draw, kind, header, list(items))
    if mutated is None:
        return
    m_header, m_items = mutated
    if (m_header, m_items) == (header, items):
        return
    report = verify(m_items, SIGNER.public_key(), header=m_header, not_before=auditor_knows)
    assert not report.ok, f"{kind} went unnoticed"
    assert report.problems and report.problems[0].message


@settings(max_examples=60)
@given(ledger=ledgers())
def test_export_text_round_trips(ledger: tuple[ExportHeader, list[ExportItem]]) -> None:
    header, items = ledger
    export = loads_export(dumps_export(header, items))
    assert export.header == header and list(export.items) == items


_any_text = st.text(min_size=1, max_size=20).filter(
    lambda t: not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in t)
)


@given(
    fields=_event_fields,
    seq=st.integers(0, 2**53),
    ident=_any_text,
    correlation=st.none() | _any_text,
)
def test_canonical_bytes_are_canonical_json(
    fields: dict[str, Any], seq: int, ident: str, correlation: str | None
) -> None:
    """The hand-written encoding is exactly canonical_json(to_json()), for any text (quotes,
    backslashes, non-ASCII, astral characters)."""
    f = dict(fields)
    when = T0 + timedelta(microseconds=f.pop("gap"))
    f["target"] = dataclasses.replace(f["target"], id=ident)
    event = AuditEvent(INSTANCE_B, seq, when, correlation_id=correlation, **f)
    assert event.canonical_bytes() == canonical_json(event.to_json())
    assert event.with_seq(seq + 1).canonical_bytes() == canonical_json(
        event.with_seq(seq + 1).to_json()
    )
