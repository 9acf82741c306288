"""Key aliases (reference §2.7): create (201 + alias) and delete (204)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.deps import Caller, Node
from kyok.api.kp import models
from kyok.api.kp._common import KeyId, Media, authorize_key, errors, json_response, no_content
from kyok.api.kp.render import ALIAS_TYPE, alias_resource, collection
from kyok.api.operations import operation
from kyok.auth.roles import Permission

__all__ = ["register"]

AliasName = Annotated[str, Path(description="The alias: 2-90 of A-Z a-z 0-9 _ -, not a UUID")]


@operation("Key alias could not be created", "create_alias")
def create_alias(ctx: Caller, node: Node, id: KeyId, alias: AliasName) -> Response:
    """Give a key one more alias (at most 5 per key, unique in the instance)."""
    authorize_key(ctx, node.service, Permission.ALIASES_CREATE, id)
    record = node.service.create_alias(ctx.principal, ctx.instance_id, id, alias)
    return json_response(collection(ALIAS_TYPE, [alias_resource(record)]), 201)


@operation("Key alias could not be deleted", "delete_alias")
def delete_alias(ctx: Caller, node: Node, id: KeyId, alias: AliasName) -> Response:
    """Remove one alias of a key; 204."""
    authorize_key(ctx, node.service, Permission.ALIASES_DELETE, id)
    node.service.delete_alias(ctx.principal, ctx.instance_id, id, alias)
    return no_content()


def register(router: APIRouter, media: Media) -> None:
    """Add the alias routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types (unused: aliases are plain JSON).
    """
    path = "/keys/{id}/aliases/{alias}"
    router.add_api_route(
        path,
        create_alias,
        methods=["POST"],
        status_code=201,
        responses={
            201: openapi.response(models.AliasCollection, "The new alias"),
            **errors(404, 409, 410),
        },
        operation_id="create_key_alias",
    )
    router.add_api_route(
        path,
        delete_alias,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}, **errors(404, 410)},
        operation_id="delete_key_alias",
    )
