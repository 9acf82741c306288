"""kyok's crypto-unit endpoints (``/api/v2/kyok/unit``): status, signed ceremony commands,
transcript export and master-key re-encryption (docs/api-kyok.md)."""

from __future__ import annotations

from kyok.api.unit.routes import build_router

__all__ = ["build_router"]
