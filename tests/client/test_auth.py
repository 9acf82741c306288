"""ApiKeyAuth: token exchange, caching, refresh before expiry (refresh token, then API key),
one retry on a 401, refused keys; and that no credential shows in a repr or a pickle."""

from __future__ import annotations

import pickle
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from kyok.client import (
    ApiKeyAuth,
    BearerTokenAuth,
    KyokClient,
    ServiceUnavailable,
    Unauthorized,
)

from ._mock import INSTANCE, URL, Recorder, kp_error, token_response

API_KEY = "my-very-secret-api-key"
TOKEN_URL = f"{URL}/identity/token"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Idp:
    """A token endpoint and an API that accepts exactly the tokens issued and not revoked."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.valid: set[str] = set()
        self.refresh_ok = True
        self.key_ok = True
        self.expires_in = 3600
        self.seen_tokens: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/identity/token":
            assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert "Authorization" not in request.headers
            form = dict(parse_qsl(request.content.decode()))
            self.forms.append(form)
            if form["grant_type"] == "refresh_token" and not self.refresh_ok:
                return httpx.Response(400, json={"errorCode": "BXNIM0407E", "errorMessage": "bad"})
            if form["grant_type"] != "refresh_token" and not self.key_ok:
                return httpx.Response(
                    400,
                    json={
                        "errorCode": "BXNIM0415E",
                        "errorMessage": "Provided API key could not be found",
                        "context": {"requestId": "r1"},
                    },
                )
            access = f"tok-{len(self.forms)}"
            self.valid.add(access)
            return token_response(access, f"ref-{len(self.forms)}", self.expires_in)
        auth = request.headers.get("Authorization", "")
        self.seen_tokens.append(auth.removeprefix("Bearer "))
        if auth.removeprefix("Bearer ") not in self.valid:
            return kp_error(401, "UNAUTHORIZED_ERR", "token rejected")
        return httpx.Response(200, json={"ok": True})


def make(idp: Idp, clock: FakeClock | None = None) -> tuple[httpx.Client, ApiKeyAuth]:
    auth = ApiKeyAuth(TOKEN_URL, API_KEY, clock=clock or FakeClock())
    return httpx.Client(auth=auth, transport=httpx.MockTransport(idp)), auth


def test_the_api_key_is_exchanged_once_and_the_token_cached() -> None:
    idp = Idp()
    http, _ = make(idp)
    for _ in range(3):
        assert http.get(f"{URL}/api/v2/keys").status_code == 200
    assert idp.forms == [
        {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": API_KEY}
    ]
    assert idp.seen_tokens == ["tok-1"] * 3


def test_refresh_before_expiry_uses_the_refresh_token() -> None:
    idp, clock = Idp(), FakeClock()
    http, _ = make(idp, clock)
    http.get(f"{URL}/x")
    clock.now += 3600 - 61  # still more than the 60 s leeway left
    http.get(f"{URL}/x")
    assert len(idp.forms) == 1
    clock.now += 2  # inside the leeway: refresh first
    http.get(f"{URL}/x")
    assert idp.forms[1] == {"grant_type": "refresh_token", "refresh_token": "ref-1"}
    assert idp.seen_tokens == ["tok-1", "tok-1", "tok-2"]


def test_a_failed_refresh_falls_back_to_the_api_key() -> None:
    idp, clock = Idp(), FakeClock()
    idp.refresh_ok = False
    http, _ = make(idp, clock)
    http.get(f"{URL}/x")
    clock.now += 3600
    assert http.get(f"{URL}/x").status_code == 200
    assert [f["grant_type"] for f in idp.forms] == [
        "urn:ibm:params:oauth:grant-type:apikey",
        "refresh_token",
        "urn:ibm:params:oauth:grant-type:apikey",
    ]
    assert idp.seen_tokens == ["tok-1", "tok-3"]


def test_short_lived_tokens_refresh_at_four_fifths_of_their_life() -> None:
    idp, clock = Idp(), FakeClock()
    idp.expires_in = 100
    http, _ = make(idp, clock)
    http.get(f"{URL}/x")
    clock.now += 79
    http.get(f"{URL}/x")
    clock.now += 2
    http.get(f"{URL}/x")
    assert idp.seen_tokens == ["tok-1", "tok-1", "tok-2"]


def test_a_401_gets_a_new_token_and_one_retry() -> None:
    idp = Idp()
    http, _ = make(idp)
    http.get(f"{URL}/x")
    idp.valid.clear()  # e.g. the server restarted and forgot its tokens
    assert http.get(f"{URL}/x").status_code == 200
    assert idp.seen_tokens == ["tok-1", "tok-1", "tok-2"]
    assert idp.forms[-1]["grant_type"] == "urn:ibm:params:oauth:grant-type:apikey"


def test_a_second_401_is_returned_not_retried_forever() -> None:
    idp = Idp()

    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/identity/token":
            return idp(request)
        idp.seen_tokens.append(request.headers["Authorization"])
        return kp_error(401, "UNAUTHORIZED_ERR", "no")

    auth = ApiKeyAuth(TOKEN_URL, API_KEY)
    http = httpx.Client(auth=auth, transport=httpx.MockTransport(always_401))
    assert http.get(f"{URL}/x").status_code == 401
    assert len(idp.seen_tokens) == 2 and len(idp.forms) == 2


def test_a_refused_api_key_is_unauthorized_with_the_iam_code() -> None:
    idp = Idp()
    idp.key_ok = False
    kms = KyokClient(URL, INSTANCE, api_key=API_KEY, transport=httpx.MockTransport(idp))
    with pytest.raises(Unauthorized) as info:
        kms.whoami()
    assert info.value.code == "BXNIM0415E"
    assert "could not be found" in info.value.message
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    with pytest.raises(Unauthorized):
        kms.authenticate()
    assert idp.seen_tokens == []  # no API call was made without a token


def test_a_token_endpoint_outage_keeps_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return kp_error(503, "UNIT_SEALED", "sealed")

    kms = KyokClient(URL, INSTANCE, api_key=API_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(ServiceUnavailable):
        kms.list_keys()


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer"},
        {"access_token": "a", "token_type": "mac"},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_token_answer_is_rejected(body: Any) -> None:
    from kyok.client import InvalidResponse

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    kms = KyokClient(URL, INSTANCE, api_key=API_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(InvalidResponse):
        kms.authenticate()


def test_authenticate_reuses_the_cached_token(recorder: Recorder, client: KyokClient) -> None:
    client.authenticate()
    client.authenticate()
    client.disable_key("k")
    assert len(recorder.token_requests) == 1
    assert recorder.last.headers["Authorization"] == "Bearer access-1"


def test_a_static_token_is_sent_as_is() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"metadata": {}, "resources": []})

    kms = KyokClient(URL, INSTANCE, token="static-token", transport=httpx.MockTransport(handler))
    kms.list_keys()
    kms.authenticate()  # nothing to fetch
    assert seen == ["Bearer static-token"]


def test_no_credential_in_any_repr_or_pickle() -> None:
    idp = Idp()
    http, auth = make(idp)
    http.get(f"{URL}/x")
    token = auth._cached()
    assert token is not None
    texts = [repr(auth), str(auth), repr(token), repr(BearerTokenAuth("static-token-xyz"))]
    kms = KyokClient(URL, INSTANCE, api_key=API_KEY, transport=httpx.MockTransport(idp))
    texts += [repr(kms), str(kms)]
    for text in texts:
        assert API_KEY not in text and "tok-1" not in text and "ref-1" not in text
        assert "static-token-xyz" not in text
    assert "********" in repr(auth)
    for obj in (auth, kms, BearerTokenAuth("static-token-xyz")):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_credentials_are_required_exactly_once() -> None:
    with pytest.raises(ValueError):
        KyokClient(URL, INSTANCE)
    with pytest.raises(ValueError):
        KyokClient(URL, INSTANCE, api_key="a", token="b")
    with pytest.raises(ValueError):
        KyokClient("kms.test", INSTANCE, token="b")
    with pytest.raises(ValueError):
        ApiKeyAuth(TOKEN_URL, "")
