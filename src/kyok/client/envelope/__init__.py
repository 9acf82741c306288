"""Envelope encryption of files and streams with kyok root keys (format kyok-envelope/1).

Every file gets its own data-encryption key (DEK): one ``wrap`` call has kyok generate it and
return it with its wrapped form; the wrapped DEK goes into the file's header, the DEK itself
never touches disk. Decrypting costs one ``unwrap``. When the root key is rotated,
:func:`rewrap_file` moves the wrapped DEK to the newest key version by rewriting a few hundred
header bytes, never the data. Disabling the root key stops decryption (``KeyUnavailable``,
reason ``suspended``); deleting and purging it makes every file under it unreadable
(crypto-shredding)::

    from kyok.client import KyokClient
    from kyok.client import envelope

    with KyokClient(url, instance_id, api_key=api_key) as kyok:
        envelope.encrypt_file("report.pdf", "report.pdf.kyok", keys=kyok, key=root_id,
                              aad=["tenant=acme"])
        envelope.decrypt_file("report.pdf.kyok", "copy.pdf", keys=kyok, aad=["tenant=acme"])

The data is cut into segments (1 MiB by default), each sealed with AES-256-GCM under a key
derived from the DEK and a per-file salt, with the segment's index and a final-segment flag in
its nonce: altering, truncating, extending, reordering or dropping segments, swapping headers
or giving other AAD each fail with :class:`InvalidEnvelope` before any plaintext of the bad
segment is released. :class:`SegmentReader` decrypts any segment or byte range on its own, and
:class:`DekCache` saves key-service calls for many small objects. The byte layout, derivations
and test vectors are in docs/formats.md §17. :mod:`kyok.client.envelope.testing` has an
in-process key service for your own tests.
"""

from __future__ import annotations

from kyok.client.envelope._cache import CacheStats, DekCache
from kyok.client.envelope._files import decrypt_file, encrypt_file, rewrap_file
from kyok.client.envelope._format import (
    DEFAULT_SEGMENT_SIZE,
    FORMAT_NAME,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
)
from kyok.client.envelope._header import EnvelopeHeader, read_header
from kyok.client.envelope._keyservice import KeyService
from kyok.client.envelope._reader import SegmentReader
from kyok.client.envelope._stream import decrypt, decrypt_bytes, encrypt, encrypt_bytes
from kyok.client.envelope.errors import (
    EnvelopeError,
    InvalidEnvelope,
    KeyUnavailable,
    KeyUnavailableReason,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "FORMAT_NAME",
    "MAX_SEGMENT_SIZE",
    "MIN_SEGMENT_SIZE",
    "CacheStats",
    "DekCache",
    "EnvelopeError",
    "EnvelopeHeader",
    "InvalidEnvelope",
    "KeyService",
    "KeyUnavailable",
    "KeyUnavailableReason",
    "SegmentReader",
    "decrypt",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt",
    "encrypt_bytes",
    "encrypt_file",
    "read_header",
    "rewrap_file",
]
