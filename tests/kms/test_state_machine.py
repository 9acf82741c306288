"""Random sequences of key operations against a small, hand-written model of DESIGN §4.

The model knows nothing of ``kyok.kms.lifecycle``: it keeps, per key, the state, the number of
versions and the times the timers depend on, and predicts for every call either success or the
exact error class. After each step the service must agree on states and version counts, and
every DEK ever wrapped must still unwrap while its key is usable (and never after a purge).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kyok.auth.principals import Principal
from kyok.clock import FakeClock
from kyok.kms.errors import (
    KeyDeleted,
    KeyExpired,
    KeyNotFound,
    KeyStateConflict,
    PayloadNotAllowed,
    PayloadRequired,
    PurgeTooEarly,
    RequestTooEarly,
    RestoreExpired,
    RotationNotPermitted,
)
from kyok.kms.service import KeyService
from kyok.store.memory import MemoryStore
from kyok.store.records import KeyQuery

from .fakes import FakeUnitDirectory

T = TypeVar("T")

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
STEPS = [S, 29 * S, 31 * S, 59 * 60 * S, H, 4 * H - S, 4 * H, D, 29 * D, 31 * D, 91 * D]


@dataclass
class ModelKey:
    id: str
    imported: bool
    state: int  # as the model sees it, expiry applied by ``effective``
    expires_at: datetime | None
    last_action_at: datetime
    versions: int = 1
    last_rotated_at: datetime | None = None
    deleted_at: datetime | None = None
    stored_expiry_written: bool = False
    purged: bool = False


@dataclass
class Wrapped:
    key_id: str
    ciphertext: bytes
    aad: list[str]
    dek: bytes
    version_id: str
    version_no: int


@dataclass
class Model:
    keys: dict[str, ModelKey] = field(default_factory=dict)
    wrapped: list[Wrapped] = field(default_factory=list)
    version_ids: dict[str, list[str]] = field(default_factory=dict)


def effective(k: ModelKey, now: datetime) -> int:
    if k.state in (1, 2) and k.expires_at is not None and k.expires_at <= now:
        return 3
    return k.state


class KeyLifecycleMachine(RuleBasedStateMachine):
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.store = MemoryStore(self.clock)
        self.units = FakeUnitDirectory()
        self.service = KeyService(self.store.uow, self.units, self.clock)
        self.actor = Principal("user-model")
        self.model = Model()
        self.inst = ""

    @initialize()
    def make_instance(self) -> None:
        self.inst = self.service.create_instance(self.actor, "model").id

    # ------------------------------------------------------------------ helpers

    def now(self) -> datetime:
        return self.clock.now()

    def expect(self, call: Callable[[], T], error: type[Exception] | None) -> T | None:
        """Run ``call``; it must raise exactly ``error`` (or succeed when ``error`` is None)."""
        try:
            result = call()
        except Exception as exc:
            assert error is not None, f"unexpected {type(exc).__name__}: {exc}"
            assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
            return None
        assert error is None, f"expected {error.__name__}, got success"
        return result

    def common(self, k: ModelKey, allowed: tuple[int, ...]) -> type[Exception] | None:
        if k.purged:
            return KeyNotFound
        state = effective(k, self.now())
        if state in allowed:
            return None
        return KeyDeleted if state == 5 else KeyStateConflict

    # ------------------------------------------------------------------ rules

    @rule(
        target=keys,
        imported=st.booleans(),
        expires=st.sampled_from([None, H, 2 * D, 40 * D]),
    )
    def create(self, imported: bool, expires: timedelta | None) -> str:
        now = self.now()
        view = self.service.create_key(
            self.actor,
            self.inst,
            "model-key",
            material=os.urandom(32) if imported else None,
            expires_at=None if expires is None else now + expires,
        )
        self.model.keys[view.id] = ModelKey(
            view.id, imported, 1, None if expires is None else now + expires, now
        )
        self.model.version_ids[view.id] = [view.version_id]
        return view.id

    @rule(key=keys)
    def disable(self, key: str) -> None:
        k = self.model.keys[key]
        error = self.common(k, (1,))
        if self.expect(lambda: self.service.disable(self.actor, self.inst, key), error) is not None:
            k.state, k.last_action_at = 2, self.now()

    @rule(key=keys)
    def enable(self, key: str) -> None:
        k = self.model.keys[key]
        error = self.common(k, (2,))
        if error is None and self.now() < k.last_action_at + 30 * S:
            error = RequestTooEarly
        if self.expect(lambda: self.service.enable(self.actor, self.inst, key), error) is not None:
            k.state, k.last_action_at = 1, self.now()

    @rule(key=keys)
    def delete(self, key: str) -> None:
        k = self.model.keys[key]
        error = self.common(k, (0, 1, 2, 3))
        if self.expect(lambda: self.service.delete(self.actor, self.inst, key), error) is not None:
            k.state, k.last_action_at, k.deleted_at = 5, self.now(), self.now()

    @rule(key=keys)
    def restore(self, key: str) -> None:
        k = self.model.keys[key]
        now = self.now()
        error = KeyNotFound if k.purged else (None if k.state == 5 else KeyStateConflict)
        if error is None:
            assert k.deleted_at is not None
            if k.expires_at is not None and k.expires_at <= now:
                error = KeyExpired
            elif now > k.deleted_at + 30 * D:
                error = RestoreExpired
            elif now < k.last_action_at + 30 * S:
                error = RequestTooEarly
        if self.expect(lambda: self.service.restore(self.actor, self.inst, key), error) is not None:
            k.state, k.last_action_at, k.deleted_at = 1, now, None

    @rule(key=keys)
    def purge(self, key: str) -> None:
        k = self.model.keys[key]
        error = KeyNotFound if k.purged else (None if k.state == 5 else KeyStateConflict)
        if error is None and k.deleted_at is not None and self.now() < k.deleted_at + 4 * H:
            error = PurgeTooEarly
        if self.expect(lambda: self.service.purge(self.actor, self.inst, key), error) is not None:
            k.purged = True

    @rule(key=keys, wrong_material=st.booleans())
    def rotate(self, key: str, wrong_material: bool) -> None:
        k = self.model.keys[key]
        give = k.imported != wrong_material
        error = self.common(k, (1, 3))
        if error is None and wrong_material:
            error = PayloadNotAllowed if give else PayloadRequired
        if error is None and k.last_rotated_at is not None and self.now() < k.last_rotated_at + H:
            error = RotationNotPermitted
        material = os.urandom(16) if give else None
        view = self.expect(lambda: self.service.rotate(self.actor, self.inst, key, material), error)
        if view is not None:
            k.versions += 1
            k.last_rotated_at = k.last_action_at = self.now()
            k.state = effective(k, self.now())  # the write makes a passed expiry explicit
            self.model.version_ids[key].append(view.version_id)

    @rule(key=keys, aad=st.lists(st.text(max_size=5), max_size=2), generate=st.booleans())
    def wrap(self, key: str, aad: list[str], generate: bool) -> None:
        k = self.model.keys[key]
        dek = None if generate else os.urandom(32)
        error = self.common(k, (1,))
        res = self.expect(lambda: self.service.wrap(self.inst, key, dek, aad), error)
        if res is not None:
            assert res.key_version_id == self.model.version_ids[key][-1]
            assert (res.dek is not None) == generate
            used = res.dek if generate else dek
            self.model.wrapped.append(
                Wrapped(key, res.ciphertext, aad, used, res.key_version_id, k.versions)
            )

    @precondition(lambda self: self.model.wrapped)
    @rule(data=st.data())
    def unwrap_one(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self.model.wrapped))
        self.check_unwrap(w)

    @precondition(lambda self: self.model.wrapped)
    @rule(data=st.data())
    def unwrap_with_wrong_aad(self, data: st.DataObject) -> None:
        from kyok.kms.errors import UnwrapFailed

        w = data.draw(st.sampled_from(self.model.wrapped))
        k = self.model.keys[w.key_id]
        error = self.common(k, (1, 3)) or UnwrapFailed
        self.expect(
            lambda: self.service.unwrap(self.inst, w.key_id, w.ciphertext, [*w.aad, "x"]), error
        )

    def run_scheduler(self) -> None:
        """``expire_due`` then ``purge_overdue``, each checked against the model."""
        now = self.now()
        live = [k for k in self.model.keys.values() if not k.purged]
        due = [
            k
            for k in live
            if k.state in (1, 2) and k.expires_at is not None and k.expires_at <= now
        ]
        assert self.service.expire_due() == len(due)
        for k in due:
            k.state, k.last_action_at = 3, now
        overdue = [
            k
            for k in live
            if k.state == 5 and k.deleted_at is not None and k.deleted_at <= now - 90 * D
        ]
        assert self.service.purge_overdue() == len(overdue)
        for k in overdue:
            k.purged = True

    @rule()
    def scheduler(self) -> None:
        self.run_scheduler()

    @rule(step=st.sampled_from(STEPS))
    def advance(self, step: timedelta) -> None:
        self.clock.advance(step)

    @rule(key=keys, data=st.data())
    def advance_to_deadline(self, key: str, data: st.DataObject) -> None:
        """Jump to just before, at or just after one of the key's timer deadlines, then maybe
        try the action that deadline governs (edges are where off-by-one errors live)."""
        k = self.model.keys[key]
        candidates = [
            (k.last_action_at + 30 * S, [self.enable, self.restore]),
            (None if k.last_rotated_at is None else k.last_rotated_at + H, [self.rotate]),
            (None if k.deleted_at is None else k.deleted_at + 4 * H, [self.purge]),
            (None if k.deleted_at is None else k.deleted_at + 30 * D, [self.restore]),
            (None if k.deleted_at is None else k.deleted_at + 90 * D, [self.run_scheduler]),
            (k.expires_at, [self.run_scheduler, self.wrap, self.restore]),
        ]
        ahead = [(d, acts) for d, acts in candidates if d is not None and d + S > self.now()]
        if not ahead:
            return
        deadline, actions = data.draw(st.sampled_from(ahead))
        target = deadline + data.draw(st.sampled_from([-S, timedelta(0), S]))
        if target > self.now():
            self.clock.set(target)
        act = data.draw(st.sampled_from([None, *actions]))
        if act == self.run_scheduler:
            self.run_scheduler()
        elif act == self.rotate:
            self.rotate(key, False)
        elif act == self.wrap:
            self.wrap(key, [], True)
        elif act is not None:
            act(key)

    # ------------------------------------------------------------------ checks

    def check_unwrap(self, w: Wrapped) -> None:
        k = self.model.keys[w.key_id]
        error = self.common(k, (1, 3))
        out = self.expect(
            lambda: self.service.unwrap(self.inst, w.key_id, w.ciphertext, w.aad), error
        )
        if out is not None:
            assert out.plaintext == w.dek
            assert out.key_version_id == w.version_id
            newest = self.model.version_ids[w.key_id][-1]
            if w.version_id == newest:
                assert out.rewrapped is None
            else:
                assert out.rewrapped_version_id == newest
                again = self.service.unwrap(self.inst, w.key_id, out.rewrapped, w.aad)
                assert again.plaintext == w.dek

    @invariant()
    def states_and_versions_agree(self) -> None:
        if not self.inst:
            return
        now = self.now()
        for key_id, k in self.model.keys.items():
            if k.purged:
                try:
                    self.service.get_key(self.inst, key_id)
                except KeyNotFound:
                    continue
                raise AssertionError("a purged key is still visible")
            view = self.service.get_key(self.inst, key_id)
            assert int(view.state) == effective(k, now), (key_id, view.state, k)
            assert view.record.version_count == k.versions
            assert view.version_id == self.model.version_ids[key_id][-1]
        listed = self.service.count_keys(KeyQuery(self.inst, states=frozenset({0, 1, 2, 3, 5})))
        assert listed == sum(1 for k in self.model.keys.values() if not k.purged)

    def teardown(self) -> None:
        # Every DEK ever wrapped: unwraps while its key is usable, never after a purge.
        for w in self.model.wrapped:
            self.check_unwrap(w)


TestKeyLifecycle = KeyLifecycleMachine.TestCase
TestKeyLifecycle.settings = settings(
    max_examples=500,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
