"""encoding: lp, lp_strings, canonical_json, strict base64, ct_equal."""

from __future__ import annotations

import array
import base64
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.encoding import b64d, b64e, canonical_json, ct_equal, lp, lp_strings

# ------------------------------------------------------------------------------ lp


def unlp(data: bytes) -> tuple[bytes, ...]:
    """Parse lp() output; raises ValueError unless it is exactly a sequence of parts."""
    parts, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise ValueError("truncated length")
        (n,) = struct.unpack(">I", data[i : i + 4])
        if i + 4 + n > len(data):
            raise ValueError("truncated part")
        parts.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return tuple(parts)


tuples = st.lists(st.binary(max_size=12), max_size=6).map(tuple)


@settings(max_examples=200)
@given(parts=tuples)
def test_lp_is_decodable(parts: tuple[bytes, ...]) -> None:
    assert unlp(lp(*parts)) == parts


@settings(max_examples=300)
@given(a=tuples, b=tuples)
def test_lp_is_injective(a: tuple[bytes, ...], b: tuple[bytes, ...]) -> None:
    if a != b:
        assert lp(*a) != lp(*b)


@settings(max_examples=100)
@given(a=st.binary(max_size=10), b=st.binary(max_size=10), c=st.binary(max_size=10))
def test_lp_regrouping_never_collides(a: bytes, b: bytes, c: bytes) -> None:
    assert lp(a + b, c) != lp(a, b + c) or b == b""
    assert lp(a + b) != lp(a, b)


def test_lp_known_answer() -> None:
    assert lp() == b""
    assert lp(b"") == b"\x00\x00\x00\x00"
    assert lp(b"ab", b"c") == b"\x00\x00\x00\x02ab\x00\x00\x00\x01c"
    # lp() is annotated for bytes but documented and checked for any bytes-like value.
    assert lp(bytearray(b"ab"), memoryview(b"c")) == lp(b"ab", b"c")  # type: ignore[arg-type]


def test_lp_counts_bytes_of_memoryviews() -> None:
    """Regression: len() of a multi-byte memoryview counts items, which let tuples collide."""
    raw = b"AB" + struct.pack(">I", 2) + b"CD"  # 8 bytes
    view = memoryview(array.array("I", raw))
    assert view.nbytes == 8 and len(view) == 2
    assert lp(view) == lp(raw)  # type: ignore[arg-type]
    assert lp(view) != lp(b"AB", b"CD")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["text", 1, None, [b"a"]])
def test_lp_refuses_non_bytes(bad: Any) -> None:
    with pytest.raises(TypeError):
        lp(b"ok", bad)


@settings(max_examples=100)
@given(a=st.lists(st.text(max_size=5), max_size=5), b=st.lists(st.text(max_size=5), max_size=5))
def test_lp_strings(a: list[str], b: list[str]) -> None:
    encoded = lp_strings(a)
    assert encoded[:4] == struct.pack(">I", len(a))
    assert unlp(encoded[4:]) == tuple(s.encode() for s in a)
    if a != b:
        assert encoded != lp_strings(b)


def test_lp_strings_known_answer() -> None:
    assert lp_strings([]) == b"\x00\x00\x00\x00"
    assert lp_strings(["é"]) == b"\x00\x00\x00\x01\x00\x00\x00\x02\xc3\xa9"
    assert lp_strings(["a", "b"]) != lp_strings(["ab"])


# ------------------------------------------------------------------ canonical_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def _shuffled(value: Any, rnd: Any) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@settings(max_examples=150)
@given(value=json_values, rnd=st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order(value: Any, rnd: Any) -> None:
    encoded = canonical_json(value)
    assert canonical_json(_shuffled(value, rnd)) == encoded
    assert json.loads(encoded) == value
    assert encoded.isascii()
    # Sorted keys, no whitespace: re-encoding the parsed form is a fixed point.
    assert canonical_json(json.loads(encoded)) == encoded


def test_canonical_json_known_answer() -> None:
    value = {"b": 1, "a": [True, None, "é", -2], "c": {"z": "", "y": False}}
    assert canonical_json(value) == b'{"a":[true,null,"\\u00e9",-2],"b":1,"c":{"y":false,"z":""}}'
    assert canonical_json([]) == b"[]"
    assert canonical_json((1, 2)) == canonical_json([1, 2])


@pytest.mark.parametrize(
    "bad",
    [
        1.0,
        float("nan"),
        float("inf"),
        {"a": 0.5},
        [1, [2.5]],
        {1: "x"},
        {"a": {(1,): 2}},
        b"bytes",
        {"a": {1, 2}},
        object(),
    ],
)
def test_canonical_json_refuses(bad: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(bad)


# --------------------------------------------------------------------------- base64


@settings(max_examples=100)
@given(data=st.binary(max_size=64))
def test_base64_round_trip(data: bytes) -> None:
    text = b64e(data)
    assert text == base64.b64encode(data).decode()
    assert b64d(text) == data
    assert b64d(text.encode()) == data


@pytest.mark.parametrize(
    "bad",
    [
        "QQ",  # missing padding
        "QQ=",  # short padding
        "Q===",
        "QQ==QQ==",  # data after padding
        "=QQ=",
        " QQ==",
        "QQ==\n",
        "QU\nJD",
        "-_-_",  # URL-safe alphabet
        "QUJD*",
        "QUJDé",
        "QUJD\x00",
    ],
)
def test_b64d_is_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        b64d(bad)


def test_b64d_empty() -> None:
    assert b64d("") == b""


# -------------------------------------------------------------------------- ct_equal


@settings(max_examples=50)
@given(a=st.binary(max_size=40), b=st.binary(max_size=40))
def test_ct_equal(a: bytes, b: bytes) -> None:
    assert ct_equal(a, b) is (a == b)
    assert ct_equal(a, a)
