"""DESIGN §3: arrows point down only. This walks every import under src/kyok and fails on any
arrow the design forbids (``cli, api, kmip -> kms -> unit, store, audit, auth -> crypto``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kyok"

# What each part of kyok may import from kyok (besides itself). Top-level modules count as parts.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "crypto": set(),
    "settings": set(),
    "unit": {"crypto", "errors", "clock"},
    "store": {"errors", "clock"},
    "audit": {"crypto", "errors", "clock"},
    "auth": {"crypto", "errors", "clock", "store.ports", "store.records"},
    "kms": {"unit", "store.ports", "store.records", "audit", "auth", "crypto", "errors", "clock"},
    "api": {"kms", "auth", "errors", "clock", "settings"},
    "kmip": {"kms", "auth", "errors", "clock", "settings"},
    "client": {"crypto", "errors"},
    "contract": {"crypto", "errors"},
    "bootstrap": {"kms", "unit", "store", "audit", "auth", "crypto", "errors", "clock", "settings"},
    "cli": {
        "bootstrap",
        "kms",
        "unit",
        "store",
        "audit",
        "auth",
        "client",
        "contract",
        "crypto",
        "errors",
        "clock",
        "settings",
    },
    "__init__": set(),
    "__main__": {"cli"},
}

# Single modules allowed one more arrow: ``kyok server`` is the process that hosts the HTTP
# adapters, so it (and nothing else in the CLI) builds the API application.
EXTRA: dict[str, set[str]] = {"kyok.cli.server": {"api"}}


def _part(module: str) -> str:
    """``kyok.unit.blob`` -> ``unit``; ``kyok.store.ports`` -> ``store.ports`` for the store's ports."""
    pieces = module.split(".")[1:]
    if not pieces or pieces[0].startswith("__"):
        return "__init__"  # the package root (kyok.__version__)
    if pieces[0] == "store" and len(pieces) > 1 and pieces[1] in ("ports", "records"):
        return f"store.{pieces[1]}"
    return pieces[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend(
                (node.lineno, f"{node.module}.{a.name}")
                for a in node.names
                if node.module == "kyok"
            )
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
    return [(line, m) for line, m in found if m == "kyok" or m.startswith("kyok.")]


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


FILES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    module = _module_of(path)
    own = _part(module)
    own_root = own.split(".")[0]
    allowed = (ALLOWED[own_root] if own_root in ALLOWED else ALLOWED[own]) | EXTRA.get(
        module, set()
    )
    bad = []
    for line, module in _imports(path):
        target = _part(module)
        if target.split(".")[0] == own_root or target == "__init__":
            continue
        if target not in allowed and target.split(".")[0] not in allowed:
            bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(SRC)} ({own_root}) may not import: " + "; ".join(bad)


@pytest.mark.parametrize("layer", ["crypto", "unit", "kms", "store"])
def test_lower_layers_use_no_web_or_cli_framework(layer: str) -> None:
    banned = {"fastapi", "starlette", "typer", "rich", "uvicorn"} | (
        {"sqlalchemy", "alembic"} if layer != "store" else set()
    )
    for path in (SRC / layer).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.relative_to(SRC)} imports {name}"


def test_the_rule_can_fail() -> None:
    """A forbidden arrow is reported (guards against a checker that passes everything)."""
    assert "store" not in ALLOWED["api"] and "unit" not in ALLOWED["store"]
    assert "api" not in ALLOWED["cli"] and "api" not in ALLOWED["bootstrap"]
    assert _part("kyok.store.sql.keys") == "store" and _part("kyok.store.ports") == "store.ports"
