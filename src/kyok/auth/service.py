"""Authentication and the management of principals, API keys and role bindings.

**Why it is built this way.** The operator who runs kyok has the database. If credentials were
plain rows, they could insert an API key or a role binding of their own and unwrap every DEK.
So every credential row carries a MAC made by the instance's crypto unit
(:mod:`kyok.auth.integrity`), access tokens are signed by it (:mod:`kyok.auth.tokens`), and a
row that fails its MAC is treated as absent and logged. Consequences:

* a **sealed** instance authenticates nobody: the token endpoint and the API answer 503
  (``UnitSealed`` passes through);
* the operator can still **delete** rows (denial of service, not a breach) or **put back** rows
  that were once valid, from a backup (a revoked binding, a deleted key or principal): MACs
  prove who made a row, not that it is current. The same holds for rolling back the whole
  database;
* the first administrator of an instance comes to exist in one of two ways.
  :meth:`AuthService.bootstrap_admin` (dev-sealed instances only: whoever has the dev seal file
  has every key anyway) refuses once an instance has principals. For every other instance,
  :meth:`AuthService.authorized_admin` needs an ``authorize_admin`` command that the unit's
  administrators signed with their threshold, and consumes it (an authenticated transcript
  event), so an operator who deletes every principal row cannot mint an administrator.

**Per request** (:meth:`AuthService.authenticate`): no database write and, within the cache
window, no read: the instance's public key is cached, and a principal's grants are cached for
``cache_ttl`` seconds per (instance, principal). Every change made through this service
invalidates what it touches at once on this node; other nodes (and rows changed behind kyok's
back) catch up within ``cache_ttl``.

**Sessions.** ``issue_token`` (an API key) returns an access token (``token_ttl``) and a
single-use refresh token; ``refresh`` consumes it and returns a new pair. A session ends
``refresh_ttl`` after its API key was presented (refreshing does not extend it), when its API
key or principal is deleted, or when the refresh token is used twice (the second use fails).
Access tokens already issued stay valid until they expire unless their principal is deleted.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ed25519

from kyok.auth import integrity as mac
from kyok.auth._cache import MISSING, TtlCache
from kyok.auth.apikeys import (
    is_plausible_api_key,
    is_plausible_refresh_token,
    lookup_of,
    new_api_key,
    new_refresh_token,
)
from kyok.auth.context import INSTANCE_SCOPE, AuthContext, Grant, Scope
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
from kyok.auth.grants import (
    check_grantable,
    grant_of,
    parse_kind,
    parse_role,
    parse_scope,
    validate_api_key_name,
    validate_principal_name,
)
from kyok.auth.ports import SecretUnit, UnitDirectory, UowFactory
from kyok.auth.principals import SYSTEM, Principal, PrincipalKind
from kyok.auth.roles import Permission, Role
from kyok.auth.secrets import Secret
from kyok.auth.tokens import (
    MAX_TOKEN_LENGTH,
    AccessClaims,
    encode_access_token,
    public_key_of,
    signing_input,
    unverified_instance,
    verify_access_token,
)
from kyok.clock import Clock
from kyok.crypto.encoding import lp
from kyok.crypto.kem import HybridPrivateKey, HybridPublicKey, hybrid_open, hybrid_seal
from kyok.errors import AlreadyExists, Conflict, Forbidden, NotFound, Unavailable, VersionConflict
from kyok.store.ports import UnitOfWork
from kyok.store.records import (
    ApiKeyRecord,
    PrincipalRecord,
    RefreshTokenRecord,
    RoleBindingRecord,
)

__all__ = ["AuthService", "Identity", "TokenGrant"]

log = logging.getLogger("kyok.auth")

#: What ``bootstrap_admin`` grants on the instance scope.
BOOTSTRAP_ROLES = (Role.MANAGER, Role.KEY_PURGE, Role.INSTANCE_ADMIN)
_MAX_ID = 128
_MAX_VERIFIED_TOKENS = 50_000


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint returns (the tokens never show in a repr)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int  # seconds the access token lives
    expiration: int  # when it expires (epoch seconds)
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type)
    scope: str = "ibm openid"
    principal_id: str | None = None  # who it was issued to (for the audit record)
    instance_id: str | None = None
    principal_kind: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller as stored: their principal and their (verified) role bindings."""

    principal: PrincipalRecord
    bindings: tuple[RoleBindingRecord, ...]


@dataclass(frozen=True, slots=True)
class _Known:
    """A principal and its grants, as cached for authentication."""

    principal: Principal
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class _Verifier:
    unit: SecretUnit
    public_key: ed25519.Ed25519PublicKey


def _bearer_token(bearer: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (scheme in any case)."""
    if bearer is None:
        raise MissingCredentials()
    scheme, _, token = bearer.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingCredentials()
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid()
    return token


def _principal_of(record: PrincipalRecord) -> Principal:
    return Principal(record.id, PrincipalKind(record.kind), record.instance_id)


ADMIN_CREDENTIAL_INFO = b"kyok/v1/admin-credential"


def _credential_aad(instance_id: str, seq: int) -> bytes:
    return lp(instance_id.encode(), str(seq).encode())


def seal_admin_credential(
    recipient: HybridPublicKey, api_key: str, instance_id: str, seq: int
) -> bytes:
    """Encrypt an authorized administrator's API key to the recipient named in the command."""
    return hybrid_seal(
        recipient,
        api_key.encode(),
        aad=_credential_aad(instance_id, seq),
        info=ADMIN_CREDENTIAL_INFO,
    )


def open_admin_credential(
    recipient: HybridPrivateKey, sealed: bytes, instance_id: str, seq: int
) -> str:
    """The requester's side of :func:`seal_admin_credential`. Raises ``InvalidCiphertext``."""
    return hybrid_open(
        recipient, sealed, aad=_credential_aad(instance_id, seq), info=ADMIN_CREDENTIAL_INFO
    ).decode()


class AuthService:
    """Tokens, authentication, and principals / API keys / role bindings of an instance.

    Args:
        uow_factory: makes a unit of work per call (``read_only=True`` for reads).
        units: finds an instance's crypto unit (``kyok.unit.directory.UnitDirectory``).
        clock: the time source of tokens and sessions.
        token_ttl: seconds an access token lives (default 3600).
        refresh_ttl: seconds a session lasts from the API key's use (default 86400).
        leeway: seconds of clock skew tolerated when checking a token's ``iat``/``exp``.
        cache_ttl: seconds a principal's grants and an instance's key stay cached (0: off).
        max_attempts: tries of a change that concurrent changes get in the way of (>= 1).
    """

    def __init__(
        self,
        uow_factory: UowFactory,
        units: UnitDirectory,
        clock: Clock,
        *,
        token_ttl: int = 3600,
        refresh_ttl: int = 86400,
        leeway: int = 30,
        cache_ttl: float = 5.0,
        max_attempts: int = 3,
    ) -> None:
        if token_ttl < 1 or refresh_ttl < 1 or leeway < 0 or max_attempts < 1:
            raise ValueError("token_ttl and refresh_ttl must be positive, leeway >= 0")
        self._uow = uow_factory
        self._units = units
        self._clock = clock
        self._token_ttl = int(token_ttl)
        self._refresh_ttl = int(refresh_ttl)
        self._leeway = int(leeway)
        self._max_attempts = max_attempts
        self._identities: TtlCache[tuple[str, str], _Known | None] = TtlCache(cache_ttl)
        self._verifiers: TtlCache[str, _Verifier] = TtlCache(
            max(cache_ttl, 60.0) if cache_ttl else 0
        )
        self._verified: dict[str, AccessClaims] = {}  # token -> claims, insertion-ordered
        self._verified_lock = threading.Lock()

    @property
    def token_ttl(self) -> int:
        """Seconds an access token lives."""
        return self._token_ttl

    @property
    def identity_cache(self) -> TtlCache[tuple[str, str], _Known | None]:
        """The per-(instance, principal) cache of grants: a multi-worker node's link watches
        its invalidations (a revoked role or a deleted principal) and repeats them in every
        worker before the change is answered."""
        return self._identities

    def invalidate_caches(self) -> None:
        """Forget every cached key, grant and verified token (the next requests start over)."""
        self._identities.clear()
        self._verifiers.clear()
        with self._verified_lock:
            self._verified.clear()

    # ================================================================== tokens

    def issue_token(self, api_key: str) -> TokenGrant:
        """Exchange an API key for an access token and a refresh token.

        Args:
            api_key: the key as the caller sent it.

        Returns:
            The tokens.

        Raises:
            InvalidApiKey: no valid key (unknown, deleted, its row fails its MAC, its
                principal is gone).
            UnitSealed: the key's instance is sealed.
        """
        if not is_plausible_api_key(api_key):
            raise InvalidApiKey()
        with self._uow(read_only=True) as uow:
            row = uow.api_keys.get_by_lookup(lookup_of(api_key))
            if row is None:
                log.info("token request refused: unknown API key")
                raise InvalidApiKey()
            unit = self._credential_unit(row.instance_id, InvalidApiKey)
            if not mac.mac_ok(mac.api_key_mac(unit, row), row.mac):
                self._tampered("API key", row.id, row.instance_id)
                raise InvalidApiKey()
            principal = self._valid_principal(uow, unit, row.instance_id, row.principal_id)
            if principal is None:
                log.info("token request refused: API key %s has no principal", row.id)
                raise InvalidApiKey()
        now = self._clock.now()
        grant = self._issue(unit, principal, row.id, now + timedelta(seconds=self._refresh_ttl))
        log.info(
            "access token issued to principal %s of instance %s (API key %s)",
            principal.id,
            principal.instance_id,
            row.id,
        )
        return grant

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Exchange a refresh token (once) for a new access token and refresh token.

        Args:
            refresh_token: the token as the caller sent it.

        Returns:
            The new tokens; the session's end stays what it was.

        Raises:
            InvalidRefreshToken: unknown, used already, expired, its row fails its MAC, or its
                API key or principal is gone.
            UnitSealed: the token's instance is sealed.
        """
        if not is_plausible_refresh_token(refresh_token):
            raise InvalidRefreshToken()
        lookup = lookup_of(refresh_token)
        now = self._clock.now()
        try:
            with self._uow() as uow:
                row = uow.refresh_tokens.get(lookup)
                if row is None:
                    raise InvalidRefreshToken()
                unit = self._credential_unit(row.instance_id, InvalidRefreshToken)
                if not mac.mac_ok(mac.refresh_token_mac(unit, row), row.mac):
                    self._tampered("refresh token", row.id, row.instance_id)
                    raise InvalidRefreshToken()
                if not uow.refresh_tokens.consume(lookup):
                    raise InvalidRefreshToken()
                if row.expires_at <= now:
                    uow.commit()
                    raise InvalidRefreshToken(
                        "The refresh token has expired: request a new one with the API key."
                    )
                principal = self._session_principal(uow, unit, row)
                if principal is None:
                    uow.commit()
                    raise InvalidRefreshToken()
                grant = self._issue(unit, principal, row.api_key_id, row.expires_at, uow=uow)
        except VersionConflict:
            raise InvalidRefreshToken() from None  # used concurrently
        log.info(
            "access token refreshed for principal %s of instance %s",
            principal.id,
            principal.instance_id,
        )
        return grant

    def _session_principal(
        self, uow: UnitOfWork, unit: SecretUnit, row: RefreshTokenRecord
    ) -> PrincipalRecord | None:
        """The principal of a refresh token if its API key and principal are still valid."""
        key = uow.api_keys.get(row.instance_id, row.api_key_id)
        if key is None or key.principal_id != row.principal_id:
            return None
        if not mac.mac_ok(mac.api_key_mac(unit, key), key.mac):
            self._tampered("API key", key.id, key.instance_id)
            return None
        return self._valid_principal(uow, unit, row.instance_id, row.principal_id)

    def _issue(
        self,
        unit: SecretUnit,
        principal: PrincipalRecord,
        api_key_id: str,
        session_end: datetime,
        *,
        uow: UnitOfWork | None = None,
    ) -> TokenGrant:
        """Sign an access token, store a new refresh token (committing ``uow`` or a new one)."""
        now = self._clock.now()
        issued = int(now.timestamp())
        claims = AccessClaims(
            principal_id=principal.id,
            instance_id=principal.instance_id,
            issued_at=issued,
            expires_at=issued + self._token_ttl,
            token_id=str(uuid.uuid4()),
        )
        signature = unit.secret_sign(mac.LABEL_ACCESS_TOKEN, signing_input(claims))
        access = encode_access_token(claims, signature)
        secret = new_refresh_token()
        record = RefreshTokenRecord(
            lookup=lookup_of(secret.reveal()),
            instance_id=principal.instance_id,
            id=str(uuid.uuid4()),
            principal_id=principal.id,
            api_key_id=api_key_id,
            created_at=now,
            expires_at=session_end,
            mac="",
        )
        record = replace(record, mac=mac.refresh_token_mac(unit, record))
        if uow is None:
            with self._uow() as own:
                own.refresh_tokens.add(record)
                own.commit()
        else:
            uow.refresh_tokens.add(record)
            uow.commit()
        return TokenGrant(
            access,
            secret.reveal(),
            self._token_ttl,
            claims.expires_at,
            principal_id=principal.id,
            instance_id=principal.instance_id,
            principal_kind=principal.kind,
        )

    def purge_expired_refresh_tokens(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` refresh tokens whose session has ended (housekeeping).

        Returns:
            How many were deleted.
        """
        with self._uow() as uow:
            removed = uow.refresh_tokens.delete_expired(self._clock.now(), limit)
            uow.commit()
        return removed

    # ================================================================== authentication

    def authenticate(self, bearer: str | None, instance_id: str | None) -> AuthContext:
        """Who is calling: the one call the HTTP layer makes per request.

        Args:
            bearer: the ``Authorization`` header (``Bearer <jwt>``, scheme in any case).
            instance_id: the ``Bluemix-Instance`` header.

        Returns:
            The caller, its instance and its grants there.

        Raises:
            MissingCredentials: no bearer token.
            MissingInstance: no instance named.
            TokenExpired: the token is past its expiry.
            TokenInvalid: malformed, tampered, signed for another instance, or its principal
                is gone.
            UnitSealed: the instance is sealed.
        """
        token = _bearer_token(bearer)
        if not instance_id:
            raise MissingInstance()
        claims = self._verified.get(token)
        # A token seen before names its instance in its verified claims.
        claimed = unverified_instance(token) if claims is None else claims.instance_id
        if claimed is not None and claimed != instance_id:
            raise TokenInvalid("the access token was not issued for this instance")
        verifier = self._verifier(instance_id)
        now = int(self._clock.now().timestamp())
        if claims is None or claims.instance_id != instance_id:
            claims = verify_access_token(token, verifier.public_key, now=now, leeway=self._leeway)
            self._remember_token(token, claims)
        elif now >= claims.expires_at + self._leeway:
            raise TokenExpired()
        if claims.instance_id != instance_id:
            raise TokenInvalid("the access token was not issued for this instance")
        known = self._known(verifier.unit, instance_id, claims.principal_id)
        if known is None:
            raise TokenInvalid("the principal of the access token no longer exists")
        return AuthContext(known.principal, instance_id, known.grants, token_id=claims.token_id)

    def _remember_token(self, token: str, claims: AccessClaims) -> None:
        """Keep a verified token's claims until it expires, so its signature (an Ed25519 check,
        ~100 us) is verified once per token, not once per request. Bounded; the oldest go first."""
        with self._verified_lock:
            self._verified[token] = claims
            while len(self._verified) > _MAX_VERIFIED_TOKENS:
                self._verified.pop(next(iter(self._verified)))

    def _verifier(self, instance_id: str) -> _Verifier:
        """The instance's unit and token key (cached), checking that the unit is unsealed."""
        cached = self._verifiers.get(instance_id)
        if cached is not None:
            try:
                cached.unit.require_unsealed()
                return cached
            except Unavailable:
                self._verifiers.invalidate(instance_id)  # the node may have reopened the unit
        generation = self._verifiers.generation()
        if len(instance_id) > _MAX_ID:
            raise TokenInvalid("the access token was not issued for this instance")
        try:
            unit = self._unit(instance_id)
        except NotFound:
            raise TokenInvalid("the access token was not issued for this instance") from None
        unit.require_unsealed()
        verifier = _Verifier(unit, public_key_of(unit.secret_public_key(mac.LABEL_ACCESS_TOKEN)))
        self._verifiers.put(instance_id, verifier, generation)
        return verifier

    def _known(self, unit: SecretUnit, instance_id: str, principal_id: str) -> _Known | None:
        """A principal and its grants (cached); None if there is no valid such principal."""
        key = (instance_id, principal_id)
        cached = self._identities.lookup(key)
        if cached is not MISSING:
            assert cached is None or isinstance(cached, _Known)
            return cached
        generation = self._identities.generation()
        with self._uow(read_only=True) as uow:
            record = self._valid_principal(uow, unit, instance_id, principal_id)
            known = None
            if record is not None:
                bindings = self._valid_bindings(uow, unit, instance_id, principal_id)
                grants = tuple(g for g in map(grant_of, bindings) if g is not None)
                known = _Known(_principal_of(record), grants)
        self._identities.put(key, known, generation)
        return known

    def whoami(self, ctx: AuthContext) -> Identity:
        """The caller's principal and role bindings (no permission needed).

        Raises:
            PrincipalNotFound: the principal was deleted meanwhile.
        """
        unit = self._unit(ctx.instance_id)
        with self._uow(read_only=True) as uow:
            record = self._valid_principal(uow, unit, ctx.instance_id, ctx.principal.id)
            if record is None:
                raise PrincipalNotFound()
            bindings = self._valid_bindings(uow, unit, ctx.instance_id, record.id)
        return Identity(record, tuple(bindings))

    # ================================================================== principals

    def create_principal(self, ctx: AuthContext, name: str, kind: str) -> PrincipalRecord:
        """Create a user or service ID in the caller's instance.

        Args:
            ctx: the caller (needs ``kyok.principals.manage``).
            name: 2-64 printable characters, unique in the instance.
            kind: ``user`` or ``service``.

        Returns:
            The new principal (it has no roles and no API keys yet).

        Raises:
            NotAllowed: the caller lacks the permission.
            InvalidAuthField: bad name or kind.
            PrincipalExists: the name is taken.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        name = validate_principal_name(name)
        principal_kind = parse_kind(kind)
        unit = self._unit(ctx.instance_id)
        record = self._principal_record(
            unit, ctx.instance_id, name, principal_kind, ctx.principal.id
        )
        try:
            with self._uow() as uow:
                uow.principals.add(record)
                uow.commit()
        except AlreadyExists:
            raise PrincipalExists() from None
        log.info(
            "principal %s (%s) created in instance %s by %s",
            record.id,
            record.kind,
            record.instance_id,
            ctx.principal.id,
        )
        return record

    def list_principals(self, ctx: AuthContext) -> list[PrincipalRecord]:
        """The principals of the caller's instance, oldest first.

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        unit = self._unit(ctx.instance_id)
        with self._uow(read_only=True) as uow:
            rows = uow.principals.list(ctx.instance_id)
        return [r for r in rows if self._principal_ok(unit, r)]

    def get_principal(self, ctx: AuthContext, principal_id: str) -> PrincipalRecord:
        """One principal of the caller's instance.

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            PrincipalNotFound: no such (valid) principal in the instance.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        unit = self._unit(ctx.instance_id)
        with self._uow(read_only=True) as uow:
            return self._require_principal(uow, unit, ctx.instance_id, principal_id)

    def delete_principal(self, ctx: AuthContext, principal_id: str) -> None:
        """Delete a principal with its API keys, refresh tokens and role bindings. Its access
        tokens stop working at once on this node (within ``cache_ttl`` on others).

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            PrincipalNotFound: no such principal in the instance.
            LastAdmin: it holds the instance's last ``KyokInstanceAdmin`` binding.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        instance_id = ctx.instance_id
        unit = self._unit(instance_id)

        def change(uow: UnitOfWork) -> None:
            if len(principal_id) > _MAX_ID or uow.principals.get(instance_id, principal_id) is None:
                raise PrincipalNotFound()
            self._check_admins_remain(
                uow, unit, instance_id, lambda b: b.principal_id == principal_id
            )
            uow.role_bindings.delete_for_principal(instance_id, principal_id)
            uow.api_keys.delete_for_principal(instance_id, principal_id)
            uow.refresh_tokens.delete_for_principal(instance_id, principal_id)
            uow.principals.delete(instance_id, principal_id)

        self._change(change)
        self._identities.invalidate((instance_id, principal_id))
        log.info(
            "principal %s of instance %s deleted by %s", principal_id, instance_id, ctx.principal.id
        )

    # ================================================================== API keys

    def create_api_key(
        self, ctx: AuthContext, principal_id: str, name: str
    ) -> tuple[ApiKeyRecord, Secret]:
        """Create an API key for a principal of the caller's instance.

        Args:
            ctx: the caller (needs ``kyok.principals.manage``).
            principal_id: whose key it is.
            name: 1-64 printable characters.

        Returns:
            The stored record and the key itself (shown once, never stored).

        Raises:
            NotAllowed: the caller lacks the permission.
            InvalidAuthField: bad name.
            PrincipalNotFound: no such principal in the instance.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        name = validate_api_key_name(name)
        unit = self._unit(ctx.instance_id)
        secret = new_api_key()
        with self._uow() as uow:
            self._require_principal(uow, unit, ctx.instance_id, principal_id)
            record = self._api_key_record(
                unit, ctx.instance_id, principal_id, name, secret, ctx.principal.id
            )
            uow.api_keys.add(record)
            uow.commit()
        log.info(
            "API key %s created for principal %s of instance %s by %s",
            record.id,
            principal_id,
            ctx.instance_id,
            ctx.principal.id,
        )
        return record, secret

    def list_api_keys(self, ctx: AuthContext, principal_id: str) -> list[ApiKeyRecord]:
        """A principal's API keys (never the keys themselves), oldest first.

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            PrincipalNotFound: no such principal in the instance.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        unit = self._unit(ctx.instance_id)
        with self._uow(read_only=True) as uow:
            self._require_principal(uow, unit, ctx.instance_id, principal_id)
            rows = uow.api_keys.list_for_principal(ctx.instance_id, principal_id)
        return [r for r in rows if self._api_key_ok(unit, r)]

    def delete_api_key(self, ctx: AuthContext, api_key_id: str) -> None:
        """Delete an API key; the sessions started with it cannot be refreshed any more
        (their access tokens live out their ``token_ttl``).

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            ApiKeyNotFound: no such key in the instance.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        instance_id = ctx.instance_id
        if len(api_key_id) > _MAX_ID:
            raise ApiKeyNotFound()
        with self._uow() as uow:
            if not uow.api_keys.delete(instance_id, api_key_id):
                raise ApiKeyNotFound()
            uow.refresh_tokens.delete_for_api_key(instance_id, api_key_id)
            uow.commit()
        log.info(
            "API key %s of instance %s deleted by %s", api_key_id, instance_id, ctx.principal.id
        )

    # ================================================================== role bindings

    def grant(
        self, ctx: AuthContext, principal_id: str, role: Role | str, scope: Scope | str
    ) -> RoleBindingRecord:
        """Grant a role on a scope to a principal of the caller's instance.

        Args:
            ctx: the caller (needs ``kyok.principals.manage``).
            principal_id: who gets it.
            role: a :class:`Role` or its name (any case).
            scope: ``instance``, ``key_ring:<id>`` or ``key:<uuid>`` (the ring or key need not
                exist yet).

        Returns:
            The new binding.

        Raises:
            NotAllowed: the caller lacks the permission.
            InvalidAuthField: bad role or scope, or ``KyokInstanceAdmin`` below the instance.
            PrincipalNotFound: no such principal in the instance.
            RoleBindingExists: the principal has that role on that scope already.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        the_role = parse_role(role.value if isinstance(role, Role) else role)
        the_scope = parse_scope(str(scope) if isinstance(scope, Scope) else scope)
        check_grantable(the_role, the_scope)
        instance_id = ctx.instance_id
        unit = self._unit(instance_id)
        try:
            with self._uow() as uow:
                self._require_principal(uow, unit, instance_id, principal_id)
                record = self._binding_record(
                    unit, instance_id, principal_id, the_role, the_scope, ctx.principal.id
                )
                uow.role_bindings.add(record)
                uow.commit()
        except AlreadyExists:
            raise RoleBindingExists() from None
        self._identities.invalidate((instance_id, principal_id))
        log.info(
            "role %s on %s granted to principal %s of instance %s by %s",
            record.role,
            record.scope,
            principal_id,
            instance_id,
            ctx.principal.id,
        )
        return record

    def list_grants(self, ctx: AuthContext, principal_id: str) -> list[RoleBindingRecord]:
        """A principal's (verified) role bindings, oldest first.

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            PrincipalNotFound: no such principal in the instance.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        unit = self._unit(ctx.instance_id)
        with self._uow(read_only=True) as uow:
            self._require_principal(uow, unit, ctx.instance_id, principal_id)
            return self._valid_bindings(uow, unit, ctx.instance_id, principal_id)

    def revoke(self, ctx: AuthContext, binding_id: str) -> None:
        """Remove a role binding.

        Raises:
            NotAllowed: the caller lacks ``kyok.principals.manage``.
            RoleBindingNotFound: no such binding in the instance.
            LastAdmin: it is the instance's last ``KyokInstanceAdmin`` binding.
        """
        ctx.require(Permission.PRINCIPALS_MANAGE)
        instance_id = ctx.instance_id
        unit = self._unit(instance_id)
        removed: list[RoleBindingRecord] = []

        def change(uow: UnitOfWork) -> None:
            removed.clear()
            binding = None
            if len(binding_id) <= _MAX_ID:
                binding = uow.role_bindings.get(instance_id, binding_id)
            if binding is None:
                raise RoleBindingNotFound()
            if binding.role == Role.INSTANCE_ADMIN.value:
                self._check_admins_remain(uow, unit, instance_id, lambda b: b.id == binding_id)
            uow.role_bindings.delete(instance_id, binding_id)
            removed.append(binding)

        self._change(change)
        principal_id = removed[0].principal_id
        self._identities.invalidate((instance_id, principal_id))
        log.info(
            "role binding %s (%s on %s) of principal %s in instance %s revoked by %s",
            binding_id,
            removed[0].role,
            removed[0].scope,
            principal_id,
            instance_id,
            ctx.principal.id,
        )

    # ================================================================== first setup

    def bootstrap_admin(
        self, instance_id: str, *, name: str = "admin", api_key: str | None = None
    ) -> str:
        """Create an instance's first administrator and an API key for it (dev mode, first
        setup): principal ``name`` with Manager, KeyPurge and KyokInstanceAdmin on the instance.

        Idempotent when ``api_key`` is given and already belongs to principal ``name`` of the
        instance (then nothing changes). Otherwise the instance must have no principals yet:
        this is how the first administrator comes to exist, not a way around one (see the
        module docstring on who may call it).

        Args:
            instance_id: the instance (it must exist and have a crypto unit).
            name: the principal's name.
            api_key: a chosen key (``KYOK_DEV_API_KEY``): any 16-256 printable characters;
                a random ``kyok_…`` key when omitted.

        Returns:
            The API key (show it once).

        Raises:
            InvalidAuthField: bad name or key.
            AlreadyBootstrapped: the instance has principals already.
            Conflict: ``api_key`` is in use elsewhere.
            NotFound: no such instance.
            UnitSealed: the instance is sealed.
        """
        name = validate_principal_name(name)
        if api_key is not None and not is_plausible_api_key(api_key):
            raise InvalidAuthField("api_key", "must be 16 to 256 printable characters")
        unit = self._unit(instance_id)
        if unit.seal_kind != "dev":
            raise Forbidden(
                "Forbidden: outside dev mode an instance's administrator credential needs an "
                "authorize_admin command signed by the crypto unit's administrators "
                "(kyok ceremony admin-credential)",
                code="ADMIN_AUTHORIZATION_REQUIRED_ERR",
            )
        secret = Secret(api_key) if api_key is not None else new_api_key()
        for attempt in range(2):
            try:
                admin = self._bootstrap_once(unit, instance_id, name, secret, api_key is not None)
                break
            except AlreadyExists:
                if attempt == 1:
                    raise AlreadyBootstrapped() from None  # another node was faster
        else:  # pragma: no cover (the loop always breaks or raises)
            raise AssertionError("unreachable")
        if admin is None:
            return secret.reveal()  # that key already belongs to that administrator
        self._identities.clear()
        log.warning(
            "bootstrap administrator %s (%s) created for instance %s; its API key is shown "
            "only to whoever called for it",
            admin.id,
            name,
            instance_id,
        )
        return secret.reveal()

    def authorized_admin(self, instance_id: str, authorization_seq: int) -> tuple[str, bytes]:
        """Make an administrator credential the unit's administrators authorized.

        The ``authorize_admin`` command accepted at ``authorization_seq`` names the principal
        and a recipient public key; the principal gets Manager, KeyPurge and KyokInstanceAdmin
        on the instance and an API key, which leaves only sealed to that recipient
        (:func:`seal_admin_credential`). The authorization is consumed first (recorded in the
        unit's transcript), so it makes at most one credential; this also recovers an instance
        whose administrators lost theirs.

        Args:
            instance_id: the instance.
            authorization_seq: the sequence number of the accepted ``authorize_admin`` command.

        Returns:
            ``(principal_id, sealed_api_key)``; only the recipient's private key opens the key.

        Raises:
            NotFound: no such instance.
            UnitSealed: the instance is sealed.
            Conflict: no unused authorization at that sequence number, or a principal of that
                name exists already (then the authorization stays unused).
        """
        unit = self._unit(instance_id)
        found = unit.admin_authorization(authorization_seq)
        if found is None:
            raise Conflict(
                f"Conflict: there is no unused administrator authorization at sequence {authorization_seq}",
                code="ADMIN_AUTHORIZATION_NOT_FOUND_ERR",
            )
        name = validate_principal_name(found[0])
        recipient = HybridPublicKey.from_bytes(found[1])
        with self._uow(read_only=True) as uow:
            if uow.instances.get(instance_id) is None:
                raise NotFound(
                    f"Not Found: no instance {instance_id}", code="INSTANCE_NOT_FOUND_ERR"
                )
            if any(p.name == name for p in uow.principals.list(instance_id)):
                raise Conflict(
                    f"Conflict: a principal named {name!r} exists already",
                    code="PRINCIPAL_EXISTS_ERR",
                )
        unit.use_admin_authorization(authorization_seq)
        secret = new_api_key()
        actor = f"unit-authorization:{authorization_seq}"
        with self._uow() as uow:
            admin = self._add_administrator(
                uow, unit, instance_id, name, secret, "authorized", actor
            )
            uow.commit()
        self._identities.clear()
        log.warning(
            "administrator %s (%s) created for instance %s under the unit authorization at sequence %d",
            admin.id,
            name,
            instance_id,
            authorization_seq,
        )
        return admin.id, seal_admin_credential(
            recipient, secret.reveal(), instance_id, authorization_seq
        )

    def _bootstrap_once(
        self, unit: SecretUnit, instance_id: str, name: str, secret: Secret, chosen: bool
    ) -> PrincipalRecord | None:
        """One attempt of :meth:`bootstrap_admin`; None when ``chosen`` key is in place already."""
        with self._uow() as uow:
            if uow.instances.get(instance_id) is None:
                raise NotFound(
                    f"Not Found: no instance {instance_id}", code="INSTANCE_NOT_FOUND_ERR"
                )
            if chosen and self._bootstrapped_with(uow, unit, instance_id, name, secret.reveal()):
                return None
            if uow.principals.count(instance_id) > 0:
                raise AlreadyBootstrapped()
            admin = self._add_administrator(
                uow, unit, instance_id, name, secret, "bootstrap", SYSTEM.id
            )
            uow.commit()
        return admin

    def _add_administrator(
        self,
        uow: UnitOfWork,
        unit: SecretUnit,
        instance_id: str,
        name: str,
        secret: Secret,
        key_name: str,
        actor: str,
    ) -> PrincipalRecord:
        """Add principal ``name`` with :data:`BOOTSTRAP_ROLES` on the instance and an API key."""
        admin = self._principal_record(unit, instance_id, name, PrincipalKind.USER, actor)
        uow.principals.add(admin)
        for role in BOOTSTRAP_ROLES:
            uow.role_bindings.add(
                self._binding_record(unit, instance_id, admin.id, role, INSTANCE_SCOPE, actor)
            )
        uow.api_keys.add(self._api_key_record(unit, instance_id, admin.id, key_name, secret, actor))
        return admin

    def _bootstrapped_with(
        self, uow: UnitOfWork, unit: SecretUnit, instance_id: str, name: str, api_key: str
    ) -> bool:
        """Whether ``api_key`` is already a valid key of principal ``name`` of the instance."""
        row = uow.api_keys.get_by_lookup(lookup_of(api_key))
        if row is None:
            return False
        if row.instance_id == instance_id and mac.mac_ok(mac.api_key_mac(unit, row), row.mac):
            owner = self._valid_principal(uow, unit, instance_id, row.principal_id)
            if owner is not None and owner.name == name:
                return True
        raise Conflict("Conflict: that API key is in use", code="API_KEY_IN_USE_ERR")

    # ================================================================== helpers

    def _change(self, change: Callable[[UnitOfWork], None]) -> None:
        """Run ``change`` in a unit of work and commit, retrying on concurrent changes."""
        for attempt in range(self._max_attempts):
            try:
                with self._uow() as uow:
                    change(uow)
                    uow.commit()
                return
            except VersionConflict:
                if attempt + 1 == self._max_attempts:
                    raise

    def _unit(self, instance_id: str) -> SecretUnit:
        """The instance's unit, ready to authenticate rows.

        Its secret is made on first use, which writes to the store through the unit's own
        connection; doing that here, before any unit of work of ours is open, keeps it from
        waiting on our own write lock (SQLite).

        Raises:
            NotFound: the instance has no unit.
            UnitSealed: it is sealed.
        """
        unit = self._units.for_instance(instance_id)
        unit.secret_hmac(mac.LABEL_PRINCIPAL, b"")
        return unit

    def _credential_unit(
        self, instance_id: str, error: type[InvalidApiKey] | type[InvalidRefreshToken]
    ) -> SecretUnit:
        """The unit of a credential's instance; a credential of no known instance is invalid."""
        try:
            return self._unit(instance_id)
        except NotFound:
            log.warning("a credential row names instance %s, which has no unit", instance_id)
            raise error() from None

    def _check_admins_remain(
        self,
        uow: UnitOfWork,
        unit: SecretUnit,
        instance_id: str,
        removing: Callable[[RoleBindingRecord], bool],
    ) -> None:
        """Raise LastAdmin if removing the bindings ``removing`` selects would leave no valid
        instance-wide ``KyokInstanceAdmin`` (the rows stay locked until commit)."""
        rows = uow.role_bindings.list_for_role(instance_id, Role.INSTANCE_ADMIN.value, lock=True)
        admins = [
            b
            for b in rows
            if b.scope == str(INSTANCE_SCOPE)
            and self._binding_ok(unit, b)
            and self._valid_principal(uow, unit, instance_id, b.principal_id) is not None
        ]
        if any(removing(b) for b in admins) and all(removing(b) for b in admins):
            raise LastAdmin()

    def _tampered(self, what: str, row_id: str, instance_id: str) -> None:
        log.warning(
            "a %s row failed its MAC check and is ignored (id %s, instance %s): the database "
            "holds a credential this instance's crypto unit did not make",
            what,
            row_id,
            instance_id,
        )

    def _principal_ok(self, unit: SecretUnit, record: PrincipalRecord) -> bool:
        ok = mac.mac_ok(mac.principal_mac(unit, record), record.mac) and record.kind in (
            PrincipalKind.USER.value,
            PrincipalKind.SERVICE.value,
        )
        if not ok:
            self._tampered("principal", record.id, record.instance_id)
        return ok

    def _api_key_ok(self, unit: SecretUnit, record: ApiKeyRecord) -> bool:
        ok = mac.mac_ok(mac.api_key_mac(unit, record), record.mac)
        if not ok:
            self._tampered("API key", record.id, record.instance_id)
        return ok

    def _binding_ok(self, unit: SecretUnit, record: RoleBindingRecord) -> bool:
        ok = mac.mac_ok(mac.role_binding_mac(unit, record), record.mac)
        if not ok:
            self._tampered("role binding", record.id, record.instance_id)
            return False
        if grant_of(record) is None:
            log.warning("role binding %s names an unknown role or scope; ignored", record.id)
            return False
        return True

    def _valid_principal(
        self, uow: UnitOfWork, unit: SecretUnit, instance_id: str, principal_id: str
    ) -> PrincipalRecord | None:
        if len(principal_id) > _MAX_ID:
            return None
        record = uow.principals.get(instance_id, principal_id)
        if record is None or not self._principal_ok(unit, record):
            return None
        return record

    def _require_principal(
        self, uow: UnitOfWork, unit: SecretUnit, instance_id: str, principal_id: str
    ) -> PrincipalRecord:
        record = self._valid_principal(uow, unit, instance_id, principal_id)
        if record is None:
            raise PrincipalNotFound()
        return record

    def _valid_bindings(
        self, uow: UnitOfWork, unit: SecretUnit, instance_id: str, principal_id: str
    ) -> list[RoleBindingRecord]:
        rows = uow.role_bindings.list_for_principal(instance_id, principal_id)
        return [r for r in rows if self._binding_ok(unit, r)]

    def _principal_record(
        self, unit: SecretUnit, instance_id: str, name: str, kind: PrincipalKind, actor: str
    ) -> PrincipalRecord:
        record = PrincipalRecord(
            instance_id=instance_id,
            id=str(uuid.uuid4()),
            name=name,
            kind=kind.value,
            created_at=self._clock.now(),
            created_by=actor,
            mac="",
        )
        return replace(record, mac=mac.principal_mac(unit, record))

    def _api_key_record(
        self,
        unit: SecretUnit,
        instance_id: str,
        principal_id: str,
        name: str,
        secret: Secret,
        actor: str,
    ) -> ApiKeyRecord:
        record = ApiKeyRecord(
            lookup=lookup_of(secret.reveal()),
            instance_id=instance_id,
            id=str(uuid.uuid4()),
            principal_id=principal_id,
            name=name,
            created_at=self._clock.now(),
            created_by=actor,
            mac="",
        )
        return replace(record, mac=mac.api_key_mac(unit, record))

    def _binding_record(
        self,
        unit: SecretUnit,
        instance_id: str,
        principal_id: str,
        role: Role,
        scope: Scope,
        actor: str,
    ) -> RoleBindingRecord:
        record = RoleBindingRecord(
            instance_id=instance_id,
            id=str(uuid.uuid4()),
            principal_id=principal_id,
            role=role.value,
            scope=str(scope),
            created_at=self._clock.now(),
            created_by=actor,
            mac="",
        )
        return replace(record, mac=mac.role_binding_mac(unit, record))
