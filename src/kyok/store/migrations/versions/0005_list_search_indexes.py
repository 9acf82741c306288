"""Indexes for listing, counting and searching many keys.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

- ``ix_keys_instance_id_state`` on ``keys (instance_id, state)``: every list counts the keys it
  matches, and ``HEAD /keys`` and the search scope check count too. The older
  ``(instance_id, state, id)`` index holds one entry per id; this one deduplicates (a few MiB
  for a million keys instead of ~140 MiB), so counting reads ~20 times fewer pages.
- PostgreSQL only, and only where it can be had: ``ix_aliases_alias_trgm``, a GIN trigram index
  on ``lower(alias)`` (extension ``pg_trgm``). A search matches names and aliases; the alias
  part otherwise scans all of an instance's aliases, twice per request (the page and its
  count). If ``pg_trgm`` is not installed, it is created in schema ``public`` when this role
  may (it is a trusted extension: a database owner may create it, PostgreSQL 13 and later);
  otherwise the index is skipped and searches work as before. It is listed in
  ``kyok.store.sql.tables.OPTIONAL_INDEXES``, not in the metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGRAM_INDEX = "ix_aliases_alias_trgm"  # = kyok.store.sql.tables.OPTIONAL_INDEXES

_log = logging.getLogger("alembic.runtime.migration")

_INSTALLED = sa.text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'pg_trgm'"
)
_MAY_INSTALL = sa.text(
    "SELECT (r.rolsuper OR (v.trusted AND has_database_privilege(current_database(), 'CREATE')))"
    " AND CASE WHEN to_regnamespace('public') IS NULL THEN false"
    " ELSE has_schema_privilege('public', 'CREATE') END"
    " FROM pg_roles r, pg_available_extensions a"
    " JOIN pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version"
    " WHERE r.rolname = current_user AND a.name = 'pg_trgm'"
)


def _trigram_schema(bind: sa.Connection) -> str | None:
    """The schema pg_trgm lives in, installing it into ``public`` first if this role may;
    None when it is not to be had."""
    try:
        # In a savepoint: a failure (an old server without ``trusted``, another node installing
        # the extension at the same moment) must not abort the migration's transaction.
        with bind.begin_nested():
            schema: str | None = bind.execute(_INSTALLED).scalar()
            if schema is None and bind.execute(_MAY_INSTALL).scalar():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                schema = bind.execute(_INSTALLED).scalar()
    except sa.exc.DBAPIError as exc:
        _log.warning("pg_trgm could not be installed (%s): no trigram index", exc.orig)
        return None
    return schema


def upgrade() -> None:
    op.create_index("ix_keys_instance_id_state", "keys", ["instance_id", "state"])
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = _trigram_schema(bind)
    if schema is None:
        _log.info("pg_trgm is not available: alias searches run without a trigram index")
        return
    opclass = bind.dialect.identifier_preparer.quote_identifier(schema) + ".gin_trgm_ops"
    op.execute(f"CREATE INDEX {_TRIGRAM_INDEX} ON aliases USING gin (lower(alias) {opclass})")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {_TRIGRAM_INDEX}")
    op.drop_index("ix_keys_instance_id_state", table_name="keys")
