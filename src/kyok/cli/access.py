"""``kyok principal``, ``kyok apikey``, ``kyok role``: who may do what in the instance
(role KyokInstanceAdmin).

    kyok principal create ci-pipeline --kind service
    kyok apikey create ci-pipeline --name github      prints the key once
    kyok role grant ci-pipeline Writer --scope key_ring:payments
    kyok role list ci-pipeline ; kyok role revoke <binding id>
    kyok principal delete ci-pipeline --yes           its API keys and roles go too

A principal is named by its id or, if no principal has that id, by its (unique) name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from kyok.cli._output import console, emit_json, fail, note
from kyok.cli._remote import Remote, grid, remote_command, say, to_json, when
from kyok.client import KyokClient, NotFound, Principal

principal_app = typer.Typer(
    help="Principals: users and services of the instance.", no_args_is_help=True
)
apikey_app = typer.Typer(help="API keys of principals.", no_args_is_help=True)
role_app = typer.Typer(help="Role bindings: grant, list and revoke roles.", no_args_is_help=True)

PrincipalArg = Annotated[str, typer.Argument(help="The principal's id or name.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class Kind(StrEnum):
    user = "user"
    service = "service"


class RoleName(StrEnum):
    Reader = "Reader"
    ReaderPlus = "ReaderPlus"
    Writer = "Writer"
    Manager = "Manager"
    KeyPurge = "KeyPurge"
    KyokInstanceAdmin = "KyokInstanceAdmin"


def resolve_principal(client: KyokClient, ref: str) -> Principal:
    """The principal whose id is ``ref``, else the one named ``ref``.

    Raises:
        NotFound: neither. ValueError: several principals have that name.
    """
    try:
        return client.get_principal(ref)
    except NotFound:
        named = [p for p in client.list_principals() if p.name == ref]
        if len(named) > 1:
            raise ValueError(f"several principals are named {ref!r}; use the id") from None
        if not named:
            raise
        return named[0]


def _principal_rows(items: list[Principal]) -> list[tuple[object, ...]]:
    return [(p.id, p.name, p.kind, when(p.created_at), p.created_by) for p in items]


_P_COLS = ["id", "name", "kind", "created", "created by"]


# ---------------------------------------------------------------- principals


@principal_app.command("create")
@remote_command
def principal_create(
    remote: Remote,
    name: Annotated[str, typer.Argument(help="The principal's name (2-64 characters).")],
    kind: Annotated[Kind, typer.Option(help="A person (user) or a program (service).")] = Kind.user,
) -> None:
    """Create a principal (then give it an API key and roles)."""
    made = remote.client.create_principal(name, kind=kind.value)
    if remote.json:
        emit_json(to_json(made))
    else:
        console.print(grid(None, _P_COLS, _principal_rows([made])))


@principal_app.command("list")
@remote_command
def principal_list(remote: Remote) -> None:
    """List the instance's principals."""
    items = remote.client.list_principals()
    if remote.json:
        emit_json([to_json(p) for p in items])
    else:
        console.print(grid(None, _P_COLS, _principal_rows(items)))


@principal_app.command("show")
@remote_command
def principal_show(remote: Remote, principal: PrincipalArg) -> None:
    """Show a principal with its API keys and role bindings."""
    client = remote.client
    found = resolve_principal(client, principal)
    keys = client.list_api_keys(found.id)
    roles = client.list_roles(found.id)
    if remote.json:
        emit_json(to_json(found) | {"apikeys": to_json(keys), "roles": to_json(roles)})
        return
    console.print(grid(None, _P_COLS, _principal_rows([found])))
    console.print(
        grid(
            "API keys",
            ["id", "name", "created"],
            [(k.id, k.name, when(k.created_at)) for k in keys],
        )
    )
    console.print(
        grid("roles", ["binding", "role", "scope"], [(b.id, b.role, b.scope) for b in roles])
    )


@principal_app.command("delete")
@remote_command
def principal_delete(remote: Remote, principal: PrincipalArg, yes: YesOpt = False) -> None:
    """Delete a principal with its API keys, refresh tokens and role bindings."""
    client = remote.client
    found = resolve_principal(client, principal)
    if not yes and not typer.confirm(
        f"Delete principal {found.name} ({found.id}) and its API keys?", err=True
    ):
        fail("not deleted")
    client.delete_principal(found.id)
    if remote.json:
        emit_json({"id": found.id, "deleted": True})
    else:
        say(f"deleted principal {found.name} ({found.id})")


# ---------------------------------------------------------------- API keys


@apikey_app.command("create")
@remote_command
def apikey_create(
    remote: Remote,
    principal: PrincipalArg,
    name: Annotated[str, typer.Option(help="A name for the key (1-64 characters).")] = "default",
) -> None:
    """Create an API key. The key is printed once, here: the server keeps only a hash."""
    client = remote.client
    owner = resolve_principal(client, principal)
    made = client.create_api_key(owner.id, name)
    note(
        "[yellow]warning:[/] this API key is shown only now and cannot be retrieved later; "
        "store it in a secret manager"
    )
    if remote.json:
        emit_json(to_json(made) | {"apikey": made.secret})
    else:
        console.print(
            grid(
                None,
                ["field", "value"],
                [
                    ("id", made.id),
                    ("name", made.name),
                    ("principal", owner.name),
                    ("apikey", made.secret),
                ],
            )
        )


@apikey_app.command("list")
@remote_command
def apikey_list(remote: Remote, principal: PrincipalArg) -> None:
    """List a principal's API keys (never the keys themselves)."""
    client = remote.client
    owner = resolve_principal(client, principal)
    keys = client.list_api_keys(owner.id)
    if remote.json:
        emit_json([to_json(k) for k in keys])
    else:
        rows = [(k.id, k.name, when(k.created_at), k.created_by) for k in keys]
        console.print(grid(None, ["id", "name", "created", "created by"], rows))


@apikey_app.command("delete")
@remote_command
def apikey_delete(
    remote: Remote, apikey: Annotated[str, typer.Argument(help="The API key's id.")]
) -> None:
    """Revoke an API key: it can no longer get tokens."""
    remote.client.delete_api_key(apikey)
    if remote.json:
        emit_json({"id": apikey, "deleted": True})
    else:
        say(f"deleted API key {apikey}")


# ---------------------------------------------------------------- roles


@role_app.command("grant")
@remote_command
def role_grant(
    remote: Remote,
    principal: PrincipalArg,
    role: Annotated[RoleName, typer.Argument(help="The role.", case_sensitive=False)],
    scope: Annotated[
        str,
        typer.Option(help="Where: instance, key_ring:<ring id> or key:<key id>."),
    ] = "instance",
) -> None:
    """Grant a role to a principal on the instance, a key ring or one key."""
    client = remote.client
    owner = resolve_principal(client, principal)
    binding = client.grant_role(owner.id, role.value, scope=scope)
    if remote.json:
        emit_json(to_json(binding))
    else:
        say(f"granted {binding.role} on {binding.scope} to {owner.name} (binding {binding.id})")


@role_app.command("list")
@remote_command
def role_list(remote: Remote, principal: PrincipalArg) -> None:
    """List a principal's role bindings."""
    client = remote.client
    owner = resolve_principal(client, principal)
    roles = client.list_roles(owner.id)
    if remote.json:
        emit_json([to_json(b) for b in roles])
    else:
        rows = [(b.id, b.role, b.scope, when(b.created_at), b.created_by) for b in roles]
        console.print(grid(None, ["binding", "role", "scope", "granted", "granted by"], rows))


@role_app.command("revoke")
@remote_command
def role_revoke(
    remote: Remote,
    binding: Annotated[str, typer.Argument(help="The binding's id (see `kyok role list`).")],
) -> None:
    """Revoke a role binding (the instance's last KyokInstanceAdmin cannot be revoked)."""
    remote.client.revoke_role(binding)
    if remote.json:
        emit_json({"id": binding, "deleted": True})
    else:
        say(f"revoked {binding}")
