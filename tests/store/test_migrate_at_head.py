"""A database already at the newest revision opens without Alembic (every start of a node):
the newest revision read from the migration files is Alembic's, anything less plain than one
straight line of literals is left to Alembic, and older or empty databases still migrate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.util import CommandError
from sqlalchemy import inspect, text

from kyok.store.sql import open_store
from kyok.store.sql.migrate import (
    MIGRATIONS_DIR,
    current_revision,
    head_in,
    head_revision,
    source_head,
    upgrade,
)


def test_the_files_name_alembics_head() -> None:
    assert source_head() == head_revision()
    assert head_in(MIGRATIONS_DIR / "versions") == head_revision()


def _revision(directory: Path, name: str, revision: str, down: str | None, extra: str = "") -> None:
    lines = [
        f'"""{name}"""',
        f"revision: str = {revision}",
        f"down_revision: str | None = {down}",
        extra,
        "def upgrade() -> None:",
        "    pass",
    ]
    (directory / f"{name}.py").write_text("\n".join(lines) + "\n")


def test_a_straight_line_has_its_last_revision_as_head(tmp_path: Path) -> None:
    _revision(tmp_path, "0001_a", '"a"', "None")
    _revision(tmp_path, "0002_b", '"b"', '"a"')
    _revision(tmp_path, "0003_c", "'c'", "'b'", "branch_labels = None\ndepends_on = ()")
    (tmp_path / "__init__.py").write_text("")
    assert head_in(tmp_path) == "c"


@pytest.mark.parametrize(
    ("files", "extra"),
    [
        pytest.param([("a", "None"), ("b", '"a"'), ("c", '"a"')], "", id="two heads"),
        pytest.param([("a", "None"), ("b", '"a"'), ("c", '("a", "b")')], "", id="a merge"),
        pytest.param([("a", "None"), ("b", "None")], "", id="two bases"),
        pytest.param([("a", "None"), ("b", '"x"')], "", id="a missing parent"),
        pytest.param([("a", "None"), ("b", '"a"')], 'branch_labels = ("x",)', id="a label"),
        pytest.param([("a", "None"), ("b", '"a"')], 'depends_on = "a"', id="a dependency"),
        pytest.param([("a", "None"), ("b", 'str("a")')], "", id="a computed parent"),
        pytest.param([], "", id="no revision"),
    ],
)
def test_anything_else_is_left_to_alembic(
    tmp_path: Path, files: list[tuple[str, str]], extra: str
) -> None:
    for i, (revision, down) in enumerate(files):
        _revision(tmp_path, f"{i:04}_{revision}", f'"{revision}"', down, extra if i else "")
    assert head_in(tmp_path) is None


def test_a_file_without_a_revision_is_left_to_alembic(tmp_path: Path) -> None:
    _revision(tmp_path, "0001_a", '"a"', "None")
    (tmp_path / "0002_notes.py").write_text("x = 1\n")
    assert head_in(tmp_path) is None


def _opens_with_alembic(url: str) -> bool:
    """Whether opening the store at ``url`` in a fresh interpreter loads Alembic."""
    script = (
        "import sys\n"
        "from kyok.store.sql import open_store\n"
        "open_store(sys.argv[1]).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return {"True": True, "False": False}[done.stdout.split()[-1]]


def test_a_database_at_head_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kyok.db'}"
    assert _opens_with_alembic(url)  # empty: Alembic creates the schema
    assert not _opens_with_alembic(url)  # at head: nothing to do, Alembic not loaded
    with open_store(url, migrate=False) as store:
        upgrade(store.engine, head_revision())  # named explicitly: the same fast path
        assert current_revision(store.engine) == head_revision()


def test_an_older_database_still_migrates(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        upgrade(store.engine, "0001")
        assert current_revision(store.engine) == "0001"
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        assert "principals" in inspect(store.engine).get_table_names()


def test_an_unexpected_version_table_goes_to_alembic(store_url: str) -> None:
    """Two rows (branches someone else made) are Alembic's to judge: it refuses to guess."""
    with open_store(store_url) as store:
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
        with pytest.raises(CommandError, match="overlaps"):
            store.migrate()
