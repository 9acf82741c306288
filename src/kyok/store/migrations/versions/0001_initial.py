"""Initial schema: instances, key rings, keys, versions, blobs, aliases, crypto units.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Self-contained on purpose (plain SQLAlchemy types, no imports from kyok): a migration describes
the schema as it was at its revision. ``kyok.store.sql.types`` stores timestamps as
``DateTime(timezone=True)``, tags as JSON ``Text``; identifiers compare byte-wise
(``COLLATE "C"`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit_id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
    )
    op.create_table(
        "key_rings",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_key_rings"),
    )
    op.create_table(
        "keys",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("extractable", sa.Boolean(), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("key_ring_id", _ident(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("last_action_at", _when(), nullable=False),
        sa.Column("current_version_id", _ident(), nullable=False),
        sa.Column("version_count", sa.Integer(), nullable=False),
        sa.Column("bit_length", sa.Integer(), nullable=True),
        sa.Column("last_rotated_at", _when(), nullable=True),
        sa.Column("expires_at", _when(), nullable=True),
        sa.Column("deleted_at", _when(), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.Column("state_reason", sa.Integer(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_keys"),
    )
    op.create_index("ix_keys_instance_id_state_id", "keys", ["instance_id", "state", "id"])
    op.create_index("ix_keys_instance_id_name", "keys", ["instance_id", "name"])
    op.create_index(
        "ix_keys_instance_id_key_ring_id_state", "keys", ["instance_id", "key_ring_id", "state"]
    )
    op.create_index("ix_keys_expires_at", "keys", ["expires_at"])
    op.create_table(
        "key_versions",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("key_id", _ident(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_key_versions"),
    )
    op.create_index(
        "ix_key_versions_instance_id_key_id_number",
        "key_versions",
        ["instance_id", "key_id", "number"],
        unique=True,
    )
    op.create_table(
        "blobs",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("owner_id", _ident(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("mk_epoch", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_blobs"),
    )
    op.create_index("ix_blobs_instance_id_mk_epoch_id", "blobs", ["instance_id", "mk_epoch", "id"])
    op.create_index("ix_blobs_instance_id_owner_id", "blobs", ["instance_id", "owner_id"])
    op.create_table(
        "aliases",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("key_id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "alias", name="pk_aliases"),
    )
    op.create_index("ix_aliases_instance_id_key_id", "aliases", ["instance_id", "key_id"])
    op.create_table(
        "units",
        sa.Column("unit_id", _ident(), nullable=False),
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", name="pk_units"),
        sa.UniqueConstraint("instance_id", name="uq_units_instance_id"),
    )
    op.create_table(
        "unit_transcript",
        sa.Column("unit_id", _ident(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("unit_id", "n", name="pk_unit_transcript"),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.unit_id"],
            name="fk_unit_transcript_unit_id_units",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("unit_transcript")
    op.drop_table("units")
    op.drop_table("aliases")
    op.drop_table("blobs")
    op.drop_table("key_versions")
    op.drop_table("keys")
    op.drop_table("key_rings")
    op.drop_table("instances")
