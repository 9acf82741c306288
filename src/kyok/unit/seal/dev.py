"""The ``dev`` seal: master keys in a 0600 JSON file. FOR DEVELOPMENT ONLY.

Whoever can read ``<data-dir>/dev-seal.json`` can decrypt every key of every dev unit. kyok
warns on every start that uses it. The file is the one documented place where a master key
sits in the clear (see docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from kyok.crypto.encoding import b64d, b64e
from kyok.unit.files import write_private

log = logging.getLogger("kyok.unit.seal")

FILENAME = "dev-seal.json"
WARNING = (
    "DEV SEAL: this file holds master keys in the clear. Anyone who reads it can read every key. "
    "Never use the dev seal in production."
)


class DevSeal:
    """Stores master keys in ``<data_dir>/dev-seal.json`` (mode 0600)."""

    kind = "dev"

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILENAME
        self._lock = threading.Lock()
        self._warned = False

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            obj = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"cannot read the dev seal file {self.path}: {exc}") from None
        units = obj.get("units", {}) if isinstance(obj, dict) else {}
        return {str(k): dict(v) for k, v in units.items() if isinstance(v, dict)}

    def _write(self, units: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"warning": WARNING, "units": units}, indent=2, sort_keys=True) + "\n"
        write_private(self.path, text.encode(), overwrite=True)

    def _warn(self) -> None:
        if not self._warned:
            log.warning("%s (%s)", WARNING, self.path)
            self._warned = True

    def store(self, unit_id: str, epoch: int, master_key: bytes) -> None:
        self._warn()
        with self._lock:
            units = self._read()
            units.setdefault(unit_id, {})[str(epoch)] = b64e(master_key)
            self._write(units)

    def recover(self, unit_id: str, epoch: int) -> bytes | None:
        with self._lock:
            value = self._read().get(unit_id, {}).get(str(epoch))
        if value is None:
            return None
        self._warn()
        return b64d(value)

    def forget(self, unit_id: str, epoch: int) -> None:
        with self._lock:
            units = self._read()
            if units.get(unit_id, {}).pop(str(epoch), None) is not None:
                if not units[unit_id]:
                    del units[unit_id]
                self._write(units)
