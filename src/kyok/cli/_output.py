"""Output in one place: Rich tables for people, ``--json`` for scripts, errors and exit codes.

Exit codes: 0 success; 1 refused or failed (a clear message on stderr); 2 usage error; 3 a
verification found something broken; 4 unavailable (e.g. the unit is sealed, or the server
cannot be reached); 5 not found (the key, ring, alias, principal… does not exist, for scripts
that test for existence).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kyok.errors import KyokError, Unavailable

if TYPE_CHECKING:  # the SDK (httpx and all) loads with the commands that use it, not `kyok server`
    from kyok.client.errors import ClientError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN = 3
EXIT_UNAVAILABLE = 4
EXIT_NOT_FOUND = 5

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
        t.add_column(
            col, overflow="fold"
        )  # ids and fingerprints are shown whole, folded if need be
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console.print(
        f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr, so --json stdout stays clean)."""
    err_console.print(message, highlight=False, soft_wrap=True)


def exit_code_for(exc: ClientError) -> int:
    """The exit code for an SDK error: 5 not found, 4 unreachable or sealed, else 1."""
    from kyok.client.errors import ConnectionFailed, NotFound, ServiceUnavailable

    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConnectionFailed | ServiceUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


def describe_client_error(exc: ClientError) -> str:
    """``message (CODE, HTTP 404, correlation id …)`` for an SDK error (no secrets in it)."""
    details = [exc.code]
    if exc.status is not None:
        details.append(f"HTTP {exc.status}")
    if exc.target:
        details.append(f"field {exc.target}")
    if exc.correlation_id and exc.status is not None:
        details.append(f"correlation id {exc.correlation_id}")
    return f"{exc.message} ({', '.join(details)})"


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
    except Exception as exc:  # SDK errors: a ClientError is none of the above
        if debug or not _is_client_error(exc):
            raise
        fail(describe_client_error(exc), exit_code_for(exc))


def _is_client_error(exc: BaseException) -> TypeGuard[ClientError]:
    """Whether ``exc`` is an SDK error (there is none unless the SDK was imported)."""
    errors = sys.modules.get("kyok.client.errors")
    return errors is not None and isinstance(exc, errors.ClientError)


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


def debug_enabled() -> bool:
    """Whether ``kyok --debug`` asked for tracebacks."""
    return _DEBUG[0]
