"""Reading passphrases: hidden prompts on a terminal, one line each from stdin otherwise.

Each file's passphrase is asked once per command, so a custodian who signs several commands
types it once. Passphrases are kept as bytes only for the command's lifetime and never printed.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from kyok.errors import InvalidInput


class PassphraseReader:
    """Asks for (and caches) the passphrase of each file."""

    def __init__(self) -> None:
        self._cache: dict[Path, bytes] = {}

    def _read(self, prompt: str) -> str:
        if sys.stdin.isatty():
            return getpass.getpass(prompt)
        sys.stderr.write(prompt + "\n")
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput(f"no passphrase on stdin ({prompt.rstrip(': ')})")
        return line.rstrip("\r\n")

    def get(self, path: Path, *, purpose: str = "", confirm: bool = False) -> bytes:
        """The passphrase for ``path``; with ``confirm``, asked twice on a terminal."""
        key = Path(path).resolve()
        if key in self._cache:
            return self._cache[key]
        label = f"{purpose} " if purpose else ""
        value = self._read(f"Passphrase for {label}{path}: ")
        if (
            confirm
            and sys.stdin.isatty()
            and self._read(f"Repeat the passphrase for {path}: ") != value
        ):
            raise InvalidInput("the passphrases do not match")
        if not value:
            raise InvalidInput("an empty passphrase is not allowed")
        self._cache[key] = value.encode("utf-8")
        return self._cache[key]
