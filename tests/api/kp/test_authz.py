"""Authorization at the edge: each route asks ``ctx.require(permission, ...)``; ring- and
key-scoped grants need the key's ring (reference §7)."""

from __future__ import annotations

import pytest
from tests.api.conftest import Api, b64, error_of, key_body, scoped

from kyok.auth.context import Grant
from kyok.auth.roles import Role

pytestmark = pytest.mark.anyio


async def test_reader_wraps_and_reads_metadata_but_not_payload(api: Api) -> None:
    std = await api.create_key("std", extractable=True)
    root = await api.create_key("root")
    reader = api.mint(Grant(Role.READER))
    assert (
        await api.request("GET", f"/api/v2/keys/{std['id']}/metadata", headers=reader)
    ).status_code == 200
    r = await api.request("GET", f"/api/v2/keys/{std['id']}", headers=reader)
    assert r.status_code == 403 and error_of(r)["code"] == "FORBIDDEN_ERR"
    plus = api.mint(Grant(Role.READER_PLUS))
    r = await api.request("GET", f"/api/v2/keys/{std['id']}", headers=plus)
    assert r.status_code == 200 and "payload" in r.json()["resources"][0]
    r = await api.request(
        "POST",
        f"/api/v2/keys/{root['id']}/actions/wrap",
        json={"plaintext": b64(b"k" * 32)},
        headers=reader,
    )
    assert r.status_code == 200
    for method, path in (("POST", f"/api/v2/keys/{root['id']}/actions/rotate"),
                         ("POST", f"/api/v2/keys/{root['id']}/actions/disable"),
                         ("DELETE", f"/api/v2/keys/{root['id']}"),
                         ("POST", "/api/v2/key_rings/new-ring")):  # fmt: skip
        assert (await api.request(method, path, headers=reader)).status_code == 403, path


async def test_writer_creates_and_rotates_but_does_not_delete_or_disable(api: Api) -> None:
    writer = api.mint(Grant(Role.WRITER))
    key = await api.create_key("w-key", headers=writer)
    assert (
        await api.request("POST", f"/api/v2/keys/{key['id']}/actions/rotate", headers=writer)
    ).status_code == 204
    assert (
        await api.request("POST", f"/api/v2/keys/{key['id']}/actions/disable", headers=writer)
    ).status_code == 403
    assert (
        await api.request("DELETE", f"/api/v2/keys/{key['id']}", headers=writer)
    ).status_code == 403
    assert (
        await api.request("POST", f"/api/v2/keys/{key['id']}/aliases/w-alias", headers=writer)
    ).status_code == 201


async def test_purge_needs_key_purge(api: Api) -> None:
    key = await api.create_key("purged")
    await api.request("DELETE", f"/api/v2/keys/{key['id']}")
    manager = api.mint(Grant(Role.MANAGER))
    r = await api.request("DELETE", f"/api/v2/keys/{key['id']}/purge", headers=manager)
    assert r.status_code == 403


async def test_ring_scoped_grants(api: Api) -> None:
    await api.request("POST", "/api/v2/key_rings/team-a")
    await api.request("POST", "/api/v2/key_rings/team-b")
    mine = await api.create_key("mine", headers={"X-Kms-Key-Ring": "team-a"})
    theirs = await api.create_key("theirs", headers={"X-Kms-Key-Ring": "team-b"})
    team_a = api.mint(scoped(Role.WRITER, "key_ring:team-a"))
    # listing needs the ring named, and it must be the caller's
    r = await api.request("GET", "/api/v2/keys", headers=team_a)
    assert r.status_code == 403
    r = await api.request("GET", "/api/v2/keys", headers={**team_a, "X-Kms-Key-Ring": "team-b"})
    assert r.status_code == 403
    r = await api.request("GET", "/api/v2/keys", headers={**team_a, "X-Kms-Key-Ring": "team-a"})
    assert [k["id"] for k in r.json()["resources"]] == [mine["id"]]
    r = await api.request("HEAD", "/api/v2/keys", headers={**team_a, "X-Kms-Key-Ring": "team-a"})
    assert r.headers["Key-Total"] == "1"
    # keys: only in the ring
    for key, status in ((mine, 200), (theirs, 403)):
        r = await api.request("POST", f"/api/v2/keys/{key['id']}/actions/wrap", headers=team_a)
        assert r.status_code == status
        r = await api.request("GET", f"/api/v2/keys/{key['id']}/metadata", headers=team_a)
        assert r.status_code == status
    # creating: only in the ring
    r = await api.request(
        "POST",
        "/api/v2/keys",
        json=key_body("new-a"),
        headers={**team_a, "X-Kms-Key-Ring": "team-a"},
    )
    assert r.status_code == 201
    r = await api.request("POST", "/api/v2/keys", json=key_body("new-default"), headers=team_a)
    assert r.status_code == 403
    # key rings themselves are instance-level
    assert (await api.request("GET", "/api/v2/key_rings", headers=team_a)).status_code == 403


async def test_moving_a_key_needs_the_permission_on_both_rings(api: Api) -> None:
    for ring in ("from-ring", "to-ring"):
        await api.request("POST", f"/api/v2/key_rings/{ring}")
    key = await api.create_key("mover", headers={"X-Kms-Key-Ring": "from-ring"})
    only_from = api.mint(scoped(Role.MANAGER, "key_ring:from-ring"))
    r = await api.request(
        "PATCH", f"/api/v2/keys/{key['id']}", json={"keyRingID": "to-ring"}, headers=only_from
    )
    assert r.status_code == 403
    both = api.mint(
        scoped(Role.MANAGER, "key_ring:from-ring"), scoped(Role.MANAGER, "key_ring:to-ring")
    )
    r = await api.request(
        "PATCH", f"/api/v2/keys/{key['id']}", json={"keyRingID": "to-ring"}, headers=both
    )
    assert r.status_code == 200


async def test_key_scoped_grant_by_alias(api: Api) -> None:
    key = await api.create_key("single", aliases=["single-alias"])
    other = await api.create_key("other")
    one_key = api.mint(scoped(Role.READER, f"key:{key['id']}"))
    assert (
        await api.request("POST", "/api/v2/keys/single-alias/actions/wrap", headers=one_key)
    ).status_code == 200
    assert (
        await api.request("POST", f"/api/v2/keys/{other['id']}/actions/wrap", headers=one_key)
    ).status_code == 403
    assert (await api.request("GET", "/api/v2/keys", headers=one_key)).status_code == 403
