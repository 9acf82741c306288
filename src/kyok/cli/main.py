"""The ``kyok`` command: one Typer app, one sub-app per command group.

The app imports a command's module only when that command runs (:mod:`kyok.cli._lazy`):
``COMMANDS`` below is the one list of its commands, in the order ``kyok --help`` shows them.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import typer

from kyok import __version__
from kyok.cli import remote
from kyok.cli._lazy import LazyCommand, LazyGroup, register_all


def _server(app: typer.Typer) -> None:
    from kyok.cli import server

    app.command("server")(server.server)  # kyok server --dev | --config FILE


def _ceremony(app: typer.Typer) -> None:
    from kyok.cli import ceremony

    app.add_typer(ceremony.app, name="ceremony")


def _audit(app: typer.Typer) -> None:
    from kyok.cli import audit

    app.add_typer(audit.app, name="audit")  # kyok audit pubkey | export | verify | tail


def _contract(app: typer.Typer) -> None:
    from kyok.cli import contract

    # kyok contract encrypt | sign-contract | validate-contract | verify-attestation | passphrase | ...
    app.add_typer(contract.app, name="contract")


# Commands before groups, as Typer lists an eagerly built app. Each help is the first paragraph
# of the command's own; tests/cli/test_lazy_cli.py checks the table against the modules.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "server",
        _server,
        "Run the HTTP API: Key Protect v2, kyok's unit endpoints, /health and /metrics.",
    ),
    # login, logout, whoami, wrap, unwrap, rewrap, encrypt, decrypt, rewrap-file, import
    *remote.COMMANDS,
    LazyCommand(
        "ceremony",
        _ceremony,
        "The key ceremony: administrators, master-key parts, registers and the verifiable "
        "transcript.",
    ),
    LazyCommand(
        "audit",
        _audit,
        "The instance's audit ledger: read it, export it, verify an export offline.",
    ),
    LazyCommand(
        "contract",
        _contract,
        "Hyper Protect contracts: encrypt, sign, verify, decrypt, validate (offline).",
    ),
    *remote.GROUPS,  # key (keys), instance, ring, alias, principal, apikey, role
)


class KyokGroup(LazyGroup):
    """The ``kyok`` click group: the commands of :data:`COMMANDS`, each loaded when it runs."""

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = COMMANDS


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kyok {__version__}")
        raise typer.Exit()


def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of short error messages.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """kyok — keep your own key."""
    from kyok.cli._output import set_debug

    set_debug(debug)


def build_app(*, lazy: bool = True) -> typer.Typer:
    """The ``kyok`` Typer app; ``lazy=False`` imports and registers every command now."""
    built = typer.Typer(
        name="kyok",
        cls=KyokGroup if lazy else None,
        help="kyok — keep your own key: a self-hosted key management service.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(root)
    if not lazy:
        register_all(built, COMMANDS)
    return built


app = build_app()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
