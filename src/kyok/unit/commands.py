"""Signed ceremony commands: the canonical bytes administrators sign, and command files.

The bytes signed for a command are::

    "kyok/unit-command/v1\\n" || canonical_json({"unit": unit_id, "seq": seq,
                                                 "command": name, "args": args})

``seq`` is the unit's monotonic sequence number: a command is valid for exactly one position
in the unit's history, so a captured command cannot be replayed, and any change to the unit,
the name or an argument breaks every signature. A command file (JSON) carries the command and
the signatures collected so far, so administrators can sign on their own machines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kyok.crypto.encoding import b64d, b64e, canonical_json
from kyok.crypto.sign import SigningKey

DOMAIN = b"kyok/unit-command/v1\n"
FILE_FORMAT = "kyok-command/1"


class Command:
    """Command names."""

    ADD_ADMIN = "add_admin"
    REMOVE_ADMIN = "remove_admin"
    SET_THRESHOLDS = "set_thresholds"
    LOAD_PART = "load_part"
    CLEAR_NEW = "clear_new"
    COMMIT = "commit"
    ACTIVATE = "activate"
    AUTHORIZE_ADMIN = "authorize_admin"

    ALL = frozenset(
        {
            ADD_ADMIN,
            REMOVE_ADMIN,
            SET_THRESHOLDS,
            LOAD_PART,
            CLEAR_NEW,
            COMMIT,
            ACTIVATE,
            AUTHORIZE_ADMIN,
        }
    )


def command_bytes(unit_id: str, seq: int, command: str, args: Mapping[str, Any]) -> bytes:
    """The canonical byte string administrators sign."""
    return DOMAIN + canonical_json(
        {"unit": unit_id, "seq": seq, "command": command, "args": dict(args)}
    )


@dataclass(frozen=True, slots=True)
class Signature:
    """One administrator's signature over a command."""

    admin: str
    signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {"admin": self.admin, "signature": b64e(self.signature)}


@dataclass(frozen=True, slots=True)
class SignedCommand:
    """A command for one unit at one sequence number, with its signatures."""

    unit_id: str
    seq: int
    command: str
    args: Mapping[str, Any]
    signatures: tuple[Signature, ...] = ()

    def message(self) -> bytes:
        """The canonical bytes to sign."""
        return command_bytes(self.unit_id, self.seq, self.command, self.args)

    def signed_by(self, key: SigningKey) -> SignedCommand:
        """A copy with ``key``'s signature added (replacing an earlier one by the same key)."""
        admin = key.verifying_key().fingerprint
        others = tuple(s for s in self.signatures if s.admin != admin)
        sigs = (*others, Signature(admin, key.sign(self.message())))
        return SignedCommand(
            self.unit_id,
            self.seq,
            self.command,
            self.args,
            tuple(sorted(sigs, key=lambda s: s.admin)),
        )

    def signatures_json(self) -> list[dict[str, str]]:
        return [s.to_json() for s in sorted(self.signatures, key=lambda s: s.admin)]

    def to_json(self) -> dict[str, Any]:
        """The command-file form."""
        return {
            "format": FILE_FORMAT,
            "unit": self.unit_id,
            "seq": self.seq,
            "command": self.command,
            "args": dict(self.args),
            "signatures": self.signatures_json(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SignedCommand:
        """Parse a command file.

        Raises:
            ValueError: not a kyok command file, or a malformed field.
        """
        if obj.get("format") != FILE_FORMAT:
            raise ValueError("not a kyok command file")
        try:
            sigs = tuple(
                Signature(str(s["admin"]), b64d(s["signature"])) for s in obj.get("signatures", [])
            )
            args = obj["args"]
            if not isinstance(args, dict):
                raise ValueError("args must be an object")
            seq = obj["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq must be a non-negative integer")
            return cls(str(obj["unit"]), seq, str(obj["command"]), args, sigs)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed command file: {exc}") from None

    @classmethod
    def loads(cls, text: str) -> SignedCommand:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"command file is not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise ValueError("not a kyok command file")
        return cls.from_json(obj)
