"""Regenerate the envelope file vectors (kyok-envelope/1, docs/formats.md §17).

    .venv/bin/python tests/vectors/generate_envelope_vectors.py > tests/vectors/kyok_envelope.json

Everything is fixed: the root keys, DEKs, nonces and wrapped DEKs are those of the kyok-wrap-v1
vectors of docs/formats.md §4 (so each vector also shows the whole chain root key -> wrapped DEK
-> DEK -> file), and the salts, key id, AAD, segment sizes and plaintexts are constants. The
files are made by the library's own writer (``kyok.client.envelope._stream.seal``) with these
inputs in place of kyok's generated DEK and the random salt. ``tests/client/envelope/
test_vectors.py`` checks that the committed file equals this script's output, that the library
opens every valid vector and refuses every invalid one with the stated code, and rebuilds every
file from its inputs with ``cryptography`` alone, following §17.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from typing import Any

from kyok.client.envelope import _format as fmt
from kyok.client.envelope._stream import seal
from kyok.crypto.aead import DerivedKeyAead
from kyok.crypto.encoding import b64e, lp_strings

KEY_ID = "6c1f3a9e-2b4d-4e8f-9a7c-5d3e1f0b2a4c"

# The two kyok-wrap-v1 vectors of docs/formats.md §4.
WRAPS: dict[str, dict[str, Any]] = {
    "acme": {
        "root_key": bytes(range(0x40, 0x60)),
        "key_version_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "dek": bytes(range(0x80, 0xA0)),
        "aad": ["tenant=acme", "file=report.pdf"],
        "nonce": bytes(range(0x20, 0x38)),
    },
    "no-aad": {
        "root_key": bytes(range(0x00, 0x10)),
        "key_version_id": "0f0e0d0c-0b0a-4908-8706-050403020100",
        "dek": b"a 16-byte DEK!!!",
        "aad": [],
        "nonce": bytes(range(0x30, 0x48)),
    },
}


def wrapped_dek(wrap: dict[str, Any]) -> str:
    """The kyok-wrap-v1 ciphertext (base64) of ``wrap``'s DEK, as kyok's wrap returns it."""
    head = b"\x01" + uuid.UUID(wrap["key_version_id"]).bytes
    aad = head + lp_strings(wrap["aad"])
    inner = DerivedKeyAead(wrap["root_key"]).encrypt(wrap["dek"], aad, nonce=wrap["nonce"])
    return b64e(head + inner)


def pattern(size: int) -> bytes:
    """``size`` bytes of the vectors' plaintext pattern: byte i is i mod 251."""
    return bytes(i % 251 for i in range(size))


CASES: list[dict[str, Any]] = [
    {
        "name": "empty plaintext, no AAD: one empty final segment",
        "wrap": "no-aad",
        "salt": bytes(range(0xA0, 0xC0)),
        "segment_size": 4096,
        "plaintext": b"",
    },
    {
        "name": "short plaintext with AAD: one final segment",
        "wrap": "acme",
        "salt": bytes(range(0xC0, 0xE0)),
        "segment_size": 4096,
        "plaintext": b"kyok envelope test vector\n",
    },
    {
        "name": "two full segments and a short final one",
        "wrap": "acme",
        "salt": bytes(range(0xE0, 0x100)),
        "segment_size": 4096,
        "plaintext": pattern(2 * 4096 + 100),
    },
    {
        "name": "exactly one segment of plaintext: a full segment and an empty final one",
        "wrap": "acme",
        "salt": bytes(32),
        "segment_size": 4096,
        "plaintext": pattern(4096),
    },
]


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes, /) -> int:
        self.data += data
        return len(data)


def _plaintext_fields(plaintext: bytes) -> dict[str, Any]:
    if len(plaintext) <= 64:
        return {"plaintext": plaintext.hex()}
    assert plaintext == pattern(len(plaintext))
    return {"plaintext_pattern": {"size": len(plaintext), "rule": "byte i is i mod 251"}}


def build_case(case: dict[str, Any]) -> dict[str, Any]:
    """One vector: the inputs, the derived values and the file."""
    wrap = WRAPS[case["wrap"]]
    aad = tuple(wrap["aad"])
    sink = _Sink()
    seal(
        io.BytesIO(case["plaintext"]),
        sink,
        dek=wrap["dek"],
        key_id=KEY_ID,
        key_version_id=wrap["key_version_id"],
        wrapped_dek=wrapped_dek(wrap),
        aad=aad,
        segment_size=case["segment_size"],
        salt=case["salt"],
    )
    envelope = bytes(sink.data)
    bound = envelope[: fmt.BOUND_SIZE]
    content_key, commitment = fmt.derive_keys(wrap["dek"], bound)
    segment_count = len(case["plaintext"]) // case["segment_size"] + 1
    return {
        "name": case["name"],
        "root_key": wrap["root_key"].hex(),
        "key_id": KEY_ID,
        "key_version_id": wrap["key_version_id"],
        "wrapped_dek": wrapped_dek(wrap),
        "dek": wrap["dek"].hex(),
        "aad": list(aad),
        "salt": case["salt"].hex(),
        "segment_size": case["segment_size"],
        **_plaintext_fields(case["plaintext"]),
        "aad_commitment": fmt.aad_commitment(aad).hex(),
        "bound_header": bound.hex(),
        "content_key": content_key.hex(),
        "key_commitment": commitment.hex(),
        "slot_capacity": fmt.DEFAULT_SLOT_CAPACITY,
        "header_size": fmt.FIXED_SIZE + 2 * fmt.DEFAULT_SLOT_CAPACITY,
        "segment_nonces": [
            fmt.segment_nonce(i, i == segment_count - 1).hex() for i in range(segment_count)
        ],
        "envelope": envelope.hex(),
        "result": "valid",
    }


def _invalid(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edits of the valid files that a reader must refuse, with the code kyok gives.

    Each is ``pieces`` to concatenate: byte ranges ``[start, end)`` of valid vector ``from``, or
    literal ``hex``.
    """
    short = len(bytes.fromhex(valid[1]["envelope"]))
    multi = len(bytes.fromhex(valid[2]["envelope"]))
    h = valid[2]["header_size"]
    s = 4096 + 16

    def part(index: int, start: int, end: int) -> dict[str, Any]:
        return {"from": index, "start": start, "end": end}

    def flip(index: int, size: int, at: int) -> list[dict[str, Any]]:
        byte = bytes.fromhex(valid[index]["envelope"])[at] ^ 0x01
        return [part(index, 0, at), {"hex": f"{byte:02x}"}, part(index, at + 1, size)]

    edits = [
        ("a bit of the final segment's tag flipped", 1, flip(1, short, short - 1), None,
         "SEGMENT_DAMAGED"),
        ("a bit of the salt flipped", 1, flip(1, short, 20), None, "HEADER_DAMAGED"),
        ("format version 2", 1, [part(1, 0, 7), {"hex": "02"}, part(1, 8, short)], None,
         "UNSUPPORTED_VERSION"),
        ("another AAD given", 1, [part(1, 0, short)], ["tenant=acme"], "AAD_MISMATCH"),
        ("the final segment dropped", 2, [part(2, 0, h + 2 * s)], None, "TRUNCATED"),
        ("segments 0 and 1 swapped", 2,
         [part(2, 0, h), part(2, h + s, h + 2 * s), part(2, h, h + s), part(2, h + 2 * s, multi)],
         None, "SEGMENT_DAMAGED"),
        ("segment 1 dropped", 2, [part(2, 0, h + s), part(2, h + 2 * s, multi)], None,
         "SEGMENT_DAMAGED"),
        ("one byte appended", 2, [part(2, 0, multi), {"hex": "00"}], None, "SEGMENT_DAMAGED"),
        ("truncated to the header", 2, [part(2, 0, h)], None, "TRUNCATED"),
        ("the header of another file", 2, [part(3, 0, h), part(2, h, multi)], None,
         "SEGMENT_DAMAGED"),
    ]  # fmt: skip
    return [
        {
            "name": f"invalid: {name}",
            "aad": valid[base]["aad"] if aad is None else aad,
            "pieces": pieces,
            "result": "invalid",
            "code": code,
        }
        for name, base, pieces, aad, code in edits
    ]


def assemble(vectors: list[dict[str, Any]], pieces: list[dict[str, Any]]) -> bytes:
    """The bytes an invalid vector's ``pieces`` describe."""
    out = b""
    for piece in pieces:
        if "hex" in piece:
            out += bytes.fromhex(piece["hex"])
        else:
            out += bytes.fromhex(vectors[piece["from"]]["envelope"])[piece["start"] : piece["end"]]
    return out


def build() -> dict[str, Any]:
    """The whole vector file."""
    valid = [build_case(case) for case in CASES]
    return {
        "format": fmt.FORMAT_NAME,
        "source": "kyok-generated by tests/vectors/generate_envelope_vectors.py (deterministic: "
        "fixed root key, DEKs and salts; opened by kyok.client.envelope in "
        "tests/client/envelope/test_vectors.py)",
        "description": "kyok-envelope/1 files (docs/formats.md section 17). root_key unwraps "
        "wrapped_dek (kyok-wrap-v1, section 4, with the vector's aad) to dek; the envelope "
        "is the file encrypt writes for plaintext with that DEK and salt.",
        "vectors": valid + _invalid(valid),
    }


def render() -> str:
    """The exact text of kyok_envelope.json."""
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
