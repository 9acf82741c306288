"""``KyokClient``: the Key Protect API and kyok's own endpoints over one ``httpx.Client``.

Every call sends ``Bluemix-Instance`` and a fresh ``Correlation-Id`` (returned on errors as
``ClientError.correlation_id``), speaks Key Protect's collection envelope where the API wants
one, returns frozen dataclasses (:mod:`kyok.client._models`) and raises only
:class:`~kyok.client.errors.ClientError` subclasses. Network failures are wrapped once, here,
as :class:`~kyok.client.errors.ConnectionFailed`.

Example::

    with KyokClient("https://kms.example", instance_id, api_key=key) as kms:
        root = kms.create_key("orders-root")
        wrapped = kms.wrap(root.id)                 # the service generates a 32-byte DEK
        dek = kms.unwrap(root.id, wrapped.ciphertext).plaintext
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from kyok.client import byok
from kyok.client._auth import ApiKeyAuth, BearerTokenAuth
from kyok.client._models import (
    Alias,
    ApiKey,
    ImportToken,
    InstancePolicy,
    Key,
    KeyPolicies,
    KeyRing,
    KeyVersion,
    Page,
    Principal,
    Registration,
    RewrapResult,
    RoleBinding,
    UnwrapResult,
    WhoAmI,
    WrapResult,
    envelope_resources,
    total_count_of,
)
from kyok.client.errors import Conflict, ConnectionFailed, InvalidResponse, error_from_response

__all__ = ["DEFAULT_TIMEOUT", "KyokClient"]

#: Seconds to wait for the service (connect, read, write, pool).
DEFAULT_TIMEOUT = 30.0

KEY_TYPE = "application/vnd.ibm.kms.key+json"
_WRAP_TYPE = "application/vnd.ibm.kms.key_action_wrap+json"
_UNWRAP_TYPE = "application/vnd.ibm.kms.key_action_unwrap+json"
_REWRAP_TYPE = "application/vnd.ibm.kms.key_action_rewrap+json"
_ROTATE_TYPE = "application/vnd.ibm.kms.key_action_rotate+json"
_POLICY_TYPE = "application/vnd.ibm.kms.policy+json"
#: The reason code of a 409 on ``/import_token``: no token, or expired, or retrievals used up.
_NO_USABLE_TOKEN = "IMPORT_TOKEN_EXPIRED_ERR"  # noqa: S105 - a reason code
_REPRESENTATION = {"Prefer": "return=representation"}

T = TypeVar("T")


def _version() -> str:
    try:
        return metadata.version("kyok")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def _seg(value: str) -> str:
    """One path segment (a key id or alias, a ring id…), percent-encoded."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty string")
    return quote(value, safe="")


def _b64(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("key material and DEKs are bytes")
    return base64.b64encode(bytes(data)).decode("ascii")


def _aad(aad: Sequence[str] | None) -> list[str] | None:
    if aad is None:
        return None
    if isinstance(aad, str):
        raise TypeError("aad is a list of strings, not one string")
    items = list(aad)
    if not all(isinstance(a, str) for a in items):
        raise TypeError("aad is a list of strings")
    return items


def _states(state: int | Iterable[int] | None) -> str | None:
    if state is None:
        return None
    values = [state] if isinstance(state, int) else list(state)
    return ",".join(str(int(s)) for s in values)


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("expiration must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _months(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("a rotation interval is a whole number of months (1-12)")
    return value


def _material(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("key material is bytes")
    return bytes(value)


def _check_import(material: bytes, algorithm: str, nonce_mode: str) -> None:
    """What :func:`byok.seal_for_import` would refuse, checked before any token is used."""
    if len(material) not in byok.KEY_SIZES:
        raise ValueError(
            f"the key material is {len(material)} bytes long: a root key imported with an "
            "import token takes 16, 24 or 32 bytes"
        )
    if algorithm not in byok.ALGORITHMS:
        raise ValueError(
            f"unknown algorithm {algorithm!r}: use one of {', '.join(sorted(byok.ALGORITHMS))}"
        )
    if nonce_mode not in byok.NONCE_MODES:
        raise ValueError(f"unknown nonce_mode {nonce_mode!r}: use 'gcm' or 'cbc'")
    if nonce_mode == "cbc" and algorithm != byok.ALG_OAEP_SHA1:
        raise ValueError("nonce_mode 'cbc' goes only with RSAES_OAEP_SHA_1")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _audit_seq(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0")
    return value


def _audit_limit(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _audit_time(value: datetime | str | None, name: str) -> str | None:
    """An audit query time: an aware ``datetime`` as RFC 3339 UTC with microseconds, or text
    passed on as is (the service checks it)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"{name} is a datetime or RFC 3339 text")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _audit_actions(actions: Iterable[str] | str) -> list[str]:
    names = [actions] if isinstance(actions, str) else list(actions)
    if not all(isinstance(a, str) for a in names):
        raise TypeError("actions are strings")
    return [a for a in names if a]


def _audit_outcome(outcome: str | None) -> str | None:
    if outcome is not None and outcome not in ("success", "failure"):
        raise ValueError("outcome is 'success' or 'failure'")
    return outcome


def _ssl_context(verify: bool | str | os.PathLike[str] | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    return ssl.create_default_context(cafile=os.fspath(verify))


def send(
    http: httpx.Client,
    url: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One request: a fresh ``Correlation-Id``, a JSON body, network failures as
    :class:`ConnectionFailed` and error statuses as the matching :class:`ApiError`.

    Args:
        http: the client to send with (its base URL, auth and headers apply).
        url: the service's URL, for messages.
        method: the HTTP method.
        path: relative to the client's base URL.
        params: query parameters.
        body: a JSON-serializable body, or None.
        content_type: the body's media type (default ``application/json``).
        headers: more headers.

    Returns:
        The response (status < 300).
    """
    correlation_id = str(uuid.uuid4())
    hdrs = {"Correlation-Id": correlation_id, **(headers or {})}
    content: bytes | None = None
    if body is not None:
        content = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = content_type or "application/json"
    try:
        response = http.request(method, path, params=params, content=content, headers=hdrs)
    except httpx.TimeoutException as exc:
        raise ConnectionFailed(
            f"{url} did not answer in time ({type(exc).__name__})", correlation_id=correlation_id
        ) from exc
    except httpx.TransportError as exc:
        raise ConnectionFailed(
            f"cannot reach {url}: {exc or type(exc).__name__}", correlation_id=correlation_id
        ) from exc
    if response.status_code >= 300:
        raise error_from_response(response, correlation_id)
    return response


class KyokClient:
    """A client for one kyok (or Key Protect) instance.

    Args:
        url: the service's base URL, e.g. ``https://kms.example:8443`` (``/api/v2/…`` and
            ``/identity/token`` are appended).
        instance_id: the instance (sent as ``Bluemix-Instance``).
        api_key: an API key; the client trades it for access tokens and refreshes them.
        token: an access token to use as is (instead of ``api_key``).
        verify: TLS verification: True (system CAs), False (none; testing only), the path of
            a CA bundle, or an ``ssl.SSLContext``.
        timeout: seconds to wait for the service.
        transport: an ``httpx.BaseTransport`` to use instead of the network (tests:
            ``httpx.MockTransport``, ``httpx.ASGITransport`` over the app…).

    Raises:
        ValueError: no credentials, both credentials, or a URL that is not http(s).
    """

    def __init__(
        self,
        url: str,
        instance_id: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if not instance_id:
            raise ValueError("an instance id is required")
        if (api_key is None) == (token is None):
            raise ValueError("give exactly one of api_key and token")
        self.url = url.rstrip("/")
        self.instance_id = instance_id
        self._auth: ApiKeyAuth | BearerTokenAuth = (
            ApiKeyAuth(f"{self.url}/identity/token", api_key)
            if api_key is not None
            else BearerTokenAuth(token or "")
        )
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v2/",
            auth=self._auth,
            headers={
                "Bluemix-Instance": instance_id,
                "Accept": "application/json",
                "User-Agent": f"kyok-client/{_version()}",
            },
            verify=_ssl_context(verify),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        kind = "api_key" if isinstance(self._auth, ApiKeyAuth) else "token"
        return f"KyokClient(url={self.url!r}, instance_id={self.instance_id!r}, auth={kind})"

    def __reduce__(self) -> Any:
        raise TypeError("a KyokClient holds credentials and cannot be pickled")

    def __enter__(self) -> KyokClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return send(
            self._http,
            self.url,
            method,
            path,
            params=params,
            body=body,
            content_type=content_type,
            headers=headers,
        )

    @staticmethod
    def _body(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise InvalidResponse(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code} without a JSON body",
                status=response.status_code,
            ) from None

    def _resources(self, response: httpx.Response, what: str) -> Sequence[Any]:
        resources, _ = envelope_resources(self._body(response), what)
        return resources

    def _one_key(self, response: httpx.Response) -> Key:
        resources = self._resources(response, "a key response")
        if not resources:
            raise InvalidResponse("the key response holds no key", status=response.status_code)
        return Key.from_wire(resources[0])

    def _page(
        self,
        response: httpx.Response,
        parse: Callable[[Any], T],
        what: str,
        offset: int | None,
        limit: int | None,
    ) -> Page[T]:
        resources, meta = envelope_resources(self._body(response), what)
        return Page(
            items=tuple(parse(r) for r in resources),
            offset=offset or 0,
            limit=limit,
            total_count=total_count_of(meta),
        )

    def _drive(self, flow: Generator[httpx.Request, httpx.Response, T]) -> T:
        """Run an auth flow that yields token requests (no API call)."""
        try:
            request = next(flow)
            while True:
                try:
                    response = self._http.send(request, auth=None)
                except httpx.TransportError as exc:
                    raise ConnectionFailed(
                        f"cannot reach {self.url}: {exc or type(exc).__name__}"
                    ) from exc
                response.read()
                request = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def authenticate(self) -> None:
        """Fetch (or reuse) an access token now, so a bad API key shows up before any call.

        Raises:
            Unauthorized: the token endpoint refused the API key.
            ConnectionFailed: the service could not be reached.
        """
        if isinstance(self._auth, ApiKeyAuth):
            self._drive(self._auth.token_flow())

    # ------------------------------------------------------------------ keys

    def create_key(
        self,
        name: str,
        *,
        extractable: bool = False,
        material: bytes | None = None,
        description: str | None = None,
        expiration: datetime | None = None,
        aliases: Sequence[str] = (),
        tags: Sequence[str] = (),
        key_ring: str | None = None,
        rotation_months: int | None = None,
        dual_auth_delete: bool | None = None,
    ) -> Key:
        """Create a key (``POST /api/v2/keys``).

        Args:
            name: the key's name (2-90 characters).
            extractable: False (default) for a root key that wraps DEKs and never leaves the
                service; True for a standard key whose material can be read back.
            material: key material to import instead of generating it, sent in plain (a root
                key takes 16, 24 or 32 bytes; :meth:`import_root_key` sends it encrypted).
            description: free text (≤ 240 characters).
            expiration: when the key becomes Deactivated (timezone-aware).
            aliases: up to five aliases.
            tags: up to 30 tags.
            key_ring: the key ring to create it in (default ``default``).
            rotation_months: give the key its own rotation policy (every 1-12 months) instead
                of the instance's (sent to ``POST /api/v2/keys_with_policy_overrides``).
            dual_auth_delete: likewise, its own dual-authorisation-for-deletion policy.

        Returns:
            The new key (a standard key includes its material in ``payload``).

        Raises:
            BadRequest: a field is out of range. Conflict: a duplicate alias.
            NotFound: no such key ring. Forbidden: the caller is not a Writer.
        """
        resource = self._key_resource(
            name,
            extractable=extractable,
            description=description,
            expiration=expiration,
            aliases=aliases,
            tags=tags,
        )
        if material is not None:
            resource["payload"] = _b64(material)
        return self._post_key(
            resource,
            key_ring,
            rotation_months=rotation_months,
            dual_auth_delete=dual_auth_delete,
        )

    @staticmethod
    def _key_resource(
        name: str,
        *,
        extractable: bool,
        description: str | None,
        expiration: datetime | None,
        aliases: Sequence[str],
        tags: Sequence[str],
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {"type": KEY_TYPE, "name": name, "extractable": extractable}
        if description is not None:
            resource["description"] = description
        if expiration is not None:
            resource["expirationDate"] = _rfc3339(expiration)
        if aliases:
            resource["aliases"] = list(aliases)
        if tags:
            resource["tags"] = list(tags)
        return resource

    def _post_key(
        self,
        resource: dict[str, Any],
        key_ring: str | None,
        *,
        rotation_months: int | None = None,
        dual_auth_delete: bool | None = None,
    ) -> Key:
        path = "keys"
        if rotation_months is not None or dual_auth_delete is not None:
            path = "keys_with_policy_overrides"
            if rotation_months is not None:
                resource["rotation"] = {"enabled": True, "interval_month": _months(rotation_months)}
            if dual_auth_delete is not None:
                resource["dualAuthDelete"] = {"enabled": bool(dual_auth_delete)}
        body = {
            "metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [resource],
        }
        headers = dict(_REPRESENTATION)
        if key_ring is not None:
            headers["X-Kms-Key-Ring"] = key_ring
        response = self._send("POST", path, body=body, content_type=KEY_TYPE, headers=headers)
        return self._one_key(response)

    def create_root_key(self, name: str, **kwargs: Any) -> Key:
        """:meth:`create_key` with ``extractable=False``."""
        return self.create_key(name, extractable=False, **kwargs)

    def create_standard_key(self, name: str, **kwargs: Any) -> Key:
        """:meth:`create_key` with ``extractable=True``."""
        return self.create_key(name, extractable=True, **kwargs)

    def list_keys(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        state: int | Iterable[int] | None = None,
        extractable: bool | None = None,
        search: str | None = None,
        sort: str | None = None,
        filter: str | None = None,
    ) -> Page[Key]:
        """One page of keys, without material (``GET /api/v2/keys``).

        Args:
            limit: page size (service default 200, at most 5000).
            offset: how many matches to skip.
            state: one state or several (default: 0-3; pass 5 for destroyed keys).
            extractable: only standard (True) or only root (False) keys.
            search: Key Protect search over names and aliases (``exact:``, ``not:``,
                ``alias:``, ``name:`` prefixes).
            sort: comma-separated fields, ``-`` for descending (e.g. ``-creationDate``).
            filter: Key Protect filter expression (``creationDate=gt:"2024-01-01T00:00:00Z"``).

        Returns:
            The page.
        """
        params = _params(
            limit=limit,
            offset=offset,
            state=_states(state),
            extractable=_bool(extractable),
            search=search,
            sort=sort,
            filter=filter,
        )
        response = self._send("GET", "keys", params=params)
        return self._page(response, Key.from_wire, "a key list", offset, limit)

    def iter_keys(
        self,
        *,
        page_size: int = 200,
        state: int | Iterable[int] | None = None,
        extractable: bool | None = None,
        search: str | None = None,
        sort: str | None = None,
        filter: str | None = None,
    ) -> Iterator[Key]:
        """Every matching key, fetching ``page_size`` at a time (same filters as :meth:`list_keys`)."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        states = None if state is None else [state] if isinstance(state, int) else list(state)
        offset = 0
        while True:
            page = self.list_keys(
                limit=page_size,
                offset=offset,
                state=states,
                extractable=extractable,
                search=search,
                sort=sort,
                filter=filter,
            )
            yield from page.items
            if len(page) < page_size:
                return
            offset += len(page)

    def count_keys(
        self,
        *,
        state: int | Iterable[int] | None = None,
        extractable: bool | None = None,
        filter: str | None = None,
    ) -> int:
        """How many keys match (``HEAD /api/v2/keys``, header ``Key-Total``)."""
        params = _params(state=_states(state), extractable=_bool(extractable), filter=filter)
        response = self._send("HEAD", "keys", params=params)
        total = response.headers.get("key-total")
        try:
            return int(total or "")
        except ValueError:
            raise InvalidResponse("HEAD /keys answered without a Key-Total header") from None

    def get_key(self, key_id: str) -> Key:
        """A key by id or alias, with the material of a standard key (ReaderPlus or more)."""
        return self._one_key(self._send("GET", f"keys/{_seg(key_id)}"))

    def get_key_metadata(self, key_id: str) -> Key:
        """A key's metadata by id or alias, never material (Reader)."""
        return self._one_key(self._send("GET", f"keys/{_seg(key_id)}/metadata"))

    def list_key_versions(
        self,
        key_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        total_count: bool = False,
        all_key_states: bool = False,
    ) -> Page[KeyVersion]:
        """A key's versions, newest first (``GET /api/v2/keys/{id}/versions``).

        Args:
            key_id: the key's id or alias.
            limit, offset: paging.
            total_count: ask the service for the total number of versions.
            all_key_states: also for keys that are not Active (else 409 for those).
        """
        params = _params(
            limit=limit,
            offset=offset,
            totalCount="true" if total_count else None,
            allKeyStates="true" if all_key_states else None,
        )
        response = self._send("GET", f"keys/{_seg(key_id)}/versions", params=params)
        return self._page(response, KeyVersion.from_wire, "a version list", offset, limit)

    def rotate_key(
        self,
        key_id: str,
        *,
        material: bytes | None = None,
        via_token: bool = False,
        algorithm: str = byok.ALG_OAEP_SHA256,
        nonce_mode: str = "gcm",
        token: ImportToken | None = None,
        create_token: bool = True,
    ) -> None:
        """Add a new version to a root key (``POST /api/v2/keys/{id}/actions/rotate``; 204).

        A generated key takes no ``material``: the service makes the new version. An imported
        key needs new ``material``: in plain (the default, as before), or with ``via_token``
        encrypted to the instance's import token exactly as :meth:`import_root_key` does.

        Args:
            key_id: the root key's id or alias.
            material: the new key material (16, 24 or 32 bytes) of an imported key.
            via_token: send ``material`` sealed to the import token instead of in plain.
            algorithm, nonce_mode, token, create_token: as for :meth:`import_root_key`
                (only with ``via_token``).

        Raises:
            ValueError: ``via_token`` without ``material``, or a bad material length or
                algorithm (nothing was sent).
            BadRequest: KEY_PAYLOAD_REQ_ERR (an imported key without material), a nonce check
                that failed. Conflict: rotated too recently, or IMPORT_TOKEN_EXPIRED_ERR.
        """
        body: dict[str, Any]
        if via_token:
            if material is None:
                raise ValueError("via_token needs the new material")
            sealed = self._seal(_material(material), algorithm, nonce_mode, token, create_token)
            body = dict(sealed.as_resource())
        else:
            body = {} if material is None else {"payload": _b64(material)}
        self._send(
            "POST", f"keys/{_seg(key_id)}/actions/rotate", body=body, content_type=_ROTATE_TYPE
        )

    def disable_key(self, key_id: str) -> None:
        """Suspend a root key (state 2): no wrap or unwrap until it is enabled (Manager)."""
        self._send("POST", f"keys/{_seg(key_id)}/actions/disable")

    def enable_key(self, key_id: str) -> None:
        """Re-activate a suspended key (Manager; 409 within 30 s of its last change)."""
        self._send("POST", f"keys/{_seg(key_id)}/actions/enable")

    def delete_key(self, key_id: str, *, force: bool = False) -> Key:
        """Destroy a key (state 5); restorable for 30 days (Manager).

        Args:
            key_id: the key's id or alias.
            force: delete even if resources are registered with the key.

        Returns:
            The destroyed key's metadata.
        """
        path = f"keys/{_seg(key_id)}"
        response = self._send(
            "DELETE",
            path,
            params=_params(force="true" if force else None),
            headers=_REPRESENTATION,
        )
        if response.status_code == 204 or not response.content:
            return self._one_key(self._send("GET", f"{path}/metadata"))
        return self._one_key(response)

    def restore_key(self, key_id: str) -> Key:
        """Bring a destroyed key back (within 30 days; Manager)."""
        return self._one_key(
            self._send("POST", f"keys/{_seg(key_id)}/restore", headers=_REPRESENTATION)
        )

    def purge_key(self, key_id: str) -> Key | None:
        """Remove a destroyed key for good (≥ 4 h after deletion; KeyPurge role).

        Returns:
            The purged key's last metadata, or None if the service returned none.
        """
        response = self._send("DELETE", f"keys/{_seg(key_id)}/purge", headers=_REPRESENTATION)
        if response.status_code == 204 or not response.content:
            return None
        return self._one_key(response)

    def set_key_ring(
        self, key_id: str, key_ring: str, *, current_key_ring: str | None = None
    ) -> Key:
        """Move a key to another key ring (``PATCH /api/v2/keys/{id}``; Manager).

        Args:
            key_id: the key's id or alias.
            key_ring: the ring to move it to.
            current_key_ring: the ring it is in now (sent as ``X-Kms-Key-Ring``), if known.
        """
        headers = {} if current_key_ring is None else {"X-Kms-Key-Ring": current_key_ring}
        response = self._send(
            "PATCH",
            f"keys/{_seg(key_id)}",
            body={"keyRingID": key_ring},
            content_type=KEY_TYPE,
            headers=headers,
        )
        return self._one_key(response)

    def set_key_for_deletion(self, key_id: str) -> None:
        """Approve the deletion of a dual-authorisation key (the first of two principals).

        The approval lasts 7 days; another principal can then delete the key.

        Raises:
            Conflict: NOT_DUAL_AUTH_ERR (the key has no dual-auth policy), or a wrong state.
        """
        self._send("POST", f"keys/{_seg(key_id)}/actions/setKeyForDeletion")

    def unset_key_for_deletion(self, key_id: str) -> None:
        """Withdraw a pending deletion approval of a dual-authorisation key."""
        self._send("POST", f"keys/{_seg(key_id)}/actions/unsetKeyForDeletion")

    def sync_key(self, key_id: str) -> None:
        """Ask the service to notify the resources registered with a key of its state.

        Raises:
            Conflict: synced, or its lifecycle changed, within the last hour.
        """
        self._send("POST", f"keys/{_seg(key_id)}/actions/sync")

    # ------------------------------------------------------------------ import (BYOK)

    def create_import_token(
        self, expiration: int | None = None, max_retrievals: int | None = None
    ) -> ImportToken:
        """Create the instance's import token, replacing any other (``POST /api/v2/import_token``).

        Args:
            expiration: its lifetime in seconds (service default 600; 300-86400).
            max_retrievals: how many times it may be retrieved (service default 1; at most 500).

        Returns:
            The token's bookkeeping; retrieve it with :meth:`get_import_token` for its keys.

        Raises:
            BadRequest: a value out of range. Forbidden: the caller is not a Writer.
        """
        body = _params(expiration=expiration, maxAllowedRetrievals=max_retrievals)
        return ImportToken.from_wire(self._body(self._send("POST", "import_token", body=body)))

    def get_import_token(self) -> ImportToken:
        """Retrieve the import token with its public keys and nonce (counts one retrieval).

        Raises:
            Conflict: IMPORT_TOKEN_EXPIRED_ERR: there is no token, it expired, or its
                retrievals are used up.
        """
        return ImportToken.from_wire(self._body(self._send("GET", "import_token")))

    def import_root_key(
        self,
        name: str,
        material: bytes,
        *,
        algorithm: str = byok.ALG_OAEP_SHA256,
        nonce_mode: str = "gcm",
        token: ImportToken | None = None,
        create_token: bool = True,
        description: str | None = None,
        expiration: datetime | None = None,
        aliases: Sequence[str] = (),
        tags: Sequence[str] = (),
        key_ring: str | None = None,
        rotation_months: int | None = None,
        dual_auth_delete: bool | None = None,
    ) -> Key:
        """Import root-key material encrypted to the import token; it is never sent in plain.

        Without ``token`` the instance's token is retrieved (one retrieval); when there is none
        or it expired or its retrievals are used up, a new one is created (with the service's
        defaults) unless ``create_token`` is False. The material is sealed with
        :func:`kyok.client.byok.seal_for_import` and sent in ``POST /api/v2/keys``.

        Args:
            name: the key's name.
            material: the key material, 16, 24 or 32 bytes (32 recommended).
            algorithm: ``RSAES_OAEP_SHA_256`` (default), ``RSAES_OAEP_SHA_1`` (Hyper Protect
                Crypto Services) or ``KYOK_HYBRID_MLKEM768_X25519`` (kyok's post-quantum
                hybrid).
            nonce_mode: ``"gcm"`` (default) or ``"cbc"`` (only with ``RSAES_OAEP_SHA_1``).
            token: a token already retrieved with :meth:`get_import_token`.
            create_token: create a token when there is no usable one (default True).
            description, expiration, aliases, tags, key_ring, rotation_months,
                dual_auth_delete: as for :meth:`create_key`.

        Returns:
            The imported key (``imported`` is True).

        Raises:
            ValueError: a bad material length, algorithm or nonce mode, or a token without the
                key the algorithm needs (nothing was sent).
            Conflict: IMPORT_TOKEN_EXPIRED_ERR (no usable token and ``create_token`` False, or
                the token expired before the import arrived), KEY_CREATE_IMPORT_ACCESS_ERR.
            BadRequest: INCORRECT_NONCE_ERR / INCORRECT_NONCE_IV_ERR, or a bad field.
        """
        sealed = self._seal(_material(material), algorithm, nonce_mode, token, create_token)
        resource = self._key_resource(
            name,
            extractable=False,
            description=description,
            expiration=expiration,
            aliases=aliases,
            tags=tags,
        )
        resource.update(sealed.as_resource())
        return self._post_key(
            resource,
            key_ring,
            rotation_months=rotation_months,
            dual_auth_delete=dual_auth_delete,
        )

    def _usable_token(self, token: ImportToken | None, create_token: bool) -> ImportToken:
        """``token``, else the instance's token, else (with ``create_token``) a new one."""
        if token is not None:
            if not token.retrieved:
                raise ValueError(
                    "the import token has no public key or nonce: pass the one "
                    "get_import_token returned"
                )
            return token
        try:
            return self.get_import_token()
        except Conflict as exc:
            if not create_token or exc.code != _NO_USABLE_TOKEN:
                raise
        self.create_import_token()
        return self.get_import_token()

    def _seal(
        self,
        material: bytes,
        algorithm: str,
        nonce_mode: str,
        token: ImportToken | None,
        create_token: bool,
    ) -> byok.ImportFields:
        # Check what needs no server first, so that a bad argument costs no token retrieval.
        _check_import(material, algorithm, nonce_mode)
        usable = self._usable_token(token, create_token)
        if usable.nonce is None:  # pragma: no cover - _usable_token guarantees a retrieved token
            raise InvalidResponse("the import token came back without its nonce")
        if algorithm == byok.ALG_HYBRID and usable.hybrid_public_key is None:
            raise ValueError(
                "the service's import token has no hybrid public key (kyokHybridPublicKey): "
                f"it does not offer {byok.ALG_HYBRID}"
            )
        if algorithm != byok.ALG_HYBRID and usable.public_key_pem is None:
            raise InvalidResponse("the import token came back without its RSA public key")
        return byok.seal_for_import(
            material,
            usable.nonce,
            public_key_pem=usable.public_key_pem if algorithm != byok.ALG_HYBRID else None,
            hybrid_public_key=usable.hybrid_public_key if algorithm == byok.ALG_HYBRID else None,
            algorithm=algorithm,
            nonce_mode=nonce_mode,
        )

    # ------------------------------------------------------------------ policies

    def get_key_policies(self, key_id: str, *, policy_type: str | None = None) -> KeyPolicies:
        """A key's ``rotation`` and ``dualAuthDelete`` policies (``GET /keys/{id}/policies``).

        Args:
            key_id: the key's id or alias.
            policy_type: only ``rotation`` or only ``dualAuthDelete``.
        """
        response = self._send(
            "GET", f"keys/{_seg(key_id)}/policies", params=_params(policy=policy_type)
        )
        return KeyPolicies.from_wire(self._resources(response, "a key policy list"))

    def set_key_policies(
        self,
        key_id: str,
        *,
        rotation_months: int | None = None,
        rotation_enabled: bool | None = None,
        dual_auth_delete: bool | None = None,
    ) -> KeyPolicies:
        """Set a key's policies (``PUT /keys/{id}/policies``; Manager); None leaves one as is.

        Args:
            key_id: the key's id or alias.
            rotation_months: rotate automatically every 1-12 months (of 30 days); turns
                rotation on unless ``rotation_enabled`` is False.
            rotation_enabled: turn automatic rotation on (with ``rotation_months``) or off.
            dual_auth_delete: require a second principal's approval to delete the key (once
                on, it cannot be turned off).

        Returns:
            The key's policies as the service answered.

        Raises:
            ValueError: nothing to set.
            BadRequest: an interval outside 1-12, rotation of an imported key, turning
                dual authorisation off. Forbidden: the caller is not a Manager.
        """
        resources: list[dict[str, Any]] = []
        if rotation_months is not None or rotation_enabled is not None:
            rotation: dict[str, Any] = {
                "enabled": True if rotation_enabled is None else bool(rotation_enabled)
            }
            if rotation_months is not None:
                rotation["interval_month"] = _months(rotation_months)
            resources.append({"type": _POLICY_TYPE, "rotation": rotation})
        if dual_auth_delete is not None:
            resources.append(
                {"type": _POLICY_TYPE, "dualAuthDelete": {"enabled": bool(dual_auth_delete)}}
            )
        if not resources:
            raise ValueError(
                "nothing to set: give rotation_months, rotation_enabled or dual_auth_delete"
            )
        only = None
        if len(resources) == 1:
            only = "rotation" if "rotation" in resources[0] else "dualAuthDelete"
        body = {
            "metadata": {"collectionType": _POLICY_TYPE, "collectionTotal": len(resources)},
            "resources": resources,
        }
        response = self._send(
            "PUT",
            f"keys/{_seg(key_id)}/policies",
            params=_params(policy=only),
            body=body,
            content_type=_POLICY_TYPE,
        )
        if response.status_code == 204 or not response.content:
            return self.get_key_policies(key_id)
        return KeyPolicies.from_wire(self._resources(response, "a key policy list"))

    def get_instance_policies(self, policy_type: str | None = None) -> list[InstancePolicy]:
        """The instance's policies (``GET /api/v2/instance/policies``), or only one type."""
        response = self._send("GET", "instance/policies", params=_params(policy=policy_type))
        resources = self._resources(response, "an instance policy list")
        return [InstancePolicy.from_wire(r) for r in resources]

    def set_instance_policy(
        self, policy_type: str, enabled: bool, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Set one instance policy (``PUT /api/v2/instance/policies?policy=T``; Manager).

        Args:
            policy_type: ``allowedIP``, ``allowedNetwork``, ``dualAuthDelete``,
                ``keyCreateImportAccess``, ``metrics`` or ``rotation``.
            enabled: on or off (off clears the attributes).
            attributes: the type's attributes, e.g. ``{"interval_month": 3}`` for rotation,
                ``{"allowed_ip": ["10.0.0.0/8"]}``, ``{"enforce_token": True}``.

        Raises:
            BadRequest: an unknown type or attribute, attributes on a disabled policy.
        """
        if not isinstance(policy_type, str) or not policy_type:
            raise ValueError("policy_type must be a non-empty string")
        policy_data: dict[str, Any] = {"enabled": bool(enabled)}
        if attributes is not None:
            policy_data["attributes"] = dict(attributes)
        body = {
            "metadata": {"collectionType": _POLICY_TYPE, "collectionTotal": 1},
            "resources": [{"policy_type": policy_type, "policy_data": policy_data}],
        }
        self._send(
            "PUT",
            "instance/policies",
            params={"policy": policy_type},
            body=body,
            content_type=_POLICY_TYPE,
        )

    # ------------------------------------------------------------------ registrations

    def list_registrations(
        self,
        key_id: str | None = None,
        *,
        crn_query: str | None = None,
        prevent_key_deletion: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        total_count: bool = False,
    ) -> Page[Registration]:
        """Resources registered with a key, or with any key of the instance.

        Args:
            key_id: one key (``GET /keys/{id}/registrations``); None for every key
                (``GET /keys/registrations``).
            crn_query: only resources whose CRN matches (``*`` matches any characters).
            prevent_key_deletion: only those that do (True) or do not (False) hold the key
                back from deletion.
            limit, offset: paging.
            total_count: ask the service for the number of matches.
        """
        path = "keys/registrations" if key_id is None else f"keys/{_seg(key_id)}/registrations"
        params = _params(
            limit=limit,
            offset=offset,
            urlEncodedResourceCRNQuery=crn_query,
            preventKeyDeletion=_bool(prevent_key_deletion),
            totalCount="true" if total_count else None,
        )
        response = self._send("GET", path, params=params)
        return self._page(response, Registration.from_wire, "a registration list", offset, limit)

    # ------------------------------------------------------------------ wrap, unwrap, rewrap

    def wrap(
        self, key_id: str, plaintext: bytes | None = None, *, aad: Sequence[str] | None = None
    ) -> WrapResult:
        """Wrap a DEK with a root key; without ``plaintext`` the service generates a 32-byte DEK.

        Args:
            key_id: the root key's id or alias.
            plaintext: the DEK to wrap, or None.
            aad: additional authenticated data: strings that must be given again to unwrap.

        Returns:
            The ciphertext, the version that made it, and the DEK.
        """
        body: dict[str, Any] = {}
        if plaintext is not None:
            if not plaintext:
                raise ValueError("plaintext is empty (pass None to have a DEK generated)")
            body["plaintext"] = _b64(plaintext)
        aad_list = _aad(aad)
        if aad_list is not None:
            body["aad"] = aad_list
        response = self._send(
            "POST", f"keys/{_seg(key_id)}/actions/wrap", body=body, content_type=_WRAP_TYPE
        )
        return WrapResult.from_wire(
            self._body(response), bytes(plaintext) if plaintext is not None else None
        )

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        """Unwrap a DEK; if an older key version made it, also get it rewrapped by the newest.

        Args:
            key_id: the root key's id or alias.
            ciphertext: what :meth:`wrap` returned.
            aad: the same strings given to wrap.

        Raises:
            Unprocessable or BadRequest: the ciphertext does not open (wrong key, AAD or data).
        """
        body = self._ciphertext_body(ciphertext, aad)
        response = self._send(
            "POST", f"keys/{_seg(key_id)}/actions/unwrap", body=body, content_type=_UNWRAP_TYPE
        )
        return UnwrapResult.from_wire(self._body(response))

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        """Re-wrap a DEK with the key's newest version; the DEK never leaves the service."""
        body = self._ciphertext_body(ciphertext, aad)
        response = self._send(
            "POST", f"keys/{_seg(key_id)}/actions/rewrap", body=body, content_type=_REWRAP_TYPE
        )
        return RewrapResult.from_wire(self._body(response))

    @staticmethod
    def _ciphertext_body(ciphertext: str, aad: Sequence[str] | None) -> dict[str, Any]:
        if not isinstance(ciphertext, str) or not ciphertext:
            raise TypeError("ciphertext is the non-empty string that wrap returned")
        body: dict[str, Any] = {"ciphertext": ciphertext}
        aad_list = _aad(aad)
        if aad_list is not None:
            body["aad"] = aad_list
        return body

    # ------------------------------------------------------------------ key rings, aliases

    def create_key_ring(self, key_ring: str) -> None:
        """Create a key ring (Writer); ``default`` exists already."""
        self._send("POST", f"key_rings/{_seg(key_ring)}")

    def list_key_rings(
        self, *, limit: int | None = None, offset: int | None = None, total_count: bool = False
    ) -> Page[KeyRing]:
        """The instance's key rings."""
        params = _params(limit=limit, offset=offset, totalCount="true" if total_count else None)
        response = self._send("GET", "key_rings", params=params)
        return self._page(response, KeyRing.from_wire, "a key ring list", offset, limit)

    def delete_key_ring(self, key_ring: str, *, force: bool = False) -> None:
        """Delete an empty key ring; with ``force``, destroyed keys in it move to ``default``."""
        self._send(
            "DELETE", f"key_rings/{_seg(key_ring)}", params=_params(force=_bool(force or None))
        )

    def create_alias(self, key_id: str, alias: str) -> Alias:
        """Give a key another name (up to five per key, unique in the instance)."""
        response = self._send("POST", f"keys/{_seg(key_id)}/aliases/{_seg(alias)}")
        resources = self._resources(response, "an alias response")
        if not resources:
            return Alias(key_id=key_id, alias=alias)
        return Alias.from_wire(resources[0])

    def delete_alias(self, key_id: str, alias: str) -> None:
        """Remove an alias from a key."""
        self._send("DELETE", f"keys/{_seg(key_id)}/aliases/{_seg(alias)}")

    # ------------------------------------------------------------------ kyok: identity

    def whoami(self) -> WhoAmI:
        """The authenticated principal, its instance and its role bindings."""
        return WhoAmI.from_wire(self._body(self._send("GET", "kyok/whoami")))

    def create_principal(self, name: str, *, kind: str = "user") -> Principal:
        """Create a principal (``user`` or ``service``; KyokInstanceAdmin)."""
        response = self._send("POST", "kyok/principals", body={"name": name, "kind": kind})
        return Principal.from_wire(self._body(response))

    def list_principals(self) -> list[Principal]:
        """The instance's principals."""
        return self._list(self._send("GET", "kyok/principals"), "principals", Principal.from_wire)

    def get_principal(self, principal_id: str) -> Principal:
        """One principal."""
        response = self._send("GET", f"kyok/principals/{_seg(principal_id)}")
        return Principal.from_wire(self._body(response))

    def delete_principal(self, principal_id: str) -> None:
        """Delete a principal with its API keys, refresh tokens and role bindings."""
        self._send("DELETE", f"kyok/principals/{_seg(principal_id)}")

    def create_api_key(self, principal_id: str, name: str) -> ApiKey:
        """Create an API key for a principal; ``.secret`` holds the key, shown only this once."""
        response = self._send(
            "POST", f"kyok/principals/{_seg(principal_id)}/apikeys", body={"name": name}
        )
        created = ApiKey.from_wire(self._body(response))
        if created.secret is None:
            raise InvalidResponse("the new API key came back without its secret")
        return created

    def list_api_keys(self, principal_id: str) -> list[ApiKey]:
        """A principal's API keys (never their secrets)."""
        response = self._send("GET", f"kyok/principals/{_seg(principal_id)}/apikeys")
        return self._list(response, "apikeys", ApiKey.from_wire)

    def delete_api_key(self, apikey_id: str) -> None:
        """Revoke an API key."""
        self._send("DELETE", f"kyok/apikeys/{_seg(apikey_id)}")

    def grant_role(self, principal_id: str, role: str, *, scope: str = "instance") -> RoleBinding:
        """Grant ``role`` on ``scope`` (``instance``, ``key_ring:<id>`` or ``key:<id>``)."""
        response = self._send(
            "POST",
            f"kyok/principals/{_seg(principal_id)}/roles",
            body={"role": role, "scope": scope},
        )
        return RoleBinding.from_wire(self._body(response))

    def list_roles(self, principal_id: str) -> list[RoleBinding]:
        """A principal's role bindings."""
        response = self._send("GET", f"kyok/principals/{_seg(principal_id)}/roles")
        return self._list(response, "roles", RoleBinding.from_wire)

    def revoke_role(self, binding_id: str) -> None:
        """Remove a role binding (409 for the instance's last KyokInstanceAdmin)."""
        self._send("DELETE", f"kyok/roles/{_seg(binding_id)}")

    def _list(self, response: httpx.Response, name: str, parse: Callable[[Any], T]) -> list[T]:
        body = self._body(response)
        items = body.get(name) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise InvalidResponse(f"the response has no list {name!r}")
        return [parse(item) for item in items]

    # ------------------------------------------------------------------ kyok: audit ledger

    def audit_events(
        self,
        *,
        after_seq: int | None = None,
        until_seq: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        actions: Iterable[str] | str = (),
        outcome: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page of the instance's audit ledger (``GET /api/v2/kyok/audit/events``).

        Needs ``kyok.audit.read`` (Manager or KyokAuditor). Events come by seq, exactly as
        stored; the ledger records this read too (as ``audit.events.get``).

        Args:
            after_seq: only events with a greater seq (pass the previous page's
                ``nextAfterSeq``).
            until_seq: only events up to this seq (inclusive).
            since: only events at or after this time (aware ``datetime`` or RFC 3339 text).
            until: only events before this time (exclusive).
            actions: only these actions (e.g. ``kms.secrets.wrap``); one name, a comma list or
                an iterable of names.
            outcome: only ``success`` or only ``failure``.
            limit: the page size (1 to 1000; the service's default is 100).

        Returns:
            The page as the service sent it: ``{"instanceId", "events": [event JSON, ...],
            "nextAfterSeq": n | None}``; ``nextAfterSeq`` is None on the last page. Each event
            is a dict in the chained-event shape (``seq``, ``eventTime``, ``action``,
            ``outcome``, ``reason``, ``initiator``, ``target``, …, ``prevHash``, ``hash``).

        Raises:
            ValueError: a bad argument (nothing was sent).
            BadRequest: the service refused a parameter. Forbidden: no ``kyok.audit.read``.
        """
        params = _params(
            afterSeq=_audit_seq(after_seq, "after_seq"),
            untilSeq=_audit_seq(until_seq, "until_seq"),
            since=_audit_time(since, "since"),
            until=_audit_time(until, "until"),
            outcome=_audit_outcome(outcome),
            limit=_audit_limit(limit, "limit"),
        )
        names = _audit_actions(actions)
        if names:
            params["action"] = names
        body = self._body(self._send("GET", "kyok/audit/events", params=params))
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("events"), list)
            or not all(isinstance(e, dict) for e in body["events"])
        ):
            raise InvalidResponse("the audit events response has no list of events")
        following = body.get("nextAfterSeq")
        if following is not None and (
            isinstance(following, bool) or not isinstance(following, int)
        ):
            raise InvalidResponse("the audit events response has a bad nextAfterSeq")
        return body

    def iter_audit_events(
        self,
        *,
        after_seq: int | None = None,
        until_seq: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        actions: Iterable[str] | str = (),
        outcome: str | None = None,
        page: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every matching event, oldest first, fetching ``page`` at a time (follows
        ``nextAfterSeq``; same filters as :meth:`audit_events`).

        Every page read is itself recorded in the ledger; to read a fixed stretch of a ledger
        that is in use, bound it with ``until_seq`` (e.g. ``audit_head()["nextSeq"] - 1``).

        Raises:
            ValueError: a bad argument. InvalidResponse: the service's paging did not move on.
        """
        size = _audit_limit(page, "page")
        actions = _audit_actions(actions)
        cursor = after_seq
        while True:
            body = self.audit_events(
                after_seq=cursor,
                until_seq=until_seq,
                since=since,
                until=until,
                actions=actions,
                outcome=outcome,
                limit=size,
            )
            yield from body["events"]
            following = body.get("nextAfterSeq")
            if following is None or not body["events"]:
                return
            if cursor is not None and following <= cursor:
                raise InvalidResponse("the audit ledger's paging did not move on")
            cursor = following

    def audit_checkpoints(
        self,
        from_seq: int | None = None,
        to_seq: int | None = None,
        limit: int = 1000,
        *,
        max_count: int | None = None,
    ) -> list[dict[str, Any]]:
        """The instance's signed checkpoints with ``from_seq <= seq <= to_seq``, by seq
        (``GET /api/v2/kyok/audit/checkpoints``; ``kyok.audit.read``).

        Args:
            from_seq: the first seq (inclusive); None from the start.
            to_seq: the last seq (inclusive); None to the end.
            limit: checkpoints per request (1 to 1000); while a page comes back full the next
                one is fetched, so every checkpoint in the range is returned.
            max_count: stop after this many (e.g. ``max_count=1`` with ``from_seq=n``: the
                first checkpoint that covers seq ``n``).

        Returns:
            Checkpoint JSON objects (``instanceId``, ``seq``, ``headHash``, ``issuedAt``,
            ``keyId``, ``algorithm``, ``signature``), oldest first.
        """
        size = _audit_limit(limit, "limit")
        if max_count is not None and (
            isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1
        ):
            raise ValueError("max_count must be a positive integer")
        cursor = _audit_seq(from_seq, "from_seq")
        last = _audit_seq(to_seq, "to_seq")
        out: list[dict[str, Any]] = []
        while True:
            want = size if max_count is None else min(size, max_count - len(out))
            params = _params(fromSeq=cursor, toSeq=last, limit=want)
            body = self._body(self._send("GET", "kyok/audit/checkpoints", params=params))
            found = body.get("checkpoints") if isinstance(body, dict) else None
            if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
                raise InvalidResponse("the audit checkpoints response has no list of checkpoints")
            out.extend(found)
            if len(found) < want or (max_count is not None and len(out) >= max_count):
                return out
            seq = found[-1].get("seq")
            if (
                isinstance(seq, bool)
                or not isinstance(seq, int)
                or (cursor is not None and seq < cursor)
            ):
                raise InvalidResponse("the audit checkpoints' paging did not move on")
            cursor = seq + 1
            if last is not None and cursor > last:
                return out

    def audit_sign_checkpoint(self) -> dict[str, Any]:
        """Have the server sign a checkpoint over the ledger's head now
        (``POST /api/v2/kyok/audit/checkpoints``), so that an export up to now ends signed.

        Returns:
            The checkpoint (JSON), or the one already covering the head.
        """
        body = self._body(self._send("POST", "kyok/audit/checkpoints"))
        checkpoint = body.get("checkpoint") if isinstance(body, dict) else None
        if not isinstance(checkpoint, dict):
            raise InvalidResponse("the response holds no checkpoint")
        return dict(checkpoint)

    def audit_head(self) -> dict[str, Any]:
        """Where the instance's ledger stands (``GET /api/v2/kyok/audit/head``).

        Returns:
            ``{"instanceId", "nextSeq", "hash", "checkpointSeq", "checkpointAt"}``: the next
            event gets ``nextSeq`` (0 for an empty ledger, whose other members are None);
            ``hash`` is the newest event's chain hash; ``checkpointSeq``/``checkpointAt`` name
            the newest signed checkpoint.
        """
        body = self._body(self._send("GET", "kyok/audit/head"))
        following = body.get("nextSeq") if isinstance(body, dict) else None
        if isinstance(following, bool) or not isinstance(following, int):
            raise InvalidResponse("the audit head response has no nextSeq")
        return dict(body)

    def audit_public_key(self) -> dict[str, Any]:
        """The public key that verifies the instance's audit checkpoints
        (``GET /api/v2/kyok/audit/pubkey``).

        Returns:
            ``{"instanceId", "algorithm": "ed25519", "keyId", "publicKey"}``: ``publicKey`` is
            the PEM text, ``keyId`` its fingerprint (what checkpoints name).

        Raises:
            ServiceUnavailable: the instance's crypto unit is sealed.
        """
        body = self._body(self._send("GET", "kyok/audit/pubkey"))
        pem = body.get("publicKey") if isinstance(body, dict) else None
        if not isinstance(pem, str) or "PUBLIC KEY" not in pem:
            raise InvalidResponse("the audit public key response has no PEM public key")
        return dict(body)
