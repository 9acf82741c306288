"""The crypto unit over HTTP (docs/api-kyok.md, "Crypto unit").

These endpoints need no token: ceremony commands authenticate themselves (administrators'
signatures checked by the unit), and status and transcript are public by design. The instance
comes from ``Bluemix-Instance``. Field names are camelCase; the unit's own snake_case names
are converted here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.audit import note_instance
from kyok.api.deps import CorrelationHeaders, InstanceId, Node, RawBody
from kyok.api.operations import operation
from kyok.api.ports import NodePort
from kyok.api.responses import error_responses, json_response
from kyok.api.unit import models
from kyok.kms.errors import BadBody, InvalidField

__all__ = ["build_router", "camel"]

_SNAKE = re.compile(r"_([a-z0-9])")


def camel(value: Any) -> Any:
    """``value`` with every dict key turned from snake_case into camelCase (recursively).

    Args:
        value: JSON-shaped data.

    Returns:
        The same data with camelCase keys.
    """
    if isinstance(value, dict):
        return {
            _SNAKE.sub(lambda m: m.group(1).upper(), str(k)): camel(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


@operation("Unit status could not be retrieved")
def unit_status(node: Node, instance: InstanceId) -> Response:
    """Administrators, thresholds, next sequence number, registers with MKVPs, seal state and
    the transport key custodians seal their parts to."""
    status = dict(node.unit_console.status(instance))
    status["transportKeyFingerprint"] = status.pop("transport_fingerprint", None)
    return json_response(camel(status))


@operation("Unit command could not be executed", targets={"sealed_part": ("field", "sealedPart")})
def unit_command(node: Node, instance: InstanceId, raw: RawBody) -> Response:
    """Run a signed command file (`kyok-command/1`); `load_part` carries `sealedPart`."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise BadBody("a command file (a JSON object) is required")
    command = {k: v for k, v in body.items() if k != "sealedPart"}
    sealed = body.get("sealedPart")
    part = None
    if sealed is not None:
        if not isinstance(sealed, str):
            raise InvalidField("sealedPart", "must be base64 text")
        try:
            part = base64.b64decode(sealed.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidField("sealedPart", "must be base64 text") from None
    try:
        result = node.unit_console.submit(instance, command, part)
    finally:
        _note_transcript(node, instance, command.get("command"))
    return json_response(camel(dict(result)))


def _note_transcript(node: NodePort, instance: str, command: object) -> None:
    """Tie this call's audit event to the unit's transcript head (entries and last hash)."""
    head = node.unit_console.transcript_head(instance)
    detail = {"command": command} if isinstance(command, str) and command.isidentifier() else {}
    if head is not None:
        detail |= {"transcriptEntries": str(head[0]), "transcriptHead": head[1]}
        note_instance(instance, **detail)


@operation("Administrator credential could not be made")
def unit_admin_credential(node: Node, instance: InstanceId, raw: RawBody) -> Response:
    """Make an administrator credential the unit's administrators authorized: a signed
    `authorize_admin` command file (accepted, then used at once), or `{"authorizationSeq": n}`
    for one accepted earlier. The API key comes back sealed to the command's recipient key."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise BadBody("a command file or {authorizationSeq} (a JSON object) is required")
    if "format" in body:
        if body.get("command") != "authorize_admin":
            raise InvalidField("command", "must be authorize_admin")
        seq = body.get("seq")
        try:
            node.unit_console.submit(instance, body, None)
        finally:
            _note_transcript(node, instance, "authorize_admin")
    else:
        seq = body.get("authorizationSeq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise InvalidField("authorizationSeq", "must be a non-negative integer")
    principal_id, sealed = node.auth.authorized_admin(instance, seq)
    out = {
        "principalId": principal_id,
        "authorizationSeq": seq,
        "sealedApiKey": base64.b64encode(sealed).decode("ascii"),
    }
    return json_response(out, 201)


@operation("Unit transcript could not be retrieved")
def unit_transcript(node: Node, instance: InstanceId) -> Response:
    """The ceremony transcript, one JSON entry per line (verify it with `kyok ceremony verify`)."""
    lines = node.unit_console.transcript(instance)
    return Response("".join(line + "\n" for line in lines), media_type="application/x-ndjson")


@operation("Re-encryption could not be started")
def unit_reencrypt(node: Node, instance: InstanceId) -> Response:
    """Re-encrypt every key blob under the current master key, in the background; 202."""
    state = node.unit_console.start_reencrypt(instance)
    return json_response(camel(dict(state)), 202)


def build_router() -> APIRouter:
    """The ``/api/v2/kyok/unit`` router.

    Returns:
        The router.
    """
    router = APIRouter(
        prefix="/api/v2/kyok/unit", tags=["kyok: crypto unit"], dependencies=[CorrelationHeaders]
    )
    router.add_api_route(
        "",
        unit_status,
        methods=["GET"],
        responses={
            200: openapi.response(models.UnitStatus, "The unit"),
            **error_responses(404, auth=False),
        },
        operation_id="get_unit",
    )
    router.add_api_route(
        "/commands",
        unit_command,
        methods=["POST"],
        responses={
            200: openapi.response(models.CommandResult, "The command's result"),
            **error_responses(404, 409, auth=False),
        },
        openapi_extra=openapi.request_body(
            models.CommandFile,
            ["application/json"],
            required=True,
            description="A signed command file; for load_part also sealedPart",
        ),
        operation_id="submit_unit_command",
    )
    router.add_api_route(
        "/admin-credentials",
        unit_admin_credential,
        methods=["POST"],
        status_code=201,
        responses={
            201: openapi.response(
                models.AdminCredential, "The administrator and its sealed API key"
            ),
            **error_responses(404, 409, auth=False),
        },
        openapi_extra=openapi.request_body(
            models.AdminCredentialRequest,
            ["application/json"],
            required=True,
            description="A signed authorize_admin command file, or {authorizationSeq}",
        ),
        operation_id="make_admin_credential",
    )
    router.add_api_route(
        "/transcript",
        unit_transcript,
        methods=["GET"],
        response_class=Response,
        responses={
            200: {
                "description": "One JSON object per line: {body, hash, mac}",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            },
            **error_responses(404, auth=False),
        },
        operation_id="get_unit_transcript",
    )
    router.add_api_route(
        "/reencrypt",
        unit_reencrypt,
        methods=["POST"],
        status_code=202,
        responses={
            202: openapi.response(models.ReencryptState, "Started (or running)"),
            **error_responses(404, auth=False),
        },
        operation_id="reencrypt_unit",
    )
    return router
