"""Tampering with an envelope: every change fails cleanly with InvalidEnvelope and releases no
plaintext of a bad segment (decrypt_bytes and decrypt_file release nothing at all)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.client import envelope as ev
from kyok.client.envelope import _format as fmt
from kyok.client.envelope.testing import LocalKeyService

from ._util import SMALL, segments

AAD = ["tenant=acme", "file=report"]
DATA = bytes(range(256)) * (3 * SMALL // 256) + b"tail of the file" * 7  # 3 full + 1 short
KEYS = LocalKeyService()
KEY = KEYS.create_key()
SEALED = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL)
HEADER, PARTS = segments(SEALED)
CAPACITY = fmt.DEFAULT_SLOT_CAPACITY
SLOT_A = range(fmt.FIXED_SIZE, fmt.FIXED_SIZE + CAPACITY)
SLOT_B = range(fmt.FIXED_SIZE + CAPACITY, fmt.FIXED_SIZE + 2 * CAPACITY)


def refused(bad: bytes, directory: Path, aad: list[str] = AAD) -> ev.InvalidEnvelope:
    """Check that ``bad`` is refused by every decrypt path; return the error."""
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(bad, keys=KEYS, aad=aad)
    # the streaming decrypt writes only whole, verified segments before the bad one
    out = io.BytesIO()
    with pytest.raises(ev.InvalidEnvelope) as streamed:
        ev.decrypt(io.BytesIO(bad), out, keys=KEYS, aad=aad)
    assert streamed.value.code == info.value.code
    written = out.getvalue()
    assert DATA.startswith(written) and len(written) % SMALL == 0 and written != DATA
    # decrypt_file leaves nothing behind
    src = directory / "bad.kyok"
    src.write_bytes(bad)
    with pytest.raises(ev.InvalidEnvelope):
        ev.decrypt_file(src, directory / "out", keys=KEYS, aad=aad)
    assert sorted(p.name for p in directory.iterdir()) == ["bad.kyok"]
    src.unlink()
    return info.value


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_the_untouched_envelope_opens() -> None:
    assert ev.decrypt_bytes(SEALED, keys=KEYS, aad=AAD) == DATA
    assert len(PARTS) == 4 and len(PARTS[-1]) == 7 * 16 + 16


@settings(max_examples=150)
@given(bit=st.integers(0, 8 * len(SEALED) - 1))
def test_flipping_any_bit_is_detected(bit: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    bad = flip(SEALED, bit)
    if bit // 8 in SLOT_B:
        # the unused key slot: redundancy for crash safety, ignored when damaged (§17.6)
        assert ev.decrypt_bytes(bad, keys=KEYS, aad=AAD) == DATA
        return
    refused(bad, tmp_path_factory.mktemp("flip"))


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (0, "NOT_AN_ENVELOPE"),  # magic
        (6, "NOT_AN_ENVELOPE"),
        (7, "UNSUPPORTED_VERSION"),
        (9, "HEADER_DAMAGED"),  # segment size
        (11, "HEADER_DAMAGED"),
        (12, "HEADER_DAMAGED"),  # salt
        (50, "HEADER_DAMAGED"),  # AAD commitment
        (80, "HEADER_DAMAGED"),  # key commitment
        (108, "HEADER_DAMAGED"),  # slot capacity
        (109, "HEADER_DAMAGED"),
        (111, "HEADER_DAMAGED"),  # reserved
        (SLOT_A.start, "HEADER_DAMAGED"),  # generation
        (SLOT_A.start + 10, "HEADER_DAMAGED"),  # key id
        (SLOT_A.start + 200, "HEADER_DAMAGED"),  # padding
        (SLOT_A.stop - 1, "HEADER_DAMAGED"),  # slot check
        (len(HEADER), "SEGMENT_DAMAGED"),  # first segment
        (len(HEADER) + SMALL + 3, "SEGMENT_DAMAGED"),  # first tag
        (len(HEADER) + 2 * (SMALL + 16), "SEGMENT_DAMAGED"),  # third segment
        (len(SEALED) - 1, "SEGMENT_DAMAGED"),  # final tag
    ],
)
def test_each_part_of_the_file_is_checked(offset: int, code: str, tmp_path: Path) -> None:
    assert refused(flip(SEALED, offset * 8 + 1), tmp_path).code == code


def test_a_damaged_unused_slot_is_ignored() -> None:
    bad = SEALED[: SLOT_B.start] + b"\xff" * CAPACITY + SEALED[SLOT_B.stop :]
    assert ev.decrypt_bytes(bad, keys=KEYS, aad=AAD) == DATA


@settings(max_examples=60)
@given(cut=st.integers(0, len(SEALED) - 1))
def test_truncation_anywhere_is_detected(
    cut: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    error = refused(SEALED[:cut], tmp_path_factory.mktemp("cut"))
    if cut == 0:
        assert error.code == "NOT_AN_ENVELOPE"
    elif cut < len(HEADER):
        assert error.code == "HEADER_DAMAGED"
    else:
        assert error.code in {"TRUNCATED", "SEGMENT_DAMAGED"}


@pytest.mark.parametrize("keep", [0, 1, 2, 3])
def test_truncation_at_a_segment_boundary_is_detected(keep: int, tmp_path: Path) -> None:
    bad = HEADER + b"".join(PARTS[:keep])
    assert refused(bad, tmp_path).code == "TRUNCATED"


def test_an_exact_multiple_ends_with_an_empty_final_segment(tmp_path: Path) -> None:
    data = bytes(2 * SMALL)
    sealed = ev.encrypt_bytes(data, keys=KEYS, key=KEY, segment_size=SMALL)
    header, parts = segments(sealed)
    assert [len(p) for p in parts] == [SMALL + 16, SMALL + 16, 16]
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(header + parts[0] + parts[1], keys=KEYS)
    assert info.value.code == "TRUNCATED"


def test_an_empty_plaintext_still_has_a_final_segment(tmp_path: Path) -> None:
    sealed = ev.encrypt_bytes(b"", keys=KEYS, key=KEY)
    header, parts = segments(sealed)
    assert parts == [parts[0]] and len(parts[0]) == 16
    assert ev.decrypt_bytes(sealed, keys=KEYS) == b""
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(header, keys=KEYS)
    assert info.value.code == "TRUNCATED"


@pytest.mark.parametrize(
    "extra",
    [b"\x00", b"x" * 15, b"x" * 16, b"x" * 5000, PARTS[0], PARTS[-1]],
    ids=["1 byte", "15 bytes", "16 bytes", "5000 bytes", "a full segment", "the final segment"],
)
def test_extension_is_detected(extra: bytes, tmp_path: Path) -> None:
    assert refused(SEALED + extra, tmp_path).code == "SEGMENT_DAMAGED"


@pytest.mark.parametrize("drop", [0, 1, 2, 3])
def test_dropping_a_segment_is_detected(drop: int, tmp_path: Path) -> None:
    bad = HEADER + b"".join(p for i, p in enumerate(PARTS) if i != drop)
    assert refused(bad, tmp_path).code in {"SEGMENT_DAMAGED", "TRUNCATED"}


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 2), (0, 2), (2, 3)])
def test_reordering_segments_is_detected(i: int, j: int, tmp_path: Path) -> None:
    parts = list(PARTS)
    parts[i], parts[j] = parts[j], parts[i]
    assert refused(HEADER + b"".join(parts), tmp_path).code in {"SEGMENT_DAMAGED", "TRUNCATED"}


def test_duplicating_a_segment_is_detected(tmp_path: Path) -> None:
    bad = HEADER + PARTS[0] + PARTS[0] + b"".join(PARTS[1:])
    assert refused(bad, tmp_path).code == "SEGMENT_DAMAGED"


def test_a_segment_from_another_file_is_detected(tmp_path: Path) -> None:
    other = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL)
    _, other_parts = segments(other)
    bad = HEADER + PARTS[0] + other_parts[1] + b"".join(PARTS[2:])
    assert refused(bad, tmp_path).code == "SEGMENT_DAMAGED"


def test_swapped_headers_are_detected(tmp_path: Path) -> None:
    other = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL)
    other_header, _ = segments(other)
    assert refused(other_header + b"".join(PARTS), tmp_path).code == "SEGMENT_DAMAGED"


def test_swapped_headers_sharing_a_cached_dek_are_detected(tmp_path: Path) -> None:
    cache = ev.DekCache(max_age=60, max_messages=10, max_bytes=1 << 20)
    a = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL, cache=cache)
    b = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL, cache=cache)
    ha, _ = segments(a)
    hb, pb = segments(b)
    assert ha[SLOT_A.start : SLOT_A.stop - 32] == hb[SLOT_A.start : SLOT_A.stop - 32]  # same DEK
    assert refused(ha + b"".join(pb), tmp_path).code == "SEGMENT_DAMAGED"


def _with_slot(header: bytes, slot: fmt.KeySlot) -> bytes:
    """``header`` with key slot A replaced by ``slot`` and a valid check (an attacker can
    recompute the check: it is not keyed)."""
    fixed = header[: fmt.FIXED_SIZE]
    encoded = fmt.encode_slot(fixed, slot)
    assert encoded is not None
    return fixed + encoded + header[SLOT_B.start :]


def _slot_of(sealed: bytes) -> fmt.KeySlot:
    parsed = fmt.parse_slots(sealed[: fmt.FIXED_SIZE], sealed[fmt.FIXED_SIZE :], CAPACITY)
    return parsed.slot


def test_a_wrapped_dek_from_another_file_fails_the_key_commitment(tmp_path: Path) -> None:
    other = ev.encrypt_bytes(b"other", keys=KEYS, key=KEY, aad=AAD, segment_size=SMALL)
    bad = _with_slot(HEADER, _slot_of(other)) + b"".join(PARTS)
    calls = KEYS.calls["unwrap"]
    assert refused(bad, tmp_path).code == "HEADER_MISMATCH"
    assert KEYS.calls["unwrap"] > calls  # the DEK opened; the commitment caught it


def test_a_forged_wrapped_dek_does_not_unwrap(tmp_path: Path) -> None:
    slot = _slot_of(SEALED)
    forged = slot.wrapped_dek[:-8] + (
        "A" * 8 if not slot.wrapped_dek.endswith("A" * 8) else "B" * 8
    )
    bad = _with_slot(HEADER, fmt.KeySlot(1, slot.key_id, None, forged)) + b"".join(PARTS)
    assert refused(bad, tmp_path).code == "DEK_UNWRAP_FAILED"


def test_another_key_id_in_the_header_does_not_unwrap(tmp_path: Path) -> None:
    slot = _slot_of(SEALED)
    other_key = KEYS.create_key()
    bad = _with_slot(HEADER, fmt.KeySlot(1, other_key, None, slot.wrapped_dek)) + b"".join(PARTS)
    assert refused(bad, tmp_path).code == "DEK_UNWRAP_FAILED"


def test_a_forged_aad_commitment_does_not_open(tmp_path: Path) -> None:
    """Rewriting the AAD commitment for other AAD (and the slot check) still fails: kyok's
    unwrap binds the AAD to the wrapped DEK, and the derivation binds it to the content key."""
    forged_commit = fmt.aad_commitment(("tenant=evil",))
    fixed = HEADER[:44] + forged_commit + HEADER[76 : fmt.FIXED_SIZE]
    encoded = fmt.encode_slot(fixed, _slot_of(SEALED))
    assert encoded is not None
    bad = fixed + encoded + HEADER[SLOT_B.start :] + b"".join(PARTS)
    assert refused(bad, tmp_path, aad=["tenant=evil"]).code == "DEK_UNWRAP_FAILED"


@pytest.mark.parametrize(
    "aad", [None, [], ["tenant=acme"], ["file=report", "tenant=acme"], ["tenant=acme", "file="]]
)
def test_the_wrong_aad_fails_before_kyok_is_asked(aad: list[str] | None, tmp_path: Path) -> None:
    calls = KEYS.calls
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(SEALED, keys=KEYS, aad=aad)
    assert info.value.code == "AAD_MISMATCH"
    assert KEYS.calls == calls
    (tmp_path / "f").write_bytes(SEALED)
    with pytest.raises(ev.InvalidEnvelope):
        ev.decrypt_file(tmp_path / "f", tmp_path / "out", keys=KEYS, aad=aad)
    with pytest.raises(ev.InvalidEnvelope):
        ev.rewrap_file(tmp_path / "f", keys=KEYS, aad=aad)
    assert not (tmp_path / "out").exists() and (tmp_path / "f").read_bytes() == SEALED


@pytest.mark.parametrize(
    "data", [b"", b"K", b"KYOKENV", b"PK\x03\x04 a zip file", b"KYOKENV\x02" + bytes(200)]
)
def test_not_an_envelope(data: bytes) -> None:
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.read_header(io.BytesIO(data))
    expected = {
        b"": "NOT_AN_ENVELOPE",
        b"K": "HEADER_DAMAGED",
        b"KYOKENV": "HEADER_DAMAGED",
    }.get(data, "UNSUPPORTED_VERSION" if data.startswith(b"KYOKENV") else "NOT_AN_ENVELOPE")
    assert info.value.code == expected
    assert "version 2" in str(info.value) or expected != "UNSUPPORTED_VERSION"


@pytest.mark.parametrize(
    ("offset", "value"),
    [(8, (2 * SMALL).to_bytes(4, "big")), (12, bytes(32)), (76, bytes(32))],
    ids=["segment size", "salt", "key commitment"],
)
def test_a_rewritten_fixed_header_fails_the_key_commitment(
    offset: int, value: bytes, tmp_path: Path
) -> None:
    """The slot checks are not keyed: an attacker can rewrite the fixed header and recompute
    them. The key commitment (derived from the DEK and the bound header) still catches it."""
    fixed = HEADER[:offset] + value + HEADER[offset + len(value) : fmt.FIXED_SIZE]
    encoded = fmt.encode_slot(fixed, _slot_of(SEALED))
    assert encoded is not None
    bad = fixed + encoded + HEADER[SLOT_B.start :] + b"".join(PARTS)
    assert refused(bad, tmp_path).code == "HEADER_MISMATCH"
