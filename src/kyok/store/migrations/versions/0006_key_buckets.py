"""Key counts per id bucket, kept by triggers: deep pages and totals that do not walk every key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

``key_buckets (instance_id, state, bucket, n)``: ``n`` keys of the instance in that state have
ids starting with ``bucket``, the first 3 characters of the id (key ids are UUID4 text: 4096
buckets, ~250 keys each at a million keys). A row exists only while ``n > 0``. Ids compare
byte-wise (``COLLATE "C"``), and a prefix sorts before everything it starts, so the ids of
bucket ``b`` and of every later bucket are exactly the ids ``>= b``: that is how
``kyok.store.sql.key_query`` jumps to a deep page (see its module docstring).

Triggers on ``keys`` keep the table exact whoever writes (the repositories, bulk inserts,
plain SQL), in the writer's transaction:

- PostgreSQL: ``AFTER INSERT`` and ``AFTER DELETE`` are statement triggers over transition
  tables: one upsert of the statement's rows counted per bucket (a bulk insert of a million
  keys touches each bucket row once, not once per key). ``AFTER UPDATE OF state, instance_id,
  id`` is a row trigger whose ``WHEN`` lets it run only when the key changes bucket (its state,
  nearly always): the updates that leave the state alone (rotation, renames, row version bumps)
  cost nothing. ``AFTER TRUNCATE`` empties the table.
- SQLite: row triggers (it has no other kind) doing the same, with an upsert.

Locks (PostgreSQL): a write locks the bucket rows it changes until it commits, so concurrent
creations in one instance wait for each other only when they share a bucket row (random ids
spread them over 4096 per state). Every trigger statement upserts its rows in primary-key
order (``ORDER BY instance_id, state, bucket``), so a multi-row INSERT or DELETE takes its
bucket rows in ascending order whatever the order of its keys, and a state change takes its
two rows (old state, new state) in one such statement. A transaction of several statements
takes them in statement order: ``SqlKeyRepository.add_many`` (a key-creation batch: one
INSERT per key) sorts its keys in that same order, and kyok changes the state of, or deletes,
one key per transaction (updates that leave the state alone take no bucket row). So every
transaction takes its bucket rows in ascending order, before the audit head it locks last,
and no two can wait for each other in a cycle. Plain SQL that ignores this (several
statements in descending bucket order, in parallel) can deadlock; PostgreSQL then aborts one
transaction (kyok reports ``Unavailable``, which may be retried).

The upgrade fills the table from the existing keys while holding ``keys`` against writes
(``CREATE TRIGGER`` on PostgreSQL takes a SHARE ROW EXCLUSIVE lock until the migration
commits; SQLite's migration holds the write lock), so no key is missed or counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A bucket is ``substr(id, 1, 3)`` everywhere below: the first 3 characters of the key id.


def _ident() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


# ---------------------------------------------------------------- PostgreSQL

_PG_FUNCTIONS = {
    "kyok_key_buckets_insert": """
BEGIN
    INSERT INTO key_buckets AS b (instance_id, state, bucket, n)
    SELECT instance_id, state, substr(id, 1, 3), count(*)
    FROM kyok_new_keys
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (instance_id, state, bucket) DO UPDATE SET n = b.n + excluded.n;
    RETURN NULL;
END
""",
    "kyok_key_buckets_delete": """
BEGIN
    INSERT INTO key_buckets AS b (instance_id, state, bucket, n)
    SELECT instance_id, state, substr(id, 1, 3), -count(*)
    FROM kyok_old_keys
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (instance_id, state, bucket) DO UPDATE SET n = b.n + excluded.n;
    DELETE FROM key_buckets b
    USING (SELECT DISTINCT instance_id, state, substr(id, 1, 3) AS bucket
           FROM kyok_old_keys) AS d
    WHERE b.instance_id = d.instance_id AND b.state = d.state AND b.bucket = d.bucket
      AND b.n = 0;
    RETURN NULL;
END
""",
    "kyok_key_buckets_update": """
BEGIN
    INSERT INTO key_buckets AS b (instance_id, state, bucket, n)
    SELECT d.instance_id, d.state, d.bucket, sum(d.n)
    FROM (VALUES (OLD.instance_id, OLD.state, substr(OLD.id, 1, 3), -1),
                 (NEW.instance_id, NEW.state, substr(NEW.id, 1, 3), 1))
         AS d (instance_id, state, bucket, n)
    GROUP BY 1, 2, 3
    HAVING sum(d.n) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (instance_id, state, bucket) DO UPDATE SET n = b.n + excluded.n;
    DELETE FROM key_buckets
    WHERE instance_id = OLD.instance_id AND state = OLD.state
      AND bucket = substr(OLD.id, 1, 3) AND n = 0;
    RETURN NULL;
END
""",
    "kyok_key_buckets_truncate": """
BEGIN
    DELETE FROM key_buckets;
    RETURN NULL;
END
""",
}

_PG_TRIGGERS = {
    "key_buckets_insert": """
AFTER INSERT ON keys REFERENCING NEW TABLE AS kyok_new_keys
FOR EACH STATEMENT EXECUTE FUNCTION kyok_key_buckets_insert()""",
    "key_buckets_delete": """
AFTER DELETE ON keys REFERENCING OLD TABLE AS kyok_old_keys
FOR EACH STATEMENT EXECUTE FUNCTION kyok_key_buckets_delete()""",
    "key_buckets_update": """
AFTER UPDATE OF state, instance_id, id ON keys FOR EACH ROW
WHEN (OLD.state IS DISTINCT FROM NEW.state
      OR OLD.instance_id IS DISTINCT FROM NEW.instance_id
      OR substr(OLD.id, 1, 3) IS DISTINCT FROM substr(NEW.id, 1, 3))
EXECUTE FUNCTION kyok_key_buckets_update()""",
    "key_buckets_truncate": """
AFTER TRUNCATE ON keys FOR EACH STATEMENT EXECUTE FUNCTION kyok_key_buckets_truncate()""",
}

# ---------------------------------------------------------------- SQLite

# A row trigger counts the key in its new bucket (NEW) and out of its old one (OLD); an update
# that moves a key between buckets does both.
_SQLITE_COUNT_IN = """
    INSERT INTO key_buckets (instance_id, state, bucket, n)
    VALUES (NEW.instance_id, NEW.state, substr(NEW.id, 1, 3), 1)
    ON CONFLICT (instance_id, state, bucket) DO UPDATE SET n = n + 1;"""
_SQLITE_COUNT_OUT = """
    UPDATE key_buckets SET n = n - 1
    WHERE instance_id = OLD.instance_id AND state = OLD.state
      AND bucket = substr(OLD.id, 1, 3);
    DELETE FROM key_buckets
    WHERE instance_id = OLD.instance_id AND state = OLD.state
      AND bucket = substr(OLD.id, 1, 3) AND n <= 0;"""

_SQLITE_TRIGGERS = {
    "key_buckets_insert": f"""
AFTER INSERT ON keys FOR EACH ROW BEGIN{_SQLITE_COUNT_IN}
END""",
    "key_buckets_delete": f"""
AFTER DELETE ON keys FOR EACH ROW BEGIN{_SQLITE_COUNT_OUT}
END""",
    "key_buckets_update": f"""
AFTER UPDATE OF state, instance_id, id ON keys FOR EACH ROW
WHEN OLD.state IS NOT NEW.state OR OLD.instance_id IS NOT NEW.instance_id
     OR substr(OLD.id, 1, 3) IS NOT substr(NEW.id, 1, 3)
BEGIN{_SQLITE_COUNT_OUT}{_SQLITE_COUNT_IN}
END""",
}

_FILL = """
INSERT INTO key_buckets (instance_id, state, bucket, n)
SELECT instance_id, state, substr(id, 1, 3), count(*)
FROM keys
GROUP BY instance_id, state, substr(id, 1, 3)
"""


def upgrade() -> None:
    op.create_table(
        "key_buckets",
        sa.Column("instance_id", _ident(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("bucket", _ident(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "state", "bucket", name="pk_key_buckets"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE")  # no writes until commit
        for name, body in _PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body${body}$body$"
            )
        for name, definition in _PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")
    else:
        for name, definition in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")
    op.execute(_FILL)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in _PG_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON keys" if postgresql else ""))
    if postgresql:
        for name in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("key_buckets")
