"""The public API of ``kyok.client`` is exactly its ``__all__`` (as httpx's test_exported_members)."""

from __future__ import annotations

import inspect
import types

import kyok.client
from kyok.client import errors


def test_all_public_members_are_exported() -> None:
    public = sorted(
        name
        for name, value in vars(kyok.client).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    )
    assert sorted(kyok.client.__all__) == public


def test_every_exported_name_resolves() -> None:
    for name in kyok.client.__all__:
        assert getattr(kyok.client, name) is not None


def test_every_error_class_is_exported() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ClientError)
    }
    assert classes <= set(kyok.client.__all__)
    assert classes <= set(errors.__all__)


def test_the_client_imports_nothing_from_kyok_but_crypto() -> None:
    """DESIGN §3, stricter than tests/test_layering.py: not even kyok.errors."""
    import ast
    from pathlib import Path

    root = Path(kyok.client.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                if name == "kyok" or name.startswith("kyok."):
                    assert name.startswith(("kyok.client", "kyok.crypto")), f"{path}: {name}"
                else:
                    top = name.split(".")[0]
                    assert top in {
                        "__future__",
                        "httpx",
                        "base64",
                        "binascii",
                        "collections",
                        "dataclasses",
                        "datetime",
                        "enum",
                        "importlib",
                        "json",
                        "os",
                        "queue",
                        "ssl",
                        "threading",
                        "time",
                        "types",
                        "typing",
                        "urllib",
                        "uuid",
                    }, f"{path}: {name}"
