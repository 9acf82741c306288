"""How kyok's refusals become envelope errors (the live server's answers are in test_live.py;
these cover every branch, with the errors the SDK raises for those answers)."""

from __future__ import annotations

import pytest

from kyok.client import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from kyok.client import envelope as ev
from kyok.client.envelope._keyservice import map_refusal
from kyok.client.envelope.testing import LocalKeyService
from kyok.client.errors import Conflict


def state_error(action: str, state: int) -> Conflict:
    return Conflict(
        f"Key is not in a valid state: the action {action} is not allowed in state {state}",
        status=409,
        code="KEY_ACTION_INVALID_STATE_ERR",
        correlation_id="c-1",
    )


@pytest.mark.parametrize(
    ("exc", "action", "reason", "words"),
    [
        (state_error("unwrap", 2), "decrypt", "suspended", "is suspended (disabled): enable it to decrypt"),
        (state_error("wrap", 2), "encrypt", "suspended", "enable it to encrypt"),
        (state_error("rewrap", 2), "rewrap", "suspended", "enable it to rewrap"),
        (state_error("wrap", 3), "encrypt", "deactivated", "can still decrypt but no longer encrypt"),
        (state_error("wrap", 0), "encrypt", "other", "not active yet"),
        (Conflict("Key is in a bad state", status=409, code="KEY_ACTION_INVALID_STATE_ERR"),
         "decrypt", "suspended", "suspended"),
        (Conflict("rotated too recently", status=409, code="REQ_TOO_EARLY_ERR"), "decrypt",
         None, None),
        (Gone("gone", status=410, code="KEY_DELETED_ERR"), "decrypt", "destroyed",
         "once the key is purged the data is unrecoverable (crypto-shredded)"),
        (Gone("gone", status=410), "encrypt", "destroyed", "encrypt with another root key"),
        (NotFound("nf", status=404, code="KEY_NOT_FOUND_ERR"), "decrypt", "not_found",
         "if it was deleted and purged, the data is unrecoverable (crypto-shredded)"),
        (NotFound("nf", status=404), "encrypt", "not_found", "check the key id or alias"),
        (Forbidden("no", status=403), "decrypt", "forbidden", "may not unwrap"),
        (Forbidden("no", status=403), "encrypt", "forbidden", "may not wrap"),
    ],
)  # fmt: skip
def test_refusals_become_key_unavailable(
    exc: ApiError, action: str, reason: str | None, words: str | None
) -> None:
    mapped = map_refusal(exc, action, "k-1")  # type: ignore[arg-type]
    if reason is None:
        assert mapped is None
        return
    assert isinstance(mapped, ev.KeyUnavailable)
    assert (mapped.reason, mapped.key_id, mapped.status, mapped.code) == (
        reason,
        "k-1",
        exc.status,
        exc.code,
    )
    assert mapped.correlation_id == exc.correlation_id
    assert words is not None and words in mapped.message
    assert mapped.message.startswith(("root key k-1", "the caller"))


@pytest.mark.parametrize("cls", [Unprocessable, BadRequest])
@pytest.mark.parametrize("action", ["decrypt", "rewrap"])
def test_a_wrapped_dek_that_does_not_open_is_an_invalid_envelope(
    cls: type[ApiError], action: str
) -> None:
    mapped = map_refusal(cls("bad", status=422), action, "k-1")  # type: ignore[arg-type]
    assert isinstance(mapped, ev.InvalidEnvelope) and mapped.code == "DEK_UNWRAP_FAILED"


@pytest.mark.parametrize(
    "exc",
    [
        BadRequest("too many aad strings", status=400),
        Unprocessable("x", status=422),
        Unauthorized("bad key", status=401),
        ServiceUnavailable("sealed", status=503),
    ],
)
def test_other_errors_of_wrap_pass_through(exc: ApiError) -> None:
    assert map_refusal(exc, "encrypt", "k-1") is None


def test_transport_errors_pass_through_unchanged() -> None:
    class Down(LocalKeyService):
        def unwrap(self, key_id, ciphertext, *, aad=None):  # type: ignore[no-untyped-def]
            raise ConnectionFailed("connection refused")

    keys = Down()
    sealed = ev.encrypt_bytes(b"x", keys=keys, key=keys.create_key())
    with pytest.raises(ConnectionFailed):
        ev.decrypt_bytes(sealed, keys=keys)


def test_a_deactivated_key_decrypts_but_does_not_encrypt() -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    sealed = ev.encrypt_bytes(b"old data", keys=keys, key=key)
    keys.deactivate(key)
    assert ev.decrypt_bytes(sealed, keys=keys) == b"old data"
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.encrypt_bytes(b"new", keys=keys, key=key)
    assert info.value.reason == "deactivated"
