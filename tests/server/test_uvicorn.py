"""The API over real HTTP: uvicorn in a thread on 127.0.0.1, plain and TLS (trustme)."""

from __future__ import annotations

import base64
import ssl

import httpx
import pytest
from tests.server.conftest import ServeFactory

KEY_TYPE = "application/vnd.ibm.kms.key+json"


def _create(client: httpx.Client, headers: dict[str, str]) -> dict:
    body = {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [{"type": KEY_TYPE, "name": "real-http", "extractable": False}]}  # fmt: skip
    r = client.post("/api/v2/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    key: dict = r.json()["resources"][0]
    return key


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_create_wrap_unwrap_over_the_network(served: ServeFactory, tls: bool) -> None:
    running = served(tls=tls)
    verify: ssl.SSLContext | bool = False
    if running.ca is not None:
        verify = ssl.create_default_context()
        running.ca.configure_trust(verify)
    with httpx.Client(base_url=running.url, verify=verify, timeout=10) as client:
        assert client.get("/health").json()["status"] == "ok"
        headers = running.headers()
        key = _create(client, headers)
        r = client.post(f"/api/v2/keys/{key['id']}/actions/wrap", content=b"", headers=headers)
        assert (
            r.status_code == 200
            and r.headers["content-type"] == "application/vnd.ibm.kms.key_action+json"
        )
        dek = r.json()["plaintext"]
        r = client.post(
            f"/api/v2/keys/{key['id']}/actions/unwrap",
            json={"ciphertext": r.json()["ciphertext"]},
            headers=headers,
        )
        assert r.json()["plaintext"] == dek and len(base64.b64decode(dek)) == 32
        assert r.headers["correlation-id"]
        metrics = client.get("/metrics").text
        assert (
            'kyok_http_requests_total{method="POST",route="/api/v2/keys",status="201"} 1.0'
            in metrics
        )
        assert 'kyok_key_operations_total{operation="wrap",outcome="success"} 1.0' in metrics
        assert "kyok_units_sealed 0.0" in metrics


def test_tls_listener_refuses_plain_http_and_untrusted_clients(served: ServeFactory) -> None:
    running = served(tls=True)
    with pytest.raises(httpx.HTTPError):
        httpx.get(running.url.replace("https", "http") + "/health", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/health", timeout=5)  # the system CAs do not know trustme's


def test_real_auth_rejects_a_token_for_another_instance(served: ServeFactory) -> None:
    first, second = served(), served()
    with httpx.Client(base_url=first.url, timeout=10) as client:
        r = client.get("/api/v2/keys", headers=first.headers())
        assert r.status_code == 200
        # a token of another node's instance (another unit key) is not accepted here
        r = client.get(
            "/api/v2/keys", headers={**second.headers(), "Bluemix-Instance": first.instance}
        )
        assert r.status_code == 401
        r = client.get(
            "/api/v2/keys",
            headers={
                "Authorization": first.headers()["Authorization"],
                "Bluemix-Instance": second.instance,
            },
        )
        assert r.status_code == 401
        assert r.json()["resources"][0]["reasons"][0]["code"] == "UNAUTHORIZED_ERR"
