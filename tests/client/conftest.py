"""Fixtures for SDK tests: a recording MockTransport handler and a client over it."""

from __future__ import annotations

import httpx
import pytest

from kyok.client import KyokClient

from ._mock import INSTANCE, URL, Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> KyokClient:
    return KyokClient(
        URL, INSTANCE, api_key="super-secret-api-key", transport=httpx.MockTransport(recorder)
    )
