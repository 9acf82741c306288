"""What the HTTP adapter needs from the node that hosts it.

``kyok.bootstrap.Node`` satisfies :class:`NodePort` structurally; the API never imports the
composition root, the store or the crypto unit (DESIGN §3). Tests may pass any object with
these attributes (for example a node whose ``auth`` is a test double).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kyok.auth.context import AuthContext
from kyok.kms.audit_settings import AuditSettings
from kyok.kms.imports import ImportTokenService
from kyok.kms.ledger import AuditPublicKey, EventWriter, Ledger, LedgerReader
from kyok.kms.service import KeyService
from kyok.settings import Settings

__all__ = ["Authenticator", "NodePort", "UnitConsolePort", "UnitInfo"]


class Authenticator(Protocol):
    """Authentication of one request (the auth service's ``authenticate``)."""

    def authenticate(
        self, authorization: str | None, bluemix_instance: str | None, /
    ) -> AuthContext:
        """The caller named by the ``Authorization`` header, in the ``Bluemix-Instance``.

        Args:
            authorization: the raw ``Authorization`` header, or None.
            bluemix_instance: the raw ``Bluemix-Instance`` header.

        Returns:
            The caller.

        Raises:
            Unauthenticated: missing, malformed, expired or other-instance credentials.
        """
        ...

    def authorized_admin(self, instance_id: str, authorization_seq: int, /) -> tuple[str, bytes]:
        """Make the administrator credential of an accepted ``authorize_admin`` command.

        Returns:
            ``(principal_id, sealed_api_key)``.
        """
        ...


class UnitInfo(Protocol):
    """One instance's crypto unit, for health reports and metrics."""

    @property
    def instance_id(self) -> str: ...

    @property
    def unit_id(self) -> str: ...

    @property
    def sealed(self) -> bool: ...


class UnitConsolePort(Protocol):
    """The crypto units as the ceremony endpoints use them (JSON-shaped in and out)."""

    def status(self, instance_id: str) -> Mapping[str, Any]:
        """The unit's public status (snake_case names)."""
        ...

    def submit(
        self, instance_id: str, command: Mapping[str, Any], sealed_part: bytes | None = None
    ) -> Mapping[str, Any]:
        """Run a signed command file; returns its result."""
        ...

    def transcript(self, instance_id: str) -> list[str]:
        """The transcript export, one JSON line per entry."""
        ...

    def transcript_head(self, instance_id: str) -> tuple[int, str] | None:
        """Entries applied and the last entry's hash (None: no unit)."""
        ...

    def start_reencrypt(self, instance_id: str) -> Mapping[str, Any]:
        """Start re-encryption in the background; returns ``running``/``rotation_remaining``."""
        ...

    def overview(self) -> Sequence[UnitInfo]:
        """Every instance's unit; raises when the store does not answer."""
        ...


class NodePort(Protocol):
    """The node as the API sees it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def service(self) -> KeyService: ...

    @property
    def auth(self) -> Authenticator: ...

    @property
    def unit_console(self) -> UnitConsolePort: ...

    @property
    def import_tokens(self) -> ImportTokenService: ...

    @property
    def audit_writer(self) -> EventWriter: ...

    @property
    def audit_reader(self) -> LedgerReader: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def audit_settings(self) -> AuditSettings: ...

    @property
    def worker(self) -> int | None:
        """This process's worker number when the node runs several, else None."""
        ...

    def audit_key(self, instance_id: str) -> AuditPublicKey | None: ...
