"""Round trips of kyok-envelope/1: every size from empty to several segments, through bytes,
streams (seekable, pipe-like, read-only) and files, with and without AAD."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.client import ClientError
from kyok.client import envelope as ev
from kyok.client.envelope import _format as fmt
from kyok.client.envelope.testing import LocalKeyService

from ._util import SMALL, Chunky, ReadOnly, segments

aad_lists = st.one_of(st.none(), st.lists(st.text(max_size=20), max_size=4))


@settings(max_examples=60)
@given(
    data=st.one_of(
        st.binary(max_size=4 * SMALL + 100),
        st.sampled_from([k * SMALL + d for k in range(5) for d in (-1, 0, 1) if k or d >= 0]).map(
            lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)
        ),
    ),
    segment_size=st.sampled_from([SMALL, SMALL + 1, 3 * SMALL]),
    aad=aad_lists,
)
def test_bytes_round_trip(data: bytes, segment_size: int, aad: list[str] | None) -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    sealed = ev.encrypt_bytes(data, keys=keys, key=key, aad=aad, segment_size=segment_size)
    assert ev.decrypt_bytes(sealed, keys=keys, aad=aad) == data
    # the size is exactly header + data + one tag per segment; the last segment is short
    header = ev.read_header(io.BytesIO(sealed))
    count = len(data) // segment_size + 1
    assert len(sealed) == header.header_size + len(data) + count * fmt.TAG_SIZE
    _, parts = segments(sealed)
    assert len(parts) == count and len(parts[-1]) - fmt.TAG_SIZE == len(data) % segment_size
    assert keys.calls == {"wrap": 1, "unwrap": 1, "rewrap": 0}


@settings(max_examples=25)
@given(data=st.binary(max_size=3 * SMALL + 50), step=st.integers(1, 5000), aad=aad_lists)
def test_streams_with_short_reads(data: bytes, step: int, aad: list[str] | None) -> None:
    keys = LocalKeyService()
    key = keys.create_key()
    sealed = io.BytesIO()
    encrypt_progress: list[int] = []
    header = ev.encrypt(
        Chunky(data, step),  # type: ignore[arg-type]
        sealed,
        keys=keys,
        key=key,
        aad=aad,
        segment_size=SMALL,
        progress=encrypt_progress.append,
    )
    assert sum(encrypt_progress) == len(data)
    assert all(0 < n <= SMALL for n in encrypt_progress)
    out = io.BytesIO()
    decrypt_progress: list[int] = []
    opened = ev.decrypt(
        Chunky(sealed.getvalue(), step),  # type: ignore[arg-type]
        out,
        keys=keys,
        aad=aad,
        progress=decrypt_progress.append,
    )
    assert out.getvalue() == data and sum(decrypt_progress) == len(data)
    assert opened.key_id == header.key_id == key
    assert (opened.wrapped_dek, opened.segment_size) == (header.wrapped_dek, SMALL)
    assert ev.decrypt_bytes(sealed.getvalue(), keys=keys, aad=aad) == data


def test_read_only_streams(keys: LocalKeyService, key_id: str) -> None:
    data = os.urandom(2 * SMALL + 3)
    sealed = io.BytesIO()
    ev.encrypt(ReadOnly(data), sealed, keys=keys, key=key_id, segment_size=SMALL)  # type: ignore[arg-type]
    out = io.BytesIO()
    ev.decrypt(ReadOnly(sealed.getvalue()), out, keys=keys)  # type: ignore[arg-type]
    assert out.getvalue() == data


def test_decrypt_reads_from_the_stream_position(keys: LocalKeyService, key_id: str) -> None:
    sealed = ev.encrypt_bytes(b"payload", keys=keys, key=key_id)
    src = io.BytesIO(b"prefix" + sealed)
    src.seek(6)
    out = io.BytesIO()
    ev.decrypt(src, out, keys=keys)
    assert out.getvalue() == b"payload"


def test_each_file_has_its_own_dek_and_salt(keys: LocalKeyService, key_id: str) -> None:
    a = ev.encrypt_bytes(b"same", keys=keys, key=key_id)
    b = ev.encrypt_bytes(b"same", keys=keys, key=key_id)
    ha, hb = ev.read_header(io.BytesIO(a)), ev.read_header(io.BytesIO(b))
    assert ha.wrapped_dek != hb.wrapped_dek
    assert a[12:44] != b[12:44]  # salt
    assert a[-20:] != b[-20:]


def test_the_default_segment_size_is_one_mib(keys: LocalKeyService, key_id: str) -> None:
    data = os.urandom(ev.DEFAULT_SEGMENT_SIZE + 5)
    sealed = ev.encrypt_bytes(data, keys=keys, key=key_id)
    header = ev.read_header(io.BytesIO(sealed))
    assert header.segment_size == 1 << 20 and header.header_size == 2160
    assert len(sealed) == 2160 + len(data) + 2 * 16
    assert ev.decrypt_bytes(sealed, keys=keys) == data


def test_none_and_empty_aad_are_the_same(keys: LocalKeyService, key_id: str) -> None:
    sealed = ev.encrypt_bytes(b"x", keys=keys, key=key_id, aad=[])
    assert ev.decrypt_bytes(sealed, keys=keys) == b"x"
    assert ev.decrypt_bytes(sealed, keys=keys, aad=()) == b"x"


def test_aliases_work_as_key_ids(keys: LocalKeyService) -> None:
    keys.create_key(alias="orders")
    sealed = ev.encrypt_bytes(b"by alias", keys=keys, key="orders")
    assert ev.read_header(io.BytesIO(sealed)).key_id == "orders"
    assert ev.decrypt_bytes(sealed, keys=keys) == b"by alias"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"segment_size": 4095}, ValueError),
        ({"segment_size": (64 << 20) + 1}, ValueError),
        ({"segment_size": 4096.0}, TypeError),
        ({"segment_size": True}, TypeError),
        ({"aad": "one string"}, TypeError),
        ({"aad": [b"bytes"]}, TypeError),
        ({"aad": 5}, TypeError),
        ({"key": ""}, ValueError),
        ({"key": 7}, TypeError),
    ],
)
def test_bad_arguments_are_refused_before_any_call(
    keys: LocalKeyService, key_id: str, kwargs: dict[str, object], error: type[Exception]
) -> None:
    args: dict[str, object] = {"keys": keys, "key": key_id, **kwargs}
    out = io.BytesIO()
    with pytest.raises(error):
        ev.encrypt(io.BytesIO(b"data"), out, **args)  # type: ignore[arg-type]
    assert out.getvalue() == b"" and keys.calls["wrap"] == 0


def test_a_short_dek_from_the_key_service_is_refused(keys: LocalKeyService, key_id: str) -> None:
    class ShortDek(LocalKeyService):
        def wrap(self, key_id, plaintext=None, *, aad=None):  # type: ignore[no-untyped-def]
            return super().wrap(key_id, b"0123456789", aad=aad)

    short = ShortDek()
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.encrypt_bytes(b"x", keys=short, key=short.create_key())
    assert info.value.code == "DEK_TOO_SHORT"


def test_errors_are_client_errors() -> None:
    assert issubclass(ev.InvalidEnvelope, ev.EnvelopeError)
    assert issubclass(ev.KeyUnavailable, ev.EnvelopeError)
    assert issubclass(ev.EnvelopeError, ClientError)
    with pytest.raises(ValueError, match="reason"):
        ev.KeyUnavailable("x", reason="bogus", key_id="k")  # type: ignore[arg-type]


def test_headers_and_key_objects_do_not_show_secrets(keys: LocalKeyService, key_id: str) -> None:
    sealed = ev.encrypt_bytes(b"x", keys=keys, key=key_id)
    header = ev.read_header(io.BytesIO(sealed))
    assert header.wrapped_dek not in repr(header)
    reader = ev.SegmentReader(io.BytesIO(sealed), keys=keys)
    assert "redacted" in repr(reader._cipher)
    with pytest.raises(TypeError):
        pickle.dumps(reader._cipher)


def test_file_round_trip(tmp_path: Path, keys: LocalKeyService, key_id: str) -> None:
    data = os.urandom(3 * SMALL + 11)
    (tmp_path / "plain").write_bytes(data)
    seen: list[int] = []
    header = ev.encrypt_file(
        tmp_path / "plain",
        tmp_path / "sealed",
        keys=keys,
        key=key_id,
        aad=["file=plain"],
        segment_size=SMALL,
        progress=seen.append,
    )
    assert sum(seen) == len(data)
    assert (tmp_path / "sealed").stat().st_mode & 0o777 == 0o600
    with open(tmp_path / "sealed", "rb") as f:
        assert ev.read_header(f) == header
    opened = ev.decrypt_file(
        str(tmp_path / "sealed"), str(tmp_path / "out"), keys=keys, aad=["file=plain"]
    )
    assert opened.wrapped_dek == header.wrapped_dek
    assert (tmp_path / "out").read_bytes() == data
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "plain", "sealed"]
