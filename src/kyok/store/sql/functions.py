"""SQL expressions that must mean the same thing on every backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kyok.store.sql.engine import SQLITE_FOLD_FUNCTION


class fold(FunctionElement[str]):
    """Case-fold text for case-insensitive search, like ``kyok.store._keyquery.fold``.

    PostgreSQL: ``lower(x)`` (Unicode-aware under a UTF-8 locale). SQLite's ``lower`` only
    knows ASCII, so there it calls a function registered on every connection that runs the
    same Python code as the memory store.
    """

    type = Text()
    name = "kyok_fold"
    inherit_cache = True


@compiles(fold)
def _fold_default(element: fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"
