"""Batch data-plane operations: wrap, unwrap, rewrap and generate up to 10,000 DEKs per call.

One call names one root key. The key is found and judged once (as for a single wrap: from the
key cache, no database read when warm); each item then succeeds or fails on its own, and the
result says which, item by item, in the order given. What makes the whole call fail is what
concerns the key or the call (no such key, not allowed, key suspended, unit sealed, too many
items); what concerns one item (its base64, its length, its AAD, a ciphertext that does not
unwrap) fails that item only.

Every item is on the record: each result's ``item_runs()`` turns the per-item results into
the runs of :class:`~kyok.audit.ItemRun` that the call's one audit event carries
(``AuditEvent.items``).
One event per call rather than per item keeps the ledger from being the limit (an event costs
the writer ~30 us; a batch item costs ~5 us) while losing nothing: the event names the key, the
caller and the request, and every item's index, outcome, reason code and key version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from kyok.audit import ItemRun
from kyok.errors import KyokError
from kyok.kms import validation as v
from kyok.kms.errors import InvalidField
from kyok.kms.lifecycle import Action
from kyok.store.records import KeyRecord
from kyok.unit import wrapping
from kyok.unit.handles import HandleRevoked, KeyHandle, UnwrapFailed

__all__ = [
    "MAX_ITEMS",
    "HandleSource",
    "Item",
    "ItemFailure",
    "RewrapBatch",
    "UnwrapBatch",
    "WrapBatch",
    "generate_many",
    "rewrap_many",
    "unwrap_many",
    "wrap_many",
]

#: The most items one batch call may hold.
MAX_ITEMS = 10_000
_ATTEMPTS = 3

#: One item as decoded from the wire: ``(plaintext or ciphertext, aad as sent)``. Plain tuples,
#: not dataclasses: a batch holds up to 10,000 of them and a frozen dataclass costs ~1 us to
#: make, a fifth of an item's whole budget.
Item = tuple[bytes, object]


class HandleSource(Protocol):
    """What the batch operations need from the key service
    (:meth:`kyok.kms.service.KeyService.data_plane_handles`)."""

    def data_plane_handles(
        self,
        instance_id: str,
        id_or_alias: str,
        action: Action,
        version_ids: Sequence[str] = (),
    ) -> tuple[KeyRecord, dict[str, KeyHandle]]: ...


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """Why one item failed: the error's code, message and HTTP-like status."""

    code: str
    message: str
    status: int

    @classmethod
    def of(cls, error: KyokError) -> ItemFailure:
        """The failure an error describes."""
        return cls(error.code, error.message, error.status)


R = TypeVar("R")


def _failed(results: Sequence[object]) -> int:
    return sum(1 for r in results if isinstance(r, ItemFailure))


def _runs(
    results: Sequence[R | ItemFailure], version: str | None, version_at: int | None
) -> tuple[ItemRun, ...]:
    """Consecutive items with the same outcome, reason code and key version, as runs: the
    version is ``version`` for every success, or each success's member ``version_at``."""
    runs: list[ItemRun] = []
    first = 0
    current: tuple[str, str | None, str | None] | None = None
    for i, r in enumerate(results):
        if isinstance(r, ItemFailure):
            sig: tuple[str, str | None, str | None] = ("failure", r.code, None)
        else:
            used = version if version_at is None else r[version_at]  # type: ignore[index]
            sig = ("success", None, used)
        if sig != current:
            if current is not None:
                runs.append(ItemRun(first, i - first, *current))
            first, current = i, sig
    if current is not None:
        runs.append(ItemRun(first, len(results) - first, *current))
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class WrapBatch:
    """A batch wrap's (or generate's) results, in request order.

    Attributes:
        key_id: the key's id (the call may have named it by alias).
        key_version_id: the newest version, which wrapped every item.
        results: per item ``(ciphertext, generated DEK or None)`` or its :class:`ItemFailure`.
    """

    key_id: str
    key_version_id: str
    results: list[tuple[bytes, bytes | None] | ItemFailure]

    failed: int = field(init=False, default=0)  #: how many items failed

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", _failed(self.results))

    def item_runs(self) -> tuple[ItemRun, ...]:
        """Every item's outcome as runs, for the call's audit event."""
        return _runs(self.results, self.key_version_id, None)


@dataclass(frozen=True, slots=True)
class UnwrapBatch:
    """A batch unwrap's results, in request order.

    Attributes:
        key_id: the key's id.
        key_version_id: the newest version (which rewrapped stale items).
        results: per item ``(DEK, version that had wrapped it, the DEK rewrapped under the
            newest version when that was an older one, else None)`` or its failure.
    """

    key_id: str
    key_version_id: str
    results: list[tuple[bytes, str, bytes | None] | ItemFailure]

    failed: int = field(init=False, default=0)  #: how many items failed

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", _failed(self.results))

    def item_runs(self) -> tuple[ItemRun, ...]:
        """Every item's outcome (with the version that had wrapped it) as runs."""
        return _runs(self.results, None, 1)


@dataclass(frozen=True, slots=True)
class RewrapBatch:
    """A batch rewrap's results, in request order.

    Attributes:
        key_id: the key's id.
        key_version_id: the newest version, which wrapped every new ciphertext.
        results: per item ``(new ciphertext, version that had wrapped the old one)`` or its
            failure.
    """

    key_id: str
    key_version_id: str
    results: list[tuple[bytes, str] | ItemFailure]

    failed: int = field(init=False, default=0)  #: how many items failed

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", _failed(self.results))

    def item_runs(self) -> tuple[ItemRun, ...]:
        """Every item's outcome (with the version that had wrapped it) as runs."""
        return _runs(self.results, None, 1)


W = TypeVar("W")


def _with_handles(
    service: HandleSource,
    instance_id: str,
    id_or_alias: str,
    action: Action,
    versions: Sequence[str],
    work: Callable[[KeyRecord, dict[str, KeyHandle]], W],
) -> W:
    """``work(key, handles)`` with the key judged for ``action``; judged again and redone (up to
    three times) when the key changed state meanwhile and a handle was revoked under it."""
    for attempt in range(_ATTEMPTS):
        key, handles = service.data_plane_handles(instance_id, id_or_alias, action, versions)
        try:
            return work(key, handles)
        except HandleRevoked:
            if attempt + 1 == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_ITEMS:
        raise InvalidField("items", f"must hold 1 to {MAX_ITEMS} items")


def _aad(value: object) -> tuple[str, ...]:
    return () if value is None else v.validate_aad(value)


def wrap_many(
    service: HandleSource,
    instance_id: str,
    id_or_alias: str,
    items: Sequence[Item | KyokError],
) -> WrapBatch:
    """Wrap each item's DEK under the key's newest version.

    Args:
        service: the key service.
        instance_id: the instance.
        id_or_alias: the root key.
        items: ``(DEK, aad)`` (1 to 4,096 bytes; AAD as for a single wrap), or the error that
            decoding an item met (it is that item's result).

    Raises:
        InvalidField: no items, or more than :data:`MAX_ITEMS`.
        the key errors of :meth:`~kyok.kms.service.KeyService.wrap`.
    """
    _check_count(len(items))
    indexes: list[int] = []
    deks: list[bytes] = []
    aads: list[tuple[str, ...]] = []
    base: list[tuple[bytes, bytes | None] | ItemFailure | None] = [None] * len(items)
    for i, item in enumerate(items):
        if isinstance(item, KyokError):
            base[i] = ItemFailure.of(item)
            continue
        dek, aad = item
        try:
            if not 1 <= len(dek) <= v.PLAINTEXT_MAX:
                raise InvalidField("plaintext", f"must be 1 to {v.PLAINTEXT_MAX} bytes")
            aads.append(_aad(aad))
        except KyokError as exc:
            base[i] = ItemFailure.of(exc)
            continue
        indexes.append(i)
        deks.append(dek)

    def work(key: KeyRecord, handles: dict[str, KeyHandle]) -> WrapBatch:
        version = key.current_version_id
        wrapped = handles[version].wrap_many(deks, aads)
        results = list(base)
        for i, (ciphertext, _) in zip(indexes, wrapped, strict=True):
            results[i] = (ciphertext, None)
        return WrapBatch(key.id, version, _complete(results))

    return _with_handles(service, instance_id, id_or_alias, Action.WRAP, (), work)


def generate_many(
    service: HandleSource,
    instance_id: str,
    id_or_alias: str,
    count: object,
    aad: object = None,
) -> WrapBatch:
    """Generate ``count`` 32-byte DEKs and wrap each under the key's newest version; every
    result holds its ciphertext and its DEK.

    Raises:
        InvalidField: a count out of range, or bad AAD (shared by every DEK).
        the key errors of :meth:`~kyok.kms.service.KeyService.wrap`.
    """
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_ITEMS:
        raise InvalidField("count", f"must be an integer from 1 to {MAX_ITEMS}")
    aad_t = _aad(aad)

    def work(key: KeyRecord, handles: dict[str, KeyHandle]) -> WrapBatch:
        version = key.current_version_id
        made = handles[version].wrap_many([None] * count, [aad_t] * count)
        results: list[tuple[bytes, bytes | None] | ItemFailure] = list(made)
        return WrapBatch(key.id, version, results)

    return _with_handles(service, instance_id, id_or_alias, Action.WRAP, (), work)


_Ready = tuple[int, bytes, tuple[str, ...], str]


def _prepare_unwrap(
    items: Sequence[Item | KyokError], base: list[object]
) -> tuple[list[_Ready], list[str]]:
    """``(index, ciphertext, aad, version named)`` of each item that decodes, and the versions
    named (each once); the others get their failure in ``base``."""
    ready: list[_Ready] = []
    named: dict[bytes, str] = {}  # header -> version id: parsing a UUID costs ~1 us per item
    for i, item in enumerate(items):
        if isinstance(item, KyokError):
            base[i] = ItemFailure.of(item)
            continue
        ciphertext, aad = item
        try:
            if not ciphertext:
                raise InvalidField("ciphertext", "is required")
            aad_t = _aad(aad)
        except KyokError as exc:
            base[i] = ItemFailure.of(exc)
            continue
        head = ciphertext[: wrapping.HEADER_SIZE]
        version = named.get(head) if len(ciphertext) >= wrapping.MIN_SIZE else None
        if version is None:
            try:
                version = named[head] = wrapping.version_of(ciphertext)
            except ValueError:
                base[i] = ItemFailure.of(UnwrapFailed())
                continue
        ready.append((i, ciphertext, aad_t, version))
    return ready, list(dict.fromkeys(r[3] for r in ready))


def _open_all(
    ready: list[_Ready], handles: dict[str, KeyHandle], results: list[object]
) -> list[_Ready]:
    """``(index, DEK, aad, version)`` of each ready item that unwraps with its version's
    handle; the others get their failure in ``results``."""
    opened: list[_Ready] = []
    for i, ciphertext, aad, version in ready:
        handle = handles.get(version)
        if handle is None:  # not a version of this key
            results[i] = ItemFailure.of(UnwrapFailed())
            continue
        try:
            opened.append((i, handle.unwrap(ciphertext, aad), aad, version))
        except UnwrapFailed as exc:
            results[i] = ItemFailure.of(exc)
    return opened


def unwrap_many(
    service: HandleSource,
    instance_id: str,
    id_or_alias: str,
    items: Sequence[Item | KyokError],
) -> UnwrapBatch:
    """Unwrap each item ``(ciphertext, aad)``; one wrapped by an older version also comes back
    rewrapped under the newest (as a single unwrap does).

    Raises:
        InvalidField: no items, or more than :data:`MAX_ITEMS`.
        the key errors of :meth:`~kyok.kms.service.KeyService.unwrap`.
    """
    _check_count(len(items))
    base: list[object] = [None] * len(items)
    ready, versions = _prepare_unwrap(items, base)

    def work(key: KeyRecord, handles: dict[str, KeyHandle]) -> UnwrapBatch:
        newest = key.current_version_id
        results = list(base)
        opened = _open_all(ready, handles, results)
        stale = [o for o in opened if o[3] != newest]
        moved = handles[newest].wrap_many([o[1] for o in stale], [o[2] for o in stale])
        rewrapped = {o[0]: ct for o, (ct, _) in zip(stale, moved, strict=True)}
        for i, dek, _, version in opened:
            results[i] = (dek, version, rewrapped.get(i))
        return UnwrapBatch(key.id, newest, _complete(results))  # type: ignore[arg-type]

    return _with_handles(service, instance_id, id_or_alias, Action.UNWRAP, versions, work)


def rewrap_many(
    service: HandleSource,
    instance_id: str,
    id_or_alias: str,
    items: Sequence[Item | KyokError],
) -> RewrapBatch:
    """Move each wrapped DEK ``(ciphertext, aad)`` to the key's newest version; no DEK leaves
    the service.

    Raises:
        InvalidField: no items, or more than :data:`MAX_ITEMS`.
        the key errors of :meth:`~kyok.kms.service.KeyService.rewrap`.
    """
    _check_count(len(items))
    base: list[object] = [None] * len(items)
    ready, versions = _prepare_unwrap(items, base)

    def work(key: KeyRecord, handles: dict[str, KeyHandle]) -> RewrapBatch:
        newest = key.current_version_id
        results = list(base)
        opened = _open_all(ready, handles, results)
        moved = handles[newest].wrap_many([o[1] for o in opened], [o[2] for o in opened])
        for (i, _, _, version), (ciphertext, _) in zip(opened, moved, strict=True):
            results[i] = (ciphertext, version)
        return RewrapBatch(key.id, newest, _complete(results))  # type: ignore[arg-type]

    return _with_handles(service, instance_id, id_or_alias, Action.REWRAP, versions, work)


def _complete(results: list[R | None]) -> list[R]:
    """``results`` once every item has one (every path sets every item: a gap is a bug)."""
    if any(r is None for r in results):
        raise AssertionError("a batch item was left without a result")
    return results  # type: ignore[return-value]
