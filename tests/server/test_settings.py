"""Settings: defaults, a TOML file, ``KYOK_*`` variables and flags, in that order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from kyok.bootstrap import timers_from
from kyok.settings import DEFAULT_PORT, ENV_VARS, Settings, parse_duration

CONFIG = """
data_dir = "state"
database_url = "postgresql+psycopg://kyok@db.example/kyok"
seal = "shares"
log_level = "debug"

[server]
host = "0.0.0.0"
port = 8443
tls_cert = "tls/cert.pem"
tls_key = "/etc/kyok/key.pem"
region = "eu-de"

[timers]
enable_delay = "0s"
restore_delay = 5
purge_after = "2h"
restore_window = "7d"

[scheduler]
interval = "15m"

[tokens]
access_ttl = "10m"
"""


def test_defaults() -> None:
    s = Settings.load(env={})
    assert s.server.host == "127.0.0.1" and s.server.port == DEFAULT_PORT == 8200
    assert s.server.tls is False and s.seal == "shares" and s.database_url is None
    assert s.timers.enable_delay == timedelta(seconds=30) and s.scheduler.interval == timedelta(
        seconds=60
    )
    assert s.resolved_database_url.startswith("sqlite:///") and s.resolved_database_url.endswith(
        "kyok-data/kyok.db"
    )


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "kyok.toml"
    config.write_text(CONFIG)
    s = Settings.load(config, env={})
    assert s.data_dir == tmp_path / "state"  # relative paths are relative to the file
    assert s.server.tls_cert == tmp_path / "tls/cert.pem" and s.server.tls_key == Path(
        "/etc/kyok/key.pem"
    )
    assert (s.server.host, s.server.port, s.server.region, s.log_level) == (
        "0.0.0.0",
        8443,
        "eu-de",
        "debug",
    )
    assert s.timers.enable_delay == timedelta(0) and s.timers.restore_delay == timedelta(seconds=5)
    assert s.scheduler.interval == timedelta(minutes=15) and s.tokens.access_ttl == timedelta(
        minutes=10
    )
    timers = timers_from(s)
    assert timers.purge_after == timedelta(hours=2) and timers.restore_window == timedelta(days=7)
    env = {
        "KYOK_PORT": "9000",
        "KYOK_TIMER_ENABLE_DELAY": "1m",
        "KYOK_SEAL": "dev",
        "KYOK_VENDOR_CONTENT_TYPES": "false",
    }
    s = Settings.load(config, env=env, overrides={"server.port": 9100, "data_dir": None})
    assert s.server.port == 9100  # flags win over the environment
    assert s.timers.enable_delay == timedelta(minutes=1) and s.seal == "dev"
    assert s.server.vendor_content_types is False and s.data_dir == tmp_path / "state"


def test_every_setting_has_an_environment_variable() -> None:
    names = set(ENV_VARS.values())
    for section in ("server", "timers", "scheduler", "tokens"):
        for field in Settings.model_fields[section].annotation.model_fields:
            assert f"{section}.{field}" in names
    for field in ("data_dir", "database_url", "seal", "handle_cache_size", "log_level"):
        assert field in names
    assert all(var.startswith("KYOK_") for var in ENV_VARS)


@pytest.mark.parametrize(
    "text",
    ["[server]\nport = 70000", "[server]\ntls_cert = 'c.pem'", "unknown = 1", "[timers]\nenable_delay = 'soon'",
     "seal = 'pkcs11'", "[timers]\npurge_after = '100d'"],
)  # fmt: skip
def test_bad_files_are_refused(tmp_path: Path, text: str) -> None:
    config = tmp_path / "kyok.toml"
    config.write_text(text)
    with pytest.raises((ValidationError, ValueError)):
        timers_from(Settings.load(config, env={}))


def test_durations() -> None:
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(30) == timedelta(seconds=30)
    for bad in ("", "-1s", "1w", True, -5, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
