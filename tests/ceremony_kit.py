"""Library-level ceremony helpers shared by the unit, integration and benchmark-style tests:
custodians with real signature keys and parts, and the steps of a ceremony."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kyok.crypto.encoding import b64e
from kyok.crypto.sign import SigningKey
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.keypart import KeyPart
from kyok.unit.transport import load_part_command
from kyok.unit.unit import CryptoUnit


@dataclass
class Custodian:
    """An administrator with a signature key and a master-key part."""

    name: str
    key: SigningKey
    part: KeyPart

    @property
    def id(self) -> str:
        return self.key.verifying_key().fingerprint


def make_custodians(n: int, algorithms: Sequence[str] = ("ed25519",)) -> list[Custodian]:
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"]
    return [
        Custodian(
            names[i],
            SigningKey.generate(algorithms[i % len(algorithms)]),
            KeyPart.generate(names[i]),
        )
        for i in range(n)
    ]


def command(
    unit: CryptoUnit, name: str, args: dict[str, Any], signers: Sequence[Custodian]
) -> SignedCommand:
    cmd = SignedCommand(unit.unit_id, unit.state.seq, name, args)
    for s in signers:
        cmd = cmd.signed_by(s.key)
    return cmd


def run(
    unit: CryptoUnit, name: str, args: dict[str, Any], signers: Sequence[Custodian]
) -> dict[str, Any]:
    return unit.submit(command(unit, name, args, signers))


def imprint(
    unit: CryptoUnit, custodians: Sequence[Custodian], signature: int, revocation: int
) -> None:
    """Add every custodian as administrator and leave imprint mode."""
    first = custodians[0]
    run(
        unit,
        Command.ADD_ADMIN,
        {"name": first.name, "public_key": b64e(first.key.verifying_key().der)},
        [],
    )
    for c in custodians[1:]:
        run(
            unit,
            Command.ADD_ADMIN,
            {"name": c.name, "public_key": b64e(c.key.verifying_key().der)},
            [first],
        )
    run(unit, Command.SET_THRESHOLDS, {"signature": signature, "revocation": revocation}, [first])


def load(
    unit: CryptoUnit, custodian: Custodian, register: str, parts: int | None = None
) -> dict[str, Any]:
    cmd, sealed = load_part_command(
        unit_id=unit.unit_id,
        seq=unit.state.seq,
        register=register,
        part=custodian.part,
        transport=unit.transport_public_key(),
        parts=parts,
    )
    return unit.submit(cmd.signed_by(custodian.key), sealed_part=sealed)


def ceremony(
    unit: CryptoUnit,
    custodians: Sequence[Custodian],
    scheme: str,
    threshold: int,
    signers: Sequence[Custodian],
) -> str:
    """Load every custodian's part into the new register, commit and activate; return the MKVP."""
    result: dict[str, Any] = {}
    for c in custodians:
        result = load(unit, c, "new", parts=len(custodians))
    mkvp = str(result["mkvp"])
    run(unit, Command.COMMIT, {"mkvp": mkvp, "scheme": scheme, "threshold": threshold}, signers)
    run(unit, Command.ACTIVATE, {"mkvp": mkvp}, signers)
    return mkvp
