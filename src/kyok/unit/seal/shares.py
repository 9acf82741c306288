"""The ``shares`` seal: keeps nothing. Custodians load their parts after every restart."""

from __future__ import annotations


class SharesSeal:
    """Master keys exist only in the unit's memory."""

    kind = "shares"

    def store(self, unit_id: str, epoch: int, master_key: bytes) -> None:
        return None

    def recover(self, unit_id: str, epoch: int) -> bytes | None:
        return None

    def forget(self, unit_id: str, epoch: int) -> None:
        return None
