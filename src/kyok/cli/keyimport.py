"""``kyok import``: bring your own key material, encrypted to the instance's import token.

kyok import --name orders-root --key-file orders.key                      RSA-OAEP-SHA-256
kyok import --name hpcs-root --key-file k.bin --algorithm rsa-oaep-sha1 --cbc
kyok import --name pq-root --key-file k.hex --format hex --algorithm hybrid
kyok import --name app-secret --key-file secret.bin --standard            (always plain)
kyok import --rotate orders-root --key-file orders-2.key                  new material, same key

The key file holds the raw key bytes (a root key takes 16, 24 or 32), or with ``--format hex``
or ``--format base64`` the same as text. By default a root key's material travels sealed to
the import token (a token is created when there is no usable one; ``--no-create-token``
forbids that); ``--plain`` sends it base64-encoded in the request instead, as standard keys
always are. The material is never printed.
"""

from __future__ import annotations

import base64
import binascii
import stat
import string
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kyok.cli._output import console, emit_json, note
from kyok.cli._remote import Remote, grid, remote_command, say, to_json, when
from kyok.client import Key, byok

#: Root keys take 16, 24 or 32 bytes; standard keys up to this many.
ROOT_SIZES = (16, 24, 32)
STANDARD_MAX = 7500


class Algorithm(StrEnum):
    """The ``--algorithm`` choices and their wire names."""

    RSA_OAEP_SHA256 = "rsa-oaep-sha256"
    RSA_OAEP_SHA1 = "rsa-oaep-sha1"
    HYBRID = "hybrid"

    @property
    def wire(self) -> str:
        """The ``encryptionAlgorithm`` sent."""
        return {
            Algorithm.RSA_OAEP_SHA256: byok.ALG_OAEP_SHA256,
            Algorithm.RSA_OAEP_SHA1: byok.ALG_OAEP_SHA1,
            Algorithm.HYBRID: byok.ALG_HYBRID,
        }[self]


class Format(StrEnum):
    """How the key file holds the material."""

    RAW = "raw"
    HEX = "hex"
    BASE64 = "base64"


def _bad(message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint="--key-file")


def _warn_if_readable(path: Path) -> None:
    """A key file others can read is a leak waiting to happen: say so (on stderr)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        note(
            f"[yellow]warning:[/] {escape(str(path))} holds key material but is readable by "
            f"others (mode {mode:04o}); run `chmod 600 {escape(str(path))}`"
        )


def _looks_like_text(data: bytes) -> str | None:
    """A hint when raw bytes of the wrong length look like hex or base64 text."""
    text = data.strip()
    if not text:
        return None
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    if all(c in string.hexdigits for c in decoded):
        return "; the file looks like hex text: add --format hex"
    if all(c in string.ascii_letters + string.digits + "+/=" for c in decoded):
        return "; the file looks like base64 text: add --format base64"
    return None


def read_material(path: Path, fmt: Format) -> bytes:
    """The key material in ``path`` (``-``: stdin), decoded per ``fmt``; never echoed.

    Raises:
        typer.BadParameter: empty, or not valid hex/base64.
    """
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        if not path.is_file():
            raise _bad(f"file {str(path)!r} does not exist")
        _warn_if_readable(path)
        data = path.read_bytes()
    if fmt is Format.RAW:
        material = data
    else:
        text = b"".join(data.split())
        try:
            if fmt is Format.HEX:
                material = binascii.unhexlify(text)
            else:
                material = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"the key file is not valid {fmt.value}") from None
    if not material:
        raise _bad("the key file is empty")
    return material


def check_length(material: bytes, *, standard: bool, raw: bool) -> None:
    """Root keys take 16, 24 or 32 bytes; standard keys 1-7500.

    Raises:
        typer.BadParameter: another length (the message gives the length, never the bytes).
    """
    hint = (_looks_like_text(material) or "") if raw else ""
    if standard:
        if len(material) > STANDARD_MAX:
            raise _bad(f"the key file holds {len(material)} bytes: at most {STANDARD_MAX}")
        return
    if len(material) not in ROOT_SIZES:
        raise _bad(f"the key file holds {len(material)} bytes: a root key takes 16, 24 or 32{hint}")


def _show(key: Key, remote: Remote, how: str) -> None:
    if remote.json:
        emit_json(to_json(key))
        return
    note(f"imported {'standard' if key.extractable else 'root'} key {key.id} ({how})")
    rows: list[tuple[str, object]] = [
        ("id", key.id),
        ("name", key.name),
        ("type", "standard" if key.extractable else "root"),
        ("state", f"{key.state.value} ({key.state.label})"),
        ("imported", key.imported),
        ("aliases", ", ".join(key.aliases) or None),
        ("description", key.description),
        ("key ring", key.key_ring_id),
        ("version", key.key_version.id if key.key_version else None),
        ("created", when(key.creation_date)),
    ]
    console.print(grid(None, ["field", "value"], rows))


def import_key(
    remote: Remote,
    key_file: Annotated[
        Path,
        typer.Option(
            "--key-file",
            help="The key material: raw bytes (root keys: 16, 24 or 32), or text with --format. "
            "'-' reads stdin.",
            dir_okay=False,  # not exists=True: Typer would then refuse '-'
            allow_dash=True,
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The new key's name (not with --rotate).", show_default=False),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="How the key file holds the material.")
    ] = Format.RAW,
    algorithm: Annotated[
        Algorithm,
        typer.Option(
            "--algorithm",
            help="How the material is sealed to the import token: RSA-OAEP with SHA-256 (Key "
            "Protect), with SHA-1 (Hyper Protect Crypto Services), or kyok's ML-KEM-768 + "
            "X25519 hybrid.",
        ),
    ] = Algorithm.RSA_OAEP_SHA256,
    cbc: Annotated[
        bool,
        typer.Option(
            "--cbc", help="Encrypt the token's nonce with AES-CBC (HPCS; rsa-oaep-sha1 only)."
        ),
    ] = False,
    standard: Annotated[
        bool,
        typer.Option(
            "--standard",
            help="Import a standard key (extractable); always sent in plain, never via a token.",
        ),
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain", help="Send the material base64-encoded in the request, without a token."
        ),
    ] = False,
    no_create_token: Annotated[
        bool,
        typer.Option(
            "--no-create-token",
            help="Use the instance's import token; fail instead of creating one when there is "
            "no usable token.",
        ),
    ] = False,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="An alias; repeat for up to five.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="A description.", show_default=False)
    ] = None,
    key_ring: Annotated[
        str | None,
        typer.Option(
            "--key-ring", help="Create it in this key ring (default: default).", show_default=False
        ),
    ] = None,
    rotate: Annotated[
        str | None,
        typer.Option(
            "--rotate",
            help="Rotate this imported root key (id or alias) to the new material instead of "
            "creating a key.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import key material: a root key through the import token (default), or in plain."""
    if rotate is not None:
        extras = {
            "--name": name,
            "--alias": alias,
            "--description": description,
            "--key-ring": key_ring,
            "--standard": standard or None,
        }
        given = [flag for flag, value in extras.items() if value]
        if given:
            raise typer.BadParameter(f"--rotate takes none of {', '.join(given)}")
    elif not name:
        raise typer.BadParameter("give the new key's --name (or --rotate KEY)")
    if standard:
        if algorithm is not Algorithm.RSA_OAEP_SHA256 or cbc or no_create_token:
            raise typer.BadParameter(
                "a standard key is always imported in plain: --algorithm, --cbc and "
                "--no-create-token do not apply"
            )
        plain = True
    if cbc and algorithm is not Algorithm.RSA_OAEP_SHA1:
        raise typer.BadParameter("--cbc goes with --algorithm rsa-oaep-sha1 only")
    if plain and (cbc or algorithm is not Algorithm.RSA_OAEP_SHA256 or no_create_token):
        raise typer.BadParameter(
            "--plain sends no token: --algorithm, --cbc and --no-create-token do not apply"
        )

    material = read_material(key_file, fmt)
    check_length(material, standard=standard, raw=fmt is Format.RAW)
    client = remote.client
    nonce_mode = "cbc" if cbc else "gcm"
    how = "in plain" if plain else f"through the import token, {algorithm.wire}"

    if rotate is not None:
        client.rotate_key(
            rotate,
            material=material,
            via_token=not plain,
            algorithm=algorithm.wire,
            nonce_mode=nonce_mode,
            create_token=not no_create_token,
        )
        after = client.get_key_metadata(rotate)
        if remote.json:
            emit_json(to_json(after))
        else:
            version = after.key_version.id if after.key_version else "?"
            say(f"rotated {after.id} to new material ({how}); current version {version}")
        return

    if name is None:  # pragma: no cover - refused above
        raise typer.BadParameter("give the new key's --name")
    if plain:
        key = client.create_key(
            name,
            extractable=standard,
            material=material,
            description=description,
            aliases=alias or (),
            key_ring=key_ring,
        )
    else:
        key = client.import_root_key(
            name,
            material,
            algorithm=algorithm.wire,
            nonce_mode=nonce_mode,
            create_token=not no_create_token,
            description=description,
            aliases=alias or (),
            key_ring=key_ring,
        )
    _show(key, remote, how)


def register(app: typer.Typer) -> None:
    """Add ``import`` to the top-level app."""
    app.command("import")(remote_command(import_key))


__all__ = ["Algorithm", "Format", "check_length", "import_key", "read_material", "register"]
