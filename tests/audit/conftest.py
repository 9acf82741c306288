"""Audit fixtures: real Ed25519 audit signing keys."""

from __future__ import annotations

import pytest

from kyok.audit import KeySigner
from kyok.crypto.sign import SigningKey


@pytest.fixture(scope="session")
def signer() -> KeySigner:
    """The instance's audit signing key."""
    return KeySigner(SigningKey.generate())


@pytest.fixture(scope="session")
def other_signer() -> KeySigner:
    """Someone else's key (a forger's)."""
    return KeySigner(SigningKey.generate())
