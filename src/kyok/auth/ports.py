"""What authentication needs from outside: the crypto unit of an instance (for the keys that
authenticate credential rows and sign tokens) and the store (``kyok.store.ports``).

``kyok.unit.unit.CryptoUnit`` satisfies :class:`SecretUnit` and
``kyok.unit.directory.UnitDirectory`` satisfies :class:`UnitDirectory`; ``auth`` never imports
``unit`` (DESIGN §3).
"""

from __future__ import annotations

from typing import Protocol

from kyok.crypto.sign import VerifyingKey
from kyok.store.ports import UnitOfWorkFactory

__all__ = ["SecretUnit", "UnitDirectory", "UowFactory"]

UowFactory = UnitOfWorkFactory


class SecretUnit(Protocol):
    """The operations of a crypto unit that authentication uses. Each raises ``UnitSealed``
    (a ``kyok.errors.Unavailable``) while the unit is sealed."""

    def require_unsealed(self) -> None:
        """Raise ``UnitSealed`` (or ``UnitTampered``) unless the unit is ready."""
        ...

    def secret_hmac(self, label: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the unit's key for ``label``.

        Args:
            label: what the MAC is for (one key per label).
            data: the canonical bytes to authenticate.

        Returns:
            The 32-byte MAC.
        """
        ...

    def secret_sign(self, label: str, message: bytes) -> bytes:
        """An Ed25519 signature by the unit's key for ``label``.

        Args:
            label: what the signature is for.
            message: the bytes to sign.

        Returns:
            The 64-byte signature.
        """
        ...

    @property
    def seal_kind(self) -> str:
        """The unit's seal provider (``dev`` or ``shares``)."""
        ...

    def admin_authorization(self, seq: int) -> tuple[str, bytes] | None:
        """The principal name and recipient public key of the unused ``authorize_admin``
        command at ``seq``, if any."""
        ...

    def use_admin_authorization(self, seq: int) -> tuple[str, bytes]:
        """Consume that authorization (recorded in the unit's transcript); returns the same."""
        ...

    def secret_public_key(self, label: str) -> VerifyingKey:
        """The public key of :meth:`secret_sign` for ``label``.

        Args:
            label: as for :meth:`secret_sign`.

        Returns:
            The Ed25519 verifying key.
        """
        ...


class UnitDirectory(Protocol):
    """Finds the crypto unit of an instance."""

    def for_instance(self, instance_id: str) -> SecretUnit:
        """The unit of ``instance_id``.

        Args:
            instance_id: the instance.

        Returns:
            Its unit (possibly sealed).

        Raises:
            kyok.errors.NotFound: the instance has no unit.
        """
        ...
