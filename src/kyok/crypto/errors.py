"""The two opaque failures of the crypto layer.

Every authentication failure — a wrong key, a flipped bit, a truncated message, a wrong
associated-data value — raises the same :class:`InvalidCiphertext` (or
:class:`InvalidSignature`) with no further detail, so that no caller can learn which check
failed. Misuse (a wrong key length, a wrong type) raises ``ValueError``/``TypeError`` at entry.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of the crypto layer's own errors."""


class InvalidCiphertext(CryptoError):
    """The ciphertext did not authenticate (or could not be parsed)."""

    def __init__(self) -> None:
        super().__init__("ciphertext did not authenticate")


class InvalidSignature(CryptoError):
    """The signature did not verify."""

    def __init__(self) -> None:
        super().__init__("signature did not verify")
