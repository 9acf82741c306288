"""Command groups that import a command's module only when that command runs.

``kyok encrypt`` needs the envelope commands, not the ceremony, audit or contract ones; importing
every command module costs every invocation memory and start-up time. A group's commands are
therefore listed in a table of :class:`LazyCommand` entries, the one list of them: each entry names
a command, holds the first paragraph of its help (what the group's ``--help`` and shell completion
show, so listing imports nothing) and a *registrar*, a function that imports the module defining
the command and adds it to a Typer app exactly as eager code would (``app.add_typer(sub, name=…)``,
``app.command(name)(fn)`` or a module's ``register(app)``).

:class:`LazyGroup` is the click group Typer builds for an app created with ``cls=`` a subclass
that sets :attr:`LazyGroup.lazy_commands`. Resolving a name (running it, or descending into it for
``kyok key --help`` or completion of ``kyok key …``) calls that entry's registrar on a scratch Typer
app and keeps the click commands Typer builds from it; listing uses stand-ins made from the table.
:func:`register_all` calls every registrar on a Typer app at once (the eager form), which the tests
compare against the table: names, order, hidden flags and short help.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # Typer's own click; Typer below 0.29 uses the click package instead
    from typer._click import Command, Context, HelpFormatter
    from typer._click.shell_completion import CompletionItem

Registrar = Callable[[typer.Typer], None]
"""Imports the module that defines a command and adds the command to the given Typer app."""

_LISTING = "kyok.cli._lazy.listing"  # ctx.meta key: set while a group lists its commands


@dataclass(frozen=True)
class LazyCommand:
    """A command or sub-group of a :class:`LazyGroup`, known by name and help before it loads.

    ``help`` is the first paragraph of the command's help text, as the group lists it; several
    entries may share one ``register`` (a module's ``register(app)`` adding several commands).
    """

    name: str
    register: Registrar
    help: str
    hidden: bool = False


def register_all(app: typer.Typer, commands: tuple[LazyCommand, ...]) -> None:
    """Add every command of ``commands`` to ``app`` now: each distinct registrar once, in order."""
    for register in dict.fromkeys(c.register for c in commands):
        register(app)


class _LazyCommands(MutableMapping[str, "Command"]):
    """A group's ``commands``: every name of the table; a command is loaded when looked up."""

    def __init__(self, group: LazyGroup, eager: MutableMapping[str, Command]) -> None:
        self._group = group
        self._entries = {c.name: c for c in group.lazy_commands}
        self._loaded: dict[str, Command] = dict(eager)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded and name in self._entries:
            self._load(self._entries[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._entries and name not in self._loaded:
            raise KeyError(name)
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        yield from self._entries
        yield from (name for name in self._loaded if name not in self._entries)

    def __len__(self) -> int:
        return len(self._entries.keys() | self._loaded.keys())

    def stand_in(self, name: str) -> Command | None:
        """The loaded command, or one that only carries the table's name, help and hidden flag."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            return None
        return TyperCommand(
            name=name,
            help=entry.help,
            hidden=entry.hidden,
            rich_markup_mode=self._group.rich_markup_mode,
        )

    def _load(self, entry: LazyCommand) -> None:
        scratch = typer.Typer(rich_markup_mode=self._group.rich_markup_mode)
        entry.register(scratch)
        built = typer.main.get_group(scratch).commands
        if entry.name not in built:
            raise RuntimeError(f"{entry.register.__qualname__} did not add {entry.name!r}")
        for name, command in built.items():
            self._loaded.setdefault(name, command)


class LazyGroup(TyperGroup):
    """A Typer group whose commands come from :attr:`lazy_commands` and load on first use.

    Subclass it with ``lazy_commands`` set and pass the subclass as ``typer.Typer(cls=…)``.
    Commands registered on that Typer app directly still work and load eagerly, after the table's.
    """

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._lazy = _LazyCommands(self, self.commands)
        self.commands = self._lazy

    def list_commands(self, ctx: Context) -> list[str]:
        """Every command name, table order first; nothing is imported."""
        return list(self.commands)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The command ``cmd_name``, imported now if need be (a stand-in while listing)."""
        if ctx.meta.get(_LISTING):
            return self._lazy.stand_in(cmd_name)
        return self._lazy.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The group's help; its command list comes from the table."""
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop(_LISTING, None)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        """Completions of a command name (from the table) or of the group's options."""
        ctx.meta[_LISTING] = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            ctx.meta.pop(_LISTING, None)
