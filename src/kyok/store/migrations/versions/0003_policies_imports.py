"""Import tokens, key and instance policies, deletion authorisations, registrations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-15

Also ``keys.last_synced_at`` (nullable). Self-contained like 0001 and 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(sa.Column("last_synced_at", _when(), nullable=True))

    op.create_table(
        "import_tokens",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("max_retrievals", sa.Integer(), nullable=False),
        sa.Column("remaining_retrievals", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("hybrid_public_key", sa.LargeBinary(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_import_tokens"),
    )
    op.create_index("ix_import_tokens_expires_at", "import_tokens", ["expires_at"])

    op.create_table(
        "key_policies",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("key_id", _ident(), nullable=False),
        sa.Column("policy_type", _ident(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_months", sa.Integer(), nullable=True),
        sa.Column("next_rotation_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "key_id", "policy_type", name="pk_key_policies"),
    )
    op.create_index(
        "ix_key_policies_enabled_next_rotation_at",
        "key_policies",
        ["enabled", "next_rotation_at"],
    )

    op.create_table(
        "deletion_authorizations",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("key_id", _ident(), nullable=False),
        sa.Column("principal_id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "key_id", name="pk_deletion_authorizations"),
    )

    op.create_table(
        "instance_policies",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("policy_type", _ident(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "policy_type", name="pk_instance_policies"),
    )

    op.create_table(
        "registrations",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("key_id", _ident(), nullable=False),
        sa.Column("resource_crn", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("key_version_id", _ident(), nullable=False),
        sa.Column("prevent_key_deletion", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("registration_metadata", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("instance_id", "key_id", "resource_crn", name="pk_registrations"),
    )
    op.create_index(
        "ix_registrations_instance_id_resource_crn",
        "registrations",
        ["instance_id", "resource_crn"],
    )


def downgrade() -> None:
    op.drop_table("registrations")
    op.drop_table("instance_policies")
    op.drop_table("deletion_authorizations")
    op.drop_table("key_policies")
    op.drop_table("import_tokens")
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("last_synced_at")
