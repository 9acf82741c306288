"""Errors of the crypto unit."""

from __future__ import annotations

from kyok.errors import Conflict, InternalError, InvalidInput, NotFound, Unavailable


class UnitSealed(Unavailable):
    """The unit holds no usable master key: parts must be loaded (or the seal must open)."""

    code = "UNIT_SEALED_ERR"

    def __init__(
        self, message: str = "the crypto unit is sealed: load the master-key parts to unseal it"
    ):
        super().__init__(message)


class UnitNotFound(NotFound):
    code = "UNIT_NOT_FOUND_ERR"


class CeremonyRejected(Conflict):
    """A ceremony command was refused (bad or missing signatures, replay, wrong state, ...).

    The unit's state is unchanged when this is raised.
    """

    code = "CEREMONY_REJECTED_ERR"


class MasterKeyMismatch(CeremonyRejected):
    """The master key assembled or expected does not have the expected MKVP."""

    code = "MKVP_MISMATCH_ERR"


class BadKeyPart(InvalidInput):
    """A master-key part could not be read or used (wrong passphrase, damaged file, unknown part)."""

    code = "BAD_KEY_PART_ERR"


class BlobCorrupt(InternalError):
    """A stored blob did not open: altered, misplaced, or sealed by an unknown master key.

    Never the caller's fault (a bad *ciphertext* from a caller is ``UnwrapFailed``, a 422):
    the store holds something it should not, so this is a server-side error."""

    code = "BLOB_CORRUPT_ERR"


class UnitTampered(Unavailable):
    """The stored unit state or transcript does not match its authentication: refused."""

    code = "UNIT_TAMPERED_ERR"
