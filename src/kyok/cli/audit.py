"""``kyok audit``: read the instance's audit ledger, export it, and verify an export offline.

kyok audit pubkey --out audit.pem                     (the key that verifies the checkpoints)
kyok audit export --out ledger.jsonl --since 2026-01-01T00:00:00Z --until 2026-02-01T00:00:00Z
kyok audit verify ledger.jsonl --pubkey audit.pem     (offline: the file and the key, nothing else)
kyok audit tail --limit 50 --action kms.secrets.wrap --outcome failure
kyok audit tail --follow

Reading the ledger needs ``kyok.audit.read`` (a Manager, or the ``KyokAuditor`` role); every read
is itself recorded in the ledger. ``verify`` exits 0 only when the export is intact, 1 when it
names a problem (the first one), 2 when the file or the key cannot be used.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from kyok.audit import (
    AuditExport,
    ChainedEvent,
    Checkpoint,
    ExportHeader,
    ExportItem,
    ExportMalformed,
    Problem,
    ProblemKind,
    VerifyReport,
    build_export,
    read_export,
    verify,
    write_export,
)
from kyok.audit.event import format_time
from kyok.cli._output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    console,
    emit_json,
    err_console,
    fail,
    note,
)
from kyok.cli._remote import Remote, remote_command, say
from kyok.client import ClientError, KyokClient
from kyok.crypto.sign import VerifyingKey
from kyok.unit.files import write_public

__all__ = ["app"]

app = typer.Typer(
    help="The instance's audit ledger: read it, export it, verify an export offline.",
    no_args_is_help=True,
)

#: Events (and checkpoints) per request: the service's largest page.
PAGE = 1000

#: Exit code of ``verify`` when it found a problem (0 intact, 2 unusable input).
EXIT_PROBLEM = EXIT_FAILED


class Outcome(StrEnum):
    """An event's outcome."""

    SUCCESS = "success"
    FAILURE = "failure"


def _parse_time(value: str | None, option: str) -> datetime | None:
    """An RFC 3339 time with a zone, as UTC (``typer.BadParameter`` otherwise)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            "use an RFC 3339 time such as 2026-01-31T00:00:00Z", param_hint=option
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a time zone (Z or +01:00)", param_hint=option)
    return parsed.astimezone(UTC)


def _seq_range(first: int | None, last: int | None) -> str:
    if first is None or last is None:
        return "none"
    return str(first) if first == last else f"{first}..{last}"


# ---------------------------------------------------------------- pubkey


@app.command("pubkey")
@remote_command
def pubkey(
    remote: Remote,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the PEM to this file (mode 0644) instead of printing it.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print (or save) the instance's audit public key: the key `kyok audit verify` needs."""
    info = remote.client.audit_public_key()
    pem = str(info["publicKey"])
    if not pem.endswith("\n"):
        pem += "\n"
    try:
        key = VerifyingKey.from_pem(pem.encode("ascii"))
    except (UnicodeEncodeError, ValueError):
        fail("the server's audit public key is not a PEM public key")
    if info.get("keyId") is not None and info["keyId"] != key.fingerprint:
        fail("the server's audit public key does not match the key id it names")
    if out is not None:
        write_public(out, pem.encode("ascii"), overwrite=True)
        if not remote.json:
            note(f"wrote the audit public key (key id {key.fingerprint}) to {escape(str(out))}")
    if remote.json:
        emit_json(info)
    elif out is None:
        sys.stdout.write(pem)
        sys.stdout.flush()


# ---------------------------------------------------------------- export


class _Meter:
    """A progress bar on stderr, shown only on a terminal and only for long exports."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        """Show a bar for ``total`` items if there are more than one page of them."""
        if self._progress is not None or total <= PAGE or not err_console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)

    def grow(self, count: int) -> None:
        """Expect ``count`` more items."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            self._progress.update(self._task, total=(task.total or 0) + count)

    def stop(self) -> None:
        """Remove the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def _meter() -> Iterator[_Meter]:
    meter = _Meter()
    try:
        yield meter
    finally:
        meter.stop()


def _chained(obj: dict[str, Any]) -> ChainedEvent:
    try:
        return ChainedEvent.from_json(obj)
    except ValueError as exc:
        fail(f"the server sent an audit event that cannot be read (seq {obj.get('seq')}): {exc}")


def _checkpoint(obj: dict[str, Any]) -> Checkpoint:
    try:
        return Checkpoint.from_json(obj)
    except ValueError as exc:
        fail(f"the server sent a checkpoint that cannot be read (seq {obj.get('seq')}): {exc}")


def _runs(seqs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs ``(first, last)`` of sorted ``seqs``."""
    start = prev = None
    for seq in seqs:
        if start is None or prev is None:
            start = prev = seq
        elif seq == prev + 1:
            prev = seq
        else:
            yield start, prev
            start = prev = seq
    if start is not None and prev is not None:
        yield start, prev


def _fetch(
    client: KyokClient, first: int, last: int, into: dict[int, ChainedEvent], meter: _Meter
) -> None:
    """Events ``first..last`` by seq, whatever their times."""
    for obj in client.iter_audit_events(
        after_seq=first - 1 if first > 0 else None, until_seq=last, page=PAGE
    ):
        event = _chained(obj)
        into[event.seq] = event
        meter.advance()


def _sign_head(client: KyokClient) -> bool:
    """Ask the server to sign a checkpoint over its head now; False when it cannot (sealed)."""
    try:
        client.audit_sign_checkpoint()
    except ClientError:
        return False
    return True


def _cover(client: KyokClient, seq: int, wait: float) -> int | None:
    """The seq of the first checkpoint at or after ``seq``; polls up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = client.audit_checkpoints(from_seq=seq, limit=1, max_count=1)
        if found:
            value = found[0].get("seq")
            return value if isinstance(value, int) and not isinstance(value, bool) else None
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


@dataclass(frozen=True)
class Collected:
    """What :func:`collect_export` read and chose.

    Attributes:
        header: the export's header.
        items: its events and checkpoints, in seq order.
        holes: runs of seqs ``(first, last)`` inside the export's range that the server does not
            have (a broken ledger: the export holds what there is, and the verifier names it).
    """

    header: ExportHeader
    items: list[ExportItem]
    holes: list[tuple[int, int]] = field(default_factory=list)


def collect_export(
    client: KyokClient,
    *,
    since: datetime | None,
    until: datetime | None,
    wait: float = 0.0,
    sign: bool = False,
    exported_at: datetime | None = None,
) -> Collected:
    """Read what an export of ``[since, until]`` needs from the server and choose its items.

    The events in the time range up to the ledger's head (as it stood when the export began),
    any events between them whose times lie outside the range (the ledger is ordered by seq,
    and writers' clocks interleave), then on to the first checkpoint that covers the last of
    them, with every checkpoint in between (see :func:`kyok.audit.build_export`).

    Args:
        client: the SDK client.
        since: the first time (inclusive), or None.
        until: the last time (inclusive), or None.
        wait: seconds to wait for a checkpoint over the end of the range if there is none yet.
        sign: then ask the server to sign one over its head.
        exported_at: the export's time (default: now).

    Returns:
        The header and items (as :func:`~kyok.audit.build_export` chooses them), and the seqs
        the server lacks.
    """
    exported_at = exported_at or datetime.now(UTC)
    head = client.audit_head()
    instance_id = str(head.get("instanceId") or client.instance_id)
    top = int(head["nextSeq"]) - 1
    events: dict[int, ChainedEvent] = {}
    checkpoints: list[Checkpoint] = []
    if top >= 0:
        # `until` is inclusive here (as in build_export), exclusive in the API: one microsecond,
        # the ledger's resolution, makes them agree.
        server_until = None if until is None else until + timedelta(microseconds=1)
        with _meter() as meter:
            for obj in client.iter_audit_events(
                since=since, until=server_until, until_seq=top, page=PAGE
            ):
                event = _chained(obj)
                if not events:
                    meter.start("exporting audit events", top - event.seq + 1)
                events[event.seq] = event
                meter.advance()
            if events:
                first, last = min(events), max(events)
                for a, b in _runs(_missing(events, first, last)):
                    _fetch(client, a, b, events, meter)
                cover = _cover(client, last, wait)
                if cover is None and sign and _sign_head(client):
                    cover = _cover(client, last, 0.0)
                if cover is not None and cover > last:
                    meter.grow(cover - last)
                    _fetch(client, last + 1, cover, events, meter)
                end = max(events)
                checkpoints = [
                    _checkpoint(c) for c in client.audit_checkpoints(from_seq=first, to_seq=end)
                ]
    ordered = [events[s] for s in sorted(events)]
    holes = list(_runs(_missing(events, ordered[0].seq, ordered[-1].seq))) if ordered else []
    if not holes:
        return Collected(
            *build_export(
                instance_id,
                ordered,
                checkpoints,
                exported_at=exported_at,
                from_time=since,
                to_time=until,
            )
        )
    # build_export wants a run without holes; the run above is already the one it would choose
    # (from the first event in the range to the checkpoint that covers the last), so it is
    # written as it is, holes and all, for the verifier to report.
    by_seq = {c.seq: c for c in checkpoints if c.instance_id == instance_id}
    items: list[ExportItem] = []
    for event in ordered:
        items.append(event)
        if event.seq in by_seq:
            items.append(by_seq[event.seq])
    return Collected(
        ExportHeader(instance_id, ordered[0].seq, ordered[-1].seq, exported_at, since, until),
        items,
        holes,
    )


def _missing(events: dict[int, ChainedEvent], first: int, last: int) -> list[int]:
    return [s for s in range(first, last + 1) if s not in events]


@app.command("export")
@remote_command
def export(
    remote: Remote,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The export file to write (JSON Lines, mode 0600).",
            dir_okay=False,
            show_default=False,
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="The first event time (inclusive), RFC 3339 (default: the ledger's start).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="The last event time (inclusive), RFC 3339 (default: now). The export runs on "
            "to the first signed checkpoint after it.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0.0,
            help="Seconds to wait for the server to sign a checkpoint over the end of the "
            "export if there is none yet.",
        ),
    ] = 0.0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the --out file if it exists.")
    ] = False,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign/--no-sign",
            help="If no checkpoint covers the end yet, ask the server to sign one now "
            "(POST /api/v2/kyok/audit/checkpoints; the request is itself on the record).",
        ),
    ] = True,
) -> None:
    """Export the ledger for a time range to a file that `kyok audit verify` checks offline.

    The file holds the events and the signed checkpoints among them, and runs on to the first
    checkpoint after the range, so that its end is signed too."""
    start = _parse_time(since, "--since")
    end = _parse_time(until, "--until")
    if start is not None and end is not None and end < start:
        raise typer.BadParameter("--until is before --since", param_hint="--until")
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        fail(f"no such directory: {out.parent}")
    collected = collect_export(remote.client, since=start, until=end, wait=wait, sign=sign)
    header, items = collected.header, collected.items
    write_export(out, header, items)
    events = [i for i in items if isinstance(i, ChainedEvent)]
    signed = [i for i in items if isinstance(i, Checkpoint)]
    tail = [e.seq for e in events if not signed or e.seq > signed[-1].seq]
    summary: dict[str, Any] = {
        "file": str(out),
        "instanceId": header.instance_id,
        "events": len(events),
        "checkpoints": len(signed),
        "fromSeq": header.from_seq,
        "toSeq": header.to_seq,
        "signedThroughSeq": signed[-1].seq if signed else None,
        "unsignedTail": [tail[0], tail[-1]] if tail else None,
        "missing": [[a, b] for a, b in collected.holes],
        "fromTime": None if header.from_time is None else format_time(header.from_time),
        "toTime": None if header.to_time is None else format_time(header.to_time),
        "exportedAt": format_time(header.exported_at),
    }
    for a, b in collected.holes:
        note(
            f"[yellow]warning:[/] the server's ledger has no event at seq {_seq_range(a, b)}: the "
            "ledger is broken there (`kyok audit verify` reports it)"
        )
    if tail:
        note(
            f"[yellow]warning:[/] seq {_seq_range(tail[0], tail[-1])} at the end is not covered "
            "by a signed checkpoint yet (the server signs one every "
            "audit.checkpoint_every_seconds): export again later or with --wait, or verify "
            "with --allow-unsigned-tail"
        )
    if remote.json:
        emit_json(summary)
        return
    say(
        f"exported {len(events)} events and {len(signed)} checkpoints "
        f"(seq {_seq_range(header.from_seq, header.to_seq)}) of instance {header.instance_id} "
        f"to {out}"
    )


# ---------------------------------------------------------------- verify


def _load_keys(paths: Sequence[Path]) -> list[VerifyingKey]:
    keys: list[VerifyingKey] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read the public key {path}: {exc.strerror or exc}", EXIT_USAGE)
        try:
            keys.append(VerifyingKey.from_pem(data))
        except ValueError:
            fail(f"{path} is not a PEM public key", EXIT_USAGE)
    return keys


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "kind": problem.kind.value,
        "seq": problem.seq,
        "message": problem.message,
        "expected": problem.expected,
        "found": problem.found,
    }


def _report_json(report: VerifyReport, path: Path, export: AuditExport | None) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "file": str(path),
        "instanceId": report.instance_id,
        "events": report.events,
        "checkpoints": report.checkpoints,
        "lastVerifiedSeq": report.last_verified_seq,
        "fromSeq": export.header.from_seq if export else None,
        "toSeq": export.header.to_seq if export else None,
        "problems": [_problem_json(p) for p in report.problems],
        "warnings": list(report.warnings),
    }


@app.command("verify")
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="An export written by `kyok audit export`.")],
    pubkey: Annotated[
        list[Path],
        typer.Option(
            "--pubkey",
            help="The instance's audit public key (PEM, from `kyok audit pubkey`); repeat it "
            "for a rotated key.",
            show_default=False,
        ),
    ],
    allow_unsigned_tail: Annotated[
        bool,
        typer.Option(
            "--allow-unsigned-tail",
            help="Accept events after the last checkpoint (with a warning): they could have been "
            "cut off or rewritten without a trace.",
        ),
    ] = False,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            help="The instance the export must belong to (default: the one its header names).",
            show_default=False,
        ),
    ] = None,
    not_before: Annotated[
        str | None,
        typer.Option(
            "--not-before",
            help="The newest checkpoint must have been signed at or after this time (RFC 3339): "
            "catches an export cut back to an older checkpoint.",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on stdout (and nothing else).")
    ] = False,
) -> None:
    """Verify an export offline, with nothing but the file and the audit public key.

    Checks every event's hash, the links between them, every checkpoint's signature, and that
    nothing is missing, duplicated, reordered, out of range or unsigned at the end. Exit code 0 only when the export is intact; 1 names the first problem;
    2 when the file or the key cannot be used."""
    earliest = _parse_time(not_before, "--not-before")
    keys = _load_keys(pubkey)
    export: AuditExport | None = None
    try:
        export = read_export(file)
    except ExportMalformed as exc:
        report = VerifyReport(
            ok=False,
            problems=[Problem(ProblemKind.MALFORMED, None, f"malformed export: {exc.message}")],
        )
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE)
    else:
        report = verify(
            export.items,
            keys,
            header=export.header,
            instance_id=instance,
            allow_unsigned_tail=allow_unsigned_tail,
            not_before=earliest,
        )
    problem = report.first_problem
    code = EXIT_OK
    if problem is not None:
        code = EXIT_USAGE if problem.kind is ProblemKind.MALFORMED else EXIT_PROBLEM
    if json_out:
        emit_json(_report_json(report, file, export))
        raise typer.Exit(code)
    if problem is not None and problem.kind is ProblemKind.MALFORMED:
        fail(problem.message, EXIT_USAGE)
    for warning in report.warnings:
        note(f"[yellow]warning:[/] {warning}")
    if problem is None:
        assert export is not None
        range_text = (
            "no events"
            if export.header.from_seq is None
            else f"seq {_seq_range(export.header.from_seq, export.header.to_seq)}"
        )
        say(f"intact: {report.events} events, {report.checkpoints} checkpoints, {range_text}")
        raise typer.Exit(code)
    where = "" if problem.seq is None else f" at seq {problem.seq}"
    say(f"problem: {problem.kind.value}{where}: {problem.message}")
    if problem.expected is not None:
        say(f"  expected: {problem.expected}")
    if problem.found is not None:
        say(f"  found:    {problem.found}")
    raise typer.Exit(code)


# ---------------------------------------------------------------- tail


_COLUMNS = ("seq", "time", "action", "outcome", "initiator", "target")


def _member(event: dict[str, Any], name: str) -> dict[str, Any]:
    value = event.get(name)
    return value if isinstance(value, dict) else {}


def _row(event: dict[str, Any]) -> list[Any]:
    reason, initiator, target = (_member(event, name) for name in ("reason", "initiator", "target"))
    code, status = reason.get("reasonCode"), reason.get("status")
    why = None
    if code is not None:
        why = f"{code} ({status})" if status is not None else code
    elif status is not None and event.get("outcome") == "failure":
        why = str(status)
    when = event.get("eventTime")
    if isinstance(when, str) and len(when) >= 19:
        when = when[:19].replace("T", " ")  # UTC, to the second; --json has the microseconds
    outcome = event.get("outcome")
    return [
        event.get("seq"),
        when,
        event.get("action"),
        f"{outcome} {why}" if why else outcome,
        _short(initiator.get("id")),
        _short(target.get("id")),
    ]


def _short(value: object) -> object:
    """A long id cut to its first 8 characters (like a short commit id); --json has it whole."""
    if isinstance(value, str) and len(value) > 12:
        return value[:8] + "…"
    return value


def _table(events: Iterable[dict[str, Any]], *, header: bool) -> Table:
    """Events as a table; ``header=False`` for the rows that ``--follow`` adds (same widths)."""
    t = Table(box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False)
    widths = {"seq": 5, "time": 19, "action": 16, "initiator": 9, "target": 9}
    for name in _COLUMNS:
        t.add_column(
            name,
            no_wrap=name in widths,
            min_width=widths.get(name),
            overflow="fold",
            justify="right" if name == "seq" else "left",
        )
    for event in events:
        t.add_row(*(Text("-" if v is None else str(v)) for v in _row(event)))
    return t


def _print_events(events: Sequence[dict[str, Any]], remote: Remote, *, header: bool) -> None:
    if remote.json:
        for event in events:
            sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()
        return
    if events:
        console.print(_table(events, header=header))


def _newest(
    client: KyokClient,
    count: int,
    actions: Sequence[str],
    outcome: str | None,
    top: int,
) -> list[dict[str, Any]]:
    """The newest ``count`` matching events up to seq ``top`` (the API reads oldest first, so
    windows going back from ``top``, doubling, until enough match)."""
    found: list[dict[str, Any]] = []
    filtered = bool(actions) or outcome is not None
    window = max(4 * count, PAGE) if filtered else count
    high = top
    while high >= 0 and len(found) < count:
        low = max(0, high - window + 1)
        chunk = list(
            client.iter_audit_events(
                after_seq=low - 1 if low > 0 else None,
                until_seq=high,
                actions=actions,
                outcome=outcome,
                page=PAGE,
            )
        )
        found = chunk + found
        high = low - 1
        window *= 2
    return found[-count:]


def _own_read(event: dict[str, Any], me: str | None) -> bool:
    """An event of this command's own reads of the ledger (hidden while following)."""
    if me is None:
        return False
    initiator = event.get("initiator")
    action = event.get("action")
    return (
        isinstance(action, str)
        and action.startswith("audit.")
        and event.get("outcome") == "success"
        and isinstance(initiator, dict)
        and initiator.get("id") == me
    )


@app.command("tail")
@remote_command
def tail(
    remote: Remote,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C."),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, max=10000, help="How many of the newest.")
    ] = 20,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="Only this action (e.g. kms.secrets.wrap); repeat it or give a comma list.",
            show_default=False,
        ),
    ] = None,
    outcome: Annotated[
        Outcome | None,
        typer.Option("--outcome", help="Only successes or only failures.", show_default=False),
    ] = None,
    show_own_reads: Annotated[
        bool,
        typer.Option(
            "--show-own-reads",
            help="With --follow, also show this command's own reads of the ledger (every poll "
            "is recorded; they are hidden by default).",
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.0, hidden=True, help="Seconds between polls.")
    ] = 1.0,
    max_polls: Annotated[
        int | None,
        typer.Option("--max-polls", min=0, hidden=True, help="Stop following after N polls."),
    ] = None,
) -> None:
    """Print the newest events of the ledger; with --follow, keep printing new ones.

    Shows seq, time, action, outcome, reason, initiator and target; --json prints each event as
    one JSON object per line."""
    client = remote.client
    actions = [a.strip() for value in action or [] for a in value.split(",") if a.strip()]
    wanted = None if outcome is None else outcome.value
    me: str | None = None
    if follow and not show_own_reads:
        try:
            me = client.whoami().principal.id  # before the head: its event is not "new"
        except ClientError:
            me = None
    top = int(client.audit_head()["nextSeq"]) - 1
    newest = _newest(client, limit, actions, wanted, top) if limit > 0 else []
    _print_events(newest, remote, header=True)
    if not follow:
        if not newest and not remote.json:
            note("no matching events")
        return
    cursor = top
    polls = 0
    header = not newest
    try:
        while max_polls is None or polls < max_polls:
            time.sleep(interval)
            polls += 1
            batch = list(
                client.iter_audit_events(
                    after_seq=cursor if cursor >= 0 else None,
                    actions=actions,
                    outcome=wanted,
                    page=PAGE,
                )
            )
            if not batch:
                continue
            last = batch[-1].get("seq")
            if isinstance(last, int) and not isinstance(last, bool) and last > cursor:
                cursor = last
            shown = [e for e in batch if not _own_read(e, me)]
            if shown:
                _print_events(shown, remote, header=header)
                header = False
    except KeyboardInterrupt:
        if not remote.json:
            note("")
