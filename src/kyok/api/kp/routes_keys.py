"""Keys (reference §2.1, §5): create (generated, imported in plain or with the import token,
with policy overrides), list, count, get, metadata, move, delete, purge, restore, versions.

Each route parses, checks the caller's permission (reading the key first only when the caller's
grants are scoped to rings or keys), makes one ``KeyService`` call and renders the result.

The two create routes are documented from their endpoints like every route, but served by
:class:`CreateKeyRoute`: an async handler that does what their dependencies do, in the same
order, and awaits the key service's group commit (:meth:`KeyService.create_key_async`), so a
creation costs no worker thread of its own and no dependency resolution (bench/keys_create.sh).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.routing import APIRoute

from kyok.api import openapi
from kyok.api.audit import note_caller
from kyok.api.deps import Caller, Node, RawBody, check_network, read_body
from kyok.api.kp import models
from kyok.api.kp._common import (
    JSON,
    KeyId,
    KeyRingHeader,
    Media,
    MediaTypes,
    PreferHeader,
    authorize_key,
    errors,
    json_response,
    no_content,
)
from kyok.api.kp.body import (
    Fields,
    collection_resources,
    decode_b64,
    key_policy_spec,
    parse_bool_param,
    parse_int_param,
    parse_json,
    parse_prefer,
    parse_time,
    wrapped_import,
)
from kyok.api.kp.render import (
    KEY_TYPE,
    KEY_VERSION_TYPE,
    collection,
    key_resource,
    version_resource,
)
from kyok.api.operations import Target, operation
from kyok.api.ports import NodePort
from kyok.auth.context import AuthContext, NotAllowed
from kyok.auth.errors import MissingInstance
from kyok.auth.roles import Permission
from kyok.kms.errors import BadBody, InvalidField, KeyDeleted, KeyNotFound, KeyStateConflict
from kyok.kms.imports import WrappedImport
from kyok.kms.keys import KeyView
from kyok.kms.policies import KeyPolicySpec
from kyok.kms.query import parse_key_query
from kyok.kms.validation import DEFAULT_KEY_RING

__all__ = ["CreateKeyRoute", "create_key", "register", "serve_create"]

_RING_TARGETS: dict[str, Target] = {"key_ring_id": ("header", "X-Kms-Key-Ring")}


def _region(node: Node) -> str:
    return node.settings.server.region


@dataclass(frozen=True, slots=True)
class _NewKey:
    """A create-key resource, parsed."""

    name: str
    extractable: bool
    description: str | None
    tags: Any
    aliases: Any
    expires_at: datetime | None
    material: bytes | None
    key_ring_id: str | None
    wrapped: WrappedImport | None
    policies: KeyPolicySpec | None


_OVERRIDES_ONLY = (
    "{field} is accepted only by POST /api/v2/keys_with_policy_overrides: "
    "create the key there, or set its policies with PUT /api/v2/keys/{{id}}/policies"
)


def _new_key(resource: Fields, ring_header: str | None, *, with_policies: bool) -> _NewKey:
    policies = None
    if with_policies:
        policies = key_policy_spec(resource.value("rotation"), resource.value("dualAuthDelete"))
    else:
        for field in ("rotation", "dualAuthDelete"):
            if resource.value(field) is not None:
                raise BadBody(_OVERRIDES_ONLY.format(field=field))
    wrapped = wrapped_import(resource)
    material = None
    payload = resource.value("payload")
    if wrapped is None and payload is not None:
        material = decode_b64(payload, "payload", what="base64 encoded key material")
        if not material:
            raise InvalidField("payload", "must not be empty")
    body_ring = resource.text("keyRingID")
    if ring_header and body_ring and ring_header != body_ring:
        raise BadBody("the X-Kms-Key-Ring header and keyRingID name different key rings")
    return _NewKey(
        name=resource.text("name", required=True) or "",
        extractable=resource.boolean("extractable", False),
        description=resource.text("description"),
        tags=resource.value("tags"),
        aliases=resource.value("aliases"),
        expires_at=parse_time(resource.value("expirationDate"), "expirationDate"),
        material=material,
        key_ring_id=ring_header or body_ring,
        wrapped=wrapped,
        policies=policies,
    )


def _payload(node: Node, ctx: AuthContext, view: KeyView) -> bytes | None:
    """A standard key's material, when the caller may read it and the key's state gives it."""
    if not view.extractable:
        return None
    if not ctx.allows(Permission.KEYS_READ, key_ring_id=view.record.key_ring_id, key_id=view.id):
        return None
    try:
        return node.service.get_key_material(ctx.instance_id, view.id)
    except (KeyDeleted, KeyStateConflict):
        return None  # destroyed or not yet active: metadata only


def _keys_response(
    node: Node, views: list[KeyView], status: int, media_type: str, payload: bytes | None = None
) -> Response:
    resources = [key_resource(v, region=_region(node), payload=payload) for v in views]
    return json_response(collection(KEY_TYPE, resources), status, media_type)


def _checked_new_key(
    ctx: AuthContext, raw: bytes, ring_header: str | None, *, with_policies: bool
) -> _NewKey:
    """Parse the one key resource of a create body and check the permission on its ring."""
    resources = collection_resources(parse_json(raw), KEY_TYPE)
    if len(resources) != 1:
        raise BadBody("Only creation of one key per request is supported")
    spec = _new_key(resources[0], ring_header, with_policies=with_policies)
    ring = spec.key_ring_id or DEFAULT_KEY_RING
    if not ctx.allows_instance_wide(Permission.KEYS_CREATE):
        ctx.require(Permission.KEYS_CREATE, key_ring_id=ring)
    return spec


def _create(
    ctx: AuthContext,
    node: Node,
    raw: bytes,
    ring_header: str | None,
    prefer: str | None,
    media_type: str,
    *,
    with_policies: bool,
) -> Response:
    """Parse one key resource, check the permission on its ring, create it, render it."""
    spec = _checked_new_key(ctx, raw, ring_header, with_policies=with_policies)
    view = node.service.create_key(
        ctx.principal,
        ctx.instance_id,
        spec.name,
        extractable=spec.extractable,
        description=spec.description,
        tags=spec.tags,
        aliases=spec.aliases,
        expires_at=spec.expires_at,
        material=spec.material,
        key_ring_id=spec.key_ring_id,
        wrapped=spec.wrapped,
        policies=spec.policies,
    )
    payload = None if parse_prefer(prefer) == "minimal" else _payload(node, ctx, view)
    return _keys_response(node, [view], 201, media_type, payload)


async def serve_create(
    node: NodePort,
    media: Media,
    header: Callable[[str], str | None],
    client_host: str | None,
    read_body: Callable[[int], Awaitable[bytes]],
    *,
    with_policies: bool,
) -> Response:
    """:func:`_create`, on the event loop, for :class:`CreateKeyRoute` and
    :class:`~kyok.api.kp.create_fastpath.KeyCreateFastPath`.

    In the order FastAPI resolves the routes' dependencies: ``Bluemix-Instance`` (400 without
    it), authentication (401), the instance's network policies, the body (413 above the cap);
    then the headers, parsing and the permission as :func:`_create`. Authentication runs on
    the loop as the data-plane fast path's does (a warm token needs no I/O); the key service
    call is awaited; a standard key's payload, read from the store, is read in a worker thread.

    Args:
        node: the node.
        media: the response content types.
        header: a request header by lower-case name (the first of repeated ones), or None.
        client_host: the client's address (the network policies check it).
        read_body: reads the whole body, at most the given number of bytes (413 above).
        with_policies: the ``keys_with_policy_overrides`` route.

    Returns:
        The 201 response.
    """
    instance = (header("bluemix-instance") or "").strip()
    if not instance:
        raise MissingInstance()
    ctx = node.auth.authenticate(header("authorization"), instance)
    note_caller(ctx)
    check_network(node, ctx.instance_id, client_host)
    raw = await read_body(node.settings.server.max_body_bytes)
    ring_header = header("x-kms-key-ring")
    prefer = header("prefer")
    spec = _checked_new_key(ctx, raw, ring_header, with_policies=with_policies)
    view = await node.service.create_key_async(
        ctx.principal,
        ctx.instance_id,
        spec.name,
        extractable=spec.extractable,
        description=spec.description,
        tags=spec.tags,
        aliases=spec.aliases,
        expires_at=spec.expires_at,
        material=spec.material,
        key_ring_id=spec.key_ring_id,
        wrapped=spec.wrapped,
        policies=spec.policies,
    )
    payload = None
    if view.extractable and parse_prefer(prefer) != "minimal":
        payload = await run_in_threadpool(_payload, node, ctx, view)
    return _keys_response(node, [view], 201, media.key, payload)


class CreateKeyRoute(APIRoute):
    """``POST /keys`` and ``POST /keys_with_policy_overrides``: documented from their endpoint
    functions, served by :func:`serve_create` (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The async handler of this route (FastAPI's own one is not used)."""
        with_policies = self.endpoint is create_key_with_policy_overrides

        async def handler(request: Request) -> Response:
            node: NodePort = request.app.state.node
            media: Media = request.app.state.kp_media

            async def read(limit: int) -> bytes:
                return await read_body(request, limit)

            return await serve_create(
                node,
                media,
                request.headers.get,
                request.client.host if request.client else None,
                read,
                with_policies=with_policies,
            )

        return handler


@operation("Key could not be created", "create_key", _RING_TARGETS)
def create_key(
    ctx: Caller,
    node: Node,
    media: MediaTypes,
    raw: RawBody,
    x_kms_key_ring: KeyRingHeader = None,
    prefer: PreferHeader = None,
) -> Response:
    """Create a root key (`extractable: false`) or a standard key; import with `payload`, or
    with the import token (`payload`, `encryptedNonce`, `iv`, `encryptionAlgorithm`; root keys
    only).

    Without `Prefer` (or with `return=representation`) the new key is returned in full,
    standard keys with their `payload`; `return=minimal` leaves the payload out. Policies
    (`rotation`, `dualAuthDelete`) are refused here (400): see `keys_with_policy_overrides`.
    """
    return _create(ctx, node, raw, x_kms_key_ring, prefer, media.key, with_policies=False)


@operation("Key could not be created", "create_key_with_policy_overrides", _RING_TARGETS)
def create_key_with_policy_overrides(
    ctx: Caller,
    node: Node,
    media: MediaTypes,
    raw: RawBody,
    x_kms_key_ring: KeyRingHeader = None,
    prefer: PreferHeader = None,
) -> Response:
    """Create a key as `POST /keys` does, with its own `rotation` (`{enabled, interval_month}`,
    generated root keys only) and `dualAuthDelete` (`{enabled}`) policies, which override the
    instance's."""
    return _create(ctx, node, raw, x_kms_key_ring, prefer, media.key, with_policies=True)


def _list_scope(ctx: AuthContext, ring_header: str | None) -> str | None:
    """The key ring a list is limited to; ring-scoped callers must name one of theirs."""
    if ctx.allows_instance_wide(Permission.KEYS_LIST):
        return ring_header or None
    if ring_header and ctx.allows(Permission.KEYS_LIST, key_ring_id=ring_header):
        return ring_header
    raise NotAllowed(Permission.KEYS_LIST)


_Limit = Annotated[str | None, Query(description="page size, 1-5000 (default 200)")]
_Offset = Annotated[str | None, Query(description="0-based start")]
_State = Annotated[str | None, Query(description="comma list of states 0,1,2,3,5 (default 0-3)")]
_Extractable = Annotated[str | None, Query(description="true: standard keys; false: root keys")]
_Search = Annotated[
    str | None,
    Query(description="substring of name or alias; prefixes not:, exact:, escape:, alias:, name:"),
]
_Sort = Annotated[
    str | None, Query(description="comma list of fields, `-` for descending (default id)")
]
_Filter = Annotated[
    str | None, Query(description="space-separated prop=value or prop=op:value terms")
]


@operation("Collection of keys could not be retrieved", "list_keys")
def list_keys(
    ctx: Caller,
    node: Node,
    limit: _Limit = None,
    offset: _Offset = None,
    state: _State = None,
    extractable: _Extractable = None,
    search: _Search = None,
    sort: _Sort = None,
    filter: _Filter = None,
    x_kms_key_ring: KeyRingHeader = None,
) -> Response:
    """List keys (never with `payload`); destroyed keys only when `state` asks for 5."""
    ring = _list_scope(ctx, x_kms_key_ring)
    query = parse_key_query(
        ctx.instance_id,
        limit=limit,
        offset=offset,
        state=state,
        extractable=extractable,
        search=search,
        sort=sort,
        filter=filter,
        key_ring_id=ring,
    )
    # Key Protect puts no total in a list (HEAD /keys gives it): do not count.
    views, _ = node.service.list_keys(query, with_total=False)
    body = collection(KEY_TYPE, [key_resource(v, region=_region(node)) for v in views])
    if query.search is not None:
        s = query.search
        scopes = [name for name, on in (("name", s.names), ("alias", s.aliases)) if on]
        body["metadata"]["searchQuery"] = {
            "query": s.text,
            "scopes": scopes,
            "not": s.negate,
            "exact": s.exact,
        }
    return json_response(body)


@operation("Key total could not be retrieved", "count_keys")
def count_keys(
    ctx: Caller,
    node: Node,
    state: _State = None,
    extractable: _Extractable = None,
    search: _Search = None,
    filter: _Filter = None,
    x_kms_key_ring: KeyRingHeader = None,
) -> Response:
    """The number of keys that match, in the `Key-Total` header (no body)."""
    ring = _list_scope(ctx, x_kms_key_ring)
    query = parse_key_query(
        ctx.instance_id,
        state=state,
        extractable=extractable,
        search=search,
        filter=filter,
        key_ring_id=ring,
    )
    total = node.service.count_keys(query)
    return Response(status_code=200, headers={"Key-Total": str(total)})


def _in_ring(view: KeyView, ring_header: str | None) -> KeyView:
    """``X-Kms-Key-Ring`` on a read limits it to that ring: a key elsewhere is not found."""
    if ring_header and view.record.key_ring_id != ring_header:
        raise KeyNotFound()
    return view


@operation("Key could not be retrieved", "get_key")
def get_key(ctx: Caller, node: Node, id: KeyId, x_kms_key_ring: KeyRingHeader = None) -> Response:
    """A key with its `payload` (standard keys only; needs ReaderPlus)."""
    view = _in_ring(node.service.get_key(ctx.instance_id, id), x_kms_key_ring)
    if not ctx.allows_instance_wide(Permission.KEYS_READ):
        ctx.require(Permission.KEYS_READ, key_ring_id=view.record.key_ring_id, key_id=view.id)
    return _keys_response(node, [view], 200, JSON, _payload(node, ctx, view))


@operation("Key metadata could not be retrieved", "get_key_metadata")
def get_key_metadata(
    ctx: Caller, node: Node, id: KeyId, x_kms_key_ring: KeyRingHeader = None
) -> Response:
    """A key without its material."""
    view = _in_ring(node.service.get_key(ctx.instance_id, id), x_kms_key_ring)
    if not ctx.allows_instance_wide(Permission.KEYS_READ_METADATA):
        ctx.require(
            Permission.KEYS_READ_METADATA, key_ring_id=view.record.key_ring_id, key_id=view.id
        )
    return _keys_response(node, [view], 200, JSON)


@operation(
    "Key could not be updated",
    "patch_key",
    {"key_ring_id": ("field", "keyRingID")},
)
def patch_key(
    ctx: Caller, node: Node, id: KeyId, raw: RawBody, x_kms_key_ring: KeyRingHeader = None
) -> Response:
    """Move a key to another key ring (`{"keyRingID": ...}`; `X-Kms-Key-Ring` = current ring)."""
    body = parse_json(raw)
    fields = Fields(body)
    if "resources" in fields:
        fields = collection_resources(body, KEY_TYPE)[0]
    target = fields.text("keyRingID", required=True) or ""
    view = authorize_key(ctx, node.service, Permission.KEYS_PATCH, id)
    if view is not None:
        ctx.require(Permission.KEYS_PATCH, key_ring_id=target)
    moved = node.service.patch_key_ring(
        ctx.principal, ctx.instance_id, id, target, current_key_ring_id=x_kms_key_ring or None
    )
    return _keys_response(node, [moved], 200, JSON)


@operation("Key could not be deleted", "delete_key")
def delete_key(
    ctx: Caller,
    node: Node,
    id: KeyId,
    force: Annotated[str | None, Query(description="true: delete despite registrations")] = None,
    prefer: PreferHeader = None,
) -> Response:
    """Destroy a key (state 5). `Prefer: return=representation` returns it; else 204.

    409 `PROTECTED_RESOURCE_ERR` while resources are registered with the key (unless
    `force=true`), `PREV_KEY_DEL_ERR` while one of them holds it (`preventKeyDeletion`, even
    with force), `AUTHORIZATIONS_NOT_MET` for a dual-authorisation key without another
    principal's `setKeyForDeletion`."""
    forced = parse_bool_param(force, "force")
    authorize_key(ctx, node.service, Permission.KEYS_DELETE, id)
    view = node.service.delete(ctx.principal, ctx.instance_id, id, force=forced)
    if parse_prefer(prefer) == "representation":
        return _keys_response(node, [view], 200, JSON)
    return no_content()


@operation("Key could not be purged", "purge_key")
def purge_key(ctx: Caller, node: Node, id: KeyId, prefer: PreferHeader = None) -> Response:
    """Remove a destroyed key for good (KeyPurge role; 4 h after deletion)."""
    authorize_key(ctx, node.service, Permission.KEYS_PURGE, id)
    view = node.service.purge(ctx.principal, ctx.instance_id, id)
    if parse_prefer(prefer) == "minimal":
        return no_content()
    return _keys_response(node, [view], 200, JSON)


@operation("Key could not be restored", "restore_key")
def restore_key(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Bring a destroyed key back (within 30 days); the body, if any, is ignored."""
    authorize_key(ctx, node.service, Permission.KEYS_RESTORE, id)
    view = node.service.restore(ctx.principal, ctx.instance_id, id)
    return _keys_response(node, [view], 201, media.key)


@operation("Key versions could not be retrieved", "list_key_versions")
def list_key_versions(
    ctx: Caller,
    node: Node,
    id: KeyId,
    limit: _Limit = None,
    offset: _Offset = None,
    totalCount: Annotated[str | None, Query(description="true: add metadata.totalCount")] = None,
    allKeyStates: Annotated[
        str | None, Query(description="true: also for keys that are not active")
    ] = None,
) -> Response:
    """A key's versions, newest first."""
    page_limit = parse_int_param(limit, "limit", 200)
    page_offset = parse_int_param(offset, "offset", 0)
    with_total = parse_bool_param(totalCount, "totalCount")
    all_states = parse_bool_param(allKeyStates, "allKeyStates")
    authorize_key(ctx, node.service, Permission.KEYS_LIST_VERSIONS, id)
    versions, total = node.service.list_versions(
        ctx.instance_id, id, page_limit, page_offset, all_states=all_states
    )
    body = collection(
        KEY_VERSION_TYPE,
        [version_resource(v) for v in versions],
        total=total if with_total else None,
    )
    return json_response(body)


def register(router: APIRouter, media: Media) -> None:
    """Add the key routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types.
    """
    key_id = "/keys/{id}"
    keys_doc = openapi.response(models.KeyCollection, "One key", JSON)
    router.add_api_route(
        "/keys",
        create_key,
        methods=["POST"],
        status_code=201,
        response_class=media.response_class(media.key),
        responses={
            201: openapi.response(models.KeyCollection, "The new key", media.key),
            **errors(404, 409),
        },
        openapi_extra=openapi.request_body(
            models.KeyCreateBody,
            [KEY_TYPE, JSON],
            required=True,
            description="One key in a collection (any Content-Type; field names in any case)",
        ),
        operation_id="create_key",
        route_class_override=CreateKeyRoute,
    )
    router.add_api_route(
        "/keys_with_policy_overrides",
        create_key_with_policy_overrides,
        methods=["POST"],
        status_code=201,
        response_class=media.response_class(media.key),
        responses={
            201: openapi.response(models.KeyCollection, "The new key", media.key),
            **errors(404, 409),
        },
        openapi_extra=openapi.request_body(
            models.KeyWithPoliciesCreateBody,
            [KEY_TYPE, JSON],
            required=True,
            description="One key in a collection (any Content-Type; field names in any case)",
        ),
        operation_id="create_key_with_policies_overrides",
        route_class_override=CreateKeyRoute,
    )
    router.add_api_route(
        "/keys",
        list_keys,
        methods=["GET"],
        responses={200: openapi.response(models.KeyCollection, "A page of keys"), **errors(404)},
        operation_id="list_keys",
    )
    router.add_api_route(
        "/keys",
        count_keys,
        methods=["HEAD"],
        response_class=Response,
        responses={
            200: {
                "description": "The count is in the Key-Total header",
                "headers": {"Key-Total": {"schema": {"type": "integer"}}},
            },
            **errors(404),
        },
        operation_id="count_keys",
    )
    router.add_api_route(
        key_id,
        get_key,
        methods=["GET"],
        responses={200: keys_doc, **errors(404)},
        operation_id="get_key",
    )
    router.add_api_route(
        key_id + "/metadata",
        get_key_metadata,
        methods=["GET"],
        responses={200: keys_doc, **errors(404)},
        operation_id="get_key_metadata",
    )
    router.add_api_route(
        key_id,
        patch_key,
        methods=["PATCH"],
        responses={200: keys_doc, **errors(404, 410)},
        openapi_extra=openapi.request_body(
            models.KeyPatchBody, [KEY_TYPE, JSON], required=True, description="The new key ring"
        ),
        operation_id="patch_key",
    )
    router.add_api_route(
        key_id,
        delete_key,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        responses={
            200: openapi.response(
                models.KeyCollection, "The destroyed key (return=representation)"
            ),
            **errors(404, 409, 410),
        },
        operation_id="delete_key",
    )
    router.add_api_route(
        key_id + "/purge",
        purge_key,
        methods=["DELETE"],
        responses={
            200: openapi.response(models.KeyCollection, "The key as it was before the purge"),
            204: {"description": "Purged (return=minimal)"},
            **errors(404, 409),
        },
        operation_id="purge_key",
    )
    router.add_api_route(
        key_id + "/restore",
        restore_key,
        methods=["POST"],
        status_code=201,
        response_class=media.response_class(media.key),
        responses={
            201: openapi.response(models.KeyCollection, "The restored key", media.key),
            **errors(404, 409),
        },
        operation_id="restore_key",
    )
    router.add_api_route(
        key_id + "/versions",
        list_key_versions,
        methods=["GET"],
        responses={
            200: openapi.response(models.KeyVersionCollection, "The versions, newest first"),
            **errors(404, 409),
        },
        operation_id="list_key_versions",
    )
