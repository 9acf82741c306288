"""``kyok key``: create, list, show, rotate, disable, enable, delete, restore, purge keys.

kyok key create orders-root --alias orders --tag team:billing
kyok key create app-secret --standard --material-file secret.bin
kyok key list --state active --state destroyed --all --json
kyok key show orders                   (id or alias)
kyok key rotate orders
kyok key versions orders
kyok key disable orders ; kyok key enable orders
kyok key delete orders ; kyok key restore <id> ; kyok key purge <id> --yes
kyok key move orders --ring payments
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from kyok.cli._output import EXIT_USAGE, console, emit_json, fail, note
from kyok.cli._remote import Remote, grid, remote_command, say, to_json, when
from kyok.client import Key, KeyState

app = typer.Typer(
    help="Root and standard keys: create, list, show, rotate, change state, delete.",
    no_args_is_help=True,
)

KeyArg = Annotated[str, typer.Argument(help="The key's id or one of its aliases.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

_STATE_NAMES = {
    "pre-activation": KeyState.PRE_ACTIVATION,
    "active": KeyState.ACTIVE,
    "suspended": KeyState.SUSPENDED,
    "disabled": KeyState.SUSPENDED,
    "deactivated": KeyState.DEACTIVATED,
    "expired": KeyState.DEACTIVATED,
    "destroyed": KeyState.DESTROYED,
    "deleted": KeyState.DESTROYED,
}


def _parse_states(values: list[str] | None) -> list[int] | None:
    if not values:
        return None
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if part.isdigit() and int(part) in {s.value for s in KeyState}:
                out.append(int(part))
            elif part in _STATE_NAMES:
                out.append(_STATE_NAMES[part].value)
            else:
                raise typer.BadParameter(
                    f"unknown state {part!r} (0-3, 5, or active, suspended, deactivated, destroyed)",
                    param_hint="--state",
                )
    return out


def _material(path: Path | None, b64: str | None) -> bytes | None:
    if path is not None and b64 is not None:
        raise typer.BadParameter("give --material-file or --material-b64, not both")
    if path is not None:
        return path.read_bytes()
    if b64 is not None:
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise typer.BadParameter("not valid base64", param_hint="--material-b64") from None
    return None


def _expiration(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "use an RFC 3339 time such as 2030-01-31T00:00:00Z", param_hint="--expiration"
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a time zone (Z or +01:00)", param_hint="--expiration")
    return parsed


def _kind(key: Key) -> str:
    return "root" if key.is_root else "standard"


def _show_key(key: Key, remote: Remote, *, with_material: bool = False) -> None:
    if remote.json:
        data = to_json(key)
        if with_material and key.payload is not None:
            data["payload"] = base64.b64encode(key.payload).decode()
        emit_json(data)
        return
    rows: list[tuple[str, object]] = [
        ("id", key.id),
        ("name", key.name),
        ("type", _kind(key)),
        ("state", f"{key.state.value} ({key.state.label})"),
        ("aliases", ", ".join(key.aliases) or None),
        ("tags", ", ".join(key.tags) or None),
        ("description", key.description),
        ("key ring", key.key_ring_id),
        ("imported", key.imported),
        ("version", key.key_version.id if key.key_version else None),
        ("created", f"{when(key.creation_date)} by {key.created_by or '?'}"),
        ("last rotated", when(key.last_rotate_date)),
        ("expires", when(key.expiration_date)),
    ]
    if key.state is KeyState.DESTROYED:
        rows.append(("deleted", f"{when(key.deletion_date)} by {key.deleted_by or '?'}"))
    if key.crn:
        rows.append(("crn", key.crn))
    if with_material and key.payload is not None:
        rows.append(("material (base64)", base64.b64encode(key.payload).decode()))
    console.print(grid(None, ["field", "value"], rows))


# ---------------------------------------------------------------- commands


@app.command("create")
@remote_command
def create(
    remote: Remote,
    name: Annotated[str, typer.Argument(help="The key's name (2-90 characters).")],
    standard: Annotated[
        bool,
        typer.Option(
            "--standard",
            help="A standard key (extractable: its material can be read back) instead of a "
            "root key (wraps DEKs, never leaves the server).",
        ),
    ] = False,
    material_file: Annotated[
        Path | None,
        typer.Option(
            "--material-file",
            help="Import this file's bytes as the key material (root keys: 16, 24 or 32 bytes).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    material_b64: Annotated[
        str | None,
        typer.Option("--material-b64", help="Import this base64 key material."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A description.")] = None,
    expiration: Annotated[
        str | None,
        typer.Option(help="When the key expires (RFC 3339, e.g. 2030-01-31T00:00:00Z)."),
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="An alias; repeat for up to five.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeat for more.")] = None,
    ring: Annotated[
        str | None, typer.Option("--ring", help="Create it in this key ring (default: default).")
    ] = None,
    show_material: Annotated[
        bool,
        typer.Option("--show-material", help="Print a standard key's material (base64)."),
    ] = False,
) -> None:
    """Create a root key (default) or a standard key, generated or imported."""
    key = remote.client.create_key(
        name,
        extractable=standard,
        material=_material(material_file, material_b64),
        description=description,
        expiration=_expiration(expiration),
        aliases=alias or (),
        tags=tag or (),
        key_ring=ring,
    )
    if not remote.json:
        note(f"created {_kind(key)} key {key.id}")
    _show_key(key, remote, with_material=show_material)


@app.command("list")
@remote_command
def list_(
    remote: Remote,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="Only keys in this state: 0-3, 5 or active, suspended, deactivated, destroyed; "
            "repeat or separate with commas (default: all but destroyed).",
        ),
    ] = None,
    root: Annotated[bool, typer.Option("--root", help="Only root keys.")] = False,
    standard: Annotated[bool, typer.Option("--standard", help="Only standard keys.")] = False,
    search: Annotated[
        str | None,
        typer.Option(help="Search names and aliases (prefixes exact:, not:, alias:, name:)."),
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="Sort fields, '-' for descending (e.g. -creationDate).")
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter", help='A Key Protect filter, e.g. creationDate=gt:"2025-01-01T00:00:00Z".'
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Page size.", min=1, max=5000)] = 200,
    offset: Annotated[int, typer.Option(help="Skip this many keys.", min=0)] = 0,
    all_: Annotated[bool, typer.Option("--all", help="Fetch every page.")] = False,
) -> None:
    """List keys (never their material)."""
    if root and standard:
        fail("--root and --standard exclude each other", EXIT_USAGE)
    extractable = True if standard else False if root else None
    states = _parse_states(state)
    if all_:
        keys = list(
            remote.client.iter_keys(
                page_size=limit,
                state=states,
                extractable=extractable,
                search=search,
                sort=sort,
                filter=filter_,
            )
        )
    else:
        keys = list(
            remote.client.list_keys(
                limit=limit,
                offset=offset,
                state=states,
                extractable=extractable,
                search=search,
                sort=sort,
                filter=filter_,
            )
        )
    if remote.json:
        emit_json([to_json(k) for k in keys])
        return
    rows = [
        (
            k.id,
            k.name,
            _kind(k),
            k.state.label,
            ", ".join(k.aliases) or None,
            k.key_ring_id,
        )
        for k in keys
    ]
    console.print(grid(None, ["id", "name", "type", "state", "aliases", "ring"], rows))
    if not all_ and len(keys) == limit:
        note(f"(first {limit} from offset {offset}; --all for every key)")


@app.command("count")
@remote_command
def count(
    remote: Remote,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Only keys in this state (as for `kyok key list`)."),
    ] = None,
    root: Annotated[bool, typer.Option("--root", help="Only root keys.")] = False,
    standard: Annotated[bool, typer.Option("--standard", help="Only standard keys.")] = False,
) -> None:
    """Count keys without listing them."""
    if root and standard:
        fail("--root and --standard exclude each other", EXIT_USAGE)
    extractable = True if standard else False if root else None
    total = remote.client.count_keys(state=_parse_states(state), extractable=extractable)
    if remote.json:
        emit_json({"count": total})
    else:
        say(str(total))


@app.command("show")
@remote_command
def show(
    remote: Remote,
    key: KeyArg,
    show_material: Annotated[
        bool,
        typer.Option(
            "--show-material",
            help="Also print a standard key's material (base64; needs ReaderPlus).",
        ),
    ] = False,
) -> None:
    """Show a key's metadata."""
    client = remote.client
    found = client.get_key(key) if show_material else client.get_key_metadata(key)
    _show_key(found, remote, with_material=show_material)


@app.command("versions")
@remote_command
def versions(
    remote: Remote,
    key: KeyArg,
    limit: Annotated[int | None, typer.Option(help="Page size.", min=1, max=5000)] = None,
    offset: Annotated[int | None, typer.Option(help="Skip this many versions.", min=0)] = None,
) -> None:
    """List a key's versions, newest first."""
    page = remote.client.list_key_versions(
        key, limit=limit, offset=offset, total_count=True, all_key_states=True
    )
    if remote.json:
        emit_json([to_json(v) for v in page])
        return
    console.print(grid(None, ["version", "created"], [(v.id, when(v.creation_date)) for v in page]))
    if page.total_count is not None and page.total_count > len(page):
        note(f"({len(page)} of {page.total_count})")


@app.command("rotate")
@remote_command
def rotate(
    remote: Remote,
    key: KeyArg,
    material_file: Annotated[
        Path | None,
        typer.Option(
            "--material-file",
            help="New material for an imported key (its file's bytes), sent in plain; "
            "`kyok import --rotate` sends it through the import token.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    material_b64: Annotated[
        str | None, typer.Option("--material-b64", help="New material, base64.")
    ] = None,
) -> None:
    """Rotate a root key: new wraps use a new version, old ciphertexts still unwrap."""
    client = remote.client
    client.rotate_key(key, material=_material(material_file, material_b64))
    after = client.get_key_metadata(key)
    if remote.json:
        emit_json(to_json(after))
    else:
        version = after.key_version.id if after.key_version else "?"
        say(f"rotated {after.id}; current version {version}")


def _state_change(remote: Remote, key: str, verb: str) -> None:
    client = remote.client
    getattr(client, f"{verb}_key")(key)
    after = client.get_key_metadata(key)
    if remote.json:
        emit_json(to_json(after))
    else:
        say(f"{verb}d {after.id}; state {after.state.value} ({after.state.label})")


@app.command("disable")
@remote_command
def disable(remote: Remote, key: KeyArg) -> None:
    """Suspend a root key: no wrap or unwrap until it is enabled again."""
    _state_change(remote, key, "disable")


@app.command("enable")
@remote_command
def enable(remote: Remote, key: KeyArg) -> None:
    """Re-activate a suspended key (not within 30 s of its last change)."""
    _state_change(remote, key, "enable")


@app.command("delete")
@remote_command
def delete(
    remote: Remote,
    key: KeyArg,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even if resources are registered with it.")
    ] = False,
) -> None:
    """Destroy a key (state 5). It can be restored for 30 days, and purged after 4 hours."""
    deleted = remote.client.delete_key(key, force=force)
    if remote.json:
        emit_json(to_json(deleted))
    else:
        say(f"deleted {deleted.id}; restore it with `kyok key restore {deleted.id}`")


@app.command("restore")
@remote_command
def restore(
    remote: Remote, key: Annotated[str, typer.Argument(help="The destroyed key's id.")]
) -> None:
    """Bring a destroyed key back (within 30 days of its deletion)."""
    restored = remote.client.restore_key(key)
    if remote.json:
        emit_json(to_json(restored))
    else:
        say(f"restored {restored.id}; state {restored.state.value} ({restored.state.label})")


@app.command("purge")
@remote_command
def purge(
    remote: Remote,
    key: Annotated[str, typer.Argument(help="The destroyed key's id.")],
    yes: YesOpt = False,
) -> None:
    """Remove a destroyed key for good (KeyPurge role, 4 h after deletion); irreversible."""
    if not yes and not typer.confirm(
        f"Purge {key} for good? Data it protects can never be decrypted again", err=True
    ):
        fail("not purged")
    purged = remote.client.purge_key(key)
    if remote.json:
        emit_json(to_json(purged) if purged is not None else {"id": key, "purged": True})
    else:
        say(f"purged {key}")


@app.command("move")
@remote_command
def move(
    remote: Remote,
    key: KeyArg,
    ring: Annotated[str, typer.Option("--ring", help="The key ring to move it to.")],
) -> None:
    """Move a key to another key ring."""
    client = remote.client
    current = client.get_key_metadata(key)
    moved = client.set_key_ring(current.id, ring, current_key_ring=current.key_ring_id)
    if remote.json:
        emit_json(to_json(moved))
    else:
        say(f"moved {moved.id} from {current.key_ring_id} to {moved.key_ring_id}")
