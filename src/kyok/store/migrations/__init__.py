"""Alembic migrations of kyok's schema (``env.py``, ``versions/``), run from code by
``kyok.store.sql.migrate``. A package so that ``env.py`` ships with kyok."""
