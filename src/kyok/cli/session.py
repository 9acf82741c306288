"""``kyok login``, ``kyok logout`` and ``kyok whoami``.

``kyok login`` asks for (or takes) the server URL, the instance id and an API key, checks them
by getting a token and calling whoami, and saves them in the profile
(``$XDG_CONFIG_HOME/kyok/profile.json``, default ``~/.config/kyok/profile.json``, mode 0600).
The API key is stored in that file in clear: anyone who can read the file can act as you.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kyok.cli._output import console, emit_json, note
from kyok.cli._remote import (
    CacertOpt,
    InsecureOpt,
    JsonOpt,
    Profile,
    Remote,
    connect,
    grid,
    guarded_remote,
    profile_path,
    remote_command,
    to_json,
)
from kyok.client import WhoAmI


def _ask_secret(prompt: str) -> str:
    """A hidden prompt on a terminal; one line from stdin otherwise (no echo warning)."""
    if sys.stdin.isatty():
        return str(typer.prompt(prompt, hide_input=True, err=True))
    sys.stderr.write(f"{prompt}: \n")
    line = sys.stdin.readline().strip()
    if not line:
        raise typer.BadParameter(f"no {prompt} on stdin", param_hint="--api-key")
    return line


def _show_identity(me: WhoAmI, url: str) -> None:
    rows: list[tuple[str, object]] = [
        ("server", url),
        ("instance", me.instance_id),
        ("principal", me.principal.name),
        ("principal id", me.principal.id),
        ("kind", me.principal.kind),
    ]
    console.print(grid(None, ["field", "value"], rows))
    roles = [(b.role, b.scope, b.id) for b in me.roles]
    console.print(grid("roles", ["role", "scope", "binding"], roles))


def login(
    url: Annotated[
        str | None,
        typer.Option(
            "--url", envvar="KYOK_URL", help="Server URL (asked if missing).", show_default=False
        ),
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            envvar="KYOK_INSTANCE_ID",
            help="Instance id (asked if missing).",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="KYOK_API_KEY",
            help="API key (asked, hidden, if missing). It is saved in the profile file.",
            show_default=False,
        ),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            "--credentials",
            help="Read url, instance and API key from a dev server's credentials file "
            "(kyok-data/dev-credentials.json).",
            show_default=False,
        ),
    ] = None,
    cacert: CacertOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Check a server URL, instance and API key, and save them as the profile.

    The profile is $XDG_CONFIG_HOME/kyok/profile.json (~/.config/kyok/profile.json), mode 0600. It holds the API key in clear: protect it like a password, and prefer KYOK_API_KEY in automation.
    """
    with guarded_remote():
        if credentials is not None:
            try:
                creds = json.loads(Path(credentials).read_text())
                url = url or str(creds["url"])
                instance = instance or str(creds["instanceId"])
                api_key = api_key or str(creds["apiKey"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise typer.BadParameter(
                    f"{credentials} is not a readable credentials file ({type(exc).__name__})",
                    param_hint="--credentials",
                ) from None
        saved = Profile.load()
        if url is None:
            url = typer.prompt("Server URL", default=saved.url if saved else None, err=True)
        if instance is None:
            same = saved is not None and saved.url.rstrip("/") == url.rstrip("/")
            instance = typer.prompt(
                "Instance id", default=saved.instance_id if saved and same else None, err=True
            )
        if api_key is None:
            api_key = _ask_secret("API key")
        verify: bool | str = False if insecure else (str(cacert) if cacert else True)
        with connect(url, instance, api_key, verify) as client:
            client.authenticate()
            me = client.whoami()
        profile = Profile(
            url=url.rstrip("/"),
            instance_id=instance,
            api_key=api_key,
            cacert=str(Path(cacert).resolve()) if cacert else None,
            insecure=insecure,
        )
        path = profile.save()
        if json_output:
            emit_json(to_json(me) | {"url": profile.url, "profile": str(path)})
            return
        note(
            f"logged in as {escape(me.principal.name)}; profile saved to {escape(str(path))} (mode 0600, holds the API key)"
        )
        _show_identity(me, profile.url)


def logout() -> None:
    """Delete the saved profile (and the API key in it)."""
    path = profile_path()
    if path.exists():
        path.unlink()
        note(f"removed {escape(str(path))}")
    else:
        note("no profile saved")


def whoami(remote: Remote) -> None:
    """Show who the server takes you for: principal, instance and roles."""
    me = remote.client.whoami()
    if remote.json:
        emit_json(to_json(me))
    else:
        _show_identity(me, remote.settings.url)


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout`` and ``whoami`` to the top-level app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(remote_command(whoami))
