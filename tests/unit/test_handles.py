"""Key handles and their cache: bounded, revocable, never showing material."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from kyok.errors import Forbidden
from kyok.unit.blob import PURPOSE_ROOT_KEY, PURPOSE_STANDARD_KEY, BlobRef
from kyok.unit.handles import (
    STANDARD_KEY_EXPORT,
    ExportAccess,
    HandleCache,
    HandleRevoked,
    KeyHandle,
    Liveness,
    UnwrapFailed,
)
from kyok.unit.unit import CryptoUnit

NewUnit = Callable[..., CryptoUnit]


def ref(owner: str, n: int, purpose: str = PURPOSE_ROOT_KEY) -> BlobRef:
    return BlobRef("inst-1", owner, f"00000000-0000-4000-8000-{n:012d}", purpose)


def test_cache_is_bounded_and_forget_revokes() -> None:
    cache = HandleCache(max_entries=3)
    live = Liveness()
    handles = [KeyHandle(ref(f"k{i % 2}", i), bytes([i]) * 32, live) for i in range(5)]
    for h in handles:
        cache.put(h)
    assert len(cache) == 3
    assert cache.get(handles[0].ref.id) is None and cache.get(handles[4].ref.id) is handles[4]
    assert cache.forget("k0") == 2  # handles 2 and 4 remain of k0
    ct, dek = handles[3].wrap(None)
    with pytest.raises(HandleRevoked):
        handles[4].wrap(None)
    assert handles[3].unwrap(ct) == dek
    cache.clear()
    with pytest.raises(HandleRevoked):
        handles[3].unwrap(ct)


def test_handle_hides_material() -> None:
    h = KeyHandle(ref("k", 1), b"\x42" * 32, Liveness())
    assert "42" * 4 not in repr(h) and "redacted" in repr(h)
    assert not any("material" in name for name in dir(h) if not name.startswith("_"))
    with pytest.raises(TypeError):
        pickle.dumps(h)


def test_unwrap_checks_version_and_aad() -> None:
    live = Liveness()
    a = KeyHandle(ref("k", 1), b"\x01" * 32, live)
    b = KeyHandle(ref("k", 2), b"\x01" * 32, live)  # same material, another version
    ct, _ = a.wrap(b"dek", ["x", "y"])
    for bad in (
        lambda: a.unwrap(ct, ["x"]),
        lambda: a.unwrap(ct, ["xy"]),
        lambda: a.unwrap(ct, ["x", "y", ""]),
        lambda: b.unwrap(ct, ["x", "y"]),
        lambda: a.unwrap(ct[:-1], ["x", "y"]),
        lambda: a.unwrap(b"", []),
    ):
        with pytest.raises(UnwrapFailed):
            bad()
    assert a.unwrap(ct, ["x", "y"]) == b"dek"


def test_unit_caches_handles_and_export_needs_the_capability(new_unit: NewUnit) -> None:
    unit = new_unit("dev")
    unit.bootstrap_dev()
    root = unit.generate_blob(ref("k", 1))
    assert unit.handle(root) is unit.handle(root)
    unit.forget("k")
    assert unit.handle(root) is not None
    std = unit.generate_blob(ref("s", 2, PURPOSE_STANDARD_KEY), length=100)
    assert len(unit.export_material(std, STANDARD_KEY_EXPORT)) == 100
    with pytest.raises(Forbidden):
        unit.export_material(root, STANDARD_KEY_EXPORT)
    with pytest.raises(Forbidden):
        unit.export_material(
            std, ExportAccess("standard-key")
        )  # a look-alike is not the capability
    with pytest.raises(ValueError):
        unit.handle(std)
