"""No API key, access token or refresh token in a log line, an error message or a repr."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest

from auth_kit import AuthHarness, bearer
from kyok.auth import AuthContext, Role, Secret
from kyok.auth.apikeys import new_api_key
from kyok.errors import KyokError


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        if record.exc_text:
            lines.append(record.exc_text)
    return "\n".join(lines)


def test_flows_never_log_or_show_secrets(
    harness: AuthHarness, instance: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = []
    shown: list[str] = []
    errors: list[KyokError] = []

    def attempt(call: Any) -> Any:
        try:
            return call()
        except KyokError as exc:
            errors.append(exc)
            return None

    admin_key = harness.auth.bootstrap_admin(instance)
    secrets.append(admin_key)
    grant = harness.token(admin_key)
    secrets += [grant.access_token, grant.refresh_token]
    shown.append(repr(grant))
    admin: AuthContext = harness.auth.authenticate(bearer(grant), instance)
    shown.append(repr(admin))
    pid, key = harness.principal_with(admin, "svc", [(Role.READER, "instance")])
    secrets.append(key)
    record, secret = harness.auth.create_api_key(admin, pid, "another")
    secrets.append(secret.reveal())
    shown += [repr(record), repr(secret), str(secret), f"{secret}", repr((record, secret))]
    refreshed = harness.auth.refresh(grant.refresh_token)
    secrets += [refreshed.access_token, refreshed.refresh_token]
    # failures, with the secrets in the input
    attempt(lambda: harness.auth.refresh(grant.refresh_token))  # reused
    attempt(lambda: harness.auth.issue_token(admin_key + "x"))
    attempt(lambda: harness.auth.issue_token(admin_key[:-1]))
    attempt(lambda: harness.auth.authenticate(bearer(refreshed.access_token + "x"), instance))
    attempt(lambda: harness.auth.authenticate(bearer(refreshed), "other-instance"))
    attempt(lambda: harness.auth.authenticate(refreshed.access_token, instance))
    attempt(lambda: harness.auth.bootstrap_admin(instance, api_key=key))
    harness.clock.advance(10**6)
    attempt(lambda: harness.auth.authenticate(bearer(refreshed), instance))
    attempt(lambda: harness.auth.refresh(refreshed.refresh_token))
    assert len(errors) == 9
    for exc in errors:
        shown += [str(exc), repr(exc), exc.message, str(exc.target)]
    logged = _everything_logged(caplog)
    assert "access token issued" in logged  # the log does say what happened
    for value in secrets:
        for part in {value, *value.split(".")} if value.count(".") == 2 else {value}:
            assert part not in logged, "a secret reached the log"
            for text in shown:
                assert part not in text, f"a secret is shown in {text[:60]!r}"


def test_secret_wrapper() -> None:
    secret = new_api_key()
    value = secret.reveal()
    assert value not in repr(secret) and value not in str(secret) and value not in f"{secret!s}"
    assert repr(secret) == "Secret('********')"
    assert secret == Secret(value) and secret != Secret(value + "x")
    assert secret != value  # only Secrets compare equal
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
