"""What every command that talks to a running server shares: where the server is, the saved
profile, the connection options, and turning SDK errors into messages and exit codes.

Connection settings resolve field by field from the command's flags (``--url``,
``--instance``, ``--api-key``, ``--cacert``/``--insecure``), else the environment
(``KYOK_URL``, ``KYOK_INSTANCE_ID``, ``KYOK_API_KEY``, ``KYOK_CACERT``), else the profile that
``kyok login`` saved in ``$XDG_CONFIG_HOME/kyok/profile.json`` (``~/.config/kyok/profile.json``).
The profile's instance, API key and CA are used only for the profile's own URL: pointing a
command at another server never sends it the saved API key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kyok.cli._output import (
    EXIT_USAGE,
    console,
    debug_enabled,
    errors_to_exit,
    fail,
    note,
)
from kyok.client import Key, KyokClient

__all__ = [
    "Profile",
    "Remote",
    "ResolvedSettings",
    "connect",
    "grid",
    "profile_path",
    "read_b64",
    "remote_command",
    "say",
    "to_json",
]

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------- the profile


def profile_path() -> Path:
    """``$XDG_CONFIG_HOME/kyok/profile.json``, or ``~/.config/kyok/profile.json``."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "kyok" / "profile.json"


@dataclass(frozen=True)
class Profile:
    """What ``kyok login`` saves. The API key is stored in the file (mode 0600)."""

    url: str
    instance_id: str
    api_key: str = field(repr=False)
    cacert: str | None = None
    insecure: bool = False

    @classmethod
    def load(cls, path: Path | None = None) -> Profile | None:
        """The saved profile, or None if there is none.

        Raises:
            ValueError: the file is not a profile.
        """
        path = path or profile_path()
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            note(
                f"[yellow]warning:[/] {escape(str(path))} holds an API key but is readable by others "
                f"(mode {mode:04o}); run `chmod 600 {escape(str(path))}`"
            )
        try:
            data = json.loads(raw)
            return cls(
                url=str(data["url"]),
                instance_id=str(data["instance_id"]),
                api_key=str(data["api_key"]),
                cacert=data.get("cacert") or None,
                insecure=bool(data.get("insecure", False)),
            )
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a kyok profile; run `kyok login` again") from None

    def save(self, path: Path | None = None) -> Path:
        """Write the profile atomically, readable by its owner only (0600, directory 0700)."""
        path = path or profile_path()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "url": self.url,
            "instance_id": self.instance_id,
            "api_key": self.api_key,
            "cacert": self.cacert,
            "insecure": self.insecure,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # whatever the umask
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class ResolvedSettings:
    """Where to connect and with what, after flags, environment and profile."""

    url: str
    instance_id: str
    api_key: str = field(repr=False)
    verify: bool | str = True

    def client(self) -> KyokClient:
        """A client for these settings."""
        return connect(self.url, self.instance_id, self.api_key, self.verify)


def connect(url: str, instance_id: str, api_key: str, verify: bool | str) -> KyokClient:
    """The one place the CLI builds a :class:`KyokClient` (tests swap the transport here)."""
    return KyokClient(url, instance_id, api_key=api_key, verify=verify, transport=TRANSPORT)


#: The transport of every client the CLI builds; None is the network. Tests put an
#: ``httpx.MockTransport`` or ``httpx.ASGITransport`` here.
TRANSPORT: httpx.BaseTransport | None = None


def _norm(url: str) -> str:
    return url.rstrip("/")


def resolve(
    url: str | None,
    instance: str | None,
    api_key: str | None,
    cacert: Path | None,
    insecure: bool,
) -> ResolvedSettings:
    """Settings from flags/environment (typer has merged those) and the saved profile.

    Raises:
        typer.Exit: with exit code 2 when something needed is missing.
    """
    profile = Profile.load()
    if profile is not None and url is not None and _norm(url) != _norm(profile.url):
        profile = None  # another server: never send it the saved key
    url = url or (profile.url if profile else None)
    if not url:
        fail("no server: run `kyok login`, pass --url or set KYOK_URL", EXIT_USAGE)
    instance = instance or (profile.instance_id if profile else None)
    if not instance:
        fail("no instance: pass --instance or set KYOK_INSTANCE_ID (or `kyok login`)", EXIT_USAGE)
    api_key = api_key or (profile.api_key if profile else None)
    if not api_key:
        fail("no API key: pass --api-key or set KYOK_API_KEY (or `kyok login`)", EXIT_USAGE)
    verify: bool | str = True
    if insecure:
        verify = False
    elif cacert is not None:
        verify = str(cacert)
    elif profile is not None:
        verify = False if profile.insecure else (profile.cacert or True)
    return ResolvedSettings(_norm(url), instance, api_key, verify)


# ---------------------------------------------------------------- the shared options

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="KYOK_URL",
        help="Server URL, e.g. https://kms.example:8443 (default: the saved profile).",
        show_default=False,
    ),
]
InstanceOpt = Annotated[
    str | None,
    typer.Option(
        "--instance",
        envvar="KYOK_INSTANCE_ID",
        help="Instance id (default: the saved profile).",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="KYOK_API_KEY",
        help="API key (default: the saved profile). Prefer the environment variable: a flag "
        "shows in the process list.",
        show_default=False,
    ),
]
CacertOpt = Annotated[
    Path | None,
    typer.Option(
        "--cacert",
        envvar="KYOK_CACERT",
        help="CA bundle (PEM) to verify the server's TLS certificate.",
        show_default=False,
        exists=True,
        dir_okay=False,
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option("--insecure", help="Do not verify the server's TLS certificate (testing only)."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout (and nothing else).")
]

_OPTIONS: list[tuple[str, Any, Any]] = [
    ("url", UrlOpt, None),
    ("instance", InstanceOpt, None),
    ("api_key", ApiKeyOpt, None),
    ("cacert", CacertOpt, None),
    ("insecure", InsecureOpt, False),
    ("json_output", JsonOpt, False),
]


class Remote:
    """Handed to each remote command: the ``--json`` choice and a lazily built client."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.json: bool = bool(options.pop("json_output"))
        self._options = options
        self._client: KyokClient | None = None

    @property
    def settings(self) -> ResolvedSettings:
        """The resolved connection settings."""
        return resolve(**self._options)

    @property
    def client(self) -> KyokClient:
        """The SDK client (built on first use)."""
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def close(self) -> None:
        """Close the client if one was built."""
        if self._client is not None:
            self._client.close()


def remote_command(fn: F) -> F:
    """Give a command the connection options and ``--json``, and SDK errors their exit codes.

    The decorated function takes a :class:`Remote` as its first argument; the options are
    added to its signature for Typer (so they go after the command: ``kyok key list --json``).
    """
    sig = inspect.signature(fn, eval_str=True)
    params = list(sig.parameters.values())[1:]  # drop `remote`
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
        for name, ann, default in _OPTIONS
    ]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        options = {name: kwargs.pop(name) for name, _, _ in _OPTIONS}
        with errors_to_exit(debug=debug_enabled()):
            remote = Remote(options)
            try:
                return fn(remote, **kwargs)
            finally:
                remote.close()

    wrapper.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra} | {
        "return": sig.return_annotation
    }
    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------- input and output helpers


def read_b64(value: str | None, path: Path | None, what: str) -> bytes | None:
    """Base64 input from an argument, ``--in FILE`` or stdin (``-``), decoded; None if none.

    Raises:
        typer.BadParameter: not valid base64, or both an argument and a file.
    """
    if value is not None and path is not None:
        raise typer.BadParameter(f"give the {what} as an argument or with --in, not both")
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="ascii")
    elif value == "-":
        text = sys.stdin.read()
    elif value is not None:
        text = value
    else:
        return None
    text = "".join(text.split())
    if not text:
        raise typer.BadParameter(f"the {what} is empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise typer.BadParameter(f"the {what} is not valid base64") from None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def to_json(value: Any) -> Any:
    """A JSON-able form of SDK results: keys as the server sent them, other results camelCase."""
    if isinstance(value, Key):
        return dict(value.properties)
    if is_dataclass(value) and not isinstance(value, type):
        return {
            _camel(f.name): to_json(getattr(value, f.name))
            for f in fields(value)
            if f.repr  # secrets are not repr fields: never printed implicitly
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):  # dicts, and the read-only mappings of SDK results
        return {k: to_json(v) for k, v in value.items()}
    return value


def grid(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table like :func:`~kyok.cli._output.table` (None shows as a dash), except that cells
    are plain text (a key named ``[red]x`` shows as such) and id columns never wrap: their
    values are copied into the next command, so the other columns wrap instead."""
    t = Table(title=title, title_justify="left", show_lines=False)
    for name in columns:
        t.add_column(name, no_wrap=name in _UNWRAPPED)
    for row in rows:
        t.add_row(*(Text("-" if v is None else str(v)) for v in row))
    return t


_UNWRAPPED = frozenset({"id", "version", "binding"})


def say(text: str) -> None:
    """One line of result for people on stdout: no markup, no highlighting, never folded."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def when(value: datetime | None) -> str | None:
    """An RFC 3339 time (UTC as ``Z``), or None."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


@contextmanager
def guarded_remote() -> Iterator[None]:
    """SDK and kyok errors to messages and exit codes, outside :func:`remote_command`."""
    with errors_to_exit(debug=debug_enabled()):
        yield
