"""Regenerate the audit ledger vectors (kyok-audit/1: events, chain, checkpoint, export file).

    .venv/bin/python tests/vectors/generate_audit_vectors.py > tests/vectors/kyok_audit.json

Everything is fixed: the Ed25519 audit signing key comes from a fixed 32-byte seed (Ed25519
signatures are deterministic), the instance id, the events and all times are constants. So the
output is the same on every run; ``tests/audit/test_vectors.py`` checks that the committed file
still equals what this script prints, re-derives every hash and the signature with ``hashlib``
and ``cryptography`` only, and runs the tampered exports through the verifier. These vectors are
the examples of docs/formats.md, section "Audit ledger".
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from kyok.audit import (
    AuditEvent,
    Chain,
    ChainedEvent,
    ExportHeader,
    ExportItem,
    Initiator,
    KeySigner,
    Target,
    dumps_export,
    genesis_hash,
    loads_export,
    make_checkpoint,
    verify,
)
from kyok.crypto.encoding import canonical_json
from kyok.crypto.sign import SigningKey

SEED = bytes(range(0x80, 0xA0))
INSTANCE = "3f1e8a52-6b0d-4c4e-9a57-0c2f6d1b7e11"
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def signer() -> KeySigner:
    """The vector's audit signing key (Ed25519 from ``SEED``)."""
    return KeySigner(SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(SEED)))


def events() -> list[AuditEvent]:
    """Three events: a wrap, a failed unwrap, a system action."""
    app = Initiator("ServiceId-1b2c3d", "service", "api_key", "192.0.2.10")
    return [
        AuditEvent(
            INSTANCE,
            0,
            T0,
            "kms.secrets.wrap",
            "success",
            app,
            Target("0b8f7c61-2d3e-4f50-9a1b-3c4d5e6f7081", "kms/key", "payroll-root", "v1"),
            status=200,
            correlation_id="c-0001",
            request_id="r-0001",
        ),
        AuditEvent(
            INSTANCE,
            1,
            T0 + timedelta(seconds=1, microseconds=250),
            "kms.secrets.unwrap",
            "failure",
            app,
            Target("0b8f7c61-2d3e-4f50-9a1b-3c4d5e6f7081", "kms/key", "payroll-root", None),
            reason_code="UNPROCESSABLE_ERR",
            status=422,
            correlation_id="c-0001",
            request_id="r-0002",
        ),
        AuditEvent(
            INSTANCE,
            2,
            T0 + timedelta(seconds=30),
            "kms.keys.rotate",
            "success",
            Initiator("kyok-system", "system", "system"),
            Target("0b8f7c61-2d3e-4f50-9a1b-3c4d5e6f7081", "kms/key", "payroll-root", "v2"),
            detail=(("policy", "rotation"), ("interval_month", "1")),
        ),
    ]


def ledger() -> tuple[ExportHeader, list[ExportItem], list[ChainedEvent]]:
    """The vector's export: three events and a checkpoint at seq 2."""
    chain = Chain.new(INSTANCE)
    chained = [chain.append(e) for e in events()]
    checkpoint = make_checkpoint(signer(), chained[-1], issued_at=T0 + timedelta(seconds=31))
    header = ExportHeader(INSTANCE, 0, 2, T0 + timedelta(minutes=5))
    return header, [*chained, checkpoint], chained


def _edit_line(line: str, path: tuple[str, ...], value: Any) -> str:
    obj = json.loads(line)
    inner = obj
    for name in path[:-1]:
        inner = inner[name]
    inner[path[-1]] = value
    return canonical_json(obj).decode("ascii")


def _tampered(header: ExportHeader, items: list[ExportItem]) -> list[dict[str, Any]]:
    """The export with one change each, and the first problem the verifier names."""
    h, e0, e1, e2, cp = dumps_export(header, items).decode("ascii").splitlines()
    head = json.loads(cp)["headHash"]
    cases = [
        ("outcome of seq 1 edited", [h, e0, _edit_line(e1, ("outcome",), "success"), e2, cp]),
        ("seq 1 deleted", [h, e0, e2, cp]),
        ("seq 0 and seq 1 swapped", [h, e1, e0, e2, cp]),
        ("checkpoint dropped (unsigned tail)", [h, e0, e1, e2]),
        (
            "checkpoint headHash edited",
            [h, e0, e1, e2, _edit_line(cp, ("headHash",), head[::-1])],
        ),
        ("events after seq 0 cut off", [h, e0]),
    ]
    out = []
    for name, lines in cases:
        text = "\n".join(lines) + "\n"
        export = loads_export(text)
        report = verify(export.items, signer().public_key(), header=export.header)
        problem = report.first_problem
        assert problem is not None, name
        out.append(
            {
                "name": name,
                "export": text,
                "result": "invalid",
                "problem": {"kind": problem.kind.value, "seq": problem.seq},
            }
        )
    return out


def build() -> dict[str, Any]:
    """The audit vectors, as one JSON-ready document."""
    header, items, chained = ledger()
    key = signer().public_key()
    checkpoint = items[-1]
    assert not isinstance(checkpoint, ChainedEvent)
    export_text = dumps_export(header, items).decode("ascii")
    report = verify(items, key, header=header)
    assert report.ok
    return {
        "source": "kyok-generated by tests/vectors/generate_audit_vectors.py (deterministic: Ed25519 "
        "key from a fixed seed)",
        "construction": {
            "genesis": "SHA-256('kyok/audit/genesis/v1' || lp(utf8(instance_id)))",
            "entry_hash": "SHA-256('kyok/audit/v1' || lp(prev_hash, canonical_json(event)))",
            "checkpoint_message": "'kyok/audit-checkpoint/v1' || canonical_json(signed fields)",
        },
        "key": {
            "algorithm": "ed25519",
            "seed": SEED.hex(),
            "public_key_pem": key.to_pem().decode("ascii"),
            "fingerprint": key.fingerprint,
        },
        "instance_id": INSTANCE,
        "genesis_hash": genesis_hash(INSTANCE).hex(),
        "events": [
            {
                "seq": c.seq,
                "canonical": c.event.canonical_bytes().decode("ascii"),
                "prev_hash": c.prev_hash.hex(),
                "hash": c.hash.hex(),
            }
            for c in chained
        ],
        "checkpoint": {
            "message": checkpoint.message().decode("ascii"),
            "signature": checkpoint.to_json()["signature"],
            "json": checkpoint.to_json(),
        },
        "export": {"text": export_text, "result": "valid", "last_verified_seq": 2},
        "tampered": _tampered(header, items),
    }


def render() -> str:
    """The exact text of kyok_audit.json."""
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
