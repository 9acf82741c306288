"""Key policies (reference §2.3), instance policies (§2.4) and the allowed-IP port.

* ``GET /keys/{id}/policies[?policy=rotation|dualAuthDelete]``: the key's policies; without
  ``?policy`` all of them in one resource (Key Protect's ``GetMultipleKeyPoliciesResource``),
  with it one resource of that type; none: ``collectionTotal`` 0 and ``resources: []``.
* ``PUT /keys/{id}/policies[?policy=...]``: 200 and the policies set. Each type at most once
  (``NUM_COLLECTION_RESOURCE_ERR``), ``?policy`` must be the body's type
  (``BODY_QUERY_PARAM_MISMATCH_ERR``), ``collectionTotal`` must count the resources
  (``COLLECTION_TOTAL_MISMATCH_ERR``).
* ``GET``/``PUT /instance/policies[?policy=T]``: the instance's policies (``allowedIP``,
  ``allowedNetwork``, ``dualAuthDelete``, ``keyCreateImportAccess``, ``metrics``,
  ``rotation``); PUT answers 204. ``allowedIP`` and ``allowedNetwork`` are enforced on every
  authenticated request (:func:`kyok.api.deps.check_network`); ``metrics`` is only stored and
  returned.
* ``GET /instance/allowed_ip_port``: the port of kyok's listener while ``allowedIP`` is
  enabled; otherwise an empty collection (Key Protect: "no information will be returned").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from kyok.api import openapi
from kyok.api.deps import Caller, Node, RawBody
from kyok.api.kp import models
from kyok.api.kp._common import JSON, KeyId, Media, authorize_key, errors, json_response
from kyok.api.kp.body import (
    Fields,
    collection_resources,
    key_policy_spec,
    parse_json,
)
from kyok.api.kp.render import (
    ALLOWED_IP_METADATA_TYPE,
    POLICY_TYPE,
    collection,
    instance_policy_resource,
    key_policy_resources,
)
from kyok.api.operations import operation
from kyok.api.responses import no_content
from kyok.auth.roles import Permission
from kyok.kms.errors import (
    BadBody,
    BodyQueryParamMismatch,
    DuplicatePolicy,
    InvalidField,
    InvalidQueryParam,
)
from kyok.kms.policies import (
    INSTANCE_POLICY_TYPES,
    KEY_POLICY_TYPES,
    InstancePolicySpec,
    KeyPolicySpec,
    validate_instance_policy,
)

__all__ = ["register"]

_KeyPolicyParam = Annotated[
    str | None, Query(description="only this policy: `rotation` or `dualAuthDelete`")
]
_InstancePolicyParam = Annotated[
    str | None,
    Query(
        description="only this policy: allowedIP, allowedNetwork, dualAuthDelete, "
        "keyCreateImportAccess, metrics or rotation"
    ),
]


def _policy_param(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidQueryParam("policy", "must be one of " + ", ".join(allowed))
    return value


def _key_policies(resources: list[Fields], wanted: str | None) -> tuple[KeyPolicySpec, set[str]]:
    """The policies a PUT body sets, and their types."""
    found: dict[str, object] = {}
    for resource in resources:
        named = [name for name in KEY_POLICY_TYPES if resource.value(name) is not None]
        if not named:
            raise BadBody("each resource sets a policy: rotation or dualAuthDelete")
        for name in named:
            if name in found:
                raise DuplicatePolicy(name)
            if wanted is not None and name != wanted:
                raise BodyQueryParamMismatch(wanted, name)
            found[name] = resource.value(name)
    spec = key_policy_spec(found.get("rotation"), found.get("dualAuthDelete"))
    if spec is None:
        raise BadBody("name at least one policy: rotation or dualAuthDelete")
    return spec, set(found)


@operation("Key policies could not be retrieved", "get_key_policies")
def get_key_policies(
    ctx: Caller, node: Node, id: KeyId, policy: _KeyPolicyParam = None
) -> Response:
    """A key's `rotation` and `dualAuthDelete` policies (those ever set)."""
    wanted = _policy_param(policy, KEY_POLICY_TYPES)
    authorize_key(ctx, node.service, Permission.POLICIES_READ, id)
    records = node.service.get_key_policies(ctx.instance_id, id)
    chosen = [r for r in records if wanted is None or r.policy_type == wanted]
    resources = key_policy_resources(
        chosen, region=node.settings.server.region, combine=wanted is None
    )
    return json_response(collection(POLICY_TYPE, resources))


@operation("Key policies could not be set", "set_key_policies")
def set_key_policies(
    ctx: Caller, node: Node, id: KeyId, raw: RawBody, policy: _KeyPolicyParam = None
) -> Response:
    """Set a key's `rotation` (`{enabled, interval_month}`, 1-12 months of 30 days; generated
    root keys only) and/or `dualAuthDelete` (`{enabled}`; cannot be turned off) policies; 200
    with the policies set (both in one resource when both were set)."""
    wanted = _policy_param(policy, KEY_POLICY_TYPES)
    spec, types = _key_policies(collection_resources(parse_json(raw), POLICY_TYPE), wanted)
    authorize_key(ctx, node.service, Permission.POLICIES_WRITE, id)
    records = node.service.set_key_policies(ctx.principal, ctx.instance_id, id, spec)
    chosen = [r for r in records if r.policy_type in types]
    resources = key_policy_resources(chosen, region=node.settings.server.region, combine=True)
    return json_response(collection(POLICY_TYPE, resources))


def _instance_policy(resource: Fields) -> InstancePolicySpec:
    data = resource.value("policy_data")
    if not isinstance(data, dict):
        raise InvalidField("policy_data", "must be an object: {enabled, attributes}")
    fields = Fields(data)
    return validate_instance_policy(
        resource.value("policy_type"), fields.value("enabled"), fields.value("attributes")
    )


@operation("Instance policies could not be retrieved", "get_instance_policies")
def get_instance_policies(ctx: Caller, node: Node, policy: _InstancePolicyParam = None) -> Response:
    """The instance's policies (those ever set), or the one named by `?policy`."""
    wanted = _policy_param(policy, INSTANCE_POLICY_TYPES)
    ctx.require(Permission.INSTANCE_POLICIES_READ)
    records = node.service.get_instance_policies(ctx.instance_id, wanted)
    return json_response(collection(POLICY_TYPE, [instance_policy_resource(r) for r in records]))


@operation("Instance policies could not be set", "set_instance_policies")
def set_instance_policies(
    ctx: Caller, node: Node, raw: RawBody, policy: _InstancePolicyParam = None
) -> Response:
    """Set instance policies (`{policy_type, policy_data: {enabled, attributes}}` each, every
    type at most once); 204. They apply to keys made afterwards, and `allowedIP` /
    `allowedNetwork` to every request from then on (this one's answer included)."""
    wanted = _policy_param(policy, INSTANCE_POLICY_TYPES)
    resources = collection_resources(parse_json(raw), POLICY_TYPE)
    specs = [_instance_policy(r) for r in resources]
    ctx.require(Permission.INSTANCE_POLICIES_WRITE)
    node.service.set_instance_policies(ctx.principal, ctx.instance_id, specs, policy_type=wanted)
    return no_content()


@operation("Allowed IP port could not be retrieved", "get_allowed_ip_port")
def get_allowed_ip_port(request: Request, ctx: Caller, node: Node) -> Response:
    """The port of kyok's listener (`private_endpoint_port`) while the instance's `allowedIP`
    policy is enabled; otherwise no resource. kyok has one listener: the port is
    `server.port` (or the port the request came in on when that is 0)."""
    ctx.require(Permission.INSTANCE_POLICIES_READ)
    rules = node.service.instance_rules(ctx.instance_id)
    resources = []
    if rules.allowed_ip is not None:
        server = request.scope.get("server") or (None, 0)
        port = node.settings.server.port or int(server[1] or 0)
        resources.append({"private_endpoint_port": port})
    return json_response(collection(ALLOWED_IP_METADATA_TYPE, resources))


def register(router: APIRouter, media: Media) -> None:
    """Add the policy routes to ``router``.

    Args:
        router: the ``/api/v2`` router.
        media: the application's response content types (unused: policies are plain JSON).
    """
    key_path = "/keys/{id}/policies"
    router.add_api_route(
        key_path,
        get_key_policies,
        methods=["GET"],
        responses={
            200: openapi.response(models.KeyPolicyCollection, "The key's policies"),
            **errors(404, 410),
        },
        operation_id="get_policy",
    )
    router.add_api_route(
        key_path,
        set_key_policies,
        methods=["PUT"],
        responses={
            200: openapi.response(models.KeyPolicyCollection, "The policies set"),
            **errors(404, 409, 410),
        },
        openapi_extra=openapi.request_body(
            models.KeyPoliciesSetBody,
            [POLICY_TYPE, JSON],
            required=True,
            description="Policies in a collection (any Content-Type; field names in any case)",
        ),
        operation_id="put_policy",
    )
    router.add_api_route(
        "/instance/policies",
        get_instance_policies,
        methods=["GET"],
        responses={
            200: openapi.response(models.InstancePolicyCollection, "The instance's policies"),
            **errors(404),
        },
        operation_id="get_instance_policy",
    )
    router.add_api_route(
        "/instance/policies",
        set_instance_policies,
        methods=["PUT"],
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Set"}, **errors(404)},
        openapi_extra=openapi.request_body(
            models.InstancePoliciesSetBody,
            [POLICY_TYPE, JSON],
            required=True,
            description="Policies in a collection (any Content-Type)",
        ),
        operation_id="put_instance_policy",
    )
    router.add_api_route(
        "/instance/allowed_ip_port",
        get_allowed_ip_port,
        methods=["GET"],
        responses={
            200: openapi.response(
                models.AllowedIPPortCollection, "The port, while allowedIP is enabled"
            ),
            **errors(),
        },
        operation_id="get_allowed_ip_port",
    )
