"""Key and instance policies, dual-authorisation deletion, sync and registrations.

kyok key policy show orders
kyok key policy set orders --rotation-months 3           (rotate every 3 months of 30 days)
kyok key policy set orders --no-rotation --dual-auth-delete
kyok key set-for-deletion orders ; kyok key unset-for-deletion orders
kyok key sync orders
kyok key registrations [orders] [--crn 'crn:v1:*'] [--prevent-deletion | --no-prevent-deletion]
kyok instance policy show [--type rotation]
kyok instance policy set rotation --enable --attr interval_month=3
kyok instance policy set keyCreateImportAccess --enable --attr enforce_token=true
kyok instance policy set allowedIP --enable --attr allowed_ip=10.0.0.0/8 --attr allowed_ip=::1/128
kyok instance policy set dualAuthDelete --disable
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from kyok.cli._output import console, emit_json
from kyok.cli._remote import Remote, grid, remote_command, say, to_json, when
from kyok.client import InstancePolicy, KeyPolicies

key_policy_app = typer.Typer(
    help="A key's policies: automatic rotation and dual authorisation for deletion.",
    no_args_is_help=True,
)
instance_app = typer.Typer(help="The instance's settings.", no_args_is_help=True)
instance_policy_app = typer.Typer(
    help="Instance policies: rotation, dualAuthDelete, keyCreateImportAccess, allowedIP, "
    "allowedNetwork, metrics.",
    no_args_is_help=True,
)
instance_app.add_typer(instance_policy_app, name="policy")

KeyArg = Annotated[str, typer.Argument(help="The key's id or one of its aliases.")]

#: Instance policy attributes that are lists even when given once.
_LIST_ATTRIBUTES = frozenset({"allowed_ip"})


def _key_policies_json(policies: KeyPolicies) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if policies.rotation is not None:
        out["rotation"] = {
            "enabled": policies.rotation.enabled,
            "interval_month": policies.rotation.interval_months,
        }
    if policies.dual_auth_delete is not None:
        out["dualAuthDelete"] = {"enabled": policies.dual_auth_delete.enabled}
    return out


def _show_key_policies(key: str, policies: KeyPolicies, remote: Remote) -> None:
    if remote.json:
        emit_json(_key_policies_json(policies))
        return
    rows: list[tuple[object, ...]] = []
    for p in policies:
        setting = "on" if p.enabled else "off"
        if p.policy_type == "rotation" and p.interval_months is not None:
            setting += f", every {p.interval_months} month(s)"
        rows.append(
            (p.policy_type, setting, f"{when(p.last_update_date or p.creation_date)}", p.updated_by)
        )
    if not rows:
        say(f"{key} has no key policies (the instance's apply)")
        return
    console.print(_folded(grid(None, ["policy", "setting", "updated", "by"], rows)))


@key_policy_app.command("show")
@remote_command
def key_policy_show(remote: Remote, key: KeyArg) -> None:
    """Show a key's rotation and dual-authorisation policies."""
    _show_key_policies(key, remote.client.get_key_policies(key), remote)


@key_policy_app.command("set")
@remote_command
def key_policy_set(
    remote: Remote,
    key: KeyArg,
    rotation_months: Annotated[
        int | None,
        typer.Option(
            "--rotation-months",
            min=1,
            max=12,
            help="Rotate automatically every N months (of 30 days); turns rotation on.",
            show_default=False,
        ),
    ] = None,
    rotation: Annotated[
        bool | None,
        typer.Option(
            "--rotation/--no-rotation",
            help="Turn automatic rotation on (with --rotation-months) or off.",
            show_default=False,
        ),
    ] = None,
    dual_auth_delete: Annotated[
        bool | None,
        typer.Option(
            "--dual-auth-delete/--no-dual-auth-delete",
            help="Require a second principal's approval to delete the key (cannot be undone).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Set a key's policies (Manager); what is not given stays as it is."""
    if rotation_months is None and rotation is None and dual_auth_delete is None:
        raise typer.BadParameter(
            "give --rotation-months, --rotation/--no-rotation or --dual-auth-delete"
        )
    policies = remote.client.set_key_policies(
        key,
        rotation_months=rotation_months,
        rotation_enabled=rotation,
        dual_auth_delete=dual_auth_delete,
    )
    _show_key_policies(key, policies, remote)


def _key_action(remote: Remote, key: str, action: str, done: str) -> None:
    getattr(remote.client, action)(key)
    if remote.json:
        emit_json({"id": key, "action": action, "done": True})
    else:
        say(done)


def set_for_deletion(remote: Remote, key: KeyArg) -> None:
    """Approve a dual-authorisation key's deletion; another principal may then delete it (7 days)."""
    _key_action(
        remote,
        key,
        "set_key_for_deletion",
        f"approved the deletion of {key}; another principal can delete it within 7 days",
    )


def unset_for_deletion(remote: Remote, key: KeyArg) -> None:
    """Withdraw a pending deletion approval."""
    _key_action(remote, key, "unset_key_for_deletion", f"withdrew the deletion approval of {key}")


def sync(remote: Remote, key: KeyArg) -> None:
    """Notify the resources registered with a key of its current state."""
    _key_action(remote, key, "sync_key", f"asked to sync the resources of {key}")


def registrations(
    remote: Remote,
    key: Annotated[
        str | None,
        typer.Argument(help="Only this key (id or alias); default: every key.", show_default=False),
    ] = None,
    crn: Annotated[
        str | None,
        typer.Option("--crn", help="Only resources whose CRN matches (* for any characters)."),
    ] = None,
    prevent_deletion: Annotated[
        bool | None,
        typer.Option(
            "--prevent-deletion/--no-prevent-deletion",
            help="Only registrations that do (or do not) hold their key back from deletion.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Page size.", min=1, max=5000)] = None,
    offset: Annotated[int | None, typer.Option(help="Skip this many.", min=0)] = None,
) -> None:
    """List the resources registered with a key (or with any key)."""
    page = remote.client.list_registrations(
        key, crn_query=crn, prevent_key_deletion=prevent_deletion, limit=limit, offset=offset
    )
    if remote.json:
        emit_json([to_json(r) for r in page])
        return
    rows = [
        (
            r.key_id,
            r.resource_crn,
            r.key_version.id if r.key_version else None,
            "yes" if r.prevent_key_deletion else "no",
            when(r.creation_date),
        )
        for r in page
    ]
    console.print(
        _folded(grid(None, ["key", "resource", "version", "holds deletion", "created"], rows))
    )


def register_key_commands(app: typer.Typer) -> None:
    """Add ``policy``, ``set-for-deletion``, ``unset-for-deletion``, ``sync`` and
    ``registrations`` to the ``kyok key`` group."""
    app.add_typer(key_policy_app, name="policy")
    app.command("set-for-deletion")(remote_command(set_for_deletion))
    app.command("unset-for-deletion")(remote_command(unset_for_deletion))
    app.command("sync")(remote_command(sync))
    app.command("registrations")(remote_command(registrations))


# ---------------------------------------------------------------- instance policies


def _attr_value(text: str) -> Any:
    """``3`` → 3, ``true`` → True, ``["a"]`` → ["a"]; anything else stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_attributes(values: list[str] | None) -> dict[str, Any] | None:
    """``--attr NAME=VALUE`` options as a dict; a repeated name collects a list.

    Raises:
        typer.BadParameter: an option without ``=``.
    """
    if not values:
        return None
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--attr")
        value = _attr_value(raw)
        if name in out:
            previous = out[name]
            out[name] = (previous if isinstance(previous, list) else [previous]) + (
                value if isinstance(value, list) else [value]
            )
        elif name in _LIST_ATTRIBUTES and not isinstance(value, list):
            out[name] = [value]
        else:
            out[name] = value
    return out


def _attributes_text(policy: InstancePolicy) -> str | None:
    if not policy.attributes:
        return None
    return "\n".join(
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
        for k, v in sorted(policy.attributes.items())
    )


def _folded(t: Table) -> Table:
    """Long cells (attribute lists, times, principal ids) fold onto more lines, never cut;
    the first column stays whole."""
    for column in t.columns:
        column.overflow = "fold"
    t.columns[0].no_wrap = True  # the policy type or key id, copied into the next command
    return t


def _show_instance_policies(policies: list[InstancePolicy], remote: Remote) -> None:
    if remote.json:
        emit_json([to_json(p) for p in policies])
        return
    if not policies:
        say("no instance policies are set")
        return
    rows = [
        (
            p.policy_type,
            "on" if p.enabled else "off",
            _attributes_text(p),
            when(p.last_updated or p.creation_date),
        )
        for p in policies
    ]
    console.print(_folded(grid(None, ["policy", "setting", "attributes", "updated"], rows)))


@instance_policy_app.command("show")
@remote_command
def instance_policy_show(
    remote: Remote,
    type_: Annotated[
        str | None,
        typer.Option("--type", help="Only this policy type (e.g. rotation).", show_default=False),
    ] = None,
) -> None:
    """Show the instance's policies."""
    _show_instance_policies(remote.client.get_instance_policies(type_), remote)


@instance_policy_app.command("set")
@remote_command
def instance_policy_set(
    remote: Remote,
    policy_type: Annotated[
        str,
        typer.Argument(
            help="allowedIP, allowedNetwork, dualAuthDelete, keyCreateImportAccess, metrics or "
            "rotation."
        ),
    ],
    enable: Annotated[
        bool,
        typer.Option("--enable/--disable", help="Turn the policy on or off."),
    ],
    attr: Annotated[
        list[str] | None,
        typer.Option(
            "--attr",
            help="An attribute NAME=VALUE (VALUE as JSON, else text); repeat a name for a list.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Set one instance policy (Manager); disabling clears its attributes."""
    remote.client.set_instance_policy(policy_type, enable, parse_attributes(attr))
    _show_instance_policies(remote.client.get_instance_policies(policy_type), remote)
