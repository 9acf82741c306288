"""Authentication as the node wires it: the contract the server codes against, and the
factory that builds ``kyok.auth``'s :class:`~kyok.auth.service.AuthService` from the settings."""

from __future__ import annotations

from typing import Protocol

from kyok.auth.context import AuthContext
from kyok.auth.service import AuthService
from kyok.clock import Clock
from kyok.settings import Settings
from kyok.store.sql import SqlStore
from kyok.unit.directory import UnitDirectory

__all__ = ["AuthProvider", "make_auth"]


class AuthProvider(Protocol):
    """What the server needs from authentication."""

    def authenticate(
        self, authorization: str | None, bluemix_instance: str | None, /
    ) -> AuthContext:
        """Turn a request's ``Authorization`` and ``Bluemix-Instance`` headers into a caller.

        Raises:
            Unauthenticated: missing, malformed, expired or other-instance credentials.
            InvalidInput: no instance named.
            UnitSealed: the instance's unit is sealed.
        """
        ...

    def authorized_admin(self, instance_id: str, authorization_seq: int, /) -> tuple[str, bytes]:
        """Make the administrator credential of an accepted ``authorize_admin`` command.

        Returns:
            ``(principal_id, sealed_api_key)``.
        """
        ...

    def bootstrap_admin(self, instance_id: str, /, *, api_key: str | None = None) -> str:
        """Make (or, with the same ``api_key``, keep) the instance's first administrator.

        Returns:
            The API key (shown once).
        """
        ...


def make_auth(
    settings: Settings, store: SqlStore, units: UnitDirectory, clock: Clock
) -> AuthService:
    """The node's authentication service.

    Args:
        settings: token lifetimes (``[tokens]``).
        store: principals, API keys, role bindings, refresh tokens.
        units: the crypto units (their secrets authenticate credentials and sign tokens).
        clock: the time source.

    Returns:
        The service.
    """
    return AuthService(
        store.uow,
        units,
        clock,
        token_ttl=max(1, int(settings.tokens.access_ttl.total_seconds())),
        refresh_ttl=max(1, int(settings.tokens.refresh_ttl.total_seconds())),
    )
