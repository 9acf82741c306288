"""The schema, as one SQLAlchemy ``MetaData``. Migrations must create exactly this
(``tests/store/test_migrations.py`` compares them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

from kyok.store.sql.types import TagList, UTCDateTime, ident

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

instances = Table(
    "instances",
    metadata,
    Column("id", ident(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit_id", ident(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
)

key_rings = Table(
    "key_rings",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("extractable", Boolean, nullable=False),
    Column("imported", Boolean, nullable=False),
    Column("state", Integer, nullable=False),
    Column("key_ring_id", ident(), nullable=False),
    Column("tags", TagList, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_action_at", UTCDateTime, nullable=False),
    Column("current_version_id", ident(), nullable=False),
    Column("version_count", Integer, nullable=False),
    Column("bit_length", Integer, nullable=True),
    Column("last_rotated_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("deleted_by", Text, nullable=True),
    Column("state_reason", Integer, nullable=True),
    Column("last_synced_at", UTCDateTime, nullable=True),
    Column("row_version", Integer, nullable=False),
    # listing: an instance's keys in one state, in id order
    Index(None, "instance_id", "state", "id"),
    # counting an instance's keys in some states (list totals, Key-Total, the search scope):
    # without ids its entries deduplicate, so it is ~20 times smaller than the index above
    Index(None, "instance_id", "state"),
    # exact name lookups and name-ordered scans within an instance
    Index(None, "instance_id", "name"),
    # count_in_ring / move_ring / list by ring
    Index(None, "instance_id", "key_ring_id", "state"),
    # a key ring's keys in id order: a page of a list or search within a ring (migration 0007)
    Index(None, "instance_id", "key_ring_id", "id"),
    # the expiry sweep (all instances)
    Index(None, "expires_at"),
)

#: How many keys of an instance in one state have ids starting with ``bucket`` (their first
#: 3 characters); a row exists only while ``n > 0``. Database triggers on ``keys`` keep it
#: exact on every write (migration 0006, which documents them and their locking); nothing in
#: kyok writes it. ``key_query`` reads it to find deep pages and totals without walking keys.
key_buckets = Table(
    "key_buckets",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("state", Integer, primary_key=True),
    Column("bucket", ident(), primary_key=True),
    Column("n", Integer, nullable=False),
)

#: The triggers on ``keys`` that keep ``key_buckets`` on every backend (migration 0006; not in
#: ``metadata``). PostgreSQL also has ``key_buckets_truncate``, and a function per trigger.
KEY_BUCKET_TRIGGERS = frozenset({"key_buckets_insert", "key_buckets_update", "key_buckets_delete"})

key_versions = Table(
    "key_versions",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("key_id", ident(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "instance_id", "key_id", "number", unique=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("owner_id", ident(), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("mk_epoch", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # master-key rotation walks an instance's blobs at one epoch, in id order
    Index(None, "instance_id", "mk_epoch", "id"),
    Index(None, "instance_id", "owner_id"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("key_id", ident(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Index(None, "instance_id", "key_id"),
)

#: Indexes that migrations create only where the backend can, and that nothing depends on
#: (queries return the same rows without them): on PostgreSQL with the pg_trgm extension, a
#: trigram index on ``lower(alias)`` for substring searches over aliases (migration 0005).
#: They are not in ``metadata``; schema comparisons leave them out.
OPTIONAL_INDEXES = frozenset({"ix_aliases_alias_trgm"})

units = Table(
    "units",
    metadata,
    Column("unit_id", ident(), primary_key=True),
    Column("instance_id", ident(), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

unit_transcript = Table(
    "unit_transcript",
    metadata,
    Column(
        "unit_id",
        ident(),
        ForeignKey(units.c.unit_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("n", Integer, primary_key=True),
    Column("entry", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("mac", Text, nullable=True),
)

# ---------------------------------------------------------------- credentials (kyok.auth)

principals = Table(
    "principals",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Index(None, "instance_id", "name", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("lookup", ident(), primary_key=True),
    Column("instance_id", ident(), nullable=False),
    Column("id", ident(), nullable=False),
    Column("principal_id", ident(), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Index(None, "instance_id", "id", unique=True),
    Index(None, "instance_id", "principal_id"),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), primary_key=True),
    Column("principal_id", ident(), nullable=False),
    Column("role", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Index(None, "instance_id", "principal_id", "role", "scope", unique=True),
    # "is another administrator left?"
    Index(None, "instance_id", "role"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("lookup", ident(), primary_key=True),
    Column("instance_id", ident(), nullable=False),
    Column("id", ident(), nullable=False),
    Column("principal_id", ident(), nullable=False),
    Column("api_key_id", ident(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("mac", Text, nullable=False),
    Index(None, "instance_id", "principal_id"),
    Index(None, "instance_id", "api_key_id"),
    Index(None, "expires_at"),
)

# ---------------------------------------------------------------- import tokens, policies,
# deletion authorisations and registrations

import_tokens = Table(
    "import_tokens",
    metadata,
    # at most one token per instance
    Column("instance_id", ident(), primary_key=True),
    Column("id", ident(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("max_retrievals", Integer, nullable=False),
    Column("remaining_retrievals", Integer, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("hybrid_public_key", LargeBinary, nullable=False),
    Column("row_version", Integer, nullable=False),
    # the expiry sweep (all instances)
    Index(None, "expires_at"),
)

key_policies = Table(
    "key_policies",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("key_id", ident(), primary_key=True),
    Column("policy_type", ident(), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("interval_months", Integer, nullable=True),
    Column("next_rotation_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text, nullable=False),
    # the rotation scheduler (all instances): enabled policies due by now, earliest first
    Index(None, "enabled", "next_rotation_at"),
)

deletion_authorizations = Table(
    "deletion_authorizations",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("key_id", ident(), primary_key=True),
    Column("principal_id", ident(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

instance_policies = Table(
    "instance_policies",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("policy_type", ident(), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text, nullable=False),
)

registrations = Table(
    "registrations",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("key_id", ident(), primary_key=True),
    Column("resource_crn", ident(), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("key_version_id", ident(), nullable=False),
    Column("prevent_key_deletion", Boolean, nullable=False),
    Column("description", Text, nullable=True),
    Column("registration_metadata", Text, nullable=True),
    # an instance's registrations by CRN, across keys
    Index(None, "instance_id", "resource_crn"),
)

# ---------------------------------------------------------------- the audit ledger

audit_events = Table(
    "audit_events",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_time", UTCDateTime, nullable=False),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    # time-range reads and exports
    Index(None, "instance_id", "event_time"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("next_seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("checkpoint_seq", BigInteger, nullable=True),
    Column("checkpoint_at", UTCDateTime, nullable=True),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("body", Text, nullable=False),
)

audit_cursors = Table(
    "audit_cursors",
    metadata,
    Column("sink", ident(), primary_key=True),
    Column("instance_id", ident(), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

audit_settings = Table(
    "audit_settings",
    metadata,
    Column("instance_id", ident(), primary_key=True),
    Column("fail_open", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text, nullable=False),
)
