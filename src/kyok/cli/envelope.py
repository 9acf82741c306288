"""``kyok encrypt``, ``kyok decrypt``, ``kyok rewrap-file``: files and streams under a root key.

Each file gets its own DEK, generated and wrapped by kyok (one call per file) and kept, wrapped,
in the file's header (:mod:`kyok.client.envelope`)::

    kyok encrypt report.pdf --key orders            writes report.pdf.kyok
    kyok decrypt report.pdf.kyok                    writes report.pdf
    kyok encrypt -r photos/ -k orders -o vault/     mirrors the tree: vault/a/b.jpg.kyok
    kyok decrypt -r vault/ -o photos/               takes only *.kyok
    tar c dir | kyok encrypt - -k orders > dir.tar.kyok
    kyok decrypt dir.tar.kyok -o - | tar x
    kyok rewrap-file report.pdf.kyok                after `kyok key rotate`: new header, same data

Outputs are written to a temporary file beside the final name (mode 0600) and renamed only once
complete, so a failed or interrupted run never leaves a half-written file under the final name;
an existing output is kept unless ``--force``. ``-`` is stdin or stdout: streamed, no temporary
file. Plaintext streamed to a pipe is released segment by segment as each is authenticated, so a
reader must check the exit status; to a terminal nothing is printed unless the whole stream
checked out (and only up to 1 MiB). Ciphertext is never written to a terminal.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, NoReturn

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kyok.cli._output import (
    EXIT_BROKEN,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    emit_json,
    err_console,
    fail,
    note,
)
from kyok.cli._remote import Remote, remote_command
from kyok.client import envelope
from kyok.client.envelope import EnvelopeHeader, InvalidEnvelope, KeyUnavailable

__all__ = [
    "PROGRESS_THRESHOLD",
    "SUFFIX",
    "TERMINAL_LIMIT",
    "decrypt",
    "encrypt",
    "parse_size",
    "register",
    "rewrap_file",
]

SUFFIX = ".kyok"
#: Files at least this large get a progress bar (when stderr is a terminal).
PROGRESS_THRESHOLD = 32 << 20
#: The most plaintext ``kyok decrypt … -o -`` prints to a terminal (held until authenticated).
TERMINAL_LIMIT = 1 << 20

Mode = Literal["encrypt", "decrypt"]

# ---------------------------------------------------------------- options

PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Files, directories (with -r) or '-' for stdin.",
        show_default=False,
        metavar="PATH",
    ),
]
KeyOpt = Annotated[
    str,
    typer.Option(
        "--key", "-k", help="The root key's id or alias.", show_default=False, metavar="ID|ALIAS"
    ),
]
AadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--aad",
        help="Additional authenticated data; repeat for several. Give the same values, in the "
        "same order, to decrypt.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        help="Output file, directory (several inputs, -r, an existing directory, or a name "
        "ending in '/'), or '-' for stdout.",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
RecursiveOpt = Annotated[
    bool, typer.Option("--recursive", "-r", help="Descend into directories, mirroring the tree.")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No per-file notes and no progress bars.")
]
SegmentOpt = Annotated[
    str | None,
    typer.Option(
        "--segment-size",
        help="Plaintext bytes per authenticated segment, e.g. 64KiB, 1MiB (default), 4MiB; "
        "4 KiB to 64 MiB.",
        show_default=False,
    ),
]

# ---------------------------------------------------------------- sizes

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
}
_SIZE = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")
_MIN_SEGMENT = 4 << 10
_MAX_SEGMENT = 64 << 20


def parse_size(text: str) -> int:
    """A segment size such as ``4096``, ``64KiB`` or ``1MiB`` (K, M and KB, MB are binary too).

    Raises:
        typer.BadParameter: not a size, or outside 4 KiB .. 64 MiB.
    """
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size: write e.g. 65536, 64KiB or 1MiB")
    value = int(m.group(1)) * _UNITS[unit]
    if not _MIN_SEGMENT <= value <= _MAX_SEGMENT:
        raise typer.BadParameter(f"{text!r} is outside 4 KiB .. 64 MiB")
    return value


def _human(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Job:
    """One input and where its output goes (None: stdin / stdout)."""

    src: Path | None
    dst: Path | None
    size: int | None  # the input's size when it is a regular file


def _usage(message: str) -> NoReturn:
    fail(message, EXIT_USAGE)


def _default_name(src: Path, mode: Mode) -> str:
    """``a.txt`` → ``a.txt.kyok`` (encrypt); ``a.txt.kyok`` → ``a.txt`` (decrypt)."""
    if mode == "encrypt":
        return src.name + SUFFIX
    if src.name.endswith(SUFFIX) and len(src.name) > len(SUFFIX):
        return src.name[: -len(SUFFIX)]
    _usage(
        f"{src} does not end in {SUFFIX}, so the output has no default name: give it with -o "
        "(or -o - for stdout)"
    )


def _tree(root: Path, mode: Mode) -> list[Path]:
    """Regular files under ``root`` (symlinked directories not followed), sorted: for encrypt
    all but ``*.kyok``, for decrypt only ``*.kyok``."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not path.is_file():
                continue  # sockets, fifos, broken links
            if name.endswith(SUFFIX) != (mode == "decrypt"):
                continue
            found.append(path)
    return found


def _plan(
    paths: Sequence[str], out: str | None, *, recursive: bool, mode: Mode, force: bool
) -> list[_Job]:
    """Every (input, output) pair, checked before any work starts: no missing input, no
    directory without -r, no two inputs onto one output, no output that is its input, no
    existing output without --force."""
    if not paths:
        _usage("no input: give files, directories (with -r) or '-' for stdin")
    if "-" in paths and len(paths) > 1:
        _usage("'-' (stdin) must be the only input")
    for p in paths:
        if p != "-" and not Path(p).exists():
            _usage(f"{p}: no such file or directory")
    to_stdout = out == "-"
    out_path = None if out is None or to_stdout else Path(out)
    many = len(paths) > 1 or any(p != "-" and Path(p).is_dir() for p in paths)
    out_is_dir = out_path is not None and (
        many or out_path.is_dir() or (out or "").endswith(os.sep)
    )
    if out_path is not None and out_is_dir and out_path.exists() and not out_path.is_dir():
        _usage(f"-o {out_path} is a file, but the output needs a directory")

    jobs: list[_Job] = []
    for p in paths:
        if p == "-":
            jobs.append(_Job(None, None if out_path is None else _file_out(out_path, mode), None))
            continue
        src = Path(p)
        if src.is_dir():
            if not recursive:
                _usage(f"{src} is a directory: pass -r to {mode} the files under it")
            for f in _tree(src, mode):
                if to_stdout:
                    jobs.append(_Job(f, None, f.stat().st_size))
                    continue
                base = out_path if out_path is not None else src
                rel = f.relative_to(src)
                jobs.append(_Job(f, base / rel.parent / _default_name(f, mode), f.stat().st_size))
            continue
        if not src.is_file():
            _usage(f"{src} is not a regular file")
        size = src.stat().st_size
        if to_stdout:
            jobs.append(_Job(src, None, size))
        elif out_path is None:
            jobs.append(_Job(src, src.with_name(_default_name(src, mode)), size))
        elif out_is_dir:
            jobs.append(_Job(src, out_path / _default_name(src, mode), size))
        else:
            jobs.append(_Job(src, out_path, size))
    _check_jobs(jobs, mode=mode, force=force)
    return jobs


def _file_out(out_path: Path, mode: Mode) -> Path:
    if out_path.is_dir():
        _usage(f"-o {out_path} is a directory; with stdin as input, name the output file")
    return out_path


def _check_jobs(jobs: list[_Job], *, mode: Mode, force: bool) -> None:
    stdout_jobs = [j for j in jobs if j.dst is None]
    if len(stdout_jobs) > 1 or (stdout_jobs and len(jobs) > 1):
        _usage("stdout can take only one output: give a single input with -o -")
    if stdout_jobs and mode == "encrypt" and _stdout_is_terminal():
        _usage("refusing to write ciphertext to a terminal: redirect stdout or give -o FILE")
    if any(j.src is None for j in jobs) and mode == "decrypt" and _stdin_is_terminal():
        _usage("stdin is a terminal: pipe the ciphertext in, or give the file")
    seen: dict[Path, Path | None] = {}
    existing: list[Path] = []
    for job in jobs:
        if job.dst is None:
            continue
        dst = job.dst.resolve()
        if job.src is not None and dst == job.src.resolve():
            _usage(f"the output {job.dst} is the input itself")
        if dst in seen:
            _usage(
                f"{seen[dst] or 'stdin'} and {job.src or 'stdin'} would both be written to {job.dst}"
            )
        seen[dst] = job.src
        if job.dst.is_dir():
            _usage(f"the output {job.dst} is a directory")
        if job.dst.exists() and not force:
            existing.append(job.dst)
    if existing:
        shown = ", ".join(str(p) for p in existing[:3]) + (" …" if len(existing) > 3 else "")
        fail(f"{shown} already exist{'s' if len(existing) == 1 else ''}: pass --force to overwrite")


# ---------------------------------------------------------------- streams


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _stdin() -> BinaryIO:
    return sys.stdin.buffer


def _stdout() -> BinaryIO:
    sys.stdout.flush()
    return sys.stdout.buffer


class _TerminalSink:
    """Holds plaintext bound for a terminal until the whole stream has been authenticated."""

    def __init__(self, limit: int) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = limit

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        self._size += n
        if self._size > self._limit:
            raise _TooLargeForTerminal(self._limit)
        self._parts.append(bytes(data))
        return n

    def flush(self) -> None:
        """Nothing is released before :meth:`release`."""

    def release(self, dst: BinaryIO) -> None:
        """Write what was held, once the stream checked out."""
        for part in self._parts:
            dst.write(part)
        dst.flush()
        self._parts.clear()


class _TooLargeForTerminal(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the plaintext is larger than {_human(limit)}: not printed to a terminal; "
            "write it to a file with -o FILE or pipe it"
        )


@contextmanager
def _atomic_output(path: Path, *, overwrite: bool) -> Iterator[BinaryIO]:
    """A temporary file (0600) beside ``path``, fsynced and moved onto ``path`` only when the
    block succeeds; removed otherwise. Without ``overwrite`` an existing ``path`` is kept
    (``FileExistsError``), also one that appeared meanwhile."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kyok-tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and refuses an existing name
            except FileExistsError:
                raise
            except OSError:  # no hard links here: best effort
                if path.exists():
                    raise FileExistsError(17, "File exists", str(path)) from None
                os.rename(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- progress


def _stderr_is_terminal() -> bool:
    return err_console.is_terminal


@contextmanager
def _progress(job: _Job, verb: str, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress callback for a large file when stderr is a terminal; else None."""
    size = job.size
    if quiet or size is None or size < PROGRESS_THRESHOLD or not _stderr_is_terminal():
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"{verb} {escape(str(job.src))}", total=size)

        def advance(n: int) -> None:
            bar.update(task, advance=n)

        yield advance


# ---------------------------------------------------------------- errors


_DONE = {"encrypt": "encrypted", "decrypt": "decrypted", "rewrap": "rewrapped"}


def _fail_for(exc: Exception, what: str, done: int, action: str) -> NoReturn:
    """The message and exit code for a failure on ``what`` (a file name, or stdin)."""
    if done:
        note(f"{done} file{'s' if done != 1 else ''} before this one finished and stay as they are")
    if isinstance(exc, KeyUnavailable):
        code = EXIT_NOT_FOUND if exc.reason == "not_found" else EXIT_FAILED
        fail(_key_message(exc, what, action), code)
    if isinstance(exc, InvalidEnvelope):
        fail(f"{what}: {exc.message}; no output was written", EXIT_BROKEN)
    if isinstance(exc, FileExistsError):
        fail(f"{exc.filename or what} already exists: pass --force to overwrite it")
    if isinstance(exc, _TooLargeForTerminal):
        fail(str(exc))
    raise exc


def _key_message(exc: KeyUnavailable, what: str, action: str) -> str:
    """What a refused DEK means for the user, and what to do about it."""
    key = exc.key_id
    if exc.reason == "suspended":
        return f"root key {key} is suspended; enable it and retry (`kyok key enable {key}`)"
    if exc.reason == "destroyed":
        return (
            f"root key {key} was deleted, so {what} cannot be {_DONE[action]}. Until the key is "
            f"purged, `kyok key restore {key}` brings it back; once it is purged, the data is "
            "unrecoverable (crypto-shredding)"
        )
    if exc.reason == "not_found":
        if action == "encrypt":
            return f"no root key {key} in this instance: check the id or alias (`kyok key list`)"
        return (
            f"root key {key} does not exist in this instance. If it was deleted and purged, the "
            f"key was destroyed and {what} is unrecoverable (crypto-shredding); otherwise the "
            "file belongs to another kyok instance"
        )
    if exc.reason == "deactivated":
        return (
            f"root key {key} is deactivated (expired): it still decrypts, but encrypts nothing "
            "new; use another key"
        )
    if exc.reason == "forbidden":
        return f"your credentials may not use root key {key}: ask a Manager for a role on it"
    return f"root key {key} refused: {exc.message}"


# ---------------------------------------------------------------- running jobs


def _record(job: _Job, header: EnvelopeHeader, size: int | None) -> dict[str, Any]:
    return {
        "input": "-" if job.src is None else str(job.src),
        "output": "-" if job.dst is None else str(job.dst),
        "keyId": header.key_id,
        "keyVersionId": header.key_version_id,
        "segmentSize": header.segment_size,
        "bytes": size,
    }


class _Counter:
    """Counts plaintext bytes through the library's progress callback."""

    def __init__(self, then: Callable[[int], None] | None) -> None:
        self.total = 0
        self._then = then

    def __call__(self, n: int) -> None:
        self.total += n
        if self._then is not None:
            self._then(n)


def _run_one(job: _Job, mode: Mode, *, force: bool, quiet: bool, **kw: Any) -> dict[str, Any]:
    verb = "encrypting" if mode == "encrypt" else "decrypting"
    with _progress(job, verb, quiet) as bar:
        count = _Counter(bar)
        kw["progress"] = count
        header = _transform(job, mode, force=force, **kw)
    record = _record(job, header, count.total)
    if not quiet and job.dst is not None:
        note(
            f"{mode}ed {escape(str(job.src or 'stdin'))} → {escape(str(job.dst))} "
            f"({_human(count.total)}, key {header.key_id})"
        )
    if not quiet and header.is_stale and job.src is not None:
        note(
            f"root key {header.key_id} was rotated since {escape(str(job.src))} was encrypted: "
            f"`kyok rewrap-file {escape(str(job.src))}` moves it to the newest version"
        )
    return record


def _transform(job: _Job, mode: Mode, *, force: bool, **kw: Any) -> EnvelopeHeader:
    stream = envelope.encrypt if mode == "encrypt" else envelope.decrypt
    if job.dst is not None and not job.dst.parent.is_dir():
        try:
            job.dst.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(20, "not a directory", str(job.dst.parent)) from None
    if job.src is not None and job.dst is not None:
        whole = envelope.encrypt_file if mode == "encrypt" else envelope.decrypt_file
        return whole(job.src, job.dst, overwrite=force, **kw)
    with open(job.src, "rb") if job.src is not None else nullcontext(_stdin()) as src:
        if job.dst is not None:
            with _atomic_output(job.dst, overwrite=force) as dst:
                return stream(src, dst, **kw)
        out = _stdout()
        if mode == "decrypt" and _stdout_is_terminal():
            sink = _TerminalSink(TERMINAL_LIMIT)
            header = stream(src, sink, **kw)  # type: ignore[arg-type]
            sink.release(out)
            return header
        header = stream(src, out, **kw)
        out.flush()
        return header


def _run(
    remote: Remote, jobs: list[_Job], mode: Mode, *, force: bool, quiet: bool, **kw: Any
) -> None:
    if not jobs:
        if not quiet:
            note(f"nothing to {mode}")
        if remote.json:
            emit_json([])
        return
    if remote.json and any(j.dst is None for j in jobs):
        _usage("--json prints the summary on stdout, so the output cannot be stdout too")
    records: list[dict[str, Any]] = []
    for job in jobs:
        try:
            records.append(_run_one(job, mode, force=force, quiet=quiet, keys=remote.client, **kw))
        except FileExistsError:  # it appeared after the check
            _fail_for(FileExistsError(17, "exists", str(job.dst)), str(job.src), len(records), mode)
        except (KeyUnavailable, InvalidEnvelope, _TooLargeForTerminal) as exc:
            _fail_for(exc, str(job.src or "stdin"), len(records), mode)
        except BrokenPipeError:
            _quiet_stdout()
            fail("stdout was closed before the end (broken pipe)")
        except OSError as exc:  # a full disk, a file that vanished, no permission…
            where = exc.filename or job.dst or job.src or "stdin"
            fail(f"{where}: {exc.strerror or exc}; no output was written under the final name")
    if remote.json:
        emit_json(records)


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that exiting does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass


# ---------------------------------------------------------------- the commands


def encrypt(
    remote: Remote,
    paths: PathsArg,
    key: KeyOpt,
    aad: AadOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    recursive: RecursiveOpt = False,
    segment_size: SegmentOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Encrypt files or stdin under a root key: FILE → FILE.kyok (one DEK per file, from kyok)."""
    kw: dict[str, Any] = {"key": key, "aad": aad}
    if segment_size is not None:
        kw["segment_size"] = parse_size(segment_size)
    jobs = _plan(paths, out, recursive=recursive, mode="encrypt", force=force)
    _run(remote, jobs, "encrypt", force=force, quiet=quiet, **kw)


def decrypt(
    remote: Remote,
    paths: PathsArg,
    aad: AadOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    recursive: RecursiveOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Decrypt FILE.kyok → FILE (or stdin); the root key is the one named in each file."""
    jobs = _plan(paths, out, recursive=recursive, mode="decrypt", force=force)
    _run(remote, jobs, "decrypt", force=force, quiet=quiet, aad=aad)


def rewrap_file(
    remote: Remote,
    paths: PathsArg,
    aad: AadOpt = None,
    recursive: RecursiveOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Move files' DEKs to their root key's newest version, in place; the data is not touched."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if p == "-":
            _usage("rewrap-file updates files in place: stdin cannot be rewrapped")
        if path.is_dir():
            if not recursive:
                _usage(f"{path} is a directory: pass -r to rewrap the *.kyok files under it")
            files.extend(_tree(path, "decrypt"))
        elif path.is_file():
            files.append(path)
        else:
            _usage(f"{p}: no such file")
    records: list[dict[str, Any]] = []
    for path in files:
        try:
            changed = envelope.rewrap_file(path, keys=remote.client, aad=aad)
            with open(path, "rb") as fh:
                header = envelope.read_header(fh)
        except (KeyUnavailable, InvalidEnvelope) as exc:
            _fail_for(exc, str(path), len(records), "rewrap")
        records.append(
            {
                "file": str(path),
                "rewrapped": changed,
                "keyId": header.key_id,
                "keyVersionId": header.key_version_id,
            }
        )
        if not quiet:
            state = "rewrapped to" if changed else "already on"
            note(f"{escape(str(path))}: {state} key version {header.key_version_id}")
    if remote.json:
        emit_json(records)


def register(app: typer.Typer) -> None:
    """Add ``encrypt``, ``decrypt`` and ``rewrap-file`` to the top-level app."""
    app.command("encrypt")(remote_command(encrypt))
    app.command("decrypt")(remote_command(decrypt))
    app.command("rewrap-file")(remote_command(rewrap_file))
