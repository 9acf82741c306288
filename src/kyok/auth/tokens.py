"""Access tokens: JWTs signed with EdDSA (Ed25519) by the instance's crypto unit.

The private key never leaves the unit, so the token is assembled here (``header.payload``
base64url, signed by ``unit.secret_sign("access-token", …)``) and verified through PyJWT with
the unit's public key and ``algorithms=["EdDSA"]`` spelled out: a token whose header says
``none``, ``HS256`` or anything else is refused before any key is used.

Claims (what the keyprotect 3.x SDK and IBM tooling read, plus kyok's own ``instance``)::

    header  {"alg": "EdDSA", "kid": <instance id>, "typ": "JWT"}
    payload {"iss": "kyok", "sub": <principal id>, "iam_id": <principal id>,
             "instance": <instance id>, "account": <instance id>,
             "iat": <int>, "exp": <int>, "jti": <uuid>}

``iat`` and ``exp`` are integers (the 3.x SDK decodes the token without verifying it and does
arithmetic on them). Times are checked here against kyok's :class:`~kyok.clock.Clock`, not
PyJWT's wall clock.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kyok.auth.errors import TokenExpired, TokenInvalid
from kyok.crypto.encoding import canonical_json
from kyok.crypto.sign import SignatureAlgorithm, VerifyingKey

__all__ = [
    "ALGORITHM",
    "ISSUER",
    "MAX_TOKEN_LENGTH",
    "AccessClaims",
    "encode_access_token",
    "public_key_of",
    "signing_input",
    "unverified_instance",
    "verify_access_token",
]

ALGORITHM = "EdDSA"
ISSUER = "kyok"
MAX_TOKEN_LENGTH = 8192
_REQUIRED = ("iss", "sub", "iat", "exp", "jti", "instance")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The claims kyok puts in, and needs from, an access token."""

    principal_id: str
    instance_id: str
    issued_at: int
    expires_at: int
    token_id: str

    def to_payload(self) -> dict[str, Any]:
        """The JWT payload."""
        return {
            "iss": ISSUER,
            "sub": self.principal_id,
            "iam_id": self.principal_id,
            "instance": self.instance_id,
            "account": self.instance_id,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.token_id,
        }


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signing_input(claims: AccessClaims) -> bytes:
    """``base64url(header) "." base64url(payload)``: the bytes the unit signs."""
    header = {"alg": ALGORITHM, "kid": claims.instance_id, "typ": "JWT"}
    return _b64url(canonical_json(header)) + b"." + _b64url(canonical_json(claims.to_payload()))


def encode_access_token(claims: AccessClaims, signature: bytes) -> str:
    """The compact JWT: :func:`signing_input` plus the unit's ``signature`` over it."""
    return (signing_input(claims) + b"." + _b64url(signature)).decode("ascii")


def public_key_of(key: VerifyingKey) -> ed25519.Ed25519PublicKey:
    """The ``cryptography`` key PyJWT verifies with (only Ed25519 is accepted)."""
    if key.algorithm is not SignatureAlgorithm.ED25519:
        raise ValueError("access tokens are verified with an Ed25519 key")
    loaded = serialization.load_der_public_key(key.der)
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        raise ValueError("access tokens are verified with an Ed25519 key")
    return loaded


def unverified_instance(token: str) -> str | None:
    """The ``instance`` claim of a token, *unverified*: only to say which instance a token was
    meant for in an error. Never trust it for anything else."""
    try:
        payload_part = token.split(".")[1]
        padded = payload_part + "=" * (-len(payload_part) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (IndexError, ValueError, binascii.Error, UnicodeError):
        return None
    value = payload.get("instance") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_access_token(
    token: str, public_key: ed25519.Ed25519PublicKey, *, now: int, leeway: int
) -> AccessClaims:
    """Check the signature, the claims and the times of ``token``.

    Args:
        token: the compact JWT.
        public_key: the instance's ``access-token`` key.
        now: the current time (epoch seconds, from kyok's clock).
        leeway: seconds of clock skew tolerated on ``iat`` and ``exp``.

    Returns:
        The claims.

    Raises:
        TokenExpired: ``now`` is past ``exp`` (plus ``leeway``).
        TokenInvalid: anything else (one opaque error: bad encoding, wrong algorithm, bad
            signature, missing or mistyped claims, issued in the future).
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid()
    try:
        payload = jwt.decode(
            token,
            key=public_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "verify_signature": True,
                "verify_exp": False,  # checked below with kyok's clock
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": True,
                "verify_sub": True,
                "verify_jti": True,
                "require": list(_REQUIRED),
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenInvalid() from None
    sub, instance, jti = payload.get("sub"), payload.get("instance"), payload.get("jti")
    iat, exp = payload.get("iat"), payload.get("exp")
    if not (isinstance(sub, str) and isinstance(instance, str) and isinstance(jti, str)):
        raise TokenInvalid()
    if not (_is_int(iat) and _is_int(exp)):
        raise TokenInvalid()
    assert isinstance(iat, int) and isinstance(exp, int)
    if iat > now + leeway or exp <= iat:
        raise TokenInvalid()
    if now >= exp + leeway:
        raise TokenExpired()
    return AccessClaims(sub, instance, iat, exp, jti)
