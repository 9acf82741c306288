"""The kyok-envelope/1 vectors (tests/vectors/kyok_envelope.json, docs/formats.md §17): the
committed file is what the generator prints, the library writes exactly these bytes and opens
them, refuses every invalid one with the stated code, and the files can be rebuilt and opened
from the documented recipe with ``cryptography`` alone."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from kyok.client import RewrapResult, UnwrapResult, WrapResult
from kyok.client import envelope as ev
from kyok.client.envelope._stream import seal

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
DOC = json.loads((VECTORS / "kyok_envelope.json").read_text(encoding="ascii"))
VALID = [v for v in DOC["vectors"] if v["result"] == "valid"]
INVALID = [v for v in DOC["vectors"] if v["result"] == "invalid"]
FORMATS_MD = Path(__file__).resolve().parents[3] / "docs" / "formats.md"


def _generator() -> ModuleType:
    path = VECTORS / "generate_envelope_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_envelope_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plaintext_of(v: dict[str, Any]) -> bytes:
    if "plaintext" in v:
        return bytes.fromhex(v["plaintext"])
    return bytes(i % 251 for i in range(v["plaintext_pattern"]["size"]))


# -- an implementation of the documented recipe with cryptography only ----------------------


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _lp_strings(values: Sequence[str]) -> bytes:
    items = [v.encode() for v in values]
    return len(items).to_bytes(4, "big") + b"".join(len(i).to_bytes(4, "big") + i for i in items)


def recipe_unwrap(root_key: bytes, wrapped: str, aad: Sequence[str]) -> bytes:
    """kyok-wrap-v1 (§4): the DEK inside ``wrapped``."""
    raw = base64.b64decode(wrapped, validate=True)
    nonce, body = raw[17:41], raw[41:]
    derived = _hmac(_hmac(b"kyok/aead/v1", root_key), nonce + b"\x01")
    dek: bytes = AESGCM(derived).decrypt(bytes(12), body, raw[:17] + _lp_strings(aad))
    return dek


def recipe_keys(dek: bytes, bound: bytes) -> tuple[bytes, bytes]:
    prk = _hmac(bound[12:44], dek)

    def expand(info: bytes) -> bytes:
        return HKDFExpand(hashes.SHA256(), 32, info).derive(prk)

    return (
        expand(b"kyok/envelope/v1/content-key" + bound),
        expand(b"kyok/envelope/v1/key-commitment" + bound),
    )


def recipe_slot(
    fixed: bytes, capacity: int, gen: int, key_id: str, ver: str, wrapped: str
) -> bytes:
    fields = [key_id.encode(), ver.encode(), wrapped.encode()]
    body = gen.to_bytes(4, "big") + b"".join(len(f).to_bytes(2, "big") + f for f in fields)
    body += bytes(capacity - 32 - len(body))
    return body + _hmac(b"kyok/envelope/v1/slot", fixed + body)


def recipe_encrypt(v: dict[str, Any]) -> bytes:
    """The envelope of vector ``v``, built from §17 with cryptography only."""
    dek, salt = bytes.fromhex(v["dek"]), bytes.fromhex(v["salt"])
    size: int = v["segment_size"]
    aad_commitment = _hmac(b"kyok/envelope/v1/aad", _lp_strings(v["aad"]))
    bound = b"KYOKENV\x01" + size.to_bytes(4, "big") + salt + aad_commitment
    content_key, commitment = recipe_keys(dek, bound)
    capacity: int = v["slot_capacity"]
    fixed = bound + commitment + capacity.to_bytes(2, "big") + b"\x00\x00"
    slot = recipe_slot(fixed, capacity, 1, v["key_id"], v["key_version_id"], v["wrapped_dek"])
    out = fixed + slot + bytes(capacity)
    plaintext = plaintext_of(v)
    count = len(plaintext) // size + 1
    for i in range(count):
        nonce = bytes(3) + i.to_bytes(8, "big") + (b"\x01" if i == count - 1 else b"\x00")
        out += AESGCM(content_key).encrypt(nonce, plaintext[i * size : (i + 1) * size], bound)
    return out


def recipe_decrypt(envelope: bytes, dek: bytes) -> bytes:
    """Open an envelope with §17 and cryptography only (live slot A; no slot B handling)."""
    assert envelope[:8] == b"KYOKENV\x01"
    size = int.from_bytes(envelope[8:12], "big")
    capacity = int.from_bytes(envelope[108:110], "big")
    bound, header_size = envelope[:76], 112 + 2 * capacity
    content_key, commitment = recipe_keys(dek, bound)
    assert commitment == envelope[76:108]
    body, stride, out = envelope[header_size:], size + 16, b""
    count = len(body) // stride + 1
    for i in range(count):
        nonce = bytes(3) + i.to_bytes(8, "big") + (b"\x01" if i == count - 1 else b"\x00")
        out += AESGCM(content_key).decrypt(nonce, body[i * stride : (i + 1) * stride], bound)
    return out


class VectorKeys:
    """A key service that holds the vectors' root keys and unwraps with the §4 recipe."""

    def __init__(self) -> None:
        self.roots = {v["key_version_id"]: bytes.fromhex(v["root_key"]) for v in VALID}

    def wrap(
        self, key_id: str, plaintext: bytes | None = None, *, aad: Sequence[str] | None = None
    ) -> WrapResult:
        raise AssertionError("not used")

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        raw = base64.b64decode(ciphertext)
        version = str(uuid.UUID(bytes=raw[1:17]))
        return UnwrapResult(recipe_unwrap(self.roots[version], ciphertext, aad or []), version)

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        raise AssertionError("not used")


# -- the tests -----------------------------------------------------------------------------


def test_committed_vectors_are_what_the_generator_prints() -> None:
    committed = (VECTORS / "kyok_envelope.json").read_text(encoding="ascii")
    assert _generator().render() == committed, (
        "regenerate: python tests/vectors/generate_envelope_vectors.py "
        "> tests/vectors/kyok_envelope.json"
    )


def test_there_are_valid_and_invalid_vectors() -> None:
    assert len(VALID) == 4 and len(INVALID) == 10
    assert {len(v["segment_nonces"]) for v in VALID} == {1, 2, 3}


@pytest.mark.parametrize("v", VALID, ids=lambda v: v["name"])
def test_the_library_writes_exactly_the_vector(v: dict[str, Any]) -> None:
    class Sink:
        data = b""

        def write(self, data: bytes, /) -> int:
            Sink.data += data
            return len(data)

    seal(
        io.BytesIO(plaintext_of(v)),
        Sink(),
        dek=bytes.fromhex(v["dek"]),
        key_id=v["key_id"],
        key_version_id=v["key_version_id"],
        wrapped_dek=v["wrapped_dek"],
        aad=tuple(v["aad"]),
        segment_size=v["segment_size"],
        salt=bytes.fromhex(v["salt"]),
    )
    assert Sink.data.hex() == v["envelope"]


@pytest.mark.parametrize("v", VALID, ids=lambda v: v["name"])
def test_the_library_opens_the_vector(v: dict[str, Any]) -> None:
    envelope = bytes.fromhex(v["envelope"])
    header = ev.read_header(io.BytesIO(envelope))
    assert (header.key_id, header.key_version_id, header.wrapped_dek) == (
        v["key_id"],
        v["key_version_id"],
        v["wrapped_dek"],
    )
    assert header.segment_size == v["segment_size"] and header.header_size == v["header_size"]
    assert header.aad_commitment.hex() == v["aad_commitment"]
    assert ev.decrypt_bytes(envelope, keys=VectorKeys(), aad=v["aad"]) == plaintext_of(v)
    reader = ev.SegmentReader(io.BytesIO(envelope), keys=VectorKeys(), aad=v["aad"])
    assert reader.segment_count == len(v["segment_nonces"])


@pytest.mark.parametrize("v", VALID, ids=lambda v: v["name"])
def test_the_documented_recipe_rebuilds_and_opens_the_vector(v: dict[str, Any]) -> None:
    dek = recipe_unwrap(bytes.fromhex(v["root_key"]), v["wrapped_dek"], v["aad"])
    assert dek.hex() == v["dek"]
    bound = bytes.fromhex(v["bound_header"])
    assert [k.hex() for k in recipe_keys(dek, bound)] == [v["content_key"], v["key_commitment"]]
    assert recipe_encrypt(v).hex() == v["envelope"]
    assert recipe_decrypt(bytes.fromhex(v["envelope"]), dek) == plaintext_of(v)


@pytest.mark.parametrize("v", INVALID, ids=lambda v: v["name"])
def test_invalid_vectors_are_refused_with_their_code(v: dict[str, Any]) -> None:
    data = _generator().assemble(DOC["vectors"], v["pieces"])
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(data, keys=VectorKeys(), aad=v["aad"])
    assert info.value.code == v["code"]


def test_the_wrapped_deks_are_the_kyok_wrap_v1_vectors_of_section_4() -> None:
    text = FORMATS_MD.read_text(encoding="utf-8")
    section4 = text[text.index("## 4. kyok-wrap-v1") : text.index("## 5.")]
    documented = {
        "".join(m.group(1).split())
        for m in re.finditer(r"ciphertext_b64 = ((?:[A-Za-z0-9+/=]+\s+)+)", section4)
    }
    assert {v["wrapped_dek"] for v in VALID} <= documented


def _section_17() -> str:
    text = FORMATS_MD.read_text(encoding="utf-8")
    return text[text.index("## 17. Envelope files") :]


def test_the_vector_quoted_in_section_17_is_the_file() -> None:
    """The file as §17.7 prints it, piece by piece, is the second vector's file."""
    section = _section_17()
    block = section[section.index("The file, 2,202 bytes:") :].split("```")[1]
    rebuilt = b""
    for _label, value in re.findall(r"^(\w[\w ]*?)\s+= (.*?)(?=^\w|\Z)", block, re.M | re.S):
        if value.strip().endswith("zero bytes"):
            rebuilt += bytes(int(value.split()[0]))
            continue
        rebuilt += bytes.fromhex("".join(value.split()))
    v = VALID[1]
    assert rebuilt.hex() == v["envelope"]
    values = "".join(section[section.index("The second vector") :].split())
    for name in ("root_key", "dek", "salt", "aad_commitment", "content_key", "key_commitment"):
        assert f"{name}={v[name]}" in values
    assert f"wrapped_dek={v['wrapped_dek']}" in values
    assert f"nonce_0={v['segment_nonces'][0]}" in values


def test_the_snippet_of_section_17_opens_every_vector() -> None:
    section = _section_17()
    snippet = section[section.index("```python") + len("```python") :]
    snippet = snippet[: snippet.index("```")]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "formats.md §17.6", "exec"), namespace)
    for v in VALID:
        envelope = bytes.fromhex(v["envelope"])
        assert namespace["open_envelope"](envelope, bytes.fromhex(v["dek"])) == plaintext_of(v)
        with pytest.raises(ValueError, match="does not belong"):
            namespace["open_envelope"](envelope, bytes(32))
