"""The application factory: one FastAPI app per node.

Routes: the Key Protect API under ``/api/v2`` (:mod:`kyok.api.kp`), kyok's crypto-unit
endpoints under ``/api/v2/kyok/unit`` (:mod:`kyok.api.unit`), ``/health``, ``/metrics`` and
``/openapi.json``; with the real auth service also IAM's token endpoints (``/identity/token``,
``/oidc/token``: :mod:`kyok.api.iam`) and kyok's access management (``/api/v2/kyok/whoami``,
principals, API keys, role bindings: :mod:`kyok.api.admin`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from kyok import __version__
from kyok.api import openapi
from kyok.api.admin import build_admin_router
from kyok.api.audit import AuditMiddleware, CallRecorder
from kyok.api.batch import build_router as batch_router
from kyok.api.deps import caller
from kyok.api.errors import install_error_handlers
from kyok.api.health import build_router as health_router
from kyok.api.iam import build_iam_router
from kyok.api.kp import Media
from kyok.api.kp import build_router as kp_router
from kyok.api.kp.create_fastpath import KeyCreateFastPath
from kyok.api.kp.fastpath import DataPlane, DataPlaneFastPath, is_fast_path
from kyok.api.ledger import build_router as ledger_router
from kyok.api.metrics import Metrics
from kyok.api.middleware import RequestContextMiddleware
from kyok.api.ports import NodePort
from kyok.api.unit import build_router as unit_router
from kyok.auth import AuthService
from kyok.errors import KyokError

__all__ = ["create_app"]

_DESCRIPTION = """\
kyok speaks IBM Key Protect's v2 API, so the unmodified `keyprotect` clients (Python, Go) and
curl scripts work against it. Every `/api/v2` call needs `Bluemix-Instance`; Key Protect calls
also `Authorization: Bearer <access token>`. Bodies are JSON whatever their `Content-Type`, and
field names match in any case. Every error has the Key Protect envelope
(`errorMsg` + `reasons[{code, message, status, moreInfo, target?}]`).
"""


def create_app(node: NodePort) -> FastAPI:
    """Build the HTTP application of ``node``.

    Args:
        node: the node (``kyok.bootstrap.Node`` or anything with the same attributes). The
            token and access-management endpoints are served when ``node.auth`` is the real
            :class:`~kyok.auth.AuthService` (tests may pass a double that only authenticates).

    Returns:
        The ASGI application (its lifespan does nothing: the server owns the node).
    """
    app = FastAPI(
        title="kyok",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.kp_media = Media.choose(node.settings.server.vendor_content_types)
    app.state.metrics = Metrics(node.unit_console.overview, node.audit_writer.stats)
    install_error_handlers(app)
    app.include_router(health_router())
    if isinstance(node.auth, AuthService):
        app.include_router(build_iam_router(node.auth))
        app.include_router(build_admin_router(node.auth, caller))
    app.include_router(unit_router())
    app.include_router(ledger_router())
    app.include_router(batch_router())
    app.include_router(kp_router(app.state.kp_media))
    # Added first, so it sits inside the request-context middleware (ids, metrics, access log).
    # Every call under /api/v2, /identity and /oidc goes on the audit record (kyok.api.audit);
    # the data-plane fast path records its own calls.
    recorder = CallRecorder(
        node.audit_writer, _instances(node), fail_open=node.audit_settings.fail_open
    )
    # The canonical key creation skips the framework's routing (kyok.api.kp.create_fastpath);
    # innermost, so the audit middleware records it as it records the route.
    app.add_middleware(KeyCreateFastPath, node=node, media=app.state.kp_media)
    # The data plane is also served straight from the socket (kyok.api.fast_protocol), which
    # finds it here.
    app.state.data_plane = DataPlane(node, app.state.kp_media, recorder)
    app.add_middleware(DataPlaneFastPath, plane=app.state.data_plane)
    app.add_middleware(AuditMiddleware, recorder=recorder, self_recording=is_fast_path)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    openapi.install(app)
    return app


def _instances(node: NodePort) -> Callable[[str], bool]:
    """Whether an instance exists; known ones are remembered (instances are never deleted)."""
    known: set[str] = set()

    def exists(instance_id: str) -> bool:
        if instance_id in known:
            return True
        try:
            node.service.get_instance(instance_id)
        except KyokError:
            return False
        known.add(instance_id)
        return True

    return exists
