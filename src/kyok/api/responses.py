"""Response helpers and the error envelope's shape, shared by every adapter under ``/api``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kyok.api import openapi

__all__ = [
    "JSON",
    "CollectionMetadata",
    "ErrorCollection",
    "ErrorReason",
    "ErrorResource",
    "ErrorTarget",
    "error_responses",
    "json_response",
    "no_content",
]

JSON = "application/json"


def json_response(body: Any, status: int = 200, media_type: str = JSON) -> JSONResponse:
    """A JSON response with an explicit content type.

    Args:
        body: JSON-ready content.
        status: the HTTP status.
        media_type: the content type.

    Returns:
        The response.
    """
    return JSONResponse(body, status_code=status, media_type=media_type)


def no_content() -> Response:
    """204 without a body."""
    return Response(status_code=204)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionMetadata(_Wire):
    """The ``metadata`` of a collection."""

    collectionType: str = Field(examples=["application/vnd.ibm.kms.key+json"])
    collectionTotal: int = Field(ge=0, description="number of elements in `resources`")
    totalCount: int | None = Field(
        default=None, ge=0, description="all matches, ignoring limit/offset (`?totalCount=true`)"
    )


class ErrorTarget(_Wire):
    type: Literal["field", "parameter", "header"]
    name: str


class ErrorReason(_Wire):
    code: str
    message: str
    status: int
    moreInfo: str
    target: ErrorTarget | None = None


class ErrorResource(_Wire):
    errorMsg: str
    reasons: list[ErrorReason]


class ErrorCollection(_Wire):
    """Every error (Key Protect reference §6)."""

    metadata: CollectionMetadata
    resources: list[ErrorResource] = Field(min_length=1, max_length=1)


_ERROR_TEXT = {
    400: "Bad input: a malformed body, field, parameter or header",
    401: "Missing, malformed, expired or other-instance credentials",
    403: "The caller's roles do not allow this",
    404: "Not found in the instance (key, alias, key ring, unit)",
    409: "The current state refuses the request",
    410: "The key is destroyed",
    413: "The body is too large",
    422: "The ciphertext cannot be unwrapped (damaged, another key's, other AAD)",
    503: "The instance's crypto unit is sealed",
}


def error_responses(*statuses: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries for error statuses (always 400 and 503; 401/403 with ``auth``).

    Args:
        statuses: further statuses the route can answer.
        auth: the route authenticates its caller.

    Returns:
        The entries, each with the error envelope.
    """
    wanted = sorted({400, 503, *((401, 403) if auth else ()), *statuses})
    return {s: openapi.response(ErrorCollection, _ERROR_TEXT.get(s, "Error")) for s in wanted}
