"""The key service an envelope needs (wrap, unwrap, rewrap), and how its refusals are reported.

:class:`~kyok.client.KyokClient` satisfies :class:`KeyService`;
:class:`kyok.client.envelope.testing.LocalKeyService` is an in-process one for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

from kyok.client._models import RewrapResult, UnwrapResult, WrapResult
from kyok.client.envelope.errors import InvalidEnvelope, KeyUnavailable, KeyUnavailableReason
from kyok.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    Unprocessable,
)

__all__ = ["KeyService", "rewrap_dek", "unwrap_dek", "wrap_new_dek"]

T = TypeVar("T")
Action = Literal["encrypt", "decrypt", "rewrap"]

_VERB: dict[Action, str] = {"encrypt": "wrap", "decrypt": "unwrap", "rewrap": "rewrap"}
_STATE_CODE = "KEY_ACTION_INVALID_STATE_ERR"


class KeyService(Protocol):
    """What envelope encryption needs from kyok: the three data-plane calls on a root key.

    ``wrap`` without ``plaintext`` has the service generate the DEK and return it with its
    wrapped form; ``unwrap`` returns the DEK (and, when an older key version wrapped it, the DEK
    rewrapped by the newest); ``rewrap`` moves a wrapped DEK to the newest version without the DEK
    leaving the service. Refusals are :class:`~kyok.client.errors.ApiError` subclasses.
    """

    def wrap(
        self, key_id: str, plaintext: bytes | None = None, *, aad: Sequence[str] | None = None
    ) -> WrapResult:
        """Wrap ``plaintext``, or a DEK the service generates when it is None."""
        ...

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        """Unwrap a DEK that ``wrap`` returned."""
        ...

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        """Wrap the same DEK again with the key's newest version."""
        ...


def _state_in(message: str) -> int | None:
    """The key state named in kyok's "… is not allowed in state N" message, if any."""
    marker = "state "
    at = message.rfind(marker)
    if at < 0:
        return None
    digits = ""
    for ch in message[at + len(marker) :]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def _unavailable(
    exc: ApiError, action: Action, key_id: str, reason: KeyUnavailableReason, message: str
) -> KeyUnavailable:
    return KeyUnavailable(
        message,
        reason=reason,
        key_id=key_id,
        status=exc.status,
        code=exc.code,
        correlation_id=exc.correlation_id,
    )


def map_refusal(exc: ApiError, action: Action, key_id: str) -> Exception | None:
    """The envelope error for kyok's refusal ``exc``, or None to let ``exc`` through.

    409 (wrong key state) becomes ``suspended``/``deactivated``, 410 ``destroyed``, 404
    ``not_found``, 403 ``forbidden``; a wrapped DEK that does not open (422/400 on unwrap or
    rewrap) is an :class:`InvalidEnvelope`. Transport failures, 401, 503 and a 400 on wrap (the
    caller's own input) pass through unchanged.
    """
    verb = _VERB[action]
    key = f"root key {key_id}"
    if isinstance(exc, Conflict) and (exc.code == _STATE_CODE or "in state" in exc.message):
        state = _state_in(exc.message)
        if state == 2 or (state is None and action != "encrypt"):
            return _unavailable(
                exc,
                action,
                key_id,
                "suspended",
                f"{key} is suspended (disabled): enable it to {action}",
            )
        if state == 3:
            return _unavailable(
                exc,
                action,
                key_id,
                "deactivated",
                f"{key} is deactivated (expired): it can still decrypt but no longer encrypt; "
                "encrypt with another root key",
            )
        if state == 0:
            return _unavailable(
                exc,
                action,
                key_id,
                "other",
                f"{key} is not active yet (pre-activation): it cannot {verb} until it is",
            )
        return _unavailable(
            exc, action, key_id, "other", f"kyok refused to {verb} with {key}: {exc.message}"
        )
    if isinstance(exc, Gone):
        if action == "encrypt":
            text = f"{key} was deleted: encrypt with another root key"
        else:
            text = (
                f"{key} was deleted: the data cannot be decrypted unless the key is restored "
                "within its restore period (30 days by default); once the key is purged the "
                "data is unrecoverable (crypto-shredded)"
            )
        return _unavailable(exc, action, key_id, "destroyed", text)
    if isinstance(exc, NotFound):
        if action == "encrypt":
            text = f"{key} does not exist in this kyok instance: check the key id or alias"
        else:
            text = (
                f"{key} does not exist in this kyok instance: if it was deleted and purged, "
                "the data is unrecoverable (crypto-shredded); otherwise check the key id and "
                "the instance"
            )
        return _unavailable(exc, action, key_id, "not_found", text)
    if isinstance(exc, Forbidden):
        return _unavailable(
            exc,
            action,
            key_id,
            "forbidden",
            f"the caller may not {verb} with {key}: ask for a role that allows it",
        )
    if action != "encrypt" and isinstance(exc, Unprocessable | BadRequest):
        return InvalidEnvelope(
            f"kyok could not unwrap the header's wrapped DEK with {key}: the header is damaged, "
            "or the DEK was wrapped by another key or with other AAD",
            status=exc.status,
            code="DEK_UNWRAP_FAILED",
            correlation_id=exc.correlation_id,
        )
    return None


def _call(action: Action, key_id: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiError as exc:
        mapped = map_refusal(exc, action, key_id)
        if mapped is None:
            raise
        raise mapped from exc


def _aad_arg(aad: tuple[str, ...]) -> list[str] | None:
    return list(aad) if aad else None


def wrap_new_dek(keys: KeyService, key_id: str, aad: tuple[str, ...]) -> WrapResult:
    """One ``wrap`` call that has kyok generate a DEK; refusals mapped."""
    result = _call("encrypt", key_id, lambda: keys.wrap(key_id, None, aad=_aad_arg(aad)))
    if len(result.dek) < 16:
        raise InvalidEnvelope(
            f"the key service returned a {len(result.dek)}-byte DEK; at least 16 are needed",
            code="DEK_TOO_SHORT",
        )
    return result


def unwrap_dek(keys: KeyService, key_id: str, wrapped: str, aad: tuple[str, ...]) -> UnwrapResult:
    """One ``unwrap`` call; refusals mapped."""
    return _call("decrypt", key_id, lambda: keys.unwrap(key_id, wrapped, aad=_aad_arg(aad)))


def rewrap_dek(keys: KeyService, key_id: str, wrapped: str, aad: tuple[str, ...]) -> RewrapResult:
    """One ``rewrap`` call; refusals mapped."""
    return _call("rewrap", key_id, lambda: keys.rewrap(key_id, wrapped, aad=_aad_arg(aad)))
