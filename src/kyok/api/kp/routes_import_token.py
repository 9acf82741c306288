"""The import token (reference §2.5, §5): create it, retrieve it.

An instance has one token at a time; creating one replaces the old one. Both answers are flat
objects (not collections) with status 200. A retrieval counts down ``remainingRetrievals`` and
hands out the public keys and the nonce: ``payload`` (base64 of the RSA public key as PEM),
``nonce`` (base64) and, as kyok's extension, ``kyokHybridPublicKey`` (base64 of the hybrid
ML-KEM-768 + X25519 public key, for ``encryptionAlgorithm: KYOK_HYBRID_MLKEM768_X25519``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.deps import Caller, Node, RawBody
from kyok.api.kp import models
from kyok.api.kp._common import JSON, Media, errors, json_response
from kyok.api.kp.body import Fields, parse_json
from kyok.api.kp.render import import_token
from kyok.api.operations import operation
from kyok.auth.roles import Permission
from kyok.kms.errors import InvalidField

__all__ = ["register"]


def _whole(value: Any, name: str) -> Any:
    """A whole number as JSON may carry it (``600`` or ``600.0``); other values pass on for
    the service to judge (booleans are refused here: JSON ``true`` is not a number)."""
    if isinstance(value, bool):
        raise InvalidField(name, "must be a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@operation("Import token could not be created", "create_import_token")
def create_import_token(ctx: Caller, node: Node, raw: RawBody) -> Response:
    """Make the instance's import token (replacing any other): an RSA key pair and a hybrid
    key pair inside the crypto unit, and a nonce. Body (optional): `expiration` (seconds,
    300-86400, default 600), `maxAllowedRetrievals` (1-500, default 1)."""
    fields = Fields(parse_json(raw))
    expiration = _whole(fields.value("expiration"), "expiration")
    retrievals = _whole(fields.value("maxAllowedRetrievals"), "max_retrievals")
    ctx.require(Permission.IMPORT_TOKEN_CREATE)
    view = node.import_tokens.create(
        ctx.principal, ctx.instance_id, expiration=expiration, max_retrievals=retrievals
    )
    return json_response(import_token(view, with_keys=False))


@operation("Import Token could not be retrieved", "get_import_token")
def get_import_token(ctx: Caller, node: Node) -> Response:
    """Retrieve the token's public keys and nonce; counts one retrieval. 409
    `IMPORT_TOKEN_EXPIRED_ERR` when there is none, it expired or no retrievals are left."""
    ctx.require(Permission.IMPORT_TOKEN_READ)
    view = node.import_tokens.retrieve(ctx.principal, ctx.instance_id)
    return json_response(import_token(view, with_keys=True))


def register(router: APIRouter, media: Media) -> None:
    """Add the import-token routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types (unused: tokens are plain JSON).
    """
    router.add_api_route(
        "/import_token",
        create_import_token,
        methods=["POST"],
        responses={200: openapi.response(models.ImportToken, "The new token"), **errors(404)},
        openapi_extra=openapi.request_body(
            models.ImportTokenCreateBody,
            [JSON],
            required=False,
            description="Optional (any Content-Type; field names in any case)",
        ),
        operation_id="post_import_token",
    )
    router.add_api_route(
        "/import_token",
        get_import_token,
        methods=["GET"],
        responses={
            200: openapi.response(models.ImportTokenRetrieved, "The token with its keys"),
            **errors(409),
        },
        operation_id="get_import_token",
    )
