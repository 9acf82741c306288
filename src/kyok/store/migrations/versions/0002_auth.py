"""Credentials: principals, API keys, role bindings, refresh tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01

Every row carries ``mac``, an HMAC computed by the instance's crypto unit (kyok.auth), so that
whoever can write the database cannot mint a credential. Self-contained like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_principals"),
    )
    op.create_index(
        "ix_principals_instance_id_name", "principals", ["instance_id", "name"], unique=True
    )
    op.create_table(
        "api_keys",
        sa.Column("lookup", _ident(), nullable=False),
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("principal_id", _ident(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lookup", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_instance_id_id", "api_keys", ["instance_id", "id"], unique=True)
    op.create_index(
        "ix_api_keys_instance_id_principal_id", "api_keys", ["instance_id", "principal_id"]
    )
    op.create_table(
        "role_bindings",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("principal_id", _ident(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "id", name="pk_role_bindings"),
    )
    op.create_index(
        "ix_role_bindings_instance_id_principal_id_role_scope",
        "role_bindings",
        ["instance_id", "principal_id", "role", "scope"],
        unique=True,
    )
    op.create_index("ix_role_bindings_instance_id_role", "role_bindings", ["instance_id", "role"])
    op.create_table(
        "refresh_tokens",
        sa.Column("lookup", _ident(), nullable=False),
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("id", _ident(), nullable=False),
        sa.Column("principal_id", _ident(), nullable=False),
        sa.Column("api_key_id", _ident(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lookup", name="pk_refresh_tokens"),
    )
    op.create_index(
        "ix_refresh_tokens_instance_id_principal_id",
        "refresh_tokens",
        ["instance_id", "principal_id"],
    )
    op.create_index(
        "ix_refresh_tokens_instance_id_api_key_id", "refresh_tokens", ["instance_id", "api_key_id"]
    )
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("refresh_tokens")
    op.drop_table("role_bindings")
    op.drop_table("api_keys")
    op.drop_table("principals")
