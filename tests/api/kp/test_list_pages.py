"""Paging through GET /api/v2/keys over HTTP, on SQLite and PostgreSQL (where a page is read
ids first, from per-state scans merged in id order): every key once, in id order, and as many
as HEAD's Key-Total says."""

from __future__ import annotations

import httpx
import pytest
from tests.api.conftest import key_body

pytestmark = pytest.mark.anyio


async def _pages(c: httpx.AsyncClient, h: dict[str, str], **params: str) -> list[str]:
    """Every id, page by page (limit 4), until a short page."""
    out: list[str] = []
    while True:
        r = await c.get(
            "/api/v2/keys", params={**params, "limit": "4", "offset": str(len(out))}, headers=h
        )
        assert r.status_code == 200
        body = r.json()
        page = [k["id"] for k in body.get("resources", [])]
        assert body["metadata"]["collectionTotal"] == len(page)
        assert "totalCount" not in body["metadata"]
        out += page
        if len(page) < 4:
            return out


async def test_paging_lists_every_key_once_in_id_order(
    client_on: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, h = client_on
    states: dict[str, int] = {}
    for n in range(14):
        r = await c.post("/api/v2/keys", json=key_body(f"page-{n}"), headers=h)
        assert r.status_code == 201
        key_id = r.json()["resources"][0]["id"]
        states[key_id] = 1
        if n % 5 == 1:
            assert (
                await c.post(f"/api/v2/keys/{key_id}/actions/disable", headers=h)
            ).status_code == 204
            states[key_id] = 2
        elif n % 5 == 3:
            assert (await c.delete(f"/api/v2/keys/{key_id}", headers=h)).status_code == 204
            states[key_id] = 5
    visible = sorted(k for k, s in states.items() if s != 5)
    assert await _pages(c, h) == visible
    head = await c.request("HEAD", "/api/v2/keys", headers=h)
    assert head.headers["Key-Total"] == str(len(visible))
    active_or_destroyed = sorted(k for k, s in states.items() if s in (1, 5))
    assert await _pages(c, h, state="1,5") == active_or_destroyed
    head = await c.request("HEAD", "/api/v2/keys", params={"state": "1,5"}, headers=h)
    assert head.headers["Key-Total"] == str(len(active_or_destroyed))
    assert await _pages(c, h, state="2") == sorted(k for k, s in states.items() if s == 2)
