"""The audit ledger: hash-chained events, chain heads, signed checkpoints, forwarder cursors,
and each instance's audit settings (fail open for wrap/unwrap).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Self-contained like the earlier revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_time", _when(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "seq", name="pk_audit_events"),
    )
    op.create_index(
        "ix_audit_events_instance_id_event_time", "audit_events", ["instance_id", "event_time"]
    )
    op.create_table(
        "audit_heads",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("next_seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger(), nullable=True),
        sa.Column("checkpoint_at", _when(), nullable=True),
        sa.PrimaryKeyConstraint("instance_id", name="pk_audit_heads"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("issued_at", _when(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "seq", name="pk_audit_checkpoints"),
    )
    op.create_table(
        "audit_cursors",
        sa.Column("sink", _ident(), nullable=False),
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sink", "instance_id", name="pk_audit_cursors"),
    )
    op.create_table(
        "audit_settings",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("fail_open", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_audit_settings"),
    )


def downgrade() -> None:
    op.drop_table("audit_settings")
    op.drop_table("audit_cursors")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_heads")
    op.drop_index("ix_audit_events_instance_id_event_time", table_name="audit_events")
    op.drop_table("audit_events")
