"""The store keeps to its place in DESIGN §3."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kyok.store

STORE_DIR = Path(kyok.store.__file__).parent
FORBIDDEN = ("kyok.unit", "kyok.crypto", "kyok.kms", "kyok.api", "kyok.cli", "kyok.auth", "fastapi")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_store_imports_no_higher_or_sibling_layer() -> None:
    offenders = {
        f"{path.relative_to(STORE_DIR)}: {name}"
        for path in STORE_DIR.rglob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert offenders == set()


def test_ports_records_and_memory_do_not_load_sqlalchemy() -> None:
    code = (
        "import sys, kyok.store.ports, kyok.store.records, kyok.store.memory; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
