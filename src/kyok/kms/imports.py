"""Import tokens (Key Protect reference §2.5, §5): how key material enters kyok encrypted.

An instance has at most one token. Creating one makes, inside the crypto unit, an RSA key pair
(4096 bits) and a hybrid ML-KEM-768 + X25519 key pair (kyok's post-quantum extension), sealed
as a blob of purpose ``import-token``, and a random 12-byte nonce. Retrieving the token hands
out the public keys and the nonce and counts down ``remainingRetrievals``. An importer encrypts
its key material to one of the public keys and the nonce under its key material; the unit
opens both, checks the nonce and seals the material as a root-key version: the material never
exists in kyok outside the unit.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization

from kyok.auth.principals import SYSTEM, Principal
from kyok.clock import Clock
from kyok.errors import KyokError, VersionConflict
from kyok.kms.errors import (
    BadBody,
    ImportTokenExpired,
    IncorrectNonce,
    IncorrectNonceIv,
    InstanceNotFound,
    InvalidField,
)
from kyok.kms.events import EventAction, KmsEvent, NullAuditSink
from kyok.kms.ports import AuditSink, KeyUnit, UnitDirectory, UowFactory
from kyok.kms.validation import is_int_in
from kyok.store.ports import UnitOfWork
from kyok.store.records import BlobRecord, ImportTokenRecord
from kyok.unit.blob import PURPOSE_IMPORT_TOKEN, BlobRef, SealedBlob
from kyok.unit.imports import (
    ALGORITHMS,
    ImportAlgorithmUnknown,
    ImportKeyLength,
    ImportNonceMismatch,
    ImportNonceUndecryptable,
    ImportPayloadInvalid,
    WrappedImport,
)

__all__ = [
    "DEFAULT_EXPIRATION",
    "DEFAULT_RETRIEVALS",
    "ImportTokenService",
    "ImportTokenView",
    "WrappedImport",
    "import_with_token",
    "validate_wrapped",
]

#: Token lifetime bounds and default, in seconds.
MIN_EXPIRATION, MAX_EXPIRATION, DEFAULT_EXPIRATION = 300, 86_400, 600
#: Retrieval bounds and default.
MIN_RETRIEVALS, MAX_RETRIEVALS, DEFAULT_RETRIEVALS = 1, 500, 1
NONCE_SIZE = 12
#: An RSA-4096 OAEP ciphertext is 512 bytes; a hybrid seal of 32 bytes is ~1.2 KB.
MAX_PAYLOAD = 4096
MAX_NONCE_FIELD = 256


def _blob_id(token_id: str) -> str:
    return f"import-token:{token_id}"


@dataclass(frozen=True, slots=True)
class ImportTokenView:
    """An import token as callers see it.

    Attributes:
        record: the stored token (public values only).
        public_key_pem: the RSA public key as PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo).
        retrieved: True when this view came from a retrieval (which hands out the keys).
    """

    record: ImportTokenRecord
    public_key_pem: bytes
    retrieved: bool = False

    @property
    def nonce(self) -> bytes:
        """The nonce an importer encrypts under its key material."""
        return self.record.nonce

    @property
    def hybrid_public_key(self) -> bytes:
        """kyok's encoding of the hybrid ML-KEM-768 + X25519 public key."""
        return self.record.hybrid_public_key


def _pem(der: bytes) -> bytes:
    public = serialization.load_der_public_key(der)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _bounded(value: int | None, default: int, low: int, high: int, target: str) -> int:
    if value is None:
        return default
    if not is_int_in(value, low, high):
        raise InvalidField(target, f"must be an integer from {low} to {high}")
    return value


def validate_wrapped(
    payload: bytes | None, encrypted_nonce: bytes | None, iv: bytes | None, algorithm: str | None
) -> WrappedImport:
    """Check the fields of a token import and bundle them.

    ``encryptedNonce`` and ``iv`` come together; the algorithm defaults to
    ``RSAES_OAEP_SHA_256``.

    Raises:
        BadBody: one of ``encryptedNonce``/``iv`` without the other, or no ``payload``.
        InvalidField: an unknown algorithm or an oversized field.
    """
    if encrypted_nonce is None or iv is None:
        raise BadBody("encryptedNonce and iv must be given together to import with a token")
    if not payload:
        raise InvalidField("material", "is required to import with a token")
    chosen = algorithm or "RSAES_OAEP_SHA_256"
    if chosen not in ALGORITHMS:
        raise InvalidField(
            "encryption_algorithm", "must be one of " + ", ".join(sorted(ALGORITHMS))
        )
    if len(payload) > MAX_PAYLOAD:
        raise InvalidField("material", "is too long for an import token payload")
    if not encrypted_nonce or len(encrypted_nonce) > MAX_NONCE_FIELD:
        raise InvalidField("encrypted_nonce", "must be the encrypted 12-byte nonce")
    if not iv or len(iv) > MAX_NONCE_FIELD:
        raise InvalidField("iv", "must be the iv the nonce was encrypted with")
    return WrappedImport(chosen, payload, encrypted_nonce, iv)


def import_with_token(
    uow: UnitOfWork,
    unit: KeyUnit,
    target: BlobRef,
    wrapped: WrappedImport,
    now: datetime,
) -> tuple[SealedBlob, int]:
    """Open key material sent under the instance's import token and seal it as ``target``.

    Args:
        uow: the unit of work of the key change (the token is read through it).
        unit: the instance's crypto unit.
        target: where the new root-key version blob belongs.
        wrapped: the import fields.
        now: the service clock.

    Returns:
        ``(sealed blob, length of the material in bytes)``.

    Raises:
        ImportTokenExpired: no token, or it has expired.
        InvalidField: the payload does not open, or the material is not 16/24/32 bytes.
        IncorrectNonceIv: the nonce was not encrypted under the material.
        IncorrectNonce: it was, but it is not the token's nonce.
    """
    token = uow.import_tokens.get(target.instance_id)
    if token is None:
        raise ImportTokenExpired("no import token exists: create one first")
    if token.expires_at <= now:
        raise ImportTokenExpired()
    row = uow.blobs.get(target.instance_id, _blob_id(token.id))
    if row is None or row.owner_id != token.id or row.purpose != PURPOSE_IMPORT_TOKEN:
        raise ImportTokenExpired("the import token's keys are missing: create a new token")
    sealed = SealedBlob(
        BlobRef(row.instance_id, row.owner_id, row.id, row.purpose), row.mk_epoch, row.data
    )
    try:
        return unit.import_material(sealed, target, wrapped, token.nonce)
    except ImportAlgorithmUnknown:
        raise InvalidField("encryption_algorithm", "is not a supported algorithm") from None
    except ImportPayloadInvalid:
        raise InvalidField(
            "material", "could not be decrypted with the import token's public key"
        ) from None
    except ImportKeyLength:
        raise InvalidField("material", "the key material must be 16, 24 or 32 bytes") from None
    except ImportNonceUndecryptable:
        raise IncorrectNonceIv() from None
    except ImportNonceMismatch:
        raise IncorrectNonce() from None


class ImportTokenService:
    """Creates, hands out and retires the instances' import tokens.

    Args:
        uow_factory: makes units of work.
        units: finds an instance's crypto unit.
        clock: the time source.
        audit: receives one event per change, inside its transaction.
        rsa_bits: size of the RSA keys (4096, as Key Protect; tests may use 2048).
        max_attempts: retries when concurrent retrievals race.
    """

    def __init__(
        self,
        uow_factory: UowFactory,
        units: UnitDirectory,
        clock: Clock,
        *,
        audit: AuditSink | None = None,
        rsa_bits: int = 4096,
        max_attempts: int = 5,
    ) -> None:
        self._uow = uow_factory
        self._units = units
        self._clock = clock
        self._audit: AuditSink = audit or NullAuditSink()
        self._rsa_bits = rsa_bits
        self._max_attempts = max_attempts

    def create(
        self,
        actor: Principal,
        instance_id: str,
        *,
        expiration: int | None = None,
        max_retrievals: int | None = None,
    ) -> ImportTokenView:
        """Make the instance's import token, replacing (and destroying) any earlier one.

        Args:
            actor: who asks.
            instance_id: the instance.
            expiration: lifetime in seconds (300-86,400; default 600).
            max_retrievals: how often it can be retrieved (1-500; default 1).

        Returns:
            The new token (not yet retrieved).

        Raises:
            InvalidField: a bound is broken.
            InstanceNotFound: no such instance.
            UnitSealed: the crypto unit is sealed.
        """
        seconds = _bounded(
            expiration, DEFAULT_EXPIRATION, MIN_EXPIRATION, MAX_EXPIRATION, "expiration"
        )
        retrievals = _bounded(
            max_retrievals, DEFAULT_RETRIEVALS, MIN_RETRIEVALS, MAX_RETRIEVALS, "max_retrievals"
        )
        with self._uow(read_only=True) as uow:
            if uow.instances.get(instance_id) is None:
                raise InstanceNotFound()
        unit = self._units.for_instance(instance_id)
        token_id = str(uuid.uuid4())
        ref = BlobRef(instance_id, token_id, _blob_id(token_id), PURPOSE_IMPORT_TOKEN)
        # Key generation takes a while (RSA-4096): outside any transaction.
        sealed, public = unit.new_import_keys(ref, self._rsa_bits)
        now = self._clock.now()
        record = ImportTokenRecord(
            instance_id=instance_id,
            id=token_id,
            created_at=now,
            created_by=actor.id,
            expires_at=now + timedelta(seconds=seconds),
            max_retrievals=retrievals,
            remaining_retrievals=retrievals,
            nonce=os.urandom(NONCE_SIZE),
            public_key=public.rsa_spki_der,
            hybrid_public_key=public.hybrid,
        )
        with self._uow() as uow:
            old = uow.import_tokens.get(instance_id)
            if old is not None:
                uow.blobs.delete_for_owner(instance_id, old.id)
            uow.import_tokens.put(record)
            uow.blobs.add(
                BlobRecord(instance_id, token_id, ref.id, ref.purpose, sealed.epoch, sealed.data)
            )
            self._audit.record(
                uow,
                KmsEvent(
                    EventAction.IMPORT_TOKEN_CREATE,
                    instance_id,
                    token_id,
                    actor.id,
                    now,
                    detail=(
                        ("expiration", str(seconds)),
                        ("max_retrievals", str(retrievals)),
                        ("replaced", old.id if old is not None else ""),
                    ),
                ),
            )
            uow.commit()
        return ImportTokenView(record, _pem(record.public_key))

    def retrieve(self, actor: Principal, instance_id: str) -> ImportTokenView:
        """Hand out the token's public keys and nonce, counting one retrieval.

        Raises:
            ImportTokenExpired: no token, it expired, or no retrievals are left (409).
        """
        for attempt in range(self._max_attempts):
            now = self._clock.now()
            with self._uow() as uow:
                token = uow.import_tokens.get(instance_id)
                if token is None:
                    raise ImportTokenExpired("no import token exists: create one first")
                if token.expires_at <= now:
                    raise ImportTokenExpired()
                if token.remaining_retrievals <= 0:
                    raise ImportTokenExpired("the import token has no retrievals left")
                try:
                    stored = uow.import_tokens.update(
                        replace(token, remaining_retrievals=token.remaining_retrievals - 1),
                        token.row_version,
                    )
                    self._audit.record(
                        uow,
                        KmsEvent(
                            EventAction.IMPORT_TOKEN_RETRIEVE,
                            instance_id,
                            token.id,
                            actor.id,
                            now,
                            detail=(("remaining_retrievals", str(stored.remaining_retrievals)),),
                        ),
                    )
                    uow.commit()
                except VersionConflict:
                    if attempt + 1 == self._max_attempts:
                        raise
                    continue
            return ImportTokenView(stored, _pem(stored.public_key), retrieved=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def expire_due(self, now: datetime | None = None, *, batch: int = 100) -> int:
        """Remove expired tokens and destroy their private keys (scheduler job).

        Returns:
            How many tokens were removed.
        """
        when = now or self._clock.now()
        with self._uow(read_only=True) as uow:
            due = uow.import_tokens.expired(when, batch)
        removed = 0
        for token in due:
            try:
                with self._uow() as uow:
                    current = uow.import_tokens.get(token.instance_id)
                    if current is None or current.id != token.id or current.expires_at > when:
                        continue
                    uow.import_tokens.delete(token.instance_id)
                    uow.blobs.delete_for_owner(token.instance_id, token.id)
                    self._audit.record(
                        uow,
                        KmsEvent(
                            EventAction.IMPORT_TOKEN_EXPIRE,
                            token.instance_id,
                            token.id,
                            SYSTEM.id,
                            when,
                        ),
                    )
                    uow.commit()
                    removed += 1
            except KyokError:
                continue  # changed meanwhile: the next run sees it again
        return removed
