"""Every input rule, with the error code and target it produces (and the values just inside)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyok.kms import validation as v
from kyok.kms.errors import InvalidField

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _bad(fn: Any, *args: Any, target: str, **kwargs: Any) -> InvalidField:
    with pytest.raises(InvalidField) as info:
        fn(*args, **kwargs)
    assert info.value.code == "INVALID_FIELD_ERR"
    assert info.value.status == 400
    assert info.value.target == target
    return info.value


# ----------------------------------------------------------------------------- name


@pytest.mark.parametrize("name", ["ab", "a" * 90, "root key 1", "ключ-ü"])
def test_name_ok(name: str) -> None:
    assert v.validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a", "a" * 91, "  ", "bad\x00name", "tab\tname", "x\ud800y", 5, None]
)
def test_name_bad(name: Any) -> None:
    _bad(v.validate_name, name, target="name")


# ----------------------------------------------------------------------------- description


@pytest.mark.parametrize("text", [None, "", "d" * 240, "line\nbreak\tand tab"])
def test_description_ok(text: Any) -> None:
    assert v.validate_description(text) == text


@pytest.mark.parametrize("text", ["d" * 241, "nul\x00", "esc\x1b", b"bytes"])
def test_description_bad(text: Any) -> None:
    _bad(v.validate_description, text, target="description")


# ----------------------------------------------------------------------------- aliases


@pytest.mark.parametrize("alias", ["ab", "A" * 90, "my_key-1", "0123456789"])
def test_alias_ok(alias: str) -> None:
    assert v.validate_alias(alias) == alias


@pytest.mark.parametrize(
    "alias",
    [
        "a",  # too short
        "a" * 91,  # too long
        "has space",
        "dot.ted",
        "ümlaut",
        "12345678-1234-1234-1234-123456789abc",  # a UUID
        "123456781234123412341234567890ab",  # a UUID without dashes
        "keys",
        "Wrap",  # reserved, any case
        "versions",
        "allowed_ip",
        7,
    ],
)
def test_alias_bad(alias: Any) -> None:
    _bad(v.validate_alias, alias, target="aliases")


def test_alias_target_is_configurable() -> None:
    _bad(v.validate_alias, "a", "alias", target="alias")


def test_aliases_list_rules() -> None:
    assert v.validate_aliases(None) == ()
    assert v.validate_aliases(["a1", "a2", "a3", "a4", "a5"]) == ("a1", "a2", "a3", "a4", "a5")
    _bad(v.validate_aliases, ["a1", "a2", "a3", "a4", "a5", "a6"], target="aliases")
    _bad(v.validate_aliases, ["a1", "a1"], target="aliases")
    _bad(v.validate_aliases, "a1", target="aliases")
    _bad(v.validate_aliases, ["ok-1", "bad alias"], target="aliases")


def test_reserved_words_are_the_reference_list() -> None:
    assert (
        set(
            [
                "allowed_ip",
                "key",
                "keys",
                "metadata",
                "policy",
                "policies",
                "registration",
                "registrations",
                "ring",
                "rings",
                "rotate",
                "wrap",
                "unwrap",
                "rewrap",
                "version",
                "versions",
            ]
        )
        == v.RESERVED_ALIASES
    )


# ----------------------------------------------------------------------------- tags


def test_tags_ok() -> None:
    assert v.validate_tags(["t"] * 30) == ("t",) * 30
    assert v.validate_tags(["x" * 30, "with space", "dash-ok"]) == (
        "x" * 30,
        "with space",
        "dash-ok",
    )
    assert v.validate_tags(None) == ()


@pytest.mark.parametrize(
    "tags",
    [
        ["t"] * 31,
        ["x" * 31],
        [""],
        ["a<b"],
        ["a>b"],
        ["a,b"],
        ["a:b"],
        ["a&b"],
        ["a|b"],
        ["nl\n"],
        "tag",
        [3],
    ],
)
def test_tags_bad(tags: Any) -> None:
    _bad(v.validate_tags, tags, target="tags")


# ----------------------------------------------------------------------------- material


@pytest.mark.parametrize("size", [16, 24, 32])
def test_root_material_sizes(size: int) -> None:
    assert v.validate_material(b"k" * size, extractable=False) == b"k" * size


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33, 64])
def test_root_material_bad_sizes(size: int) -> None:
    _bad(v.validate_material, b"k" * size, extractable=False, target="material")


@pytest.mark.parametrize("size", [1, 7500])
def test_standard_material_sizes(size: int) -> None:
    assert len(v.validate_material(b"s" * size, extractable=True)) == size


@pytest.mark.parametrize("material", [b"", b"s" * 7501, "text", bytearray(b"abc")])
def test_standard_material_bad(material: Any) -> None:
    _bad(v.validate_material, material, extractable=True, target="material")


# ----------------------------------------------------------------------------- expiration


def test_expiration_rules() -> None:
    assert v.validate_expiration(None, NOW) is None
    later = NOW + timedelta(seconds=1)
    assert v.validate_expiration(later, NOW) == later
    _bad(v.validate_expiration, NOW, NOW, target="expires_at")
    _bad(v.validate_expiration, NOW - timedelta(days=1), NOW, target="expires_at")
    _bad(v.validate_expiration, datetime(2030, 1, 1), NOW, target="expires_at")  # naive
    _bad(v.validate_expiration, "2030-01-01T00:00:00Z", NOW, target="expires_at")


# ----------------------------------------------------------------------------- wrap inputs


def test_plaintext_rules() -> None:
    assert v.validate_plaintext(None) is None
    assert v.validate_plaintext(b"p") == b"p"
    assert len(v.validate_plaintext(b"p" * v.PLAINTEXT_MAX) or b"") == 4096
    _bad(v.validate_plaintext, b"", target="plaintext")
    _bad(v.validate_plaintext, b"p" * 4097, target="plaintext")
    _bad(v.validate_plaintext, "text", target="plaintext")


def test_aad_rules() -> None:
    assert v.validate_aad(None) == ()
    assert v.validate_aad([]) == ()
    assert v.validate_aad(["", "a" * 255]) == ("", "a" * 255)
    assert v.validate_aad(["x"] * 32) == ("x",) * 32
    _bad(v.validate_aad, ["a" * 256], target="aad")
    _bad(v.validate_aad, ["x"] * 33, target="aad")
    _bad(v.validate_aad, "single string", target="aad")
    _bad(v.validate_aad, [b"bytes"], target="aad")
    _bad(v.validate_aad, ["lone \ud800 surrogate"], target="aad")


def test_ciphertext_rules() -> None:
    assert v.validate_ciphertext(b"c") == b"c"
    _bad(v.validate_ciphertext, b"", target="ciphertext")
    _bad(v.validate_ciphertext, "c", target="ciphertext")
    assert v.CIPHERTEXT_MAX == 17 + 40 + 4096


# ----------------------------------------------------------------------------- paging, ids


def test_page_rules() -> None:
    assert v.validate_page(1, 0) == (1, 0)
    assert v.validate_page(5000, 2**31 - 1) == (5000, 2**31 - 1)
    _bad(v.validate_page, 0, 0, target="limit")
    _bad(v.validate_page, 5001, 0, target="limit")
    _bad(v.validate_page, True, 0, target="limit")
    _bad(v.validate_page, "10", 0, target="limit")
    _bad(v.validate_page, 10, -1, target="offset")
    _bad(v.validate_page, 10, 2**31, target="offset")


@pytest.mark.parametrize("ring", ["ab", "default", "team-1", "0" * 100, "a-"])
def test_key_ring_id_ok(ring: str) -> None:
    assert v.validate_key_ring_id(ring) == ring


@pytest.mark.parametrize("ring", ["a", "0" * 101, "-ab", "Upper", "under_score", "sp ace", "", 12])
def test_key_ring_id_bad(ring: Any) -> None:
    _bad(v.validate_key_ring_id, ring, target="key_ring_id")


def test_instance_rules() -> None:
    assert v.validate_instance_id("dev-instance_1") == "dev-instance_1"
    _bad(v.validate_instance_id, "-x", target="instance_id")
    _bad(v.validate_instance_id, "x" * 65, target="instance_id")
    assert v.validate_instance_name("i") == "i"
    _bad(v.validate_instance_name, "", target="name")
    _bad(v.validate_instance_name, " ", target="name")
    assert v.validate_seal("shares") == "shares"
    _bad(v.validate_seal, "pkcs11", target="seal")


# ----------------------------------------------------------------------------- robustness

_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.binary(),
    st.lists(st.one_of(st.text(), st.integers(), st.binary()), max_size=40),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
)


@given(_anything)
def test_validators_raise_only_invalid_field(value: Any) -> None:
    for fn in (
        v.validate_name,
        v.validate_description,
        v.validate_alias,
        v.validate_aliases,
        v.validate_tags,
        v.validate_plaintext,
        v.validate_aad,
        v.validate_ciphertext,
        v.validate_key_ring_id,
        v.validate_instance_id,
        v.validate_instance_name,
        v.validate_seal,
        lambda x: v.validate_material(x, extractable=False),
        lambda x: v.validate_material(x, extractable=True),
        lambda x: v.validate_expiration(x, NOW),
        lambda x: v.validate_page(x, 0),
        lambda x: v.validate_page(1, x),
    ):
        with contextlib.suppress(InvalidField):
            fn(value)
