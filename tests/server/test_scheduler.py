"""The background job follows the service clock: a FakeClock drives it, nothing sleeps."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from kyok.auth.principals import SYSTEM
from kyok.bootstrap import open_node
from kyok.bootstrap.scheduler import Scheduler
from kyok.clock import FakeClock
from kyok.kms.keys import KeyState
from kyok.kms.policies import KeyPolicySpec
from kyok.settings import Settings


def test_tick_deactivates_expired_keys_and_purges_overdue_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_node(Settings(data_dir=tmp_path / "data"), clock=clock)
    try:
        instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
        expiring = node.service.create_key(
            SYSTEM, instance, "expiring", expires_at=clock.now() + timedelta(hours=1)
        )
        doomed = node.service.create_key(SYSTEM, instance, "doomed")
        node.service.delete(SYSTEM, instance, doomed.id)
        scheduler = Scheduler(node.service, clock, timedelta(minutes=10))

        first = scheduler.tick()
        assert first is not None and (first.expired, first.purged) == (0, 0)
        assert scheduler.tick() is None  # not due again yet
        clock.advance(timedelta(hours=2))
        second = scheduler.tick()
        assert second is not None and second.expired == 1 and second.purged == 0
        assert node.service.get_key(instance, expiring.id).record.state == KeyState.DEACTIVATED
        clock.advance(timedelta(days=91))
        third = scheduler.tick()
        assert third is not None and third.purged == 1
        assert scheduler.next_due == clock.now() + timedelta(minutes=10)
    finally:
        node.close()


def test_tick_rotates_due_keys_and_expires_import_tokens(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = Settings.load(
        env={}, overrides={"data_dir": tmp_path / "data", "server.import_token_rsa_bits": 2048}
    )
    node = open_node(settings, clock=clock)
    try:
        instance = node.service.create_instance(SYSTEM, "t", seal="dev").id
        monthly = node.service.create_key(
            SYSTEM, instance, "monthly", policies=KeyPolicySpec(True, 1)
        )
        node.import_tokens.create(SYSTEM, instance, expiration=300)
        scheduler = Scheduler(
            node.service, clock, timedelta(minutes=10), import_tokens=node.import_tokens
        )
        first = scheduler.tick()
        assert first is not None and (first.rotated, first.tokens_expired) == (0, 0)
        clock.advance(timedelta(days=31))
        second = scheduler.tick()
        assert second is not None and (second.rotated, second.tokens_expired) == (1, 1)
        rotated = node.service.get_key(instance, monthly.id)
        assert rotated.version_id != monthly.version_id
        assert rotated.record.last_rotated_at == clock.now()
    finally:
        node.close()


def test_the_thread_keeps_running_after_a_failed_run() -> None:
    class Jobs:
        calls = 0

        def expire_due(self, now: object = None, *, batch: int = 500) -> int:
            Jobs.calls += 1
            if Jobs.calls == 1:
                raise RuntimeError("database hiccup")
            return 0

        def purge_overdue(self, now: object = None, *, batch: int = 500) -> int:
            return 0

        def rotate_due(self, now: object = None, *, batch: int = 100) -> int:
            return 0

    clock = FakeClock()
    scheduler = Scheduler(Jobs(), clock, timedelta(seconds=1), poll=0.01)
    scheduler.start()
    try:
        for _ in range(500):
            clock.advance(2)
            if Jobs.calls >= 3:
                break
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert Jobs.calls >= 3


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scheduler(object(), FakeClock(), timedelta(0))  # type: ignore[arg-type]
