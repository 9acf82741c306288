"""The commands that talk to a running kyok server through :mod:`kyok.client`.

``COMMANDS`` (``login``, ``logout``, ``whoami``, ``wrap``, ``unwrap``, ``rewrap``, ``encrypt``,
``decrypt``, ``rewrap-file``, ``import``) and ``GROUPS`` (``key``, also spelt ``keys``, ``instance``,
``ring``, ``alias``, ``principal``, ``apikey`` and ``role``) are entries of the ``kyok`` app's lazy
table (:mod:`kyok.cli._lazy`): each registrar below imports its command module only when that
command runs. ``register(app)`` adds them all at once. Connection settings: see
:mod:`kyok.cli._remote`.
"""

from __future__ import annotations

import functools

import typer

from kyok.cli._lazy import LazyCommand, register_all


def _session(app: typer.Typer) -> None:
    from kyok.cli import session

    session.register(app)


def _wrapping(app: typer.Typer) -> None:
    from kyok.cli import wrapping

    wrapping.register(app)


def _envelope(app: typer.Typer) -> None:
    from kyok.cli import envelope

    envelope.register(app)


def _keyimport(app: typer.Typer) -> None:
    from kyok.cli import keyimport

    keyimport.register(app)


@functools.cache
def _keys_app() -> typer.Typer:
    """``kyok key``: the keys module's commands and the policy ones (added once per process)."""
    from kyok.cli import keys, policies

    policies.register_key_commands(keys.app)
    return keys.app


def _key(app: typer.Typer) -> None:
    app.add_typer(_keys_app(), name="key")


def _keys(app: typer.Typer) -> None:
    app.add_typer(_keys_app(), name="keys", hidden=True)  # `kyok keys policy …` reads naturally too


def _instance(app: typer.Typer) -> None:
    from kyok.cli import policies

    app.add_typer(policies.instance_app, name="instance")


def _ring(app: typer.Typer) -> None:
    from kyok.cli import rings

    app.add_typer(rings.ring_app, name="ring")


def _alias(app: typer.Typer) -> None:
    from kyok.cli import rings

    app.add_typer(rings.alias_app, name="alias")


def _principal(app: typer.Typer) -> None:
    from kyok.cli import access

    app.add_typer(access.principal_app, name="principal")


def _apikey(app: typer.Typer) -> None:
    from kyok.cli import access

    app.add_typer(access.apikey_app, name="apikey")


def _role(app: typer.Typer) -> None:
    from kyok.cli import access

    app.add_typer(access.role_app, name="role")


# Each help is the first paragraph of the command's own; tests/cli/test_lazy_cli.py checks them.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "login", _session, "Check a server URL, instance and API key, and save them as the profile."
    ),
    LazyCommand("logout", _session, "Delete the saved profile (and the API key in it)."),
    LazyCommand(
        "whoami", _session, "Show who the server takes you for: principal, instance and roles."
    ),
    LazyCommand("wrap", _wrapping, "Wrap a DEK with a root key (or have the server generate one)."),
    LazyCommand(
        "unwrap",
        _wrapping,
        "Unwrap a DEK; prints the DEK, and a rewrapped ciphertext if the key was rotated since.",
    ),
    LazyCommand(
        "rewrap",
        _wrapping,
        "Re-wrap a ciphertext with the key's newest version; the DEK never leaves the server.",
    ),
    LazyCommand(
        "encrypt",
        _envelope,
        "Encrypt files or stdin under a root key: FILE → FILE.kyok (one DEK per file, from kyok).",
    ),
    LazyCommand(
        "decrypt",
        _envelope,
        "Decrypt FILE.kyok → FILE (or stdin); the root key is the one named in each file.",
    ),
    LazyCommand(
        "rewrap-file",
        _envelope,
        "Move files' DEKs to their root key's newest version, in place; the data is not touched.",
    ),
    LazyCommand(
        "import",
        _keyimport,
        "Import key material: a root key through the import token (default), or in plain.",
    ),
)

GROUPS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "key", _key, "Root and standard keys: create, list, show, rotate, change state, delete."
    ),
    LazyCommand(
        "keys",
        _keys,
        "Root and standard keys: create, list, show, rotate, change state, delete.",
        hidden=True,
    ),
    LazyCommand("instance", _instance, "The instance's settings."),
    LazyCommand("ring", _ring, "Key rings: groups of keys that roles can be scoped to."),
    LazyCommand("alias", _alias, "Aliases: other names for a key, usable wherever its id is."),
    LazyCommand("principal", _principal, "Principals: users and services of the instance."),
    LazyCommand("apikey", _apikey, "API keys of principals."),
    LazyCommand("role", _role, "Role bindings: grant, list and revoke roles."),
)


def register(app: typer.Typer) -> None:
    """Add the server commands and groups to ``app`` now (the eager form of the lazy table)."""
    register_all(app, COMMANDS + GROUPS)
