"""The crypto unit's persistent state, rebuilt by replaying its transcript.

Nothing here is secret: admin public keys, thresholds, the command sequence number, and the
master-key *records* (epoch, MKVP, scheme, key check values of the parts and, for Shamir, the
share envelopes, each encrypted under a key only its custodian's part can derive).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from kyok.crypto.encoding import b64d, b64e
from kyok.crypto.sign import VerifyingKey

MAX_ADMINS = 8
MIN_PARTS = 2
MAX_PARTS = 16
GENESIS_HASH = "0" * 64


class Scheme(StrEnum):
    """How a master key is split among custodians."""

    XOR = "xor"  # n-of-n: MK = part_1 xor ... xor part_n (as HPCS)
    SHAMIR = "shamir"  # k-of-n: shares of MK, each in an envelope only its part opens
    DEV = "dev"  # dev seal: random MK kept in a file, no custodians


class Register(StrEnum):
    """The master-key registers a part can be loaded into."""

    NEW = "new"  # volatile: parts of a master key being set up
    PENDING = "pending"  # committed new master key, not yet active
    CURRENT = "current"  # the active master key
    PREVIOUS = "previous"  # the master key being retired by a rotation


@dataclass(frozen=True, slots=True)
class Admin:
    """A crypto-unit administrator: a name and a signature public key."""

    id: str  # fingerprint: hex SHA-256 of the SubjectPublicKeyInfo DER
    name: str
    algorithm: str
    public_key: bytes = field(repr=False)

    def verifying_key(self) -> VerifyingKey:
        return VerifyingKey.from_der(self.public_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "algorithm": self.algorithm,
            "public_key": b64e(self.public_key),
        }


@dataclass(frozen=True, slots=True)
class Envelope:
    """A Shamir share of the master key, encrypted under a key derived from one custodian's part."""

    x: int
    kcv: str
    data: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"x": self.x, "kcv": self.kcv, "data": b64e(self.data)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Envelope:
        return cls(int(obj["x"]), str(obj["kcv"]), b64d(obj["data"]))


@dataclass(frozen=True, slots=True)
class MasterKeyRecord:
    """Public facts about one master key: enough to check it, never enough to rebuild it."""

    epoch: int
    mkvp: str
    scheme: Scheme
    parts: int
    threshold: int
    kcvs: tuple[str, ...] = ()
    envelopes: tuple[Envelope, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "mkvp": self.mkvp,
            "scheme": self.scheme.value,
            "parts": self.parts,
            "threshold": self.threshold,
            "kcvs": list(self.kcvs),
            "envelopes": [e.to_json() for e in self.envelopes],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MasterKeyRecord:
        return cls(
            epoch=int(obj["epoch"]),
            mkvp=str(obj["mkvp"]),
            scheme=Scheme(obj["scheme"]),
            parts=int(obj["parts"]),
            threshold=int(obj["threshold"]),
            kcvs=tuple(str(k) for k in obj.get("kcvs", [])),
            envelopes=tuple(Envelope.from_json(e) for e in obj.get("envelopes", [])),
        )

    def needed(self) -> int:
        """How many parts unseal this master key."""
        return self.threshold


@dataclass(frozen=True, slots=True)
class UnitState:
    """Everything the transcript establishes about a unit."""

    unit_id: str
    instance_id: str
    seal: str
    created_at: str
    admins: tuple[Admin, ...] = ()
    signature_threshold: int = 0  # 0 = imprint mode
    revocation_threshold: int = 0
    seq: int = 0  # sequence number the next command must carry
    current: MasterKeyRecord | None = None
    pending: MasterKeyRecord | None = None
    previous: MasterKeyRecord | None = None
    next_epoch: int = 1
    current_since: int = -1  # transcript entry that made ``current`` current
    new_kcvs: tuple[str, ...] = ()  # KCVs of the signed load_part commands filling the new register
    # (sequence number, principal name, recipient public key) of authorize_admin commands not yet used
    admin_authorizations: tuple[tuple[int, str, bytes], ...] = ()
    n: int = 0  # number of transcript entries applied
    head: str = GENESIS_HASH  # hash of the last entry

    @property
    def imprint(self) -> bool:
        """Imprint mode: thresholds not yet set."""
        return self.signature_threshold == 0

    def admin(self, admin_id: str) -> Admin | None:
        for a in self.admins:
            if a.id == admin_id:
                return a
        return None

    def record(self, register: Register) -> MasterKeyRecord | None:
        if register is Register.CURRENT:
            return self.current
        if register is Register.PENDING:
            return self.pending
        if register is Register.PREVIOUS:
            return self.previous
        return None

    def records(self) -> list[tuple[Register, MasterKeyRecord]]:
        """The persisted master-key records, current first."""
        out = []
        for reg in (Register.CURRENT, Register.PREVIOUS, Register.PENDING):
            rec = self.record(reg)
            if rec is not None:
                out.append((reg, rec))
        return out

    def evolve(self, **changes: Any) -> UnitState:
        return replace(self, **changes)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary (for status output and exports)."""
        return {
            "unit_id": self.unit_id,
            "instance_id": self.instance_id,
            "seal": self.seal,
            "created_at": self.created_at,
            "imprint": self.imprint,
            "admins": [{"id": a.id, "name": a.name, "algorithm": a.algorithm} for a in self.admins],
            "signature_threshold": self.signature_threshold,
            "revocation_threshold": self.revocation_threshold,
            "seq": self.seq,
            "registers": [{"register": reg.value, **rec.to_json()} for reg, rec in self.records()],
            "transcript": {"entries": self.n, "head": self.head},
            "admin_authorizations": [
                {"seq": seq, "principal": name} for seq, name, _ in self.admin_authorizations
            ],
        }
