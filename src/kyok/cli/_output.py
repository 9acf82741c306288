"""Output in one place: Rich tables for people, ``--json`` for scripts, errors and exit codes.

Exit codes: 0 success; 1 refused or failed (a clear message on stderr); 2 usage error; 3 a
verification found something broken; 4 unavailable (e.g. the unit is sealed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from kyok.errors import KyokError, Unavailable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN = 3
EXIT_UNAVAILABLE = 4

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (nothing else goes to stdout in --json mode)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table with ``columns`` and ``rows`` (None shows as a dash)."""
    t = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console.print(
        f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr, so --json stdout stays clean)."""
    err_console.print(message, highlight=False, soft_wrap=True)


@contextmanager
def errors_to_exit(debug: bool = False) -> Iterator[None]:
    """Turn kyok's errors (and bad files) into a message and an exit code; a traceback only with --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except KyokError as exc:
        if debug:
            raise
        fail(exc.message, EXIT_UNAVAILABLE if isinstance(exc, Unavailable) else EXIT_FAILED)
    except (FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if debug:
            raise
        fail(
            f"{exc.strerror or exc}: {exc.filename}" if getattr(exc, "filename", None) else str(exc)
        )
    except ValueError as exc:
        if debug:
            raise
        fail(str(exc))


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator form of :func:`errors_to_exit`."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with errors_to_exit(debug=_DEBUG[0]):
            return fn(*args, **kwargs)

    return wrapper


_DEBUG = [False]


def set_debug(value: bool) -> None:
    _DEBUG[0] = value
