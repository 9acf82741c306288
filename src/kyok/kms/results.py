"""What the data-plane calls (wrap, unwrap, rewrap) return.

Byte fields are hidden from ``repr`` so that a result never ends up in a log line whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RewrapResult", "UnwrapResult", "WrapResult"]


@dataclass(frozen=True, slots=True)
class WrapResult:
    """A wrapped DEK.

    Attributes:
        ciphertext: the kyok-wrap-v1 ciphertext (names ``key_version_id``).
        key_version_id: the key version that wrapped it (the newest).
        dek: the DEK the service generated, when the caller gave no plaintext; else None.
    """

    ciphertext: bytes = field(repr=False)
    key_version_id: str
    dek: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class UnwrapResult:
    """An unwrapped DEK.

    Attributes:
        plaintext: the DEK.
        key_version_id: the key version that had wrapped it.
        rewrapped: when that version is not the newest, the same DEK wrapped under the newest
            version (same AAD); else None.
        rewrapped_version_id: the newest version's id when ``rewrapped`` is set; else None.
    """

    plaintext: bytes = field(repr=False)
    key_version_id: str
    rewrapped: bytes | None = field(default=None, repr=False)
    rewrapped_version_id: str | None = None


@dataclass(frozen=True, slots=True)
class RewrapResult:
    """A DEK moved to the newest key version without leaving the service.

    Attributes:
        ciphertext: the DEK wrapped under ``rewrapped_version_id`` (same AAD).
        key_version_id: the version that had wrapped the ciphertext given.
        rewrapped_version_id: the newest version, which wrapped ``ciphertext``.
    """

    ciphertext: bytes = field(repr=False)
    key_version_id: str
    rewrapped_version_id: str
