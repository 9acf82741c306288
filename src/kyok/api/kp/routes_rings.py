"""Key rings (reference §2.6): list, create (201, empty body), delete (204)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.deps import Caller, Node
from kyok.api.kp import models
from kyok.api.kp._common import Media, errors, json_response, no_content
from kyok.api.kp.body import parse_bool_param, parse_int_param
from kyok.api.kp.render import KEY_RING_TYPE, collection, key_ring_resource
from kyok.api.operations import Target, operation
from kyok.auth.roles import Permission

__all__ = ["register"]

_RING_TARGETS: dict[str, Target] = {"key_ring_id": ("parameter", "key_ring_id")}

RingId = Annotated[str, Path(description="The key ring's id")]


@operation("Key rings could not be retrieved", "list_key_rings")
def list_key_rings(
    ctx: Caller,
    node: Node,
    limit: Annotated[str | None, Query(description="page size, 1-5000 (default 100)")] = None,
    offset: Annotated[str | None, Query(description="0-based start")] = None,
    totalCount: Annotated[str | None, Query(description="true: add metadata.totalCount")] = None,
) -> Response:
    """The instance's key rings, oldest first (`default` included)."""
    page_limit = parse_int_param(limit, "limit", 100)
    page_offset = parse_int_param(offset, "offset", 0)
    with_total = parse_bool_param(totalCount, "totalCount")
    ctx.require(Permission.KEY_RINGS_LIST)
    rings, total = node.service.list_key_rings(ctx.instance_id, page_limit, page_offset)
    body = collection(
        KEY_RING_TYPE, [key_ring_resource(r) for r in rings], total=total if with_total else None
    )
    return json_response(body)


@operation("Key ring could not be created", "create_key_ring", _RING_TARGETS)
def create_key_ring(ctx: Caller, node: Node, key_ring_id: RingId) -> Response:
    """Create a key ring; 201 with an empty body (the Go client expects none)."""
    ctx.require(Permission.KEY_RINGS_CREATE)
    node.service.create_key_ring(ctx.principal, ctx.instance_id, key_ring_id)
    return Response(status_code=201)


@operation("Key ring could not be deleted", "delete_key_ring", _RING_TARGETS)
def delete_key_ring(
    ctx: Caller,
    node: Node,
    key_ring_id: RingId,
    force: Annotated[
        str | None, Query(description="true: move destroyed keys in it to `default`")
    ] = None,
) -> Response:
    """Delete an empty key ring (with `force`, destroyed keys move to `default`); 204."""
    forced = parse_bool_param(force, "force")
    ctx.require(Permission.KEY_RINGS_DELETE)
    node.service.delete_key_ring(ctx.principal, ctx.instance_id, key_ring_id, force=forced)
    return no_content()


def register(router: APIRouter, media: Media) -> None:
    """Add the key-ring routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types (unused: rings are plain JSON).
    """
    ring = "/key_rings/{key_ring_id}"
    router.add_api_route(
        "/key_rings",
        list_key_rings,
        methods=["GET"],
        responses={
            200: openapi.response(models.KeyRingCollection, "A page of key rings"),
            **errors(),
        },
        operation_id="list_key_rings",
    )
    router.add_api_route(
        ring,
        create_key_ring,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        responses={201: {"description": "Created (no body)"}, **errors(409)},
        operation_id="create_key_ring",
    )
    router.add_api_route(
        ring,
        delete_key_ring,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}, **errors(404, 409)},
        operation_id="delete_key_ring",
    )
