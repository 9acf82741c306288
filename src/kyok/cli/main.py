"""The ``kyok`` command: one Typer app, one sub-app per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from kyok import __version__
from kyok.cli import audit, ceremony, contract, remote, server
from kyok.cli._output import set_debug

app = typer.Typer(
    name="kyok",
    help="kyok — keep your own key: a self-hosted key management service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ceremony.app, name="ceremony")
app.add_typer(audit.app, name="audit")  # kyok audit pubkey | export | verify | tail
# kyok contract encrypt | sign-contract | validate-contract | verify-attestation | passphrase | ...
app.add_typer(contract.app, name="contract")
app.command("server")(server.server)  # kyok server --dev | --config FILE
# login, whoami, wrap/unwrap/rewrap, encrypt/decrypt/rewrap-file, import, key (keys), instance,
# ring, alias, principal, apikey, role
remote.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kyok {__version__}")
        raise typer.Exit()


@app.callback()
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
    set_debug(debug)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
