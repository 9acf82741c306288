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
    last_synced_at: datetime | None = None
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


# ---------------------------------------------------------------- import tokens, policies,
# deletion authorisations and registrations (Key Protect reference §2.3-§2.5, §2.8)


@dataclass(frozen=True, slots=True)
class ImportTokenRecord:
    """The instance's import token (at most one per instance; a new one replaces it).

    Its private keys live in a blob of purpose ``import-token`` owned by ``id``; the record
    holds only public values. ``public_key`` is the DER SubjectPublicKeyInfo of the RSA-4096
    key, ``hybrid_public_key`` kyok's encoding of the ML-KEM-768 + X25519 key,
    ``nonce`` the random bytes an importer must encrypt under its key material.
    """

    instance_id: str
    id: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    max_retrievals: int
    remaining_retrievals: int
    nonce: bytes
    public_key: bytes
    hybrid_public_key: bytes
    row_version: int = 1


#: Key policy types.
KEY_POLICY_ROTATION = "rotation"
KEY_POLICY_DUAL_AUTH_DELETE = "dualAuthDelete"


@dataclass(frozen=True, slots=True)
class KeyPolicyRecord:
    """One policy of a key; ``(instance_id, key_id, policy_type)`` is the key.

    ``interval_months`` and ``next_rotation_at`` are for ``rotation`` only;
    ``next_rotation_at`` is set while the policy is enabled (when the scheduler rotates next).
    """

    instance_id: str
    key_id: str
    policy_type: str
    enabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    interval_months: int | None = None
    next_rotation_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeletionAuthorizationRecord:
    """The first approval of a dual-authorisation delete (at most one per key)."""

    instance_id: str
    key_id: str
    principal_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InstancePolicyRecord:
    """One policy of an instance; ``(instance_id, policy_type)`` is the key.

    ``attributes`` is canonical JSON text of the policy's attributes (``{}`` when none).
    """

    instance_id: str
    policy_type: str
    enabled: bool
    attributes: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    """A resource (a CRN) that a key protects, recorded by the service that owns it.

    ``(instance_id, key_id, resource_crn)`` is the key. ``registration_metadata`` is the
    service's own opaque text; ``key_version_id`` the key version the resource uses.
    """

    instance_id: str
    key_id: str
    resource_crn: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    key_version_id: str
    prevent_key_deletion: bool = False
    description: str | None = None
    registration_metadata: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationQuery:
    """What to list: one key's registrations or the instance's, optionally filtered.

    ``crn_pattern`` matches the whole CRN where ``*`` stands for any run of characters (every
    other character, ``%`` and ``_`` included, is literal).
    """

    instance_id: str
    key_id: str | None = None
    crn_pattern: str | None = None
    prevent_key_deletion: bool | None = None
    limit: int = 200
    offset: int = 0


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


# ---------------------------------------------------------------- the audit ledger


@dataclass(frozen=True, slots=True)
class AuditEntryRecord:
    """One event of an instance's hash-chained audit ledger, as stored.

    ``body`` is the canonical JSON of the event (``kyok.audit.AuditEvent.to_json()``);
    ``event_time``, ``action`` and ``outcome`` repeat three of its members so that the ledger can
    be searched without parsing. ``prev_hash`` and ``hash`` are the 32-byte chain hashes. The
    store keeps what it is given: the chain is made and checked in ``kyok.audit``.
    """

    instance_id: str
    seq: int
    event_time: datetime
    action: str
    outcome: str
    body: str
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class AuditHeadRecord:
    """Where an instance's ledger stands: the next seq and the hash it links to, plus the last
    signed checkpoint (``checkpoint_seq`` is None before the first one)."""

    instance_id: str
    next_seq: int
    hash: bytes
    checkpoint_seq: int | None
    checkpoint_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditCheckpointRecord:
    """A signed checkpoint: ``body`` is the canonical JSON of ``kyok.audit.Checkpoint``."""

    instance_id: str
    seq: int
    issued_at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class AuditSettingsRecord:
    """An instance's audit choices: ``fail_open`` lets wrap, unwrap and rewrap go on while the
    ledger cannot be written (their events are written once it can); nothing else ever does."""

    instance_id: str
    fail_open: bool
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which ledger entries to read, in seq order.

    Attributes:
        instance_id: the ledger.
        after_seq: only entries with a larger seq (None: from the first).
        until_seq: only entries with ``seq <= until_seq`` (None: to the last).
        since: only events at or after this time.
        until: only events before this time.
        actions: only these actions (empty: any).
        outcome: only ``success`` or ``failure`` (None: both).
        limit: at most this many (1..10,000).
    """

    instance_id: str
    after_seq: int | None = None
    until_seq: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    actions: tuple[str, ...] = ()
    outcome: str | None = None
    limit: int = 1000
