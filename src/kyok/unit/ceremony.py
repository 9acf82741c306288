"""The ceremony rules: how each transcript entry changes a unit's state, and when it may not.

:func:`apply` is the one definition of the rules. The live unit calls it before it appends an
entry (so a refused command changes nothing), replay calls it to rebuild state from the
store, and ``kyok ceremony verify`` calls it offline on an exported transcript. It checks:

* the chain: entry ``n`` follows entry ``n-1`` and names its hash;
* commands: the sequence number is the unit's next one; every signature is by a known
  administrator and verifies over the canonical bytes; there are enough distinct signers
  (none for the very first administrator, one in imprint mode, the revocation threshold to
  remove an administrator, one — the custodian — to load a part, otherwise the signature
  threshold); the command is allowed in the current state and its arguments are sound;
* events (entries the unit writes itself) only where they make sense. Events carry a MAC under
  the master key; checking MACs needs the key, so the unit does that, not this module.

Entry bodies are JSON objects: ``{"n", "prev", "time", "unit", "type": "init"|"command"|"event", ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kyok.crypto.encoding import b64d
from kyok.crypto.errors import InvalidSignature
from kyok.crypto.kem import HybridPublicKey
from kyok.crypto.sign import VerifyingKey
from kyok.unit.commands import Command, command_bytes
from kyok.unit.errors import CeremonyRejected
from kyok.unit.state import (
    MAX_ADMINS,
    MAX_PARTS,
    MIN_PARTS,
    Admin,
    MasterKeyRecord,
    Register,
    Scheme,
    UnitState,
)

ENTRY_INIT = "init"
ENTRY_COMMAND = "command"
ENTRY_EVENT = "event"

EVENT_DEV_MASTER_KEY = "dev_master_key"
EVENT_UNSEALED = "unsealed"
EVENT_ROTATION_COMPLETE = "rotation_complete"
EVENT_ADMIN_AUTHORIZATION_USED = "admin_authorization_used"
EVENTS = frozenset(
    {EVENT_DEV_MASTER_KEY, EVENT_UNSEALED, EVENT_ROTATION_COMPLETE, EVENT_ADMIN_AUTHORIZATION_USED}
)

NAME_MAX = 64


def _reject(message: str) -> CeremonyRejected:
    return CeremonyRejected(message)


def required_signatures(state: UnitState, command: str) -> int:
    """How many distinct administrator signatures ``command`` needs now."""
    if command == Command.ADD_ADMIN and not state.admins:
        return 0  # imprint: the first administrator is added without signatures
    if command == Command.LOAD_PART:
        return 1  # the custodian loading the part
    if state.imprint:
        return 1
    if command == Command.REMOVE_ADMIN:
        return state.revocation_threshold
    return state.signature_threshold


def _str(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise _reject(f"argument {name!r} must be a non-empty string")
    return value


def _int(args: Mapping[str, Any], name: str) -> int:
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _reject(f"argument {name!r} must be an integer")
    return value


def _check_args(args: Mapping[str, Any], allowed: set[str]) -> None:
    extra = set(args) - allowed
    if extra:
        raise _reject(f"unexpected argument(s): {', '.join(sorted(extra))}")


def verify_signatures(
    state: UnitState, command: str, seq: int, args: Mapping[str, Any], signatures: list[Any]
) -> list[str]:
    """Verify the signatures of a command; return the signing administrators' ids.

    Raises:
        CeremonyRejected: unknown signer, a bad or repeated signature, or too few signers.
    """
    message = command_bytes(state.unit_id, seq, command, args)
    signers: list[str] = []
    for sig in signatures:
        if not isinstance(sig, Mapping) or not isinstance(sig.get("admin"), str):
            raise _reject("malformed signature entry")
        admin = state.admin(sig["admin"])
        if admin is None:
            raise _reject(f"signature by an unknown administrator ({sig['admin'][:16]})")
        if admin.id in signers:
            raise _reject(f"administrator {admin.name!r} signed twice")
        try:
            admin.verifying_key().verify(b64d(sig.get("signature", "")), message)
        except (InvalidSignature, ValueError):
            raise _reject(
                f"the signature of administrator {admin.name!r} does not verify over this command"
            ) from None
        signers.append(admin.id)
    needed = required_signatures(state, command)
    if len(signers) < needed:
        raise _reject(f"{command} needs {needed} administrator signature(s), got {len(signers)}")
    return signers


def _apply_command(state: UnitState, body: Mapping[str, Any]) -> UnitState:
    command = body.get("command")
    if command not in Command.ALL:
        raise _reject(f"unknown command {command!r}")
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _reject("command without a sequence number")
    if seq != state.seq:
        raise _reject(
            f"sequence number {seq} is not the unit's next ({state.seq}): the command is stale, replayed or out of order"
        )
    args = body.get("args")
    if not isinstance(args, Mapping):
        raise _reject("command arguments must be an object")
    sigs = body.get("signatures", [])
    if not isinstance(sigs, list):
        raise _reject("signatures must be a list")
    result = body.get("result") or {}
    if not isinstance(result, Mapping):
        raise _reject("result must be an object")
    verify_signatures(state, command, seq, args, sigs)
    state = state.evolve(seq=state.seq + 1)

    if command == Command.ADD_ADMIN:
        _check_args(args, {"name", "public_key"})
        name = _str(args, "name")
        if len(name) > NAME_MAX or not name.isprintable():
            raise _reject(f"administrator names are 1..{NAME_MAX} printable characters")
        try:
            key = VerifyingKey.from_der(b64d(_str(args, "public_key")))
        except ValueError:
            raise _reject("public_key is not a supported signature public key") from None
        if state.admin(key.fingerprint) is not None:
            raise _reject("that key is already an administrator")
        if any(a.name == name for a in state.admins):
            raise _reject(f"an administrator named {name!r} exists already")
        if len(state.admins) >= MAX_ADMINS:
            raise _reject(f"a unit has at most {MAX_ADMINS} administrators")
        admin = Admin(key.fingerprint, name, key.algorithm.value, key.der)
        return state.evolve(admins=(*state.admins, admin))

    if command == Command.REMOVE_ADMIN:
        _check_args(args, {"admin"})
        target = _str(args, "admin")
        if state.admin(target) is None:
            raise _reject("no such administrator")
        remaining = tuple(a for a in state.admins if a.id != target)
        # Never below one: an empty unit would accept an unsigned "first" administrator again.
        floor = max(state.signature_threshold, state.revocation_threshold, 1)
        if len(remaining) < floor:
            raise _reject(
                f"removing this administrator would leave {len(remaining)}, fewer than the thresholds need ({floor})"
            )
        return state.evolve(admins=remaining)

    if command == Command.SET_THRESHOLDS:
        _check_args(args, {"signature", "revocation"})
        sig_t, rev_t = _int(args, "signature"), _int(args, "revocation")
        count = len(state.admins)
        if not (1 <= sig_t <= count) or not (1 <= rev_t <= count):
            raise _reject(
                f"thresholds must be between 1 and the number of administrators ({count})"
            )
        return state.evolve(signature_threshold=sig_t, revocation_threshold=rev_t)

    if state.imprint:
        raise _reject(f"{command} is refused in imprint mode: set the signature thresholds first")

    if command == Command.LOAD_PART:
        _check_args(args, {"register", "parts", "kcv", "transport", "sealed_part_sha256"})
        try:
            register = Register(_str(args, "register"))
        except ValueError:
            raise _reject("register must be new, current, pending or previous") from None
        _str(args, "kcv"), _str(args, "transport"), _str(args, "sealed_part_sha256")
        if register is Register.NEW:
            parts = _int(args, "parts")
            if not (MIN_PARTS <= parts <= MAX_PARTS):
                raise _reject(f"a master key has {MIN_PARTS} to {MAX_PARTS} parts")
            # The register starts over when the unit says this was its first part (after a
            # commit, a clear, or a restart of the unit's process, which empties it).
            first = result.get("loaded") == 1
            return state.evolve(
                new_kcvs=(str(args["kcv"]),) if first else (*state.new_kcvs, str(args["kcv"]))
            )
        else:
            if "parts" in args:
                raise _reject("parts is only given when loading the new register")
            record = state.record(register)
            if record is None:
                raise _reject(f"there is no {register.value} master key to load a part into")
            if args["kcv"] not in record.kcvs:
                raise _reject(f"that part does not belong to the {register.value} master key")
        return state

    if command == Command.AUTHORIZE_ADMIN:
        # The administrators allow one administrator credential for the instance (the first one,
        # or a replacement). The unit uses the authorization once (an event) when the credential
        # is made, and the credential goes out sealed to ``recipient``, a hybrid public key of
        # whoever prepared the command: someone who only intercepts the command gains nothing.
        _check_args(args, {"principal", "recipient"})
        name = _str(args, "principal")
        if len(name) > NAME_MAX or not name.isprintable():
            raise _reject(f"principal names are 1..{NAME_MAX} printable characters")
        try:
            recipient = b64d(_str(args, "recipient"))
            HybridPublicKey.from_bytes(recipient)
        except ValueError:
            raise _reject("recipient must be a base64 kyok hybrid public key") from None
        if state.current is None:
            raise _reject(
                "authorize_admin needs an active master key: credentials are made by the unit"
            )
        entry = (int(seq), name, recipient)
        return state.evolve(admin_authorizations=(*state.admin_authorizations, entry))

    if command == Command.CLEAR_NEW:
        _check_args(args, set())
        return state.evolve(pending=None, new_kcvs=())

    if command == Command.COMMIT:
        _check_args(args, {"mkvp", "scheme", "threshold"})
        mkvp = _str(args, "mkvp")
        try:
            scheme = Scheme(_str(args, "scheme"))
        except ValueError:
            raise _reject("scheme must be xor or shamir") from None
        if scheme is Scheme.DEV:
            raise _reject("scheme must be xor or shamir")
        threshold = _int(args, "threshold")
        if state.pending is not None:
            raise _reject("a committed master key waits for activation; activate or clear it first")
        record_obj = result.get("record")
        if not isinstance(record_obj, Mapping):
            raise _reject("commit without its master-key record")
        try:
            record = MasterKeyRecord.from_json(dict(record_obj))
        except (KeyError, TypeError, ValueError):
            raise _reject("malformed master-key record") from None
        if record.mkvp != mkvp or record.scheme is not scheme or record.threshold != threshold:
            raise _reject("the committed record does not match the signed arguments")
        if record.epoch != state.next_epoch:
            raise _reject("the committed record has the wrong epoch")
        if not (MIN_PARTS <= record.parts <= MAX_PARTS) or len(record.kcvs) != record.parts:
            raise _reject("the committed record has a wrong number of parts")
        if len(set(record.kcvs)) != len(record.kcvs):
            raise _reject("the same part was loaded twice")
        if record.kcvs != state.new_kcvs:
            raise _reject(
                "the committed record's parts are not the ones the signed load_part commands loaded"
            )
        for _, older in state.records():
            if record.mkvp == older.mkvp:
                raise _reject(
                    "that master key is the unit's already: a new master key needs new parts"
                )
            if set(record.kcvs) & set(older.kcvs):
                raise _reject(
                    "a part of the unit's existing master key was reused: a new master key needs new parts"
                )
        if scheme is Scheme.XOR:
            if threshold != record.parts or record.envelopes:
                raise _reject("an xor master key needs all of its parts")
        else:
            if not (2 <= threshold <= record.parts):
                raise _reject("a shamir threshold is between 2 and the number of parts")
            if sorted(e.kcv for e in record.envelopes) != sorted(record.kcvs):
                raise _reject("every part needs exactly one share envelope")
        return state.evolve(pending=record, next_epoch=state.next_epoch + 1, new_kcvs=())

    # ACTIVATE
    _check_args(args, {"mkvp"})
    mkvp = _str(args, "mkvp")
    if state.pending is None:
        raise _reject("there is no committed master key to activate")
    if state.pending.mkvp != mkvp:
        raise _reject("the signed MKVP is not the committed master key's")
    if state.previous is not None:
        raise _reject("a master-key rotation is still re-encrypting; wait for it to finish")
    return state.evolve(
        previous=state.current, current=state.pending, pending=None, current_since=state.n
    )


def _apply_event(state: UnitState, body: Mapping[str, Any]) -> UnitState:
    event = body.get("event")
    data = body.get("data") or {}
    if event not in EVENTS or not isinstance(data, Mapping):
        raise _reject(f"unknown event {event!r}")
    if event == EVENT_DEV_MASTER_KEY:
        if state.seal != "dev":
            raise _reject("a dev master key on a unit without the dev seal")
        if state.current is not None or state.pending is not None:
            raise _reject("a dev master key on a unit that has one")
        record_obj = data.get("record")
        if not isinstance(record_obj, Mapping):
            raise _reject("dev master key without a record")
        record = MasterKeyRecord.from_json(dict(record_obj))
        if record.scheme is not Scheme.DEV or record.epoch != state.next_epoch:
            raise _reject("malformed dev master-key record")
        return state.evolve(current=record, next_epoch=state.next_epoch + 1, current_since=state.n)
    if event == EVENT_ROTATION_COMPLETE:
        if state.previous is None or data.get("retired") != state.previous.epoch:
            raise _reject("rotation complete without a rotation in progress")
        return state.evolve(previous=None)
    if event == EVENT_ADMIN_AUTHORIZATION_USED:
        used = data.get("seq")
        remaining = tuple(a for a in state.admin_authorizations if a[0] != used)
        if len(remaining) == len(state.admin_authorizations):
            raise _reject("an administrator authorization was used that does not exist (or twice)")
        return state.evolve(admin_authorizations=remaining)
    return state  # unsealed: no change


def initial_state(body: Mapping[str, Any]) -> UnitState:
    """The state established by an ``init`` entry."""
    if body.get("type") != ENTRY_INIT or body.get("n") != 0:
        raise _reject("a transcript starts with its init entry")
    seal = body.get("seal")
    if seal not in ("dev", "shares"):
        raise _reject("unknown seal provider in init entry")
    unit_id, instance_id, created = body.get("unit"), body.get("instance"), body.get("time")
    if not all(isinstance(v, str) and v for v in (unit_id, instance_id, created)):
        raise _reject("malformed init entry")
    return UnitState(
        unit_id=str(unit_id), instance_id=str(instance_id), seal=str(seal), created_at=str(created)
    )


def apply(state: UnitState | None, body: Mapping[str, Any], entry_hash: str) -> UnitState:
    """Apply one transcript entry; return the new state.

    Args:
        state: the state before the entry (None before the init entry).
        body: the entry's JSON body.
        entry_hash: the entry's chain hash (becomes the new head).

    Raises:
        CeremonyRejected: the entry does not follow, is not allowed, or is badly signed.
    """
    if state is None:
        new = initial_state(body)
    else:
        if body.get("n") != state.n:
            raise _reject(f"entry {body.get('n')!r} out of order (expected {state.n})")
        if body.get("prev") != state.head:
            raise _reject(f"entry {state.n} does not name the hash of entry {state.n - 1}")
        if body.get("unit") != state.unit_id:
            raise _reject(f"entry {state.n} belongs to another unit")
        kind = body.get("type")
        if kind == ENTRY_COMMAND:
            new = _apply_command(state, body)
        elif kind == ENTRY_EVENT:
            new = _apply_event(state, body)
        else:
            raise _reject(f"entry {state.n} has an unknown type {kind!r}")
    return new.evolve(n=new.n + 1, head=entry_hash)
