"""Errors of authentication and of managing principals, API keys and role bindings.

Each class picks its category from :mod:`kyok.errors` (which fixes the HTTP status a Key
Protect-style adapter uses) and has a stable ``code``. The token endpoints speak IAM, not Key
Protect: their adapter (``kyok.api.iam``) answers 400 for a bad API key or refresh token, as
IBM IAM does, and uses the ``BXNIM…`` codes below as ``errorCode``. Messages never contain an
API key, an access token, a refresh token, or any other caller-supplied secret::

    InvalidInput (400)
    ├── InvalidAuthField      INVALID_FIELD_ERR        one field is malformed or out of range
    └── MissingInstance       MISSING_INSTANCE_ERR     no Bluemix-Instance header
    Unauthenticated (401)
    ├── MissingCredentials    UNAUTHORIZED_ERR         no ``Authorization: Bearer`` token
    ├── TokenInvalid          UNAUTHORIZED_ERR         malformed, tampered, other instance,
    │   └── TokenExpired      UNAUTHORIZED_ERR         ...; or past its ``exp``
    ├── InvalidApiKey         BXNIM0415E               no such API key (token endpoint)
    └── InvalidRefreshToken   BXNIM0407E               unknown, used, expired (token endpoint)
    NotFound (404)
    ├── PrincipalNotFound     PRINCIPAL_NOT_FOUND_ERR
    ├── ApiKeyNotFound        API_KEY_NOT_FOUND_ERR
    └── RoleBindingNotFound   ROLE_BINDING_NOT_FOUND_ERR
    Conflict (409)
    ├── PrincipalExists       PRINCIPAL_EXISTS_ERR     the name is taken in the instance
    ├── RoleBindingExists     ROLE_BINDING_EXISTS_ERR  the principal has that role on that scope
    ├── LastAdmin             LAST_ADMIN_ERR           the instance's last KyokInstanceAdmin
    └── AlreadyBootstrapped   ALREADY_BOOTSTRAPPED_ERR the instance has principals already

``kyok.unit.errors.UnitSealed`` (503) passes through unchanged: a sealed instance cannot
authenticate anyone.
"""

from __future__ import annotations

from kyok.errors import Conflict, InvalidInput, NotFound, Unauthenticated

__all__ = [
    "AlreadyBootstrapped",
    "ApiKeyNotFound",
    "InvalidApiKey",
    "InvalidAuthField",
    "InvalidRefreshToken",
    "LastAdmin",
    "MissingCredentials",
    "MissingInstance",
    "PrincipalExists",
    "PrincipalNotFound",
    "RoleBindingExists",
    "RoleBindingNotFound",
    "TokenExpired",
    "TokenInvalid",
]


# ------------------------------------------------------------------------------------ 400


class InvalidAuthField(InvalidInput):
    """One input field is malformed or out of range; ``target`` names it."""

    code = "INVALID_FIELD_ERR"

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"invalid field {target}: {reason}", target=target)
        self.reason = reason


class MissingInstance(InvalidInput):
    """The request names no instance (``Bluemix-Instance`` header)."""

    code = "MISSING_INSTANCE_ERR"

    def __init__(self) -> None:
        super().__init__(
            "Bad Request: the Bluemix-Instance header is required", target="Bluemix-Instance"
        )


# ------------------------------------------------------------------------------------ 401


class MissingCredentials(Unauthenticated):
    """No access token came with the request."""

    def __init__(self) -> None:
        super().__init__(
            "Unauthorized: send an access token as 'Authorization: Bearer <token>' "
            "(get one from POST /identity/token)"
        )


class TokenInvalid(Unauthenticated):
    """The access token is malformed, not signed by this instance, or no longer valid."""

    def __init__(self, reason: str = "the access token is not valid") -> None:
        super().__init__(f"Unauthorized: {reason}")


class TokenExpired(TokenInvalid):
    """The access token is past its expiry: get a new one."""

    def __init__(self) -> None:
        super().__init__("the access token has expired")


class InvalidApiKey(Unauthenticated):
    """The API key presented to the token endpoint is not a valid key of any instance."""

    code = "BXNIM0415E"

    def __init__(self) -> None:
        super().__init__("Provided API key could not be found.")


class InvalidRefreshToken(Unauthenticated):
    """The refresh token is unknown, was used already, or its session has ended."""

    code = "BXNIM0407E"

    def __init__(self, reason: str = "Provided refresh token is not valid.") -> None:
        super().__init__(reason)


# ------------------------------------------------------------------------------------ 404


class PrincipalNotFound(NotFound):
    code = "PRINCIPAL_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("Not Found: the principal does not exist in this instance")


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("Not Found: the API key does not exist in this instance")


class RoleBindingNotFound(NotFound):
    code = "ROLE_BINDING_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("Not Found: the role binding does not exist in this instance")


# ------------------------------------------------------------------------------------ 409


class PrincipalExists(Conflict):
    code = "PRINCIPAL_EXISTS_ERR"

    def __init__(self) -> None:
        super().__init__(
            "Conflict: a principal with that name exists in this instance", target="name"
        )


class RoleBindingExists(Conflict):
    code = "ROLE_BINDING_EXISTS_ERR"

    def __init__(self) -> None:
        super().__init__("Conflict: the principal already has that role on that scope")


class LastAdmin(Conflict):
    """The change would leave the instance without a ``KyokInstanceAdmin``."""

    code = "LAST_ADMIN_ERR"

    def __init__(self) -> None:
        super().__init__(
            "Conflict: this would remove the instance's last KyokInstanceAdmin; "
            "grant the role to another principal first"
        )


class AlreadyBootstrapped(Conflict):
    """``bootstrap_admin`` on an instance that has principals: use an administrator instead."""

    code = "ALREADY_BOOTSTRAPPED_ERR"

    def __init__(self) -> None:
        super().__init__(
            "Conflict: the instance has principals already; "
            "an administrator creates further principals and API keys"
        )
