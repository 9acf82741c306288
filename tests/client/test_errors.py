"""Error mapping: status → class, Key Protect / IAM / framework bodies → code and message,
correlation ids, and network failures wrapped once."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kyok.client import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    InvalidResponse,
    KyokClient,
    NotFound,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)

from ._mock import INSTANCE, KEY_ID, URL, Recorder, kp_error

CASES = [
    (400, BadRequest, "INVALID_FIELD_ERR"),
    (401, Unauthorized, "UNAUTHORIZED_ERR"),
    (403, Forbidden, "UNAUTHORIZED_ERR"),
    (404, NotFound, "KEY_NOT_FOUND_ERR"),
    (409, Conflict, "KEY_ACTION_INVALID_STATE_ERR"),
    (410, Gone, "KEY_DELETED_ERR"),
    (422, Unprocessable, "UNPROCESSABLE_CIPHERTEXT_ERR"),
    (503, ServiceUnavailable, "UNIT_SEALED"),
    (500, ServerError, "INTERNAL_ERR"),
    (502, ServerError, "BAD_GATEWAY"),
    (429, ApiError, "TOO_MANY"),
]


@pytest.mark.parametrize(("status", "cls", "code"), CASES)
def test_status_and_body_map_to_a_typed_error(
    client: KyokClient, recorder: Recorder, status: int, cls: type[ClientError], code: str
) -> None:
    if status == 401:  # the client retries a 401 once with a fresh token
        recorder.answer(kp_error(status, code, "nope"))
    recorder.answer(kp_error(status, code, "it went wrong", target="plaintext"))
    with pytest.raises(cls) as info:
        client.get_key(KEY_ID)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, ApiError) and isinstance(err, ClientError)
    assert (err.status, err.code, err.message, err.target) == (
        status,
        code,
        "it went wrong",
        "plaintext",
    )
    assert code in str(err) and str(status) in str(err)


def test_the_correlation_id_sent_comes_back_on_the_error(
    client: KyokClient, recorder: Recorder
) -> None:
    recorder.answer(kp_error(404, "KEY_NOT_FOUND_ERR", "Key does not exist"))
    with pytest.raises(NotFound) as info:
        client.get_key_metadata(KEY_ID)
    sent = recorder.last.headers["Correlation-Id"]
    assert uuid.UUID(sent).version == 4
    assert info.value.correlation_id == sent


def test_an_echoed_correlation_id_wins(client: KyokClient, recorder: Recorder) -> None:
    resp = kp_error(409, "REQ_TOO_EARLY_ERR", "too early")
    resp.headers["Correlation-Id"] = "server-side-id"
    recorder.answer(resp)
    with pytest.raises(Conflict) as info:
        client.enable_key(KEY_ID)
    assert info.value.correlation_id == "server-side-id"


def test_every_call_gets_its_own_correlation_id(client: KyokClient, recorder: Recorder) -> None:
    client.disable_key(KEY_ID)
    client.enable_key(KEY_ID)
    ids = {r.headers["Correlation-Id"] for r in recorder.requests}
    assert len(ids) == 2


def test_error_msg_is_used_without_reasons(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(
            404,
            json={
                "metadata": {},
                "resources": [{"errorMsg": "Not Found: Key could not be retrieved"}],
            },
        )
    )
    with pytest.raises(NotFound) as info:
        client.get_key(KEY_ID)
    assert info.value.message == "Not Found: Key could not be retrieved"
    assert info.value.code == "NOT_FOUND_ERR"  # the class's generic code


def test_framework_bodies_and_empty_bodies(client: KyokClient, recorder: Recorder) -> None:
    recorder.answer(
        httpx.Response(422, json={"detail": [{"loc": ["body", "name"], "msg": "field required"}]}),
        httpx.Response(405, json={"detail": "Method Not Allowed"}),
        httpx.Response(503, content=b"<html>sealed</html>"),
    )
    with pytest.raises(Unprocessable) as e1:
        client.get_key(KEY_ID)
    assert (e1.value.message, e1.value.target) == ("field required", "name")
    with pytest.raises(BadRequest) as e2:
        client.get_key(KEY_ID)
    assert e2.value.message == "Method Not Allowed"
    with pytest.raises(ServiceUnavailable) as e3:
        client.get_key(KEY_ID)
    assert e3.value.message == "Service Unavailable"


def test_a_success_without_json_is_an_invalid_response(
    client: KyokClient, recorder: Recorder
) -> None:
    recorder.answer(httpx.Response(200, content=b"not json"))
    with pytest.raises(InvalidResponse):
        client.get_key(KEY_ID)
    recorder.answer(httpx.Response(200, json={"metadata": {}, "resources": [{"name": "no id"}]}))
    with pytest.raises(InvalidResponse):
        client.get_key(KEY_ID)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
def test_network_errors_are_wrapped_once(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    kms = KyokClient(URL, INSTANCE, token="t0k3n", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectionFailed) as info:
        kms.list_keys()
    assert info.value.__cause__ is exc
    assert info.value.status is None and info.value.code == "CONNECTION_FAILED"
    assert info.value.correlation_id


def test_token_endpoint_unreachable_is_connection_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    kms = KyokClient(URL, INSTANCE, api_key="k", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectionFailed):
        kms.whoami()
    with pytest.raises(ConnectionFailed):
        kms.authenticate()


def test_an_unreachable_real_address_is_connection_failed() -> None:
    kms = KyokClient("http://127.0.0.1:9", INSTANCE, token="t", timeout=2)
    with pytest.raises(ConnectionFailed) as info:
        kms.count_keys()
    assert "127.0.0.1:9" in info.value.message


def test_error_reprs_name_the_fields() -> None:
    err = NotFound("Key does not exist", status=404, code="KEY_NOT_FOUND_ERR", correlation_id="c")
    assert repr(err) == (
        "NotFound(status=404, code='KEY_NOT_FOUND_ERR', message='Key does not exist', "
        "correlation_id='c')"
    )
