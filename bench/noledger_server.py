"""BENCH ONLY: ``kyok server`` without the audit middleware, to measure what the ledger costs.

    .venv/bin/python bench/noledger_server.py --dev --data-dir DIR --host 127.0.0.1 --port N

This is **not a product mode** and must never serve anything but a benchmark. kyok has no
setting that turns its audit ledger off, on purpose: a key management service that can be told
to stop auditing is a hole. The acceptance criterion of the ledger ("wrap throughput with the
ledger on is at least 80% of the figure without it, measured in the same run") needs a
"without" figure, and this program is the only place it comes from (bench/wrap.sh starts it
next to the real ``kyok server --dev``).

It runs exactly the ``kyok server`` command: the same Typer entry point
(``kyok.cli.main.app``, arguments as after ``kyok server``), hence the same
``kyok.cli.server.server``, ``open_node``, ``provision_dev`` (``KYOK_DEV_INSTANCE_ID`` /
``KYOK_DEV_API_KEY``), ``build_server``, ``gc.freeze()``, signal handling and shutdown. The one
difference: before the application is built, ``kyok.api.app.AuditMiddleware`` (which
``create_app`` looks up when it is called) is replaced by :class:`PassThrough`, and
``kyok.api.app.CallRecorder`` (through which the data-plane fast path records its own calls) by
:class:`NoRecorder`, so no API call waits for a ledger write. The node, its group committer thread (idle) and the events that key
changes write in their own transactions are all still there; none of that is on a wrap's path.
``create_app`` is wrapped to check that the audit middleware really is absent from the
application it built, and the program refuses to start otherwise.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

import kyok.api.app as app_module

_AUDIT_MIDDLEWARE = app_module.AuditMiddleware
_CREATE_APP = app_module.create_app


class NoRecorder:
    """Stands in for :class:`kyok.api.audit.CallRecorder`: records nothing."""

    def __init__(self, *_args: Any, **_options: Any) -> None:
        pass

    def ledger_for(self, instance_id: str | None) -> str:
        return instance_id or "-"

    async def record(self, _event: Any) -> None:
        return None

    def submit_then(self, _event: Any, done: Any) -> None:
        """Answer at once (the socket-level data plane waits for this call)."""
        asyncio.get_running_loop().call_soon(done, True)

    def served_open(self, _event: Any) -> bool:
        return True


class PassThrough:
    """Stands in for :class:`kyok.api.audit.AuditMiddleware`: same constructor, no audit."""

    def __init__(self, app: ASGIApp, **_options: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _create_app_without_ledger(node: Any) -> Any:
    """``kyok.api.app.create_app``, checked: PassThrough in place of the audit middleware."""
    app = _CREATE_APP(node)
    classes = [m.cls for m in app.user_middleware]
    if _AUDIT_MIDDLEWARE in classes or PassThrough not in classes:
        raise SystemExit(
            "bench/noledger_server.py: could not take the audit middleware out of the "
            f"application (middleware: {[getattr(c, '__name__', c) for c in classes]})"
        )
    print("[bench] NO AUDIT LEDGER: bench-only server, not a product mode", file=sys.stderr)
    return app


def main() -> None:
    app_module.AuditMiddleware = PassThrough  # type: ignore[misc,assignment]
    app_module.CallRecorder = NoRecorder  # type: ignore[misc,assignment]
    app_module.create_app = _create_app_without_ledger  # build_server imports it when called
    from kyok.cli.main import app

    app(args=["server", *sys.argv[1:]], prog_name="kyok")


if __name__ == "__main__":
    main()
