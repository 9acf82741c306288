"""Per-request dependencies shared by every adapter: the node, the caller, the instance, the body.

Dependencies that do no I/O are ``async`` so that FastAPI runs them on the event loop instead of
hopping to a worker thread for each; ``caller`` may read the store, so it runs in a thread.

``Caller`` authenticates each ``/api/v2`` request through the node's auth service; the
``Bluemix-Instance`` header is required first (400 ``BAD_REQUEST_ERR`` without it, then 401
for missing or bad credentials), then the instance's network policies are enforced
(:func:`check_network`). ``raw_body`` reads the body with a size cap (413 above it), whatever its
``Content-Type``.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect

from kyok.api.audit import note_caller
from kyok.api.errors import ClientDisconnected, PayloadTooLarge
from kyok.api.ports import NodePort
from kyok.auth.context import AuthContext
from kyok.auth.errors import MissingInstance
from kyok.kms.errors import AccessPolicyDenied, NetworkPolicyDenied
from kyok.kms.policies import Network, address_in

__all__ = [
    "BatchBody",
    "Caller",
    "CorrelationHeaders",
    "InstanceId",
    "Node",
    "RawBody",
    "caller",
    "check_network",
    "get_node",
    "instance_id",
    "is_private",
    "raw_body",
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An access token from POST /identity/token (IAM-compatible)",
)


async def get_node(request: Request) -> NodePort:
    """The node hosting this application.

    Args:
        request: the request.

    Returns:
        ``app.state.node``.
    """
    node: NodePort = request.app.state.node
    return node


Node = Annotated[NodePort, Depends(get_node)]


async def instance_id(
    bluemix_instance: Annotated[
        str | None,
        Header(
            alias="Bluemix-Instance",
            description="The KMS instance the request is about (required)",
        ),
    ] = None,
) -> str:
    """The ``Bluemix-Instance`` header.

    Args:
        bluemix_instance: the raw header.

    Returns:
        The instance id.

    Raises:
        MissingInstance: the header is missing or blank.
    """
    if bluemix_instance is None or not bluemix_instance.strip():
        raise MissingInstance()
    return bluemix_instance.strip()


InstanceId = Annotated[str, Depends(instance_id)]


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_private(address: str | None, private_networks: tuple[str, ...]) -> bool:
    """True if ``address`` lies in one of ``private_networks`` (``server.private_networks``).

    Args:
        address: the client's IP address (IPv4-mapped IPv6 addresses count as IPv4), or None.
        private_networks: CIDRs.

    Returns:
        False for None and for anything that is not an IP address.
    """
    return address_in(address, _networks(private_networks))


def check_network(node: NodePort, instance_id: str, address: str | None) -> None:
    """Enforce the instance's network policies on a caller at ``address``.

    ``address`` is the socket peer: behind a reverse proxy that is the proxy, so the policies
    then speak about the proxy (forwarding headers are not trusted). An unknown address (None,
    not an IP) is refused by either policy.

    Args:
        node: the node (its key service caches each instance's rules for a second).
        instance_id: the authenticated caller's instance.
        address: the client's IP address.

    Raises:
        AccessPolicyDenied: ``allowedIP`` is enabled and does not admit the address (401).
        NetworkPolicyDenied: ``allowedNetwork`` is ``private-only`` and the address is not in
            ``server.private_networks`` (403).
    """
    rules = node.service.instance_rules(instance_id)
    if not rules.admits(address):
        raise AccessPolicyDenied()
    if rules.private_only and not is_private(address, node.settings.server.private_networks):
        raise NetworkPolicyDenied()


def caller(
    request: Request,
    node: Node,
    instance: InstanceId,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> AuthContext:
    """Authenticate the request and apply the instance's network policies.

    Args:
        request: the request (its raw ``Authorization`` header is passed on as is; its socket
            peer is the address the network policies check).
        node: the node.
        instance: the ``Bluemix-Instance`` header.
        _credentials: declares the bearer scheme in the OpenAPI document.

    Returns:
        The caller, scoped to the instance.

    Raises:
        MissingInstance: no ``Bluemix-Instance``.
        Unauthenticated: missing, malformed, expired or other-instance credentials.
        AccessPolicyDenied: the ``allowedIP`` policy refuses the caller's address (401).
        NetworkPolicyDenied: the ``allowedNetwork`` policy refuses it (403).
    """
    ctx = node.auth.authenticate(request.headers.get("authorization"), instance)
    note_caller(ctx)
    check_network(node, ctx.instance_id, request.client.host if request.client else None)
    return ctx


Caller = Annotated[AuthContext, Depends(caller)]


async def correlation_headers(
    correlation_id: Annotated[
        str | None,
        Header(
            alias="Correlation-Id",
            description="Echoed in the `correlation-id` response header (X-Correlation-ID too)",
        ),
    ] = None,
) -> None:
    """Documents ``Correlation-Id`` (the middleware does the work)."""


CorrelationHeaders = Depends(correlation_headers)


async def raw_body(request: Request) -> bytes:
    """The request body, whatever its ``Content-Type``, at most ``server.max_body_bytes``.

    Args:
        request: the request.

    Returns:
        The raw bytes (empty when there is no body).

    Raises:
        PayloadTooLarge: the body is larger than the limit.
    """
    node: NodePort = request.app.state.node
    return await read_body(request, node.settings.server.max_body_bytes)


async def batch_body(request: Request) -> bytes:
    """:func:`raw_body` for the batch endpoints: at most ``server.max_batch_body_bytes``."""
    node: NodePort = request.app.state.node
    return await read_body(request, node.settings.server.max_batch_body_bytes)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes.

    Raises:
        PayloadTooLarge: the body is larger than the limit.
        ClientDisconnected: the client went away.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected() from None
    return b"".join(chunks)


RawBody = Annotated[bytes, Depends(raw_body)]
BatchBody = Annotated[bytes, Depends(batch_body)]
