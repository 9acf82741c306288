"""The audit vectors (tests/vectors/kyok_audit.json, the docs/formats.md examples).

Checked against kyok and against an independent re-derivation that uses only ``hashlib``,
``json`` and ``cryptography``'s Ed25519, following docs/formats.md.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kyok.audit import ProblemKind, loads_export, verify
from kyok.crypto.sign import VerifyingKey

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "kyok_audit.json").read_text(encoding="ascii"))


def _generator() -> ModuleType:
    path = VECTORS / "generate_audit_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_audit_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cjson(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _lp(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_committed_vectors_are_what_the_generator_prints() -> None:
    committed = (VECTORS / "kyok_audit.json").read_text(encoding="ascii")
    assert _generator().render() == committed, (
        "regenerate: python tests/vectors/generate_audit_vectors.py > tests/vectors/kyok_audit.json"
    )


def test_key_from_seed() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(DOC["key"]["seed"]))
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pem.decode() == DOC["key"]["public_key_pem"]
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(der).hexdigest() == DOC["key"]["fingerprint"]


def test_chain_independently() -> None:
    instance = DOC["instance_id"]
    genesis = hashlib.sha256(b"kyok/audit/genesis/v1" + _lp(instance.encode())).digest()
    assert genesis.hex() == DOC["genesis_hash"]
    prev = genesis
    for i, entry in enumerate(DOC["events"]):
        assert entry["seq"] == i and bytes.fromhex(entry["prev_hash"]) == prev
        canonical = entry["canonical"].encode("ascii")
        assert _cjson(json.loads(canonical)) == canonical
        digest = hashlib.sha256(b"kyok/audit/v1" + _lp(prev, canonical)).digest()
        assert digest.hex() == entry["hash"]
        prev = digest


def test_checkpoint_independently() -> None:
    cp = dict(DOC["checkpoint"]["json"])
    signature = base64.b64decode(cp.pop("signature"), validate=True)
    message = b"kyok/audit-checkpoint/v1" + _cjson(cp)
    assert message.decode() == DOC["checkpoint"]["message"]
    assert cp["headHash"] == DOC["events"][-1]["hash"] and cp["seq"] == 2
    assert cp["keyId"] == DOC["key"]["fingerprint"]
    public = serialization.load_pem_public_key(DOC["key"]["public_key_pem"].encode())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(signature, message)  # raises if wrong


def test_export_lines_hold_the_canonical_events() -> None:
    lines = DOC["export"]["text"].splitlines()
    assert json.loads(lines[0])["format"] == "kyok-audit-export/1"
    for line, entry in zip(lines[1:4], DOC["events"], strict=True):
        obj = json.loads(line)
        assert obj.pop("type") == "event"
        assert (obj.pop("prevHash"), obj.pop("hash")) == (entry["prev_hash"], entry["hash"])
        assert _cjson(obj).decode() == entry["canonical"]
    last = json.loads(lines[4])
    assert last.pop("type") == "checkpoint" and last == DOC["checkpoint"]["json"]


def test_export_verifies_with_kyok() -> None:
    export = loads_export(DOC["export"]["text"])
    key = VerifyingKey.from_pem(DOC["key"]["public_key_pem"].encode())
    report = verify(export.items, key, header=export.header)
    assert report.ok and report.last_verified_seq == DOC["export"]["last_verified_seq"]


@pytest.mark.parametrize("case", DOC["tampered"], ids=[c["name"] for c in DOC["tampered"]])
def test_tampered_exports_fail_with_kyok(case: dict[str, Any]) -> None:
    export = loads_export(case["export"])
    key = VerifyingKey.from_pem(DOC["key"]["public_key_pem"].encode())
    report = verify(export.items, key, header=export.header)
    problem = report.first_problem
    assert not report.ok and problem is not None
    assert (problem.kind, problem.seq) == (
        ProblemKind(case["problem"]["kind"]),
        case["problem"]["seq"],
    )


def test_docs_quote_the_vector() -> None:
    """The values printed in docs/formats.md section 14.6 are those of the vector file."""
    doc = (VECTORS.parent.parent / "docs" / "formats.md").read_text(encoding="utf-8")
    section = doc[doc.index("### 14.6 Vector") : doc.index("## 15. Test vectors")]
    quoted = [
        DOC["key"]["seed"],
        DOC["key"]["fingerprint"],
        DOC["instance_id"],
        DOC["genesis_hash"],
        DOC["events"][0]["canonical"],
        *(e["hash"] for e in DOC["events"]),
        DOC["checkpoint"]["message"],
        DOC["checkpoint"]["signature"],
        *DOC["key"]["public_key_pem"].splitlines(),
    ]
    for value in quoted:
        assert value in section, value
    for case in DOC["tampered"]:
        problem = case["problem"]
        assert f"`{problem['kind']}` at {problem['seq']}" in section, case["name"]
