"""The OpenAPI document tells the truth: routes, bodies, vendor content types, headers, error
envelopes; and schemathesis, generating requests from it, finds no 5xx and no response that
breaks the document."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api.conftest import make_node

from kyok.api.app import create_app
from kyok.auth.principals import SYSTEM
from kyok.bootstrap import Node
from kyok.clock import FakeClock


@pytest.fixture(scope="module")
def served_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, dict[str, str]]]:
    node = make_node(Path(tmp_path_factory.mktemp("openapi")), FakeClock())
    instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
    headers = {
        "Authorization": f"Bearer {node.auth.bootstrap_admin(instance)}",
        "Bluemix-Instance": instance,
    }
    yield node, headers
    node.close()


@pytest.fixture(scope="module")
def document(served_node: tuple[Node, dict[str, str]]) -> dict[str, Any]:
    doc: dict[str, Any] = create_app(served_node[0]).openapi()
    return doc


def test_routes_and_nothing_unimplemented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths["/api/v2/keys"]) == {"get", "post", "head"}
    for path in ("/api/v2/keys/{id}", "/api/v2/keys/{id}/metadata", "/api/v2/keys/{id}/purge",
                 "/api/v2/keys/{id}/restore", "/api/v2/keys/{id}/versions",
                 "/api/v2/keys/{id}/actions/wrap", "/api/v2/keys/{id}/actions/unwrap",
                 "/api/v2/keys/{id}/actions/rewrap", "/api/v2/keys/{id}/actions/rotate",
                 "/api/v2/keys/{id}/actions/disable", "/api/v2/keys/{id}/actions/enable",
                 "/api/v2/key_rings", "/api/v2/key_rings/{key_ring_id}",
                 "/api/v2/keys/{id}/aliases/{alias}", "/api/v2/kyok/unit", "/api/v2/kyok/unit/commands",
                 "/api/v2/kyok/unit/transcript", "/api/v2/kyok/unit/reencrypt", "/health"):  # fmt: skip
        assert path in paths, path
    assert not any("import_token" in p or "policies" in p or "registrations" in p for p in paths)
    assert "/metrics" not in paths and "/docs" not in paths


def test_vendor_types_bodies_headers_and_errors_are_documented(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/v2/keys"]["post"]
    assert set(create["requestBody"]["content"]) == {
        "application/vnd.ibm.kms.key+json",
        "application/json",
    }
    assert list(create["responses"]["201"]["content"]) == ["application/vnd.ibm.kms.key+json"]
    wrap = document["paths"]["/api/v2/keys/{id}/actions/wrap"]["post"]
    assert list(wrap["responses"]["200"]["content"]) == ["application/vnd.ibm.kms.key_action+json"]
    assert wrap["requestBody"]["required"] is False
    params = {(p["in"], p["name"]) for p in create["parameters"]}
    assert {
        ("header", "Bluemix-Instance"),
        ("header", "X-Kms-Key-Ring"),
        ("header", "Prefer"),
        ("header", "Correlation-Id"),
    } <= params
    assert create["security"] == [{"bearerAuth": []}]
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorCollection"
    }
    schemas = document["components"]["schemas"]
    for name in (
        "KeyCollection",
        "KeyResource",
        "KeyCreateBody",
        "WrapResponse",
        "ErrorCollection",
        "UnitStatus",
    ):
        assert name in schemas
    assert document["paths"]["/api/v2/keys/{id}"]["post"]["deprecated"] is True  # legacy ?action=


@pytest.mark.anyio
async def test_served_document_matches(served_node: tuple[Node, dict[str, str]]) -> None:
    transport = httpx.ASGITransport(app=create_app(served_node[0]))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/openapi.json")
        assert r.status_code == 200 and r.json()["info"]["title"] == "kyok"
        assert (await client.get("/docs")).status_code == 404


def _fuzz_target() -> tuple[Any, dict[str, str]]:
    """A node made at import (schemathesis needs the schema to generate the tests), cleaned up
    at exit. (``schemathesis.pytest.from_fixture`` would avoid this, but fails on pytest 9.)"""
    tmp = Path(tempfile.mkdtemp(prefix="kyok-fuzz-"))
    node = make_node(tmp, FakeClock())
    atexit.register(shutil.rmtree, tmp, True)
    atexit.register(node.close)
    instance = node.service.create_instance(SYSTEM, "fuzz", seal="dev").id
    node.service.create_key(SYSTEM, instance, "fuzz-root", aliases=["fuzz-alias"])
    headers = {
        "Authorization": f"Bearer {node.auth.bootstrap_admin(instance)}",
        "Bluemix-Instance": instance,
    }
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(node)), headers


schema, _HEADERS = _fuzz_target()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_responses_match_the_document(case: schemathesis.Case) -> None:
    headers = dict(_HEADERS)
    if case.path.startswith("/api/v2/kyok/unit"):
        headers.pop("Authorization")
    case.headers = {**(case.headers or {}), **headers}
    response = case.call()
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
