"""kyok's own access-management endpoints under ``/api/v2/kyok`` (docs/api-kyok.md): who am I,
principals, their API keys and their role bindings.

Thin: parse, make one :class:`~kyok.auth.AuthService` call, render. The caller comes from the
``authenticate`` dependency the application passes in (``Authorization`` +
``Bluemix-Instance``); failures are :class:`~kyok.errors.KyokError`\\ s, rendered by the
application's handler as Key Protect's error envelope. Everything is scoped to the caller's
instance: another instance's principal, key or binding is "not found".

Shapes (camelCase, RFC 3339 UTC times)::

    P = {"id", "name", "kind", "createdAt", "createdBy"}
    K = {"id", "name", "principalId", "createdAt", "createdBy"}
    B = {"id", "principalId", "role", "scope", "createdAt", "createdBy"}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from kyok.api.admin._body import JsonObject, json_object
from kyok.api.responses import error_responses
from kyok.auth import (
    ApiKeyRecord,
    AuthContext,
    AuthService,
    PrincipalRecord,
    RoleBindingRecord,
)

__all__ = ["PREFIX", "build_admin_router", "render_api_key", "render_binding", "render_principal"]

PREFIX = "/api/v2/kyok"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_principal(record: PrincipalRecord) -> dict[str, Any]:
    """``P``."""
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "createdAt": _time(record.created_at),
        "createdBy": record.created_by,
    }


def render_api_key(record: ApiKeyRecord) -> dict[str, Any]:
    """``K`` (never the key itself)."""
    return {
        "id": record.id,
        "name": record.name,
        "principalId": record.principal_id,
        "createdAt": _time(record.created_at),
        "createdBy": record.created_by,
    }


def render_binding(record: RoleBindingRecord) -> dict[str, Any]:
    """``B``."""
    return {
        "id": record.id,
        "principalId": record.principal_id,
        "role": record.role,
        "scope": record.scope,
        "createdAt": _time(record.created_at),
        "createdBy": record.created_by,
    }


def _body_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_NAME = {"type": "string", "minLength": 2, "maxLength": 64}
_PRINCIPAL_BODY = _body_schema(
    {"name": _NAME, "kind": {"type": "string", "enum": ["user", "service"]}}, ["name", "kind"]
)
_API_KEY_BODY = _body_schema(
    {"name": {"type": "string", "minLength": 1, "maxLength": 64}}, ["name"]
)
_ROLE_BODY = _body_schema(
    {
        "role": {
            "type": "string",
            "enum": ["Reader", "ReaderPlus", "Writer", "Manager", "KeyPurge", "KyokInstanceAdmin"],
        },
        "scope": {"type": "string", "description": "instance, key_ring:<id> or key:<id>"},
    },
    ["role", "scope"],
)
_NO_STORE = {"Cache-Control": "no-store"}


def build_admin_router(auth: AuthService, authenticate: Callable[..., AuthContext]) -> APIRouter:
    """The ``/api/v2/kyok`` access-management routes.

    Args:
        auth: the authentication service.
        authenticate: a FastAPI dependency (sync or async callable, with its own parameters,
            e.g. ``kyok.api.deps.caller``) that returns the request's :class:`AuthContext` or
            raises a ``KyokError`` (401 / 400 / 503).

    Returns:
        The router (paths already carry the ``/api/v2/kyok`` prefix).
    """
    router = APIRouter(prefix=PREFIX, tags=["kyok access"])
    # Defaults rather than Annotated aliases: annotations are strings here (PEP 563), and
    # FastAPI resolves them in the module's globals, where a local alias does not exist.
    caller = Depends(authenticate)
    body_of = Depends(json_object)

    @router.get(
        "/whoami",
        summary="The caller: principal, instance and role bindings",
        responses=error_responses(404),
    )
    def whoami(ctx: AuthContext = caller) -> JSONResponse:
        identity = auth.whoami(ctx)
        return JSONResponse(
            {
                "principal": render_principal(identity.principal),
                "instanceId": ctx.instance_id,
                "roles": [render_binding(b) for b in identity.bindings],
            }
        )

    @router.get(
        "/principals", summary="List the instance's principals", responses=error_responses()
    )
    def list_principals(ctx: AuthContext = caller) -> JSONResponse:
        return JSONResponse(
            {"principals": [render_principal(p) for p in auth.list_principals(ctx)]}
        )

    @router.post(
        "/principals",
        status_code=201,
        summary="Create a principal (a user or a service ID)",
        openapi_extra=_PRINCIPAL_BODY,
        responses=error_responses(409, 413),
    )
    def create_principal(ctx: AuthContext = caller, body: JsonObject = body_of) -> JSONResponse:
        record = auth.create_principal(ctx, body.require("name"), body.require("kind"))
        return JSONResponse(render_principal(record), status_code=201)

    @router.get(
        "/principals/{principal_id}", summary="Get a principal", responses=error_responses(404)
    )
    def get_principal(principal_id: str, ctx: AuthContext = caller) -> JSONResponse:
        return JSONResponse(render_principal(auth.get_principal(ctx, principal_id)))

    @router.delete(
        "/principals/{principal_id}",
        status_code=204,
        summary="Delete a principal with its API keys, refresh tokens and role bindings",
        responses=error_responses(404, 409),
    )
    def delete_principal(principal_id: str, ctx: AuthContext = caller) -> Response:
        auth.delete_principal(ctx, principal_id)
        return Response(status_code=204)

    @router.get(
        "/principals/{principal_id}/apikeys",
        summary="List a principal's API keys",
        responses=error_responses(404),
    )
    def list_api_keys(principal_id: str, ctx: AuthContext = caller) -> JSONResponse:
        keys = auth.list_api_keys(ctx, principal_id)
        return JSONResponse({"apikeys": [render_api_key(k) for k in keys]})

    @router.post(
        "/principals/{principal_id}/apikeys",
        status_code=201,
        summary="Create an API key (the key is in this response only)",
        openapi_extra=_API_KEY_BODY,
        responses=error_responses(404, 413),
    )
    def create_api_key(
        principal_id: str, ctx: AuthContext = caller, body: JsonObject = body_of
    ) -> JSONResponse:
        record, secret = auth.create_api_key(ctx, principal_id, body.require("name"))
        rendered = render_api_key(record)
        rendered["apikey"] = secret.reveal()
        return JSONResponse(rendered, status_code=201, headers=_NO_STORE)

    @router.delete(
        "/apikeys/{apikey_id}",
        status_code=204,
        summary="Delete an API key",
        responses=error_responses(404),
    )
    def delete_api_key(apikey_id: str, ctx: AuthContext = caller) -> Response:
        auth.delete_api_key(ctx, apikey_id)
        return Response(status_code=204)

    @router.get(
        "/principals/{principal_id}/roles",
        summary="List a principal's role bindings",
        responses=error_responses(404),
    )
    def list_roles(principal_id: str, ctx: AuthContext = caller) -> JSONResponse:
        bindings = auth.list_grants(ctx, principal_id)
        return JSONResponse({"roles": [render_binding(b) for b in bindings]})

    @router.post(
        "/principals/{principal_id}/roles",
        status_code=201,
        summary="Grant a role on a scope (instance, key_ring:<id> or key:<id>)",
        openapi_extra=_ROLE_BODY,
        responses=error_responses(404, 409, 413),
    )
    def grant_role(
        principal_id: str, ctx: AuthContext = caller, body: JsonObject = body_of
    ) -> JSONResponse:
        record = auth.grant(ctx, principal_id, body.require("role"), body.require("scope"))
        return JSONResponse(render_binding(record), status_code=201)

    @router.delete(
        "/roles/{binding_id}",
        status_code=204,
        summary="Revoke a role binding (never the instance's last KyokInstanceAdmin)",
        responses=error_responses(404, 409),
    )
    def revoke_role(binding_id: str, ctx: AuthContext = caller) -> Response:
        auth.revoke(ctx, binding_id)
        return Response(status_code=204)

    return router
