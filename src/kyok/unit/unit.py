"""The crypto unit: kyok's HSM boundary, the only code that holds master keys and key material.

A unit belongs to one instance. Its persistent state is rebuilt from its ceremony transcript
(:mod:`kyok.unit.transcript`); its secrets live only in this object's memory:

* master keys by epoch (the *current* one, a committed *pending* one, the *previous* one while a
  rotation re-encrypts), and the key-encryption AEADs derived from them;
* the volatile *new* register, filling with parts during a ceremony;
* parts loaded towards unsealing a persisted master key;
* an ephemeral hybrid transport key for receiving parts; a bounded cache of key handles.

Register life cycle (MKVP shown at each step by :meth:`CryptoUnit.status`)::

    new:      empty -> partial -> full (uncommitted) --commit--> pending (committed)
    pending:  --activate--> current            (first master key)
              --activate--> current, old current -> previous, then re-encryption  (rotation)
    previous: --re-encryption done--> retired

**Tamper evidence.** Whoever can write the database can rewrite the transcript, for instance to
slip in an administrator of their own. So every entry the unit writes while it holds the
current master key carries a MAC under a key derived from it, and when the current master key
becomes available (auto-unseal or the last custodian's part) the unit checks that the newest
MAC of the current epoch verifies, comes after the activation of that key, and that everything
after it is a signed command. Otherwise it refuses to unseal (:class:`UnitTampered`). An
operator can still roll the database back to an older authentic state; see docs/ceremony.md.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ed25519

from kyok.clock import Clock
from kyok.crypto import shamir
from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.encoding import lp
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kdf import hkdf_sha256
from kyok.crypto.kem import HybridPrivateKey, HybridPublicKey
from kyok.crypto.mkvp import mkvp as compute_mkvp
from kyok.crypto.sign import SigningKey, VerifyingKey
from kyok.crypto.xorsplit import xor_bytes
from kyok.errors import AlreadyExists, Forbidden, VersionConflict
from kyok.unit import blob, ceremony, imports
from kyok.unit.blob import BlobRef, SealedBlob
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.errors import (
    BlobCorrupt,
    CeremonyRejected,
    MasterKeyMismatch,
    UnitNotFound,
    UnitSealed,
    UnitTampered,
)
from kyok.unit.handles import STANDARD_KEY_EXPORT, ExportAccess, HandleCache, KeyHandle, Liveness
from kyok.unit.imports import ImportPublicKeys, WrappedImport
from kyok.unit.ports import StoredTranscriptEntry, UnitStateStore
from kyok.unit.seal import SealProvider
from kyok.unit.state import GENESIS_HASH, Envelope, MasterKeyRecord, Register, Scheme, UnitState
from kyok.unit.transcript import TranscriptEntry, check_mac, entry_hash, mac_key, make_entry, replay
from kyok.unit.transport import open_part, sealed_digest

log = logging.getLogger("kyok.unit")

ENVELOPE_INFO = b"kyok/v1/share-envelope/"
SECRET_INFO = b"kyok/v1/unit-secret/"
TRANSCRIPT_FORMAT = "kyok-transcript/1"
MAX_MATERIAL = 8192


def _envelope_aead(part: bytes, unit_id: str, epoch: int) -> DerivedKeyAead:
    return DerivedKeyAead(
        hkdf_sha256(part, info=ENVELOPE_INFO + f"{unit_id}/{epoch}".encode(), length=32)
    )


def _envelope_aad(unit_id: str, epoch: int, x: int) -> bytes:
    return lp(unit_id.encode(), str(epoch).encode(), str(x).encode())


@dataclass(frozen=True, slots=True)
class _Blob:
    instance_id: str
    owner_id: str
    id: str
    purpose: str
    mk_epoch: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Rewrite:
    id: str
    old_epoch: int
    new_epoch: int
    data: bytes = field(repr=False)


@dataclass
class _NewRegister:
    """The volatile new-master-key register."""

    parts_total: int
    parts: list[bytes] = field(default_factory=list, repr=False)
    kcvs: list[str] = field(default_factory=list)
    loaded_by: set[str] = field(default_factory=set)

    @property
    def full(self) -> bool:
        return len(self.parts) == self.parts_total


@dataclass
class _UnsealBuffer:
    """Parts (XOR) or shares (Shamir) loaded towards one persisted master key."""

    values: dict[str, bytes] = field(default_factory=dict, repr=False)  # kcv -> part or share bytes
    loaded_by: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class RegisterStatus:
    """One register as a custodian sees it."""

    register: str
    state: str  # empty | partial | full | committed | active | retiring
    epoch: int | None = None
    mkvp: str | None = None
    scheme: str | None = None
    loaded: int = 0
    needed: int = 0
    kcvs: tuple[str, ...] = ()
    in_memory: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "register": self.register,
            "state": self.state,
            "epoch": self.epoch,
            "mkvp": self.mkvp,
            "scheme": self.scheme,
            "loaded": self.loaded,
            "needed": self.needed,
            "kcvs": list(self.kcvs),
            "in_memory": self.in_memory,
        }


@dataclass(frozen=True)
class UnitStatus:
    """A snapshot of a unit for display: no secrets."""

    state: UnitState
    sealed: bool
    registers: tuple[RegisterStatus, ...]
    transport_fingerprint: str
    rotation_remaining: int | None

    def to_json(self) -> dict[str, Any]:
        out = self.state.summary()
        out["sealed"] = self.sealed
        out["registers"] = [r.to_json() for r in self.registers]
        out["transport_fingerprint"] = self.transport_fingerprint
        out["rotation_remaining"] = self.rotation_remaining
        return out


@dataclass
class _Outcome:
    """What executing a command will do, computed before anything is written."""

    result: dict[str, Any] = field(default_factory=dict)
    install: dict[int, bytes] = field(
        default_factory=dict, repr=False
    )  # master keys that become available
    apply: Callable[[], None] = lambda: None  # volatile changes, run after the entry is durable
    unsealed: bool = False  # the current master key became available: write an "unsealed" event


class CryptoUnit:
    """One instance's crypto unit. Create with :meth:`create`, load with :meth:`open`."""

    def __init__(
        self,
        store: UnitStateStore,
        state: UnitState,
        seal: SealProvider,
        clock: Clock,
        *,
        cache_size: int = 100_000,
    ) -> None:
        if seal.kind != state.seal:
            raise ValueError(f"unit {state.unit_id} uses the {state.seal} seal, not {seal.kind}")
        self._store = store
        self._state = state
        self._seal = seal
        self._clock = clock
        self._lock = threading.RLock()
        self._rotation_lock = threading.Lock()
        self._mk: dict[int, bytes] = {}
        self._kek: dict[int, DerivedKeyAead] = {}
        self._new: _NewRegister | None = None
        self._unseal: dict[int, _UnsealBuffer] = {}
        self._transport = HybridPrivateKey.generate()
        self._transport_public = self._transport.public_key()
        self._live = Liveness()
        self._cache = HandleCache(cache_size)
        self._tampered: str | None = None
        self._secret: bytes | None = None
        self._derived: dict[str, Any] = {}
        # Called (with the unit's lock possibly held: it must only queue work) after the
        # transcript or the set of loaded master keys changed (sealed=True: seal() was called),
        # and after a key's handles were dropped; the node link uses them to keep a node's
        # worker processes in step.
        self.on_change: Callable[[CryptoUnit, bool], None] | None = None
        self.on_forget: Callable[[CryptoUnit, str], None] | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        store: UnitStateStore,
        *,
        instance_id: str,
        seal: SealProvider,
        clock: Clock,
        unit_id: str | None = None,
        cache_size: int = 100_000,
    ) -> CryptoUnit:
        """Create a new unit in imprint mode (no administrators, no master key)."""
        import uuid

        uid = unit_id or str(uuid.uuid4())
        body = {
            "n": 0,
            "prev": GENESIS_HASH,
            "time": _rfc3339(clock),
            "unit": uid,
            "type": ceremony.ENTRY_INIT,
            "instance": instance_id,
            "seal": seal.kind,
            "format": TRANSCRIPT_FORMAT,
        }
        entry = make_entry(body)
        state = ceremony.apply(None, body, entry.hash)
        store.create_unit(uid, instance_id, [entry])
        return cls(store, state, seal, clock, cache_size=cache_size)

    @classmethod
    def open(
        cls,
        store: UnitStateStore,
        unit_id: str,
        seals: Mapping[str, SealProvider],
        clock: Clock,
        *,
        cache_size: int = 100_000,
    ) -> CryptoUnit:
        """Load a unit from its transcript; unseal it if its seal provider can.

        Raises:
            UnitNotFound: no such unit.
            UnitTampered: the transcript breaks a rule, or fails the master-key MAC check.
        """
        entries = store.transcript(unit_id)
        if not entries:
            raise UnitNotFound(f"no crypto unit {unit_id}")
        try:
            state = replay(entries)
        except CeremonyRejected as exc:
            raise UnitTampered(
                f"the transcript of unit {unit_id} does not verify: {exc.message}"
            ) from None
        seal = seals.get(state.seal)
        if seal is None:
            raise UnitSealed(
                f"unit {unit_id} needs the {state.seal} seal provider, which this node does not have"
            )
        unit = cls(store, state, seal, clock, cache_size=cache_size)
        unit._auto_unseal(entries)
        return unit

    def _auto_unseal(self, entries: list[StoredTranscriptEntry]) -> None:
        state = self._state
        recovered: dict[int, bytes] = {}
        for _register, record in state.records():
            mk = self._seal.recover(state.unit_id, record.epoch)
            if mk is not None:
                recovered[record.epoch] = mk
        checked = self._checked_keys(state, recovered, f"the {self._seal.kind} seal", entries)
        for epoch, mk in (checked or {}).items():
            self._install(epoch, mk)

    def _checked_keys(
        self,
        state: UnitState,
        keys: Mapping[int, bytes],
        source: str,
        entries: list[StoredTranscriptEntry] | None = None,
    ) -> dict[int, bytes] | None:
        """The master keys of ``keys`` whose epoch the transcript records with a matching MKVP
        (``source`` names where a wrong one came from, in the log); None, and the unit marked
        tampered, when the current one is among them but the transcript fails the MAC check
        (§3.4 of docs/architecture.md). ``entries``: the stored transcript, if already read."""
        records = {record.epoch: record for _reg, record in state.records()}
        good: dict[int, bytes] = {}
        for epoch, mk in keys.items():
            record = records.get(epoch)
            if record is None:
                continue
            if compute_mkvp(mk) != record.mkvp:
                log.error(
                    "%s gave a wrong master key for epoch %d of unit %s",
                    source,
                    epoch,
                    state.unit_id,
                )
                continue
            good[epoch] = mk
        current = state.current
        if current is not None and current.epoch in good:
            if entries is None:
                entries = self._store.transcript(state.unit_id)
            try:
                self._authenticate(entries, state, good[current.epoch])
            except UnitTampered as exc:
                log.error("unit %s stays sealed: %s", state.unit_id, exc.message)
                self._tampered = exc.message
                return None
        return good

    # ------------------------------------------------------------------ properties

    @property
    def unit_id(self) -> str:
        return self._state.unit_id

    @property
    def instance_id(self) -> str:
        return self._state.instance_id

    @property
    def state(self) -> UnitState:
        """The unit's current (public) state."""
        return self._state

    @property
    def sealed(self) -> bool:
        """True unless the current master key is loaded."""
        current = self._state.current
        return current is None or current.epoch not in self._kek

    def transport_public_key(self) -> HybridPublicKey:
        """The ephemeral public key custodians seal their parts to."""
        return self._transport_public

    def status(self) -> UnitStatus:
        """Registers with their MKVPs, seal state and rotation progress."""
        with self._lock:
            state = self._state
            regs: list[RegisterStatus] = []
            new = self._new
            if new is None:
                regs.append(RegisterStatus("new", "empty"))
            else:
                mkvp = compute_mkvp(xor_bytes(*new.parts)) if new.full else None
                regs.append(
                    RegisterStatus(
                        "new",
                        "full" if new.full else "partial",
                        mkvp=mkvp,
                        loaded=len(new.parts),
                        needed=new.parts_total,
                        kcvs=tuple(new.kcvs),
                    )
                )
            names = {
                Register.CURRENT: "active",
                Register.PENDING: "committed",
                Register.PREVIOUS: "retiring",
            }
            for register, record in state.records():
                buffer = self._unseal.get(record.epoch)
                regs.append(
                    RegisterStatus(
                        register.value,
                        names[register],
                        epoch=record.epoch,
                        mkvp=record.mkvp,
                        scheme=record.scheme.value,
                        loaded=record.threshold
                        if record.epoch in self._mk
                        else len(buffer.values)
                        if buffer
                        else 0,
                        needed=record.threshold,
                        kcvs=record.kcvs,
                        in_memory=record.epoch in self._mk,
                    )
                )
            remaining = None
            if state.previous is not None:
                remaining = self._store.count_blobs_at_epoch(
                    state.instance_id, state.previous.epoch
                )
            return UnitStatus(
                state, self.sealed, tuple(regs), self._transport_public.fingerprint, remaining
            )

    # ------------------------------------------------------------------ ceremony

    def submit(self, command: SignedCommand, *, sealed_part: bytes | None = None) -> dict[str, Any]:
        """Verify and execute a signed ceremony command; return its result.

        The command is checked (unit, sequence number, signatures, thresholds, rules, and for
        register operations the volatile registers) *before* anything is written; a refused
        command changes nothing.

        Raises:
            CeremonyRejected: any refusal (a subclass says more, e.g. MasterKeyMismatch).
            UnitSealed: the command needs a master key that is not loaded.
            UnitTampered: the last part unsealed a master key whose transcript MAC fails.
        """
        with self._lock:
            if self._tampered is not None:
                raise UnitTampered(self._tampered)
            state = self._state
            if command.unit_id != state.unit_id:
                raise CeremonyRejected("the command was made for another unit")
            if command.seq != state.seq:
                raise CeremonyRejected(
                    f"sequence number {command.seq} is not the unit's next ({state.seq}): "
                    "the command is stale, replayed or out of order"
                )
            signers = ceremony.verify_signatures(
                state, command.command, command.seq, command.args, command.signatures_json()
            )
            if sealed_part is not None and command.command != Command.LOAD_PART:
                raise CeremonyRejected("only load_part carries a sealed part")
            outcome = self._prepare(state, command, signers, sealed_part)
            body: dict[str, Any] = {
                "n": state.n,
                "prev": state.head,
                "time": _rfc3339(self._clock),
                "unit": state.unit_id,
                "type": ceremony.ENTRY_COMMAND,
                "seq": command.seq,
                "command": command.command,
                "args": dict(command.args),
                "signatures": command.signatures_json(),
                "result": outcome.result,
            }
            h = entry_hash(body)
            new_state = ceremony.apply(state, body, h)
            mks_after = {**self._mk, **outcome.install}
            entries = [make_entry(body, self._mac_for(new_state, mks_after))]
            if outcome.unsealed:
                ev = self._event_body(
                    new_state, ceremony.EVENT_UNSEALED, {"epochs": sorted(outcome.install)}
                )
                eh = entry_hash(ev)
                new_state = ceremony.apply(new_state, ev, eh)
                entries.append(make_entry(ev, self._mac_for(new_state, mks_after)))
            self._append(entries)
            self._state = new_state
            for epoch, mk in outcome.install.items():
                self._install(epoch, mk)
            outcome.apply()
            return outcome.result

    def _prepare(
        self, state: UnitState, command: SignedCommand, signers: list[str], sealed: bytes | None
    ) -> _Outcome:
        name = command.command
        if name == Command.LOAD_PART:
            return self._prepare_load(state, command, signers, sealed)
        if name == Command.COMMIT:
            return self._prepare_commit(state, command)
        if name == Command.ACTIVATE:
            return self._prepare_activate(state)
        if name == Command.CLEAR_NEW:
            return self._prepare_clear(state)
        return _Outcome()

    def _prepare_load(
        self, state: UnitState, cmd: SignedCommand, signers: list[str], sealed: bytes | None
    ) -> _Outcome:
        args = cmd.args
        if sealed is None:
            raise CeremonyRejected("load_part needs the sealed part")
        if state.imprint:
            raise CeremonyRejected(
                "load_part is refused in imprint mode: set the signature thresholds first"
            )
        if args.get("transport") != self._transport_public.fingerprint:
            raise CeremonyRejected(
                "the part was sealed for another transport key (another unit process): fetch the transport key again"
            )
        if sealed_digest(sealed) != args.get("sealed_part_sha256"):
            raise CeremonyRejected("the sealed part is not the one the signature covers")
        try:
            register = Register(str(args.get("register")))
        except ValueError:
            raise CeremonyRejected("register must be new, current, pending or previous") from None
        try:
            part = open_part(
                self._transport, sealed, unit_id=state.unit_id, seq=cmd.seq, register=register.value
            )
        except InvalidCiphertext:
            raise CeremonyRejected("the sealed part does not open in this unit") from None
        if part.kcv != args.get("kcv"):
            raise CeremonyRejected("the part's check value is not the one that was signed")
        if register is Register.NEW:
            return self._prepare_load_new(cmd, signers, part.secret(), part.kcv)
        return self._prepare_load_persisted(state, register, signers, part.secret(), part.kcv)

    def _prepare_load_new(
        self, cmd: SignedCommand, signers: list[str], secret: bytes, kcv: str
    ) -> _Outcome:
        parts_total = cmd.args.get("parts")
        if not isinstance(parts_total, int) or isinstance(parts_total, bool):
            raise CeremonyRejected("loading the new register needs the number of parts")
        reg = self._new
        if reg is not None:
            if reg.parts_total != parts_total:
                raise CeremonyRejected(
                    f"the new register is being filled with {reg.parts_total} parts, not {parts_total}"
                )
            if reg.full:
                raise CeremonyRejected("the new register is full: commit it or clear it")
            if kcv in reg.kcvs:
                raise CeremonyRejected("that part is loaded already")
            if reg.loaded_by & set(signers):
                raise CeremonyRejected(
                    "each custodian loads one part: this administrator has loaded one already"
                )
        loaded = (len(reg.parts) if reg else 0) + 1
        result: dict[str, Any] = {
            "register": "new",
            "kcv": kcv,
            "loaded": loaded,
            "parts": parts_total,
        }
        if loaded == parts_total and reg is not None:
            result["mkvp"] = compute_mkvp(xor_bytes(*reg.parts, secret))

        def apply() -> None:
            target = self._new if self._new is not None else _NewRegister(parts_total)
            target.parts.append(secret)
            target.kcvs.append(kcv)
            target.loaded_by.update(signers)
            self._new = target

        return _Outcome(result=result, apply=apply)

    def _prepare_load_persisted(
        self, state: UnitState, register: Register, signers: list[str], secret: bytes, kcv: str
    ) -> _Outcome:
        record = state.record(register)
        if record is None:
            raise CeremonyRejected(f"there is no {register.value} master key to load a part into")
        if record.epoch in self._mk:
            raise CeremonyRejected(f"the {register.value} master key is loaded already")
        if kcv not in record.kcvs:
            raise CeremonyRejected(f"that part does not belong to the {register.value} master key")
        buffer = self._unseal.get(record.epoch) or _UnsealBuffer()
        if kcv in buffer.values:
            raise CeremonyRejected("that part is loaded already")
        if buffer.loaded_by & set(signers):
            raise CeremonyRejected(
                "each custodian loads one part: this administrator has loaded one already"
            )
        if record.scheme is Scheme.SHAMIR:
            envelope = next((e for e in record.envelopes if e.kcv == kcv), None)
            if envelope is None:
                raise UnitTampered("the share envelope of that part is missing")
            try:
                value = _envelope_aead(secret, state.unit_id, record.epoch).decrypt(
                    envelope.data, _envelope_aad(state.unit_id, record.epoch, envelope.x)
                )
            except InvalidCiphertext:
                raise UnitTampered(
                    "the share envelope of that part does not open: the stored record was altered"
                ) from None
        else:
            value = secret
        values = {**buffer.values, kcv: value}
        result: dict[str, Any] = {
            "register": register.value,
            "kcv": kcv,
            "loaded": len(values),
            "needed": record.threshold,
        }
        outcome = _Outcome(result=result)
        if len(values) >= record.threshold:
            if record.scheme is Scheme.SHAMIR:
                mk = shamir.combine([shamir.Share.from_bytes(v) for v in values.values()])
            else:
                mk = xor_bytes(*values.values())
            if compute_mkvp(mk) != record.mkvp:
                raise MasterKeyMismatch(
                    f"the loaded parts assemble a master key with MKVP {compute_mkvp(mk)}, "
                    f"not the {register.value} master key's {record.mkvp}"
                )
            if register is Register.CURRENT:
                try:
                    self._authenticate(self._store.transcript(state.unit_id), state, mk)
                except UnitTampered as exc:
                    self._tampered = exc.message
                    raise
                outcome.unsealed = True
            outcome.install = {record.epoch: mk}
            result["mkvp"] = record.mkvp
            result["unsealed"] = True

            def finish() -> None:
                self._unseal.pop(record.epoch, None)

            outcome.apply = finish
        else:

            def keep() -> None:
                buf = self._unseal.setdefault(record.epoch, _UnsealBuffer())
                buf.values[kcv] = value
                buf.loaded_by.update(signers)

            outcome.apply = keep
        return outcome

    def _prepare_commit(self, state: UnitState, cmd: SignedCommand) -> _Outcome:
        reg = self._new
        if reg is None or not reg.full:
            loaded = len(reg.parts) if reg else 0
            total = reg.parts_total if reg else "?"
            raise CeremonyRejected(
                f"the new register is not full ({loaded} of {total} parts): load every part first"
            )
        mk = xor_bytes(*reg.parts)
        actual = compute_mkvp(mk)
        expected = cmd.args.get("mkvp")
        if actual != expected:
            raise MasterKeyMismatch(
                f"the new register holds the master key with MKVP {actual}, not {expected}"
            )
        if state.pending is not None:
            raise CeremonyRejected(
                "a committed master key waits for activation; activate or clear it first"
            )
        scheme_name = cmd.args.get("scheme")
        threshold = cmd.args.get("threshold")
        if scheme_name not in (Scheme.XOR.value, Scheme.SHAMIR.value) or not isinstance(
            threshold, int
        ):
            raise CeremonyRejected("commit needs scheme xor or shamir and a threshold")
        epoch = state.next_epoch
        kcvs = tuple(reg.kcvs)
        envelopes: tuple[Envelope, ...] = ()
        if scheme_name == Scheme.SHAMIR.value:
            if not (2 <= threshold <= reg.parts_total):
                raise CeremonyRejected(f"a shamir threshold is between 2 and {reg.parts_total}")
            shares = shamir.split(mk, threshold, reg.parts_total)
            envelopes = tuple(
                Envelope(
                    share.x,
                    kcvs[i],
                    _envelope_aead(reg.parts[i], state.unit_id, epoch).encrypt(
                        share.to_bytes(), _envelope_aad(state.unit_id, epoch, share.x)
                    ),
                )
                for i, share in enumerate(shares)
            )
        elif threshold != reg.parts_total:
            raise CeremonyRejected(
                f"an xor master key needs all {reg.parts_total} parts: threshold must be {reg.parts_total}"
            )
        record = MasterKeyRecord(
            epoch, actual, Scheme(scheme_name), reg.parts_total, threshold, kcvs, envelopes
        )

        def apply() -> None:
            self._new = None
            self._seal.store(state.unit_id, epoch, mk)

        return _Outcome(result={"record": record.to_json()}, install={epoch: mk}, apply=apply)

    def _prepare_activate(self, state: UnitState) -> _Outcome:
        pending = state.pending
        if pending is None:
            raise CeremonyRejected("there is no committed master key to activate")
        if pending.epoch not in self._mk:
            raise UnitSealed("the committed master key is not loaded: load its parts first")
        if state.current is not None:
            if state.previous is not None:
                raise CeremonyRejected(
                    "a master-key rotation is still re-encrypting; wait for it to finish"
                )
            if state.current.epoch not in self._mk:
                raise UnitSealed("rotating needs the current master key: unseal the unit first")
        return _Outcome(result={"epoch": pending.epoch, "rotation": state.current is not None})

    def _prepare_clear(self, state: UnitState) -> _Outcome:
        pending = state.pending
        result = {
            "cleared_new": self._new is not None,
            "discarded_pending": pending.mkvp if pending else None,
        }

        def apply() -> None:
            self._new = None
            if pending is not None:
                self._mk.pop(pending.epoch, None)
                self._kek.pop(pending.epoch, None)
                self._unseal.pop(pending.epoch, None)
                self._seal.forget(state.unit_id, pending.epoch)

        return _Outcome(result=result, apply=apply)

    # ------------------------------------------------------------------ dev bootstrap

    def bootstrap_dev(self) -> str:
        """Give a dev-sealed unit a random master key without a ceremony; returns its MKVP.

        Raises:
            CeremonyRejected: the unit is not dev-sealed, or has a master key already.
        """
        with self._lock:
            state = self._state
            if state.seal != "dev":
                raise CeremonyRejected(
                    "only a dev-sealed unit gets a master key without a ceremony"
                )
            if state.current is not None:
                return state.current.mkvp
            mk = os.urandom(32)
            record = MasterKeyRecord(state.next_epoch, compute_mkvp(mk), Scheme.DEV, 0, 0)
            body = self._event_body(
                state, ceremony.EVENT_DEV_MASTER_KEY, {"record": record.to_json()}
            )
            new_state = ceremony.apply(state, body, entry_hash(body))
            self._seal.store(state.unit_id, record.epoch, mk)
            self._append([make_entry(body, (record.epoch, mac_key(mk, state.unit_id)))])
            self._state = new_state
            self._install(record.epoch, mk)
            return record.mkvp

    # ------------------------------------------------------------------ sealing

    def seal(self) -> None:
        """Forget every master key and everything derived from it (handles die at once)."""
        self._seal_keys()
        self._changed(sealed=True)

    def _seal_keys(self) -> None:
        with self._lock:
            self._live.alive = False
            self._live = Liveness()
            self._cache.clear()
            self._mk.clear()
            self._kek.clear()
            self._new = None
            self._unseal.clear()
            self._secret = None
            self._derived.clear()

    @property
    def tampered(self) -> str | None:
        """Why the unit refuses to unseal (its transcript failed the MAC check), or None."""
        return self._tampered

    def require_unsealed(self) -> None:
        """Raise :class:`UnitSealed` unless the current master key is loaded."""
        if self._tampered is not None:
            raise UnitTampered(self._tampered)
        if self.sealed:
            if self._state.current is None:
                raise UnitSealed("the crypto unit has no master key yet: run the key ceremony")
            raise UnitSealed()

    # ------------------------------------------------------------------ key blobs

    def generate_blob(self, ref: BlobRef, length: int = 32) -> SealedBlob:
        """Generate ``length`` random bytes of key material inside the unit and seal them."""
        if not (1 <= length <= MAX_MATERIAL):
            raise ValueError("key material length out of range")
        return self.seal_material(ref, os.urandom(length))

    def seal_material(self, ref: BlobRef, material: bytes) -> SealedBlob:
        """Seal key material under the current master key, bound to ``ref``."""
        if not (1 <= len(material) <= MAX_MATERIAL):
            raise ValueError("key material length out of range")
        self.require_unsealed()
        current = self._state.current
        assert current is not None
        kek = self._kek.get(current.epoch)
        if kek is None:
            raise UnitSealed()
        return blob.seal(kek, current.epoch, ref, material)

    def _open(self, sealed: SealedBlob) -> bytes:
        try:
            epoch = blob.epoch_of(sealed.data)
        except ValueError:
            raise BlobCorrupt(f"blob {sealed.ref.id} is not a kyok blob") from None
        kek = self._kek.get(epoch)
        if kek is None:
            known = {rec.epoch for _, rec in self._state.records()}
            if epoch in known:
                raise UnitSealed()
            raise BlobCorrupt(
                f"blob {sealed.ref.id} was sealed by an unknown master key (epoch {epoch})"
            )
        try:
            return blob.open_(kek, sealed.ref, sealed.data)
        except InvalidCiphertext:
            raise BlobCorrupt(f"blob {sealed.ref.id} does not open: altered or misplaced") from None

    def handle(self, sealed: SealedBlob) -> KeyHandle:
        """A cached handle to wrap and unwrap DEKs under a root-key version."""
        if sealed.ref.purpose != blob.PURPOSE_ROOT_KEY:
            raise ValueError("only root-key blobs have handles")
        cached = self._cache.get(sealed.ref.id)
        if cached is not None and cached.ref == sealed.ref:
            return cached
        self.require_unsealed()
        with self._lock:
            handle = KeyHandle(sealed.ref, self._open(sealed), self._live)
            self._cache.put(handle)
            return handle

    # ------------------------------------------------------------------ key import (BYOK)

    def new_import_keys(
        self, ref: BlobRef, rsa_bits: int = 4096
    ) -> tuple[SealedBlob, ImportPublicKeys]:
        """Make the key pairs of a new import token inside the unit.

        Returns:
            The private keys sealed as a blob bound to ``ref`` (kyok-import-key-v1 material),
            and the public keys to hand out.

        Raises:
            ValueError: ``ref.purpose`` is not ``import-token``, or a bad ``rsa_bits``.
            UnitSealed: the unit is sealed.
        """
        if ref.purpose != blob.PURPOSE_IMPORT_TOKEN:
            raise ValueError("import keys are sealed as import-token blobs")
        self.require_unsealed()
        material, public = imports.generate_import_keys(rsa_bits)
        return self.seal_material(ref, material), public

    def import_material(
        self, token: SealedBlob, target: BlobRef, wrapped: WrappedImport, nonce: bytes
    ) -> tuple[SealedBlob, int]:
        """Check key material sent with an import token and seal it as a root key.

        The material never leaves the unit: the caller gets the sealed blob and its length.

        Args:
            token: the import token's blob (purpose ``import-token``).
            target: where the root key version goes (purpose ``root-key``).
            wrapped: ``payload``, ``encryptedNonce``, ``iv``, ``encryptionAlgorithm`` (decoded).
            nonce: the token's nonce.

        Returns:
            ``(sealed root-key blob, length of the key material)``.

        Raises:
            ImportRejected: a subclass per failed check (see :func:`imports.open_import`).
            ValueError: wrong purposes, or a bad ``nonce``.
            UnitSealed: the unit is sealed.
            BlobCorrupt: the token blob does not open or holds no import keys.
        """
        if token.ref.purpose != blob.PURPOSE_IMPORT_TOKEN:
            raise ValueError("the token must be an import-token blob")
        if target.purpose != blob.PURPOSE_ROOT_KEY:
            raise ValueError("imported material is sealed as a root-key blob")
        self.require_unsealed()
        try:
            keys = imports.ImportPrivateKeys.from_material(self._open(token))
        except ValueError:
            raise BlobCorrupt(f"blob {token.ref.id} holds no import-token keys") from None
        material = imports.open_import_with(keys, wrapped, nonce)
        return self.seal_material(target, material), len(material)

    def export_material(self, sealed: SealedBlob, access: ExportAccess) -> bytes:
        """The material of a standard (extractable) key. Root-key material never leaves."""
        if access is not STANDARD_KEY_EXPORT or sealed.ref.purpose != blob.PURPOSE_STANDARD_KEY:
            raise Forbidden("only standard-key material can be exported")
        self.require_unsealed()
        return self._open(sealed)

    def forget(self, owner_id: str, *, propagate: bool = True) -> None:
        """Drop and revoke the cached handles of a key (call on every state change).

        Args:
            owner_id: the key.
            propagate: tell :attr:`on_forget` (False when the news came from another worker).
        """
        self._cache.forget(owner_id)
        if propagate and self.on_forget is not None:
            self.on_forget(self, owner_id)

    # ------------------------------------------------------------------ sharing with workers

    def shared_keys(self) -> tuple[int, dict[int, bytes]]:
        """What the node link hands to the node's other worker processes: how many transcript
        entries this unit has applied and the master keys it holds, by epoch.

        Only :mod:`kyok.bootstrap.link` calls this; the keys travel over a socket pair that
        exists only between the processes of one node.
        """
        with self._lock:
            return self._state.n, dict(self._mk)

    def adopt(self, keys: Mapping[int, bytes]) -> None:
        """Take the master keys a sibling worker process of this node holds.

        The transcript is re-read first, and it alone decides what is held: a key is taken only
        when the master-key record of its epoch exists and its MKVP matches, the current key
        only when the transcript passes the same MAC check as an auto-unseal; keys of epochs
        the transcript no longer records (retired, cleared) are dropped. So a late or stale
        message can add nothing wrong and take nothing still needed.

        Raises:
            UnitTampered: the transcript breaks a rule.
        """
        self.refresh()
        with self._lock:
            state = self._state
            new = {epoch: mk for epoch, mk in keys.items() if epoch not in self._mk}
            good = self._checked_keys(state, new, "a sibling worker")
            if good is None:
                return
            recorded = {record.epoch for _reg, record in state.records()}
            for epoch in [e for e in self._mk if e not in recorded]:
                del self._mk[epoch]
                self._kek.pop(epoch, None)
            for epoch, mk in good.items():
                self._mk[epoch] = mk
                self._kek[epoch] = blob.kek_for(mk)

    def seal_quietly(self) -> None:
        """:meth:`seal` without telling :attr:`on_change` (a sibling worker sealed first)."""
        self._seal_keys()

    # ------------------------------------------------------------------ the unit's own secret

    def _unit_secret(self) -> bytes:
        """The unit's random 32-byte secret, sealed like any blob (so rotation moves it too),
        made on first use. Keys derived from it authenticate credentials and sign tokens, so
        whoever can write the database cannot mint either."""
        secret = self._secret
        if secret is not None:
            return secret
        state = self._state
        ref = BlobRef(
            state.instance_id,
            state.unit_id,
            f"unit-secret:{state.unit_id}",
            blob.PURPOSE_UNIT_SECRET,
        )
        with self._lock:
            if self._secret is None:
                self._secret = self._own_blob(ref)
            return self._secret

    def _own_blob(self, ref: BlobRef) -> bytes:
        """The 32 random bytes of one of the unit's own blobs, made and stored on first use.
        Call with the lock held."""
        self.require_unsealed()
        row = self._store.get_blob(ref.instance_id, ref.id)
        if row is None:
            material = os.urandom(32)
            sealed = self.seal_material(ref, material)
            try:
                self._store.add_blob(
                    _Blob(
                        ref.instance_id,
                        ref.owner_id,
                        ref.id,
                        ref.purpose,
                        sealed.epoch,
                        sealed.data,
                    )
                )
                return material
            except AlreadyExists:
                row = self._store.get_blob(ref.instance_id, ref.id)  # another process made it first
                if row is None:
                    raise
        return self._open(SealedBlob(ref, row.mk_epoch, row.data))

    # ------------------------------------------------------------------ the audit signing key

    def _audit_key(self) -> SigningKey:
        key = self._derived.get("audit-signing")
        if key is None:
            state = self._state
            ref = BlobRef(
                state.instance_id,
                state.unit_id,
                f"audit-signing:{state.instance_id}",
                blob.PURPOSE_AUDIT_SIGNING,
            )
            with self._lock:
                key = self._derived.get("audit-signing")
                if key is None:
                    seed = self._own_blob(ref)
                    key = SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
                    self._derived["audit-signing"] = key
        assert isinstance(key, SigningKey)
        return key

    def audit_key_loaded(self) -> bool:
        """True when the audit signing key is in memory, so that :meth:`audit_sign` needs no
        store access (callers inside a database transaction check this first)."""
        return "audit-signing" in self._derived

    def audit_sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the instance's audit signing key (Ed25519).

        The key is a blob of its own (purpose ``audit-signing``), random and sealed by the
        master key like every key, made on first use; it never leaves the unit.

        Raises:
            UnitSealed: the unit is sealed.
        """
        return self._audit_key().sign(message)

    def audit_public_key(self) -> VerifyingKey:
        """The public key of :meth:`audit_sign` (what ``kyok audit pubkey`` prints)."""
        return self._audit_key().verifying_key()

    def _derive(self, label: str) -> bytes:
        return hkdf_sha256(self._unit_secret(), info=SECRET_INFO + label.encode(), length=32)

    def secret_hmac(self, label: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under a key derived from the unit's secret for ``label``.

        Raises:
            UnitSealed: the unit is sealed.
        """
        key = self._derived.get("hmac:" + label)
        if key is None:
            key = self._derived.setdefault("hmac:" + label, self._derive(label))
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(data)
        return mac.finalize()

    def _signer(self, label: str) -> SigningKey:
        signer = self._derived.get("sign:" + label)
        if signer is None:
            seed = self._derive(label)
            signer = SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
            self._derived["sign:" + label] = signer
        assert isinstance(signer, SigningKey)
        return signer

    def secret_sign(self, label: str, message: bytes) -> bytes:
        """An Ed25519 signature by the unit's key for ``label`` (derived from its secret)."""
        return self._signer(label).sign(message)

    def secret_public_key(self, label: str) -> VerifyingKey:
        """The public key matching :meth:`secret_sign` for ``label``."""
        return self._signer(label).verifying_key()

    # ------------------------------------------------------------------ administrator authorizations

    @property
    def seal_kind(self) -> str:
        """The unit's seal provider (``dev`` or ``shares``)."""
        return self._state.seal

    def admin_authorization(self, seq: int) -> tuple[str, bytes] | None:
        """The principal name and recipient key of the unused ``authorize_admin`` at ``seq``."""
        return next(((n, r) for s, n, r in self._state.admin_authorizations if s == seq), None)

    def use_admin_authorization(self, seq: int) -> tuple[str, bytes]:
        """Consume the ``authorize_admin`` command accepted at sequence number ``seq``.

        Records the use in the transcript (an authenticated event), so each authorization makes
        exactly one credential. Call it right before making the credential.

        Returns:
            The principal name the administrators authorized and the recipient public key
            (a kyok hybrid public key, bytes) the credential must be sealed to.

        Raises:
            UnitSealed: the unit is sealed (credentials need its secret anyway).
            CeremonyRejected: no unused authorization at ``seq``.
        """
        self.require_unsealed()
        with self._lock:
            state = self._state
            match = [(n, r) for s, n, r in state.admin_authorizations if s == seq]
            if not match:
                raise CeremonyRejected(
                    f"there is no unused administrator authorization at sequence {seq}"
                )
            body = self._event_body(state, ceremony.EVENT_ADMIN_AUTHORIZATION_USED, {"seq": seq})
            new_state = ceremony.apply(state, body, entry_hash(body))
            self._append([make_entry(body, self._mac_for(new_state, self._mk))])
            self._state = new_state
            return match[0]

    # ------------------------------------------------------------------ master-key rotation

    def require_rotation_keys(self) -> None:
        """Raise ``UnitSealed`` unless both master keys of a running rotation are loaded."""
        state = self._state
        if state.previous is None or state.current is None:
            return
        if state.previous.epoch not in self._kek or state.current.epoch not in self._kek:
            raise UnitSealed(
                "re-encryption needs both the previous and the current master key loaded"
            )

    def rotation_remaining(self) -> int | None:
        """Blobs still under the previous master key, or None when no rotation runs."""
        previous = self._state.previous
        if previous is None:
            return None
        return self._store.count_blobs_at_epoch(self._state.instance_id, previous.epoch)

    def reencrypt(
        self, *, batch_size: int = 1000, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Re-encrypt every blob from the previous master key to the current one, then retire it.

        Resumable: each batch commits on its own, and a restart simply continues with the
        blobs still under the previous epoch. Key operations go on meanwhile.

        Returns:
            How many blobs this call re-encrypted.

        Raises:
            UnitSealed: either master key is not loaded.
            BlobCorrupt: a blob does not open (the rotation stops there; nothing is lost).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        with self._rotation_lock:
            state = self._state
            previous, current = state.previous, state.current
            if previous is None or current is None:
                return 0
            old_kek, new_kek = self._kek.get(previous.epoch), self._kek.get(current.epoch)
            if old_kek is None or new_kek is None:
                raise UnitSealed(
                    "re-encryption needs both the previous and the current master key loaded"
                )
            instance = state.instance_id
            total = self._store.count_blobs_at_epoch(instance, previous.epoch)
            done = 0
            if progress:
                progress(done, total)
            while True:
                rows = self._store.blobs_at_epoch(instance, previous.epoch, batch_size)
                if not rows:
                    break
                rewrites = []
                for row in rows:
                    ref = BlobRef(row.instance_id, row.owner_id, row.id, row.purpose)
                    try:
                        material = blob.open_(old_kek, ref, row.data)
                    except InvalidCiphertext:
                        raise BlobCorrupt(
                            f"blob {row.id} does not open under the previous master key"
                        ) from None
                    new = blob.seal(new_kek, current.epoch, ref, material)
                    rewrites.append(_Rewrite(row.id, previous.epoch, current.epoch, new.data))
                done += self._store.rewrite_blobs(instance, rewrites)
                if progress:
                    progress(done, max(total, done))
            if self._store.count_blobs_at_epoch(instance, previous.epoch) == 0:
                self._complete_rotation(
                    previous.epoch, self._store.count_blobs_at_epoch(instance, current.epoch)
                )
            return done

    def _complete_rotation(self, retired: int, blobs: int) -> None:
        with self._lock:
            state = self._state
            if state.previous is None or state.previous.epoch != retired:
                return
            body = self._event_body(
                state,
                ceremony.EVENT_ROTATION_COMPLETE,
                {"retired": retired, "blobs_under_current": blobs},
            )
            new_state = ceremony.apply(state, body, entry_hash(body))
            self._append([make_entry(body, self._mac_for(new_state, self._mk))])
            self._state = new_state
            self._mk.pop(retired, None)
            self._kek.pop(retired, None)
            self._seal.forget(state.unit_id, retired)

    # ------------------------------------------------------------------ transcript

    def transcript(self) -> list[TranscriptEntry]:
        """The stored transcript, for export."""
        return [
            TranscriptEntry(e.n, e.entry, e.hash, e.mac)
            for e in self._store.transcript(self.unit_id)
        ]

    def refresh(self) -> None:
        """Apply transcript entries another process appended (checking every rule)."""
        with self._lock:
            state = self._state
            new = self._store.transcript(state.unit_id, after=state.n - 1)
            for stored in new:
                body = json.loads(stored.entry)
                if entry_hash(body) != stored.hash:
                    raise UnitTampered(f"transcript entry {stored.n} does not match its hash")
                try:
                    state = ceremony.apply(state, body, stored.hash)
                except CeremonyRejected as exc:
                    raise UnitTampered(f"transcript entry {stored.n}: {exc.message}") from None
            self._state = state

    def _append(self, entries: list[TranscriptEntry]) -> None:
        try:
            self._store.append_transcript(self._state.unit_id, entries)
            self._changed()
        except VersionConflict:
            self.refresh()
            raise CeremonyRejected(
                f"the unit changed meanwhile (its next sequence number is now {self._state.seq}): prepare and sign again"
            ) from None

    def _event_body(self, state: UnitState, event: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "n": state.n,
            "prev": state.head,
            "time": _rfc3339(self._clock),
            "unit": state.unit_id,
            "type": ceremony.ENTRY_EVENT,
            "event": event,
            "data": data,
        }

    def _mac_for(self, state: UnitState, mks: Mapping[int, bytes]) -> tuple[int, bytes] | None:
        current = state.current
        if current is None or current.epoch not in mks:
            return None
        return current.epoch, mac_key(mks[current.epoch], state.unit_id)

    def _authenticate(
        self, entries: list[StoredTranscriptEntry], state: UnitState, mk: bytes
    ) -> None:
        """Check the transcript against the current master key (see the module docstring)."""
        current = state.current
        assert current is not None
        key = mac_key(mk, state.unit_id)
        last = -1
        for i in range(len(entries) - 1, -1, -1):
            if check_mac(key, current.epoch, entries[i]):
                last = i
                break
        if last < 0 or entries[last].n < state.current_since:
            raise UnitTampered(
                "the transcript is not authenticated by the current master key: "
                "it was rewritten outside the unit. The unit stays sealed."
            )
        for stored in entries[last + 1 :]:
            if json.loads(stored.entry).get("type") != ceremony.ENTRY_COMMAND:
                raise UnitTampered(
                    f"transcript entry {stored.n} is an unauthenticated event: it was written outside the unit"
                )

    def _install(self, epoch: int, mk: bytes) -> None:
        self._mk[epoch] = mk
        self._kek[epoch] = blob.kek_for(mk)
        self._changed()

    def _changed(self, *, sealed: bool = False) -> None:
        if self.on_change is not None:
            self.on_change(self, sealed)

    def __repr__(self) -> str:
        return f"CryptoUnit(unit_id={self.unit_id!r}, sealed={self.sealed})"

    def __reduce__(self) -> Any:
        raise TypeError("crypto units cannot be pickled")


def _rfc3339(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
