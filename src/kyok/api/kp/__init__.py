"""The Key Protect v2 adapter (``/api/v2/...``): keys, actions, key rings, aliases, versions,
import tokens, key and instance policies, dual-authorisation actions, sync and registrations.
"""

from __future__ import annotations

from fastapi import APIRouter

from kyok.api.deps import CorrelationHeaders
from kyok.api.kp import (
    routes_actions,
    routes_aliases,
    routes_import_token,
    routes_keys,
    routes_policies,
    routes_registrations,
    routes_rings,
)
from kyok.api.kp._common import Media

__all__ = ["Media", "build_router"]


def build_router(media: Media) -> APIRouter:
    """The ``/api/v2`` router of the Key Protect API.

    Args:
        media: the response content types (vendor types or ``application/json``).

    Returns:
        The router.
    """
    router = APIRouter(prefix="/api/v2", tags=["Key Protect"], dependencies=[CorrelationHeaders])
    # Static paths before templated ones that could match them (/keys/registrations).
    routes_rings.register(router, media)
    routes_import_token.register(router, media)
    routes_registrations.register(router, media)
    routes_keys.register(router, media)
    routes_policies.register(router, media)
    routes_aliases.register(router, media)
    routes_actions.register(router, media)
    return router
