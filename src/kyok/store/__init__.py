"""Persistence.

- ``ports`` and ``records``: what the domain and the crypto unit may rely on; plain Python
  (no SQLAlchemy), so that ``kms`` can depend on them.
- ``memory``: ``MemoryStore``, the in-memory reference implementation (tests, fakes).
- ``sql``: ``SqlStore`` / ``open_store(url)``, SQLAlchemy Core on SQLite (default) and
  PostgreSQL, with Alembic migrations in ``migrations``.

Nothing here imports ``sql`` eagerly: importing ``kyok.store.ports`` does not load SQLAlchemy.
"""
