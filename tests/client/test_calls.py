"""Every SDK call over MockTransport: method, path, query, headers, body in Key Protect's
envelope, and the typed result read back."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from kyok.client import (
    Alias,
    ApiKey,
    InvalidResponse,
    Key,
    KeyRing,
    KeyState,
    KeyVersion,
    KyokClient,
    Page,
    Principal,
    RoleBinding,
)

from ._mock import INSTANCE, KEY_ID, Recorder, envelope, key_resource

KEY_T = "application/vnd.ibm.kms.key+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_common_headers(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource()))
    client.get_key(KEY_ID)
    req = recorder.last
    assert req.url == f"https://kms.test/api/v2/keys/{KEY_ID}"
    assert req.headers["Bluemix-Instance"] == INSTANCE
    assert req.headers["Authorization"] == "Bearer access-1"
    assert req.headers["Accept"] == "application/json"
    assert req.headers["User-Agent"].startswith("kyok-client/")
    uuid.UUID(req.headers["Correlation-Id"])


def test_a_base_url_with_a_path_prefix_is_kept(recorder: Recorder) -> None:
    kms = KyokClient(
        "https://proxy.test/kms/", INSTANCE, api_key="k", transport=httpx.MockTransport(recorder)
    )
    recorder.answer(envelope(KEY_T))
    kms.list_keys()
    assert recorder.last.url.path == "/kms/api/v2/keys"


def test_create_root_key_sends_the_envelope(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(), status=201))
    key = client.create_key(
        "root-1",
        description="orders",
        expiration=datetime(2030, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
        aliases=["orders"],
        tags=["t1", "t2"],
        key_ring="ring-a",
    )
    req = recorder.last
    assert (req.method, req.url.path) == ("POST", "/api/v2/keys")
    assert req.headers["Content-Type"] == KEY_T
    assert req.headers["Prefer"] == "return=representation"
    assert req.headers["X-Kms-Key-Ring"] == "ring-a"
    assert recorder.last_json() == {
        "metadata": {"collectionType": KEY_T, "collectionTotal": 1},
        "resources": [
            {
                "type": KEY_T,
                "name": "root-1",
                "extractable": False,
                "description": "orders",
                "expirationDate": "2030-01-01T00:00:00Z",
                "aliases": ["orders"],
                "tags": ["t1", "t2"],
            }
        ],
    }
    assert key.id == KEY_ID and key.is_root and key.state is KeyState.ACTIVE
    assert key.aliases == ("orders",) and key.tags == ("t1",)
    assert key.creation_date == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert key.last_update_date is not None and key.last_update_date.microsecond == 123456
    assert key.key_version == KeyVersion("v-1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert key.properties["dualAuthDelete"] == {"enabled": False}
    assert key.payload is None


def test_import_a_standard_key(client: KyokClient, recorder: Recorder) -> None:
    material = b"\x01" * 48
    recorder.answer(
        envelope(KEY_T, key_resource(extractable=True, imported=True, payload=b64(material)))
    )
    key = client.create_standard_key("std", material=material)
    body = recorder.last_json()["resources"][0]
    assert body["extractable"] is True and body["payload"] == b64(material)
    assert "X-Kms-Key-Ring" not in recorder.last.headers
    assert key.payload == material and key.imported is True
    assert "payload" not in key.properties
    assert b64(material) not in repr(key) and str(material) not in repr(key)


def test_expiration_must_be_aware(client: KyokClient) -> None:
    with pytest.raises(ValueError):
        client.create_key("x", expiration=datetime(2030, 1, 1))


def test_list_keys_query_and_page(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(), key_resource(id="k2", state=5, deleted=True)))
    page = client.list_keys(
        limit=10,
        offset=20,
        state=[1, 5],
        extractable=False,
        search="exact:orders",
        sort="-creationDate",
        filter="state=1",
    )
    assert dict(recorder.last.url.params) == {
        "limit": "10",
        "offset": "20",
        "state": "1,5",
        "extractable": "false",
        "search": "exact:orders",
        "sort": "-creationDate",
        "filter": "state=1",
    }
    assert isinstance(page, Page) and len(page) == 2 and page.offset == 20 and page.limit == 10
    assert [k.id for k in page] == [KEY_ID, "k2"]
    assert page[1].state is KeyState.DESTROYED and page[1].deleted is True


def test_a_list_without_resources_is_empty(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json={"metadata": {"collectionTotal": 0}}))
    assert list(client.list_keys()) == []


def test_iter_keys_walks_every_page(client: KyokClient, recorder: Recorder) -> None:
    all_keys = [key_resource(id=f"k{i}", name=f"n{i}") for i in range(7)]

    def pages(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        return envelope(KEY_T, *all_keys[offset : offset + limit])

    recorder.answer(pages, pages, pages)
    ids = [k.id for k in client.iter_keys(page_size=3, state=iter([1]))]
    assert ids == [f"k{i}" for i in range(7)]
    assert [r.url.params["offset"] for r in recorder.requests] == ["0", "3", "6"]
    assert all(r.url.params["state"] == "1" for r in recorder.requests)


def test_iter_keys_stops_on_an_exact_multiple(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(id="a"), key_resource(id="b")), envelope(KEY_T))
    assert [k.id for k in client.iter_keys(page_size=2)] == ["a", "b"]
    assert len(recorder.requests) == 2


def test_count_keys_reads_key_total(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, headers={"Key-Total": "42"}))
    assert client.count_keys(state=[0, 1, 2, 3], extractable=True) == 42
    assert recorder.last.method == "HEAD"
    assert dict(recorder.last.url.params) == {"state": "0,1,2,3", "extractable": "true"}
    recorder.answer(httpx.Response(200))
    with pytest.raises(InvalidResponse):
        client.count_keys()


def test_get_by_alias_is_percent_encoded(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource()))
    client.get_key_metadata("a/b c")
    assert recorder.last.url.raw_path == b"/api/v2/keys/a%2Fb%20c/metadata"
    with pytest.raises(ValueError):
        client.get_key("")


def test_versions(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        envelope(
            "application/vnd.ibm.kms.key.version+json",
            {"id": "v2", "creationDate": "2026-02-01T00:00:00Z"},
            {"id": "v1", "creationDate": "2026-01-01T00:00:00Z"},
            totalCount=2,
        )
    )
    page = client.list_key_versions(KEY_ID, limit=5, total_count=True, all_key_states=True)
    assert recorder.last.url.path == f"/api/v2/keys/{KEY_ID}/versions"
    assert dict(recorder.last.url.params) == {
        "limit": "5",
        "totalCount": "true",
        "allKeyStates": "true",
    }
    assert [v.id for v in page] == ["v2", "v1"] and page.total_count == 2


def test_rotate_with_and_without_material(client: KyokClient, recorder: Recorder) -> None:
    client.rotate_key(KEY_ID)
    assert recorder.last.url.path == f"/api/v2/keys/{KEY_ID}/actions/rotate"
    assert recorder.last_json() == {}
    assert recorder.last.headers["Content-Type"] == (
        "application/vnd.ibm.kms.key_action_rotate+json"
    )
    client.rotate_key(KEY_ID, material=b"\x02" * 32)
    assert recorder.last_json() == {"payload": b64(b"\x02" * 32)}


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_state_actions(client: KyokClient, recorder: Recorder, action: str) -> None:
    assert getattr(client, f"{action}_key")(KEY_ID) is None
    assert (recorder.last.method, recorder.last.url.path) == (
        "POST",
        f"/api/v2/keys/{KEY_ID}/actions/{action}",
    )
    assert recorder.last.content == b""


def test_delete_with_representation(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(state=5, deleted=True)))
    key = client.delete_key(KEY_ID, force=True)
    assert recorder.last.method == "DELETE"
    assert dict(recorder.last.url.params) == {"force": "true"}
    assert recorder.last.headers["Prefer"] == "return=representation"
    assert key.state is KeyState.DESTROYED


def test_delete_answered_204_reads_the_metadata(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(204), envelope(KEY_T, key_resource(state=5)))
    assert client.delete_key(KEY_ID).state is KeyState.DESTROYED
    assert "force" not in recorder.requests[0].url.params
    assert recorder.last.url.path.endswith("/metadata")


def test_restore_and_purge(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(), status=201))
    assert client.restore_key(KEY_ID).state is KeyState.ACTIVE
    assert (recorder.last.method, recorder.last.url.path) == (
        "POST",
        f"/api/v2/keys/{KEY_ID}/restore",
    )
    recorder.answer(envelope(KEY_T, key_resource(state=5)))
    purged = client.purge_key(KEY_ID)
    assert purged is not None and purged.state is KeyState.DESTROYED
    assert (recorder.last.method, recorder.last.url.path) == (
        "DELETE",
        f"/api/v2/keys/{KEY_ID}/purge",
    )
    recorder.answer(httpx.Response(204))
    assert client.purge_key(KEY_ID) is None


def test_move_to_another_ring(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(envelope(KEY_T, key_resource(keyRingID="ring-b")))
    key = client.set_key_ring(KEY_ID, "ring-b", current_key_ring="default")
    assert recorder.last.method == "PATCH"
    assert recorder.last_json() == {"keyRingID": "ring-b"}
    assert recorder.last.headers["X-Kms-Key-Ring"] == "default"
    assert key.key_ring_id == "ring-b"


def test_wrap_a_given_dek(client: KyokClient, recorder: Recorder) -> None:
    dek = bytes(range(32))
    recorder.answer(httpx.Response(200, json={"ciphertext": "CT==", "keyVersion": {"id": "v1"}}))
    result = client.wrap(KEY_ID, dek, aad=["tenant:1", "file:2"])
    assert recorder.last.url.path == f"/api/v2/keys/{KEY_ID}/actions/wrap"
    assert recorder.last_json() == {"plaintext": b64(dek), "aad": ["tenant:1", "file:2"]}
    assert (result.ciphertext, result.key_version_id, result.dek) == ("CT==", "v1", dek)
    assert result.generated is False
    assert b64(dek) not in repr(result) and str(dek) not in repr(result)


def test_wrap_without_plaintext_gets_a_generated_dek(
    client: KyokClient, recorder: Recorder
) -> None:
    dek = b"\x07" * 32
    recorder.answer(
        httpx.Response(
            200, json={"ciphertext": "CT==", "plaintext": b64(dek), "keyVersion": {"id": "v1"}}
        )
    )
    result = client.wrap(KEY_ID)
    assert recorder.last_json() == {}
    assert result.dek == dek and result.generated
    assert b64(dek) not in repr(result)


def test_wrap_input_checks(client: KyokClient) -> None:
    with pytest.raises(ValueError):
        client.wrap(KEY_ID, b"")
    with pytest.raises(TypeError):
        client.wrap(KEY_ID, b"x", aad="one string")
    with pytest.raises(TypeError):
        client.wrap(KEY_ID, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.unwrap(KEY_ID, b"bytes")  # type: ignore[arg-type]


def test_unwrap_current_and_stale(client: KyokClient, recorder: Recorder) -> None:
    dek = b"\x09" * 32
    recorder.answer(
        httpx.Response(200, json={"plaintext": b64(dek), "keyVersion": {"id": "v2"}}),
        httpx.Response(
            200,
            json={
                "plaintext": b64(dek),
                "keyVersion": {"id": "v1"},
                "ciphertext": "NEW==",
                "rewrappedKeyVersion": {"id": "v2"},
            },
        ),
    )
    fresh = client.unwrap(KEY_ID, "CT2==", aad=["a"])
    assert recorder.last_json() == {"ciphertext": "CT2==", "aad": ["a"]}
    assert fresh.plaintext == dek and not fresh.is_stale and fresh.key_version_id == "v2"
    stale = client.unwrap(KEY_ID, "CT1==")
    assert recorder.last_json() == {"ciphertext": "CT1=="}
    assert stale.is_stale and stale.rewrapped_ciphertext == "NEW=="
    assert (stale.key_version_id, stale.rewrapped_key_version_id) == ("v1", "v2")
    assert b64(dek) not in repr(stale) and str(dek) not in repr(fresh)


def test_unwrap_rejects_bad_base64_from_the_service(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json={"plaintext": "%%%", "keyVersion": {"id": "v"}}))
    with pytest.raises(InvalidResponse):
        client.unwrap(KEY_ID, "CT==")


def test_rewrap(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(
            200,
            json={
                "ciphertext": "NEW==",
                "keyVersion": {"id": "v1"},
                "rewrappedKeyVersion": {"id": "v2"},
            },
        )
    )
    result = client.rewrap(KEY_ID, "OLD==", aad=["a"])
    assert recorder.last.url.path == f"/api/v2/keys/{KEY_ID}/actions/rewrap"
    assert recorder.last_json() == {"ciphertext": "OLD==", "aad": ["a"]}
    assert (result.ciphertext, result.key_version_id, result.rewrapped_key_version_id) == (
        "NEW==",
        "v1",
        "v2",
    )


def test_key_rings(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(201))
    client.create_key_ring("ring-a")
    assert (recorder.last.method, recorder.last.url.path) == ("POST", "/api/v2/key_rings/ring-a")
    recorder.answer(
        envelope(
            "application/vnd.ibm.kms.key_ring+json",
            {"id": "default"},
            {"id": "ring-a", "creationDate": "2026-01-01T00:00:00Z", "createdBy": "me"},
            totalCount=2,
        )
    )
    page = client.list_key_rings(limit=10, total_count=True)
    assert dict(recorder.last.url.params) == {"limit": "10", "totalCount": "true"}
    assert list(page) == [
        KeyRing("default"),
        KeyRing("ring-a", datetime(2026, 1, 1, tzinfo=UTC), "me"),
    ]
    client.delete_key_ring("ring-a", force=True)
    assert recorder.last.method == "DELETE" and recorder.last.url.params["force"] == "true"
    client.delete_key_ring("ring-a")
    assert "force" not in recorder.last.url.params


def test_aliases(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        envelope(
            "application/vnd.ibm.kms.alias+json",
            {
                "keyId": KEY_ID,
                "alias": "billing",
                "createdBy": "me",
                "creationDate": "2026-01-01T00:00:00Z",
            },
            status=201,
        )
    )
    alias = client.create_alias(KEY_ID, "billing")
    assert (recorder.last.method, recorder.last.url.path) == (
        "POST",
        f"/api/v2/keys/{KEY_ID}/aliases/billing",
    )
    assert alias == Alias(KEY_ID, "billing", datetime(2026, 1, 1, tzinfo=UTC), "me")
    client.delete_alias(KEY_ID, "billing")
    assert recorder.last.method == "DELETE"


P = {
    "id": "p1",
    "name": "alice",
    "kind": "user",
    "createdAt": "2026-01-01T00:00:00Z",
    "createdBy": "p0",
}
B = {
    "id": "b1",
    "principalId": "p1",
    "role": "Writer",
    "scope": "key_ring:ring-a",
    "createdAt": "2026-01-01T00:00:00Z",
    "createdBy": "p0",
}
K = {
    "id": "ak1",
    "name": "ci",
    "principalId": "p1",
    "createdAt": "2026-01-01T00:00:00Z",
    "createdBy": "p0",
}


def test_whoami(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(200, json={"principal": P, "instanceId": INSTANCE, "roles": [B]})
    )
    me = client.whoami()
    assert recorder.last.url.path == "/api/v2/kyok/whoami"
    assert me.principal.name == "alice" and me.instance_id == INSTANCE
    assert me.roles[0].scope == "key_ring:ring-a"


def test_principals(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(201, json=P),
        httpx.Response(200, json={"principals": [P]}),
        httpx.Response(200, json=P),
    )
    created = client.create_principal("alice", kind="service")
    assert recorder.last_json() == {"name": "alice", "kind": "service"}
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert created == Principal("p1", "alice", "user", datetime(2026, 1, 1, tzinfo=UTC), "p0")
    assert client.list_principals() == [created]
    assert client.get_principal("p1") == created
    assert recorder.last.url.path == "/api/v2/kyok/principals/p1"
    client.delete_principal("p1")
    assert (recorder.last.method, recorder.last.url.path) == (
        "DELETE",
        "/api/v2/kyok/principals/p1",
    )


def test_api_keys(client: KyokClient, recorder: Recorder) -> None:
    secret = "kyok_ak_0123456789abcdef"
    recorder.answer(
        httpx.Response(201, json={**K, "apikey": secret}),
        httpx.Response(200, json={"apikeys": [K]}),
    )
    created = client.create_api_key("p1", "ci")
    assert recorder.last.url.path == "/api/v2/kyok/principals/p1/apikeys"
    assert recorder.last_json() == {"name": "ci"}
    assert created.secret == secret
    assert secret not in repr(created)
    listed = client.list_api_keys("p1")
    assert listed == [ApiKey("ak1", "ci", "p1", datetime(2026, 1, 1, tzinfo=UTC), "p0")]
    assert listed[0].secret is None
    client.delete_api_key("ak1")
    assert (recorder.last.method, recorder.last.url.path) == ("DELETE", "/api/v2/kyok/apikeys/ak1")


def test_an_api_key_without_its_secret_is_invalid(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(201, json=K))
    with pytest.raises(InvalidResponse):
        client.create_api_key("p1", "ci")


def test_roles(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(201, json=B), httpx.Response(200, json={"roles": [B]}))
    binding = client.grant_role("p1", "Writer", scope="key_ring:ring-a")
    assert recorder.last_json() == {"role": "Writer", "scope": "key_ring:ring-a"}
    assert binding == RoleBinding(
        "b1", "p1", "Writer", "key_ring:ring-a", datetime(2026, 1, 1, tzinfo=UTC), "p0"
    )
    assert client.list_roles("p1") == [binding]
    client.revoke_role("b1")
    assert (recorder.last.method, recorder.last.url.path) == ("DELETE", "/api/v2/kyok/roles/b1")


def test_a_list_answer_without_its_list_is_invalid(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(200, json={"items": []}))
    with pytest.raises(InvalidResponse):
        client.list_principals()


def test_bodies_are_json(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(httpx.Response(201, json=P))
    client.create_principal("ünïcode")
    assert json.loads(recorder.last.content)["name"] == "ünïcode"


def test_key_state_labels() -> None:
    assert [s.label for s in KeyState] == [
        "Pre-activation",
        "Active",
        "Suspended",
        "Deactivated",
        "Destroyed",
    ]


def test_unknown_key_state_is_invalid() -> None:
    with pytest.raises(InvalidResponse):
        Key.from_wire(key_resource(state=4))
    with pytest.raises(InvalidResponse):
        Key.from_wire({k: v for k, v in key_resource().items() if k != "state"})
    with pytest.raises(InvalidResponse):
        Key.from_wire(key_resource(creationDate="yesterday"))
