"""Where ``kyok ceremony`` finds the crypto unit: in this process (a node's data directory or
database) or behind a running server (``--url``). Both give the same :class:`UnitView` and
accept the same signed commands, so every ceremony step reads the same either way."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kyok.crypto.kem import HybridPublicKey
from kyok.unit.commands import SignedCommand

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CAMEL.sub("_", str(k)).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


@dataclass(frozen=True)
class RegisterView:
    """One master-key register as the unit reports it."""

    register: str
    state: str
    epoch: int | None
    mkvp: str | None
    scheme: str | None
    loaded: int
    needed: int
    kcvs: tuple[str, ...]
    in_memory: bool


@dataclass(frozen=True)
class UnitView:
    """The unit's public status: what the CLI checks before it submits anything."""

    unit_id: str
    instance_id: str
    seal: str
    sealed: bool
    tampered: bool
    imprint: bool
    seq: int
    admins: tuple[dict[str, str], ...]
    signature_threshold: int
    revocation_threshold: int
    registers: tuple[RegisterView, ...]
    rotation_remaining: int | None
    transport_key: HybridPublicKey
    raw: dict[str, Any]

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> UnitView:
        """From the unit's status JSON (snake_case locally, camelCase over HTTP)."""
        s = _snake(status)
        regs = tuple(
            RegisterView(
                r["register"],
                r["state"],
                r.get("epoch"),
                r.get("mkvp"),
                r.get("scheme"),
                int(r.get("loaded", 0)),
                int(r.get("needed", 0)),
                tuple(r.get("kcvs", [])),
                bool(r.get("in_memory")),
            )
            for r in s.get("registers", [])
        )
        return cls(
            unit_id=s["unit_id"],
            instance_id=s["instance_id"],
            seal=s["seal"],
            sealed=bool(s["sealed"]),
            tampered=bool(s.get("tampered")),
            imprint=bool(s["imprint"]),
            seq=int(s["seq"]),
            admins=tuple(s.get("admins", [])),
            signature_threshold=int(s.get("signature_threshold") or 0),
            revocation_threshold=int(s.get("revocation_threshold") or 0),
            registers=regs,
            rotation_remaining=s.get("rotation_remaining"),
            transport_key=HybridPublicKey.from_bytes(base64.b64decode(s["transport_key"])),
            raw=status,
        )

    def register(self, name: str) -> RegisterView | None:
        return next((r for r in self.registers if r.register == name), None)

    def register_of(self, kcv: str) -> str | None:
        """The persisted register (current, previous, pending) whose master key has this part."""
        for name in ("current", "previous", "pending"):
            reg = self.register(name)
            if reg is not None and kcv in reg.kcvs:
                return name
        return None

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(a["id"] for a in self.admins)


class UnitEndpoint(Protocol):
    """A crypto unit the CLI talks to."""

    local: bool

    def view(self) -> UnitView: ...
    def submit(
        self, command: SignedCommand, sealed_part: bytes | None = None
    ) -> dict[str, Any]: ...
    def transcript_lines(self) -> list[str]: ...
    def reencrypt(self, batch_size: int, progress: Callable[[int, int], None]) -> int: ...
    def admin_credential(self, command: SignedCommand) -> tuple[str, int, bytes]: ...
    def close(self) -> None: ...


class LocalEndpoint:
    """The unit in this process, on the node's store."""

    local = True

    def __init__(self, node: Any, instance_id: str) -> None:
        from kyok.unit.transcript import TranscriptEntry

        self._entry = TranscriptEntry
        self.node = node
        self.instance_id = instance_id
        self.unit = node.units.for_instance(instance_id)

    def view(self) -> UnitView:
        status = self.unit.status().to_json()
        status["tampered"] = self.unit.tampered is not None
        status["transport_key"] = base64.b64encode(
            self.unit.transport_public_key().to_bytes()
        ).decode()
        return UnitView.from_status(status)

    def submit(self, command: SignedCommand, sealed_part: bytes | None = None) -> dict[str, Any]:
        return dict(self.unit.submit(command, sealed_part=sealed_part))

    def transcript_lines(self) -> list[str]:
        return [e.export_line() for e in self.unit.transcript()]

    def reencrypt(self, batch_size: int, progress: Callable[[int, int], None]) -> int:
        self.unit.require_rotation_keys()
        return int(self.unit.reencrypt(batch_size=batch_size, progress=progress))

    def admin_credential(self, command: SignedCommand) -> tuple[str, int, bytes]:
        self.unit.submit(command)
        principal_id, sealed = self.node.auth.authorized_admin(self.instance_id, command.seq)
        return principal_id, command.seq, sealed

    def close(self) -> None:
        self.node.close()


class RemoteEndpoint:
    """The unit of an instance on a running server (``--url``)."""

    local = False

    def __init__(self, url: str, instance_id: str, verify: Any = True) -> None:
        from kyok.client import UnitClient

        self.client = UnitClient(url, instance_id, verify=verify)
        self.instance_id = instance_id

    def view(self) -> UnitView:
        return UnitView.from_status(self.client.status())

    def submit(self, command: SignedCommand, sealed_part: bytes | None = None) -> dict[str, Any]:
        return _snake(self.client.submit(command.to_json(), sealed_part))  # type: ignore[no-any-return]

    def transcript_lines(self) -> list[str]:
        return self.client.transcript()

    def reencrypt(self, batch_size: int, progress: Callable[[int, int], None]) -> int:
        """The server re-encrypts in the background; follow it until the old key is retired."""
        started = self.client.start_reencrypt()
        total = started.get("rotationRemaining") or 0
        remaining = total
        progress(0, total)
        while remaining:
            time.sleep(0.5)
            state = self.client.start_reencrypt()
            remaining = state.get("rotationRemaining") or 0
            progress(total - remaining, total)
            if not state.get("running") and remaining:
                raise RuntimeError(
                    f"the server stopped re-encrypting with {remaining} blob(s) left: see its log"
                )
        return int(total)

    def admin_credential(self, command: SignedCommand) -> tuple[str, int, bytes]:
        out = self.client.admin_credential(command.to_json())
        return (
            str(out["principalId"]),
            int(out["authorizationSeq"]),
            base64.b64decode(out["sealedApiKey"]),
        )

    def close(self) -> None:
        self.client.close()
