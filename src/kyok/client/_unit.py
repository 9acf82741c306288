"""The crypto unit's ceremony endpoints (``/api/v2/kyok/unit``), as custodians' tools use them.

These need no token: every command carries its administrators' signatures, which the unit
checks, and status and transcript are public. See docs/api-kyok.md.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from kyok.client._client import DEFAULT_TIMEOUT, _ssl_context, send
from kyok.client.errors import InvalidResponse


class UnitClient:
    """The ceremony endpoints of one instance's crypto unit.

    Args:
        url: the server's base URL.
        instance_id: the instance (sent as ``Bluemix-Instance``).
        verify: TLS verification, as for :class:`~kyok.client.KyokClient`.
        timeout: seconds to wait.
        transport: an ``httpx.BaseTransport`` to use instead of the network.
    """

    def __init__(
        self,
        url: str,
        instance_id: str,
        *,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if not instance_id:
            raise ValueError("an instance id is required")
        self.url = url.rstrip("/")
        self.instance_id = instance_id
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v2/kyok/",
            headers={"Bluemix-Instance": instance_id, "Accept": "application/json"},
            verify=_ssl_context(verify),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> UnitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return send(self._http, self.url, method, path, body=body)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise InvalidResponse(
                "the unit answered without a JSON body", status=response.status_code
            ) from None
        if not isinstance(body, dict):
            raise InvalidResponse(
                "the unit answered with something other than an object", status=response.status_code
            )
        return body

    def status(self) -> dict[str, Any]:
        """The unit's public status (camelCase fields, see docs/api-kyok.md)."""
        return self._json(self._send("GET", "unit"))

    def submit(
        self, command: Mapping[str, Any], sealed_part: bytes | None = None
    ) -> dict[str, Any]:
        """Submit a signed command file; ``sealed_part`` goes with ``load_part``."""
        body = dict(command)
        if sealed_part is not None:
            body["sealedPart"] = base64.b64encode(sealed_part).decode("ascii")
        return self._json(self._send("POST", "unit/commands", body))

    def transcript(self) -> list[str]:
        """The transcript export, one JSON line per entry."""
        return [
            line for line in self._send("GET", "unit/transcript").text.splitlines() if line.strip()
        ]

    def start_reencrypt(self) -> dict[str, Any]:
        """Start (or look at) the background re-encryption of a master-key rotation."""
        return self._json(self._send("POST", "unit/reencrypt", {}))

    def admin_credential(
        self, command: Mapping[str, Any] | None = None, authorization_seq: int | None = None
    ) -> dict[str, Any]:
        """Make the credential of a signed ``authorize_admin`` command (or of one accepted
        earlier, by its sequence number). The API key comes back sealed to the command's recipient."""
        body: dict[str, Any] = (
            dict(command) if command is not None else {"authorizationSeq": authorization_seq}
        )
        return self._json(self._send("POST", "unit/admin-credentials", body))
