"""Access and refresh tokens: issue, verify, refresh, expire, and every way to forge one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auth_kit import AuthHarness, bearer
from kyok.auth import (
    AuthContext,
    InvalidApiKey,
    InvalidRefreshToken,
    MissingCredentials,
    MissingInstance,
    Role,
    TokenExpired,
    TokenInvalid,
)
from kyok.auth.integrity import LABEL_ACCESS_TOKEN
from kyok.auth.tokens import AccessClaims, encode_access_token, public_key_of, signing_input
from kyok.auth.tokens import verify_access_token as verify
from kyok.errors import Unauthenticated, Unavailable
from kyok.unit.errors import UnitSealed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _flip(text: str, index: int) -> str:
    """``text`` with the base64url character at ``index`` replaced by another one."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


# ------------------------------------------------------------------ issuing


def test_issue_token_returns_a_jwt_with_the_expected_claims(
    harness: AuthHarness, instance: str, admin_key: str, clock: Any
) -> None:
    grant = harness.token(admin_key)
    assert grant.token_type == "Bearer" and grant.scope == "ibm openid"
    assert grant.expires_in == 3600
    now = int(clock.now().timestamp())
    assert grant.expiration == now + 3600
    assert grant.refresh_token.startswith("kyok_rt_") and len(grant.refresh_token) == 51
    header, claims, _ = _parts(grant.access_token)
    assert header == {"alg": "EdDSA", "kid": instance, "typ": "JWT"}
    assert claims["iss"] == "kyok"
    assert claims["instance"] == claims["account"] == instance
    assert claims["sub"] == claims["iam_id"]
    assert type(claims["iat"]) is int and type(claims["exp"]) is int  # the 3.x SDK needs ints
    assert claims["iat"] == now and claims["exp"] == now + 3600
    uuid.UUID(claims["jti"])
    # what ibm-cloud-sdk-core does with it: decode without verifying
    decoded = jwt.decode(
        grant.access_token, algorithms=["RS256"], options={"verify_signature": False}
    )
    assert decoded["exp"] - decoded["iat"] == 3600


def test_a_token_verifies_with_the_units_public_key_through_pyjwt(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    token = harness.token(admin_key).access_token
    key = harness.units.for_instance(instance).secret_public_key(LABEL_ACCESS_TOKEN)
    claims = jwt.decode(
        token, public_key_of(key), algorithms=["EdDSA"], options={"verify_exp": False}
    )
    assert claims["instance"] == instance


def test_authenticate_gives_the_principal_and_its_grants(
    harness: AuthHarness, instance: str, admin_key: str, admin: AuthContext
) -> None:
    assert admin.instance_id == instance
    assert admin.principal.instance_id == instance
    assert {g.role for g in admin.grants} == {Role.MANAGER, Role.KEY_PURGE, Role.INSTANCE_ADMIN}
    assert admin.token_id is not None
    assert "token_id" not in repr(admin)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(
    harness: AuthHarness, instance: str, admin_key: str, scheme: str
) -> None:
    token = harness.token(admin_key).access_token
    assert harness.auth.authenticate(f"{scheme}  {token} ", instance).instance_id == instance


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic Yng6Yng=", "token"])
def test_missing_credentials(harness: AuthHarness, instance: str, header: str | None) -> None:
    with pytest.raises(MissingCredentials) as info:
        harness.auth.authenticate(header, instance)
    assert info.value.status == 401


def test_the_instance_is_required(harness: AuthHarness, admin_key: str) -> None:
    with pytest.raises(MissingInstance) as info:
        harness.auth.authenticate(bearer(harness.token(admin_key)), None)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "api_key", ["", "short", "kyok_" + "A" * 43, "x" * 257, "tab\tin a key 0123", "kyok_\x00" * 4]
)
def test_unknown_or_malformed_api_keys_are_refused(harness: AuthHarness, api_key: str) -> None:
    with pytest.raises(InvalidApiKey) as info:
        harness.auth.issue_token(api_key)
    assert isinstance(info.value, Unauthenticated) and info.value.code == "BXNIM0415E"


# ------------------------------------------------------------------ time


def test_an_expired_token_is_refused(
    harness: AuthHarness, instance: str, admin_key: str, clock: Any
) -> None:
    grant = harness.token(admin_key)
    clock.advance(3600 + 29)  # within the 30 s leeway
    harness.auth.authenticate(bearer(grant), instance)
    clock.advance(1)
    with pytest.raises(TokenExpired) as info:
        harness.auth.authenticate(bearer(grant), instance)
    assert info.value.status == 401 and "expired" in info.value.message


def test_token_ttl_is_configurable(harness: AuthHarness, instance: str, admin_key: str) -> None:
    from kyok.auth import AuthService

    short = AuthService(
        harness.store.uow, harness.units, harness.clock, token_ttl=60, refresh_ttl=120
    )
    grant = short.issue_token(admin_key)
    assert grant.expires_in == 60
    _, claims, _ = _parts(grant.access_token)
    assert claims["exp"] - claims["iat"] == 60


def test_verify_refuses_tokens_issued_in_the_future(harness: AuthHarness, instance: str) -> None:
    unit = harness.units.for_instance(instance)
    key = public_key_of(unit.secret_public_key(LABEL_ACCESS_TOKEN))

    def token(iat: int, exp: int) -> str:
        claims = AccessClaims("p", instance, iat, exp, "j")
        return encode_access_token(
            claims, unit.secret_sign(LABEL_ACCESS_TOKEN, signing_input(claims))
        )

    assert verify(token(1000, 2000), key, now=1000, leeway=30).issued_at == 1000
    assert verify(token(1030, 2000), key, now=1000, leeway=30).issued_at == 1030
    for iat, exp in [(1031, 2000), (1000, 1000), (1000, 999)]:
        with pytest.raises(TokenInvalid):
            verify(token(iat, exp), key, now=1000, leeway=30)


# ------------------------------------------------------------------ forgeries


def test_a_flipped_byte_in_the_payload_is_refused(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    token = harness.token(admin_key).access_token
    header, payload, signature = token.split(".")
    for index in (0, len(payload) // 2, len(payload) - 2):
        forged = f"{header}.{_flip(payload, index)}.{signature}"
        with pytest.raises(TokenInvalid):
            harness.auth.authenticate(bearer(forged), instance)


def test_a_flipped_byte_in_the_signature_is_refused(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    token = harness.token(admin_key).access_token
    header, payload, signature = token.split(".")
    for index in (0, len(signature) // 2, len(signature) - 2):
        forged = f"{header}.{payload}.{_flip(signature, index)}"
        with pytest.raises(TokenInvalid):
            harness.auth.authenticate(bearer(forged), instance)


def test_a_changed_claim_is_refused(
    harness: AuthHarness, instance: str, admin_key: str, admin: AuthContext
) -> None:
    _, reader_key = harness.principal_with(admin, "reader", [(Role.READER, "instance")])
    token = harness.token(reader_key).access_token
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["sub"] = claims["iam_id"] = admin.principal.id  # become the administrator
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(forged), instance)
    claims = json.loads(_unb64(payload))
    claims["exp"] += 10**6  # live forever
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(forged), instance)


def _claims_of(harness: AuthHarness, api_key: str) -> dict[str, Any]:
    return _parts(harness.token(api_key).access_token)[1]


def test_alg_none_is_refused(harness: AuthHarness, instance: str, admin_key: str) -> None:
    claims = _claims_of(harness, admin_key)
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "typ": "JWT", "kid": instance}
        unsigned = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
        with pytest.raises(TokenInvalid):
            harness.auth.authenticate(bearer(unsigned), instance)


def test_hs256_with_the_public_key_as_secret_is_refused(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    """The classic algorithm confusion: HMAC "signed" with the (public) verification key."""
    claims = _claims_of(harness, admin_key)
    public = harness.units.for_instance(instance).secret_public_key(LABEL_ACCESS_TOKEN)
    raw = public_key_of(public).public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = public.to_pem()
    for secret in (raw, pem, public.der):
        header = {"alg": "HS256", "typ": "JWT", "kid": instance}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
        with pytest.raises(TokenInvalid):
            harness.auth.authenticate(bearer(f"{signing}.{_b64(mac)}"), instance)


def test_a_token_signed_by_another_ed25519_key_is_refused(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    claims = _claims_of(harness, admin_key)
    other = ed25519.Ed25519PrivateKey.generate()
    forged = jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": instance})
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(forged), instance)


@pytest.mark.parametrize(
    "token", ["a.b.c", "not-a-jwt", "....", "eyJhbGciOiJFZERTQSJ9..", "x" * 9000, "é.é.é"]
)
def test_garbage_tokens_are_refused(harness: AuthHarness, instance: str, token: str) -> None:
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(f"Bearer {token}", instance)


def test_a_token_of_instance_a_is_not_valid_for_instance_b(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    other = harness.new_instance("B")
    harness.admin_key(other)
    grant = harness.token(admin_key)
    with pytest.raises(TokenInvalid) as info:
        harness.auth.authenticate(bearer(grant), other)
    assert info.value.status == 401
    # lying in the (unverified) payload does not help either
    header, payload, signature = grant.access_token.split(".")
    claims = json.loads(_unb64(payload))
    claims["instance"] = claims["account"] = other
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(forged), other)
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(grant), "no-such-instance")


# ------------------------------------------------------------------ lifetime of credentials


def test_a_deleted_principals_token_stops_working(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    pid, key = harness.principal_with(admin, "svc", [(Role.WRITER, "instance")])
    grant = harness.token(key)
    assert harness.auth.authenticate(bearer(grant), instance).principal.id == pid
    harness.auth.delete_principal(admin, pid)
    with pytest.raises(TokenInvalid):
        harness.auth.authenticate(bearer(grant), instance)
    with pytest.raises(InvalidApiKey):
        harness.auth.issue_token(key)
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(grant.refresh_token)


def test_a_deleted_api_key_cannot_get_or_refresh_tokens(
    harness: AuthHarness, instance: str, admin: AuthContext
) -> None:
    pid, key = harness.principal_with(admin, "svc", [(Role.READER, "instance")])
    grant = harness.token(key)
    (record,) = harness.auth.list_api_keys(admin, pid)
    harness.auth.delete_api_key(admin, record.id)
    with pytest.raises(InvalidApiKey):
        harness.auth.issue_token(key)
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(grant.refresh_token)
    # an access token already issued lives out its time (documented)
    assert harness.auth.authenticate(bearer(grant), instance).principal.id == pid


def test_refresh_issues_a_new_pair_and_consumes_the_old_token(
    harness: AuthHarness, instance: str, admin_key: str, clock: Any
) -> None:
    first = harness.token(admin_key)
    clock.advance(100)
    second = harness.auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.expiration == first.expiration + 100
    ctx = harness.auth.authenticate(bearer(second), instance)
    assert ctx.principal.id == harness.auth.authenticate(bearer(first), instance).principal.id
    with pytest.raises(InvalidRefreshToken) as info:
        harness.auth.refresh(first.refresh_token)  # used already
    assert info.value.status == 401
    third = harness.auth.refresh(second.refresh_token)
    assert harness.auth.authenticate(bearer(third), instance).instance_id == instance


def test_a_session_ends_refresh_ttl_after_the_api_key_was_used(
    harness: AuthHarness, instance: str, admin_key: str, clock: Any
) -> None:
    grant = harness.token(admin_key)
    for _ in range(3):
        clock.advance(86400 // 4)
        grant = harness.auth.refresh(grant.refresh_token)
    clock.advance(86400 // 4)
    with pytest.raises(InvalidRefreshToken) as info:
        harness.auth.refresh(grant.refresh_token)
    assert "expired" in info.value.message
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(grant.refresh_token)  # and it is gone
    assert harness.auth.purge_expired_refresh_tokens() == 0


def test_expired_refresh_tokens_are_purged(
    harness: AuthHarness, instance: str, admin_key: str, clock: Any
) -> None:
    harness.token(admin_key)
    harness.token(admin_key)
    assert harness.auth.purge_expired_refresh_tokens() == 0
    clock.advance(86400)
    assert harness.auth.purge_expired_refresh_tokens(limit=1) == 1
    assert harness.auth.purge_expired_refresh_tokens() == 1


@pytest.mark.parametrize(
    "token", ["", "kyok_rt_", "kyok_rt_" + "A" * 43, "kyok_rt_" + "A" * 44, "x" * 51]
)
def test_unknown_or_malformed_refresh_tokens_are_refused(
    harness: AuthHarness, instance: str, token: str
) -> None:
    with pytest.raises(InvalidRefreshToken):
        harness.auth.refresh(token)


# ------------------------------------------------------------------ sealed units


def test_a_sealed_instance_authenticates_nobody(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    grant = harness.token(admin_key)
    harness.auth.authenticate(bearer(grant), instance)  # cached key and grants
    harness.seal(instance)
    with pytest.raises(UnitSealed) as info:
        harness.auth.authenticate(bearer(grant), instance)
    assert isinstance(info.value, Unavailable) and info.value.status == 503
    with pytest.raises(UnitSealed):
        harness.auth.issue_token(admin_key)
    with pytest.raises(UnitSealed):
        harness.auth.refresh(grant.refresh_token)
    harness.reopen(instance)  # the dev seal unseals the reopened unit
    assert harness.auth.authenticate(bearer(grant), instance).instance_id == instance
    assert harness.auth.refresh(grant.refresh_token).token_type == "Bearer"


# ------------------------------------------------------------------ per-request cost


def test_authenticate_touches_no_store_while_cached(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    """The hot path (DESIGN §6): after the first request, no unit of work at all (and never a
    write); a change made through the service is seen at once."""
    from kyok.auth import AuthService

    opened: list[bool] = []

    def counting_uow(*, read_only: bool = False) -> Any:
        opened.append(read_only)
        return harness.store.uow(read_only=read_only)

    counted = AuthService(counting_uow, harness.units, harness.clock, cache_ttl=60)
    grant = counted.issue_token(admin_key)
    admin = counted.authenticate(bearer(grant), instance)
    opened.clear()
    for _ in range(50):
        counted.authenticate(bearer(grant), instance)
    assert opened == []
    pid = counted.create_principal(admin, "svc", "service").id
    counted.grant(admin, pid, Role.READER, "instance")
    _, secret = counted.create_api_key(admin, pid, "k")
    svc_grant = counted.issue_token(secret.reveal())
    counted.authenticate(bearer(svc_grant), instance)
    opened.clear()
    counted.authenticate(bearer(svc_grant), instance)
    assert opened == []
    counted.revoke(admin, counted.list_grants(admin, pid)[0].id)
    opened.clear()
    assert counted.authenticate(bearer(svc_grant), instance).grants == ()
    assert opened == [True]  # reloaded once, read-only


def test_without_the_cache_every_request_reads_the_store(
    harness: AuthHarness, instance: str, admin_key: str
) -> None:
    from kyok.auth import AuthService

    opened: list[bool] = []

    def counting_uow(*, read_only: bool = False) -> Any:
        opened.append(read_only)
        return harness.store.uow(read_only=read_only)

    uncached = AuthService(counting_uow, harness.units, harness.clock, cache_ttl=0)
    grant = uncached.issue_token(admin_key)
    opened.clear()
    for _ in range(3):
        uncached.authenticate(bearer(grant), instance)
    assert opened == [True, True, True]
