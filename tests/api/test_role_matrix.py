"""Who may do what: every ``/api/v2`` route by every role, against reference §7.

The expectation is built here by hand, from the reference, and *not* from
``kyok.auth.roles``: :data:`SECTION_7` says which roles hold each IAM action, :data:`ROWS` says
which action each route (or legacy ``?action=`` variant) needs. Then:

* :func:`test_every_served_route_has_a_matrix_row` enumerates the application's routes, so a
  new ``/api/v2`` route without a row fails (and a row without a route, too);
* :func:`test_roles_py_grants_what_section_7_says` compares ``ROLE_PERMISSIONS`` with the table;
* :func:`test_instance_roles` sends every row as every role (and as a principal with no role,
  and with no token): the allowed roles get the route's success status, everybody else **403**
  (no token: **401**);
* ring- and key-scoped grants: allowed on their ring / key, 403 on another ring's / key's;
  listing with a ring-scoped grant needs ``X-Kms-Key-Ring`` naming that ring;
* tokens: expired, tampered (payload byte, claim, signature, ``alg: none``, HS256 with the
  public key), another instance's token: **401**; another instance's key id with a good token
  for this instance: **404** with nothing of that key in the body.

Real auth service (EdDSA tokens from the instance's dev-sealed unit), real app
(``kyok.api.app.create_app``), SQLite, a FakeClock, ``httpx.ASGITransport``; timers at zero.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from kyok.api.app import create_app
from kyok.auth import AuthContext, AuthService
from kyok.auth.principals import SYSTEM, Principal, PrincipalKind
from kyok.auth.roles import ROLE_PERMISSIONS, Permission, Role
from kyok.bootstrap import Node, open_node
from kyok.clock import FakeClock
from kyok.kms.policies import KeyPolicySpec, validate_instance_policy
from kyok.settings import Settings
from live_server import ZERO_TIMERS

pytestmark = pytest.mark.anyio

# ============================================================================ §7, by hand

READER, READER_PLUS, WRITER, MANAGER = "Reader", "ReaderPlus", "Writer", "Manager"
KEY_PURGE, INSTANCE_ADMIN, AUDITOR = "KeyPurge", "KyokInstanceAdmin", "KyokAuditor"
ROLES = (READER, READER_PLUS, WRITER, MANAGER, KEY_PURGE, INSTANCE_ADMIN, AUDITOR)
INSTANCE_ONLY = (INSTANCE_ADMIN, AUDITOR)  # roles only ever granted on the instance
NO_ROLE = "(no role)"  # an authenticated principal without any binding
ANONYMOUS = "(no token)"
CALLERS = (*ROLES, NO_ROLE)

READERS = frozenset({READER, READER_PLUS, WRITER, MANAGER})
READERS_PLUS = frozenset({READER_PLUS, WRITER, MANAGER})
WRITERS = frozenset({WRITER, MANAGER})
MANAGERS = frozenset({MANAGER})
PURGERS = frozenset({KEY_PURGE})
ADMINS = frozenset({INSTANCE_ADMIN})
ANY_PRINCIPAL = frozenset(CALLERS)

#: Reference §7, row by row, as IAM action -> the roles that hold it.
SECTION_7: dict[str, frozenset[str]] = {
    # list keys, HEAD key total, get key metadata, list versions
    "kms.secrets.list": READERS,
    "kms.secrets.readmetadata": READERS,
    "kms.secrets.listkeyversions": READERS,
    # wrap, unwrap, rewrap
    "kms.secrets.wrap": READERS,
    "kms.secrets.unwrap": READERS,
    "kms.secrets.rewrap": READERS,
    # get key with payload
    "kms.secrets.read": READERS_PLUS,
    # create key, import key, rotate
    "kms.secrets.create": WRITERS,
    "kms.secrets.rotate": WRITERS,
    # setKeyForDeletion / unsetKeyForDeletion, sync
    "kms.secrets.setkeyfordeletion": WRITERS,
    "kms.secrets.unsetkeyfordeletion": WRITERS,
    "kms.secrets.sync": WRITERS,
    # create/retrieve import token
    "kms.importtoken.create": WRITERS,
    "kms.importtoken.read": WRITERS,
    # key rings: list / create / delete
    "kms.keyrings.list": READERS,
    "kms.keyrings.create": WRITERS,
    "kms.keyrings.delete": MANAGERS,
    # disable, enable, delete, restore, patch (move ring)
    "kms.secrets.disable": MANAGERS,
    "kms.secrets.enable": MANAGERS,
    "kms.secrets.delete": MANAGERS,
    "kms.secrets.restore": MANAGERS,
    "kms.secrets.patch": MANAGERS,
    # get/set key policies, get/set instance policies
    "kms.policies.read": MANAGERS,
    "kms.policies.write": MANAGERS,
    "kms.instancepolicies.read": MANAGERS,
    "kms.instancepolicies.write": MANAGERS,
    # list registrations
    "kms.registrations.list": READERS,
    # Not in §7: create/update/delete registrations are "services only". kyok asks for Writer
    # (a key-scoped permission) and the key service for a service principal.
    "kms.registrations.write": WRITERS,
    # purge
    "kms.secrets.purge": PURGERS,
    # Not in §7. Aliases: §7 is silent; they are key metadata like tags, and IBM's alias
    # documentation asks for Writer or Manager.
    "kms.secrets.createalias": WRITERS,
    "kms.secrets.deletealias": WRITERS,
    # kyok's own: principals, API keys, role bindings (docs/api-kyok.md)
    "kyok.principals.manage": ADMINS,
    # kyok's own: reading the audit ledger (Managers, and auditors who may do nothing else)
    "kyok.audit.read": frozenset({MANAGER, AUDITOR}),
}

# ============================================================================ the world


@dataclass
class Req:
    """One concrete request; ``key_id`` is the key it is about (for key-scoped grants)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    key_id: str | None = None


@dataclass
class World:
    """A node with two instances; principals with each role on instance, ring and key scope."""

    node: Node
    app: FastAPI
    clock: FakeClock
    instance: str
    other: str  # another instance of the same node
    admin: AuthContext
    tokens: dict[str, str]  # caller -> access token (instance scope)
    ring_tokens: dict[str, str]  # role -> token of a principal with it on key_ring:ring-own
    key_principals: dict[str, tuple[str, str]]  # role -> (principal id, token), key scope
    principal_ids: dict[str, str]
    other_token: str  # the other instance's administrator
    counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def auth(self) -> AuthService:
        auth = self.node.auth
        assert isinstance(auth, AuthService)
        return auth

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def headers(self, token: str | None, instance: str | None = None) -> dict[str, str]:
        out = {"Bluemix-Instance": instance or self.instance}
        if token is not None:
            out["Authorization"] = f"Bearer {token}"
        return out

    def caller_headers(self, caller: str) -> dict[str, str]:
        return self.headers(None if caller == ANONYMOUS else self.tokens[caller])

    def key(
        self,
        ring: str | None = None,
        *,
        extractable: bool = False,
        state: str = "active",
        aliases: tuple[str, ...] = (),
        instance: str | None = None,
        name: str | None = None,
        dual_auth: bool = False,
    ) -> str:
        """A new key (made directly through the key service, as the administrator)."""
        inst = instance or self.instance
        view = self.node.service.create_key(
            self.admin.principal,
            inst,
            name or self.unique("mx-key"),
            extractable=extractable,
            aliases=aliases,
            key_ring_id=ring,
            policies=KeyPolicySpec(dual_auth_delete=True) if dual_auth else None,
        )
        if state == "disabled":
            self.node.service.disable(self.admin.principal, inst, view.id)
        elif state == "deleted":
            self.node.service.delete(self.admin.principal, inst, view.id)
        else:
            assert state == "active"
        return view.id

    def ciphertext(self, key_id: str, instance: str | None = None) -> str:
        result = self.node.service.wrap(instance or self.instance, key_id, os.urandom(32))
        return base64.b64encode(result.ciphertext).decode()

    def victim(self) -> str:
        """A principal to be managed by the admin routes."""
        return self.auth.create_principal(self.admin, self.unique("victim"), "service").id


def _token(auth: AuthService, api_key: str) -> str:
    return auth.issue_token(api_key).access_token


def _principal(
    auth: AuthService, admin: AuthContext, name: str, grants: list[tuple[str, str]]
) -> tuple[str, str]:
    """A principal with ``grants`` [(role, scope)]; returns (id, access token)."""
    principal = auth.create_principal(admin, name, "service")
    for role, scope in grants:
        auth.grant(admin, principal.id, role, scope)
    _, secret = auth.create_api_key(admin, principal.id, "matrix")
    return principal.id, _token(auth, secret.reveal())


def _open(tmp: Path, clock: FakeClock) -> Node:
    settings = Settings.load(
        env={},
        overrides={
            "data_dir": tmp,
            "seal": "dev",
            "scheduler.interval": "0s",
            "server.import_token_rsa_bits": 2048,
            **ZERO_TIMERS,
        },
    )
    return open_node(settings, clock=clock)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = FakeClock()
    node = _open(tmp_path_factory.mktemp("matrix"), clock)
    auth = node.auth
    assert isinstance(auth, AuthService), "the matrix needs the real auth service"
    instance = node.service.create_instance(SYSTEM, "matrix", seal="dev").id
    other = node.service.create_instance(SYSTEM, "other", seal="dev").id
    admin_key = auth.bootstrap_admin(instance)
    admin = auth.authenticate(f"Bearer {_token(auth, admin_key)}", instance)
    for ring in ("ring-own", "ring-other"):
        node.service.create_key_ring(admin.principal, instance, ring)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for role in ROLES:
        ids[role], tokens[role] = _principal(auth, admin, f"mx-{role}", [(role, "instance")])
    ids[NO_ROLE], tokens[NO_ROLE] = _principal(auth, admin, "mx-norole", [])
    ring_tokens = {
        role: _principal(auth, admin, f"mx-ring-{role}", [(role, "key_ring:ring-own")])[1]
        for role in ROLES
        if role not in INSTANCE_ONLY  # only ever granted on the instance
    }
    key_principals = {
        role: _principal(auth, admin, f"mx-key-{role}", [])
        for role in ROLES
        if role not in INSTANCE_ONLY
    }
    other_token = _token(auth, auth.bootstrap_admin(other))
    w = World(
        node,
        create_app(node),
        clock,
        instance,
        other,
        admin,
        tokens,
        ring_tokens,
        key_principals,
        ids,
        other_token,
    )
    yield w
    node.close()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as c:
        yield c


async def send(client: httpx.AsyncClient, req: Req, headers: dict[str, str]) -> httpx.Response:
    return await client.request(
        req.method, req.url, headers={**headers, **req.headers}, json=req.json
    )


def reason_code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["resources"][0]["reasons"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return str(code)


# ============================================================================ the rows

KEY, COLLECTION, INSTANCE, ADMIN, PUBLIC = "key", "collection", "instance", "admin", "public"
Prepare = Callable[[World, "str | None"], Req]


@dataclass(frozen=True)
class Row:
    """One route (or legacy variant), the IAM action it needs, and how to exercise it.

    ``kind``: ``key`` (about one key: ring and key grants apply), ``collection`` (list, count,
    create: ring grants apply with ``X-Kms-Key-Ring``), ``instance`` (key rings), ``admin``
    (``/api/v2/kyok``), ``public`` (the crypto unit's endpoints: no token at all).
    ``prepare(world, ring)`` makes the resources a success needs (in ``ring``; None: the
    default ring, no header) and returns the request.
    """

    method: str
    route: str
    action: str | None  # a SECTION_7 key; None: any principal (whoami) or public
    kind: str
    ok: int
    prepare: Prepare
    variant: str = ""

    @property
    def allowed(self) -> frozenset[str]:
        if self.action is None:
            return ANY_PRINCIPAL
        return SECTION_7[self.action]

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}{self.variant}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ring_header(ring: str | None) -> dict[str, str]:
    return {"X-Kms-Key-Ring": ring} if ring else {}


def _on_key(
    method: str,
    suffix: str = "",
    *,
    state: str = "active",
    extractable: bool = False,
    dual_auth: bool = False,
    body: Callable[[World, str], Any] | None = None,
    query: str = "",
) -> Prepare:
    def prepare(w: World, ring: str | None) -> Req:
        key = w.key(ring, state=state, extractable=extractable, dual_auth=dual_auth)
        payload = body(w, key) if body else None
        return Req(method, f"/api/v2/keys/{key}{suffix}{query}", json=payload, key_id=key)

    return prepare


def _dek(w: World, key: str) -> Any:
    return {"plaintext": _b64(os.urandom(32)), "aad": ["matrix"]}


def _wrapped(w: World, key: str) -> Any:
    return {"ciphertext": w.ciphertext(key)}


def _batch(action: str, body: Callable[[World, str], Any]) -> Prepare:
    """A batch call on a fresh active root key (kyok's /api/v2/kyok/keys/{id}/actions/batch-*)."""

    def prepare(w: World, ring: str | None) -> Req:
        key = w.key(ring)
        path = f"/api/v2/kyok/keys/{key}/actions/batch-{action}"
        return Req("POST", path, json=body(w, key), key_id=key)

    return prepare


def _batch_deks(w: World, key: str) -> Any:
    return {"items": [_dek(w, key), _dek(w, key)]}


def _batch_wrapped(w: World, key: str) -> Any:
    return {"items": [_wrapped(w, key)]}


def _patch(w: World, ring: str | None) -> Req:
    key = w.key(ring)
    target = ring or "default"
    return Req(
        "PATCH",
        f"/api/v2/keys/{key}",
        headers={"X-Kms-Key-Ring": target},
        json={"keyRingID": target},
        key_id=key,
    )


def _create_alias(w: World, ring: str | None) -> Req:
    key = w.key(ring)
    return Req("POST", f"/api/v2/keys/{key}/aliases/{w.unique('mx-alias')}", key_id=key)


def _delete_alias(w: World, ring: str | None) -> Req:
    alias = w.unique("mx-alias")
    key = w.key(ring, aliases=(alias,))
    return Req("DELETE", f"/api/v2/keys/{key}/aliases/{alias}", key_id=key)


def _list(method: str) -> Prepare:
    def prepare(w: World, ring: str | None) -> Req:
        return Req(method, "/api/v2/keys", headers=_ring_header(ring))

    return prepare


def _create_key(w: World, ring: str | None) -> Req:
    resource = {"type": "application/vnd.ibm.kms.key+json", "name": w.unique("mx-new")}
    collection = {
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [resource],
    }
    return Req("POST", "/api/v2/keys", headers=_ring_header(ring), json=collection)


def _import_key(w: World, ring: str | None) -> Req:
    req = _create_key(w, ring)
    req.json["resources"][0]["payload"] = _b64(os.urandom(32))
    return req


def _create_key_with_policies(w: World, ring: str | None) -> Req:
    req = _create_key(w, ring)
    req.url = "/api/v2/keys_with_policy_overrides"
    req.json["resources"][0]["dualAuthDelete"] = {"enabled": True}
    req.json["resources"][0]["rotation"] = {"enabled": True, "interval_month": 6}
    return req


def _get_import_token(w: World, ring: str | None) -> Req:
    w.node.import_tokens.create(w.admin.principal, w.instance, max_retrievals=1)
    return Req("GET", "/api/v2/import_token")


def _key_policies(w: World, key: str) -> Any:
    resource = {"type": POLICY, "rotation": {"enabled": True, "interval_month": 3}}
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1}, "resources": [resource]}


def _instance_policies() -> Any:
    resource = {"policy_type": "metrics", "policy_data": {"enabled": True}}
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1}, "resources": [resource]}


CRN = "crn:v1:bluemix:public:cloud-object-storage:global:a%2Fmatrix:bucket-{}:bucket:b"
SERVICE = Principal("mx-service", PrincipalKind.SERVICE)


def _registration(method: str, *, existing: bool, body: Any = None) -> Prepare:
    def prepare(w: World, ring: str | None) -> Req:
        key = w.key(ring)
        crn = CRN.format(next(w.counter))
        if existing:
            w.node.service.create_registration(SERVICE, w.instance, key, crn.replace("%2F", "/"))
        return Req(method, f"/api/v2/keys/{key}/registrations/{crn}", json=body, key_id=key)

    return prepare


def _new_ring(w: World, ring: str | None) -> Req:
    return Req("POST", f"/api/v2/key_rings/{w.unique('mx-ring')}")


def _delete_ring(w: World, ring: str | None) -> Req:
    ring_id = w.unique("mx-gone-ring")
    w.node.service.create_key_ring(w.admin.principal, w.instance, ring_id)
    return Req("DELETE", f"/api/v2/key_rings/{ring_id}")


def _fixed(method: str, url: str, body: Any = None) -> Prepare:
    def prepare(w: World, ring: str | None) -> Req:
        return Req(method, url, json=body)

    return prepare


def _on_victim(method: str, suffix: str = "", body: Any = None) -> Prepare:
    def prepare(w: World, ring: str | None) -> Req:
        payload = body(w) if callable(body) else body
        return Req(method, f"/api/v2/kyok/principals/{w.victim()}{suffix}", json=payload)

    return prepare


def _delete_api_key(w: World, ring: str | None) -> Req:
    record, _ = w.auth.create_api_key(w.admin, w.victim(), "doomed")
    return Req("DELETE", f"/api/v2/kyok/apikeys/{record.id}")


def _delete_binding(w: World, ring: str | None) -> Req:
    binding = w.auth.grant(w.admin, w.victim(), "Reader", f"key:{uuid.uuid4()}")
    return Req("DELETE", f"/api/v2/kyok/roles/{binding.id}")


K = "/api/v2/keys/{id}"
B = "/api/v2/kyok/keys/{id}/actions"
POLICY = "application/vnd.ibm.kms.policy+json"
REG = K + "/registrations/{urlEncodedResourceCRN}"

ROWS: tuple[Row, ...] = (
    # ------------------------------------------------------------------ keys
    Row("GET", "/api/v2/keys", "kms.secrets.list", COLLECTION, 200, _list("GET")),
    Row("HEAD", "/api/v2/keys", "kms.secrets.list", COLLECTION, 200, _list("HEAD")),
    Row("POST", "/api/v2/keys", "kms.secrets.create", COLLECTION, 201, _create_key),
    Row("POST", "/api/v2/keys", "kms.secrets.create", COLLECTION, 201, _import_key, " (import)"),
    Row("POST", "/api/v2/keys_with_policy_overrides", "kms.secrets.create", COLLECTION, 201, _create_key_with_policies),
    Row("GET", K, "kms.secrets.read", KEY, 200, _on_key("GET", extractable=True)),
    Row("GET", K + "/metadata", "kms.secrets.readmetadata", KEY, 200, _on_key("GET", "/metadata")),
    Row("GET", K + "/versions", "kms.secrets.listkeyversions", KEY, 200, _on_key("GET", "/versions")),
    Row("PATCH", K, "kms.secrets.patch", KEY, 200, _patch),
    Row("DELETE", K, "kms.secrets.delete", KEY, 204, _on_key("DELETE")),
    Row("DELETE", K + "/purge", "kms.secrets.purge", KEY, 200, _on_key("DELETE", "/purge", state="deleted")),
    Row("POST", K + "/restore", "kms.secrets.restore", KEY, 201, _on_key("POST", "/restore", state="deleted")),
    # ------------------------------------------------------------------ actions
    Row("POST", K + "/actions/wrap", "kms.secrets.wrap", KEY, 200, _on_key("POST", "/actions/wrap", body=_dek)),
    Row("POST", K + "/actions/unwrap", "kms.secrets.unwrap", KEY, 200, _on_key("POST", "/actions/unwrap", body=_wrapped)),
    Row("POST", K + "/actions/rewrap", "kms.secrets.rewrap", KEY, 200, _on_key("POST", "/actions/rewrap", body=_wrapped)),
    Row("POST", B + "/batch-wrap", "kms.secrets.wrap", KEY, 200, _batch("wrap", _batch_deks)),
    Row("POST", B + "/batch-generate", "kms.secrets.wrap", KEY, 200, _batch("generate", lambda w, k: {"count": 3})),
    Row("POST", B + "/batch-unwrap", "kms.secrets.unwrap", KEY, 200, _batch("unwrap", _batch_wrapped)),
    Row("POST", B + "/batch-rewrap", "kms.secrets.rewrap", KEY, 200, _batch("rewrap", _batch_wrapped)),
    Row("POST", K + "/actions/rotate", "kms.secrets.rotate", KEY, 204, _on_key("POST", "/actions/rotate")),
    Row("POST", K + "/actions/disable", "kms.secrets.disable", KEY, 204, _on_key("POST", "/actions/disable")),
    Row("POST", K + "/actions/enable", "kms.secrets.enable", KEY, 204, _on_key("POST", "/actions/enable", state="disabled")),
    Row("POST", K + "/actions/setKeyForDeletion", "kms.secrets.setkeyfordeletion", KEY, 204,
        _on_key("POST", "/actions/setKeyForDeletion", dual_auth=True)),
    Row("POST", K + "/actions/unsetKeyForDeletion", "kms.secrets.unsetkeyfordeletion", KEY, 204,
        _on_key("POST", "/actions/unsetKeyForDeletion", dual_auth=True)),
    Row("POST", K + "/actions/sync", "kms.secrets.sync", KEY, 204, _on_key("POST", "/actions/sync")),
    # ------------------------------------------------------------------ legacy ?action=
    Row("POST", K, "kms.secrets.wrap", KEY, 200, _on_key("POST", query="?action=wrap", body=_dek), "?action=wrap"),
    Row("POST", K, "kms.secrets.unwrap", KEY, 200, _on_key("POST", query="?action=unwrap", body=_wrapped), "?action=unwrap"),
    Row("POST", K, "kms.secrets.rewrap", KEY, 200, _on_key("POST", query="?action=rewrap", body=_wrapped), "?action=rewrap"),
    Row("POST", K, "kms.secrets.rotate", KEY, 204, _on_key("POST", query="?action=rotate"), "?action=rotate"),
    Row("POST", K, "kms.secrets.disable", KEY, 204, _on_key("POST", query="?action=disable"), "?action=disable"),
    Row("POST", K, "kms.secrets.enable", KEY, 204, _on_key("POST", query="?action=enable", state="disabled"), "?action=enable"),
    Row("POST", K, "kms.secrets.restore", KEY, 201, _on_key("POST", query="?action=restore", state="deleted"), "?action=restore"),
    Row("POST", K, "kms.secrets.setkeyfordeletion", KEY, 204,
        _on_key("POST", query="?action=setKeyForDeletion", dual_auth=True), "?action=setKeyForDeletion"),
    Row("POST", K, "kms.secrets.unsetkeyfordeletion", KEY, 204,
        _on_key("POST", query="?action=unsetKeyForDeletion", dual_auth=True), "?action=unsetKeyForDeletion"),
    Row("POST", K, "kms.secrets.sync", KEY, 204, _on_key("POST", query="?action=sync"), "?action=sync"),
    # ------------------------------------------------------------------ import token
    Row("POST", "/api/v2/import_token", "kms.importtoken.create", INSTANCE, 200,
        _fixed("POST", "/api/v2/import_token", {"expiration": 300})),
    Row("GET", "/api/v2/import_token", "kms.importtoken.read", INSTANCE, 200, _get_import_token),
    # ------------------------------------------------------------------ policies
    Row("GET", K + "/policies", "kms.policies.read", KEY, 200, _on_key("GET", "/policies")),
    Row("PUT", K + "/policies", "kms.policies.write", KEY, 200, _on_key("PUT", "/policies", body=_key_policies)),
    Row("GET", "/api/v2/instance/policies", "kms.instancepolicies.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/instance/policies")),
    Row("PUT", "/api/v2/instance/policies", "kms.instancepolicies.write", INSTANCE, 204,
        _fixed("PUT", "/api/v2/instance/policies", _instance_policies())),
    Row("GET", "/api/v2/instance/allowed_ip_port", "kms.instancepolicies.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/instance/allowed_ip_port")),
    # ------------------------------------------------------------------ registrations
    Row("GET", "/api/v2/keys/registrations", "kms.registrations.list", INSTANCE, 200,
        _fixed("GET", "/api/v2/keys/registrations")),
    Row("GET", K + "/registrations", "kms.registrations.list", KEY, 200, _on_key("GET", "/registrations")),
    Row("POST", REG, "kms.registrations.write", KEY, 201, _registration("POST", existing=False)),
    Row("PUT", REG, "kms.registrations.write", KEY, 201, _registration("PUT", existing=False)),
    Row("PATCH", REG, "kms.registrations.write", KEY, 200,
        _registration("PATCH", existing=True, body={"description": "patched"})),
    Row("DELETE", REG, "kms.registrations.write", KEY, 204, _registration("DELETE", existing=True)),
    # ------------------------------------------------------------------ aliases
    Row("POST", K + "/aliases/{alias}", "kms.secrets.createalias", KEY, 201, _create_alias),
    Row("DELETE", K + "/aliases/{alias}", "kms.secrets.deletealias", KEY, 204, _delete_alias),
    # ------------------------------------------------------------------ key rings
    Row("GET", "/api/v2/key_rings", "kms.keyrings.list", INSTANCE, 200, _fixed("GET", "/api/v2/key_rings")),
    Row("POST", "/api/v2/key_rings/{key_ring_id}", "kms.keyrings.create", INSTANCE, 201, _new_ring),
    Row("DELETE", "/api/v2/key_rings/{key_ring_id}", "kms.keyrings.delete", INSTANCE, 204, _delete_ring),
    # ------------------------------------------------------------------ kyok access management
    Row("GET", "/api/v2/kyok/whoami", None, ADMIN, 200, _fixed("GET", "/api/v2/kyok/whoami")),
    Row("GET", "/api/v2/kyok/audit/events", "kyok.audit.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/kyok/audit/events")),
    Row("GET", "/api/v2/kyok/audit/checkpoints", "kyok.audit.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/kyok/audit/checkpoints")),
    Row("POST", "/api/v2/kyok/audit/checkpoints", "kyok.audit.read", INSTANCE, 200,
        _fixed("POST", "/api/v2/kyok/audit/checkpoints")),
    Row("GET", "/api/v2/kyok/audit/head", "kyok.audit.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/kyok/audit/head")),
    Row("GET", "/api/v2/kyok/audit/pubkey", "kyok.audit.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/kyok/audit/pubkey")),
    Row("GET", "/api/v2/kyok/audit/settings", "kyok.audit.read", INSTANCE, 200,
        _fixed("GET", "/api/v2/kyok/audit/settings")),
    Row("PUT", "/api/v2/kyok/audit/settings", "kms.instancepolicies.write", INSTANCE, 200,
        _fixed("PUT", "/api/v2/kyok/audit/settings", {"failOpen": False})),
    Row("GET", "/api/v2/kyok/principals", "kyok.principals.manage", ADMIN, 200, _fixed("GET", "/api/v2/kyok/principals")),
    Row("POST", "/api/v2/kyok/principals", "kyok.principals.manage", ADMIN, 201,
        lambda w, ring: Req("POST", "/api/v2/kyok/principals", json={"name": w.unique("mx-p"), "kind": "user"})),
    Row("GET", "/api/v2/kyok/principals/{principal_id}", "kyok.principals.manage", ADMIN, 200, _on_victim("GET")),
    Row("DELETE", "/api/v2/kyok/principals/{principal_id}", "kyok.principals.manage", ADMIN, 204, _on_victim("DELETE")),
    Row("GET", "/api/v2/kyok/principals/{principal_id}/apikeys", "kyok.principals.manage", ADMIN, 200, _on_victim("GET", "/apikeys")),
    Row("POST", "/api/v2/kyok/principals/{principal_id}/apikeys", "kyok.principals.manage", ADMIN, 201,
        _on_victim("POST", "/apikeys", {"name": "k"})),
    Row("DELETE", "/api/v2/kyok/apikeys/{apikey_id}", "kyok.principals.manage", ADMIN, 204, _delete_api_key),
    Row("GET", "/api/v2/kyok/principals/{principal_id}/roles", "kyok.principals.manage", ADMIN, 200, _on_victim("GET", "/roles")),
    Row("POST", "/api/v2/kyok/principals/{principal_id}/roles", "kyok.principals.manage", ADMIN, 201,
        _on_victim("POST", "/roles", {"role": "Manager", "scope": "instance"})),
    Row("DELETE", "/api/v2/kyok/roles/{binding_id}", "kyok.principals.manage", ADMIN, 204, _delete_binding),
    # ------------------------------------------------------------------ crypto unit (public)
    Row("GET", "/api/v2/kyok/unit", None, PUBLIC, 200, _fixed("GET", "/api/v2/kyok/unit")),
    Row("GET", "/api/v2/kyok/unit/transcript", None, PUBLIC, 200, _fixed("GET", "/api/v2/kyok/unit/transcript")),
    Row("POST", "/api/v2/kyok/unit/commands", None, PUBLIC, 400, _fixed("POST", "/api/v2/kyok/unit/commands", {})),
    Row("POST", "/api/v2/kyok/unit/admin-credentials", None, PUBLIC, 400,
        _fixed("POST", "/api/v2/kyok/unit/admin-credentials", {})),
    Row("POST", "/api/v2/kyok/unit/reencrypt", None, PUBLIC, 202, _fixed("POST", "/api/v2/kyok/unit/reencrypt")),
)  # fmt: skip

KEY_ROWS = [r for r in ROWS if r.kind == KEY]
SCOPED_ROWS = [r for r in ROWS if r.kind != PUBLIC]


def _served(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the application serves under ``/api/v2``."""
    try:  # FastAPI >= 0.13x keeps included routers lazily
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover (older FastAPI: plain routes)
        routes: Any = app.routes
    else:
        routes = iter_route_contexts(app.routes)
    served = set()
    for route in routes:
        # the template without converters ({crn:path} -> {crn}), as the document names it
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if path and path.startswith("/api/v2"):
            served |= {(m, path) for m in getattr(route, "methods", None) or ()}
    return served


def test_every_served_route_has_a_matrix_row(world: World) -> None:
    served = _served(world.app)
    rows = {(r.method, r.route) for r in ROWS}
    assert len(served) >= 30, sorted(served)  # the enumeration itself works
    assert served - rows == set(), "routes without a row in the role matrix"
    assert rows - served == set(), "matrix rows for routes the application does not serve"
    # the documented routes are all served, too
    documented = {
        (m.upper(), p)
        for p, ops in world.app.openapi()["paths"].items()
        if p.startswith("/api/v2")
        for m in ops
        if m in {"get", "post", "put", "patch", "delete", "head"}
    }
    assert documented <= served


def test_roles_py_grants_what_section_7_says() -> None:
    assert {p.value for p in Permission} == set(SECTION_7), "a permission without a §7 row"
    assert {r.value for r in Role} == set(ROLES)
    wrong = {
        p.value: sorted(r.value for r in Role if p in ROLE_PERMISSIONS[r])
        for p in Permission
        if {r.value for r in Role if p in ROLE_PERMISSIONS[r]} != SECTION_7[p.value]
    }
    assert wrong == {}, f"roles.py disagrees with reference §7: {wrong}"


# ============================================================================ instance scope


def _expected(row: Row, caller: str) -> int:
    if row.kind == PUBLIC:
        return row.ok
    if caller == ANONYMOUS:
        return 401
    return row.ok if caller in row.allowed else 403


def _check(problems: list[str], who: str, r: httpx.Response, expected: int) -> None:
    if r.status_code != expected:
        problems.append(f"{who}: {r.status_code}, expected {expected}: {r.text[:300]}")
    elif r.request.method == "HEAD":
        assert r.content == b""  # no body to check
    elif expected == 403 and reason_code(r) != "FORBIDDEN_ERR":
        problems.append(f"{who}: 403 without FORBIDDEN_ERR: {r.text[:300]}")
    elif expected == 401 and reason_code(r) != "UNAUTHORIZED_ERR":
        problems.append(f"{who}: 401 without UNAUTHORIZED_ERR: {r.text[:300]}")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
async def test_instance_roles(world: World, client: httpx.AsyncClient, row: Row) -> None:
    """Each role on the instance scope, one principal without a role, and no token."""
    problems: list[str] = []
    for caller in (*CALLERS, ANONYMOUS):
        req = row.prepare(world, None)
        response = await send(client, req, world.caller_headers(caller))
        _check(problems, caller, response, _expected(row, caller))
    assert problems == [], "\n".join(problems)


# ============================================================================ ring scope


@pytest.mark.parametrize("row", SCOPED_ROWS, ids=lambda r: r.id)
async def test_ring_scoped_roles(world: World, client: httpx.AsyncClient, row: Row) -> None:
    """A role on ``key_ring:ring-own`` acts on that ring's keys only; key rings and access
    management need the instance scope; listing and creating need ``X-Kms-Key-Ring: ring-own``."""
    problems: list[str] = []
    for role, token in world.ring_tokens.items():
        headers = world.headers(token)
        allowed = row.ok if role in row.allowed else 403
        if row.kind in (KEY, COLLECTION):
            own = await send(client, row.prepare(world, "ring-own"), headers)
            _check(problems, f"{role} on ring-own", own, allowed)
            other = await send(client, row.prepare(world, "ring-other"), headers)
            _check(problems, f"{role} on ring-other", other, 403)
        if row.kind == COLLECTION:
            unnamed = await send(client, row.prepare(world, None), headers)
            _check(problems, f"{role} without X-Kms-Key-Ring", unnamed, 403)
        if row.kind in (INSTANCE, ADMIN):
            response = await send(client, row.prepare(world, None), headers)
            _check(problems, role, response, row.ok if row.action is None else 403)
    assert problems == [], "\n".join(problems)


async def test_a_ring_scoped_list_shows_only_that_ring(
    world: World, client: httpx.AsyncClient
) -> None:
    mine = world.key("ring-own")
    theirs = world.key("ring-other")
    headers = {**world.headers(world.ring_tokens[READER]), "X-Kms-Key-Ring": "ring-own"}
    listed = await client.get("/api/v2/keys", headers=headers, params={"limit": 5000})
    assert listed.status_code == 200
    rings = {k["keyRingID"] for k in listed.json()["resources"]}
    ids = {k["id"] for k in listed.json()["resources"]}
    assert rings == {"ring-own"} and mine in ids and theirs not in ids
    counted = await client.head("/api/v2/keys", headers=headers)
    assert counted.status_code == 200 and int(counted.headers["Key-Total"]) == len(ids)
    # a ring-scoped ReaderPlus reads its ring's standard key material, not another ring's
    plus = world.headers(world.ring_tokens[READER_PLUS])
    std_own = world.key("ring-own", extractable=True)
    std_other = world.key("ring-other", extractable=True)
    r = await client.get(f"/api/v2/keys/{std_own}", headers=plus)
    assert r.status_code == 200 and "payload" in r.json()["resources"][0]
    r = await client.get(f"/api/v2/keys/{std_other}", headers=plus)
    assert r.status_code == 403 and "payload" not in r.text


async def test_moving_a_key_out_of_the_ring_needs_the_target_ring(
    world: World, client: httpx.AsyncClient
) -> None:
    key = world.key("ring-own")
    r = await client.patch(
        f"/api/v2/keys/{key}",
        headers={**world.headers(world.ring_tokens[MANAGER]), "X-Kms-Key-Ring": "ring-own"},
        json={"keyRingID": "ring-other"},
    )
    assert r.status_code == 403
    meta = world.node.service.get_key(world.instance, key)
    assert meta.record.key_ring_id == "ring-own"


# ============================================================================ key scope


@pytest.mark.parametrize("row", SCOPED_ROWS, ids=lambda r: r.id)
async def test_key_scoped_roles(world: World, client: httpx.AsyncClient, row: Row) -> None:
    """A role on ``key:<id>`` acts on that key only; nothing collection- or instance-wide."""
    problems: list[str] = []
    for role, (principal, token) in world.key_principals.items():
        headers = world.headers(token)
        if row.kind == KEY:
            req = row.prepare(world, None)
            assert req.key_id is not None
            world.auth.grant(world.admin, principal, role, f"key:{req.key_id}")
            # Moving a key also needs the permission on the target ring (else a key's
            # manager could put it where a ring's members would gain it): a key scope
            # covers no ring, so it never moves its key.
            moves = row.method == "PATCH" and row.route == K
            allowed = row.ok if role in row.allowed and not moves else 403
            _check(problems, f"{role} on its key", await send(client, req, headers), allowed)
            other = await send(client, row.prepare(world, None), headers)
            _check(problems, f"{role} on another key", other, 403)
        elif row.kind == COLLECTION:
            for ring in (None, "default"):
                response = await send(client, row.prepare(world, ring), headers)
                _check(problems, f"{role} (ring {ring})", response, 403)
        else:
            response = await send(client, row.prepare(world, None), headers)
            _check(problems, role, response, row.ok if row.action is None else 403)
    assert problems == [], "\n".join(problems)


# ============================================================================ tokens


def _segments(token: str) -> list[str]:
    return token.split(".")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_claims(token: str, **changes: Any) -> str:
    """The token with claims changed and its original signature."""
    header, payload, signature = _segments(token)
    claims = json.loads(_unb64(payload))
    claims.update(changes)
    return ".".join((header, _b64url(json.dumps(claims).encode()), signature))


def _hs256(token: str, secret: bytes) -> str:
    _, payload, _ = _segments(token)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(mac)}"


def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = text[index]
    replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return text[:index] + replacement + text[index + 1 :]


def _tampered(world: World) -> dict[str, str]:
    """Tokens an attacker could make from a Reader's genuine token."""
    token = world.tokens[READER]
    header, payload, signature = _segments(token)
    sig = bytearray(_unb64(signature))
    sig[7] ^= 0x01
    unit = world.node.units.for_instance(world.instance)
    public = unit.secret_public_key("access-token")
    pem = serialization.load_der_public_key(public.der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = serialization.load_der_public_key(public.der).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    none_header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "payload byte flipped": ".".join((header, _flip(payload, len(payload) // 2), signature)),
        "claim sub -> the Manager": _with_claims(token, sub=world.principal_ids[MANAGER]),
        "claim exp extended": _with_claims(token, exp=json.loads(_unb64(payload))["exp"] + 10**7),
        "signature byte flipped": ".".join((header, payload, _b64url(bytes(sig)))),
        "signature cut": ".".join((header, payload, signature[:-4])),
        "alg none, no signature": f"{none_header}.{payload}.",
        "alg none, old signature": f"{none_header}.{payload}.{signature}",
        "HS256 keyed with the PEM public key": _hs256(token, pem),
        "HS256 keyed with the raw public key": _hs256(token, raw),
        "header only": header,
        "not a JWT": "kyok_" + "A" * 43,
    }


@pytest.mark.parametrize(
    "variant",
    [
        "payload byte flipped",
        "claim sub -> the Manager",
        "claim exp extended",
        "signature byte flipped",
        "signature cut",
        "alg none, no signature",
        "alg none, old signature",
        "HS256 keyed with the PEM public key",
        "HS256 keyed with the raw public key",
        "header only",
        "not a JWT",
    ],
)
async def test_tampered_tokens_are_401(
    world: World, client: httpx.AsyncClient, variant: str
) -> None:
    key = world.key()
    genuine = world.headers(world.tokens[READER])
    forged = world.headers(_tampered(world)[variant])
    for method, url in (
        ("GET", "/api/v2/keys"),
        ("GET", f"/api/v2/keys/{key}/metadata"),
        ("DELETE", f"/api/v2/keys/{key}"),  # a Manager's action, if the sub swap had worked
        ("GET", "/api/v2/kyok/whoami"),
    ):
        r = await client.request(method, url, headers=forged)
        assert r.status_code == 401, (method, url, r.text)
        assert reason_code(r) == "UNAUTHORIZED_ERR"
    assert world.node.service.get_key(world.instance, key).state == 1  # not deleted
    assert (await client.get("/api/v2/keys", headers=genuine)).status_code == 200  # control


async def test_another_instances_token_is_401(world: World, client: httpx.AsyncClient) -> None:
    theirs = world.other_token
    key = world.key()
    for url in ("/api/v2/keys", f"/api/v2/keys/{key}/metadata", "/api/v2/kyok/whoami"):
        # the other instance's token, naming this instance
        r = await client.get(url, headers=world.headers(theirs, world.instance))
        assert r.status_code == 401 and reason_code(r) == "UNAUTHORIZED_ERR", url
        # this instance's token, naming the other instance
        r = await client.get(url, headers=world.headers(world.tokens[MANAGER], world.other))
        assert r.status_code == 401 and reason_code(r) == "UNAUTHORIZED_ERR", url
    # the other instance's token re-labelled for this one (claims changed, signature kept)
    relabelled = _with_claims(theirs, instance=world.instance, account=world.instance)
    r = await client.get("/api/v2/keys", headers=world.headers(relabelled, world.instance))
    assert r.status_code == 401
    # an instance that does not exist
    r = await client.get("/api/v2/keys", headers=world.headers(theirs, str(uuid.uuid4())))
    assert r.status_code == 401
    # and with its own instance named, the other token works there (control), but this
    # instance's key is not found there
    r = await client.get("/api/v2/keys", headers=world.headers(theirs, world.other))
    assert r.status_code == 200 and key not in r.text
    r = await client.get(f"/api/v2/keys/{key}/metadata", headers=world.headers(theirs, world.other))
    assert r.status_code == 404 and reason_code(r) == "KEY_NOT_FOUND_ERR"
    name = world.node.service.get_key(world.instance, key).record.name
    assert name not in r.text and world.instance not in r.text


async def test_an_expired_token_is_401(tmp_path: Path) -> None:
    clock = FakeClock()
    node = _open(tmp_path / "expiry", clock)
    try:
        auth = node.auth
        assert isinstance(auth, AuthService)
        instance = node.service.create_instance(SYSTEM, "expiry", seal="dev").id
        api_key = auth.bootstrap_admin(instance)
        transport = httpx.ASGITransport(app=create_app(node))
        async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as c:
            grant = await c.post(
                "/identity/token",
                data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": api_key},
            )
            assert grant.status_code == 200
            token = grant.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": instance}
            assert (await c.get("/api/v2/keys", headers=headers)).status_code == 200
            clock.advance(timedelta(seconds=grant.json()["expires_in"] - 1))
            assert (await c.get("/api/v2/keys", headers=headers)).status_code == 200
            clock.advance(timedelta(minutes=5))  # past exp and the clock-skew leeway
            for url in ("/api/v2/keys", "/api/v2/key_rings", "/api/v2/kyok/whoami"):
                r = await c.get(url, headers=headers)
                assert r.status_code == 401 and reason_code(r) == "UNAUTHORIZED_ERR", url
            r = await c.post("/api/v2/keys/x/actions/wrap", headers=headers)
            assert r.status_code == 401
    finally:
        node.close()


async def test_network_policies_cover_every_token_route(tmp_path: Path) -> None:
    """allowedIP and allowedNetwork apply to kyok's access management too (same ``Caller``),
    with the real auth service; the tokenless ceremony endpoints are not affected."""
    clock = FakeClock()
    node = _open(tmp_path / "network", clock)
    try:
        auth = node.auth
        assert isinstance(auth, AuthService)
        instance = node.service.create_instance(SYSTEM, "network", seal="dev").id
        token = _token(auth, auth.bootstrap_admin(instance))
        headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": instance}
        app = create_app(node)

        async def status(peer: str, url: str, with_token: bool = True) -> tuple[int, str | None]:
            transport = httpx.ASGITransport(app=app, client=(peer, 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://k") as c:
                sent = headers if with_token else {"Bluemix-Instance": instance}
                r = await c.get(url, headers=sent)
                return r.status_code, reason_code(r)

        allowed_ip = validate_instance_policy("allowedIP", True, {"allowed_ip": ["10.0.0.0/8"]})
        node.service.set_instance_policies(SYSTEM, instance, [allowed_ip])
        for url in ("/api/v2/kyok/whoami", "/api/v2/kyok/principals", "/api/v2/keys"):
            assert await status("127.0.0.1", url) == (401, "UNAUTHORIZED_ERR"), url
            assert (await status("10.0.0.9", url))[0] == 200, url
        assert (await status("127.0.0.1", "/api/v2/kyok/unit", with_token=False))[0] == 200
        private = validate_instance_policy(
            "allowedNetwork", True, {"allowed_network": "private-only"}
        )
        node.service.set_instance_policies(
            SYSTEM, instance, [validate_instance_policy("allowedIP", False, None), private]
        )
        assert await status("198.51.100.7", "/api/v2/kyok/whoami") == (
            403,
            "CONFIG_RULE_CONFLICT_ERR",
        )
        assert (await status("192.168.1.2", "/api/v2/kyok/whoami"))[0] == 200
    finally:
        node.close()


# ============================================================================ other instance's key


async def test_another_instances_key_is_404_and_tells_nothing(
    world: World, client: httpx.AsyncClient
) -> None:
    """With a good token for this instance, a key id (or alias) of the other instance is not
    found, on every key route, exactly like a key that never existed."""
    secret_name = "other-instance-secret-name"
    alias = "other-instance-alias"
    theirs = world.key(instance=world.other, name=secret_name, aliases=(alias,))
    their_ct = world.ciphertext(theirs, instance=world.other)
    view = world.node.service.get_key(world.other, theirs)
    leaks = (secret_name, alias, world.other, view.version_id, "crn:")
    never = str(uuid.uuid4())
    mine = world.key()

    def requests_for(key: str) -> list[tuple[str, str, Any]]:
        base = f"/api/v2/keys/{key}"
        body = {"ciphertext": their_ct}
        return [
            ("GET", base, None),
            ("GET", base + "/metadata", None),
            ("GET", base + "/versions", None),
            ("PATCH", base, {"keyRingID": "default"}),
            ("DELETE", base, None),
            ("DELETE", base + "/purge", None),
            ("POST", base + "/restore", None),
            ("POST", base + "/actions/wrap", {}),
            ("POST", base + "/actions/unwrap", body),
            ("POST", base + "/actions/rewrap", body),
            ("POST", base + "/actions/rotate", None),
            ("POST", base + "/actions/disable", None),
            ("POST", base + "/actions/enable", None),
            ("POST", base + "?action=unwrap", body),
            ("POST", base + "/aliases/new-alias-x", None),
            ("DELETE", base + f"/aliases/{alias}", None),
            ("GET", base + "/policies", None),
            ("PUT", base + "/policies", _key_policies(world, key)),
            ("POST", base + "/actions/setKeyForDeletion", None),
            ("POST", base + "/actions/unsetKeyForDeletion", None),
            ("POST", base + "/actions/sync", None),
            ("GET", base + "/registrations", None),
            ("POST", base + "/registrations/" + CRN.format("x"), None),
        ]

    callers = {
        "administrator": world.headers(world.tokens[MANAGER]),
        "key purger": world.headers(world.tokens[KEY_PURGE]),
        "ring-scoped manager": world.headers(world.ring_tokens[MANAGER]),
        "key-scoped manager": world.headers(world.key_principals[MANAGER][1]),
    }
    for who, headers in callers.items():
        for key in (theirs, alias):
            for (method, url, body), (_, never_url, _) in zip(
                requests_for(key), requests_for(never), strict=True
            ):
                r = await client.request(method, url, headers=headers, json=body)
                assert r.status_code == 404, (who, method, url, r.text)
                for secret in leaks:
                    assert secret not in r.text.replace(url, ""), (who, method, url, secret)
                ref = await client.request(method, never_url, headers=headers, json=body)
                assert ref.status_code == 404
                assert reason_code(r) == reason_code(ref) == "KEY_NOT_FOUND_ERR"
                assert (
                    r.json()["resources"][0]["errorMsg"] == ref.json()["resources"][0]["errorMsg"]
                )
    # nothing happened to it
    after = world.node.service.get_key(world.other, theirs)
    assert after.state == 1 and after.version_id == view.version_id
    # its ciphertext does not open under one of ours either
    r = await client.post(
        f"/api/v2/keys/{mine}/actions/unwrap",
        headers=callers["administrator"],
        json={"ciphertext": their_ct},
    )
    assert r.status_code in (400, 404, 422) and "plaintext" not in r.json()
    # listing and searching this instance never shows it
    r = await client.get(
        "/api/v2/keys",
        headers=callers["administrator"],
        params={"search": secret_name, "state": "0,1,2,3,5"},
    )
    assert r.status_code == 200 and r.json()["resources"] == []
