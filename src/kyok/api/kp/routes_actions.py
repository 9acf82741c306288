"""Key actions (reference §2.2, §4, §5): wrap, unwrap, rewrap, rotate (also with the import
token), disable, enable, setKeyForDeletion, unsetKeyForDeletion, sync.

Both forms are served: ``POST /keys/{id}/actions/<action>`` and the legacy
``POST /keys/{id}?action=<action>`` (which also accepts ``restore``). Bodies are parsed as JSON
whatever their content type; a missing body, an empty one, ``null`` and ``{}`` are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from kyok.api import openapi
from kyok.api.deps import Caller, Node, RawBody
from kyok.api.kp import models
from kyok.api.kp._common import (
    JSON,
    KeyId,
    Media,
    MediaTypes,
    authorize_key,
    errors,
    json_response,
    no_content,
)
from kyok.api.kp.body import Fields, NoBody, decode_b64, parse_json, wrapped_import
from kyok.api.kp.render import rewrap_result, unwrap_result, wrap_result
from kyok.api.kp.routes_keys import restore_key
from kyok.api.operations import Operation, operation, set_operation
from kyok.api.ports import NodePort
from kyok.auth.context import AuthContext
from kyok.auth.roles import Permission
from kyok.kms.errors import InvalidField

__all__ = ["register", "rewrap", "rewrap_action", "unwrap", "unwrap_action", "wrap", "wrap_action"]

_ACTION_TYPES = ["application/vnd.ibm.kms.key_action+json", JSON]
_DEK = "a base64 encoded key material"
_CIPHERTEXT = "the original base64 encoded ciphertext from the wrap operation"


def _optional_b64(fields: Fields, name: str, what: str) -> bytes | None:
    value = fields.value(name)
    if value is None or value == "":
        return None
    return decode_b64(value, name, what=what)


def _ciphertext(raw: bytes) -> tuple[bytes, Any]:
    fields = Fields(parse_json(raw))
    if not fields:
        raise NoBody()
    value = fields.value("ciphertext")
    if value is None or value == "":
        raise InvalidField("ciphertext", "is required")
    return decode_b64(value, "ciphertext", what=_CIPHERTEXT), fields.value("aad")


def wrap_action(ctx: AuthContext, node: NodePort, id: str, raw: bytes) -> dict[str, Any]:
    """Authorize, parse, wrap and render (shared with the data-plane fast path)."""
    authorize_key(ctx, node.service, Permission.KEYS_WRAP, id)
    fields = Fields(parse_json(raw))
    plaintext = _optional_b64(fields, "plaintext", _DEK)
    return wrap_result(node.service.wrap(ctx.instance_id, id, plaintext, fields.value("aad")))


def unwrap_action(ctx: AuthContext, node: NodePort, id: str, raw: bytes) -> dict[str, Any]:
    """Authorize, parse, unwrap and render (shared with the data-plane fast path)."""
    authorize_key(ctx, node.service, Permission.KEYS_UNWRAP, id)
    ciphertext, aad = _ciphertext(raw)
    return unwrap_result(node.service.unwrap(ctx.instance_id, id, ciphertext, aad))


def rewrap_action(ctx: AuthContext, node: NodePort, id: str, raw: bytes) -> dict[str, Any]:
    """Authorize, parse, rewrap and render (shared with the data-plane fast path)."""
    authorize_key(ctx, node.service, Permission.KEYS_REWRAP, id)
    ciphertext, aad = _ciphertext(raw)
    return rewrap_result(node.service.rewrap(ctx.instance_id, id, ciphertext, aad))


@operation("Wrap with key could not be performed", "wrap")
def wrap(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Wrap a DEK (`plaintext`, base64) with the key's newest version; without `plaintext` a
    32-byte DEK is generated and returned."""
    return json_response(wrap_action(ctx, node, id, raw), 200, media.action)


@operation("Unwrap with key could not be performed", "unwrap")
def unwrap(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Unwrap a DEK; a ciphertext of an older version also comes back re-wrapped."""
    return json_response(unwrap_action(ctx, node, id, raw), 200, media.action)


@operation("Rewrap with key could not be performed", "rewrap")
def rewrap(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Move a wrapped DEK to the key's newest version without exposing it."""
    return json_response(rewrap_action(ctx, node, id, raw), 200, media.action)


@operation("Action could not be performed on key", "rotate")
def rotate(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Give a root key a new version; 204. Imported keys need new material: `payload` in
    plain, or with the import token (`payload`, `encryptedNonce`, `iv`,
    `encryptionAlgorithm`)."""
    authorize_key(ctx, node.service, Permission.KEYS_ROTATE, id)
    fields = Fields(parse_json(raw))
    wrapped = wrapped_import(fields)
    material = None
    if wrapped is None:
        material = _optional_b64(fields, "payload", "base64 encoded key material")
    node.service.rotate(ctx.principal, ctx.instance_id, id, material, wrapped=wrapped)
    return no_content()


@operation("Key could not be disabled", "disable")
def disable(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Suspend a root key (state 1 -> 2); the body, if any, is ignored; 204."""
    authorize_key(ctx, node.service, Permission.KEYS_DISABLE, id)
    node.service.disable(ctx.principal, ctx.instance_id, id)
    return no_content()


@operation("Key could not be enabled", "enable")
def enable(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Re-activate a suspended root key (state 2 -> 1); the body, if any, is ignored; 204."""
    authorize_key(ctx, node.service, Permission.KEYS_ENABLE, id)
    node.service.enable(ctx.principal, ctx.instance_id, id)
    return no_content()


@operation("Key could not be set for deletion", "set_key_for_deletion")
def set_key_for_deletion(
    ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody
) -> Response:
    """Approve the deletion of a dual-authorisation key (valid 7 days); another principal may
    then delete it. The body, if any, is ignored; 204."""
    authorize_key(ctx, node.service, Permission.KEYS_SET_FOR_DELETION, id)
    node.service.set_key_for_deletion(ctx.principal, ctx.instance_id, id)
    return no_content()


@operation("Key could not be unset for deletion", "unset_key_for_deletion")
def unset_key_for_deletion(
    ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody
) -> Response:
    """Withdraw the approval to delete a dual-authorisation key; 204."""
    authorize_key(ctx, node.service, Permission.KEYS_UNSET_FOR_DELETION, id)
    node.service.unset_key_for_deletion(ctx.principal, ctx.instance_id, id)
    return no_content()


@operation("Key resources could not be synced", "sync")
def sync(ctx: Caller, node: Node, media: MediaTypes, id: KeyId, raw: RawBody) -> Response:
    """Ask the services with resources registered under the key to catch up with it (kyok
    records the request); 204. 409 `REQ_TOO_EARLY_ERR` within an hour of the last sync or of
    the key's last lifecycle change."""
    authorize_key(ctx, node.service, Permission.KEYS_SYNC, id)
    node.service.sync(ctx.principal, ctx.instance_id, id)
    return no_content()


_Handler = Callable[..., Response]

#: The legacy ``?action=`` names.
LEGACY: dict[str, _Handler] = {
    "wrap": wrap,
    "unwrap": unwrap,
    "rewrap": rewrap,
    "rotate": rotate,
    "disable": disable,
    "enable": enable,
    "restore": restore_key,
    "setKeyForDeletion": set_key_for_deletion,
    "unsetKeyForDeletion": unset_key_for_deletion,
    "sync": sync,
}


@operation("Action could not be performed on key")
def legacy_action(
    request: Request,
    ctx: Caller,
    node: Node,
    media: MediaTypes,
    id: KeyId,
    raw: RawBody,
    action: Annotated[str | None, Query(description="The action (deprecated form)")] = None,
) -> Response:
    """The deprecated form of the key actions: `POST /keys/{id}?action=<action>`."""
    handler = LEGACY.get(action or "")
    if handler is None:
        raise HTTPException(404)
    tagged = getattr(handler, "__kyok_operation__", None)
    if isinstance(tagged, Operation):
        set_operation(request.scope, tagged)
    return handler(ctx, node, media, id, raw)


def _register_action(
    router: APIRouter,
    name: str,
    handler: _Handler,
    *,
    status: int,
    media_type: str,
    request_model: type[BaseModel] | None,
    response_model: type[BaseModel] | None,
    errors_: tuple[int, ...],
    body_required: bool = False,
    operation_id: str | None = None,
) -> None:
    responses = {
        status: openapi.response(response_model, "Done", media_type)
        if status != 204
        else {"description": "Done"},
        **errors(404, 409, 410, *errors_),
    }
    extra = None
    if request_model is not None:
        extra = openapi.request_body(
            request_model,
            _ACTION_TYPES,
            required=body_required,
            description="Any Content-Type; field names in any case",
        )
    router.add_api_route(
        "/keys/{id}/actions/" + name,
        handler,
        methods=["POST"],
        status_code=status,
        response_class=Response if status == 204 else Media().response_class(media_type),
        responses=responses,
        openapi_extra=extra,
        operation_id=operation_id or f"{name}_key",
    )


def register(router: APIRouter, media: Media) -> None:
    """Add the action routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types.
    """
    act = media.action
    _register_action(
        router, "wrap", wrap, status=200, media_type=act,
        request_model=models.WrapRequest, response_model=models.WrapResponse, errors_=(),
    )  # fmt: skip
    _register_action(
        router, "unwrap", unwrap, status=200, media_type=act,
        request_model=models.UnwrapRequest, response_model=models.UnwrapResponse,
        errors_=(422,), body_required=True,
    )  # fmt: skip
    _register_action(
        router, "rewrap", rewrap, status=200, media_type=act,
        request_model=models.RewrapRequest, response_model=models.RewrapResponse,
        errors_=(422,), body_required=True,
    )  # fmt: skip
    _register_action(
        router, "rotate", rotate, status=204, media_type=JSON,
        request_model=models.RotateRequest, response_model=None, errors_=(),
    )  # fmt: skip
    for name, handler, op_id in (
        ("disable", disable, "disable_key"),
        ("enable", enable, "enable_key"),
        ("setKeyForDeletion", set_key_for_deletion, "set_key_for_deletion"),
        ("unsetKeyForDeletion", unset_key_for_deletion, "unset_key_for_deletion"),
        ("sync", sync, "sync_associated_resources"),
    ):
        _register_action(
            router, name, handler, status=204, media_type=JSON,
            request_model=None, response_model=None, errors_=(), operation_id=op_id,
        )  # fmt: skip
    router.add_api_route(
        "/keys/{id}",
        legacy_action,
        methods=["POST"],
        responses={
            200: {"description": "wrap, unwrap, rewrap: as the /actions form"},
            201: {"description": "restore: as POST /keys/{id}/restore"},
            204: {
                "description": "rotate, disable, enable, setKeyForDeletion, "
                "unsetKeyForDeletion, sync: as the /actions form"
            },
            **errors(404, 409, 410, 422),
        },
        deprecated=True,
        operation_id="key_action_legacy",
    )
