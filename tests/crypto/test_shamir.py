"""shamir: GF(2^8) against a table-based reference, split/combine properties, refusals.

Fixed-share vectors (docs/formats.md) are in test_kyok_formats.py.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto import shamir
from kyok.crypto.shamir import Share, _inv, _mul, combine, split

# Reference field: exp/log tables over the generator 3 of GF(2^8) mod x^8 + x^4 + x^3 + x + 1.
EXP = [0] * 510
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = EXP[_i + 255] = _x
    LOG[_x] = _i
    _x ^= (_x << 1) ^ (0x11B if _x & 0x80 else 0)  # x * 3 = x * 2 + x
assert sorted(EXP[:255]) == list(range(1, 256))  # 3 generates the whole group


def ref_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else EXP[LOG[a] + LOG[b]]


def ref_inv(a: int) -> int:
    return EXP[255 - LOG[a]]


def ref_interpolate_at(points: list[tuple[int, int]], x: int) -> int:
    """Lagrange interpolation of one byte at x, with the reference field."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = ref_mul(num, x ^ xj)
                den = ref_mul(den, xi ^ xj)
        total ^= ref_mul(yi, ref_mul(num, ref_inv(den)))
    return total


# ------------------------------------------------------------------------ the field


def test_mul_matches_the_reference_everywhere() -> None:
    for a in range(256):
        row = [_mul(a, b) for b in range(256)]
        assert row == [ref_mul(a, b) for b in range(256)], a


def test_inv_matches_the_reference_everywhere() -> None:
    for a in range(1, 256):
        assert _inv(a) == ref_inv(a)
        assert _mul(a, _inv(a)) == 1
    with pytest.raises(ZeroDivisionError):
        _inv(0)


def test_known_products() -> None:
    # FIPS 197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}.
    assert _mul(0x57, 0x83) == 0xC1
    assert _mul(0x57, 0x13) == 0xFE


elements = st.integers(0, 255)


@settings(max_examples=300)
@given(a=elements, b=elements, c=elements)
def test_field_laws(a: int, b: int, c: int) -> None:
    assert _mul(a, b) == _mul(b, a)
    assert _mul(_mul(a, b), c) == _mul(a, _mul(b, c))
    assert _mul(a, b ^ c) == _mul(a, b) ^ _mul(a, c)
    assert _mul(a, 1) == a
    assert _mul(a, 0) == 0
    if a and b:
        assert _mul(a, b) != 0
        assert _inv(_mul(a, b)) == _mul(_inv(a), _inv(b))


# ----------------------------------------------------------------- split / combine


@st.composite
def sharings(
    draw: st.DrawFn, min_threshold: int = 1, min_secret: int = 1
) -> tuple[bytes, int, int]:
    secret = draw(st.binary(min_size=min_secret, max_size=48))
    threshold = draw(st.integers(min_threshold, 7))
    count = draw(st.integers(threshold, 9))
    return secret, threshold, count


@settings(max_examples=80)
@given(sharing=sharings(), data=st.data())
def test_any_threshold_shares_recover(sharing: tuple[bytes, int, int], data: st.DataObject) -> None:
    secret, threshold, count = sharing
    shares = split(secret, threshold, count)
    assert [s.x for s in shares] == list(range(1, count + 1))
    assert all(len(s.y) == len(secret) for s in shares)
    chosen = data.draw(st.permutations(shares), label="order")
    size = data.draw(st.integers(threshold, count), label="how many")
    assert combine(chosen[:size]) == secret
    # The shares are points of degree-(threshold-1) polynomials with the secret at 0.
    basis = shares[:threshold]
    for other in shares[threshold:]:
        for k in range(len(secret)):
            points = [(s.x, s.y[k]) for s in basis]
            assert ref_interpolate_at(points, other.x) == other.y[k]
    for k in range(len(secret)):
        assert ref_interpolate_at([(s.x, s.y[k]) for s in basis], 0) == secret[k]


@settings(max_examples=60)
@given(sharing=sharings(min_threshold=2, min_secret=8), data=st.data())
def test_fewer_than_threshold_shares_give_a_wrong_value(
    sharing: tuple[bytes, int, int], data: st.DataObject
) -> None:
    """With k-1 shares each byte is right with probability 1/256: 8+ bytes, at most 2^-64."""
    secret, threshold, count = sharing
    shares = data.draw(st.permutations(split(secret, threshold, count)), label="order")
    assert combine(shares[: threshold - 1]) != secret


def test_every_subset_of_a_small_sharing() -> None:
    secret = bytes(range(32))
    shares = split(secret, 3, 5)
    for size in range(1, 6):
        for subset in itertools.combinations(shares, size):
            assert (combine(subset) == secret) is (size >= 3)


def test_threshold_one_shares_are_the_secret() -> None:
    assert [s.y for s in split(b"abc", 1, 3)] == [b"abc"] * 3


def test_largest_sharing() -> None:
    shares = split(b"\x42\x43", 2, 255)
    assert shares[-1].x == 255
    assert combine([shares[0], shares[-1]]) == b"\x42\x43"


def test_shares_are_fresh() -> None:
    assert split(b"secret!!", 2, 3) != split(b"secret!!", 2, 3)


@pytest.mark.parametrize(
    ("secret", "threshold", "count"),
    [(b"", 2, 3), (b"s", 0, 3), (b"s", 4, 3), (b"s", 2, 256), (b"s", -1, 2), (b"s", 1, 0)],
)
def test_split_refuses(secret: bytes, threshold: int, count: int) -> None:
    with pytest.raises(ValueError):
        split(secret, threshold, count)


def test_combine_refuses_repeats_and_length_mismatches() -> None:
    a, b, c = split(b"0123456789", 2, 3)
    with pytest.raises(ValueError, match="no shares"):
        combine([])
    with pytest.raises(ValueError, match="repeated"):
        combine([a, a])
    with pytest.raises(ValueError, match="repeated"):
        combine([a, b, Share(a.x, c.y)])
    with pytest.raises(ValueError, match="length"):
        combine([a, Share(b.x, b.y[:-1])])
    with pytest.raises(ValueError, match="length"):
        combine([a, Share(b.x, b.y + b"\x00")])
    with pytest.raises(ValueError):
        combine([Share(1, b""), Share(2, b"")])


@settings(max_examples=40)
@given(secret=st.binary(min_size=1, max_size=20), data=st.data())
def test_repeated_x_with_any_values_is_refused(secret: bytes, data: st.DataObject) -> None:
    shares = split(secret, 2, 4)
    dup = data.draw(st.sampled_from(shares))
    forged = Share(dup.x, data.draw(st.binary(min_size=len(secret), max_size=len(secret))))
    with pytest.raises(ValueError):
        combine([*shares, forged])


def test_share_encoding() -> None:
    share = Share(7, b"\x01\x02\x03")
    assert share.to_bytes() == b"\x07\x01\x02\x03"
    assert Share.from_bytes(share.to_bytes()) == share
    for bad in (b"", b"\x07", b"\x00\x01"):
        with pytest.raises(ValueError):
            Share.from_bytes(bad)
    for x in (0, 256, -1):
        with pytest.raises(ValueError):
            Share(x, b"\x01")


def test_share_repr_hides_the_values() -> None:
    y = bytes(range(0xC0, 0xD0))
    text = repr(Share(3, y)) + str(Share(3, y))
    assert "x=3" in text
    for needle in (y.hex(), repr(y), y.hex().upper()):
        assert needle not in text


def test_module_exports() -> None:
    assert set(shamir.__all__) == {"Share", "combine", "split"}
