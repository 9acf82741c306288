"""An in-process key service for tests of code that uses envelope encryption (as Tink's fake KMS).

:class:`LocalKeyService` implements :class:`~kyok.client.envelope.KeyService` in memory: root
keys with versions, rotation, and the key states that matter to envelopes (active, suspended,
deactivated, destroyed, purged). Wrapped DEKs use kyok's own kyok-wrap-v1 layout
(docs/formats.md §4) and refusals raise the same :mod:`kyok.client.errors` classes, codes and
messages as the kyok server, so code tested against it behaves the same against kyok. It is for
tests only: its root keys live in process memory and die with it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from kyok.client._models import RewrapResult, UnwrapResult, WrapResult
from kyok.client.errors import Conflict, Gone, NotFound, Unprocessable
from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.encoding import b64d, b64e, lp_strings
from kyok.crypto.errors import InvalidCiphertext

__all__ = ["LocalKeyService"]

ACTIVE, SUSPENDED, DEACTIVATED, DESTROYED = 1, 2, 3, 5
_WRAP_VERSION = b"\x01"


@dataclass
class _Key:
    versions: list[tuple[str, DerivedKeyAead]] = field(default_factory=list)
    state: int = ACTIVE


class LocalKeyService:
    """Root keys in memory with kyok's wrap/unwrap/rewrap semantics (for tests).

    ``calls`` counts the data-plane calls made, by name, to check how many reached "kyok".
    """

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.Lock()
        self._calls = {"wrap": 0, "unwrap": 0, "rewrap": 0}

    def __repr__(self) -> str:
        return f"LocalKeyService(keys={len(self._keys)})"

    @property
    def calls(self) -> dict[str, int]:
        """How many wrap, unwrap and rewrap calls were made (refused ones included)."""
        with self._lock:
            return dict(self._calls)

    # -- management ----------------------------------------------------------------------

    def create_key(self, alias: str | None = None) -> str:
        """A new active root key with one version; returns its id."""
        key_id = str(uuid.uuid4())
        with self._lock:
            self._keys[key_id] = _Key([_new_version()])
            if alias is not None:
                self._aliases[alias] = key_id
        return key_id

    def rotate(self, key_id: str) -> str:
        """Add a version; returns its id."""
        with self._lock:
            key = self._find(key_id, "rotate", allowed=(ACTIVE, DEACTIVATED))
            version = _new_version()
            key.versions.append(version)
            return version[0]

    def disable(self, key_id: str) -> None:
        """Suspend the key (state 2)."""
        self._set_state(key_id, SUSPENDED, "disable", (ACTIVE,))

    def enable(self, key_id: str) -> None:
        """Re-activate a suspended key."""
        self._set_state(key_id, ACTIVE, "enable", (SUSPENDED,))

    def deactivate(self, key_id: str) -> None:
        """Mark the key expired (state 3): it unwraps but no longer wraps."""
        self._set_state(key_id, DEACTIVATED, "deactivate", (ACTIVE,))

    def delete(self, key_id: str) -> None:
        """Destroy the key (state 5); :meth:`restore` can bring it back until :meth:`purge`."""
        self._set_state(key_id, DESTROYED, "delete", (ACTIVE, SUSPENDED, DEACTIVATED))

    def restore(self, key_id: str) -> None:
        """Bring a destroyed key back (active)."""
        with self._lock:
            key = self._keys.get(self._aliases.get(key_id, key_id))
            if key is None:
                raise _not_found()
            if key.state != DESTROYED:
                raise _bad_state("restore", key.state)
            key.state = ACTIVE

    def purge(self, key_id: str) -> None:
        """Remove a destroyed key and its material for good."""
        with self._lock:
            real = self._aliases.get(key_id, key_id)
            key = self._keys.get(real)
            if key is None:
                raise _not_found()
            if key.state != DESTROYED:
                raise _bad_state("purge", key.state)
            del self._keys[real]
            for alias in [a for a, k in self._aliases.items() if k == real]:
                del self._aliases[alias]

    # -- KeyService ----------------------------------------------------------------------

    def wrap(
        self, key_id: str, plaintext: bytes | None = None, *, aad: Sequence[str] | None = None
    ) -> WrapResult:
        """Wrap ``plaintext``, or a generated 32-byte DEK, with the key's newest version."""
        with self._lock:
            self._calls["wrap"] += 1
            key = self._find(key_id, "wrap", allowed=(ACTIVE,))
            version = key.versions[-1]
        if plaintext is not None and not plaintext:
            raise ValueError("plaintext is empty (pass None to have a DEK generated)")
        dek = os.urandom(32) if plaintext is None else bytes(plaintext)
        return WrapResult(_seal(version, dek, aad), version[0], dek, plaintext is None)

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        """Unwrap; when an older version wrapped the DEK, also rewrap it with the newest."""
        with self._lock:
            self._calls["unwrap"] += 1
            key = self._find(key_id, "unwrap", allowed=(ACTIVE, DEACTIVATED))
            versions = list(key.versions)
        old, dek = _open(versions, ciphertext, aad)
        newest = versions[-1]
        if old == newest[0]:
            return UnwrapResult(dek, old)
        return UnwrapResult(dek, old, _seal(newest, dek, aad), newest[0])

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        """Wrap the same DEK again with the key's newest version."""
        with self._lock:
            self._calls["rewrap"] += 1
            key = self._find(key_id, "rewrap", allowed=(ACTIVE, DEACTIVATED))
            versions = list(key.versions)
        old, dek = _open(versions, ciphertext, aad)
        newest = versions[-1]
        return RewrapResult(_seal(newest, dek, aad), old, newest[0])

    # -- internals -----------------------------------------------------------------------

    def _find(self, key_id: str, action: str, *, allowed: tuple[int, ...]) -> _Key:
        key = self._keys.get(self._aliases.get(key_id, key_id))
        if key is None:
            raise _not_found()
        if key.state == DESTROYED:
            raise Gone(
                "Key has already been deleted: Please delete references to this key",
                status=410,
                code="KEY_DELETED_ERR",
            )
        if key.state not in allowed:
            raise _bad_state(action, key.state)
        return key

    def _set_state(self, key_id: str, state: int, action: str, allowed: tuple[int, ...]) -> None:
        with self._lock:
            self._find(key_id, action, allowed=allowed).state = state


def _new_version() -> tuple[str, DerivedKeyAead]:
    return str(uuid.uuid4()), DerivedKeyAead(os.urandom(32))


def _not_found() -> NotFound:
    return NotFound(
        "Key could not be retrieved: key does not exist", status=404, code="KEY_NOT_FOUND_ERR"
    )


def _bad_state(action: str, state: int) -> Conflict:
    return Conflict(
        f"Key is not in a valid state: the action {action} is not allowed in state {state}",
        status=409,
        code="KEY_ACTION_INVALID_STATE_ERR",
    )


def _unprocessable() -> Unprocessable:
    return Unprocessable(
        "the ciphertext could not be unwrapped: it is damaged, from another key, or the aad "
        "differs",
        status=422,
        code="UNPROCESSABLE_CIPHERTEXT_ERR",
    )


def _seal(version: tuple[str, DerivedKeyAead], dek: bytes, aad: Sequence[str] | None) -> str:
    head = _WRAP_VERSION + uuid.UUID(version[0]).bytes
    return b64e(head + version[1].encrypt(dek, head + lp_strings(list(aad or []))))


def _open(
    versions: list[tuple[str, DerivedKeyAead]], ciphertext: str, aad: Sequence[str] | None
) -> tuple[str, bytes]:
    try:
        raw = b64d(ciphertext)
    except ValueError:
        raise _unprocessable() from None
    if len(raw) < 17 or raw[:1] != _WRAP_VERSION:
        raise _unprocessable()
    version_id = str(uuid.UUID(bytes=raw[1:17]))
    for vid, aead in versions:
        if vid == version_id:
            try:
                return vid, aead.decrypt(raw[17:], raw[:17] + lp_strings(list(aad or [])))
            except InvalidCiphertext:
                raise _unprocessable() from None
    raise _unprocessable()
