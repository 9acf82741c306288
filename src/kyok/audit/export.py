"""The export file (``kyok-audit-export/1``): JSON Lines an auditor verifies offline.

Line 1 is the header, then the items in seq order, a checkpoint right after the event it covers::

    {"type":"header","format":"kyok-audit-export/1","instanceId":"...",
     "range":{"fromSeq":0,"toSeq":12,"fromTime":"...Z"|null,"toTime":"...Z"|null},
     "exportedAt":"...Z"}
    {"type":"event", <AuditEvent.to_json() members>, "prevHash":"<hex>", "hash":"<hex>"}
    {"type":"checkpoint", <Checkpoint.to_json() members>}

Each line is written as ``canonical_json``; readers accept any JSON whitespace. ``fromSeq`` and
``toSeq`` are the first and last event seq in the file (both ``null`` for an export without
events); ``fromTime``/``toTime`` record the time range that was asked for, if any.

The header is not signed: it states what the file claims to hold, and the verifier holds the
items to that claim (a missing event inside the range, or at its end, is a "missing range").
The signed checkpoints are what protect against an editor who also rewrites the header; see
:mod:`kyok.audit.verify` for the rules.

:func:`build_export` chooses the items for a time range from a run of stored events and
checkpoints: it rounds the end of the range *up* to the first checkpoint that covers it, so an
export normally ends with a signed checkpoint.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from kyok.audit.chain import ChainedEvent
from kyok.audit.checkpoint import Checkpoint
from kyok.audit.errors import ExportMalformed
from kyok.audit.event import format_time, parse_time
from kyok.crypto.encoding import canonical_json

__all__ = [
    "EXPORT_FORMAT",
    "AuditExport",
    "ExportHeader",
    "ExportItem",
    "build_export",
    "dumps_export",
    "loads_export",
    "read_export",
    "write_export",
]

EXPORT_FORMAT: Final = "kyok-audit-export/1"

ExportItem = ChainedEvent | Checkpoint


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """The first line of an export: what it claims to hold."""

    instance_id: str
    from_seq: int | None
    to_seq: int | None
    exported_at: datetime
    from_time: datetime | None = None
    to_time: datetime | None = None

    def __post_init__(self) -> None:
        if (self.from_seq is None) != (self.to_seq is None):
            raise ValueError("fromSeq and toSeq are both set or both null")
        if (
            self.from_seq is not None
            and self.to_seq is not None
            and (self.from_seq < 0 or self.to_seq < self.from_seq)
        ):
            raise ValueError("the seq range must satisfy 0 <= fromSeq <= toSeq")

    def to_json(self) -> dict[str, Any]:
        """The header line's JSON object."""
        return {
            "type": "header",
            "format": EXPORT_FORMAT,
            "instanceId": self.instance_id,
            "range": {
                "fromSeq": self.from_seq,
                "toSeq": self.to_seq,
                "fromTime": None if self.from_time is None else format_time(self.from_time),
                "toTime": None if self.to_time is None else format_time(self.to_time),
            },
            "exportedAt": format_time(self.exported_at),
        }

    @classmethod
    def from_json(cls, obj: object) -> ExportHeader:
        """Parse the header line's object.

        Raises:
            ValueError: not a kyok-audit-export/1 header.
        """
        if not isinstance(obj, dict) or obj.get("type") != "header":
            raise ValueError("the first line is not an export header")
        if obj.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not a {EXPORT_FORMAT} file")
        if set(obj) != {"type", "format", "instanceId", "range", "exportedAt"}:
            raise ValueError("the header has missing or unknown members")
        rng = obj["range"]
        if not isinstance(rng, dict) or set(rng) != {"fromSeq", "toSeq", "fromTime", "toTime"}:
            raise ValueError("the header range has missing or unknown members")
        for name in ("fromSeq", "toSeq"):
            value = rng[name]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"range {name} must be an integer or null")
        if not isinstance(obj["instanceId"], str) or not obj["instanceId"]:
            raise ValueError("the header instanceId must be a string")
        return cls(
            instance_id=obj["instanceId"],
            from_seq=rng["fromSeq"],
            to_seq=rng["toSeq"],
            exported_at=parse_time(obj["exportedAt"], "exportedAt"),
            from_time=None if rng["fromTime"] is None else parse_time(rng["fromTime"], "fromTime"),
            to_time=None if rng["toTime"] is None else parse_time(rng["toTime"], "toTime"),
        )


@dataclass(frozen=True, slots=True)
class AuditExport:
    """A parsed export: its header and its items in file order."""

    header: ExportHeader
    items: tuple[ExportItem, ...]


def _item_json(item: ExportItem) -> dict[str, Any]:
    if isinstance(item, ChainedEvent):
        return {"type": "event", **item.to_json()}
    return {"type": "checkpoint", **item.to_json()}


def dumps_export(header: ExportHeader, items: Iterable[ExportItem]) -> bytes:
    """The export file's bytes: one ``canonical_json`` line per header and item."""
    lines = [canonical_json(header.to_json())]
    lines.extend(canonical_json(_item_json(item)) for item in items)
    return b"\n".join(lines) + b"\n"


def loads_export(data: bytes | str) -> AuditExport:
    """Parse an export file's content.

    Raises:
        ExportMalformed: a line that is not JSON or not a header/event/checkpoint (names it).
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    header: ExportHeader | None = None
    items: list[ExportItem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise ExportMalformed("not JSON", line=lineno) from None
        try:
            if header is None:
                header = ExportHeader.from_json(obj)
                continue
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            kind = obj.get("type")
            body = {k: v for k, v in obj.items() if k != "type"}
            if kind == "event":
                items.append(ChainedEvent.from_json(body))
            elif kind == "checkpoint":
                items.append(Checkpoint.from_json(body))
            else:
                raise ValueError("type is neither event nor checkpoint")
        except (ValueError, TypeError) as exc:
            raise ExportMalformed(_short(str(exc)), line=lineno) from None
    if header is None:
        raise ExportMalformed("the file is empty (no header)")
    return AuditExport(header, tuple(items))


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_export(
    path: str | os.PathLike[str], header: ExportHeader, items: Iterable[ExportItem]
) -> None:
    """Write an export file atomically, readable by its owner only (0600).

    The content goes to a temporary file in the same directory, which is synced and then
    renamed over ``path``; a crash leaves either the old file or the new one.
    """
    target = Path(path)
    data = dumps_export(header, items)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def read_export(path: str | os.PathLike[str]) -> AuditExport:
    """Read and parse an export file.

    Raises:
        ExportMalformed: the content is not a kyok-audit-export/1 file.
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        return loads_export(data)
    except UnicodeDecodeError:
        raise ExportMalformed("the file is not UTF-8") from None


def build_export(
    instance_id: str,
    events: Sequence[ChainedEvent],
    checkpoints: Sequence[Checkpoint],
    *,
    exported_at: datetime,
    from_time: datetime | None = None,
    to_time: datetime | None = None,
) -> tuple[ExportHeader, list[ExportItem]]:
    """Choose the items of an export for a time range (pure).

    Args:
        instance_id: the instance.
        events: a run of the instance's stored events with consecutive seqs, oldest first, long
            enough to reach past ``to_time`` up to the checkpoint that covers it.
        checkpoints: the stored checkpoints of that run (any order).
        exported_at: now.
        from_time: the first event exported is the first one at or after this time.
        to_time: the last event asked for is the last one at or before this time. The export
            then runs on to the first checkpoint at or after it (if ``events`` reach it), so the
            end of the range is covered by a signature.

    Returns:
        The header and the items, in seq order, each checkpoint right after its event.
    """
    for before, after in itertools.pairwise(events):
        if after.seq != before.seq + 1:
            raise ValueError("events must have consecutive seqs")
    selected = [
        i
        for i, e in enumerate(events)
        if (from_time is None or e.event.event_time >= from_time)
        and (to_time is None or e.event.event_time <= to_time)
    ]
    mine = sorted((c for c in checkpoints if c.instance_id == instance_id), key=lambda c: c.seq)
    if not selected:
        header = ExportHeader(instance_id, None, None, exported_at, from_time, to_time)
        return header, []
    first, last = selected[0], selected[-1]
    end_seq = events[last].seq
    cover = next((c.seq for c in mine if c.seq >= end_seq), None)
    if cover is not None and cover <= events[-1].seq:
        last = last + (cover - end_seq)
    chosen = events[first : last + 1]
    by_seq: dict[int, Checkpoint] = {}
    for c in mine:
        by_seq.setdefault(c.seq, c)
    items: list[ExportItem] = []
    for e in chosen:
        items.append(e)
        if e.seq in by_seq:
            items.append(by_seq[e.seq])
    header = ExportHeader(
        instance_id, chosen[0].seq, chosen[-1].seq, exported_at, from_time, to_time
    )
    return header, items
