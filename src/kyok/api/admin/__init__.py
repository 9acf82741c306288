"""kyok's own ``/api/v2/kyok`` endpoints for principals, API keys, role bindings and whoami."""

from __future__ import annotations

from kyok.api.admin.routes import build_admin_router

__all__ = ["build_admin_router"]
