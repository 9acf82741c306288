"""The ``kyok`` app imports a command's module only when that command runs (``kyok.cli._lazy``).

Its table of commands (``kyok.cli.main.COMMANDS``) must say what the command modules register:
names, order, hidden flags and short help. Help, errors and shell completion must read exactly as
the eagerly built app's, every command must be the same command through either app, and a command
run in a fresh interpreter must import its own module and no other command module.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import typer
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from kyok.cli import main, remote
from kyok.cli._lazy import LazyCommand, LazyGroup, register_all


def _first_paragraph(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n\n")[0].strip()


def _invoke(app: typer.Typer, args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, args, env=env, prog_name="kyok")


def test_the_table_says_what_the_modules_register() -> None:
    eager = typer.main.get_group(main.build_app(lazy=False))
    found = [(name, cmd.hidden, _first_paragraph(cmd.help)) for name, cmd in eager.commands.items()]
    table = [(c.name, c.hidden, c.help) for c in main.COMMANDS]
    assert table == found, "kyok.cli.main.COMMANDS should list, in this order:\n" + "\n".join(
        map(repr, found)
    )
    for name, cmd in eager.commands.items():  # the table carries nothing else a listing shows
        assert cmd.short_help is None, name
        assert not cmd.deprecated, name
        assert not getattr(cmd, "rich_help_panel", None), name


def test_remote_register_adds_the_remote_entries() -> None:
    app = typer.Typer()
    remote.register(app)
    names = list(typer.main.get_group(app).commands)
    assert names == [c.name for c in remote.COMMANDS + remote.GROUPS]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["-h"],
        ["--debug", "--help"],
        ["--version"],
        ["encryp"],
        ["nonesuch"],
        ["--nonesuch"],
        ["key"],
        ["key", "--help"],
        ["keys", "policy", "--help"],
        ["key", "nonesuch"],
        ["contract", "--help"],
        ["ceremony", "--help"],
        ["audit", "--help"],
        ["server", "--help"],
        ["encrypt", "--help"],
        ["login", "--help"],
        ["role", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_errors_read_as_the_eager_app(args: list[str]) -> None:
    lazy, eager = _invoke(main.app, args), _invoke(main.build_app(lazy=False), args)
    assert (lazy.exit_code, lazy.stdout, lazy.stderr) == (
        eager.exit_code,
        eager.stdout,
        eager.stderr,
    )
    assert lazy.stdout or lazy.stderr


@pytest.mark.parametrize(
    "line", ["kyok ", "kyok k", "kyok c", "kyok --", "kyok key ", "kyok encrypt --"]
)
@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_reads_as_the_eager_app(shell: str, line: str) -> None:
    env = {"_KYOK_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    lazy, eager = _invoke(main.app, [], env), _invoke(main.build_app(lazy=False), [], env)
    assert (lazy.exit_code, lazy.stdout) == (eager.exit_code, eager.stdout)
    if shell == "zsh" and line == "kyok ":
        assert all(f'"{c.name}":' in lazy.stdout for c in main.COMMANDS if not c.hidden)
        assert '"keys":' not in lazy.stdout


def _fields(param: Any) -> dict[str, str]:
    """A parameter's attributes (its type by annotation: Typer copies the rest per build)."""
    found = {}
    for name, value in vars(param).items():
        if name == "type_descriptor":
            found[name] = repr(value.annotation)
        elif not callable(value):
            found[name] = repr(value)
    return found


def _describe(command: Any) -> Any:
    """What a click command is made of, comparable between two builds of it."""
    params = [(type(p).__name__, _fields(p)) for p in command.params]
    subs = {name: _describe(sub) for name, sub in getattr(command, "commands", {}).items()}
    return (type(command).__name__, command.name, command.help, command.hidden, params, subs)


def test_every_command_is_the_same_through_either_app() -> None:
    lazy = typer.main.get_command(main.app)
    eager = typer.main.get_command(main.build_app(lazy=False))
    assert isinstance(lazy, LazyGroup) and type(eager) is TyperGroup
    assert _describe(lazy)[1:] == _describe(eager)[1:]


# -------------------------------------------------------------- what a command imports


def _imported_after(args: list[str]) -> dict[str, list[str]]:
    """The kyok command modules and heavy packages that ``kyok ARGS`` imports, in a fresh process."""
    script = (
        "import json, sys\n"
        "from kyok.cli.main import app\n"
        "try:\n"
        "    app(args=sys.argv[1:], prog_name='kyok', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "mods = sorted(sys.modules)\n"
        "cmds = [m for m in mods if m.startswith('kyok.cli.') and not m.split('.')[2][0] == '_']\n"
        "heavy = ('kyok.audit', 'kyok.contract', 'kyok.unit', 'kyok.client', 'yaml', 'tarfile')\n"
        "print(json.dumps({'commands': [m for m in cmds if m not in ('kyok.cli.main', \n"
        "    'kyok.cli.remote')], 'heavy': [h for h in heavy if h in mods]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def _case(args: str, commands: list[str], heavy: list[str]) -> Any:
    return pytest.param(args.split(), commands, heavy, id=args)


@pytest.mark.parametrize(
    ("args", "commands", "heavy"),
    [
        _case("--help", [], []),
        _case("--version", [], []),
        _case("encrypt --help", ["kyok.cli.envelope"], ["kyok.client"]),
        _case("server --help", ["kyok.cli.server"], []),  # no SDK: kyok.cli._output spares it
        _case("key list --help", ["kyok.cli.keys", "kyok.cli.policies"], ["kyok.client"]),
        _case(
            "contract encrypt --help",
            ["kyok.cli.contract", "kyok.cli.contract_attest"],
            ["kyok.contract", "kyok.unit", "kyok.client", "yaml", "tarfile"],
        ),
    ],
)
def test_a_command_imports_only_its_own_module(
    args: list[str], commands: list[str], heavy: list[str]
) -> None:
    loaded = _imported_after(args)
    assert loaded["commands"] == commands
    assert loaded["heavy"] == heavy


# -------------------------------------------------------------- the group on its own


def _toy(calls: list[str]) -> tuple[Callable[[typer.Typer], None], Callable[[typer.Typer], None]]:
    def pair(app: typer.Typer) -> None:
        calls.append("pair")

        @app.command("one")
        def one() -> None:
            """The first.

            More about it."""
            typer.echo("ran one")

        @app.command("two")
        def two() -> None:
            """The second."""

    def broken(app: typer.Typer) -> None:
        calls.append("broken")

        @app.command("other-name")
        def other() -> None:
            """Not what the table says."""

    return pair, broken


def _toy_app(calls: list[str]) -> typer.Typer:
    pair, broken = _toy(calls)

    class Toy(LazyGroup):
        lazy_commands = (
            LazyCommand("one", pair, "The first."),
            LazyCommand("two", pair, "The second.", hidden=True),
            LazyCommand("three", broken, "Not there."),
        )

    app = typer.Typer(cls=Toy, no_args_is_help=True)

    @app.callback()
    def root() -> None:
        """A toy."""

    return app


def test_listing_imports_nothing_and_running_loads_once() -> None:
    calls: list[str] = []
    app = _toy_app(calls)
    listed = _invoke(app, ["--help"])
    assert listed.exit_code == 0 and calls == []
    assert "The first." in listed.stdout and "More about it" not in listed.stdout
    assert "two" not in listed.stdout  # hidden
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    assert list(group.commands) == ["one", "two", "three"] and "two" in group.commands
    assert calls == []
    assert group.commands["one"].help == "The first.\n\nMore about it."
    assert group.commands["two"].name == "two" and calls == ["pair"]  # one registrar, both names
    ran = _invoke(app, ["one"])
    assert (ran.exit_code, ran.stdout) == (0, "ran one\n")


def test_a_registrar_that_misses_its_name_is_an_error() -> None:
    calls: list[str] = []
    group = typer.main.get_command(_toy_app(calls))
    assert isinstance(group, LazyGroup)
    with pytest.raises(RuntimeError, match="did not add 'three'"):
        group.commands.get("three")
    assert calls == ["broken"]
    assert "nonesuch" not in group.commands
    assert group.commands.get("nonesuch") is None


def test_register_all_calls_each_registrar_once() -> None:
    calls: list[str] = []
    pair, _ = _toy(calls)
    app = typer.Typer()
    register_all(app, (LazyCommand("one", pair, ""), LazyCommand("two", pair, "")))
    assert calls == ["pair"]
    assert list(typer.main.get_group(app).commands) == ["one", "two"]
