"""xorsplit: n-of-n XOR splitting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.xorsplit import combine, split, xor_bytes


@settings(max_examples=80)
@given(secret=st.binary(min_size=1, max_size=64), parts=st.integers(1, 12), data=st.data())
def test_round_trip_in_any_order(secret: bytes, parts: int, data: st.DataObject) -> None:
    pieces = split(secret, parts)
    assert len(pieces) == parts
    assert all(len(p) == len(secret) for p in pieces)
    assert combine(data.draw(st.permutations(pieces))) == secret


@settings(max_examples=60)
@given(secret=st.binary(min_size=8, max_size=64), parts=st.integers(2, 12), data=st.data())
def test_any_n_minus_1_parts_are_not_the_secret(
    secret: bytes, parts: int, data: st.DataObject
) -> None:
    """Each missing part is uniformly random: with 8+ bytes a match has probability <= 2^-64."""
    pieces = split(secret, parts)
    missing = data.draw(st.integers(0, parts - 1))
    assert combine(pieces[:missing] + pieces[missing + 1 :]) != secret


def test_one_part_is_the_secret() -> None:
    assert split(b"abc", 1) == [b"abc"]


def test_parts_are_fresh() -> None:
    assert split(b"secret", 3) != split(b"secret", 3)


def test_largest_split() -> None:
    assert combine(split(b"\x01\x02", 255)) == b"\x01\x02"


@pytest.mark.parametrize(("secret", "parts"), [(b"", 2), (b"s", 0), (b"s", 256), (b"s", -1)])
def test_split_refuses(secret: bytes, parts: int) -> None:
    with pytest.raises(ValueError):
        split(secret, parts)


def test_xor_bytes() -> None:
    assert xor_bytes(b"\x0f\xf0", b"\xff\x00") == b"\xf0\xf0"
    assert xor_bytes(b"\x00\x01") == b"\x00\x01"
    assert xor_bytes(b"\x00\x00\x01", b"\x00\x00\x01") == b"\x00\x00\x00"  # keeps leading zeros
    with pytest.raises(ValueError):
        xor_bytes()
    with pytest.raises(ValueError):
        xor_bytes(b"\x00", b"\x00\x00")
    with pytest.raises(ValueError):
        combine([])
