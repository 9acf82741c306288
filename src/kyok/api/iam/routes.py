"""IBM IAM's token endpoints, as the Key Protect clients call them (reference §8).

``POST /identity/token`` (keyprotect 3.x, ibm-cloud-sdk-core) and ``POST /oidc/token``
(keyprotect 2.x / redstone, the Go client) take the same form::

    grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=<key>
    grant_type=refresh_token&refresh_token=<token>

``response_type``, ``scope``, ``uaa_client_id``/``uaa_client_secret`` and HTTP Basic
credentials (redstone sends ``bx:bx``) are ignored. A form body is read whatever the
``Content-Type`` says (``multipart/form-data`` and a JSON object are accepted too). Success is
200 ``application/json``::

    {"access_token": <JWT>, "refresh_token": <opaque>, "token_type": "Bearer",
     "expires_in": 3600, "expiration": <epoch s>, "scope": "ibm openid"}

Failures have IAM's shape, ``{"errorCode", "errorMessage", "context": {"requestId"}}``: 400
for a malformed request or a bad API key / refresh token (as IAM answers), 503 while the
instance's crypto unit is sealed. A client's mistake is never a 5xx.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kyok.api.audit import note_principal
from kyok.auth import AuthService, InvalidApiKey, InvalidRefreshToken, TokenGrant
from kyok.errors import KyokError

__all__ = [
    "APIKEY_GRANT",
    "MAX_FORM_BYTES",
    "REFRESH_GRANT",
    "build_iam_router",
]

log = logging.getLogger("kyok.api.iam")

APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
REFRESH_GRANT = "refresh_token"
MAX_FORM_BYTES = 16 * 1024
_MAX_FIELDS = 32
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Codes in IAM's style. BXNIM0415E is IAM's own for an unknown API key; the others are
#: kyok's picks in the same family.
MISSING_PROPERTY = "BXNIM0109E"
INVALID_PROPERTY = "BXNIM0106E"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_ENDPOINT_DOC = """\
Exchange an API key (or a refresh token) for an access token, as IBM Cloud IAM does.

Form fields: `grant_type` = `urn:ibm:params:oauth:grant-type:apikey` with `apikey`, or
`refresh_token` with `refresh_token`. Other fields and HTTP Basic credentials are ignored.
The access token is a JWT (EdDSA) for the API key's instance; send it as
`Authorization: Bearer <access_token>` together with `Bluemix-Instance`.
"""


class _IamFailure(Exception):
    """A request the endpoint refuses before asking the auth service."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _request_id(request: Request) -> str:
    """The request id the server assigned, or one the client sent, or a new one."""
    state_id = getattr(request.state, "request_id", None)
    candidates: Sequence[object] = (
        state_id,
        request.headers.get("x-request-id"),
        request.headers.get("x-correlation-id"),
    )
    for value in candidates:
        if isinstance(value, str) and _REQUEST_ID_RE.fullmatch(value):
            return value
    return str(uuid.uuid4())


def iam_error(status: int, code: str, message: str, request_id: str) -> JSONResponse:
    """An error in IAM's shape.

    Args:
        status: the HTTP status.
        code: ``errorCode``.
        message: ``errorMessage`` (never a secret).
        request_id: ``context.requestId``.

    Returns:
        The response.
    """
    body = {"errorCode": code, "errorMessage": message, "context": {"requestId": request_id}}
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _IamFailure(400, INVALID_PROPERTY, "The request body is too large.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _IamFailure(400, INVALID_PROPERTY, "The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _malformed() -> _IamFailure:
    return _IamFailure(
        400, INVALID_PROPERTY, "The request body is not a form (application/x-www-form-urlencoded)."
    )


async def _read_form(request: Request) -> list[tuple[str, str]]:
    """The request's fields, in order (duplicates kept, to be refused by the caller)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=_MAX_FIELDS)
        except Exception:  # python-multipart raises several types for bad input
            raise _malformed() from None
        fields = []
        for name, value in form.multi_items():
            if not isinstance(value, str):
                raise _malformed()
            fields.append((name, value))
        return fields
    raw = await _read_body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed() from None
    if text.lstrip().startswith("{"):
        return _json_fields(text)
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (ValueError, UnicodeDecodeError):
        raise _malformed() from None


def _json_fields(text: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed() from None
    if not isinstance(data, dict) or len(data) > _MAX_FIELDS:
        raise _malformed()
    return [(k, v) for k, v in data.items() if isinstance(v, str)]


def _field(fields: list[tuple[str, str]], name: str) -> str:
    values = [v for k, v in fields if k == name]
    if not values or not values[0]:
        raise _IamFailure(400, MISSING_PROPERTY, f"Property missing or empty: {name}.")
    if len(values) > 1:
        raise _IamFailure(400, INVALID_PROPERTY, f"Property given more than once: {name}.")
    return values[0]


def _grant_body(grant: TokenGrant) -> dict[str, object]:
    return {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "token_type": grant.token_type,
        "expires_in": grant.expires_in,
        "expiration": grant.expiration,
        "scope": grant.scope,
    }


def build_iam_router(auth: AuthService) -> APIRouter:
    """The token endpoints over ``auth``.

    Args:
        auth: the authentication service.

    Returns:
        A router with ``POST /identity/token`` and ``POST /oidc/token`` (no prefix).
    """
    router = APIRouter(tags=["IAM tokens"])

    async def token(request: Request) -> JSONResponse:
        request_id = _request_id(request)
        try:
            fields = await _read_form(request)
            grant_type = _field(fields, "grant_type")
            if grant_type == APIKEY_GRANT:
                api_key = _field(fields, "apikey")
                grant = await run_in_threadpool(auth.issue_token, api_key)
            elif grant_type == REFRESH_GRANT:
                refresh_token = _field(fields, "refresh_token")
                grant = await run_in_threadpool(auth.refresh, refresh_token)
            else:
                raise _IamFailure(
                    400,
                    INVALID_PROPERTY,
                    f"Unsupported grant_type: use {APIKEY_GRANT} or {REFRESH_GRANT}.",
                )
        except _IamFailure as exc:
            return iam_error(exc.status, exc.code, exc.message, request_id)
        except (InvalidApiKey, InvalidRefreshToken) as exc:
            return iam_error(400, exc.code, exc.message, request_id)
        except KyokError as exc:
            if exc.status >= 500 and exc.status != 503:
                log.error("token request %s failed: %s (%s)", request_id, exc.code, exc.message)
                return iam_error(500, exc.code, "The token could not be issued.", request_id)
            return iam_error(exc.status, exc.code, exc.message, request_id)
        except Exception:
            log.exception("token request %s failed", request_id)
            return iam_error(500, "BXNIM0500E", "The token could not be issued.", request_id)
        if grant.principal_id is not None and grant.instance_id is not None:
            note_principal(grant.instance_id, grant.principal_id, grant.principal_kind)
        return JSONResponse(_grant_body(grant), headers=_NO_STORE)

    for path in ("/identity/token", "/oidc/token"):
        router.add_api_route(
            path,
            token,
            methods=["POST"],
            summary="Get an access token (IAM-compatible)",
            description=_ENDPOINT_DOC,
            response_class=JSONResponse,
            responses={
                200: {"description": "The tokens"},
                400: {"description": "Malformed request, or bad API key / refresh token"},
                503: {"description": "The instance's crypto unit is sealed"},
            },
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["grant_type"],
                                "properties": {
                                    "grant_type": {
                                        "type": "string",
                                        "enum": [APIKEY_GRANT, REFRESH_GRANT],
                                    },
                                    "apikey": {"type": "string"},
                                    "refresh_token": {"type": "string"},
                                    "response_type": {"type": "string"},
                                },
                            }
                        }
                    },
                }
            },
        )
    return router
