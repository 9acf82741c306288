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


class ImportRejected(InvalidInput):
    """Key material offered for import with an import token was refused (HTTP 400).

    The subclasses say which check failed, in the order the unit makes them. Messages never
    contain the key material, the nonce or any other decrypted value.
    """

    code = "BAD_BODY_ERR"
    default_message = "the key material could not be imported"
    default_target: str | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message, target=self.default_target)


class ImportAlgorithmUnknown(ImportRejected):
    """``encryptionAlgorithm`` names no algorithm the unit accepts."""

    default_message = (
        "the encryption algorithm is not supported for key import: use RSAES_OAEP_SHA_256, "
        "RSAES_OAEP_SHA_1 or KYOK_HYBRID_MLKEM768_X25519"
    )
    default_target = "encryptionAlgorithm"


class ImportPayloadInvalid(ImportRejected):
    """The payload does not decrypt under the import token's private key (another token's key,
    another algorithm, or damaged)."""

    default_message = (
        "the payload could not be decrypted with the import token's key: "
        "encrypt the key material with the public key of the current import token"
    )
    default_target = "payload"


class ImportKeyLength(ImportRejected):
    """The decrypted key material is not 16, 24 or 32 bytes long."""

    default_message = "the key material must be 16, 24 or 32 bytes long"
    default_target = "payload"


class ImportNonceUndecryptable(ImportRejected):
    """``encryptedNonce``/``iv`` do not decrypt under the key material (Key Protect's
    INCORRECT_NONCE_IV_ERR)."""

    code = "INCORRECT_NONCE_IV_ERR"
    default_message = "the encrypted nonce and iv were not encrypted with the key material given"
    default_target = "encryptedNonce"


class ImportNonceMismatch(ImportRejected):
    """``encryptedNonce`` decrypts, but not to the import token's nonce (Key Protect's
    INCORRECT_NONCE_ERR)."""

    code = "INCORRECT_NONCE_ERR"
    default_message = "the encrypted nonce is not the nonce of the current import token"
    default_target = "encryptedNonce"
