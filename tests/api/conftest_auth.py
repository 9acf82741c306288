"""Fixtures for the auth endpoints (``/identity/token``, ``/oidc/token``, ``/api/v2/kyok``):
the real auth service (dev-sealed units) on the memory store and SQLite, mounted in a small
FastAPI app of its own (the real app factory is ``kyok.api.app``) with a minimal Key Protect
error handler, driven through ``httpx.ASGITransport``.

Import what a module needs from here; ``tests/api/conftest.py`` (the KP routes') is separate.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from auth_kit import STORES, AuthHarness, make_store
from kyok.api.admin import build_admin_router
from kyok.api.iam import build_iam_router
from kyok.auth import AuthContext, AuthService
from kyok.clock import FakeClock, SystemClock
from kyok.errors import KyokError

APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
TOKEN_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in", "expiration", "scope"}

__all__ = [
    "APIKEY_GRANT",
    "FORM",
    "TOKEN_FIELDS",
    "AuthApi",
    "auth_api",
    "build_test_app",
    "kp_error",
    "live_server",
]


def build_test_app(auth: AuthService) -> FastAPI:
    """The two routers over ``auth``, a header-reading caller dependency, and a KyokError
    handler that renders Key Protect's envelope (a stand-in for ``kyok.api.errors``)."""
    app = FastAPI()

    def caller(
        authorization: Annotated[str | None, Header()] = None,
        bluemix_instance: Annotated[str | None, Header(alias="Bluemix-Instance")] = None,
    ) -> AuthContext:
        return auth.authenticate(authorization, bluemix_instance)

    app.include_router(build_iam_router(auth))
    app.include_router(build_admin_router(auth, caller))

    @app.exception_handler(KyokError)
    async def on_kyok_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KyokError)
        reason = {
            "code": exc.code,
            "message": exc.message,
            "status": exc.status,
            "moreInfo": "https://cloud.ibm.com/apidocs/key-protect",
        }
        body = {
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.error+json",
                "collectionTotal": 1,
            },
            "resources": [{"errorMsg": f"{exc.message} ({exc.code})", "reasons": [reason]}],
        }
        return JSONResponse(body, status_code=exc.status)

    return app


def kp_error(response: httpx.Response) -> dict[str, Any]:
    """The one reason of a Key Protect error envelope."""
    body = response.json()
    assert body["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json"
    (resource,) = body["resources"]
    (reason,) = resource["reasons"]
    assert reason["status"] == response.status_code
    return dict(reason)


@dataclass
class AuthApi:
    """An httpx client on the test app, with an instance and its administrator's key."""

    client: httpx.AsyncClient
    harness: AuthHarness
    instance: str
    admin_key: str

    @property
    def clock(self) -> FakeClock:
        clock = self.harness.clock
        assert isinstance(clock, FakeClock)
        return clock

    async def token(self, api_key: str, path: str = "/identity/token") -> dict[str, Any]:
        r = await self.client.post(path, data={"grant_type": APIKEY_GRANT, "apikey": api_key})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def headers(self, api_key: str | None = None) -> dict[str, str]:
        """Authorization and Bluemix-Instance for ``api_key`` (the administrator's by default)."""
        token = await self.token(api_key or self.admin_key)
        return {
            "Authorization": f"Bearer {token['access_token']}",
            "Bluemix-Instance": self.instance,
        }


@pytest.fixture(params=STORES)
async def auth_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthApi]:
    clock = FakeClock()
    harness = AuthHarness(make_store(request.param, tmp_path, clock), tmp_path / "data", clock)
    instance = harness.new_instance()
    admin_key = harness.admin_key(instance)
    transport = httpx.ASGITransport(app=build_test_app(harness.auth))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://kyok.test") as client:
            yield AuthApi(client, harness, instance, admin_key)
    finally:
        harness.close()


@dataclass
class LiveServer:
    url: str
    harness: AuthHarness
    instance: str
    admin_key: str


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The test app under a real uvicorn on 127.0.0.1 (ephemeral port), wall-clock time, in a
    thread: for clients that use ``requests`` rather than httpx."""
    clock: Any = SystemClock()
    harness = AuthHarness(make_store("sqlite", tmp_path, clock), tmp_path / "data", clock)
    instance = harness.new_instance()
    admin_key = harness.admin_key(instance)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_test_app(harness.auth), log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", harness, instance, admin_key)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        harness.close()
