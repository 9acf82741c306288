"""Key handles: what code outside the unit holds instead of key material.

A :class:`KeyHandle` can wrap and unwrap DEKs under one root key version. It has no attribute
that returns the material, a redacted repr, and cannot be pickled. Handles die when the unit
seals (all at once) or when their key changes state (``HandleCache.forget``); a dead handle
raises ``UnitSealed``/``HandleRevoked`` instead of working.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import NoReturn

from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.errors import InvalidCiphertext
from kyok.errors import Conflict, Unprocessable
from kyok.unit import wrapping
from kyok.unit.blob import BlobRef
from kyok.unit.errors import UnitSealed

DEK_SIZE = 32


class HandleRevoked(Conflict):
    """The key changed state after this handle was made; fetch a new one."""

    code = "HANDLE_REVOKED_ERR"


class UnwrapFailed(Unprocessable):
    """The ciphertext is not one of ours, was altered, or the AAD differs."""

    code = "UNPROCESSABLE_CIPHERTEXT_ERR"

    def __init__(self) -> None:
        super().__init__(
            "the ciphertext could not be unwrapped: it is damaged, from another key, or the aad differs"
        )


class Liveness:
    """Shared flag: every handle made during one unsealed period points at the same one."""

    __slots__ = ("alive",)

    def __init__(self) -> None:
        self.alive = True


class KeyHandle:
    """Wrap/unwrap DEKs under one root key version, without exposing it."""

    __slots__ = ("_aead", "_header", "_live", "_revoked", "ref")

    def __init__(self, ref: BlobRef, material: bytes, live: Liveness) -> None:
        self.ref = ref
        self._aead = DerivedKeyAead(material)
        self._header = wrapping.header(ref.id)
        self._live = live
        self._revoked = False

    def _check(self) -> None:
        if not self._live.alive:
            raise UnitSealed()
        if self._revoked:
            raise HandleRevoked("the key changed state; try again")

    def wrap(self, dek: bytes | None, aad: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """Wrap ``dek`` (or a fresh 32-byte DEK when None).

        Returns:
            ``(ciphertext, dek)`` — the kyok-wrap-v1 ciphertext and the DEK that it holds.
        """
        self._check()
        if dek is None:
            dek = os.urandom(DEK_SIZE)
        return self._header + self._aead.encrypt(dek, wrapping.aad(self._header, aad)), dek

    def wrap_many(
        self, deks: Sequence[bytes | None], aads: Sequence[Sequence[str]]
    ) -> list[tuple[bytes, bytes]]:
        """:meth:`wrap` for many DEKs (``aads[i]`` for ``deks[i]``), drawing the fresh DEKs
        and the nonces with one call each to the random source.

        Returns:
            ``(ciphertext, dek)`` per DEK, in order.
        """
        self._check()
        fresh = deks.count(None)
        filled: list[bytes] = []
        if not fresh:
            filled.extend(deks)  # type: ignore[arg-type]  # no None among them
        else:
            pool = os.urandom(DEK_SIZE * fresh)
            taken = 0
            for dek in deks:
                if dek is None:
                    dek = pool[taken : taken + DEK_SIZE]
                    taken += DEK_SIZE
                filled.append(dek)
        head = self._header
        encoded: dict[tuple[str, ...], bytes] = {}  # most batches share one AAD (often none)
        ads = []
        for aad in aads:
            key = aad if type(aad) is tuple else tuple(aad)
            ad = encoded.get(key)
            if ad is None:
                ad = encoded[key] = wrapping.aad(head, key)
            ads.append(ad)
        sealed = self._aead.encrypt_many(filled, ads)
        return [(head + ct, dek) for ct, dek in zip(sealed, filled, strict=True)]

    def unwrap(self, ciphertext: bytes, aad: Sequence[str] = ()) -> bytes:
        """Unwrap a kyok-wrap-v1 ciphertext made by this key version.

        Raises:
            UnwrapFailed: wrong version, damaged ciphertext, or different AAD.
        """
        self._check()
        head = ciphertext[: wrapping.HEADER_SIZE]
        if head != self._header:
            raise UnwrapFailed()
        try:
            return self._aead.decrypt(ciphertext[wrapping.HEADER_SIZE :], wrapping.aad(head, aad))
        except InvalidCiphertext:
            raise UnwrapFailed() from None

    def revoke(self) -> None:
        """Make this handle unusable."""
        self._revoked = True

    def __repr__(self) -> str:
        return f"KeyHandle(version={self.ref.id!r}, material=<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key handles cannot be pickled")


class HandleCache:
    """A bounded LRU of key handles by blob id, with an index by owner for ``forget``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._items: OrderedDict[str, KeyHandle] = OrderedDict()
        self._by_owner: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, blob_id: str) -> KeyHandle | None:
        with self._lock:
            handle = self._items.get(blob_id)
            if handle is not None:
                self._items.move_to_end(blob_id)
            return handle

    def put(self, handle: KeyHandle) -> None:
        with self._lock:
            self._items[handle.ref.id] = handle
            self._items.move_to_end(handle.ref.id)
            self._by_owner.setdefault(handle.ref.owner_id, set()).add(handle.ref.id)
            while len(self._items) > self._max:
                _, old = self._items.popitem(last=False)
                owned = self._by_owner.get(old.ref.owner_id)
                if owned is not None:
                    owned.discard(old.ref.id)
                    if not owned:
                        del self._by_owner[old.ref.owner_id]

    def forget(self, owner_id: str) -> int:
        """Drop and revoke every handle of ``owner_id``; returns how many."""
        with self._lock:
            ids = self._by_owner.pop(owner_id, set())
            for blob_id in ids:
                handle = self._items.pop(blob_id, None)
                if handle is not None:
                    handle.revoke()
            return len(ids)

    def clear(self) -> None:
        """Drop and revoke everything."""
        with self._lock:
            for handle in self._items.values():
                handle.revoke()
            self._items.clear()
            self._by_owner.clear()

    def __len__(self) -> int:
        return len(self._items)


class ExportAccess:
    """A capability: exporting key material needs one of these, so every export is greppable.

    Only :data:`STANDARD_KEY_EXPORT` exists; root-key material is never exported.
    """

    __slots__ = ("purpose",)

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose

    def __repr__(self) -> str:
        return f"ExportAccess({self.purpose!r})"


#: Allows :meth:`kyok.unit.unit.CryptoUnit.export_material` for standard (extractable) keys.
STANDARD_KEY_EXPORT = ExportAccess("standard-key")
