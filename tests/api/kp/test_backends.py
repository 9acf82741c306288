"""The same key flow over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from tests.api.conftest import b64, key_body

pytestmark = pytest.mark.anyio


async def test_key_flow(client_on: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    c, h = client_on
    key = (
        await c.post("/api/v2/keys", json=key_body("flow", aliases=["flow-alias"]), headers=h)
    ).json()["resources"][0]
    wrapped = (
        await c.post(
            "/api/v2/keys/flow-alias/actions/wrap", json={"plaintext": b64(b"k" * 32)}, headers=h
        )
    ).json()
    assert (await c.post(f"/api/v2/keys/{key['id']}/actions/rotate", headers=h)).status_code == 204
    out = (
        await c.post(
            f"/api/v2/keys/{key['id']}/actions/unwrap",
            json={"ciphertext": wrapped["ciphertext"]},
            headers=h,
        )
    ).json()
    assert out["plaintext"] == b64(b"k" * 32) and "rewrappedKeyVersion" in out
    listed = (
        await c.get("/api/v2/keys", params={"search": "flow", "sort": "-creationDate"}, headers=h)
    ).json()
    assert [k["id"] for k in listed["resources"]] == [key["id"]]
    assert (await c.delete(f"/api/v2/keys/{key['id']}", headers=h)).status_code == 204
    assert (await c.head("/api/v2/keys", headers=h)).headers["Key-Total"] == "0"
