"""Registrations (reference §2.8): which resources a root key protects.

Everybody with ``kms.registrations.list`` reads them (``GET /keys/{id}/registrations``,
``GET /keys/registrations``). Writing them is service-to-service: the routes need
``kms.registrations.write`` (Writer) *and* a service principal (403 ``SERVICE_ONLY_ERR`` for
users, from the key service):

* ``POST /keys/{id}/registrations/{urlEncodedResourceCRN}``: create (201; 409 if it exists);
* ``PUT`` the same: create (201) or replace every field (200);
* ``PATCH`` the same: change the fields given (200);
* ``DELETE`` the same: 204.

The CRN is one path segment, URL-encoded (``/`` as ``%2F``); it is decoded once more if it
still contains ``%`` escapes (clients that encode it themselves before their HTTP library
does). Bodies, all fields optional: a ``registration_input+json`` collection of one resource,
or that resource alone: ``{preventKeyDeletion, description, registrationMetadata,
keyVersionId}``. ``X-Kms-Key-Ring`` is ignored on these routes.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.deps import Caller, Node, RawBody
from kyok.api.kp import models
from kyok.api.kp._common import JSON, KeyId, Media, authorize_key, errors, json_response
from kyok.api.kp.body import (
    Fields,
    collection_resources,
    parse_bool_param,
    parse_int_param,
    parse_json,
)
from kyok.api.kp.render import REGISTRATION_TYPE, collection, registration_resource
from kyok.api.operations import Target, operation
from kyok.api.responses import no_content
from kyok.auth.context import AuthContext
from kyok.auth.roles import Permission
from kyok.kms.errors import BadBody, RegistrationExists
from kyok.kms.registrations import UNSET, RegistrationView

__all__ = ["register"]

REGISTRATION_INPUT_TYPE = "application/vnd.ibm.kms.registration_input+json"

_WRITE_TARGETS: dict[str, Target] = {"description": ("field", "description")}
_LIST_TARGETS: dict[str, Target] = {"preventKeyDeletion": ("parameter", "preventKeyDeletion")}

CrnPath = Annotated[
    str,
    Path(description="The resource's CRN, URL-encoded (`crn:v1:...`, `/` as `%2F`)"),
]
_Limit = Annotated[str | None, Query(description="page size, 1-5000 (default 200)")]
_Offset = Annotated[str | None, Query(description="0-based start")]
_CrnQuery = Annotated[
    str | None,
    Query(description="only CRNs matching this URL-encoded CRN, where `*` matches anything"),
]
_Prevent = Annotated[
    str | None, Query(description="true/false: only registrations with/without a hold")
]
_TotalCount = Annotated[str | None, Query(description="true: add metadata.totalCount")]


def _crn(value: str) -> str:
    """The CRN of a path segment or query, decoded once more when still %-encoded."""
    return unquote(value) if "%" in value else value


def _list(
    ctx: AuthContext,
    node: Node,
    key: str | None,
    limit: str | None,
    offset: str | None,
    crn_query: str | None,
    prevent: str | None,
    total_count: str | None,
) -> Response:
    page_limit = parse_int_param(limit, "limit", 200)
    page_offset = parse_int_param(offset, "offset", 0)
    with_total = parse_bool_param(total_count, "totalCount")
    held = None if not prevent else parse_bool_param(prevent, "preventKeyDeletion")
    pattern = None if not crn_query else _crn(crn_query)
    if key is None:
        ctx.require(Permission.REGISTRATIONS_LIST)
    else:
        authorize_key(ctx, node.service, Permission.REGISTRATIONS_LIST, key)
    views, total = node.service.list_registrations(
        ctx.instance_id,
        key,
        crn_pattern=pattern,
        prevent_key_deletion=held,
        limit=page_limit,
        offset=page_offset,
    )
    body = collection(
        REGISTRATION_TYPE,
        [registration_resource(v) for v in views],
        total=total if with_total else None,
    )
    return json_response(body)


@operation("Registrations could not be retrieved", "list_registrations", _LIST_TARGETS)
def list_key_registrations(
    ctx: Caller,
    node: Node,
    id: KeyId,
    limit: _Limit = None,
    offset: _Offset = None,
    urlEncodedResourceCRNQuery: _CrnQuery = None,
    preventKeyDeletion: _Prevent = None,
    totalCount: _TotalCount = None,
) -> Response:
    """The resources registered with a key."""
    return _list(
        ctx, node, id, limit, offset, urlEncodedResourceCRNQuery, preventKeyDeletion, totalCount
    )


@operation("Registrations could not be retrieved", "list_registrations", _LIST_TARGETS)
def list_all_registrations(
    ctx: Caller,
    node: Node,
    limit: _Limit = None,
    offset: _Offset = None,
    urlEncodedResourceCRNQuery: _CrnQuery = None,
    preventKeyDeletion: _Prevent = None,
    totalCount: _TotalCount = None,
) -> Response:
    """The resources registered with any key of the instance (needs the permission on the
    whole instance)."""
    return _list(
        ctx, node, None, limit, offset, urlEncodedResourceCRNQuery, preventKeyDeletion, totalCount
    )


def _input(raw: bytes) -> Fields:
    """The registration fields of a write: one resource of a collection, or the bare object."""
    body = parse_json(raw)
    fields = Fields(body)
    if "resources" in fields or "metadata" in fields:
        resources = collection_resources(body, REGISTRATION_INPUT_TYPE)
        if len(resources) != 1:
            raise BadBody("Only one registration per request is supported")
        return resources[0]
    return fields


def _one(view: RegistrationView, status: int) -> Response:
    return json_response(collection(REGISTRATION_TYPE, [registration_resource(view)]), status)


def _create(
    ctx: AuthContext, node: Node, id: str, crn: str, fields: Fields, *, replace: bool
) -> RegistrationView:
    return node.service.create_registration(
        ctx.principal,
        ctx.instance_id,
        id,
        crn,
        description=fields.value("description"),
        registration_metadata=fields.value("registrationMetadata"),
        prevent_key_deletion=fields.boolean("preventKeyDeletion", False),
        key_version_id=fields.text("keyVersionId"),
        replace_existing=replace,
    )


@operation("Registration could not be created", "create_registration", _WRITE_TARGETS)
def create_registration(
    ctx: Caller, node: Node, id: KeyId, urlEncodedResourceCRN: CrnPath, raw: RawBody
) -> Response:
    """Register a resource with a root key (service principals); 201. 409
    `REGISTRATION_EXISTS_ERR` if it is registered already (PUT replaces)."""
    fields = _input(raw)
    crn = _crn(urlEncodedResourceCRN)
    authorize_key(ctx, node.service, Permission.REGISTRATIONS_WRITE, id)
    return _one(_create(ctx, node, id, crn, fields, replace=False), 201)


@operation("Registration could not be replaced", "replace_registration", _WRITE_TARGETS)
def replace_registration(
    ctx: Caller, node: Node, id: KeyId, urlEncodedResourceCRN: CrnPath, raw: RawBody
) -> Response:
    """Create a registration (201) or replace all its fields (200); service principals."""
    fields = _input(raw)
    crn = _crn(urlEncodedResourceCRN)
    authorize_key(ctx, node.service, Permission.REGISTRATIONS_WRITE, id)
    try:
        return _one(_create(ctx, node, id, crn, fields, replace=False), 201)
    except RegistrationExists:
        return _one(_create(ctx, node, id, crn, fields, replace=True), 200)


def _given(fields: Fields, name: str) -> Any:
    """The field's value (None clears it), or UNSET when the body does not name it."""
    return fields.value(name) if name in fields else UNSET


@operation("Registration could not be updated", "update_registration", _WRITE_TARGETS)
def update_registration(
    ctx: Caller, node: Node, id: KeyId, urlEncodedResourceCRN: CrnPath, raw: RawBody
) -> Response:
    """Change the fields the body names (`null` clears `description` and
    `registrationMetadata`); service principals; 200."""
    fields = _input(raw)
    crn = _crn(urlEncodedResourceCRN)
    prevent = fields.value("preventKeyDeletion")
    version = fields.text("keyVersionId")
    authorize_key(ctx, node.service, Permission.REGISTRATIONS_WRITE, id)
    view = node.service.update_registration(
        ctx.principal,
        ctx.instance_id,
        id,
        crn,
        description=_given(fields, "description"),
        registration_metadata=_given(fields, "registrationMetadata"),
        prevent_key_deletion=prevent,
        key_version_id=version,
    )
    return _one(view, 200)


@operation("Registration could not be deleted", "delete_registration", _WRITE_TARGETS)
def delete_registration(
    ctx: Caller, node: Node, id: KeyId, urlEncodedResourceCRN: CrnPath
) -> Response:
    """Remove a registration (service principals; in any key state); 204."""
    crn = _crn(urlEncodedResourceCRN)
    authorize_key(ctx, node.service, Permission.REGISTRATIONS_WRITE, id)
    node.service.delete_registration(ctx.principal, ctx.instance_id, id, crn)
    return no_content()


def register(router: APIRouter, media: Media) -> None:
    """Add the registration routes to ``router`` (before the key routes: ``/keys/registrations``
    would otherwise be read as a key id).

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types (unused: plain JSON).
    """
    listed = openapi.response(models.RegistrationCollection, "A page of registrations")
    one = openapi.response(models.RegistrationCollection, "The registration")
    body = openapi.request_body(
        models.RegistrationInputBody,
        [REGISTRATION_INPUT_TYPE, JSON],
        required=False,
        description="Optional; one resource in a collection, or the resource alone",
    )
    router.add_api_route(
        "/keys/registrations",
        list_all_registrations,
        methods=["GET"],
        responses={200: listed, **errors()},
        operation_id="get_registrations_all_keys",
    )
    router.add_api_route(
        "/keys/{id}/registrations",
        list_key_registrations,
        methods=["GET"],
        responses={200: listed, **errors(404)},
        operation_id="get_registrations",
    )
    path = "/keys/{id}/registrations/{urlEncodedResourceCRN:path}"
    router.add_api_route(
        path,
        create_registration,
        methods=["POST"],
        status_code=201,
        responses={201: one, **errors(404, 409, 422)},
        openapi_extra=body,
        operation_id="create_registration",
    )
    router.add_api_route(
        path,
        replace_registration,
        methods=["PUT"],
        responses={
            200: one,
            201: openapi.response(models.RegistrationCollection, "The new registration"),
            **errors(404, 409, 422),
        },
        openapi_extra=body,
        operation_id="replace_registration",
    )
    router.add_api_route(
        path,
        update_registration,
        methods=["PATCH"],
        responses={200: one, **errors(404, 409, 422)},
        openapi_extra=body,
        operation_id="update_registration",
    )
    router.add_api_route(
        path,
        delete_registration,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}, **errors(404, 409)},
        operation_id="delete_registration",
    )
