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

from kyok.client._auth import ApiKeyAuth, BearerTokenAuth
from kyok.client._models import (
    Alias,
    ApiKey,
    Key,
    KeyRing,
    KeyVersion,
    Page,
    Principal,
    RewrapResult,
    RoleBinding,
    UnwrapResult,
    WhoAmI,
    WrapResult,
    envelope_resources,
    total_count_of,
)
from kyok.client.errors import ConnectionFailed, InvalidResponse, error_from_response

__all__ = ["DEFAULT_TIMEOUT", "KyokClient"]

#: Seconds to wait for the service (connect, read, write, pool).
DEFAULT_TIMEOUT = 30.0

KEY_TYPE = "application/vnd.ibm.kms.key+json"
_WRAP_TYPE = "application/vnd.ibm.kms.key_action_wrap+json"
_UNWRAP_TYPE = "application/vnd.ibm.kms.key_action_unwrap+json"
_REWRAP_TYPE = "application/vnd.ibm.kms.key_action_rewrap+json"
_ROTATE_TYPE = "application/vnd.ibm.kms.key_action_rotate+json"
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


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


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
    ) -> Key:
        """Create a key (``POST /api/v2/keys``).

        Args:
            name: the key's name (2-90 characters).
            extractable: False (default) for a root key that wraps DEKs and never leaves the
                service; True for a standard key whose material can be read back.
            material: key material to import instead of generating it (a root key takes
                16, 24 or 32 bytes).
            description: free text (≤ 240 characters).
            expiration: when the key becomes Deactivated (timezone-aware).
            aliases: up to five aliases.
            tags: up to 30 tags.
            key_ring: the key ring to create it in (default ``default``).

        Returns:
            The new key (a standard key includes its material in ``payload``).

        Raises:
            BadRequest: a field is out of range. Conflict: a duplicate alias.
            NotFound: no such key ring. Forbidden: the caller is not a Writer.
        """
        resource: dict[str, Any] = {"type": KEY_TYPE, "name": name, "extractable": extractable}
        if description is not None:
            resource["description"] = description
        if expiration is not None:
            resource["expirationDate"] = _rfc3339(expiration)
        if aliases:
            resource["aliases"] = list(aliases)
        if tags:
            resource["tags"] = list(tags)
        if material is not None:
            resource["payload"] = _b64(material)
        body = {
            "metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [resource],
        }
        headers = dict(_REPRESENTATION)
        if key_ring is not None:
            headers["X-Kms-Key-Ring"] = key_ring
        response = self._send("POST", "keys", body=body, content_type=KEY_TYPE, headers=headers)
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

    def rotate_key(self, key_id: str, *, material: bytes | None = None) -> None:
        """Add a new version to a root key; an imported key needs new ``material``."""
        body: dict[str, Any] = {} if material is None else {"payload": _b64(material)}
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
