"""Request bodies of kyok's own endpoints, parsed like Key Protect's: JSON whatever the
``Content-Type``, field names in any case, and every field checked (400 with a reason)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from kyok.errors import InvalidInput, KyokError

__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "JsonObject", "json_object"]

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(KyokError):
    """The request body is larger than these endpoints accept."""

    code = "BODY_TOO_LARGE_ERR"
    status = 413

    def __init__(self) -> None:
        super().__init__(f"The request body is larger than {MAX_BODY_BYTES} bytes")


class JsonObject:
    """A JSON object whose fields are looked up case-insensitively."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._fields: dict[str, Any] = {}
        for key, value in data.items():
            folded = key.casefold()
            if folded in self._fields:
                raise InvalidInput(f"The field `{key}` is given more than once", target=key)
            self._fields[folded] = value

    def get(self, name: str) -> Any:
        """The value of ``name`` (any case), or None."""
        return self._fields.get(name.casefold())

    def require(self, name: str) -> Any:
        """The value of ``name``; 400 when it is missing or null."""
        value = self.get(name)
        if value is None:
            raise InvalidInput(f"The field `{name}` is required", target=name)
        return value


async def json_object(request: Request) -> JsonObject:
    """The body as a JSON object (an empty body, ``null`` and ``{}`` are all empty).

    Raises:
        BodyTooLarge: more than :data:`MAX_BODY_BYTES`.
        InvalidInput: not JSON, or not an object.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return JsonObject({})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("The request body is not valid JSON") from None
    if data is None:
        return JsonObject({})
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object")
    return JsonObject(data)
