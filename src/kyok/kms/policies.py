"""Key and instance policies (Key Protect reference §2.3, §2.4): their rules, as plain values.

Key policies are ``rotation`` (automatic rotation every 1-12 months of 30 days) and
``dualAuthDelete`` (deletion needs a prior approval by another principal; once on, it stays
on). Instance policies are ``allowedIP``, ``allowedNetwork``, ``dualAuthDelete``,
``keyCreateImportAccess``, ``metrics`` and ``rotation``; this module validates their attributes
and answers the questions the service and the HTTP adapter ask of them (may this address call?
may this key be created or imported this way?).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from kyok.kms.errors import CreateImportForbidden, InvalidField
from kyok.kms.validation import is_int_in
from kyok.store.records import InstancePolicyRecord

__all__ = [
    "ALLOWED_IP",
    "ALLOWED_NETWORK",
    "CREATE_IMPORT_ACCESS",
    "DUAL_AUTH_DELETE",
    "INSTANCE_POLICY_TYPES",
    "KEY_POLICY_TYPES",
    "METRICS",
    "MONTH",
    "NETWORK_PRIVATE_ONLY",
    "NETWORK_PUBLIC_AND_PRIVATE",
    "ROTATION",
    "InstancePolicySpec",
    "InstanceRules",
    "KeyPolicySpec",
    "Network",
    "address_in",
    "next_rotation",
    "rules_of",
    "validate_instance_policy",
    "validate_interval_months",
]

ROTATION = "rotation"
DUAL_AUTH_DELETE = "dualAuthDelete"
ALLOWED_IP = "allowedIP"
ALLOWED_NETWORK = "allowedNetwork"
CREATE_IMPORT_ACCESS = "keyCreateImportAccess"
METRICS = "metrics"

KEY_POLICY_TYPES = (ROTATION, DUAL_AUTH_DELETE)
INSTANCE_POLICY_TYPES = (
    ALLOWED_IP,
    ALLOWED_NETWORK,
    DUAL_AUTH_DELETE,
    CREATE_IMPORT_ACCESS,
    METRICS,
    ROTATION,
)

#: A rotation "month" (Key Protect counts months of 30 days).
MONTH = timedelta(days=30)

NETWORK_PUBLIC_AND_PRIVATE = "public-and-private"
NETWORK_PRIVATE_ONLY = "private-only"

#: Attributes of ``keyCreateImportAccess`` and their defaults (omitted ones reset to these).
_ACCESS_DEFAULTS: Mapping[str, bool] = MappingProxyType(
    {
        "create_root_key": True,
        "create_standard_key": True,
        "import_root_key": True,
        "import_standard_key": True,
        "enforce_token": False,
    }
)
#: At most this many networks in an ``allowedIP`` policy.
MAX_ALLOWED_IP = 1000


def validate_interval_months(value: Any, target: str = "interval_month") -> int:
    """A rotation interval: an integer number of months, 1-12.

    Raises:
        InvalidField: anything else (booleans included).
    """
    if not is_int_in(value, 1, 12):
        raise InvalidField(target, "must be an integer from 1 to 12 (months)")
    return value


def next_rotation(base: datetime, months: int) -> datetime:
    """When a key last rotated (or created) at ``base`` is due under a ``months`` policy."""
    return base + months * MONTH


@dataclass(frozen=True, slots=True)
class KeyPolicySpec:
    """What a caller asks to set on a key; None leaves that policy as it is.

    Attributes:
        rotation_enabled: turn automatic rotation on or off.
        interval_months: the rotation interval (1-12); needed when turning rotation on.
        dual_auth_delete: turn dual authorisation for deletion on (off is refused once on).
    """

    rotation_enabled: bool | None = None
    interval_months: int | None = None
    dual_auth_delete: bool | None = None

    def __post_init__(self) -> None:
        if self.rotation_enabled is not None and not isinstance(self.rotation_enabled, bool):
            raise InvalidField("rotation", "enabled must be true or false")
        if self.interval_months is not None:
            validate_interval_months(self.interval_months)
        if self.rotation_enabled and self.interval_months is None:
            raise InvalidField("interval_month", "is required to enable rotation")
        if self.dual_auth_delete is not None and not isinstance(self.dual_auth_delete, bool):
            raise InvalidField("dual_auth_delete", "enabled must be true or false")

    @property
    def empty(self) -> bool:
        """True when it asks for nothing."""
        return self.rotation_enabled is None and self.dual_auth_delete is None


@dataclass(frozen=True, slots=True)
class InstancePolicySpec:
    """One instance policy as a caller sets it (validated by :func:`validate_instance_policy`)."""

    policy_type: str
    enabled: bool
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def attributes_json(self) -> str:
        """The attributes as canonical JSON text (what the store keeps)."""
        return json.dumps(dict(self.attributes), sort_keys=True, separators=(",", ":"))


def _no_attributes(policy_type: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    if attributes:
        raise InvalidField("attributes", f"the {policy_type} policy has no attributes")
    return {}


def _only(attributes: Mapping[str, Any], allowed: frozenset[str] | set[str]) -> None:
    unknown = sorted(set(attributes) - set(allowed))
    if unknown:
        raise InvalidField("attributes", f"unknown attribute {unknown[0]}")


def _networks(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidField("allowed_ip", "must be a non-empty list of IPv4 or IPv6 CIDRs")
    if len(value) > MAX_ALLOWED_IP:
        raise InvalidField("allowed_ip", f"at most {MAX_ALLOWED_IP} networks")
    networks: list[str] = []
    for item in value:
        if not isinstance(item, str) or "/" not in item:
            raise InvalidField("allowed_ip", "each entry must be a CIDR such as 10.0.0.0/8")
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise InvalidField(
                "allowed_ip", "each entry must be a CIDR such as 10.0.0.0/8"
            ) from None
        if str(network) not in networks:
            networks.append(str(network))
    return networks


def validate_instance_policy(policy_type: Any, enabled: Any, attributes: Any) -> InstancePolicySpec:
    """Check one instance policy and normalise its attributes.

    Rules (reference §2.4): ``enabled`` is a boolean; attributes are forbidden when disabled
    (disabling clears them); ``rotation`` needs ``interval_month`` (1-12), ``allowedIP`` a list of
    CIDRs, ``allowedNetwork`` ``public-and-private`` or ``private-only``; ``dualAuthDelete`` and
    ``metrics`` take none; ``keyCreateImportAccess`` takes five booleans and resets omitted ones to
    their defaults.

    Raises:
        InvalidField: the type is unknown or an attribute breaks a rule.
    """
    if policy_type not in INSTANCE_POLICY_TYPES:
        raise InvalidField(
            "policy_type", "must be one of " + ", ".join(sorted(INSTANCE_POLICY_TYPES))
        )
    if not isinstance(enabled, bool):
        raise InvalidField("enabled", "must be true or false")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise InvalidField("attributes", "must be an object")
    if not enabled:
        if attributes:
            raise InvalidField("attributes", "are not allowed when the policy is disabled")
        return InstancePolicySpec(policy_type, False, {})
    normal: dict[str, Any]
    if policy_type in (DUAL_AUTH_DELETE, METRICS):
        normal = _no_attributes(policy_type, attributes)
    elif policy_type == ROTATION:
        _only(attributes, {"interval_month"})
        if "interval_month" not in attributes:
            raise InvalidField("interval_month", "is required to enable rotation")
        normal = {"interval_month": validate_interval_months(attributes["interval_month"])}
    elif policy_type == ALLOWED_IP:
        _only(attributes, {"allowed_ip"})
        normal = {"allowed_ip": _networks(attributes.get("allowed_ip"))}
    elif policy_type == ALLOWED_NETWORK:
        _only(attributes, {"allowed_network"})
        value = attributes.get("allowed_network")
        if value not in (NETWORK_PUBLIC_AND_PRIVATE, NETWORK_PRIVATE_ONLY):
            raise InvalidField(
                "allowed_network",
                f"must be {NETWORK_PUBLIC_AND_PRIVATE} or {NETWORK_PRIVATE_ONLY}",
            )
        normal = {"allowed_network": value}
    else:  # keyCreateImportAccess
        _only(attributes, set(_ACCESS_DEFAULTS))
        normal = {}
        for name, default in _ACCESS_DEFAULTS.items():
            value = attributes.get(name, default)
            if not isinstance(value, bool):
                raise InvalidField(name, "must be true or false")
            normal[name] = value
    return InstancePolicySpec(policy_type, True, normal)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_in(address: str | None, networks: Sequence[Network]) -> bool:
    """True if ``address`` lies in one of ``networks``.

    An IPv4-mapped IPv6 address counts as its IPv4 address; None and anything that is not an
    IP address lie in no network.
    """
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


@dataclass(frozen=True, slots=True)
class InstanceRules:
    """What an instance's enabled policies demand, ready to check (cheap to copy and cache).

    Attributes:
        allowed_ip: the networks callers must come from (None: any address).
        private_only: only private-network callers (``allowedNetwork: private-only``).
        dual_auth_delete: new keys get dual authorisation for deletion.
        rotation_months: new generated root keys get a rotation policy with this interval.
        access: the ``keyCreateImportAccess`` attributes (None: everything allowed).
        metrics: the instance asked for metrics.
    """

    allowed_ip: tuple[Network, ...] | None = None
    private_only: bool = False
    dual_auth_delete: bool = False
    rotation_months: int | None = None
    access: Mapping[str, bool] | None = None
    metrics: bool = False

    def admits(self, address: str | None) -> bool:
        """True if a caller at ``address`` passes the ``allowedIP`` policy."""
        return self.allowed_ip is None or address_in(address, self.allowed_ip)

    def check_create(self, *, extractable: bool, imported: bool, with_token: bool) -> None:
        """Refuse a way of making key material that ``keyCreateImportAccess`` forbids.

        Raises:
            CreateImportForbidden: the policy forbids it.
        """
        access = self.access
        if access is None:
            return
        kind = "standard" if extractable else "root"
        verb = "import" if imported else "create"
        if not access[f"{verb}_{kind}_key"]:
            raise CreateImportForbidden(f"{'importing' if imported else 'creating'} {kind} keys")
        if imported and access["enforce_token"] and not with_token:
            raise CreateImportForbidden("importing key material without an import token")


def rules_of(records: list[InstancePolicyRecord]) -> InstanceRules:
    """The rules of an instance's stored policies (disabled ones count for nothing)."""
    values: dict[str, Any] = {}
    for record in records:
        if not record.enabled:
            continue
        attributes = json.loads(record.attributes or "{}")
        if record.policy_type == ALLOWED_IP:
            values["allowed_ip"] = tuple(
                ipaddress.ip_network(n, strict=False) for n in attributes.get("allowed_ip", ())
            )
        elif record.policy_type == ALLOWED_NETWORK:
            values["private_only"] = attributes.get("allowed_network") == NETWORK_PRIVATE_ONLY
        elif record.policy_type == DUAL_AUTH_DELETE:
            values["dual_auth_delete"] = True
        elif record.policy_type == ROTATION:
            values["rotation_months"] = int(attributes["interval_month"])
        elif record.policy_type == CREATE_IMPORT_ACCESS:
            values["access"] = MappingProxyType({**_ACCESS_DEFAULTS, **attributes})
        elif record.policy_type == METRICS:
            values["metrics"] = True
    return InstanceRules(**values)
