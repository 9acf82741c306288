"""Seal providers: where (if anywhere) a unit's master keys wait between process starts.

* ``dev``    — master keys in a 0600 file in the data directory. Convenient, and anyone who can
  read that file can read every key: for development only, announced loudly.
* ``shares`` — master keys are never stored. After a restart the unit is sealed until enough
  custodians load their parts again and the MKVP matches.
* ``pkcs11`` — (planned) auto-unseal through a non-extractable key in an HSM token.
"""

from __future__ import annotations

from typing import Protocol

from kyok.unit.seal.dev import DevSeal
from kyok.unit.seal.shares import SharesSeal


class SealProvider(Protocol):
    """Keeps (or refuses to keep) master keys across restarts."""

    @property
    def kind(self) -> str: ...

    def store(self, unit_id: str, epoch: int, master_key: bytes) -> None:
        """Called when a master key is committed or created."""
        ...

    def recover(self, unit_id: str, epoch: int) -> bytes | None:
        """The master key of ``epoch``, if this provider can give it back without custodians."""
        ...

    def forget(self, unit_id: str, epoch: int) -> None:
        """Called when a master key is retired or discarded."""
        ...


__all__ = ["DevSeal", "SealProvider", "SharesSeal"]
