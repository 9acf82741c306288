"""Test doubles for the key service: a crypto unit built from the REAL blob and handle code
(only the master key is a random in-memory value), a unit directory, an audit sink that keeps
what it is given, and a unit of work that lets a concurrent writer get in first."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable
from typing import Any

from kyok.crypto.errors import InvalidCiphertext
from kyok.errors import AlreadyExists, Forbidden, InvalidInput
from kyok.kms.events import KmsEvent
from kyok.store.ports import UnitOfWork
from kyok.store.records import KeyRecord
from kyok.unit import blob, imports
from kyok.unit.blob import BlobRef, SealedBlob
from kyok.unit.errors import BlobCorrupt, UnitNotFound, UnitSealed
from kyok.unit.handles import STANDARD_KEY_EXPORT, ExportAccess, HandleCache, KeyHandle, Liveness


class FakeUnit:
    """A crypto unit with one random master key and a switch that seals it."""

    def __init__(self, instance_id: str, *, sealed: bool = False) -> None:
        self.unit_id = f"fake-unit-{uuid.uuid4()}"
        self.instance_id = instance_id
        self._kek = blob.kek_for(os.urandom(32))
        self._epoch = 1
        self._live = Liveness()
        self._cache = HandleCache()
        self._sealed = sealed
        self.handles_made = 0
        self.forgotten: list[str] = []

    # -- the switch
    def seal(self) -> None:
        self._sealed = True
        self._live.alive = False
        self._live = Liveness()
        self._cache.clear()

    def unseal(self) -> None:
        self._sealed = False

    # -- KeyUnit
    def require_unsealed(self) -> None:
        if self._sealed:
            raise UnitSealed()

    def generate_blob(self, ref: BlobRef, length: int = 32) -> SealedBlob:
        return self.seal_material(ref, os.urandom(length))

    def seal_material(self, ref: BlobRef, material: bytes) -> SealedBlob:
        self.require_unsealed()
        return blob.seal(self._kek, self._epoch, ref, material)

    def _open(self, sealed: SealedBlob) -> bytes:
        try:
            return blob.open_(self._kek, sealed.ref, sealed.data)
        except InvalidCiphertext:
            raise BlobCorrupt("blob does not open") from None

    def handle(self, sealed: SealedBlob) -> KeyHandle:
        if sealed.ref.purpose != blob.PURPOSE_ROOT_KEY:
            raise ValueError("only root-key blobs have handles")
        cached = self._cache.get(sealed.ref.id)
        if cached is not None and cached.ref == sealed.ref:
            return cached
        self.require_unsealed()
        handle = KeyHandle(sealed.ref, self._open(sealed), self._live)
        self.handles_made += 1
        self._cache.put(handle)
        return handle

    def export_material(self, sealed: SealedBlob, access: ExportAccess) -> bytes:
        if access is not STANDARD_KEY_EXPORT or sealed.ref.purpose != blob.PURPOSE_STANDARD_KEY:
            raise Forbidden("only standard-key material can be exported")
        self.require_unsealed()
        return self._open(sealed)

    def forget(self, owner_id: str) -> None:
        self.forgotten.append(owner_id)
        self._cache.forget(owner_id)

    def new_import_keys(
        self, ref: BlobRef, rsa_bits: int = 4096
    ) -> tuple[SealedBlob, imports.ImportPublicKeys]:
        if ref.purpose != blob.PURPOSE_IMPORT_TOKEN:
            raise ValueError("import keys are sealed as import-token blobs")
        material, public = imports.generate_import_keys(rsa_bits)
        return self.seal_material(ref, material), public

    def import_material(
        self, token: SealedBlob, target: BlobRef, wrapped: imports.WrappedImport, nonce: bytes
    ) -> tuple[SealedBlob, int]:
        self.require_unsealed()
        material = imports.open_import(self._open(token), wrapped, nonce)
        return self.seal_material(target, material), len(material)


class FakeUnitDirectory:
    """Units by instance; ``shares`` units start sealed (they wait for a ceremony)."""

    def __init__(self) -> None:
        self.units: dict[str, FakeUnit] = {}

    def for_instance(self, instance_id: str) -> FakeUnit:
        unit = self.units.get(instance_id)
        if unit is None:
            raise UnitNotFound("no unit")
        return unit

    def create_for_instance(self, instance_id: str, seal: str) -> FakeUnit:
        if seal not in ("dev", "shares"):
            raise InvalidInput("unknown seal")
        if instance_id in self.units:
            raise AlreadyExists("unit exists")
        unit = FakeUnit(instance_id, sealed=seal == "shares")
        self.units[instance_id] = unit
        return unit


class RecordingAuditSink:
    """Keeps every event it is handed (also those of attempts that were later rolled back)."""

    def __init__(self) -> None:
        self.events: list[KmsEvent] = []

    def record(self, uow: UnitOfWork, event: KmsEvent) -> None:
        assert uow is not None
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action.value for e in self.events]


class _RacingKeys:
    def __init__(self, inner: Any, before_update: Callable[[KeyRecord], None]) -> None:
        self._inner = inner
        self._before_update = before_update

    def update(self, record: KeyRecord, expected_row_version: int) -> KeyRecord:
        self._before_update(record)
        stored: KeyRecord = self._inner.update(record, expected_row_version)
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RacingUow:
    def __init__(self, inner: Any, before_update: Callable[[KeyRecord], None]) -> None:
        self._inner = inner
        self.keys = _RacingKeys(inner.keys, before_update)

    def __enter__(self) -> _RacingUow:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RacingUowFactory:
    """A unit-of-work factory whose next ``races`` key updates lose against another writer.

    Just before each of those updates, a second unit of work changes the same key's description
    and commits, so the first one's expected row version is stale.
    """

    def __init__(self, make_uow: Callable[..., Any], races: int = 0) -> None:
        self._make = make_uow
        self.races = races
        self.raced = 0

    def __call__(self, *, read_only: bool = False) -> Any:
        return _RacingUow(self._make(read_only=read_only), self._race)

    def _race(self, record: KeyRecord) -> None:
        if self.races <= 0:
            return
        self.races -= 1
        self.raced += 1
        with self._make() as other:
            current = other.keys.get(record.instance_id, record.id)
            assert current is not None
            other.keys.update(
                dataclasses.replace(current, description=f"raced {self.raced}"), current.row_version
            )
            other.commit()
