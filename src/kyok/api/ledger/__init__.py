"""kyok's audit-ledger endpoints under ``/api/v2/kyok/audit`` (docs/api-kyok.md, "Audit")."""

from __future__ import annotations

from kyok.api.ledger.routes import build_router

__all__ = ["build_router"]
