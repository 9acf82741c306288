"""The Key Protect wire shapes, as pydantic models.

They document the API (the OpenAPI document is built from them) and the tests validate real
responses against them (``extra="forbid"``), so the document cannot drift from what is sent.
Routes parse requests leniently themselves (:mod:`kyok.api.kp.body`) and render responses with
:mod:`kyok.api.kp.render`; field names are the wire names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kyok.api.responses import CollectionMetadata, ErrorCollection

__all__ = [
    "AliasCollection",
    "AliasResource",
    "CollectionMetadata",
    "ErrorCollection",
    "KeyCollection",
    "KeyCreateBody",
    "KeyCreateResource",
    "KeyPatchBody",
    "KeyResource",
    "KeyRingCollection",
    "KeyRingResource",
    "KeyVersionCollection",
    "KeyVersionRef",
    "KeyVersionResource",
    "RewrapRequest",
    "RewrapResponse",
    "RotateRequest",
    "UnwrapRequest",
    "UnwrapResponse",
    "WrapRequest",
    "WrapResponse",
]

KEY_TYPE = "application/vnd.ibm.kms.key+json"


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
        default=None, description="base64 key material to import (root keys: 16, 24 or 32 bytes)"
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
        default=None, description="new base64 material (imported keys only)"
    )


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
