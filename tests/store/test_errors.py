"""Database failures reach callers as kyok errors, without values in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyok.errors import InternalError, Unavailable
from kyok.store.records import BlobRecord
from kyok.store.sql import SqlStore, open_store, sqlite_url

from . import factories as f


def test_unreachable_postgresql_is_unavailable() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:9/postgres?connect_timeout=2"
    with pytest.raises(Unavailable):
        open_store(url)


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        open_store(sqlite_url(tmp_path / "missing" / "dir"))


def test_a_broken_constraint_is_internal_and_shows_no_values(sql_store: SqlStore) -> None:
    marker = b"SEALED-MARKER-0123456789"
    broken = BlobRecord(
        instance_id=f.INSTANCE,
        owner_id="k1",
        id="v1",
        purpose=None,  # type: ignore[arg-type]  # NOT NULL
        mk_epoch=1,
        data=marker,
    )
    with sql_store.uow() as uow, pytest.raises(InternalError) as info:
        uow.blobs.add(broken)
    assert "SEALED-MARKER" not in str(info.value)
    cause = info.value.__cause__
    assert cause is not None and "SEALED-MARKER" not in str(cause)
    assert "hidden" in str(cause)  # hide_parameters=True


def test_waiting_too_long_for_the_sqlite_write_lock_is_unavailable(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_store(url) as store, store.uow() as holder:
        holder.keys.add(f.key("k1"))  # holds the write lock
        # one pooled connection, told to wait 50 ms instead of 5 s
        impatient = open_store(url, migrate=False, pool_size=1, max_overflow=0)
        try:
            raw = impatient.engine.raw_connection()
            raw.cursor().execute("PRAGMA busy_timeout = 50")
            raw.close()
            with pytest.raises(Unavailable), impatient.uow() as uow:
                uow.keys.get(f.INSTANCE, "k1")
        finally:
            impatient.close()
