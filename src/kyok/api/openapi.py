"""Helpers that make the OpenAPI document tell the truth about lenient routes.

Routes read their bodies themselves (any ``Content-Type``, case-insensitive fields) and answer
with vendor content types, so FastAPI cannot infer either. :func:`request_body` and
:func:`response` describe them with the wire models, and :func:`install` adds those models to
``components.schemas``.

A model's schema is generated when the document is first asked for, not when a route names it:
generating them all is a good part of a server's start and most nodes never serve the document.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

__all__ = ["install", "ref", "request_body", "response"]

_SCHEMAS: dict[str, dict[str, Any]] = {}
#: Every model a route named, in the order they were first named: a model is generated once per
#: process, not once per route that names it (~360 times).
_REGISTERED: dict[type[BaseModel], None] = {}
_GENERATED = [0]  # how many of _REGISTERED have their schemas in _SCHEMAS
_LOCK = threading.Lock()


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A ``$ref`` to ``model`` (registered for :func:`install`).

    Args:
        model: a pydantic model.

    Returns:
        ``{"$ref": "#/components/schemas/<Model>"}``.
    """
    _REGISTERED.setdefault(model)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schemas() -> dict[str, dict[str, Any]]:
    """The schemas of every model named so far (and of the models they use), first named first."""
    with _LOCK:
        models = list(_REGISTERED)
        for model in models[_GENERATED[0] :]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                _SCHEMAS.setdefault(name, sub)
            _SCHEMAS.setdefault(model.__name__, schema)
        _GENERATED[0] = len(models)
        return dict(_SCHEMAS)


def request_body(
    model: type[BaseModel],
    media_types: Sequence[str],
    *,
    required: bool,
    description: str,
) -> dict[str, Any]:
    """``openapi_extra`` describing a request body.

    Args:
        model: its shape.
        media_types: the content types clients send (any is accepted; these are documented).
        required: whether a body must be sent.
        description: what it is.

    Returns:
        The ``openapi_extra`` dict.
    """
    schema = ref(model)
    return {
        "requestBody": {
            "required": required,
            "description": description,
            "content": {media: {"schema": schema} for media in media_types},
        }
    }


def response(
    model: type[BaseModel] | None, description: str, media_type: str = "application/json"
) -> dict[str, Any]:
    """A ``responses`` entry.

    Args:
        model: the body's shape, or None for no body.
        description: what it means.
        media_type: the content type sent.

    Returns:
        The entry.
    """
    entry: dict[str, Any] = {"description": description}
    if model is not None:
        entry["content"] = {media_type: {"schema": ref(model)}}
    return entry


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the registered models.

    Args:
        app: the application.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, sub in _schemas().items():
                schemas.setdefault(name, sub)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
