"""``GET /health`` and ``GET /metrics`` (public; docs/api-kyok.md, "Health and metrics")."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from kyok import __version__
from kyok.api import openapi
from kyok.api.deps import Node
from kyok.api.metrics import Metrics
from kyok.api.operations import operation
from kyok.api.responses import json_response

__all__ = ["build_router"]

log = logging.getLogger("kyok.api")


class UnitCounts(BaseModel):
    """How many crypto units the node has, and how many are sealed (no ids: /health is public;
    a unit's own state is at ``/api/v2/kyok/unit`` for whoever knows its instance id)."""

    model_config = ConfigDict(extra="forbid")

    total: int
    sealed: int


class Health(BaseModel):
    """``ok`` when every unit is unsealed, ``sealed`` when one is; ``unavailable`` (503) when
    the store does not answer."""

    model_config = ConfigDict(extra="forbid")

    status: str
    version: str
    units: UnitCounts | None = None
    worker: int | None = Field(
        default=None,
        description="which worker process answered (only when the node runs several; "
        "the unit counts are that process's)",
    )


@operation("Health could not be determined")
def health(node: Node) -> Response:
    """Whether the node can serve: the store answers, and which units are sealed."""
    try:
        units = node.unit_console.overview()
    except Exception:
        log.warning("health: the store does not answer", exc_info=True)
        return json_response({"status": "unavailable", "version": __version__}, 503)
    status = "sealed" if any(u.sealed for u in units) else "ok"
    body: dict[str, object] = {
        "status": status,
        "version": __version__,
        "units": {"total": len(units), "sealed": sum(1 for u in units if u.sealed)},
    }
    if node.worker is not None:
        body["worker"] = node.worker
    return json_response(body)


def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


def build_router() -> APIRouter:
    """The health and metrics routes.

    Returns:
        The router.
    """
    router = APIRouter(tags=["kyok: operations"])
    router.add_api_route(
        "/health",
        health,
        methods=["GET"],
        responses={
            200: openapi.response(Health, "The node and its units"),
            503: openapi.response(Health, "The store does not answer"),
        },
        operation_id="health",
    )
    router.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return router
