"""The start-up warning for several workers on SQLite (kyok.cli.server.workers_advice): every
call's audit event is committed durably by the node's one ledger writer, which sets the pace
(docs/server.md)."""

from __future__ import annotations

from pathlib import Path

from kyok.cli.server import workers_advice
from kyok.settings import Settings


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings.load(env={}, overrides={"data_dir": tmp_path, **overrides})


def test_several_workers_on_sqlite_are_warned_about(tmp_path: Path) -> None:
    advice = workers_advice(_settings(tmp_path, **{"server.workers": 2}))
    assert advice is not None and "2 workers on SQLite" in advice and "one worker" in advice


def test_one_worker_or_postgresql_needs_no_advice(tmp_path: Path) -> None:
    assert workers_advice(_settings(tmp_path)) is None
    postgres = {"server.workers": 4, "database_url": "postgresql+psycopg://kyok@db/kyok"}
    assert workers_advice(_settings(tmp_path, **postgres)) is None
