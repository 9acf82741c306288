"""What the Key Protect routes share: media types, headers, authorization, documentation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from starlette.types import Message, Receive

from kyok.api.errors import ClientDisconnected, PayloadTooLarge
from kyok.api.responses import JSON, error_responses, json_response, no_content
from kyok.auth.context import AuthContext
from kyok.auth.roles import Permission
from kyok.kms.keys import KeyView
from kyok.kms.service import KeyService

__all__ = [
    "ACTION_MEDIA",
    "JSON",
    "KEY_MEDIA",
    "KeyId",
    "KeyRingHeader",
    "Media",
    "MediaTypes",
    "PreferHeader",
    "authorize_key",
    "errors",
    "get_media",
    "json_response",
    "no_content",
    "read_body",
]

KEY_MEDIA = "application/vnd.ibm.kms.key+json"
ACTION_MEDIA = "application/vnd.ibm.kms.key_action+json"


@dataclass(frozen=True, slots=True)
class Media:
    """The response content types of one application (reference §1.5; configurable).

    Attributes:
        key: for POST /keys and restore (``application/vnd.ibm.kms.key+json`` by default).
        action: for wrap, unwrap and rewrap (``application/vnd.ibm.kms.key_action+json``).
    """

    key: str = KEY_MEDIA
    action: str = ACTION_MEDIA

    @classmethod
    def choose(cls, vendor: bool) -> Media:
        """Vendor types, or ``application/json`` everywhere."""
        return cls() if vendor else cls(JSON, JSON)

    def response_class(self, media_type: str) -> type[JSONResponse]:
        """A ``JSONResponse`` class whose default content type is ``media_type`` (for docs)."""
        if media_type == JSON:
            return JSONResponse
        return type("VendorJSONResponse", (JSONResponse,), {"media_type": media_type})


KeyId = Annotated[str, Path(description="The key's v4 UUID or one of its aliases")]
KeyRingHeader = Annotated[
    str | None,
    Header(
        alias="X-Kms-Key-Ring",
        description="On create: the key ring of the new key. On GET and list: only keys in this "
        "ring. On PATCH: the ring the key is in now.",
    ),
]
PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description="`return=representation` (default on create) or `return=minimal`",
    ),
]


def authorize_key(
    ctx: AuthContext, service: KeyService, permission: Permission, id_or_alias: str
) -> KeyView | None:
    """Check ``permission`` on a key; read the key only when the grants need its ring.

    Args:
        ctx: the caller.
        service: the key service.
        permission: what the route needs.
        id_or_alias: the key.

    Returns:
        None when an instance-wide grant covers it; else the key (already read).

    Raises:
        KeyNotFound: the key does not exist in the caller's instance.
        NotAllowed: no grant covers the key.
    """
    if ctx.allows_instance_wide(permission):
        return None
    view = service.get_key(ctx.instance_id, id_or_alias)
    ctx.require(permission, key_ring_id=view.record.key_ring_id, key_id=view.id)
    return view


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries for the error statuses of an authenticated route.

    Args:
        statuses: statuses beyond 400, 401, 403 and 503.

    Returns:
        The entries.
    """
    return error_responses(*statuses)


async def get_media(request: Request) -> Media:
    """The application's response content types (``app.state.kp_media``)."""
    media: Media = request.app.state.kp_media
    return media


MediaTypes = Annotated[Media, Depends(get_media)]


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole request body of a raw-ASGI fast path, at most ``limit`` bytes.

    Args:
        receive: the ASGI receive callable.
        declared: the request's Content-Length header, if any.
        limit: the largest body accepted.

    Raises:
        PayloadTooLarge: the declared or the received body is larger than ``limit`` (413).
        ClientDisconnected: the client went away first (499).
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
