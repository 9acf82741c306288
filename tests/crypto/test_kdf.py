"""kdf: HKDF-SHA256 (RFC 5869) and scrypt (RFC 7914)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.kdf import HASH_LEN, ScryptParams, hkdf_expand, hkdf_extract, hkdf_sha256, scrypt

from ._vectors import cases, h, invalid, load, valid

HKDF = load("hkdf_sha256")["vectors"]
SCRYPT = load("scrypt")


# ------------------------------------------------------------------------- HKDF


@pytest.mark.parametrize("v", cases(HKDF, where=valid))
def test_hkdf_rfc5869(v: dict[str, Any]) -> None:
    ikm, salt, info = h(v["ikm"]), h(v["salt"]), h(v["info"])
    assert hkdf_extract(salt, ikm) == h(v["prk"])
    assert hkdf_expand(h(v["prk"]), info=info, length=v["length"]) == h(v["okm"])
    assert hkdf_sha256(ikm, info=info, length=v["length"], salt=salt) == h(v["okm"])


def test_hkdf_absent_salt_is_hashlen_zeros() -> None:
    """RFC 5869 2.2: no salt means HashLen zero bytes, which HMAC treats like the empty salt (A.3)."""
    (a3,) = [v for v in HKDF if v["name"].startswith("RFC 5869 A.3")]
    ikm = h(a3["ikm"])
    assert hkdf_sha256(ikm, info=b"", length=42) == h(a3["okm"])
    assert hkdf_sha256(ikm, info=b"", length=42, salt=bytes(HASH_LEN)) == h(a3["okm"])
    assert hkdf_extract(bytes(HASH_LEN), ikm) == h(a3["prk"])


@pytest.mark.parametrize("v", cases(HKDF, where=invalid))
def test_hkdf_invalid(v: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        hkdf_expand(h(v.get("prk", "00" * 32)), info=h(v["info"]), length=v["length"])
    if "ikm" in v:
        with pytest.raises(ValueError):
            hkdf_sha256(h(v["ikm"]), info=h(v["info"]), length=v["length"], salt=h(v["salt"]))


def test_hkdf_longest_output() -> None:
    assert len(hkdf_sha256(b"k", info=b"", length=255 * HASH_LEN)) == 255 * HASH_LEN


@settings(max_examples=50)
@given(
    ikm=st.binary(max_size=80),
    salt=st.binary(max_size=80),
    info=st.binary(max_size=80),
    length=st.integers(1, 200),
)
def test_hkdf_is_extract_then_expand(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    prk = hkdf_extract(salt, ikm)
    assert prk == hmac.new(salt, ikm, hashlib.sha256).digest()
    okm = hkdf_expand(prk, info=info, length=length)
    assert okm == hkdf_sha256(ikm, info=info, length=length, salt=salt)
    # Expand is HMAC chaining (RFC 5869 2.3), written out independently.
    t, stream, counter = b"", b"", 1
    while len(stream) < length:
        t = hmac.new(prk, t + info + bytes([counter]), hashlib.sha256).digest()
        stream, counter = stream + t, counter + 1
    assert okm == stream[:length]


# ----------------------------------------------------------------------- scrypt


def _rfc_params(v: dict[str, Any]) -> dict[str, Any]:
    return {"n": v["N"], "r": v["r"], "p": v["p"]}


@pytest.mark.parametrize("v", cases(SCRYPT["vectors"]))
def test_scrypt_rfc7914_through_the_primitive(v: dict[str, Any]) -> None:
    """The RFC salts are shorter than kyok allows, so check the primitive kdf.scrypt calls."""
    password, salt = h(v["password"]), h(v["salt"])
    kdf = Scrypt(salt=salt, length=v["length"], **_rfc_params(v))
    assert kdf.derive(password) == h(v["derived_key"])
    independent = hashlib.scrypt(
        password, salt=salt, maxmem=64 << 20, dklen=v["length"], **_rfc_params(v)
    )
    assert independent == h(v["derived_key"])


@pytest.mark.parametrize("v", cases(SCRYPT["vectors"]))
def test_kdf_scrypt_refuses_the_rfc_salts(v: dict[str, Any]) -> None:
    log2_n = v["N"].bit_length() - 1
    try:
        params = ScryptParams(log2_n=log2_n, r=v["r"], p=v["p"])
    except ValueError:
        return  # refused by the parameter bounds already (RFC #1: N = 16; RFC #2: p = 16)
    with pytest.raises(ValueError, match="salt"):
        scrypt(h(v["password"]), h(v["salt"]), params, length=v["length"])


@pytest.mark.parametrize(("log2_n", "r", "p"), [(10, 8, 1), (10, 2, 3), (11, 1, 2), (12, 3, 1)])
def test_kdf_scrypt_maps_its_parameters(log2_n: int, r: int, p: int) -> None:
    """kdf.scrypt(params) is scrypt(N = 2^log2_n, r, p); r and p differ so a swap would show."""
    password, salt = b"pleaseletmein", b"SodiumChloride16"
    expected = hashlib.scrypt(password, salt=salt, n=1 << log2_n, r=r, p=p, dklen=48)
    assert scrypt(password, salt, ScryptParams(log2_n=log2_n, r=r, p=p), length=48) == expected
    assert len(scrypt(password, salt, ScryptParams(log2_n=log2_n, r=r, p=p))) == 32


@pytest.mark.parametrize("bound", cases(SCRYPT["kyok_bounds"]))
def test_scrypt_params_bounds(bound: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ScryptParams(log2_n=bound["log2_n"], r=bound["r"], p=bound["p"])


@pytest.mark.parametrize("salt", SCRYPT["kyok_salt_too_short"])
def test_kdf_scrypt_salt_too_short(salt: str) -> None:
    with pytest.raises(ValueError, match="salt"):
        scrypt(b"pw", h(salt), ScryptParams(log2_n=10))


def test_scrypt_params_edges_and_defaults() -> None:
    for log2_n in (ScryptParams.MIN_LOG2_N, ScryptParams.MAX_LOG2_N):
        ScryptParams(log2_n=log2_n, r=1, p=1)
    ScryptParams(log2_n=10, r=16, p=8)
    ScryptParams(log2_n=ScryptParams.MAX_LOG2_N, r=8, p=1)  # exactly 1 GiB
    default = ScryptParams()
    assert (default.log2_n, default.r, default.p) == (17, 8, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.log2_n = 10  # type: ignore[misc]
