"""kyok's batch data-plane endpoints, ``/api/v2/kyok/keys/{id}/actions/batch-*``
(docs/api-kyok.md, "Batch operations")."""

from __future__ import annotations

from kyok.api.batch.routes import build_router

__all__ = ["build_router"]
