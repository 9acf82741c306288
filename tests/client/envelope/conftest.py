"""Fixtures for envelope tests: an in-process key service with one root key.

The live tests (test_live.py) run the same paths against a real kyok dev server.
"""

from __future__ import annotations

import pytest

from kyok.client.envelope.testing import LocalKeyService


@pytest.fixture
def keys() -> LocalKeyService:
    return LocalKeyService()


@pytest.fixture
def key_id(keys: LocalKeyService) -> str:
    return keys.create_key()
