"""Principals, credentials, roles and access tokens.

The one entry point is :class:`AuthService` (tokens, per-request authentication, and the
management of principals, API keys and role bindings); :class:`AuthContext` is what a request
is authorised with. Every credential row is authenticated by the instance's crypto unit
(:mod:`kyok.auth.integrity`), so whoever can write the database cannot mint one.

The record types the service returns are the store's (re-exported here so that adapters,
which may not import ``kyok.store``, can name them).
"""

from __future__ import annotations

from kyok.auth.context import INSTANCE_SCOPE, AuthContext, Grant, NotAllowed, Scope, ScopeKind
from kyok.auth.errors import (
    AlreadyBootstrapped,
    ApiKeyNotFound,
    InvalidApiKey,
    InvalidAuthField,
    InvalidRefreshToken,
    LastAdmin,
    MissingCredentials,
    MissingInstance,
    PrincipalExists,
    PrincipalNotFound,
    RoleBindingExists,
    RoleBindingNotFound,
    TokenExpired,
    TokenInvalid,
)
from kyok.auth.principals import SYSTEM, Principal, PrincipalKind
from kyok.auth.roles import ROLE_PERMISSIONS, Permission, Role
from kyok.auth.secrets import Secret
from kyok.auth.service import AuthService, Identity, TokenGrant
from kyok.store.records import ApiKeyRecord, PrincipalRecord, RoleBindingRecord

__all__ = [
    "INSTANCE_SCOPE",
    "ROLE_PERMISSIONS",
    "SYSTEM",
    "AlreadyBootstrapped",
    "ApiKeyNotFound",
    "ApiKeyRecord",
    "AuthContext",
    "AuthService",
    "Grant",
    "Identity",
    "InvalidApiKey",
    "InvalidAuthField",
    "InvalidRefreshToken",
    "LastAdmin",
    "MissingCredentials",
    "MissingInstance",
    "NotAllowed",
    "Permission",
    "Principal",
    "PrincipalExists",
    "PrincipalKind",
    "PrincipalNotFound",
    "PrincipalRecord",
    "Role",
    "RoleBindingExists",
    "RoleBindingNotFound",
    "RoleBindingRecord",
    "Scope",
    "ScopeKind",
    "Secret",
    "TokenExpired",
    "TokenGrant",
    "TokenInvalid",
]
