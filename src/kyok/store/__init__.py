"""Persistence. ``ports`` and ``records`` are plain Python (no SQLAlchemy) so that ``kms`` can
depend on them; ``sql`` is the SQLAlchemy Core implementation (SQLite and PostgreSQL)."""
