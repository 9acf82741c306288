"""Fixtures for the HTTP API: a node on SQLite (PostgreSQL where asked) with a FakeClock, an
app over it, and httpx clients through ``httpx.ASGITransport``.

Authentication is a test double with the auth service's signature (:class:`FakeAuth`): a test
mints a bearer token for any grants it needs (``api.token(...)``), so authorisation rules are
tested without the token machinery. ``tests/server`` uses the real auth service.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyok.api.app import create_app
from kyok.auth.context import AuthContext, Grant, Scope, ScopeKind
from kyok.auth.principals import SYSTEM, Principal, PrincipalKind
from kyok.auth.roles import Role
from kyok.bootstrap import Node, open_node
from kyok.clock import FakeClock
from kyok.errors import Conflict, Unauthenticated
from kyok.settings import Settings

KEY_TYPE = "application/vnd.ibm.kms.key+json"
ACTION_TYPE = "application/vnd.ibm.kms.key_action+json"


class FakeAuth:
    """The auth service's ``authenticate``/``bootstrap_admin``, over tokens a test mints."""

    def __init__(self) -> None:
        self.contexts: dict[str, AuthContext] = {}

    def mint(
        self,
        instance_id: str,
        grants: tuple[Grant, ...],
        principal: str,
        kind: PrincipalKind = PrincipalKind.USER,
    ) -> str:
        token = "t-" + secrets.token_hex(12)
        who = Principal(principal, kind, instance_id)
        self.contexts[token] = AuthContext(who, instance_id, grants)
        return token

    def authenticate(self, authorization: str | None, bluemix_instance: str | None) -> AuthContext:
        scheme, _, token = (authorization or "").partition(" ")
        ctx = self.contexts.get(token.strip()) if scheme.lower() == "bearer" else None
        if ctx is None or ctx.instance_id != bluemix_instance:
            raise Unauthenticated("Unauthorized: the access token is not valid")
        return ctx

    def bootstrap_admin(self, instance_id: str, *, api_key: str | None = None) -> str:
        return self.mint(instance_id, tuple(Grant(r) for r in ADMIN), "admin")

    def authorized_admin(self, instance_id: str, authorization_seq: int) -> tuple[str, bytes]:
        # Test units never hold an authorization: answer as the real service does for none.
        raise Conflict(
            "no unused administrator authorization", code="ADMIN_AUTHORIZATION_NOT_FOUND_ERR"
        )


ADMIN = (Role.MANAGER, Role.KEY_PURGE, Role.INSTANCE_ADMIN)


def scoped(role: Role, scope: str) -> Grant:
    """``Grant(role, Scope.parse(scope))`` (``instance``, ``key_ring:<id>``, ``key:<id>``)."""
    return Grant(role, Scope.parse(scope))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_body(name: str = "root-1", **fields: Any) -> dict[str, Any]:
    """A create-key collection with one resource."""
    resource = {"type": KEY_TYPE, "name": name, "extractable": False, **fields}
    return {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1}, "resources": [resource]}


@dataclass
class Api:
    """An httpx client on the app, logged in as an administrator of ``instance``."""

    client: httpx.AsyncClient
    node: Node
    auth: FakeAuth
    instance: str
    clock: FakeClock
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def mint(
        self,
        *grants: Grant,
        principal: str = "bob",
        instance: str | None = None,
        kind: PrincipalKind = PrincipalKind.USER,
    ) -> dict[str, str]:
        """Headers of a caller with ``grants`` (instance-wide roles: ``Grant(Role.X)``); a
        user unless ``kind`` says otherwise (registrations need a service)."""
        inst = instance or self.instance
        return {
            "Authorization": f"Bearer {self.auth.mint(inst, grants, principal, kind)}",
            "Bluemix-Instance": inst,
        }

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, path, headers={**self.headers, **(headers or {})}, **kw
        )

    async def create_key(
        self, name: str = "root-1", *, headers: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        r = await self.request(
            "POST", "/api/v2/keys", json=key_body(name, **fields), headers=headers
        )
        assert r.status_code == 201, r.text
        resource: dict[str, Any] = r.json()["resources"][0]
        return resource

    async def wrap(self, key: str, body: Any = None) -> httpx.Response:
        return await self.request("POST", f"/api/v2/keys/{key}/actions/wrap", json=body)


def make_node(
    tmp_path: Path,
    clock: FakeClock,
    database_url: str | None = None,
    timers: dict[str, str] | None = None,
    **server: Any,
) -> Node:
    """A node over FakeAuth; import tokens use RSA-2048 (quicker to make) unless ``server``
    says otherwise; ``timers`` by name (``{"sync_interval": "0s"}``)."""
    data = tmp_path / "data"
    settings = Settings.load(
        overrides={
            "data_dir": data,
            "database_url": database_url,
            "server.import_token_rsa_bits": 2048,
            **{f"server.{k}": v for k, v in server.items()},
            **{f"timers.{k}": v for k, v in (timers or {}).items()},
        }
    )
    return open_node(settings, clock=clock, auth=FakeAuth())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def node(tmp_path: Path, clock: FakeClock) -> Iterator[Node]:
    n = make_node(tmp_path, clock)
    yield n
    n.close()


@pytest.fixture
def instance(node: Node) -> str:
    return node.service.create_instance(SYSTEM, "test", seal="dev").id


@pytest.fixture
async def api(node: Node, instance: str, clock: FakeClock) -> AsyncIterator[Api]:
    app = create_app(node)
    auth = node.auth
    assert isinstance(auth, FakeAuth)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as client:
        a = Api(client, node, auth, instance, clock)
        a.headers = a.mint(*(Grant(r) for r in ADMIN), principal="admin")
        yield a


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The single reason of an error envelope (and checks the envelope's shape)."""
    body = response.json()
    assert body["metadata"] == {
        "collectionType": "application/vnd.ibm.kms.error+json",
        "collectionTotal": 1,
    }
    (resource,) = body["resources"]
    (reason,) = resource["reasons"]
    assert reason["status"] == response.status_code
    assert resource["errorMsg"].endswith(
        f"Please see `reasons` for more details ({reason['code']})"
    )
    return {"errorMsg": resource["errorMsg"], **reason}


__all__ = [
    "ACTION_TYPE",
    "ADMIN",
    "KEY_TYPE",
    "Api",
    "FakeAuth",
    "ScopeKind",
    "b64",
    "error_of",
    "key_body",
    "make_node",
    "scoped",
]
