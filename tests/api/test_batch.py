"""Batch endpoints ``/api/v2/kyok/keys/{id}/actions/batch-*``: per-item results and errors,
whole-call failures, agreement with the single calls, and one audit event per call that holds
every item's outcome."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import Api, b64, error_of, scoped

from kyok.audit import ItemRun
from kyok.auth.grants import Grant
from kyok.auth.roles import Role
from kyok.kms.batch import MAX_ITEMS
from kyok.kms.ledger import AuditQuery

pytestmark = pytest.mark.anyio

BATCH = "/api/v2/kyok/keys/{}/actions/batch-{}"


async def batch(api: Api, key: str, action: str, body: Any, **kw: Any) -> Any:
    return await api.request("POST", BATCH.format(key, action), json=body, **kw)


def last_event(api: Api) -> Any:
    events = api.node.audit_reader.events(AuditQuery(api.instance, limit=10_000))
    return events[-1].event


async def test_wrap_then_unwrap_gives_every_dek_back(api: Api) -> None:
    key = (await api.create_key())["id"]
    deks = [os.urandom(32) for _ in range(50)]
    items = [{"plaintext": b64(d), "aad": [f"obj-{i}"]} for i, d in enumerate(deks)]
    r = await batch(api, key, "wrap", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["keyId"] == key and body["count"] == 50 and body["failed"] == 0
    version = body["keyVersion"]["id"]
    assert all(item["keyVersion"] == {"id": version} for item in body["items"])
    assert all("plaintext" not in item for item in body["items"])

    back = [
        {"ciphertext": item["ciphertext"], "aad": [f"obj-{i}"]}
        for i, item in enumerate(body["items"])
    ]
    r = await batch(api, key, "unwrap", {"items": back})
    assert r.status_code == 200, r.text
    assert [base64.b64decode(i["plaintext"]) for i in r.json()["items"]] == deks

    # A batch ciphertext is an ordinary one: the single unwrap opens it too.
    single = await api.request("POST", f"/api/v2/keys/{key}/actions/unwrap", json=back[7])
    assert base64.b64decode(single.json()["plaintext"]) == deks[7]


async def test_single_wraps_open_in_a_batch_unwrap(api: Api) -> None:
    key = (await api.create_key())["id"]
    dek = os.urandom(16)
    wrapped = (await api.wrap(key, {"plaintext": b64(dek)})).json()["ciphertext"]
    r = await batch(api, key, "unwrap", {"items": [{"ciphertext": wrapped}] * 3})
    assert [base64.b64decode(i["plaintext"]) for i in r.json()["items"]] == [dek] * 3


async def test_one_bad_item_fails_alone_and_is_on_the_record(api: Api) -> None:
    key = (await api.create_key())["id"]
    good = {"plaintext": b64(os.urandom(32))}
    items = [
        good,
        {"plaintext": "not base64!"},
        good,
        {"plaintext": b64(b"x" * 4097)},
        {},
        "not an object",
        {"plaintext": b64(b"k"), "aad": "not a list"},
        good,
    ]
    r = await batch(api, key, "wrap", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failed"] == 5
    errors = [item.get("error") for item in body["items"]]
    assert [e is None for e in errors] == [True, False, True, False, False, False, False, True]
    assert {e["code"] for e in errors if e} == {"INVALID_FIELD_ERR"}
    assert all(e["status"] == 400 and e["message"] for e in errors if e)

    event = last_event(api)
    version = body["keyVersion"]["id"]
    assert event.action == "kms.secrets.batch-wrap"
    assert event.outcome == "success" and event.target.id == key
    assert event.items == (
        ItemRun(0, 1, "success", None, version),
        ItemRun(1, 1, "failure", "INVALID_FIELD_ERR", None),
        ItemRun(2, 1, "success", None, version),
        ItemRun(3, 4, "failure", "INVALID_FIELD_ERR", None),
        ItemRun(7, 1, "success", None, version),
    )
    assert dict(event.detail)["items"] == "8" and dict(event.detail)["failed"] == "5"


async def test_a_batch_of_successes_is_one_run(api: Api) -> None:
    key = (await api.create_key())["id"]
    r = await batch(api, key, "generate", {"count": 1000, "aad": ["tenant-7"]})
    assert r.status_code == 200
    body = r.json()
    event = last_event(api)
    assert event.action == "kms.secrets.batch-generate"
    assert event.items == (ItemRun(0, 1000, "success", None, body["keyVersion"]["id"]),)
    # Secrets never reach the event: no DEK, no ciphertext.
    text = event.canonical_bytes().decode()
    for item in body["items"][:50]:
        assert item["plaintext"] not in text and item["ciphertext"] not in text


async def test_generate_returns_distinct_deks_that_unwrap(api: Api) -> None:
    key = (await api.create_key())["id"]
    body = (await batch(api, key, "generate", {"count": 200})).json()
    deks = [base64.b64decode(i["plaintext"]) for i in body["items"]]
    assert len(set(deks)) == 200 and all(len(d) == 32 for d in deks)
    back = [{"ciphertext": i["ciphertext"]} for i in body["items"]]
    opened = (await batch(api, key, "unwrap", {"items": back})).json()["items"]
    assert [base64.b64decode(i["plaintext"]) for i in opened] == deks


async def test_unwrap_failures_are_per_item_and_opaque(api: Api) -> None:
    key = (await api.create_key())["id"]
    other = (await api.create_key("other"))["id"]
    mine = (await batch(api, key, "generate", {"count": 2, "aad": ["a"]})).json()["items"]
    theirs = (await batch(api, other, "generate", {"count": 1})).json()["items"]
    damaged = bytearray(base64.b64decode(mine[1]["ciphertext"]))
    damaged[-1] ^= 1
    items = [
        {"ciphertext": mine[0]["ciphertext"], "aad": ["a"]},
        {"ciphertext": mine[0]["ciphertext"], "aad": ["b"]},  # wrong AAD
        {"ciphertext": b64(bytes(damaged)), "aad": ["a"]},  # altered
        {"ciphertext": theirs[0]["ciphertext"]},  # another key's
        {"ciphertext": b64(b"short")},  # not a kyok ciphertext
        {"ciphertext": ""},  # missing
    ]
    r = await batch(api, key, "unwrap", {"items": items})
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    assert base64.b64decode(got[0]["plaintext"]) == base64.b64decode(mine[0]["plaintext"])
    assert [g["error"]["code"] for g in got[1:5]] == ["UNPROCESSABLE_CIPHERTEXT_ERR"] * 4
    assert {g["error"]["status"] for g in got[1:5]} == {422}
    assert got[5]["error"]["code"] == "INVALID_FIELD_ERR"
    assert len({g["error"]["message"] for g in got[1:5]}) == 1  # one opaque message
    event = last_event(api)
    assert [(run.first, run.count, run.outcome) for run in event.items] == [
        (0, 1, "success"),
        (1, 4, "failure"),
        (5, 1, "failure"),
    ]


async def test_rotation_unwrap_rewraps_stale_items_and_rewrap_moves_all(api: Api) -> None:
    key = (await api.create_key())["id"]
    old = (await batch(api, key, "generate", {"count": 3})).json()
    old_version = old["keyVersion"]["id"]
    r = await api.request("POST", f"/api/v2/keys/{key}/actions/rotate", content=b"{}")
    assert r.status_code == 204
    fresh = (await batch(api, key, "generate", {"count": 1})).json()
    new_version = fresh["keyVersion"]["id"]
    assert new_version != old_version
    items = [{"ciphertext": i["ciphertext"]} for i in old["items"] + fresh["items"]]

    unwrapped = (await batch(api, key, "unwrap", {"items": items})).json()["items"]
    assert [u["keyVersion"]["id"] for u in unwrapped] == [old_version] * 3 + [new_version]
    assert all(u["rewrappedKeyVersion"] == {"id": new_version} for u in unwrapped[:3])
    assert "rewrappedKeyVersion" not in unwrapped[3]
    event = last_event(api)
    assert [(r.count, r.key_version) for r in event.items] == [(3, old_version), (1, new_version)]

    moved = (await batch(api, key, "rewrap", {"items": items})).json()
    assert moved["failed"] == 0
    assert all(m["rewrappedKeyVersion"] == {"id": new_version} for m in moved["items"])
    again = [{"ciphertext": m["ciphertext"]} for m in moved["items"]]
    opened = (await batch(api, key, "unwrap", {"items": again})).json()["items"]
    expected = [i["plaintext"] for i in old["items"] + fresh["items"]]
    assert [o["plaintext"] for o in opened] == expected
    assert all("ciphertext" not in o for o in opened)  # all on the newest version now


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({"items": [{"plaintext": "AA=="}] * (MAX_ITEMS + 1)}, "items"),
    ],
)
async def test_malformed_calls_fail_as_a_whole(api: Api, body: Any, field: str) -> None:
    key = (await api.create_key())["id"]
    r = await batch(api, key, "wrap", body)
    assert r.status_code == 400
    reason = error_of(r)
    assert reason["code"] == "INVALID_FIELD_ERR" and reason["target"]["name"] == field


@pytest.mark.parametrize("count", [0, MAX_ITEMS + 1, "5", None, True])
async def test_generate_count_is_checked(api: Api, count: Any) -> None:
    key = (await api.create_key())["id"]
    r = await batch(api, key, "generate", {"count": count})
    assert r.status_code == 400 and error_of(r)["code"] == "INVALID_FIELD_ERR"


async def test_not_json_is_400(api: Api) -> None:
    key = (await api.create_key())["id"]
    r = await api.request("POST", BATCH.format(key, "wrap"), content=b"{not json")
    assert r.status_code == 400
    r = await api.request("POST", BATCH.format(key, "wrap"), content=b"[]")
    assert r.status_code == 400


async def test_key_problems_fail_the_whole_call_and_are_recorded(api: Api) -> None:
    r = await batch(api, "2f9bd1c7-0000-4000-8000-000000000000", "generate", {"count": 1})
    assert r.status_code == 404 and error_of(r)["code"] == "KEY_NOT_FOUND_ERR"
    event = last_event(api)
    assert event.outcome == "failure" and event.items == ()

    key = (await api.create_key())["id"]
    assert (await api.request("POST", f"/api/v2/keys/{key}/actions/disable")).status_code == 204
    r = await batch(api, key, "wrap", {"items": [{"plaintext": b64(b"k" * 32)}]})
    assert r.status_code == 409
    assert last_event(api).reason_code == error_of(r)["code"]

    standard = (await api.create_key("std", extractable=True))["id"]
    r = await batch(api, standard, "generate", {"count": 1})
    assert r.status_code == 400


async def test_permissions_are_those_of_the_single_calls(api: Api) -> None:
    key = (await api.create_key())["id"]
    other = (await api.create_key("other"))["id"]
    wrapped = (await batch(api, key, "generate", {"count": 1})).json()["items"]
    items = {"items": [{"ciphertext": wrapped[0]["ciphertext"]}]}
    purger = api.mint(Grant(Role.KEY_PURGE), principal="purger")  # no data-plane permission
    for action, body in (("generate", {"count": 1}), ("unwrap", items), ("rewrap", items)):
        r = await batch(api, key, action, body, headers=purger)
        assert r.status_code == 403, action
    # A Reader grant on one key covers that key only.
    scoped_headers = api.mint(scoped(Role.READER, f"key:{key}"), principal="scoped")
    assert (await batch(api, key, "unwrap", items, headers=scoped_headers)).status_code == 200
    r = await batch(api, other, "generate", {"count": 1}, headers=scoped_headers)
    assert r.status_code in (403, 404)
    anonymous = {"Authorization": "", "Bluemix-Instance": api.instance}
    assert (await batch(api, key, "unwrap", items, headers=anonymous)).status_code == 401


async def test_an_alias_names_the_key(api: Api) -> None:
    key = (await api.create_key(aliases=["payroll"]))["id"]
    r = await batch(api, "payroll", "generate", {"count": 2})
    assert r.status_code == 200 and r.json()["keyId"] == key
    assert last_event(api).target.id == "payroll"


async def test_large_batches_pass_the_batch_body_limit(api: Api) -> None:
    key = (await api.create_key())["id"]
    made = (await batch(api, key, "generate", {"count": MAX_ITEMS})).json()
    items = [
        {"ciphertext": i["ciphertext"], "aad": ["a-fairly-long-aad-value"]} for i in made["items"]
    ]
    # over 1 MiB (the single calls' limit), under the batch limit (16 MiB)
    r = await batch(api, key, "rewrap", {"items": items})
    assert r.status_code == 200 and r.json()["failed"] == MAX_ITEMS  # wrong AAD, every item
    assert last_event(api).items == (
        ItemRun(0, MAX_ITEMS, "failure", "UNPROCESSABLE_CIPHERTEXT_ERR", None),
    )


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.booleans(), min_size=1, max_size=40))
async def test_item_runs_tile_the_request(api: Api, good: list[bool]) -> None:
    key = (await api.create_key())["id"]
    items = [{"plaintext": b64(b"d" * 32) if ok else "!"} for ok in good]
    body = (await batch(api, key, "wrap", {"items": items})).json()
    assert [("error" not in i) for i in body["items"]] == good
    runs = last_event(api).items
    flat = [run.outcome == "success" for run in runs for _ in range(run.count)]
    assert flat == good
