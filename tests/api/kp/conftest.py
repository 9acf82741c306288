"""Fixtures of the Key Protect API tests that run on every store backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import make_node

from kyok.api.app import create_app
from kyok.auth.principals import SYSTEM
from kyok.clock import FakeClock


@pytest.fixture
async def client_on(
    store_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The API over a node on ``store_url`` (SQLite, PostgreSQL), and an administrator's
    headers for a fresh dev-sealed instance."""
    node = make_node(tmp_path, FakeClock(), database_url=store_url)
    try:
        instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
        headers = {
            "Authorization": f"Bearer {node.auth.bootstrap_admin(instance)}",
            "Bluemix-Instance": instance,
        }
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t"
        ) as c:
            yield c, headers
    finally:
        node.close()
