"""The ceremony transcript: a hash chain of every command the unit accepted and every event.

Each entry is stored as its canonical JSON body, the chain hash ``SHA-256(body)`` (the body
names the previous entry's hash in ``prev``), and optionally a MAC::

    mac = "<epoch>:" || hex(HMAC-SHA256(K_mac, hash))
    K_mac = HKDF-SHA256(MK_epoch, info = "kyok/v1/transcript-mac/" || unit_id)

An auditor verifies the chain, the signatures and the rules offline with
:func:`verify_export` (``kyok ceremony verify``) and nothing but the exported file. The MAC is
for the unit itself: made with the master key, it lets the unit notice, on unseal, a
transcript that someone with access to the database rewrote (see ``kyok.unit.unit``).

Export format: JSON Lines, one ``{"body": {...}, "hash": "...", "mac": "..."|null}`` per entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from kyok.crypto.encoding import canonical_json, ct_equal
from kyok.crypto.kdf import hkdf_sha256
from kyok.unit import ceremony
from kyok.unit.errors import CeremonyRejected
from kyok.unit.ports import StoredTranscriptEntry
from kyok.unit.state import UnitState

MAC_INFO = b"kyok/v1/transcript-mac/"


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """An entry as stored (satisfies ``unit.ports.StoredTranscriptEntry``)."""

    n: int
    entry: str
    hash: str
    mac: str | None = None

    def body(self) -> dict[str, Any]:
        obj = json.loads(self.entry)
        if not isinstance(obj, dict):
            raise ValueError("transcript entry is not an object")
        return obj

    def export_line(self) -> str:
        return json.dumps({"body": self.body(), "hash": self.hash, "mac": self.mac}, sort_keys=True)


def entry_hash(body: Mapping[str, Any]) -> str:
    """The chain hash of an entry body."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical_json(dict(body)))
    return digest.finalize().hex()


def make_entry(
    body: Mapping[str, Any], mac_key: tuple[int, bytes] | None = None
) -> TranscriptEntry:
    """Encode ``body`` as an entry; MAC it when ``mac_key = (epoch, key)`` is given."""
    h = entry_hash(body)
    mac = None
    if mac_key is not None:
        epoch, key = mac_key
        mac = f"{epoch}:{compute_mac(key, h)}"
    return TranscriptEntry(int(body["n"]), canonical_json(dict(body)).decode("ascii"), h, mac)


def mac_key(master_key: bytes, unit_id: str) -> bytes:
    """The transcript MAC key derived from a master key."""
    return hkdf_sha256(master_key, info=MAC_INFO + unit_id.encode(), length=32)


def compute_mac(key: bytes, entry_hash_hex: str) -> str:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(bytes.fromhex(entry_hash_hex))
    return mac.finalize().hex()


def check_mac(key: bytes, epoch: int, entry: StoredTranscriptEntry) -> bool:
    """True when ``entry`` carries a valid MAC for ``epoch`` under ``key``."""
    if not entry.mac or ":" not in entry.mac:
        return False
    mac_epoch, _, value = entry.mac.partition(":")
    if mac_epoch != str(epoch):
        return False
    try:
        return ct_equal(bytes.fromhex(value), bytes.fromhex(compute_mac(key, entry.hash)))
    except ValueError:
        return False


def replay(entries: Iterable[StoredTranscriptEntry]) -> UnitState:
    """Rebuild a unit's state from its stored transcript, checking every rule.

    Raises:
        CeremonyRejected: a broken link, a bad signature or a forbidden step (names the entry).
    """
    state: UnitState | None = None
    for stored in entries:
        try:
            body = json.loads(stored.entry)
        except json.JSONDecodeError:
            raise CeremonyRejected(f"entry {stored.n} is not JSON") from None
        if not isinstance(body, dict) or stored.n != body.get("n"):
            raise CeremonyRejected(f"entry {stored.n} is malformed")
        if entry_hash(body) != stored.hash:
            raise CeremonyRejected(f"entry {stored.n} does not match its hash")
        try:
            state = ceremony.apply(state, body, stored.hash)
        except CeremonyRejected as exc:
            raise CeremonyRejected(f"entry {stored.n}: {exc.message}") from None
    if state is None:
        raise CeremonyRejected("empty transcript")
    return state


@dataclass
class VerifyReport:
    """What an offline verification found."""

    ok: bool
    entries: int
    state: UnitState | None
    error: str | None = None
    broken_at: int | None = None
    commands: int = 0
    macs: int = 0
    warnings: list[str] = field(default_factory=list)


def parse_export(lines: Iterable[str]) -> list[TranscriptEntry]:
    """Parse an exported transcript (JSON Lines).

    Raises:
        ValueError: a line that is not an export entry (names the line number).
    """
    out: list[TranscriptEntry] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            body = obj["body"]
            if not isinstance(body, dict):
                raise TypeError
            mac = obj.get("mac")
            out.append(
                TranscriptEntry(
                    int(body["n"]), canonical_json(body).decode("ascii"), str(obj["hash"]), mac
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ValueError(f"line {lineno} is not a transcript entry") from None
    return out


def verify_export(
    entries: Sequence[TranscriptEntry],
    *,
    unit_id: str | None = None,
    first_admin: str | None = None,
) -> VerifyReport:
    """Verify an exported transcript offline: chain, signatures, thresholds, rules.

    Events (entries the unit writes itself: a dev master key, an unseal, the end of a rotation)
    carry no administrator signature; the unit authenticates them with a MAC under its master
    key, which an offline verifier does not have. They are checked against the rules and listed
    in ``warnings`` so the auditor sees what rests on the unit's word alone.

    Args:
        entries: the parsed export.
        unit_id: if given, the transcript must belong to this unit.
        first_admin: if given, the imprinted (first) administrator's fingerprint must match
            (the auditor's trust anchor; the imprint is the one unsigned step).
    """
    state: UnitState | None = None
    commands = macs = 0
    warnings: list[str] = []
    first_admin_at: int | None = None

    def broken(i: int, error: str) -> VerifyReport:
        return VerifyReport(
            False, i, state, error, i, commands=commands, macs=macs, warnings=warnings
        )

    for i, stored in enumerate(entries):
        if stored.n != i:
            return broken(i, f"entry {i} is missing (found entry {stored.n} in its place)")
        try:
            body = stored.body()
        except ValueError:
            return broken(i, f"entry {i} is malformed")
        if entry_hash(body) != stored.hash:
            return broken(i, f"entry {i} does not match its hash (altered)")
        try:
            new_state = ceremony.apply(state, body, stored.hash)
        except CeremonyRejected as exc:
            return broken(i, f"entry {i}: {exc.message}")
        if state is not None and not state.admins and new_state.admins:
            first_admin_at = i
        state = new_state
        kind = body.get("type")
        if kind == ceremony.ENTRY_COMMAND:
            commands += 1
        elif kind == ceremony.ENTRY_EVENT:
            warnings.append(
                f"entry {i}: the {body.get('event')} event was written by the unit itself; "
                "only the unit's master-key MAC authenticates it, which this offline check cannot verify"
            )
        if stored.mac:
            macs += 1
        if i == 0 and unit_id is not None and state.unit_id != unit_id:
            return broken(0, f"the transcript belongs to unit {state.unit_id}, not {unit_id}")
    if state is None:
        return VerifyReport(False, 0, None, "the transcript is empty", 0)
    if first_admin is not None:
        first = state_first_admin(entries, first_admin_at)
        if first is None or first.lower() != first_admin.lower():
            at = first_admin_at if first_admin_at is not None else len(entries)
            return VerifyReport(
                False,
                len(entries),
                state,
                "the imprinted administrator is not the expected one",
                at,
                commands=commands,
                macs=macs,
                warnings=warnings,
            )
    return VerifyReport(True, len(entries), state, commands=commands, macs=macs, warnings=warnings)


def state_first_admin(entries: Sequence[TranscriptEntry], at: int | None) -> str | None:
    """The fingerprint of the administrator imprinted by entry ``at`` (the first add_admin)."""
    if at is None:
        return None
    args = entries[at].body().get("args", {})
    try:
        from kyok.crypto.encoding import b64d
        from kyok.crypto.sign import VerifyingKey

        return VerifyingKey.from_der(b64d(args["public_key"])).fingerprint
    except (KeyError, ValueError, TypeError):
        return None
