"""Signed checkpoints: the instance's audit signing key vouches for the chain up to a seq.

::

    fields  = {"algorithm": "ed25519", "headHash": hex(hash of event seq), "instanceId": ...,
               "issuedAt": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "keyId": fingerprint, "seq": n}
    message = "kyok/audit-checkpoint/v1" || canonical_json(fields)
    signature = Sign(audit signing key, message)       (Ed25519 by default)

``keyId`` is the signing key's fingerprint (hex SHA-256 of its SubjectPublicKeyInfo DER). Because
``headHash`` commits to every earlier event through the chain, one valid checkpoint at ``n``
authenticates events ``0..n``.

Signing goes through the :class:`Signer` protocol, so the crypto unit can hold the private key and
sign without this package importing it; :class:`KeySigner` adapts a plain
:class:`~kyok.crypto.sign.SigningKey` (tests, tools).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from kyok.audit.chain import ChainedEvent, ChainHead, parse_hash
from kyok.audit.event import format_time, parse_time
from kyok.crypto.encoding import b64d, b64e, canonical_json
from kyok.crypto.errors import InvalidSignature
from kyok.crypto.sign import SignatureAlgorithm, SigningKey, VerifyingKey

__all__ = [
    "CHECKPOINT_LABEL",
    "Checkpoint",
    "CheckpointPolicy",
    "KeySigner",
    "Signer",
    "checkpoint_over",
    "make_checkpoint",
]

CHECKPOINT_LABEL: Final = b"kyok/audit-checkpoint/v1"
_FIELDS: Final = frozenset(
    {"instanceId", "seq", "headHash", "issuedAt", "keyId", "algorithm", "signature"}
)


class Signer(Protocol):
    """Whatever holds the audit signing key (the crypto unit, or a :class:`KeySigner`)."""

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``."""
        ...

    def public_key(self) -> VerifyingKey:
        """The key that verifies the signatures."""
        ...


class KeySigner:
    """A :class:`Signer` over a :class:`~kyok.crypto.sign.SigningKey`."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self._public = key.verifying_key()

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the key."""
        return self._key.sign(message)

    def public_key(self) -> VerifyingKey:
        """The matching public key."""
        return self._public

    def __repr__(self) -> str:
        return f"KeySigner(key_id={self._public.fingerprint[:16]}…)"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain of ``instance_id`` had ``head_hash`` at ``seq``".

    Attributes:
        instance_id: the instance.
        seq: the last event it covers.
        head_hash: the chain hash of that event.
        issued_at: when it was signed (the signer's clock).
        key_id: fingerprint of the verifying key.
        algorithm: the signature algorithm (kyok name, e.g. ``ed25519``).
        signature: the signature over :meth:`message`.
    """

    instance_id: str
    seq: int
    head_hash: bytes
    issued_at: datetime
    key_id: str
    algorithm: str
    signature: bytes

    def signed_fields(self) -> dict[str, Any]:
        """The fields the signature covers, as JSON."""
        return {
            "instanceId": self.instance_id,
            "seq": self.seq,
            "headHash": self.head_hash.hex(),
            "issuedAt": format_time(self.issued_at),
            "keyId": self.key_id,
            "algorithm": self.algorithm,
        }

    def message(self) -> bytes:
        """The signed bytes: ``CHECKPOINT_LABEL || canonical_json(signed_fields())``."""
        return CHECKPOINT_LABEL + canonical_json(self.signed_fields())

    def verify(self, key: VerifyingKey) -> None:
        """Check the signature under ``key`` (and that ``key_id``/``algorithm`` name ``key``).

        Raises:
            InvalidSignature: it does not verify under ``key`` (whatever the reason).
        """
        if self.key_id != key.fingerprint or self.algorithm != key.algorithm.value:
            raise InvalidSignature()
        key.verify(self.signature, self.message())

    def to_json(self) -> dict[str, Any]:
        """The signed fields plus ``signature`` (base64)."""
        return {**self.signed_fields(), "signature": b64e(self.signature)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Checkpoint:
        """Parse :meth:`to_json` strictly.

        Raises:
            ValueError: a member is missing, unknown or malformed.
        """
        if not isinstance(obj, Mapping):
            raise ValueError("a checkpoint is an object")
        if set(obj) != _FIELDS:
            raise ValueError("a checkpoint has exactly " + ", ".join(sorted(_FIELDS)))
        seq, instance_id, key_id, algorithm = (
            obj["seq"],
            obj["instanceId"],
            obj["keyId"],
            obj["algorithm"],
        )
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("checkpoint seq must be an integer >= 0")
        if not isinstance(instance_id, str) or not instance_id:
            raise ValueError("checkpoint instanceId must be a string")
        parse_hash(key_id, "keyId")
        if algorithm not in {a.value for a in SignatureAlgorithm}:
            raise ValueError("checkpoint algorithm is not a kyok signature algorithm")
        signature = obj["signature"]
        if not isinstance(signature, str):
            raise ValueError("checkpoint signature must be base64 text")
        return cls(
            instance_id=instance_id,
            seq=seq,
            head_hash=parse_hash(obj["headHash"], "headHash"),
            issued_at=parse_time(obj["issuedAt"], "issuedAt"),
            key_id=key_id,
            algorithm=algorithm,
            signature=b64d(signature),
        )


def make_checkpoint(signer: Signer, last: ChainedEvent, *, issued_at: datetime) -> Checkpoint:
    """Sign a checkpoint over the chain up to and including ``last``.

    Args:
        signer: holds the instance's audit signing key.
        last: the newest event the checkpoint covers.
        issued_at: now (aware), from the caller's clock.
    """
    return checkpoint_over(signer, last.event.instance_id, last.seq, last.hash, issued_at=issued_at)


def checkpoint_over(
    signer: Signer, instance_id: str, seq: int, head_hash: bytes, *, issued_at: datetime
) -> Checkpoint:
    """Sign a checkpoint over ``instance_id``'s chain up to ``seq``, whose hash is ``head_hash``
    (what :func:`make_checkpoint` does, for a writer that holds no :class:`ChainedEvent`).

    Args:
        signer: holds the instance's audit signing key.
        instance_id: the chain's instance.
        seq: the newest event the checkpoint covers.
        head_hash: that event's chain hash.
        issued_at: now (aware), from the caller's clock.
    """
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    key = signer.public_key()
    unsigned = Checkpoint(
        instance_id=instance_id,
        seq=seq,
        head_hash=head_hash,
        issued_at=parse_time(format_time(issued_at)),  # as it will read back
        key_id=key.fingerprint,
        algorithm=key.algorithm.value,
        signature=b"",
    )
    signature = signer.sign(unsigned.message())
    return Checkpoint(
        unsigned.instance_id,
        unsigned.seq,
        unsigned.head_hash,
        unsigned.issued_at,
        unsigned.key_id,
        unsigned.algorithm,
        signature,
    )


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When to sign: after ``every_events`` unsigned events, or ``every_seconds`` after the last
    checkpoint if any event is unsigned, whichever comes first.

    With no checkpoint yet, any event makes one due (there is no earlier time to measure from).
    """

    every_events: int = 1000
    every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.every_events < 1 or self.every_seconds <= 0:
            raise ValueError("every_events must be >= 1 and every_seconds > 0")

    def due(self, last: Checkpoint | None, head: ChainHead, now: datetime) -> bool:
        """True when a checkpoint over ``head`` should be signed now.

        Args:
            last: the newest checkpoint of the chain, or None.
            head: the chain's head.
            now: the current time (aware).
        """
        if head.last_seq is None:
            return False
        signed_through = last.seq if last is not None else -1
        unsigned = head.last_seq - signed_through
        if unsigned <= 0:
            return False
        if last is None or unsigned >= self.every_events:
            return True
        return now - last.issued_at >= timedelta(seconds=self.every_seconds)
