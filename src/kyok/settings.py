"""Node settings: where data lives, which database, which seal for new instances, the HTTP
listener, timers and token lifetimes.

Every setting has a default, a key in the TOML config file (``kyok server --config FILE``) and a
``KYOK_*`` environment variable; command-line flags win over the environment, which wins over
the file, which wins over the defaults. :data:`ENV_VARS` is the one table of variables::

    data_dir = "/var/lib/kyok"             # KYOK_DATA_DIR
    database_url = "postgresql+psycopg://kyok@db/kyok"   # KYOK_DATABASE_URL (default: SQLite)
    seal = "shares"                        # KYOK_SEAL: seal of instances created later
    handle_cache_size = 100000             # KYOK_HANDLE_CACHE_SIZE
    log_level = "info"                     # KYOK_LOG_LEVEL

    [server]
    host = "127.0.0.1"                     # KYOK_HOST
    port = 8200                            # KYOK_PORT
    tls_cert = "/etc/kyok/tls.crt"         # KYOK_TLS_CERT (PEM chain)
    tls_key = "/etc/kyok/tls.key"          # KYOK_TLS_KEY
    region = "local"                       # KYOK_REGION: the region part of key CRNs
    vendor_content_types = true            # KYOK_VENDOR_CONTENT_TYPES
    max_body_bytes = 1048576               # KYOK_MAX_BODY_BYTES
    max_batch_body_bytes = 16777216        # KYOK_MAX_BATCH_BODY_BYTES (the batch endpoints)
    workers = 1                            # KYOK_WORKERS: processes on one socket, unsealed once
    import_token_rsa_bits = 4096           # KYOK_IMPORT_TOKEN_RSA_BITS (2048, 3072 or 4096)
    private_networks = ["10.0.0.0/8"]      # KYOK_PRIVATE_NETWORKS (comma list): callers that are
                                           # "private" to allowedNetwork private-only; default:
                                           # loopback, RFC 1918, fc00::/7, link-local

    [timers]                               # KYOK_TIMER_<NAME>, e.g. KYOK_TIMER_ENABLE_DELAY=0s
    enable_delay = "30s"
    restore_delay = "30s"
    min_rotate_interval = "1h"
    purge_after = "4h"
    restore_window = "30d"
    auto_purge_after = "90d"
    dual_auth_window = "7d"
    sync_interval = "1h"

    [scheduler]
    interval = "60s"                       # KYOK_SCHEDULER_INTERVAL (0s: no scheduler)

    [tokens]
    access_ttl = "1h"                      # KYOK_ACCESS_TOKEN_TTL
    refresh_ttl = "1d"                     # KYOK_REFRESH_TOKEN_TTL

    [audit]                                # KYOK_AUDIT_<NAME>, e.g. KYOK_AUDIT_JSONL_PATH
    checkpoint_every_events = 1000         # sign a checkpoint after this many events...
    checkpoint_every_seconds = 60          # ...or when the last one is this old
    max_batch = 2000                       # most events in one group commit
    commit_delay_ms = 1.0                  # a busy event loop's events wait at most this long for a commit
    jsonl_path = "/var/log/kyok/audit.jsonl"   # also copy every event here (default: none)
    syslog_host = "logs.example"           # also send it to syslog over mutual TLS (RFC 5425)
    syslog_port = 6514
    syslog_ca = "/etc/kyok/syslog-ca.pem"
    syslog_cert = "/etc/kyok/syslog-client.pem"
    syslog_key = "/etc/kyok/syslog-client.key"

Durations are seconds (a number) or a number with a unit: ``ms``, ``s``, ``m``, ``h``, ``d``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PRIVATE_NETWORKS",
    "ENV_VARS",
    "AuditSettings",
    "Duration",
    "SchedulerSettings",
    "SealKind",
    "ServerSettings",
    "Settings",
    "TimerSettings",
    "TokenSettings",
    "parse_duration",
]

SealKind = Literal["dev", "shares"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]

#: kyok's default port (Vault uses 8200 too; both are meant to be moved in production).
DEFAULT_PORT = 8200

#: Networks that count as private for the ``allowedNetwork: private-only`` instance policy:
#: loopback, RFC 1918, IPv6 unique-local (fc00::/7) and link-local addresses.
DEFAULT_PRIVATE_NETWORKS: tuple[str, ...] = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "169.254.0.0/16",
    "fe80::/10",
)
#: The RSA sizes an import token may have.
IMPORT_TOKEN_RSA_BITS = (2048, 3072, 4096)

_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    """Read a duration: a timedelta, seconds as a number, or ``"<number><ms|s|m|h|d>"``.

    Args:
        value: the raw value from a file, the environment or code.

    Returns:
        The duration.

    Raises:
        ValueError: anything else, or a negative number.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s', '4h', '30d'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION_RE.fullmatch(value)
        if match is not None:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError("a duration is a number of seconds or text like '30s', '4h', '30d'")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _cidr_list(value: object) -> object:
    """A comma-separated string (from the environment) becomes a list; lists stay."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    """The HTTP listener and how the Key Protect API presents itself."""

    host: str = Field(default="127.0.0.1", description="listen address")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="listen port")
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain for TLS")
    tls_key: Path | None = Field(default=None, description="PEM private key for TLS")
    region: str = Field(
        default="local", pattern=r"^[a-z0-9-]{1,32}$", description="region in key CRNs"
    )
    vendor_content_types: bool = Field(
        default=True,
        description="answer create/restore/wrap/unwrap/rewrap with Key Protect's vendor "
        "content types (IBM's Python examples need them)",
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="largest request body accepted"
    )
    max_batch_body_bytes: int = Field(
        default=16 << 20,
        ge=1024,
        description="largest request body accepted by the batch endpoints "
        "(/api/v2/kyok/keys/{id}/actions/batch-*: up to 10,000 items)",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes serving the API on one listening socket; the node is "
        "unsealed once and its workers share the unit's keys over the node link "
        "(docs/architecture.md §7)",
    )
    import_token_rsa_bits: int = Field(
        default=4096,
        description="size of the RSA key of new import tokens: 2048, 3072 or 4096 (Key "
        "Protect's); smaller ones are quicker to make (tests)",
    )
    private_networks: Annotated[tuple[str, ...], BeforeValidator(_cidr_list)] = Field(
        default=DEFAULT_PRIVATE_NETWORKS,
        description="CIDRs whose callers count as private for the allowedNetwork "
        "private-only instance policy (the socket peer's address is checked)",
    )

    @field_validator("import_token_rsa_bits")
    @classmethod
    def _rsa_bits(cls, value: int) -> int:
        if value not in IMPORT_TOKEN_RSA_BITS:
            raise ValueError("import_token_rsa_bits must be 2048, 3072 or 4096")
        return value

    @field_validator("private_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normal: list[str] = []
        for item in value:
            try:
                network = str(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"private_networks: {item!r} is not a CIDR") from None
            if network not in normal:
                normal.append(network)
        return tuple(normal)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def tls(self) -> bool:
        """True when the listener speaks TLS."""
        return self.tls_cert is not None


class TimerSettings(_Section):
    """The key-rule timers (DESIGN §4); Key Protect's values by default."""

    enable_delay: Duration = timedelta(seconds=30)
    restore_delay: Duration = timedelta(seconds=30)
    min_rotate_interval: Duration = timedelta(hours=1)
    purge_after: Duration = timedelta(hours=4)
    restore_window: Duration = timedelta(days=30)
    auto_purge_after: Duration = timedelta(days=90)
    dual_auth_window: Duration = timedelta(days=7)
    sync_interval: Duration = timedelta(hours=1)


class SchedulerSettings(_Section):
    """The background job that deactivates expired keys, purges overdue ones, rotates keys whose
    rotation policy is due and removes expired import tokens."""

    interval: Duration = Field(
        default=timedelta(seconds=60), description="time between runs; 0 turns it off"
    )


class TokenSettings(_Section):
    """Lifetimes of the credentials the token endpoints issue."""

    access_ttl: Duration = Field(
        default=timedelta(hours=1), description="how long an access token lives"
    )
    refresh_ttl: Duration = Field(
        default=timedelta(days=1),
        description="how long a session lasts after its API key was presented",
    )


class AuditSettings(_Section):
    """The audit ledger: checkpoints, group commit and where copies of it are sent."""

    checkpoint_every_events: int = Field(
        default=1000, ge=1, description="sign a checkpoint after this many events"
    )
    checkpoint_every_seconds: float = Field(
        default=60.0, gt=0, description="...or when the last one is this old"
    )
    max_batch: int = Field(default=2000, ge=1, description="most events in one group commit")
    commit_delay_ms: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="at most this long an event waits for its group commit while its event loop "
        "keeps queueing more",
    )
    jsonl_path: Path | None = Field(
        default=None, description="also append every event to this JSON Lines file (0600)"
    )
    syslog_host: str | None = Field(
        default=None, description="also send every event to this syslog receiver (RFC 5425 TLS)"
    )
    syslog_port: int = Field(default=6514, ge=1, le=65535)
    syslog_ca: Path | None = Field(default=None, description="CA that signed the receiver's cert")
    syslog_cert: Path | None = Field(default=None, description="client certificate (PEM)")
    syslog_key: Path | None = Field(default=None, description="client private key (PEM)")

    @model_validator(mode="after")
    def _syslog_files(self) -> AuditSettings:
        if self.syslog_host is not None and None in (
            self.syslog_ca,
            self.syslog_cert,
            self.syslog_key,
        ):
            raise ValueError("audit.syslog_host needs syslog_ca, syslog_cert and syslog_key")
        return self


class Settings(BaseModel):
    """Everything a node is configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(
        default=Path("kyok-data"), description="directory for the SQLite store and dev seal"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in data_dir"
    )
    seal: SealKind = Field(default="shares", description="seal provider for new instances")
    handle_cache_size: int = Field(
        default=100_000, ge=1, description="cached root-key handles per unit"
    )
    log_level: LogLevel = "info"
    server: ServerSettings = ServerSettings()
    timers: TimerSettings = TimerSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    tokens: TokenSettings = TokenSettings()
    audit: AuditSettings = AuditSettings()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/kyok.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kyok.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the ``KYOK_*`` environment, then ``overrides``.

        Args:
            env: the environment (default ``os.environ``).
            overrides: explicit values by field name (e.g. from command-line flags); None
                means "not given".

        Returns:
            The settings.

        Raises:
            pydantic.ValidationError: a value is out of range or malformed.
        """
        return cls.load(None, env=env, overrides=overrides)

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> Settings:
        """Settings from defaults, a TOML file, the environment and overrides, in that order.

        Args:
            config_file: a TOML file (see the module docstring), or None.
            env: the environment (default ``os.environ``); see :data:`ENV_VARS`.
            overrides: explicit values by dotted name (``"server.port"``, ``"data_dir"``);
                None values are skipped.

        Returns:
            The settings.

        Raises:
            OSError: the file cannot be read.
            tomllib.TOMLDecodeError: the file is not TOML.
            pydantic.ValidationError: a value is out of range, malformed or unknown.
        """
        values: dict[str, Any] = {}
        if config_file is not None:
            with open(config_file, "rb") as fh:
                values = tomllib.load(fh)
            base = config_file.parent
            _resolve_paths(values, base)
        env = os.environ if env is None else env
        for var, dotted in ENV_VARS.items():
            raw = env.get(var)
            if raw:
                _put(values, dotted, raw)
        for dotted, value in (overrides or {}).items():
            if value is not None:
                _put(values, dotted, value)
        return cls.model_validate(values)


#: Environment variable -> dotted setting name.
ENV_VARS: Mapping[str, str] = {
    "KYOK_DATA_DIR": "data_dir",
    "KYOK_DATABASE_URL": "database_url",
    "KYOK_SEAL": "seal",
    "KYOK_HANDLE_CACHE_SIZE": "handle_cache_size",
    "KYOK_LOG_LEVEL": "log_level",
    "KYOK_HOST": "server.host",
    "KYOK_PORT": "server.port",
    "KYOK_TLS_CERT": "server.tls_cert",
    "KYOK_TLS_KEY": "server.tls_key",
    "KYOK_REGION": "server.region",
    "KYOK_VENDOR_CONTENT_TYPES": "server.vendor_content_types",
    "KYOK_MAX_BODY_BYTES": "server.max_body_bytes",
    "KYOK_MAX_BATCH_BODY_BYTES": "server.max_batch_body_bytes",
    "KYOK_WORKERS": "server.workers",
    "KYOK_IMPORT_TOKEN_RSA_BITS": "server.import_token_rsa_bits",
    "KYOK_PRIVATE_NETWORKS": "server.private_networks",
    **{f"KYOK_TIMER_{name.upper()}": f"timers.{name}" for name in TimerSettings.model_fields},
    "KYOK_SCHEDULER_INTERVAL": "scheduler.interval",
    "KYOK_ACCESS_TOKEN_TTL": "tokens.access_ttl",
    "KYOK_REFRESH_TOKEN_TTL": "tokens.refresh_ttl",
    **{f"KYOK_AUDIT_{name.upper()}": f"audit.{name}" for name in AuditSettings.model_fields},
}

_FILE_PATHS = (
    "data_dir",
    "server.tls_cert",
    "server.tls_key",
    "audit.jsonl_path",
    "audit.syslog_ca",
    "audit.syslog_cert",
    "audit.syslog_key",
)


def _put(values: dict[str, Any], dotted: str, value: object) -> None:
    *sections, name = dotted.split(".")
    target = values
    for section in sections:
        inner = target.setdefault(section, {})
        if not isinstance(inner, dict):
            raise ValueError(f"[{section}] must be a table")
        target = inner
    target[name] = value


def _resolve_paths(values: dict[str, Any], base: Path) -> None:
    """Make relative paths in a config file relative to the file, not the working directory."""
    for dotted in _FILE_PATHS:
        *sections, name = dotted.split(".")
        target: Any = values
        for section in sections:
            target = target.get(section) if isinstance(target, dict) else None
        if isinstance(target, dict) and isinstance(target.get(name), str):
            path = Path(target[name]).expanduser()
            target[name] = str(path if path.is_absolute() else base / path)
