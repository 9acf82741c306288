"""Every API call on the record: the audit middleware.

:class:`AuditMiddleware` sits inside :class:`~kyok.api.middleware.RequestContextMiddleware`
(which gives each request its ids) and outside everything that serves requests. For each call
under ``/api/v2``, ``/identity`` and ``/oidc`` it

* puts a :class:`~kyok.kms.ledger.RequestAudit` in the request's context, which the
  authentication step fills in (who, with what credential, in which instance) and the key
  service marks as recorded when it wrote the call's event together with its change;
* holds the response back until it is complete, then — unless the change already carried
  the event — writes one event for the call (reads, wrap/unwrap/rewrap, and every failure,
  including failed sign-ins) through the node's group committer and waits until the batch
  holding it is durable;
* if the event cannot be written, answers 503 ``AUDIT_UNAVAILABLE_ERR`` instead of the
  response (fail closed): nothing is served that is not on the record. The one exception is
  an instance that chose to fail open (:mod:`kyok.kms.audit_settings`): its wrap, unwrap and
  rewrap responses go out and their events wait in memory until the ledger is back.

The event names the action (``kms.secrets.wrap``, ``kms.keys.read``, …), the outcome and the
reason code of a failure (taken from the error envelope), the initiator, the target (the key id
from the path, the instance, the token endpoint) and the request and correlation ids. Never a
header value, a body, a query string or a secret.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyok.api.errors import internal_error_response, kyok_error_response
from kyok.api.operations import current_operation
from kyok.auth.context import AuthContext
from kyok.kms.audit_settings import FAIL_OPEN_ACTIONS
from kyok.kms.ledger import (
    SYSTEM_LEDGER,
    AuditEvent,
    AuditUnavailable,
    ChainLink,
    EventWriter,
    RequestAudit,
    call_event,
    current_request,
)

__all__ = [
    "AuditMiddleware",
    "CallRecorder",
    "action_of",
    "note_caller",
    "note_instance",
    "note_principal",
    "request_audit_of",
    "target_id_of",
]

log = logging.getLogger("kyok.audit")

_AUDITED = ("/api/v2/", "/identity/", "/oidc/")
_ID_RE = re.compile(r"[A-Za-z0-9._:@/-]{1,256}")

#: Route operation name -> audit action.
_ACTIONS: dict[str, str] = {
    "wrap": "kms.secrets.wrap",
    "unwrap": "kms.secrets.unwrap",
    "rewrap": "kms.secrets.rewrap",
    "batch_wrap": "kms.secrets.batch-wrap",
    "batch_unwrap": "kms.secrets.batch-unwrap",
    "batch_rewrap": "kms.secrets.batch-rewrap",
    "batch_generate": "kms.secrets.batch-generate",
    "create_key": "kms.keys.create",
    "create_key_with_policy_overrides": "kms.keys.create",
    "list_keys": "kms.keys.list",
    "count_keys": "kms.keys.list",
    "get_key": "kms.keys.read",
    "get_key_metadata": "kms.keys.read-metadata",
    "patch_key": "kms.keys.patch",
    "delete_key": "kms.keys.delete",
    "purge_key": "kms.keys.purge",
    "restore_key": "kms.keys.restore",
    "list_key_versions": "kms.keys.list-versions",
    "rotate": "kms.keys.rotate",
    "disable": "kms.keys.disable",
    "enable": "kms.keys.enable",
    "set_key_for_deletion": "kms.keys.set-for-deletion",
    "unset_key_for_deletion": "kms.keys.unset-for-deletion",
    "sync": "kms.keys.sync",
    "get_key_policies": "kms.policies.read",
    "set_key_policies": "kms.policies.write",
    "get_instance_policies": "kms.instance-policies.read",
    "set_instance_policies": "kms.instance-policies.write",
    "get_allowed_ip_port": "kms.instance-policies.read",
    "create_alias": "kms.aliases.create",
    "delete_alias": "kms.aliases.delete",
    "list_key_rings": "kms.key-rings.list",
    "create_key_ring": "kms.key-rings.create",
    "delete_key_ring": "kms.key-rings.delete",
    "create_import_token": "kms.import-token.create",
    "get_import_token": "kms.import-token.read",
    "list_registrations": "kms.registrations.list",
    "create_registration": "kms.registrations.create",
    "replace_registration": "kms.registrations.replace",
    "update_registration": "kms.registrations.update",
    "delete_registration": "kms.registrations.delete",
}


def action_of(scope: Scope) -> tuple[str, str]:
    """The audit action and target type of the request in ``scope`` (after it was served)."""
    name = current_operation(scope).name
    if name in _ACTIONS:
        action = _ACTIONS[name]
        kind = "kms/instance" if ".instance-policies." in action else "kms/key"
        if ".key-rings." in action:
            kind = "kms/key_ring"
        elif ".import-token." in action:
            kind = "kms/import_token"
        return action, kind
    path: str = scope.get("path", "")
    method = str(scope.get("method", "GET")).lower()
    route = getattr(scope.get("route"), "path", None) or ""
    if path.startswith(("/identity/", "/oidc/")):
        return "iam.tokens.create", "auth/token"
    if path.startswith("/api/v2/kyok/unit"):
        return f"unit.{_slug(route, '/api/v2/kyok/unit') or 'status'}.{method}", "unit"
    if path.startswith("/api/v2/kyok/audit"):
        return f"audit.{_slug(route, '/api/v2/kyok/audit') or 'events'}.{method}", "audit/ledger"
    if path.startswith("/api/v2/kyok/"):
        return f"iam.{_slug(route, '/api/v2/kyok') or 'admin'}.{method}", "auth/principal"
    return f"kms.request.{method}", "kms/resource"


def _slug(route: str, prefix: str) -> str:
    parts = [p for p in route.removeprefix(prefix).split("/") if p and not p.startswith("{")]
    return "-".join(re.sub(r"[^a-z0-9_-]", "-", p.lower()) for p in parts)


def note_instance(instance_id: str, **detail: str) -> None:
    """Put the current request's event in ``instance_id``'s ledger, with ``detail`` (short,
    non-secret facts) added to it."""
    request = current_request.get()
    if request is None:
        return
    request.instance_id = instance_id
    request.detail.extend(detail.items())


def request_audit_of(scope: Scope, credential: str) -> RequestAudit:
    """A call's :class:`RequestAudit` from its scope: the ids the request-context middleware
    chose, the client's address, and how it authenticates."""
    state = scope.get("state", {})
    client = scope.get("client")
    return RequestAudit(
        request_id=state.get("request_id"),
        correlation_id=state.get("correlation_id"),
        address=client[0] if client else None,
        credential=credential,
    )


def note_principal(instance_id: str, principal_id: str, kind: str | None) -> None:
    """Record who a credential exchange turned out to be (the token endpoints)."""
    request = current_request.get()
    if request is None:
        return
    request.instance_id = instance_id
    request.principal_id = principal_id
    request.principal_type = kind or "principal"


def note_caller(ctx: AuthContext, credential: str = "token") -> None:
    """Record who the current request turned out to be (called right after authentication)."""
    note_principal(ctx.instance_id, ctx.principal.id, ctx.principal.kind.value)
    request = current_request.get()
    if request is not None:
        request.credential = credential


class CallRecorder:
    """Writes the events of calls and waits until they are durable (fail closed, or open for
    an instance that chose it). Shared by :class:`AuditMiddleware` and the data-plane fast
    path, which records its own calls (it knows everything the event needs first-hand).

    Args:
        writer: the node's group committer.
        instance_exists: whether an instance id names a real instance (events of callers who
            named an unknown one go to the system ledger).
        fail_open: whether an instance lets wrap/unwrap/rewrap through without the ledger.
    """

    def __init__(
        self,
        writer: EventWriter,
        instance_exists: Callable[[str], bool],
        fail_open: Callable[[str], bool] = lambda _instance: False,
    ) -> None:
        self.writer = writer
        self.instance_exists = instance_exists
        self.fail_open = fail_open

    def ledger_for(self, instance_id: str | None) -> str:
        """The ledger of a call that named ``instance_id`` (the system ledger for none, or for
        an instance that does not exist)."""
        if instance_id is None or not _ID_RE.fullmatch(instance_id):
            return SYSTEM_LEDGER
        return instance_id if self.instance_exists(instance_id) else SYSTEM_LEDGER

    async def record(self, event: AuditEvent) -> None:
        """Write ``event`` and wait until it is durable.

        Raises:
            AuditUnavailable: it could not be written, and the call may not fail open.
        """
        try:
            await self.writer.submit_async(event)
        except AuditUnavailable:
            if not self.served_open(event):
                raise

    def submit_then(self, event: AuditEvent, done: Callable[[bool], None]) -> None:
        """Queue ``event`` from the running event loop; ``done`` runs on that loop with True
        once it is durable (or the call is served fail-open, see :meth:`served_open`), False
        when the call must be refused."""

        def settled(link: ChainLink | None) -> None:
            done(link is not None or self.served_open(event))

        self.writer.submit_then(event, settled)

    def served_open(self, event: AuditEvent) -> bool:
        """After ``event`` could not be written: whether its call is served anyway (a wrap,
        unwrap or rewrap of an instance that fails open). If so, the event waits in memory
        until the ledger takes writes again."""
        ledger = event.instance_id
        if event.action in FAIL_OPEN_ACTIONS and ledger != SYSTEM_LEDGER and self.fail_open(ledger):
            log.warning("audit ledger unavailable: %s served fail-open", event.action)
            self.writer.defer(event)
            return True
        return False


def target_id_of(value: object) -> str:
    """A path's id as an event target id ("-" if it could not be one)."""
    return value if isinstance(value, str) and _ID_RE.fullmatch(value) else "-"


class AuditMiddleware:
    """See the module docstring.

    Args:
        app: the wrapped application.
        writer: the node's group committer.
        instance_exists: whether an instance id names a real instance (events of callers who
            named an unknown one go to the system ledger).
    """

    def __init__(
        self,
        app: ASGIApp,
        recorder: CallRecorder,
        self_recording: Callable[[Scope], bool] = lambda _scope: False,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.self_recording = self_recording

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(_AUDITED)
            or self.self_recording(scope)
        ):
            await self.app(scope, receive, send)
            return
        request = request_audit_of(scope, _credential_kind(scope))
        token = current_request.set(request)
        held: list[Message] = []
        finished = False

        async def hold(message: Message) -> None:
            nonlocal finished
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        try:
            await self.app(scope, receive, hold)
        except Exception:
            # An unexpected error is a failure like any other: answer 500 and record it.
            log.exception("request %s failed with an unexpected error", request.request_id)
            held.clear()
            finished = False
            await internal_error_response(scope)(scope, receive, hold)
        finally:
            current_request.reset(token)
        if not held:
            return  # the client went away before an answer; nothing was served
        if finished and not request.recorded:
            try:
                await self.recorder.record(self._event(scope, request, held))
            except AuditUnavailable as exc:
                await kyok_error_response(scope, exc)(scope, receive, send)
                return
        for message in held:
            await send(message)

    def _event(self, scope: Scope, request: RequestAudit, held: list[Message]) -> AuditEvent:
        """The call's event, from what was served."""
        start = held[0]
        status = int(start.get("status", 500)) if start["type"] == "http.response.start" else 500
        action, target_type = action_of(scope)
        reason = _reason_code(held) if status >= 400 else None
        ledger = self.recorder.ledger_for(
            request.instance_id or _header(scope, b"bluemix-instance")
        )
        params = scope.get("path_params") or {}
        target_id = target_id_of(params.get("id") or _fast_path_id(scope) or ledger)
        return call_event(
            request,
            instance_id=ledger,
            action=action,
            target_id=target_id,
            target_type=target_type,
            status=status,
            reason_code=reason,
            at=datetime.now(UTC),
        )


def _fast_path_id(scope: Scope) -> str | None:
    match = re.fullmatch(r"/api/v2/keys/([^/]+)(?:/.*)?", str(scope.get("path", "")))
    return match.group(1) if match else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text = value.decode("latin-1").strip()
            return text or None
    return None


def _credential_kind(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    if path.startswith(("/identity/", "/oidc/")):
        return "api_key"
    if path.startswith("/api/v2/kyok/unit"):
        return "admin_signature"
    return "token"


def _reason_code(held: list[Message]) -> str | None:
    """The first ``reasons[].code`` of a Key Protect error envelope (or an IAM ``errorCode``)."""
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    if len(body) > 65536:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    code = _find_code(data, depth=0)
    return code if isinstance(code, str) and re.fullmatch(r"[A-Z0-9_]{1,64}", code) else None


def _find_code(data: Any, depth: int) -> object:
    if depth > 4:
        return None
    if isinstance(data, dict):
        reasons = data.get("reasons")
        if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
            return reasons[0].get("code")
        if isinstance(data.get("errorCode"), str):
            return data["errorCode"]
        for key in ("resources", "errors"):
            found = _find_code(data.get(key), depth + 1)
            if found is not None:
                return found
    elif isinstance(data, list) and data:
        return _find_code(data[0], depth + 1)
    return None
