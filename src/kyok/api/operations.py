"""What each route does, in the words its error messages and metrics use.

A route is tagged with :func:`operation`: ``failure`` completes Key Protect's ``errorMsg``
("Bad Request: <failure>: Please see `reasons` ..."), ``name`` labels the key-operation metric,
``targets`` says where a service parameter came from on this route (a body field, a query
parameter, a path segment or a header) so that error ``target`` objects name the wire field.
The legacy action form (``POST /keys/{id}?action=wrap``) picks its operation per request with
:func:`set_operation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from starlette.types import Scope

__all__ = [
    "DEFAULT_OPERATION",
    "DEFAULT_TARGETS",
    "Operation",
    "Target",
    "current_operation",
    "operation",
    "set_operation",
]

TargetType = Literal["field", "parameter", "header"]
Target = tuple[TargetType, str]

#: Service parameter (``KyokError.target``) -> where it usually comes from on the wire.
DEFAULT_TARGETS: Mapping[str, Target] = MappingProxyType(
    {
        "name": ("field", "name"),
        "description": ("field", "description"),
        "aliases": ("field", "aliases"),
        "alias": ("parameter", "alias"),
        "tags": ("field", "tags"),
        "expires_at": ("field", "expirationDate"),
        "extractable": ("field", "extractable"),
        "material": ("field", "payload"),
        "plaintext": ("field", "plaintext"),
        "aad": ("field", "aad"),
        "ciphertext": ("field", "ciphertext"),
        "limit": ("parameter", "limit"),
        "offset": ("parameter", "offset"),
        "search": ("parameter", "search"),
        "sort": ("parameter", "sort"),
        "filter": ("parameter", "filter"),
        "state": ("parameter", "state"),
        "totalCount": ("parameter", "totalCount"),
        "allKeyStates": ("parameter", "allKeyStates"),
        "force": ("parameter", "force"),
        "encrypted_nonce": ("field", "encryptedNonce"),
        "encryption_algorithm": ("field", "encryptionAlgorithm"),
        "iv": ("field", "iv"),
        "interval_month": ("field", "interval_month"),
        "dual_auth_delete": ("field", "dualAuthDelete"),
        "policies": ("field", "resources"),
        "policy": ("parameter", "policy"),
        "max_retrievals": ("field", "maxAllowedRetrievals"),
        "resource_crn": ("parameter", "urlEncodedResourceCRN"),
        "resource_crn_query": ("parameter", "urlEncodedResourceCRNQuery"),
        "registration_metadata": ("field", "registrationMetadata"),
        "prevent_key_deletion": ("field", "preventKeyDeletion"),
        "key_version_id": ("field", "keyVersionId"),
        "key_ring_id": ("header", "X-Kms-Key-Ring"),
        "instance_id": ("header", "Bluemix-Instance"),
        "Bluemix-Instance": ("header", "Bluemix-Instance"),
    }
)

_ATTR = "__kyok_operation__"
_STATE_KEY = "kyok_operation"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Operation:
    """A route's operation.

    Attributes:
        failure: what failed, for ``errorMsg`` ("Key could not be created").
        name: the operation's metric label ("create_key"); empty for routes that are not key
            operations.
        targets: overrides of :data:`DEFAULT_TARGETS` for this route.
    """

    failure: str
    name: str = ""
    targets: Mapping[str, Target] = field(default_factory=dict)

    def target(self, service_name: str) -> Target:
        """Where ``service_name`` came from on this route.

        Args:
            service_name: a ``KyokError.target``.

        Returns:
            ``(type, wire name)``; unknown names are reported as body fields of that name.
        """
        return self.targets.get(service_name) or DEFAULT_TARGETS.get(
            service_name, ("field", service_name)
        )


DEFAULT_OPERATION = Operation("Request could not be processed")


def operation(
    failure: str, name: str = "", targets: Mapping[str, Target] | None = None
) -> Callable[[F], F]:
    """Tag a route function with its :class:`Operation`.

    Args:
        failure: see :class:`Operation`.
        name: see :class:`Operation`.
        targets: see :class:`Operation`.

    Returns:
        A decorator that returns the function unchanged, tagged.
    """
    op = Operation(failure, name, dict(targets or {}))

    def tag(fn: F) -> F:
        setattr(fn, _ATTR, op)
        return fn

    return tag


def set_operation(scope: Scope, op: Operation) -> None:
    """Choose the operation of the current request (overrides the route's tag).

    Args:
        scope: the request's ASGI scope.
        op: the operation.
    """
    scope.setdefault("state", {})[_STATE_KEY] = op


def current_operation(scope: Scope) -> Operation:
    """The operation of the request, from :func:`set_operation` or the matched route's tag.

    Args:
        scope: the request's ASGI scope.

    Returns:
        The operation, or :data:`DEFAULT_OPERATION` (no route matched, or an untagged one).
    """
    chosen = scope.get("state", {}).get(_STATE_KEY)
    if isinstance(chosen, Operation):
        return chosen
    route = scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    tagged = getattr(endpoint, _ATTR, None)
    return tagged if isinstance(tagged, Operation) else DEFAULT_OPERATION
