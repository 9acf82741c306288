"""IBM IAM's token endpoints (``/identity/token``, ``/oidc/token``) over kyok's auth service."""

from __future__ import annotations

from kyok.api.iam.routes import build_iam_router

__all__ = ["build_iam_router"]
