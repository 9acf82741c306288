"""Every failure as Key Protect's error envelope (reference §6).

One handler for :class:`~kyok.errors.KyokError` covers the whole tree: Starlette finds it by
walking the exception's MRO, and the error's class fixes the HTTP status and reason code. Three
more turn FastAPI's request-validation errors, Starlette's 404/405 and anything unexpected into
the same envelope::

    {"metadata": {"collectionType": "application/vnd.ibm.kms.error+json", "collectionTotal": 1},
     "resources": [{"errorMsg": "Not Found: Key could not be retrieved: Please see `reasons` for
                                 more details (KEY_NOT_FOUND_ERR)",
                    "reasons": [{"code": "KEY_NOT_FOUND_ERR", "message": "...", "status": 404,
                                 "moreInfo": "https://cloud.ibm.com/apidocs/key-protect",
                                 "target": {"type": "field", "name": "plaintext"}}]}]}

``target`` appears when one input is to blame; its name is the wire name on the route that
failed (:mod:`kyok.api.operations`). A 500 never carries detail: the client gets the request id,
the log gets the cause (503 says what is unavailable). Client mistakes never produce a 5xx.
"""

from __future__ import annotations

import http
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from kyok.api.operations import Target, current_operation
from kyok.errors import KyokError
from kyok.kms.errors import InvalidField, InvalidQueryParam

__all__ = [
    "ERROR_TYPE",
    "MORE_INFO",
    "ClientDisconnected",
    "PayloadTooLarge",
    "error_body",
    "install_error_handlers",
    "internal_error_response",
]

log = logging.getLogger("kyok.api")

ERROR_TYPE = "application/vnd.ibm.kms.error+json"
MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"


class ClientDisconnected(KyokError):
    """The client went away before its request was read in full; nobody reads the answer.

    Recorded as 499 (the access log and metrics show it), never as a server error."""

    code = "CLIENT_CLOSED_REQUEST"
    status = 499

    def __init__(self) -> None:
        super().__init__("The client closed the connection before the request was read")


class PayloadTooLarge(KyokError):
    """The request body is larger than the server accepts."""

    code = "BODY_TOO_LARGE_ERR"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    failure: str,
    target: Target | None = None,
) -> dict[str, Any]:
    """The error envelope.

    Args:
        status: the HTTP status.
        code: the reason code.
        message: the reason's message.
        failure: what failed ("Key could not be created").
        target: ``(type, name)`` of the input to blame, if one is.

    Returns:
        The JSON-ready body.
    """
    reason: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status,
        "moreInfo": MORE_INFO,
    }
    if target is not None:
        reason["target"] = {"type": target[0], "name": target[1]}
    error_msg = f"{_phrase(status)}: {failure}: Please see `reasons` for more details ({code})"
    return {
        "metadata": {"collectionType": ERROR_TYPE, "collectionTotal": 1},
        "resources": [{"errorMsg": error_msg, "reasons": [reason]}],
    }


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", "-"))


def _message(exc: KyokError, target: Target | None) -> str:
    """The reason's message; input errors name the wire field rather than the service's."""
    if target is not None and isinstance(exc, InvalidField | InvalidQueryParam):
        return f"The {target[0]} `{target[1]}` is invalid: {exc.reason}"
    return exc.message


def kyok_error_response(scope: Scope, exc: KyokError) -> JSONResponse:
    """Render a :class:`KyokError` (any class in the tree).

    Args:
        scope: the request's scope (for the operation and the request id).
        exc: the error.

    Returns:
        The error response.
    """
    op = current_operation(scope)
    status = exc.status
    if status == 500:
        log.error(
            "request %s: %s (%s): %s", _request_id(scope), type(exc).__name__, exc.code, exc.message
        )
        return internal_error_response(scope, code=exc.code)
    target = op.target(exc.target) if exc.target else None
    body = error_body(status, exc.code, _message(exc, target), failure=op.failure, target=target)
    return JSONResponse(body, status_code=status)


def internal_error_response(scope: Scope, *, code: str = "INTERNAL_SERVER_ERR") -> JSONResponse:
    """A 500 without detail; the request id lets an operator find the cause in the log.

    Args:
        scope: the request's scope.
        code: the reason code.

    Returns:
        The response.
    """
    op = current_operation(scope)
    message = f"The server could not complete the request (request id {_request_id(scope)})"
    body = error_body(500, code, message, failure=op.failure)
    return JSONResponse(body, status_code=500)


async def _on_kyok_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KyokError)
    return kyok_error_response(request.scope, exc)


_LOC_TARGET: dict[str, Any] = {"query": "parameter", "path": "parameter", "header": "header"}


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    op = current_operation(request.scope)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ())]
    where = loc[0] if loc else "body"
    name = loc[-1] if len(loc) > 1 else where
    kind = _LOC_TARGET.get(where, "field")
    code = "BAD_BODY_ERR" if kind == "field" else "INVALID_QUERY_PARAM_ERR"
    if kind == "header":
        code = "INVALID_HEADER_ERR"
    message = f"The {kind} `{name}` is invalid: {first.get('msg', 'invalid value')}"
    body = error_body(400, code, message, failure=op.failure, target=(kind, name))
    return JSONResponse(body, status_code=400)


_HTTP_CODES = {
    404: ("NOT_FOUND_ERR", "The requested resource does not exist"),
    405: ("METHOD_NOT_ALLOWED_ERR", "The method is not allowed on this resource"),
}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    op = current_operation(request.scope)
    status = exc.status_code
    code, message = _HTTP_CODES.get(status, (f"HTTP_{status}_ERR", _phrase(status)))
    body = error_body(status, code, message, failure=op.failure)
    return JSONResponse(body, status_code=status, headers=dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (unexpected exceptions: see ``kyok.api.middleware``).

    Args:
        app: the application.
    """
    app.add_exception_handler(KyokError, _on_kyok_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
