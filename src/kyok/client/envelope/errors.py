"""The errors of envelope encryption, under the SDK's :class:`~kyok.client.errors.ClientError`::

    ClientError                       (kyok.client.errors)
    └── EnvelopeError                 an envelope could not be made or opened
        ├── InvalidEnvelope           the bytes are not a valid kyok envelope for this AAD
        └── KeyUnavailable            kyok refused the root key: .reason, .key_id

``InvalidEnvelope.code`` says which check failed:

==========================  ================================================================
``NOT_AN_ENVELOPE``         no kyok envelope magic (or empty input)
``UNSUPPORTED_VERSION``     a newer format version than this SDK reads
``HEADER_DAMAGED``          the header is truncated, malformed, or both key slots are damaged
``AAD_MISMATCH``            the AAD given is not the AAD the file was encrypted with
``HEADER_MISMATCH``         the key commitment failed: a swapped or altered header, or a DEK
                            that is not this file's
``DEK_UNWRAP_FAILED``       kyok could not unwrap the header's wrapped DEK (damaged, or made
                            by another key or with other AAD)
``TRUNCATED``               the data ends before the final segment
``SEGMENT_DAMAGED``         a segment did not authenticate: altered, reordered, dropped,
                            truncated or extended data
==========================  ================================================================

Messages never contain a DEK, a wrapped DEK or plaintext. Other failures of the key service
(no connection, a sealed unit, bad credentials) are raised unchanged as the SDK's own
:class:`~kyok.client.errors.ClientError` subclasses.
"""

from __future__ import annotations

from typing import Literal

from kyok.client.errors import ClientError

__all__ = [
    "KEY_UNAVAILABLE_REASONS",
    "EnvelopeError",
    "InvalidEnvelope",
    "KeyUnavailable",
    "KeyUnavailableReason",
]

KeyUnavailableReason = Literal[
    "suspended", "destroyed", "deactivated", "not_found", "forbidden", "other"
]
KEY_UNAVAILABLE_REASONS: frozenset[str] = frozenset(
    {"suspended", "destroyed", "deactivated", "not_found", "forbidden", "other"}
)


class EnvelopeError(ClientError):
    """Base of the envelope errors: an envelope could not be made or opened."""

    default_code = "ENVELOPE_ERR"


class InvalidEnvelope(EnvelopeError):
    """The input is not a valid kyok envelope for this AAD (see the module docstring for codes).

    Raised before any plaintext of the failing segment is written. ``decrypt_file`` and
    ``decrypt_bytes`` then return nothing at all; ``decrypt`` to a caller's stream may already
    have written the earlier, verified segments.
    """

    default_code = "INVALID_ENVELOPE"


class KeyUnavailable(EnvelopeError):
    """kyok refused to wrap, unwrap or rewrap with the root key.

    Attributes:
        reason: ``suspended`` (the key is disabled: enable it), ``destroyed`` (deleted: restore
            it, or the data is lost once it is purged), ``deactivated`` (expired: it decrypts but
            no longer encrypts), ``not_found`` (no such key in the instance; a purged key looks
            like this), ``forbidden`` (the caller's roles do not allow it) or ``other``.
        key_id: the root key id (or alias) that was asked for.
    """

    default_code = "KEY_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        reason: KeyUnavailableReason,
        key_id: str,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        if reason not in KEY_UNAVAILABLE_REASONS:
            raise ValueError(f"unknown KeyUnavailable reason {reason!r}")
        super().__init__(message, status=status, code=code, correlation_id=correlation_id)
        self.reason: KeyUnavailableReason = reason
        self.key_id = key_id

    def __repr__(self) -> str:
        return (
            f"KeyUnavailable(reason={self.reason!r}, key_id={self.key_id!r}, "
            f"status={self.status!r}, code={self.code!r}, message={self.message!r})"
        )
