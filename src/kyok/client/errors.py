"""The errors the kyok SDK raises.

Every failure of a call is a :class:`ClientError`. Errors the service answers are mapped from
the HTTP status (and, for 503, from nothing else: a sealed unit and a store that does not answer
both mean "try later"); the Key Protect error body (``resources[0].reasons[0].code``) gives
``code`` and ``message``; IAM-shaped token errors (``errorCode``/``errorMessage``) are read too.
Network failures are wrapped once, where they enter, as :class:`ConnectionFailed`::

    ClientError                 .status .code .message .correlation_id .target
    ├── ConnectionFailed        could not reach the service (connect, TLS, timeout, protocol)
    ├── InvalidResponse         the service answered 2xx with a body the SDK cannot read
    └── ApiError                the service answered with an error status
        ├── BadRequest          400  the request is malformed or out of range
        ├── Unauthorized        401  no, bad or expired credentials (also a refused API key)
        ├── Forbidden           403  authenticated, but the role does not allow it
        ├── NotFound            404  no such key, ring, alias, principal… in this instance
        ├── Conflict            409  valid, but the current state refuses it (also too early)
        ├── Gone                410  the key was destroyed
        ├── Unprocessable       422  well-formed but cannot be processed (e.g. bad ciphertext)
        ├── ServiceUnavailable  503  the crypto unit is sealed or the service is not ready
        └── ServerError         5xx  any other server failure

Messages come from the service or describe the transport; they never contain an API key, a
token, a DEK or a ciphertext.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "InvalidResponse",
    "NotFound",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "error_from_response",
]


class ClientError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        message: what failed, as the service (or the transport) said it.
        status: the HTTP status, or None when no response arrived.
        code: the Key Protect reason code (``KEY_NOT_FOUND_ERR``…), the IAM error code, or a
            generic code for the class.
        correlation_id: the ``Correlation-Id`` of the request (echoed by the service, else the
            one the SDK sent), to find the call in the server's logs and audit trail.
        target: the request field the service blamed, if it named one.
    """

    default_code = "CLIENT_ERR"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.default_code
        self.correlation_id = correlation_id
        self.target = target

    def __str__(self) -> str:
        where = f" [{self.status}]" if self.status is not None else ""
        return f"{self.message} ({self.code}){where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, correlation_id={self.correlation_id!r})"
        )


class ConnectionFailed(ClientError):
    """The service could not be reached: refused connection, DNS, TLS, timeout, broken reply."""

    default_code = "CONNECTION_FAILED"


class InvalidResponse(ClientError):
    """The service answered success with a body that is not what the API promises."""

    default_code = "INVALID_RESPONSE"


class ApiError(ClientError):
    """The service answered with an error status."""

    default_code = "API_ERR"


class BadRequest(ApiError):
    """400: the request is malformed or a value is out of range."""

    default_code = "BAD_BODY_ERR"


class Unauthorized(ApiError):
    """401: no, bad or expired credentials, or an API key the token endpoint refused."""

    default_code = "UNAUTHORIZED_ERR"


class Forbidden(ApiError):
    """403: the caller is authenticated but its roles do not allow the call."""

    default_code = "FORBIDDEN_ERR"


class NotFound(ApiError):
    """404: nothing by that id (or alias) in the caller's instance."""

    default_code = "NOT_FOUND_ERR"


class Conflict(ApiError):
    """409: the current state refuses the call (wrong key state, too early, duplicate…)."""

    default_code = "CONFLICT_ERR"


class Gone(ApiError):
    """410: the key has been destroyed."""

    default_code = "KEY_DELETED_ERR"


class Unprocessable(ApiError):
    """422: well-formed but cannot be processed (a ciphertext that does not open, wrong AAD…)."""

    default_code = "UNPROCESSABLE_ERR"


class ServiceUnavailable(ApiError):
    """503: the instance's crypto unit is sealed, or the service is not ready; try later."""

    default_code = "SERVICE_UNAVAILABLE_ERR"


class ServerError(ApiError):
    """Any other 5xx: a failure inside the service."""

    default_code = "SERVER_ERR"


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Unprocessable,
    503: ServiceUnavailable,
}


def _error_class(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if status == 405 or status == 413 or status == 415:
        return BadRequest
    return ApiError


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_body(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, target) from a Key Protect, IAM or framework error body."""
    if not isinstance(body, dict):
        return None, None, None
    resources = body.get("resources")
    if isinstance(resources, list) and resources and isinstance(resources[0], dict):
        first = resources[0]
        code = message = target = None
        reasons = first.get("reasons")
        if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
            reason = reasons[0]
            code = _str(reason.get("code"))
            message = _str(reason.get("message"))
            tgt = reason.get("target")
            if isinstance(tgt, dict):
                target = _str(tgt.get("name"))
        return code, message or _str(first.get("errorMsg")), target
    if "errorCode" in body or "errorMessage" in body:  # IAM token endpoint
        return _str(body.get("errorCode")), _str(body.get("errorMessage")), None
    detail = body.get("detail")  # a framework-level error (FastAPI/Starlette)
    if isinstance(detail, str):
        return None, detail, None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = detail[0].get("loc")
        target = str(loc[-1]) if isinstance(loc, list) and loc else None
        return None, _str(detail[0].get("msg")), target
    return None, None, None


def error_from_response(response: httpx.Response, correlation_id: str | None = None) -> ApiError:
    """The :class:`ApiError` for an error ``response`` (status ≥ 400).

    Args:
        response: the response; its body is read if it has not been.
        correlation_id: the ``Correlation-Id`` the request carried, used when the response does
            not echo one.

    Returns:
        An instance of the class for the status, carrying code, message and target from the
        body when it has them, else the HTTP reason phrase.
    """
    try:
        response.read()
        body: Any = response.json() if response.content else None
    except (ValueError, httpx.StreamError):
        body = None
    code, message, target = _parse_body(body)
    cls = _error_class(response.status_code)
    return cls(
        message or response.reason_phrase or f"HTTP {response.status_code}",
        status=response.status_code,
        code=code,
        correlation_id=response.headers.get("correlation-id") or correlation_id,
        target=target,
    )
