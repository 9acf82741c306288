"""SDK tests over ``httpx.MockTransport``: a recording handler with canned answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

URL = "https://kms.test"
INSTANCE = "inst-1"
KEY_ID = "0b6c1f5e-8a7d-4c2e-9f4b-3e1a2d5c6b7a"

Handler = Callable[[httpx.Request], httpx.Response]


def token_response(
    access: str = "access-1", refresh: str | None = "refresh-1", expires_in: int = 3600
) -> httpx.Response:
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "ibm openid",
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body)


def kp_error(status: int, code: str, message: str, target: str | None = None) -> httpx.Response:
    reason: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status,
        "moreInfo": "https://cloud.ibm.com/apidocs/key-protect",
    }
    if target:
        reason["target"] = {"type": "field", "name": target}
    return httpx.Response(
        status,
        json={
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.error+json",
                "collectionTotal": 1,
            },
            "resources": [
                {"errorMsg": f"Error: {message} ({code})", "reasons": [reason]},
            ],
        },
    )


def envelope(
    ctype: str, *resources: dict[str, Any], status: int = 200, **meta: Any
) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "metadata": {"collectionType": ctype, "collectionTotal": len(resources), **meta},
            "resources": list(resources),
        },
    )


def key_resource(**overrides: Any) -> dict[str, Any]:
    key: dict[str, Any] = {
        "type": "application/vnd.ibm.kms.key+json",
        "id": KEY_ID,
        "name": "root-1",
        "extractable": False,
        "state": 1,
        "aliases": ["orders"],
        "tags": ["t1"],
        "keyRingID": "default",
        "crn": f"crn:v1:kyok:private:kms:local:a/{INSTANCE}:{INSTANCE}:key:{KEY_ID}",
        "imported": False,
        "creationDate": "2026-01-02T03:04:05Z",
        "createdBy": "admin",
        "lastUpdateDate": "2026-01-02T03:04:05.123456Z",
        "keyVersion": {"id": "v-1", "creationDate": "2026-01-02T03:04:05Z"},
        "dualAuthDelete": {"enabled": False},
    }
    key.update(overrides)
    return key


@dataclass
class Recorder:
    """A MockTransport handler: answers tokens itself, records API requests, replays answers."""

    answers: list[httpx.Response | Handler] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/identity/token"):
            from urllib.parse import parse_qsl

            self.token_requests.append(dict(parse_qsl(request.content.decode())))
            return token_response(access=f"access-{len(self.token_requests)}")
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(204)
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer

    def answer(self, *responses: httpx.Response | Handler) -> Recorder:
        self.answers.extend(responses)
        return self

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)
