"""SegmentReader: any segment or byte range on its own, authenticated, from a seekable file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.client import envelope as ev
from kyok.client.envelope.testing import LocalKeyService

from ._util import SMALL, Chunky, segments

KEYS = LocalKeyService()
KEY = KEYS.create_key()
DATA = bytes((i * 7 + i // 251) % 256 for i in range(5 * SMALL + 1234))
SEALED = ev.encrypt_bytes(DATA, keys=KEYS, key=KEY, aad=["ra"], segment_size=SMALL)


def reader(data: bytes = SEALED) -> ev.SegmentReader:
    return ev.SegmentReader(io.BytesIO(data), keys=KEYS, aad=["ra"])


READER = reader()


def test_sizes_and_segments() -> None:
    r = reader()
    assert (r.segment_count, r.plaintext_size) == (6, len(DATA))
    assert r.header.segment_size == SMALL and r.header.key_id == KEY
    for i in range(6):
        assert r.read_segment(i) == DATA[i * SMALL : (i + 1) * SMALL]
    assert r.read_segment(-1) == DATA[5 * SMALL :]
    with pytest.raises(IndexError):
        r.read_segment(6)
    with pytest.raises(IndexError):
        r.read_segment(-7)


@settings(max_examples=80)
@given(offset=st.integers(0, len(DATA) + 10), length=st.integers(0, 3 * SMALL))
def test_any_range(offset: int, length: int) -> None:
    assert READER.read_range(offset, length) == DATA[offset : offset + length]


def test_opening_costs_one_unwrap() -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    sealed = ev.encrypt_bytes(DATA, keys=keys, key=key, segment_size=SMALL)
    r = ev.SegmentReader(io.BytesIO(sealed), keys=keys)
    for i in range(r.segment_count):
        r.read_segment(i)
    r.read_range(100, 20000)
    assert keys.calls["unwrap"] == 1


def test_bad_arguments() -> None:
    r = reader()
    with pytest.raises(ValueError):
        r.read_range(-1, 5)
    with pytest.raises(ValueError):
        r.read_range(0, -5)
    with pytest.raises(TypeError):
        r.read_segment(1.0)  # type: ignore[arg-type]
    assert r.read_range(len(DATA), 10) == b""


def test_a_damaged_segment_fails_only_reads_that_touch_it() -> None:
    bad = bytearray(SEALED)
    header, _ = segments(SEALED)
    bad[len(header) + 2 * (SMALL + 16) + 5] ^= 1  # segment 2
    r = reader(bytes(bad))
    assert r.read_segment(1) == DATA[SMALL : 2 * SMALL]
    assert r.read_range(3 * SMALL, 10) == DATA[3 * SMALL : 3 * SMALL + 10]
    with pytest.raises(ev.InvalidEnvelope) as info:
        r.read_segment(2)
    assert info.value.code == "SEGMENT_DAMAGED"
    with pytest.raises(ev.InvalidEnvelope):
        r.read_range(2 * SMALL - 5, 10)


@pytest.mark.parametrize("cut", [1, 15, 16, 17, SMALL + 16, SMALL + 17])
def test_a_wrong_length_is_refused_at_open_or_read(cut: int) -> None:
    bad = SEALED[:-cut]
    try:
        r = reader(bad)
    except ev.InvalidEnvelope as exc:
        assert exc.code == "TRUNCATED"
        return
    # the length fits whole segments, but the last one is not the final one
    with pytest.raises(ev.InvalidEnvelope):
        r.read_segment(r.segment_count - 1)


def test_swapped_segments_are_refused() -> None:
    header, parts = segments(SEALED)
    parts[1], parts[2] = parts[2], parts[1]
    r = reader(header + b"".join(parts))
    assert r.read_segment(0) == DATA[:SMALL]
    for i in (1, 2):
        with pytest.raises(ev.InvalidEnvelope):
            r.read_segment(i)


def test_the_wrong_aad_is_refused() -> None:
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.SegmentReader(io.BytesIO(SEALED), keys=KEYS, aad=["other"])
    assert info.value.code == "AAD_MISMATCH"


def test_a_pipe_is_refused() -> None:
    with pytest.raises(ValueError, match="seekable"):
        ev.SegmentReader(Chunky(SEALED), keys=KEYS, aad=["ra"])  # type: ignore[arg-type]


def test_a_real_file_at_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"junk" + SEALED)
    with open(path, "rb") as f:
        f.seek(4)
        r = ev.SegmentReader(f, keys=KEYS, aad=["ra"])
        assert r.read_range(SMALL - 3, 6) == DATA[SMALL - 3 : SMALL + 3]
        assert r.plaintext_size == len(DATA)
    assert "segment_count=6" in repr(r)


def test_empty_plaintext() -> None:
    sealed = ev.encrypt_bytes(b"", keys=KEYS, key=KEY)
    r = ev.SegmentReader(io.BytesIO(sealed), keys=KEYS)
    assert (r.segment_count, r.plaintext_size) == (1, 0)
    assert r.read_segment(0) == b"" and r.read_range(0, 10) == b""
