"""Moving a master-key part into the unit without it ever crossing a wire in the clear.

The unit makes an ephemeral hybrid key pair (ML-KEM-768 + X25519) when it starts; it never
leaves memory. A custodian's tool seals the part to its public key with ``hybrid_seal``,
binding the unit, the sequence number and the target register as associated data, and signs
a ``load_part`` command that names the transport key's fingerprint and the SHA-256 of the
sealed bytes. So the sealed part opens only in that unit process, for that one command.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from kyok.crypto.encoding import lp
from kyok.crypto.kem import HybridPrivateKey, HybridPublicKey, hybrid_open, hybrid_seal
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.keypart import KeyPart

INFO = b"kyok/v1/part-transport"


def _aad(unit_id: str, seq: int, register: str) -> bytes:
    return lp(unit_id.encode(), str(seq).encode(), register.encode())


def sealed_digest(sealed: bytes) -> str:
    """Hex SHA-256 of a sealed part (signed in the ``load_part`` command)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(sealed)
    return digest.finalize().hex()


def seal_part(
    transport: HybridPublicKey, part: KeyPart, *, unit_id: str, seq: int, register: str
) -> bytes:
    """Encrypt a part to the unit's transport key for one load command."""
    return hybrid_seal(transport, part.secret(), aad=_aad(unit_id, seq, register), info=INFO)


def open_part(
    transport: HybridPrivateKey, sealed: bytes, *, unit_id: str, seq: int, register: str
) -> KeyPart:
    """Decrypt a sealed part inside the unit. Raises ``InvalidCiphertext``."""
    return KeyPart(hybrid_open(transport, sealed, aad=_aad(unit_id, seq, register), info=INFO))


def load_part_command(
    *,
    unit_id: str,
    seq: int,
    register: str,
    part: KeyPart,
    transport: HybridPublicKey,
    parts: int | None = None,
) -> tuple[SignedCommand, bytes]:
    """Build the (unsigned) ``load_part`` command for ``part`` and the sealed part it carries.

    Args:
        parts: the number of parts of the new master key (only for register ``new``).
    """
    sealed = seal_part(transport, part, unit_id=unit_id, seq=seq, register=register)
    args: dict[str, object] = {
        "register": register,
        "kcv": part.kcv,
        "transport": transport.fingerprint,
        "sealed_part_sha256": sealed_digest(sealed),
    }
    if parts is not None:
        args["parts"] = parts
    return SignedCommand(unit_id, seq, Command.LOAD_PART, args), sealed
