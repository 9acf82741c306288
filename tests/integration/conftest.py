"""Whole nodes (SQL store, unit directory, key service) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kyok.bootstrap import Node, open_node
from kyok.clock import FakeClock
from kyok.settings import Settings

OpenNode = Callable[[], Node]


@pytest.fixture
def node_factory(store_url: str, tmp_path: Path) -> Iterator[OpenNode]:
    """Opens a node on one database, as a fresh process would (nothing carried over in memory)."""
    opened: list[Node] = []
    clock = FakeClock()
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url)
    settings.data_dir.mkdir()

    def make() -> Node:
        node = open_node(settings, clock=clock)
        opened.append(node)
        return node

    yield make
    for node in opened:
        node.close()
