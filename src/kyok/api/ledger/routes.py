"""Reading the instance's audit ledger: ``/api/v2/kyok/audit``.

For Managers and for the ``KyokAuditor`` role, which may read the ledger and nothing else
(``kyok.audit.read``). Everything is the caller's instance's (``Bluemix-Instance``)::

    GET /api/v2/kyok/audit/events?afterSeq=&untilSeq=&since=&until=&action=&outcome=&limit=
        -> {"instanceId", "events": [chained event JSON...], "nextAfterSeq": n | null}
    GET /api/v2/kyok/audit/checkpoints?fromSeq=&toSeq=&limit=
        -> {"instanceId", "checkpoints": [checkpoint JSON...]}
    POST /api/v2/kyok/audit/checkpoints
        -> {"instanceId", "checkpoint": checkpoint JSON}  (signed now over the head, or the
           checkpoint already there; lets an export up to "now" end signed)
    GET /api/v2/kyok/audit/head
        -> {"instanceId", "nextSeq", "hash", "checkpointSeq", "checkpointAt"}
    GET /api/v2/kyok/audit/pubkey
        -> {"instanceId", "algorithm": "ed25519", "keyId", "publicKey": PEM}
    GET /api/v2/kyok/audit/settings
    PUT /api/v2/kyok/audit/settings  {"failOpen": true|false}        (Manager)
        -> {"instanceId", "failOpen", "failOpenActions", "updatedAt", "updatedBy"}

Events are returned exactly as stored (a tampered row is returned tampered: finding it is the
verifier's job). ``action`` may repeat or be a comma list; ``since``/``until`` are RFC 3339
times (``until`` exclusive); ``limit`` is 1..1000 (default 100). ``nextAfterSeq`` is the seq to
pass as ``afterSeq`` for the next page, or null on the last one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from kyok.api.deps import Caller, Node
from kyok.api.operations import operation
from kyok.api.responses import error_responses, json_response
from kyok.auth.roles import Permission
from kyok.errors import InvalidInput, Unavailable
from kyok.kms.audit_settings import FAIL_OPEN_ACTIONS
from kyok.kms.ledger import AuditQuery

__all__ = ["PREFIX", "build_router"]

PREFIX = "/api/v2/kyok/audit"
MAX_PAGE = 1000
_ACTION_RE = re.compile(r"[a-z][a-z0-9_.-]{0,127}")


class InvalidAuditQuery(InvalidInput):
    """A malformed audit query parameter."""

    code = "BAD_QUERY_PARAM_ERR"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"The query parameter `{name}` is invalid: {reason}", target=name)


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidAuditQuery(name, "expected an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise InvalidAuditQuery(name, "the time needs a zone (Z or +hh:mm)")
    return parsed.astimezone(UTC)


def _seq(name: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise InvalidAuditQuery(name, "must be 0 or more")
    return value


def _actions(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        for action in value.split(","):
            action = action.strip()
            if not action:
                continue
            if not _ACTION_RE.fullmatch(action):
                raise InvalidAuditQuery("action", "an action is a dotted lowercase name")
            out.append(action)
    return tuple(out)


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_router() -> APIRouter:
    """The ``/api/v2/kyok/audit`` routes."""
    router = APIRouter(prefix=PREFIX, tags=["audit"], responses=error_responses())

    @router.get("/events", summary="Read the instance's audit ledger")
    @operation("Audit events could not be read")
    def events(
        ctx: Caller,
        node: Node,
        after_seq: Annotated[int | None, Query(alias="afterSeq")] = None,
        until_seq: Annotated[int | None, Query(alias="untilSeq")] = None,
        since: str | None = None,
        until: str | None = None,
        action: Annotated[list[str] | None, Query()] = None,
        outcome: str | None = None,
        limit: Annotated[int, Query()] = 100,
    ) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidAuditQuery("limit", f"must be from 1 to {MAX_PAGE}")
        if outcome is not None and outcome not in ("success", "failure"):
            raise InvalidAuditQuery("outcome", "must be success or failure")
        query = AuditQuery(
            ctx.instance_id,
            after_seq=_seq("afterSeq", after_seq),
            until_seq=_seq("untilSeq", until_seq),
            since=_time("since", since),
            until=_time("until", until),
            actions=_actions(action),
            outcome=outcome,
            limit=limit,
        )
        found = node.audit_reader.events_as_stored(query)
        return json_response(
            {
                "instanceId": ctx.instance_id,
                "events": found,
                "nextAfterSeq": found[-1]["seq"] if len(found) == limit else None,
            }
        )

    @router.get("/checkpoints", summary="Read the instance's signed checkpoints")
    @operation("Audit checkpoints could not be read")
    def checkpoints(
        ctx: Caller,
        node: Node,
        from_seq: Annotated[int | None, Query(alias="fromSeq")] = None,
        to_seq: Annotated[int | None, Query(alias="toSeq")] = None,
        limit: Annotated[int, Query()] = 100,
    ) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidAuditQuery("limit", f"must be from 1 to {MAX_PAGE}")
        found = node.audit_reader.checkpoints(
            ctx.instance_id, _seq("fromSeq", from_seq), _seq("toSeq", to_seq), limit
        )
        return json_response(
            {"instanceId": ctx.instance_id, "checkpoints": [c.to_json() for c in found]}
        )

    @router.post("/checkpoints", summary="Sign a checkpoint over the ledger's head now")
    @operation("An audit checkpoint could not be signed")
    def sign_checkpoint(ctx: Caller, node: Node) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        checkpoint = node.audit_reader.sign_now(node.ledger, ctx.instance_id)
        if checkpoint is None:
            head = node.audit_reader.head(ctx.instance_id)
            if head is None or head.next_seq == 0:
                raise InvalidInput("the ledger has no events to sign yet", code="NO_EVENTS_ERR")
            raise Unavailable("the instance's crypto unit is sealed: nothing can sign right now")
        return json_response({"instanceId": ctx.instance_id, "checkpoint": checkpoint.to_json()})

    @router.get("/head", summary="Where the instance's audit ledger stands")
    @operation("The audit head could not be read")
    def head(ctx: Caller, node: Node) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        record = node.audit_reader.head(ctx.instance_id)
        body: dict[str, Any] = {
            "instanceId": ctx.instance_id,
            "nextSeq": 0 if record is None else record.next_seq,
            "hash": None if record is None else record.hash.hex(),
            "checkpointSeq": None if record is None else record.checkpoint_seq,
            "checkpointAt": None if record is None else _time_text(record.checkpoint_at),
        }
        return json_response(body)

    @router.get("/pubkey", summary="The instance's audit public key (PEM)")
    @operation("The audit public key could not be read")
    def pubkey(ctx: Caller, node: Node) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        key = node.audit_key(ctx.instance_id)
        if key is None:
            raise Unavailable(
                "the instance's crypto unit is sealed: its audit key is not available"
            )
        return json_response(
            {
                "instanceId": ctx.instance_id,
                "algorithm": "ed25519",
                "keyId": key.fingerprint,
                "publicKey": key.to_pem().decode(),
            }
        )

    @router.get("/settings", summary="The instance's audit settings")
    @operation("The audit settings could not be read")
    def get_settings(ctx: Caller, node: Node) -> JSONResponse:
        ctx.require(Permission.AUDIT_READ)
        return json_response(
            _settings_body(ctx.instance_id, node.audit_settings.get(ctx.instance_id))
        )

    @router.put("/settings", summary="Choose whether wrap/unwrap/rewrap fail open")
    @operation("The audit settings could not be changed")
    def put_settings(ctx: Caller, node: Node, body: Annotated[Any, Body()] = None) -> JSONResponse:
        ctx.require(Permission.INSTANCE_POLICIES_WRITE)
        if not isinstance(body, dict) or set(body) != {"failOpen"}:
            raise InvalidInput('the body is {"failOpen": true|false}', target="failOpen")
        fail_open = body["failOpen"]
        if not isinstance(fail_open, bool):
            raise InvalidInput("failOpen must be true or false", target="failOpen")
        record = node.audit_settings.set_fail_open(ctx.principal, ctx.instance_id, fail_open)
        return json_response(_settings_body(ctx.instance_id, record))

    return router


def _settings_body(instance_id: str, record: Any) -> dict[str, Any]:
    return {
        "instanceId": instance_id,
        "failOpen": bool(record and record.fail_open),
        "failOpenActions": sorted(FAIL_OPEN_ACTIONS),
        "updatedAt": None if record is None else _time_text(record.updated_at),
        "updatedBy": None if record is None else record.updated_by,
    }
