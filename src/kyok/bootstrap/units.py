"""The crypto units as kyok's ceremony endpoints (``/api/v2/kyok/unit``) see them.

:class:`UnitConsole` turns plain JSON-shaped input into unit calls and unit state into plain
JSON-shaped output, so the HTTP adapter needs no import of ``kyok.unit`` (DESIGN §3). It keeps
the units' own names (snake_case); the adapter renders them. Everything here is public data:
administrators' public keys, MKVPs, key check values, the transcript, the transport public key.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kyok.errors import InvalidInput, KyokError
from kyok.store.records import InstanceRecord
from kyok.unit.commands import SignedCommand
from kyok.unit.directory import UnitDirectory
from kyok.unit.errors import UnitNotFound
from kyok.unit.ports import UnitStateStore
from kyok.unit.transcript import TranscriptEntry
from kyok.unit.unit import CryptoUnit

__all__ = ["UnitConsole", "UnitInfo"]

log = logging.getLogger("kyok.server.units")


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """One instance's unit in the health report."""

    instance_id: str
    unit_id: str
    sealed: bool


class UnitConsole:
    """Status, signed commands, transcript export and re-encryption for each instance's unit.

    Args:
        units: the node's unit directory.
        store: the unit state store (the transcript is read from it directly, so it can be
            exported even when the unit refuses to open).
        list_instances: every instance of the node (for :meth:`overview`).
    """

    def __init__(
        self,
        units: UnitDirectory,
        store: UnitStateStore,
        list_instances: Callable[[], Sequence[InstanceRecord]],
    ) -> None:
        self._units = units
        self._store = store
        self._list_instances = list_instances
        self._jobs: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def _unit(self, instance_id: str) -> CryptoUnit:
        return self._units.for_instance(instance_id)

    def status(self, instance_id: str) -> dict[str, Any]:
        """The unit's public status.

        Args:
            instance_id: the instance.

        Returns:
            ``CryptoUnit.status().to_json()`` plus ``tampered``, ``transport_key`` (base64 of
            the hybrid public key custodians seal parts to) and ``reencrypting``.

        Raises:
            UnitNotFound: the instance has no unit.
            UnitTampered: the unit's transcript fails its checks (it refuses to open).
        """
        unit = self._unit(instance_id)
        out = unit.status().to_json()
        out["tampered"] = unit.tampered is not None
        out["transport_key"] = base64.b64encode(unit.transport_public_key().to_bytes()).decode()
        out["reencrypting"] = self._running(unit.unit_id)
        return out

    def submit(
        self, instance_id: str, command: Mapping[str, Any], sealed_part: bytes | None = None
    ) -> dict[str, Any]:
        """Verify and execute a signed command file (``kyok-command/1``).

        Args:
            instance_id: the instance whose unit runs it.
            command: the parsed command file.
            sealed_part: for ``load_part``, the part sealed to the unit's transport key.

        Returns:
            The command's result.

        Raises:
            InvalidInput: not a command file.
            CeremonyRejected: the unit refused it (nothing changed).
            UnitNotFound, UnitSealed, UnitTampered: as the unit raises them.
        """
        try:
            signed = SignedCommand.from_json(command)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="BAD_BODY_ERR") from None
        return self._unit(instance_id).submit(signed, sealed_part=sealed_part)

    def transcript_head(self, instance_id: str) -> tuple[int, str] | None:
        """How many transcript entries the instance's unit has applied and the hash of the last,
        or None when the instance has no unit. Audit events of ceremony calls carry it, so the
        signed ledger vouches for the transcript up to that entry."""
        try:
            state = self._unit(instance_id).state
        except KyokError:
            return None
        return state.n, state.head

    def transcript(self, instance_id: str) -> list[str]:
        """The unit's transcript as export lines (JSON, one entry each).

        Args:
            instance_id: the instance.

        Returns:
            The lines, oldest first, without line ends.

        Raises:
            UnitNotFound: the instance has no unit.
        """
        unit_id = self._store.unit_for_instance(instance_id)
        if unit_id is None:
            raise UnitNotFound("the instance has no crypto unit")
        return [
            TranscriptEntry(e.n, e.entry, e.hash, e.mac).export_line()
            for e in self._store.transcript(unit_id)
        ]

    def start_reencrypt(self, instance_id: str) -> dict[str, Any]:
        """Re-encrypt the unit's blobs under its current master key, in a background thread.

        Args:
            instance_id: the instance.

        Returns:
            ``{"running": bool, "rotation_remaining": int | None}``; a second call while a run
            is going starts nothing new.

        Raises:
            UnitNotFound: the instance has no unit.
            UnitSealed: the unit is sealed (both master keys are needed).
        """
        unit = self._unit(instance_id)
        unit.require_unsealed()
        with self._lock:
            job = self._jobs.get(unit.unit_id)
            if (job is None or not job.is_alive()) and unit.rotation_remaining() is not None:
                job = threading.Thread(
                    target=self._reencrypt,
                    args=(unit,),
                    name=f"kyok-reencrypt-{unit.unit_id}",
                    daemon=True,
                )
                self._jobs[unit.unit_id] = job
                job.start()
        return {
            "running": self._running(unit.unit_id),
            "rotation_remaining": unit.rotation_remaining(),
        }

    def wait(self, instance_id: str, timeout: float | None = None) -> bool:
        """Wait for the instance's re-encryption to finish (tests, shutdown).

        Args:
            instance_id: the instance.
            timeout: seconds to wait at most.

        Returns:
            True when no re-encryption is running any more.
        """
        unit = self._unit(instance_id)
        job = self._jobs.get(unit.unit_id)
        if job is not None:
            job.join(timeout)
        return not self._running(unit.unit_id)

    def overview(self) -> list[UnitInfo]:
        """Every instance's unit and whether it is sealed.

        A unit that cannot be opened (its transcript fails its checks, its seal provider is
        missing) counts as sealed.

        Returns:
            One entry per instance, oldest instance first.

        Raises:
            Exception: whatever the store raises when it does not answer.
        """
        out = []
        for instance in self._list_instances():
            try:
                sealed = self._units.get(instance.unit_id).sealed
            except KyokError:
                sealed = True
            out.append(UnitInfo(instance.id, instance.unit_id, sealed))
        return out

    def _running(self, unit_id: str) -> bool:
        job = self._jobs.get(unit_id)
        return job is not None and job.is_alive()

    def _reencrypt(self, unit: CryptoUnit) -> None:
        try:
            done = unit.reencrypt()
            log.info("unit %s: re-encrypted %d blobs", unit.unit_id, done)
        except KyokError as exc:
            log.warning("unit %s: re-encryption stopped: %s", unit.unit_id, exc.message)
        except Exception:
            log.exception("unit %s: re-encryption failed", unit.unit_id)
