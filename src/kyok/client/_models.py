"""What the SDK's calls return: frozen dataclasses read from the wire.

Each ``from_wire`` takes one JSON object as the service sends it (camelCase, RFC 3339 times) and
raises :class:`~kyok.client.errors.InvalidResponse` when a required field is missing or has the
wrong type. Unknown fields are kept in ``properties`` (not in the repr) so that newer servers do
not break older clients. Secret bytes (a standard key's material, a DEK, a new API key) are never
part of a repr.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from kyok.client.errors import InvalidResponse

__all__ = [
    "Alias",
    "ApiKey",
    "ImportToken",
    "InstancePolicy",
    "Key",
    "KeyPolicies",
    "KeyPolicy",
    "KeyRing",
    "KeyState",
    "KeyVersion",
    "Page",
    "Principal",
    "Registration",
    "RewrapResult",
    "RoleBinding",
    "UnwrapResult",
    "WhoAmI",
    "WrapResult",
]

T = TypeVar("T")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class KeyState(IntEnum):
    """Key Protect key states (NIST SP 800-57 numbering)."""

    PRE_ACTIVATION = 0
    ACTIVE = 1
    SUSPENDED = 2
    DEACTIVATED = 3
    DESTROYED = 5

    @property
    def label(self) -> str:
        """The state's name as people say it ("Active", "Suspended"…)."""
        return self.name.replace("_", "-").capitalize()


# ---------------------------------------------------------------- field readers


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidResponse(f"expected a JSON object for {what}")
    return value


def _req_str(d: Mapping[str, Any], name: str, what: str) -> str:
    value = d.get(name)
    if not isinstance(value, str):
        raise InvalidResponse(f"{what} has no string field {name!r}")
    return value


def _opt_str(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    return value if isinstance(value, str) and value != "" else None


def _opt_bool(d: Mapping[str, Any], name: str) -> bool | None:
    value = d.get(name)
    return value if isinstance(value, bool) else None


def _opt_int(d: Mapping[str, Any], name: str) -> int | None:
    value = d.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(d: Mapping[str, Any], name: str) -> datetime | None:
    value = d.get(name)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidResponse(f"field {name!r} is not an RFC 3339 time") from None


def _strs(d: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = d.get(name)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def b64decode(value: str, what: str) -> bytes:
    """Strict base64 decoding; a bad value is the service's fault (InvalidResponse)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidResponse(f"{what} is not valid base64") from None


def _version_id(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


# ---------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One version of a key's material (rotation adds one).

    Attributes:
        id: the version's id (a wrapped DEK names the version that made it).
        creation_date: when the version was made (may be absent in wrap responses).
    """

    id: str
    creation_date: datetime | None = None

    @classmethod
    def from_wire(cls, data: Any) -> KeyVersion:
        """Read ``{"id", "creationDate"}``."""
        d = _obj(data, "a key version")
        return cls(id=_req_str(d, "id", "a key version"), creation_date=_time(d, "creationDate"))


@dataclass(frozen=True, slots=True)
class Key:
    """A key's metadata (and, for a standard key read with ``get_key``, its material).

    Attributes:
        id: the key's UUID.
        name: its name.
        extractable: False for a root key (wraps DEKs, never leaves the service), True for a
            standard key (its material can be read).
        state: its :class:`KeyState`.
        description, aliases, tags, key_ring_id, crn, imported: as set at creation or since.
        creation_date, created_by, last_update_date, last_rotate_date, expiration_date:
            bookkeeping times and the principal that created the key.
        deleted, deletion_date, deleted_by: set once the key is destroyed (state 5).
        key_version: the newest version.
        payload: the material of a standard key when the service returned it (never in a repr).
        properties: every field the service sent except ``payload`` (for fields this class
            does not model, such as ``rotation`` or ``dualAuthDelete``).
    """

    id: str
    name: str
    extractable: bool
    state: KeyState
    description: str | None = None
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    key_ring_id: str | None = None
    crn: str | None = None
    imported: bool | None = None
    creation_date: datetime | None = None
    created_by: str | None = None
    last_update_date: datetime | None = None
    last_rotate_date: datetime | None = None
    expiration_date: datetime | None = None
    deleted: bool | None = None
    deletion_date: datetime | None = None
    deleted_by: str | None = None
    key_version: KeyVersion | None = None
    payload: bytes | None = field(default=None, repr=False)
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)

    @property
    def is_root(self) -> bool:
        """True for a root key (``extractable`` is False)."""
        return not self.extractable

    @classmethod
    def from_wire(cls, data: Any) -> Key:
        """Read one key resource."""
        d = _obj(data, "a key")
        state = d.get("state")
        try:
            key_state = KeyState(state if isinstance(state, int) else -1)
        except ValueError:
            raise InvalidResponse(f"a key has an unknown state {state!r}") from None
        payload = d.get("payload")
        version = d.get("keyVersion")
        return cls(
            id=_req_str(d, "id", "a key"),
            name=_opt_str(d, "name") or "",
            extractable=bool(d.get("extractable", False)),
            state=key_state,
            description=_opt_str(d, "description"),
            aliases=_strs(d, "aliases"),
            tags=_strs(d, "tags"),
            key_ring_id=_opt_str(d, "keyRingID"),
            crn=_opt_str(d, "crn"),
            imported=_opt_bool(d, "imported"),
            creation_date=_time(d, "creationDate"),
            created_by=_opt_str(d, "createdBy"),
            last_update_date=_time(d, "lastUpdateDate"),
            last_rotate_date=_time(d, "lastRotateDate"),
            expiration_date=_time(d, "expirationDate"),
            deleted=_opt_bool(d, "deleted"),
            deletion_date=_time(d, "deletionDate"),
            deleted_by=_opt_str(d, "deletedBy"),
            key_version=KeyVersion.from_wire(version) if isinstance(version, dict) else None,
            payload=b64decode(payload, "a key's payload") if isinstance(payload, str) else None,
            properties=MappingProxyType({k: v for k, v in d.items() if k != "payload"}),
        )


# ---------------------------------------------------------------- data plane


@dataclass(frozen=True, slots=True)
class WrapResult:
    """A DEK wrapped by a root key.

    Attributes:
        ciphertext: the wrapped DEK as the service returns it (an opaque base64 string; store it
            next to the data and give it back to ``unwrap``).
        key_version_id: the key version that wrapped it (the newest).
        dek: the DEK: the one given to ``wrap``, or the one the service generated (never in a
            repr).
        generated: True when the service generated ``dek``.
    """

    ciphertext: str
    key_version_id: str | None
    dek: bytes = field(repr=False)
    generated: bool = False

    @classmethod
    def from_wire(cls, data: Any, given: bytes | None) -> WrapResult:
        """Read ``{"ciphertext", "keyVersion", "plaintext"?}``; ``given`` is the caller's DEK."""
        d = _obj(data, "a wrap response")
        ciphertext = _req_str(d, "ciphertext", "a wrap response")
        if given is not None:
            return cls(ciphertext, _version_id(d, "keyVersion"), given, False)
        plaintext = _req_str(d, "plaintext", "a wrap response without plaintext")
        return cls(ciphertext, _version_id(d, "keyVersion"), b64decode(plaintext, "the DEK"), True)


@dataclass(frozen=True, slots=True)
class UnwrapResult:
    """An unwrapped DEK.

    Attributes:
        plaintext: the DEK (never in a repr).
        key_version_id: the key version that had wrapped the ciphertext.
        rewrapped_ciphertext: when that version is no longer the newest, the same DEK wrapped
            by the newest version (same AAD): store it in place of the old ciphertext.
        rewrapped_key_version_id: the newest version's id when ``rewrapped_ciphertext`` is set.
    """

    plaintext: bytes = field(repr=False)
    key_version_id: str | None
    rewrapped_ciphertext: str | None = None
    rewrapped_key_version_id: str | None = None

    @property
    def is_stale(self) -> bool:
        """True when the ciphertext was made by an older key version (a rewrap came back)."""
        return self.rewrapped_ciphertext is not None

    @classmethod
    def from_wire(cls, data: Any) -> UnwrapResult:
        """Read ``{"plaintext", "keyVersion", "ciphertext"?, "rewrappedKeyVersion"?}``."""
        d = _obj(data, "an unwrap response")
        plaintext = _req_str(d, "plaintext", "an unwrap response")
        return cls(
            plaintext=b64decode(plaintext, "the DEK"),
            key_version_id=_version_id(d, "keyVersion"),
            rewrapped_ciphertext=_opt_str(d, "ciphertext"),
            rewrapped_key_version_id=_version_id(d, "rewrappedKeyVersion"),
        )


@dataclass(frozen=True, slots=True)
class RewrapResult:
    """A wrapped DEK moved to the newest key version without leaving the service.

    Attributes:
        ciphertext: the DEK wrapped by ``rewrapped_key_version_id``.
        key_version_id: the version that had wrapped the ciphertext given.
        rewrapped_key_version_id: the newest version.
    """

    ciphertext: str
    key_version_id: str | None
    rewrapped_key_version_id: str | None

    @classmethod
    def from_wire(cls, data: Any) -> RewrapResult:
        """Read ``{"ciphertext", "keyVersion", "rewrappedKeyVersion"}``."""
        d = _obj(data, "a rewrap response")
        return cls(
            ciphertext=_req_str(d, "ciphertext", "a rewrap response"),
            key_version_id=_version_id(d, "keyVersion"),
            rewrapped_key_version_id=_version_id(d, "rewrappedKeyVersion"),
        )


# ---------------------------------------------------------------- rings and aliases


@dataclass(frozen=True, slots=True)
class KeyRing:
    """A key ring: a named group of keys that roles can be scoped to.

    Attributes:
        id: the ring's id (``default`` is built in).
        creation_date, created_by: when and by whom it was made (absent for ``default``).
    """

    id: str
    creation_date: datetime | None = None
    created_by: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> KeyRing:
        """Read ``{"id", "creationDate"?, "createdBy"?}``."""
        d = _obj(data, "a key ring")
        return cls(
            id=_req_str(d, "id", "a key ring"),
            creation_date=_time(d, "creationDate"),
            created_by=_opt_str(d, "createdBy"),
        )


@dataclass(frozen=True, slots=True)
class Alias:
    """A second name for a key, usable wherever a key id is.

    Attributes:
        key_id: the key it names.
        alias: the alias.
        creation_date, created_by: when and by whom it was made.
    """

    key_id: str
    alias: str
    creation_date: datetime | None = None
    created_by: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Alias:
        """Read ``{"keyId", "alias", "createdBy", "creationDate"}``."""
        d = _obj(data, "an alias")
        return cls(
            key_id=_req_str(d, "keyId", "an alias"),
            alias=_req_str(d, "alias", "an alias"),
            creation_date=_time(d, "creationDate"),
            created_by=_opt_str(d, "createdBy"),
        )


# ---------------------------------------------------------------- import tokens


@dataclass(frozen=True, slots=True)
class ImportToken:
    """The instance's import token: a public key to encrypt key material to, and a nonce.

    ``create_import_token`` returns only the bookkeeping fields; ``get_import_token`` (which
    counts down ``remaining_retrievals``) also returns the keys and the nonce.

    Attributes:
        id: the token's id (when the service sends one).
        creation_date, expiration_date: when it was made and when it stops working.
        expiration: its lifetime in seconds, as asked at creation.
        max_allowed_retrievals: how many times it may be retrieved.
        remaining_retrievals: how many retrievals are left.
        public_key_pem: the RSA public key (PEM ``PUBLIC KEY``), on a retrieved token.
        nonce: the nonce to encrypt under the key material (raw bytes), on a retrieved token.
        hybrid_public_key: kyok's hybrid ML-KEM-768 + X25519 public key (raw bytes), when the
            service offers ``KYOK_HYBRID_MLKEM768_X25519``.
        properties: every field the service sent.
    """

    id: str | None = None
    creation_date: datetime | None = None
    expiration_date: datetime | None = None
    expiration: int | None = None
    max_allowed_retrievals: int | None = None
    remaining_retrievals: int | None = None
    public_key_pem: bytes | None = field(default=None, repr=False)
    nonce: bytes | None = field(default=None, repr=False)
    hybrid_public_key: bytes | None = field(default=None, repr=False)
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)

    @property
    def retrieved(self) -> bool:
        """True when the token carries a public key and a nonce (it can seal an import)."""
        return self.nonce is not None and (
            self.public_key_pem is not None or self.hybrid_public_key is not None
        )

    @classmethod
    def from_wire(cls, data: Any) -> ImportToken:
        """Read ``{"id"?, "creationDate", "expirationDate", "expiration", "maxAllowedRetrievals",
        "remainingRetrievals", "payload"?, "nonce"?, "kyokHybridPublicKey"?}``."""
        d = _obj(data, "an import token")

        def blob(name: str, what: str) -> bytes | None:
            value = d.get(name)
            return b64decode(value, what) if isinstance(value, str) and value else None

        return cls(
            id=_opt_str(d, "id"),
            creation_date=_time(d, "creationDate"),
            expiration_date=_time(d, "expirationDate"),
            expiration=_opt_int(d, "expiration"),
            max_allowed_retrievals=_opt_int(d, "maxAllowedRetrievals"),
            remaining_retrievals=_opt_int(d, "remainingRetrievals"),
            public_key_pem=blob("payload", "the import token's payload"),
            nonce=blob("nonce", "the import token's nonce"),
            hybrid_public_key=blob("kyokHybridPublicKey", "the import token's hybrid key"),
            properties=MappingProxyType(dict(d)),
        )


# ---------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """One policy of a key: ``rotation`` or ``dualAuthDelete``.

    Attributes:
        policy_type: ``rotation`` or ``dualAuthDelete``.
        enabled: whether it is on.
        interval_months: the rotation interval (months of 30 days), for ``rotation``.
        id, crn: the policy's id and CRN, when the service sends them.
        created_by, creation_date, updated_by, last_update_date: bookkeeping.
    """

    policy_type: str
    enabled: bool
    interval_months: int | None = None
    id: str | None = None
    crn: str | None = None
    created_by: str | None = None
    creation_date: datetime | None = None
    updated_by: str | None = None
    last_update_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyPolicies:
    """A key's policies (``GET /api/v2/keys/{id}/policies``).

    Attributes:
        rotation: the ``rotation`` policy, or None if the key has none.
        dual_auth_delete: the ``dualAuthDelete`` policy, or None if the key has none.
    """

    rotation: KeyPolicy | None = None
    dual_auth_delete: KeyPolicy | None = None

    def __iter__(self) -> Iterator[KeyPolicy]:
        return iter(p for p in (self.rotation, self.dual_auth_delete) if p is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def from_wire(cls, resources: Sequence[Any]) -> KeyPolicies:
        """Read the resources of a policies envelope; one resource may hold both policies."""
        rotation: KeyPolicy | None = None
        dual: KeyPolicy | None = None
        for data in resources:
            d = _obj(data, "a key policy")
            common: dict[str, Any] = {
                "id": _opt_str(d, "id"),
                "crn": _opt_str(d, "crn"),
                "created_by": _opt_str(d, "createdBy"),
                "creation_date": _time(d, "creationDate"),
                "updated_by": _opt_str(d, "updatedBy"),
                "last_update_date": _time(d, "lastUpdateDate"),
            }
            rot = d.get("rotation")
            if isinstance(rot, dict):
                rotation = KeyPolicy(
                    "rotation",
                    bool(rot.get("enabled", True)),
                    _opt_int(rot, "interval_month"),
                    **common,
                )
            dad = d.get("dualAuthDelete")
            if isinstance(dad, dict):
                dual = KeyPolicy("dualAuthDelete", bool(dad.get("enabled", False)), **common)
        return cls(rotation=rotation, dual_auth_delete=dual)


@dataclass(frozen=True, slots=True)
class InstancePolicy:
    """One instance policy (``GET /api/v2/instance/policies``).

    Attributes:
        policy_type: ``allowedIP``, ``allowedNetwork``, ``dualAuthDelete``,
            ``keyCreateImportAccess``, ``metrics`` or ``rotation``.
        enabled: whether it is on.
        attributes: its attributes (``interval_month``, ``allowed_ip``…), as the service sent
            them.
        created_by, creation_date, updated_by, last_updated: bookkeeping.
    """

    policy_type: str
    enabled: bool
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    created_by: str | None = None
    creation_date: datetime | None = None
    updated_by: str | None = None
    last_updated: datetime | None = None

    @classmethod
    def from_wire(cls, data: Any) -> InstancePolicy:
        """Read ``{"policy_type", "policy_data": {"enabled", "attributes"?}, "createdBy",
        "creationDate", "updatedBy", "lastUpdated"}``."""
        d = _obj(data, "an instance policy")
        policy_data = d.get("policy_data")
        pd: Mapping[str, Any] = policy_data if isinstance(policy_data, dict) else {}
        attributes = pd.get("attributes")
        return cls(
            policy_type=_req_str(d, "policy_type", "an instance policy"),
            enabled=bool(pd.get("enabled", False)),
            attributes=MappingProxyType(dict(attributes) if isinstance(attributes, dict) else {}),
            created_by=_opt_str(d, "createdBy"),
            creation_date=_time(d, "creationDate"),
            updated_by=_opt_str(d, "updatedBy"),
            last_updated=_time(d, "lastUpdated"),
        )


# ---------------------------------------------------------------- registrations


@dataclass(frozen=True, slots=True)
class Registration:
    """A resource that records it is protected by a root key (read-only for users).

    Attributes:
        key_id: the root key.
        resource_crn: the protected resource's CRN.
        key_name: the key's name.
        key_version: the key version the resource uses, when it said.
        prevent_key_deletion: True when the registration holds the key back from deletion
            (a retention hold: not even ``force`` deletes it).
        description, registration_metadata: free text the registering service set.
        created_by, creation_date, updated_by, last_updated: bookkeeping.
    """

    key_id: str
    resource_crn: str
    key_name: str | None = None
    key_version: KeyVersion | None = None
    prevent_key_deletion: bool = False
    description: str | None = None
    registration_metadata: str | None = None
    created_by: str | None = None
    creation_date: datetime | None = None
    updated_by: str | None = None
    last_updated: datetime | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Registration:
        """Read ``{"keyId", "resourceCrn", "keyName", "keyVersion", "preventKeyDeletion",
        "description", "registrationMetadata", "createdBy", "creationDate", "updatedBy",
        "lastUpdated"}``."""
        d = _obj(data, "a registration")
        version = d.get("keyVersion")
        return cls(
            key_id=_req_str(d, "keyId", "a registration"),
            resource_crn=_req_str(d, "resourceCrn", "a registration"),
            key_name=_opt_str(d, "keyName"),
            key_version=(
                KeyVersion.from_wire(version)
                if isinstance(version, dict) and isinstance(version.get("id"), str)
                else None
            ),
            prevent_key_deletion=bool(d.get("preventKeyDeletion", False)),
            description=_opt_str(d, "description"),
            registration_metadata=_opt_str(d, "registrationMetadata"),
            created_by=_opt_str(d, "createdBy"),
            creation_date=_time(d, "creationDate"),
            updated_by=_opt_str(d, "updatedBy"),
            last_updated=_time(d, "lastUpdated"),
        )


# ---------------------------------------------------------------- principals


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or service identity of the instance.

    Attributes:
        id: its id (the ``sub`` of its tokens).
        name: its name.
        kind: ``user`` or ``service``.
        created_at, created_by: when and by whom it was made.
    """

    id: str
    name: str
    kind: str
    created_at: datetime | None = None
    created_by: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Principal:
        """Read ``{"id", "name", "kind", "createdAt", "createdBy"}``."""
        d = _obj(data, "a principal")
        return cls(
            id=_req_str(d, "id", "a principal"),
            name=_opt_str(d, "name") or "",
            kind=_opt_str(d, "kind") or "",
            created_at=_time(d, "createdAt"),
            created_by=_opt_str(d, "createdBy"),
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of a principal.

    Attributes:
        id, name, principal_id, created_at, created_by: its metadata.
        secret: the key itself, only on the value ``create_api_key`` returns (the service shows
            it once and keeps only a hash); None otherwise. Never in a repr.
    """

    id: str
    name: str
    principal_id: str
    created_at: datetime | None = None
    created_by: str | None = None
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_wire(cls, data: Any) -> ApiKey:
        """Read ``{"id", "name", "principalId", "createdAt", "createdBy", "apikey"?}``."""
        d = _obj(data, "an API key")
        return cls(
            id=_req_str(d, "id", "an API key"),
            name=_opt_str(d, "name") or "",
            principal_id=_opt_str(d, "principalId") or "",
            created_at=_time(d, "createdAt"),
            created_by=_opt_str(d, "createdBy"),
            secret=_opt_str(d, "apikey"),
        )


@dataclass(frozen=True, slots=True)
class RoleBinding:
    """A role granted to a principal on a scope.

    Attributes:
        id: the binding's id (revoke it by this id).
        principal_id: who holds the role.
        role: ``Reader``, ``ReaderPlus``, ``Writer``, ``Manager``, ``KeyPurge`` or
            ``KyokInstanceAdmin``.
        scope: ``instance``, ``key_ring:<id>`` or ``key:<id>``.
        created_at, created_by: when and by whom it was granted.
    """

    id: str
    principal_id: str
    role: str
    scope: str
    created_at: datetime | None = None
    created_by: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> RoleBinding:
        """Read ``{"id", "principalId", "role", "scope", "createdAt", "createdBy"}``."""
        d = _obj(data, "a role binding")
        return cls(
            id=_req_str(d, "id", "a role binding"),
            principal_id=_opt_str(d, "principalId") or "",
            role=_req_str(d, "role", "a role binding"),
            scope=_opt_str(d, "scope") or "instance",
            created_at=_time(d, "createdAt"),
            created_by=_opt_str(d, "createdBy"),
        )


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """The caller as the service sees it.

    Attributes:
        principal: the authenticated principal.
        instance_id: the instance the token belongs to.
        roles: the principal's role bindings.
    """

    principal: Principal
    instance_id: str
    roles: tuple[RoleBinding, ...] = ()

    @classmethod
    def from_wire(cls, data: Any) -> WhoAmI:
        """Read ``{"principal", "instanceId", "roles"}``."""
        d = _obj(data, "a whoami response")
        roles = d.get("roles")
        return cls(
            principal=Principal.from_wire(d.get("principal")),
            instance_id=_req_str(d, "instanceId", "a whoami response"),
            roles=tuple(RoleBinding.from_wire(r) for r in roles) if isinstance(roles, list) else (),
        )


# ---------------------------------------------------------------- pages


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list call.

    Attributes:
        items: the resources on this page.
        offset: the offset the page was asked for.
        limit: the limit asked for (None: the service's default).
        total_count: the number of matches ignoring limit and offset, when the service said.
    """

    items: tuple[T, ...]
    offset: int = 0
    limit: int | None = None
    total_count: int | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


def envelope_resources(body: Any, what: str) -> tuple[Sequence[Any], Mapping[str, Any]]:
    """(resources, metadata) of a Key Protect collection envelope.

    A body with no ``resources`` (allowed for zero hits) gives an empty list.
    """
    d = _obj(body, what)
    meta = d.get("metadata")
    metadata: Mapping[str, Any] = meta if isinstance(meta, dict) else {}
    resources = d.get("resources", [])
    if not isinstance(resources, list):
        raise InvalidResponse(f"{what}: 'resources' is not a list")
    return resources, metadata


def total_count_of(metadata: Mapping[str, Any]) -> int | None:
    """``metadata.totalCount`` when present."""
    return _opt_int(metadata, "totalCount")
