"""``kyok ring`` (key rings) and ``kyok alias`` (second names for keys).

kyok ring create payments ; kyok ring list ; kyok ring delete payments [--force]
kyok alias create <key> orders ; kyok alias delete <key> orders
"""

from __future__ import annotations

from typing import Annotated

import typer

from kyok.cli._output import console, emit_json
from kyok.cli._remote import Remote, grid, remote_command, say, to_json, when

ring_app = typer.Typer(
    help="Key rings: groups of keys that roles can be scoped to.", no_args_is_help=True
)
alias_app = typer.Typer(
    help="Aliases: other names for a key, usable wherever its id is.", no_args_is_help=True
)

RingArg = Annotated[str, typer.Argument(help="The key ring's id (2-100 characters).")]


@ring_app.command("create")
@remote_command
def ring_create(remote: Remote, ring: RingArg) -> None:
    """Create a key ring."""
    remote.client.create_key_ring(ring)
    if remote.json:
        emit_json({"id": ring})
    else:
        say(f"created key ring {ring}")


@ring_app.command("list")
@remote_command
def ring_list(remote: Remote) -> None:
    """List the instance's key rings."""
    rings = list(remote.client.list_key_rings())
    if remote.json:
        emit_json([to_json(r) for r in rings])
        return
    rows = [(r.id, when(r.creation_date), r.created_by) for r in rings]
    console.print(grid(None, ["id", "created", "created by"], rows))


@ring_app.command("delete")
@remote_command
def ring_delete(
    remote: Remote,
    ring: RingArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Delete even if destroyed keys remain (they move to default)."
        ),
    ] = False,
) -> None:
    """Delete a key ring that holds no live keys."""
    remote.client.delete_key_ring(ring, force=force)
    if remote.json:
        emit_json({"id": ring, "deleted": True})
    else:
        say(f"deleted key ring {ring}")


KeyArg = Annotated[str, typer.Argument(help="The key's id (or an alias it already has).")]
AliasArg = Annotated[
    str, typer.Argument(help="The alias: 2-90 characters of letters, digits, '-' and '_'.")
]


@alias_app.command("create")
@remote_command
def alias_create(remote: Remote, key: KeyArg, alias: AliasArg) -> None:
    """Give a key an alias (up to five per key, unique in the instance)."""
    made = remote.client.create_alias(key, alias)
    if remote.json:
        emit_json(to_json(made))
    else:
        say(f"alias {made.alias} → key {made.key_id}")


@alias_app.command("delete")
@remote_command
def alias_delete(remote: Remote, key: KeyArg, alias: AliasArg) -> None:
    """Remove an alias from a key."""
    remote.client.delete_alias(key, alias)
    if remote.json:
        emit_json({"keyId": key, "alias": alias, "deleted": True})
    else:
        say(f"deleted alias {alias}")
