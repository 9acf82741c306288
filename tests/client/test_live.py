"""The SDK against the real server (a dev node under uvicorn in a thread): a whole tour of the
Key Protect API and kyok's identity endpoints, over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kyok.client import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    KeyState,
    KyokClient,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from live_server import LiveServer, dev_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-live")) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as client:
        yield client


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_whoami_is_the_bootstrap_admin(admin: KyokClient, live: LiveServer) -> None:
    me = admin.whoami()
    assert me.instance_id == live.instance_id
    roles = {(b.role, b.scope) for b in me.roles}
    assert {
        ("Manager", "instance"),
        ("KeyPurge", "instance"),
        ("KyokInstanceAdmin", "instance"),
    } <= roles


def test_a_wrong_api_key_is_unauthorized(live: LiveServer) -> None:
    with (
        KyokClient(live.url, live.instance_id, api_key="kyok_not-a-real-key") as client,
        pytest.raises(Unauthorized) as info,
    ):
        client.whoami()
    assert "kyok_not-a-real-key" not in str(info.value)


def test_another_instance_is_refused(live: LiveServer) -> None:
    with (
        KyokClient(live.url, str(uuid.uuid4()), api_key=live.api_key) as client,
        pytest.raises((Unauthorized, NotFound)),
    ):
        client.list_keys()


def test_envelope_encryption_tour(admin: KyokClient) -> None:
    ring = _name("ring")
    admin.create_key_ring(ring)
    assert ring in {r.id for r in admin.list_key_rings()}
    alias = _name("orders")
    root = admin.create_key(
        _name("root"), aliases=[alias], tags=["team-a"], description="orders root", key_ring=ring
    )
    assert root.is_root and root.state is KeyState.ACTIVE and root.key_ring_id == ring
    assert root.aliases == (alias,) and root.tags == ("team-a",)
    assert root.payload is None

    # wrap a generated DEK, unwrap it by alias
    aad = ["tenant:7", "file:42"]
    generated = admin.wrap(alias, aad=aad)
    assert generated.generated and len(generated.dek) == 32
    first_version = generated.key_version_id
    opened = admin.unwrap(root.id, generated.ciphertext, aad=aad)
    assert opened.plaintext == generated.dek and not opened.is_stale
    assert opened.key_version_id == first_version

    # wrap our own DEK
    dek = os.urandom(32)
    mine = admin.wrap(root.id, dek)
    assert not mine.generated and admin.unwrap(root.id, mine.ciphertext).plaintext == dek

    # the AAD is bound
    with pytest.raises((Unprocessable, BadRequest)):
        admin.unwrap(root.id, generated.ciphertext, aad=["tenant:8", "file:42"])
    with pytest.raises((Unprocessable, BadRequest)):
        admin.unwrap(root.id, generated.ciphertext)

    # rotate: old ciphertexts still open, and come back rewrapped
    admin.rotate_key(root.id)
    versions = admin.list_key_versions(root.id, total_count=True)
    assert len(versions) == 2 and versions.total_count == 2
    newest = versions[0].id
    assert newest != first_version and versions[1].id == first_version
    assert admin.get_key_metadata(root.id).key_version.id == newest  # type: ignore[union-attr]
    stale = admin.unwrap(root.id, generated.ciphertext, aad=aad)
    assert stale.plaintext == generated.dek and stale.is_stale
    assert (stale.key_version_id, stale.rewrapped_key_version_id) == (first_version, newest)
    assert stale.rewrapped_ciphertext is not None
    fresh = admin.unwrap(root.id, stale.rewrapped_ciphertext, aad=aad)
    assert fresh.plaintext == generated.dek and not fresh.is_stale
    rewrapped = admin.rewrap(root.id, generated.ciphertext, aad=aad)
    assert (rewrapped.key_version_id, rewrapped.rewrapped_key_version_id) == (first_version, newest)
    assert admin.unwrap(root.id, rewrapped.ciphertext, aad=aad).plaintext == generated.dek
    assert admin.wrap(root.id, dek).key_version_id == newest

    # aliases
    second = _name("billing")
    made = admin.create_alias(root.id, second)
    assert (made.key_id, made.alias) == (root.id, second)
    assert admin.get_key_metadata(second).id == root.id
    admin.delete_alias(root.id, second)
    with pytest.raises(NotFound):
        admin.get_key_metadata(second)

    # disable / enable
    admin.disable_key(root.id)
    assert admin.get_key_metadata(root.id).state is KeyState.SUSPENDED
    with pytest.raises(ApiError):
        admin.wrap(root.id, dek)
    admin.enable_key(root.id)
    assert admin.get_key_metadata(root.id).state is KeyState.ACTIVE

    # move rings, then the empty ring can go
    moved = admin.set_key_ring(root.id, "default", current_key_ring=ring)
    assert moved.key_ring_id == "default"
    admin.delete_key_ring(ring)
    assert ring not in {r.id for r in admin.list_key_rings()}

    # delete, restore, delete, purge
    deleted = admin.delete_key(root.id)
    assert deleted.state is KeyState.DESTROYED and deleted.deleted
    with pytest.raises((Gone, Conflict)):
        admin.wrap(root.id, dek)
    assert root.id not in {k.id for k in admin.iter_keys()}
    assert root.id in {k.id for k in admin.iter_keys(state=5)}
    restored = admin.restore_key(root.id)
    assert restored.state is KeyState.ACTIVE
    assert admin.unwrap(root.id, mine.ciphertext).plaintext == dek
    admin.delete_key(root.id, force=True)
    admin.purge_key(root.id)
    with pytest.raises(NotFound) as info:
        admin.get_key_metadata(root.id)
    assert info.value.code and info.value.correlation_id


def test_standard_keys_and_listing(admin: KyokClient) -> None:
    material = os.urandom(48)
    tag = _name("tag")
    std = admin.create_key(_name("std"), extractable=True, material=material, tags=[tag])
    assert std.extractable and std.imported
    assert admin.get_key(std.id).payload == material
    assert admin.get_key_metadata(std.id).payload is None
    with pytest.raises(ApiError):
        admin.wrap(std.id, b"x" * 32)  # standard keys do not wrap

    imported_root = admin.create_key(_name("imp"), material=os.urandom(32))
    assert imported_root.imported and imported_root.is_root
    with pytest.raises(ApiError):
        admin.rotate_key(imported_root.id)  # an imported key needs new material
    admin.rotate_key(imported_root.id, material=os.urandom(32))
    assert len(admin.list_key_versions(imported_root.id)) == 2

    names = [_name("page") for _ in range(3)]
    made = [admin.create_key(n) for n in names]
    total = admin.count_keys()
    assert total >= 5
    everything = list(admin.iter_keys(page_size=2))
    assert len(everything) == total
    assert {k.id for k in made} <= {k.id for k in everything}
    only_std = admin.list_keys(extractable=True)
    assert std.id in {k.id for k in only_std} and all(k.extractable for k in only_std)
    found = admin.list_keys(search=f"exact:{names[1]}")
    assert [k.id for k in found] == [made[1].id]
    page = admin.list_keys(limit=2, offset=1)
    assert len(page) == 2 and page.offset == 1


def test_principals_api_keys_and_roles(admin: KyokClient, live: LiveServer) -> None:
    name = _name("svc")
    svc = admin.create_principal(name, kind="service")
    assert (svc.name, svc.kind) == (name, "service")
    assert svc in admin.list_principals()
    assert admin.get_principal(svc.id) == svc
    created = admin.create_api_key(svc.id, "ci")
    assert created.secret and created.secret not in repr(created)
    listed = admin.list_api_keys(svc.id)
    assert [k.id for k in listed] == [created.id] and listed[0].secret is None

    with KyokClient(live.url, live.instance_id, api_key=created.secret) as svc_client:
        me = svc_client.whoami()
        assert me.principal.id == svc.id and me.roles == ()
        with pytest.raises(Forbidden):
            svc_client.list_keys()

        reader = admin.grant_role(svc.id, "Reader")
        assert reader.role == "Reader" and reader.scope == "instance"
        svc_client.list_keys()
        with pytest.raises(Forbidden):
            svc_client.create_key(_name("nope"))

        writer = admin.grant_role(svc.id, "Writer")
        key = svc_client.create_key(_name("by-svc"))
        with pytest.raises(Forbidden):
            svc_client.disable_key(key.id)  # Manager only
        assert {b.id for b in admin.list_roles(svc.id)} == {reader.id, writer.id}

        admin.revoke_role(writer.id)
        with pytest.raises(Forbidden):
            svc_client.create_key(_name("nope"))

        admin.delete_api_key(created.id)
        svc_client.close()
    with (
        KyokClient(live.url, live.instance_id, api_key=created.secret) as revoked,
        pytest.raises(Unauthorized),
    ):
        revoked.whoami()

    admin.delete_principal(svc.id)
    with pytest.raises(NotFound):
        admin.get_principal(svc.id)


def test_the_last_instance_admin_cannot_be_revoked(admin: KyokClient) -> None:
    me = admin.whoami()
    binding = next(b for b in me.roles if b.role == "KyokInstanceAdmin")
    with pytest.raises(Conflict):
        admin.revoke_role(binding.id)


def test_errors_carry_the_key_protect_code(admin: KyokClient) -> None:
    with pytest.raises(NotFound) as info:
        admin.get_key(str(uuid.uuid4()))
    assert info.value.code == "KEY_NOT_FOUND_ERR"
    with pytest.raises(BadRequest):
        admin.create_key("x")  # names are 2-90 characters
    with pytest.raises((BadRequest, Unprocessable)):
        admin.unwrap(admin.create_key(_name("r")).id, "bm90IGEgY2lwaGVydGV4dA==")


def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    """``verify=<CA bundle>`` trusts the server; the default trust store does not; ``False`` skips."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    overrides = {"server.tls_cert": cert_file, "server.tls_key": key_file}
    with dev_server(tmp_path / "data", **overrides) as live:
        assert live.url.startswith("https://")
        with KyokClient(live.url, live.instance_id, api_key=live.api_key, verify=ca_file) as ok:
            assert ok.whoami().instance_id == live.instance_id
        with KyokClient(live.url, live.instance_id, api_key=live.api_key) as untrusted:
            with pytest.raises(ConnectionFailed) as info:
                untrusted.whoami()
            assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
        with KyokClient(live.url, live.instance_id, api_key=live.api_key, verify=False) as blind:
            assert blind.whoami().instance_id == live.instance_id


def test_refresh_token_grant_against_the_server(live: LiveServer) -> None:
    """Past the refresh point the flow uses the server's refresh token, and the new access
    token works; a forgotten token (401) is replaced with the API key."""
    from urllib.parse import parse_qsl

    from kyok.client import ApiKeyAuth

    now = [1_000_000_000.0]
    grants: list[str] = []

    def log(request: httpx.Request) -> None:
        if request.url.path == "/identity/token":
            request.read()
            grants.append(dict(parse_qsl(request.content.decode()))["grant_type"])

    auth = ApiKeyAuth(f"{live.url}/identity/token", live.api_key, clock=lambda: now[0])
    headers = {"Bluemix-Instance": live.instance_id}
    with httpx.Client(auth=auth, headers=headers, event_hooks={"request": [log]}) as http:
        whoami = f"{live.url}/api/v2/kyok/whoami"
        assert http.get(whoami).status_code == 200
        now[0] += 10 * 3600  # far past expiry by the client's clock
        assert http.get(whoami).status_code == 200
        assert grants == ["urn:ibm:params:oauth:grant-type:apikey", "refresh_token"]
        token = auth._cached()
        assert token is not None
        object.__setattr__(token, "access", type(token.access)("not-a-valid-token"))
        assert http.get(whoami).status_code == 200
        assert grants[-1] == "urn:ibm:params:oauth:grant-type:apikey" and len(grants) == 3
