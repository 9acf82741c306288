"""The Key Protect wire shapes, as pydantic models.

They document the API (the OpenAPI document is built from them) and the tests validate real
responses against them (``extra="forbid"``), so the document cannot drift from what is sent.
Routes parse requests leniently themselves (:mod:`kyok.api.kp.body`) and render responses with
:mod:`kyok.api.kp.render`; field names are the wire names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kyok.api.responses import CollectionMetadata, ErrorCollection

__all__ = [
    "AliasCollection",
    "AliasResource",
    "AllowedIPPortCollection",
    "AllowedIPPortResource",
    "CollectionMetadata",
    "ErrorCollection",
    "ImportToken",
    "ImportTokenCreateBody",
    "ImportTokenRetrieved",
    "InstancePoliciesSetBody",
    "InstancePolicyCollection",
    "InstancePolicyData",
    "InstancePolicyResource",
    "InstancePolicySetResource",
    "KeyCollection",
    "KeyCreateBody",
    "KeyCreateResource",
    "KeyPatchBody",
    "KeyPoliciesSetBody",
    "KeyPolicyCollection",
    "KeyPolicyResource",
    "KeyPolicySetResource",
    "KeyResource",
    "KeyRingCollection",
    "KeyRingResource",
    "KeyVersionCollection",
    "KeyVersionRef",
    "KeyVersionResource",
    "KeyWithPoliciesCreateBody",
    "KeyWithPoliciesCreateResource",
    "RegistrationCollection",
    "RegistrationInputBody",
    "RegistrationInputResource",
    "RegistrationResource",
    "RewrapRequest",
    "RewrapResponse",
    "RotateRequest",
    "UnwrapRequest",
    "UnwrapResponse",
    "WrapRequest",
    "WrapResponse",
]

KEY_TYPE = "application/vnd.ibm.kms.key+json"
POLICY_TYPE = "application/vnd.ibm.kms.policy+json"
REGISTRATION_INPUT_TYPE = "application/vnd.ibm.kms.registration_input+json"
IMPORT_ALGORITHMS = ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "KYOK_HYBRID_MLKEM768_X25519"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")


class SearchQuery(_Wire):
    """How a list-keys `search` was understood."""

    query: str
    scopes: list[Literal["name", "alias"]]
    not_: bool = Field(alias="not")
    exact: bool


class KeyListMetadata(CollectionMetadata):
    """The ``metadata`` of a key list."""

    searchQuery: SearchQuery | None = None


class KeyVersionRef(_Wire):
    """A key version named in a key or an action result."""

    id: str
    creationDate: datetime | None = None


class AlgorithmMetadata(_Wire):
    bitLength: str
    mode: str


class DualAuthDelete(_Wire):
    """A key's dual-authorisation policy as the key shows it."""

    enabled: bool
    keySetForDeletion: bool | None = Field(
        default=None, description="another principal approved the deletion (setKeyForDeletion)"
    )
    authExpiration: datetime | None = Field(default=None, description="when that approval expires")


class RotationPolicyData(_Wire):
    """Automatic rotation every `interval_month` months of 30 days."""

    enabled: bool
    interval_month: int | None = Field(default=None, ge=1, le=12)


class DualAuthDeleteData(_Wire):
    enabled: bool


class KeyResource(_Wire):
    """A key (reference §3). `payload` only on `GET /keys/{id}` and create with representation,
    only for standard keys."""

    type: Literal["application/vnd.ibm.kms.key+json"]
    id: str
    name: str
    description: str | None = None
    aliases: list[str]
    tags: list[str]
    state: Literal[0, 1, 2, 3, 5]
    expirationDate: datetime | None = None
    extractable: bool
    crn: str
    imported: bool
    keyRingID: str
    creationDate: datetime
    createdBy: str
    algorithmType: str
    algorithmMetadata: AlgorithmMetadata
    algorithmBitSize: int
    algorithmMode: str
    lastUpdateDate: datetime
    lastRotateDate: datetime | None = None
    keyVersion: KeyVersionRef
    dualAuthDelete: DualAuthDelete
    rotation: RotationPolicyData | None = Field(
        default=None, description="only when the key has a rotation policy"
    )
    deleted: bool
    deletionDate: datetime | None = None
    deletedBy: str | None = None
    restoreAllowed: bool | None = None
    restoreExpirationDate: datetime | None = None
    purgeAllowed: bool | None = None
    purgeAllowedFrom: datetime | None = None
    purgeScheduledOn: datetime | None = None
    nonactiveStateReason: int | None = None
    payload: str | None = Field(default=None, description="base64 key material (standard keys)")


class KeyCollection(_Wire):
    metadata: KeyListMetadata
    resources: list[KeyResource]


class KeyCreateResource(_Request):
    """One key to create; field names match case-insensitively."""

    type: str | None = Field(default=None, examples=[KEY_TYPE])
    name: str = Field(min_length=2, max_length=90)
    description: str | None = Field(default=None, max_length=240)
    extractable: bool = Field(default=False, description="true: standard key; false: root key")
    expirationDate: datetime | None = None
    aliases: list[str] | None = Field(default=None, max_length=5)
    tags: list[str] | None = Field(default=None, max_length=30)
    payload: str | None = Field(
        default=None,
        description="base64 key material to import (root keys: 16, 24 or 32 bytes); with "
        "`encryptedNonce` and `iv`: the material encrypted to the import token",
    )
    encryptedNonce: str | None = Field(
        default=None,
        description="import with a token: base64 of the token's nonce encrypted under the "
        "key material (AES-GCM; AES-CBC with RSAES_OAEP_SHA_1)",
    )
    iv: str | None = Field(default=None, description="import with a token: base64 of that IV")
    encryptionAlgorithm: str | None = Field(
        default=None,
        description="import with a token: how `payload` is encrypted (default RSAES_OAEP_SHA_256)",
        examples=IMPORT_ALGORITHMS,
    )
    keyRingID: str | None = Field(
        default=None, description="used when the X-Kms-Key-Ring header is absent"
    )


class _RequestMetadata(_Request):
    collectionType: Literal["application/vnd.ibm.kms.key+json"]
    collectionTotal: Literal[1] = Field(description="the number of resources (one key)")


class KeyCreateBody(_Request):
    metadata: _RequestMetadata
    resources: list[KeyCreateResource] = Field(min_length=1, max_length=1)


class KeyWithPoliciesCreateResource(KeyCreateResource):
    """One key to create with its own policies (they override the instance's)."""

    rotation: RotationPolicyData | None = Field(
        default=None, description="generated root keys only; interval_month 1-12"
    )
    dualAuthDelete: DualAuthDeleteData | None = None


class KeyWithPoliciesCreateBody(_Request):
    metadata: _RequestMetadata
    resources: list[KeyWithPoliciesCreateResource] = Field(min_length=1, max_length=1)


class KeyPatchBody(_Request):
    keyRingID: str = Field(description="the key ring to move the key to")


class WrapRequest(_Request):
    plaintext: str | None = Field(
        default=None, description="base64 DEK; omitted or empty: a 32-byte DEK is generated"
    )
    aad: list[str] | None = Field(default=None, max_length=32)


class WrapResponse(_Wire):
    ciphertext: str
    keyVersion: KeyVersionRef
    plaintext: str | None = Field(default=None, description="the generated DEK (base64)")


class UnwrapRequest(_Request):
    ciphertext: str
    aad: list[str] | None = None


class UnwrapResponse(_Wire):
    plaintext: str
    keyVersion: KeyVersionRef
    ciphertext: str | None = Field(
        default=None, description="the DEK wrapped by the newest version, when older"
    )
    rewrappedKeyVersion: KeyVersionRef | None = None


class RewrapRequest(_Request):
    ciphertext: str
    aad: list[str] | None = None


class RewrapResponse(_Wire):
    ciphertext: str
    keyVersion: KeyVersionRef
    rewrappedKeyVersion: KeyVersionRef


class RotateRequest(_Request):
    payload: str | None = Field(
        default=None,
        description="new base64 material (imported keys only); with `encryptedNonce` and `iv`: "
        "the material encrypted to the import token",
    )
    encryptedNonce: str | None = None
    iv: str | None = None
    encryptionAlgorithm: str | None = Field(default=None, examples=IMPORT_ALGORITHMS)


class KeyVersionResource(_Wire):
    id: str
    creationDate: datetime


class KeyVersionCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[KeyVersionResource]


class KeyRingResource(_Wire):
    id: str
    creationDate: datetime | None = None
    createdBy: str | None = None


class KeyRingCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[KeyRingResource]


class AliasResource(_Wire):
    keyId: str
    alias: str
    createdBy: str
    creationDate: datetime


class AliasCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[AliasResource]


# ------------------------------------------------------------------------------ import tokens


class ImportTokenCreateBody(_Request):
    expiration: int | None = Field(
        default=None, ge=300, le=86400, description="lifetime in seconds (default 600)"
    )
    maxAllowedRetrievals: int | None = Field(
        default=None, ge=1, le=500, description="how often it can be retrieved (default 1)"
    )


class ImportToken(_Wire):
    """An import token's bookkeeping (`POST /import_token`)."""

    id: str
    creationDate: datetime
    expirationDate: datetime
    expiration: int = Field(description="lifetime in seconds")
    maxAllowedRetrievals: int
    remainingRetrievals: int


class ImportTokenRetrieved(ImportToken):
    """An import token with its public keys (`GET /import_token`; counts one retrieval)."""

    payload: str = Field(description="base64 of the RSA public key as PEM (SubjectPublicKeyInfo)")
    nonce: str = Field(description="base64 of the nonce to encrypt under the key material")
    kyokHybridPublicKey: str = Field(
        description="kyok extension: base64 of the ML-KEM-768 + X25519 public key, for "
        "encryptionAlgorithm KYOK_HYBRID_MLKEM768_X25519"
    )


# ------------------------------------------------------------------------------ key policies


class KeyPolicyResource(_Wire):
    """A key's policies: one of `rotation` and `dualAuthDelete`, or both."""

    id: str
    crn: str
    type: Literal["application/vnd.ibm.kms.policy+json"]
    createdBy: str
    creationDate: datetime
    updatedBy: str
    lastUpdateDate: datetime
    rotation: RotationPolicyData | None = None
    dualAuthDelete: DualAuthDeleteData | None = None


class KeyPolicyCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[KeyPolicyResource]


class KeyPolicySetResource(_Request):
    type: str | None = Field(default=None, examples=[POLICY_TYPE])
    rotation: RotationPolicyData | None = None
    dualAuthDelete: DualAuthDeleteData | None = None


class _PolicyMetadata(_Request):
    collectionType: Literal["application/vnd.ibm.kms.policy+json"]
    collectionTotal: int = Field(ge=1, le=2, description="the number of resources")


class KeyPoliciesSetBody(_Request):
    metadata: _PolicyMetadata
    resources: list[KeyPolicySetResource] = Field(min_length=1, max_length=2)


# ------------------------------------------------------------------------------ instance policies


class InstancePolicyData(_Wire):
    enabled: bool
    attributes: dict[str, Any] | None = Field(
        default=None,
        description="rotation: interval_month; allowedIP: allowed_ip (CIDRs); allowedNetwork: "
        "allowed_network; keyCreateImportAccess: create_root_key, create_standard_key, "
        "import_root_key, import_standard_key, enforce_token",
    )


class InstancePolicyResource(_Wire):
    creationDate: datetime
    createdBy: str
    updatedBy: str
    lastUpdated: datetime
    policy_type: str
    policy_data: InstancePolicyData


class InstancePolicyCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[InstancePolicyResource]


class _InstancePolicyDataIn(_Request):
    enabled: bool
    attributes: dict[str, Any] | None = None


class InstancePolicySetResource(_Request):
    policy_type: Literal[
        "allowedIP", "allowedNetwork", "dualAuthDelete", "keyCreateImportAccess", "metrics",
        "rotation",
    ]  # fmt: skip
    policy_data: _InstancePolicyDataIn


class _InstancePolicyMetadata(_Request):
    collectionType: Literal["application/vnd.ibm.kms.policy+json"]
    collectionTotal: int = Field(ge=1, le=6, description="the number of resources")


class InstancePoliciesSetBody(_Request):
    metadata: _InstancePolicyMetadata
    resources: list[InstancePolicySetResource] = Field(min_length=1, max_length=6)


class AllowedIPPortResource(_Wire):
    private_endpoint_port: int


class AllowedIPPortCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[AllowedIPPortResource] = Field(
        max_length=1, description="empty unless the allowedIP policy is enabled"
    )


# ------------------------------------------------------------------------------ registrations


class RegistrationResource(_Wire):
    keyId: str
    keyName: str
    resourceCrn: str
    createdBy: str
    creationDate: datetime
    updatedBy: str
    lastUpdated: datetime
    description: str | None = None
    registrationMetadata: str | None = None
    preventKeyDeletion: bool
    keyVersion: KeyVersionRef


class RegistrationCollection(_Wire):
    metadata: CollectionMetadata
    resources: list[RegistrationResource]


class RegistrationInputResource(_Request):
    preventKeyDeletion: bool | None = Field(
        default=None, description="a retention hold: the key cannot be deleted, even with force"
    )
    description: str | None = Field(default=None, max_length=240)
    registrationMetadata: str | None = Field(default=None, max_length=4096)
    keyVersionId: str | None = Field(
        default=None, description="the key version the resource uses (default: the newest)"
    )


class _RegistrationMetadata(_Request):
    collectionType: Literal["application/vnd.ibm.kms.registration_input+json"]
    collectionTotal: Literal[1]


class RegistrationInputBody(_Request):
    metadata: _RegistrationMetadata
    resources: list[RegistrationInputResource] = Field(min_length=1, max_length=1)
