"""What the domain needs from outside: the crypto unit of an instance, time, and the hooks
later issues plug in (audit ledger, deletion guards).

``kyok.unit.unit.CryptoUnit`` satisfies :class:`KeyUnit`; ``kyok.unit.directory.UnitDirectory``
satisfies :class:`UnitDirectory`. Tests may use fakes built from ``kyok.unit.blob`` and
``kyok.unit.handles``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from kyok.auth.principals import Principal
from kyok.clock import Clock
from kyok.kms.events import KmsEvent
from kyok.store.ports import UnitOfWork, UnitOfWorkFactory
from kyok.store.records import KeyRecord
from kyok.unit.blob import BlobRef, SealedBlob
from kyok.unit.handles import ExportAccess, KeyHandle
from kyok.unit.imports import ImportPublicKeys, WrappedImport

__all__ = ["AuditSink", "Clock", "DeletionGuard", "KeyUnit", "UnitDirectory", "UowFactory"]


UowFactory = UnitOfWorkFactory
"""Makes units of work; see :class:`kyok.store.ports.UnitOfWorkFactory` (read-only or not)."""


class KeyUnit(Protocol):
    """The operations of an instance's crypto unit that key rules use."""

    @property
    def unit_id(self) -> str:
        """The unit's id (stored on the instance)."""
        ...

    def require_unsealed(self) -> None:
        """Raise ``UnitSealed`` unless the current master key is loaded."""
        ...

    def generate_blob(self, ref: BlobRef, length: int = 32) -> SealedBlob:
        """Generate ``length`` random bytes of key material inside the unit and seal them.

        Args:
            ref: where the blob belongs (bound into it).
            length: bytes of material.

        Returns:
            The sealed blob (safe to store).
        """
        ...

    def seal_material(self, ref: BlobRef, material: bytes) -> SealedBlob:
        """Seal caller-supplied (imported) key material.

        Args:
            ref: where the blob belongs.
            material: the key material.

        Returns:
            The sealed blob.
        """
        ...

    def new_import_keys(
        self, ref: BlobRef, rsa_bits: int = 4096
    ) -> tuple[SealedBlob, ImportPublicKeys]:
        """Make an import token's key pairs inside the unit; the private keys come back sealed.

        Args:
            ref: where the token's blob belongs (purpose ``import-token``).
            rsa_bits: size of the RSA key.

        Returns:
            The sealed private keys and the public keys.
        """
        ...

    def import_material(
        self, token: SealedBlob, target: BlobRef, wrapped: WrappedImport, nonce: bytes
    ) -> tuple[SealedBlob, int]:
        """Open material sent under an import token, check the nonce, seal it as ``target``.

        Args:
            token: the token's sealed private keys.
            target: the root-key version blob to make.
            wrapped: the import fields.
            nonce: the token's nonce.

        Returns:
            ``(sealed blob, material length)``; the material itself never leaves the unit.
        """
        ...

    def handle(self, blob: SealedBlob) -> KeyHandle:
        """A (cached) handle to wrap/unwrap DEKs under a root key version blob.

        Args:
            blob: a root-key version blob.

        Returns:
            A handle; it dies when the unit seals or the key is forgotten.
        """
        ...

    def export_material(self, blob: SealedBlob, access: ExportAccess) -> bytes:
        """The material of a standard-key blob; needs ``STANDARD_KEY_EXPORT``.

        Args:
            blob: a standard-key blob.
            access: the export capability.

        Returns:
            The raw material.
        """
        ...

    def forget(self, owner_id: str) -> None:
        """Drop cached handles of a key (call on every state change of the key).

        Args:
            owner_id: the key id.
        """
        ...


class UnitDirectory(Protocol):
    """Finds (and creates) the crypto unit of an instance."""

    def for_instance(self, instance_id: str) -> KeyUnit:
        """The unit of an instance.

        Args:
            instance_id: the instance.

        Returns:
            Its unit (possibly sealed).
        """
        ...

    def create_for_instance(self, instance_id: str, seal: str) -> KeyUnit:
        """Create the unit of a new instance. With the ``dev`` seal it is ready at once (random

        Args:
            instance_id: the new instance.
            seal: ``dev`` or ``shares``.

        Returns:
            The new unit.
        master key in the dev seal file); with ``shares`` it waits in imprint mode for a ceremony."""
        ...


class AuditSink(Protocol):
    """Where the service writes one event per change, in the transaction of the change."""

    def record(self, uow: UnitOfWork, event: KmsEvent) -> None:
        """Write ``event`` through ``uow`` (before the service commits it).

        Raising aborts the change: an event that cannot be written means no change.

        Args:
            uow: the change's unit of work; write through it, do not commit.
            event: what happened.
        """
        ...


class DeletionGuard(Protocol):
    """A rule that may refuse deleting a key (registrations, dual authorisation: later issues).

    The service calls every configured guard inside the delete's unit of work, after the
    lifecycle check and before the key is written.
    """

    def check_delete(
        self, uow: UnitOfWork, key: KeyRecord, actor: Principal, *, force: bool, now: datetime
    ) -> None:
        """Raise a ``KyokError`` to refuse deleting ``key``.

        Args:
            uow: the delete's unit of work (read what the rule needs through it).
            key: the key as loaded.
            actor: who deletes.
            force: the caller asked to delete despite registrations.
            now: the service clock.
        """
        ...
