"""``kyok wrap``, ``kyok unwrap``, ``kyok rewrap``: envelope encryption with a root key.

DEKs and ciphertexts travel as base64: as an argument, from ``--in FILE``, or on stdin
(``-``, or piped in)::

    kyok wrap orders                          the server generates a DEK; prints DEK and ciphertext
    head -c32 /dev/urandom | base64 | kyok wrap orders --aad tenant:7 -o dek.wrapped
    kyok unwrap orders --in dek.wrapped --aad tenant:7 --json
    kyok rewrap orders --in dek.wrapped --aad tenant:7 -o dek.wrapped

``unwrap`` prints a DEK (that is its purpose). When the ciphertext was made by an older key
version, unwrap also returns it rewrapped by the newest one: store that instead.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kyok.cli._output import emit_json, note
from kyok.cli._remote import Remote, read_b64, remote_command, say

KeyArg = Annotated[str, typer.Argument(help="The root key's id or alias.")]
InOpt = Annotated[
    Path | None,
    typer.Option(
        "--in",
        help="Read the base64 input from this file ('-' for stdin).",
        show_default=False,
        dir_okay=False,
        allow_dash=True,
    ),
]
AadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--aad",
        help="Additional authenticated data; repeat for several. Give the same values, in the "
        "same order, to unwrap.",
        show_default=False,
    ),
]


def _out_opt(what: str) -> object:
    return typer.Option(
        "--out",
        "-o",
        help=f"Write {what} (base64) to this file instead of printing it.",
        show_default=False,
        dir_okay=False,
    )


def _write(path: Path, text: str, *, secret: bool) -> None:
    """Write ``text`` + newline; a secret file is created 0600."""
    data = (text + "\n").encode("ascii")
    if secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o600)
    else:
        path.write_bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _stdin_has_input(given: str | None, path: Path | None) -> bool:
    return given is None and path is None and not sys.stdin.isatty()


def wrap(
    remote: Remote,
    key: KeyArg,
    dek: Annotated[
        str | None,
        typer.Argument(
            help="The DEK to wrap, base64 ('-' for stdin). Without it (and without --in or "
            "piped input) the server generates a 32-byte DEK and both are printed.",
            show_default=False,
        ),
    ] = None,
    in_: InOpt = None,
    aad: AadOpt = None,
    generate: Annotated[
        bool,
        typer.Option("--generate", help="Have the server generate the DEK; do not read stdin."),
    ] = False,
    out: Annotated[Path | None, _out_opt("the ciphertext")] = None,
) -> None:
    """Wrap a DEK with a root key (or have the server generate one)."""
    plaintext: bytes | None = None
    if not generate:
        if _stdin_has_input(dek, in_):
            text = sys.stdin.read()
            plaintext = read_b64(text, None, "DEK") if text.strip() else None
        else:
            plaintext = read_b64(dek, in_, "DEK")
    result = remote.client.wrap(key, plaintext, aad=aad)
    if out is not None:
        _write(out, result.ciphertext, secret=False)
    if remote.json:
        data: dict[str, object] = {
            "ciphertext": result.ciphertext,
            "keyVersion": {"id": result.key_version_id},
        }
        if result.generated:
            data["plaintext"] = _b64(result.dek)
        emit_json(data)
        return
    if result.generated:
        note("[yellow]the generated DEK is shown once: keep it secret, store the ciphertext[/]")
        # plain lines, not a table: a folded cell would break copy and paste
        say(f"DEK (base64):  {_b64(result.dek)}")
        shown = result.ciphertext if out is None else f"written to {out}"
        say(f"ciphertext:    {shown}")
        say(f"key version:   {result.key_version_id}")
    elif out is None:
        say(result.ciphertext)
    else:
        note(
            f"wrapped with key version {result.key_version_id}; ciphertext written to {escape(str(out))}"
        )


def unwrap(
    remote: Remote,
    key: KeyArg,
    ciphertext: Annotated[
        str | None,
        typer.Argument(help="The ciphertext from wrap ('-' or piped: stdin).", show_default=False),
    ] = None,
    in_: InOpt = None,
    aad: AadOpt = None,
    out: Annotated[Path | None, _out_opt("the DEK (file mode 0600)")] = None,
) -> None:
    """Unwrap a DEK; prints the DEK, and a rewrapped ciphertext if the key was rotated since."""
    ct = _ciphertext(ciphertext, in_)
    result = remote.client.unwrap(key, ct, aad=aad)
    if out is not None:
        _write(out, _b64(result.plaintext), secret=True)
    if remote.json:
        data: dict[str, object] = {
            "plaintext": _b64(result.plaintext),
            "keyVersion": {"id": result.key_version_id},
        }
        if result.rewrapped_ciphertext is not None:
            data["ciphertext"] = result.rewrapped_ciphertext
            data["rewrappedKeyVersion"] = {"id": result.rewrapped_key_version_id}
        emit_json(data)
        return
    if out is None:
        say(_b64(result.plaintext))
    else:
        note(f"DEK written to {escape(str(out))}")
    if result.rewrapped_ciphertext is not None:
        note(
            f"the key was rotated since (version {result.key_version_id} → "
            f"{result.rewrapped_key_version_id}); store this rewrapped ciphertext instead:"
        )
        note(result.rewrapped_ciphertext)


def rewrap(
    remote: Remote,
    key: KeyArg,
    ciphertext: Annotated[
        str | None,
        typer.Argument(
            help="The ciphertext to move to the newest key version ('-' or piped: stdin).",
            show_default=False,
        ),
    ] = None,
    in_: InOpt = None,
    aad: AadOpt = None,
    out: Annotated[Path | None, _out_opt("the new ciphertext")] = None,
) -> None:
    """Re-wrap a ciphertext with the key's newest version; the DEK never leaves the server."""
    ct = _ciphertext(ciphertext, in_)
    result = remote.client.rewrap(key, ct, aad=aad)
    if out is not None:
        _write(out, result.ciphertext, secret=False)
    if remote.json:
        emit_json(
            {
                "ciphertext": result.ciphertext,
                "keyVersion": {"id": result.key_version_id},
                "rewrappedKeyVersion": {"id": result.rewrapped_key_version_id},
            }
        )
    elif out is None:
        say(result.ciphertext)
    else:
        note(
            f"rewrapped from version {result.key_version_id} to "
            f"{result.rewrapped_key_version_id}; written to {escape(str(out))}"
        )


def _ciphertext(value: str | None, path: Path | None) -> str:
    """The ciphertext text (kept as the server's opaque base64 string, whitespace removed)."""
    if value is not None and path is not None:
        raise typer.BadParameter("give the ciphertext as an argument or with --in, not both")
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="ascii")
    elif value == "-" or (value is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif value is not None:
        text = value
    else:
        raise typer.BadParameter("no ciphertext: give it as an argument, with --in, or on stdin")
    text = "".join(text.split())
    if not text:
        raise typer.BadParameter("the ciphertext is empty")
    read_b64(text, None, "ciphertext")  # a typo is a usage error, not a server round trip
    return text


def register(app: typer.Typer) -> None:
    """Add ``wrap``, ``unwrap`` and ``rewrap`` to the top-level app."""
    app.command("wrap")(remote_command(wrap))
    app.command("unwrap")(remote_command(unwrap))
    app.command("rewrap")(remote_command(rewrap))
