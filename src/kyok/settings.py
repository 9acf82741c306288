"""Node settings: where data lives, which database, which seal for new instances, timers.

Every setting can come from the environment (``KYOK_*``); a TOML config file arrives with the
server. Defaults give the embedded SQLite store under ``./kyok-data``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SealKind = Literal["dev", "shares"]


class Settings(BaseModel):
    """Where a node keeps its state."""

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

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/kyok.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kyok.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``KYOK_DATA_DIR``, ``KYOK_DATABASE_URL``, ``KYOK_SEAL``, then ``overrides``
        (explicit values, e.g. from command-line flags, win; None means "not given")."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("KYOK_DATA_DIR"):
            values["data_dir"] = Path(env["KYOK_DATA_DIR"])
        if env.get("KYOK_DATABASE_URL"):
            values["database_url"] = env["KYOK_DATABASE_URL"]
        if env.get("KYOK_SEAL"):
            values["seal"] = env["KYOK_SEAL"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
