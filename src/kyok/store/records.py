"""Rows as frozen dataclasses. The store converts between these and SQL explicitly.

Times are timezone-aware UTC datetimes. No record ever holds plaintext key material: key
material lives only in ``BlobRecord.data``, sealed by the crypto unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A KMS instance (tenant). Each has exactly one crypto unit."""

    id: str
    name: str
    unit_id: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class KeyRingRecord:
    """A key ring; every instance has the ring ``default``."""

    instance_id: str
    id: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's metadata. ``row_version`` drives optimistic concurrency."""

    instance_id: str
    id: str
    name: str
    description: str | None
    extractable: bool
    imported: bool
    state: int
    key_ring_id: str
    tags: tuple[str, ...]
    created_at: datetime
    created_by: str
    updated_at: datetime
    last_action_at: datetime
    current_version_id: str
    version_count: int
    bit_length: int | None = None
    last_rotated_at: datetime | None = None
    expires_at: datetime | None = None
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    state_reason: int | None = None
    row_version: int = 1


@dataclass(frozen=True, slots=True)
class KeyVersionRecord:
    """One version of a key's material; ``number`` counts from 1."""

    instance_id: str
    key_id: str
    id: str
    number: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """Key material sealed by the crypto unit under the master key of epoch ``mk_epoch``.

    ``id`` is unique within the instance (for key material: the key version id), ``owner_id`` is
    what the blob belongs to (for key material: the key id), ``purpose`` says what it is
    (``root-key``, ``standard-key``, ...). All four are bound into the blob's associated data.
    """

    instance_id: str
    owner_id: str
    id: str
    purpose: str
    mk_epoch: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """An alias of a key, unique within its instance."""

    instance_id: str
    alias: str
    key_id: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class TranscriptRecord:
    """One entry of a unit's hash-chained ceremony transcript (``n`` counts from 0).

    ``entry`` is the canonical JSON body, ``hash`` its chain hash, ``mac`` an optional
    ``"<epoch>:<hex>"`` authenticator made with a key derived from that epoch's master key.
    """

    n: int
    entry: str
    hash: str
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class BlobUpdate:
    """Re-sealed blob data for ``id``, applied only while the row is still at ``old_epoch``."""

    id: str
    old_epoch: int
    new_epoch: int
    data: bytes = field(repr=False)


# ---------------------------------------------------------------- key queries


@dataclass(frozen=True, slots=True)
class KeySearch:
    """A parsed ``search`` expression (Key Protect grammar).

    ``text`` is matched case-insensitively as a substring of the name and/or of any alias
    (``exact``: the whole value, still case-insensitive); ``negate`` inverts the match.
    """

    text: str
    names: bool = True
    aliases: bool = True
    exact: bool = False
    negate: bool = False


#: Fields a filter or sort may name (KeyRecord attribute names).
KEY_FILTER_FIELDS = frozenset(
    {
        "created_at",
        "deleted_at",
        "expires_at",
        "last_rotated_at",
        "updated_at",
        "extractable",
        "state",
    }
)
KEY_SORT_FIELDS = frozenset(
    {
        "id",
        "state",
        "extractable",
        "imported",
        "created_at",
        "updated_at",
        "last_rotated_at",
        "deleted_at",
        "expires_at",
    }
)
FILTER_OPS = frozenset({"eq", "lt", "lte", "gt", "gte"})


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """``field op value``; ``value is None`` means "the field is not set" (only with ``eq``)."""

    field: str
    op: str
    value: datetime | bool | int | None


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """What to list. ``states`` None means the default 0, 1, 2, 3 (destroyed keys hidden)."""

    instance_id: str
    states: frozenset[int] | None = None
    extractable: bool | None = None
    key_ring_id: str | None = None
    search: KeySearch | None = None
    filters: tuple[KeyFilter, ...] = ()
    sort: tuple[tuple[str, bool], ...] = (("id", False),)  # (field, descending)
    limit: int = 200
    offset: int = 0


# ---------------------------------------------------------------- credentials (kyok.auth)
#
# Whoever can write the database could insert a credential of their own, so every row below
# carries ``mac``: a hex HMAC-SHA256 computed by the instance's crypto unit over the row's
# security-relevant fields (see kyok.auth). The store keeps it like any other text; it never
# computes or checks it.


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """A user or service ID of one instance; ``name`` is unique within the instance."""

    instance_id: str
    id: str
    name: str
    kind: str  # "user" | "service"
    created_at: datetime
    created_by: str
    mac: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key of a principal. The key itself is never stored: ``lookup`` is the hex
    SHA-256 of the key string (unique across all instances, so the token endpoint finds the
    row without knowing the instance); ``id`` is unique within the instance."""

    lookup: str = field(repr=False)
    instance_id: str
    id: str
    principal_id: str
    name: str
    created_at: datetime
    created_by: str
    mac: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RoleBindingRecord:
    """A role granted to a principal on a scope (``instance``, ``key_ring:<id>``, ``key:<id>``).

    ``(instance_id, principal_id, role, scope)`` is unique."""

    instance_id: str
    id: str
    principal_id: str
    role: str
    scope: str
    created_at: datetime
    created_by: str
    mac: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A single-use refresh token, stored as the hex SHA-256 ``lookup`` of the token.

    ``api_key_id`` names the API key the session started with (deleting the key ends the
    session); ``expires_at`` is when the session ends."""

    lookup: str = field(repr=False)
    instance_id: str
    id: str
    principal_id: str
    api_key_id: str
    created_at: datetime
    expires_at: datetime
    mac: str = field(repr=False)
