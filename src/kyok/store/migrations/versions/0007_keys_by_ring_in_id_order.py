"""An index for an instance's keys in one key ring, in id order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

``ix_keys_instance_id_key_ring_id_id`` on ``keys (instance_id, key_ring_id, id)``. A list or
search within a key ring is ordered by id and cut to a page. The only index that had the ring,
``(instance_id, key_ring_id, state)``, does not give id order, so SQLite (whose statistics, a
mean of keys per ring, cannot tell a small ring from a large one) walked the primary key in id
order instead and read every key of the instance to find the few of a small ring:
~2.2 s a request with 1,000,000 keys, 4,036 of them in the ring (bench/keys_list.py,
``STORE=sqlite``). With this index the ring's keys come in id order from one range: no sort,
and only the ring's rows are read.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_keys_instance_id_key_ring_id_id"


def upgrade() -> None:
    op.create_index(_INDEX, "keys", ["instance_id", "key_ring_id", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="keys")
