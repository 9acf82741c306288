"""File helpers: all-or-nothing outputs, and rewrap_file updating only the header, in place,
crash-safely."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from kyok.client import RewrapResult, UnwrapResult
from kyok.client import envelope as ev
from kyok.client.envelope import _format as fmt
from kyok.client.envelope._pipeline import Pipeline
from kyok.client.envelope.testing import LocalKeyService

from ._util import SMALL

CAP = fmt.DEFAULT_SLOT_CAPACITY
SLOT_A = fmt.FIXED_SIZE
SLOT_B = fmt.FIXED_SIZE + CAP
HEADER_SIZE = fmt.FIXED_SIZE + 2 * CAP


@pytest.fixture
def sealed(tmp_path: Path, keys: LocalKeyService, key_id: str) -> Path:
    (tmp_path / "plain").write_bytes(bytes(range(256)) * 100)
    ev.encrypt_file(
        tmp_path / "plain",
        tmp_path / "f.kyok",
        keys=keys,
        key=key_id,
        aad=["x"],
        segment_size=SMALL,
    )
    return tmp_path / "f.kyok"


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_an_existing_output_is_refused_unless_overwrite(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path
) -> None:
    (tmp_path / "out").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ev.decrypt_file(sealed, tmp_path / "out", keys=keys, aad=["x"])
    with pytest.raises(FileExistsError):
        ev.encrypt_file(tmp_path / "plain", sealed, keys=keys, key=key_id)
    assert (tmp_path / "out").read_bytes() == b"keep me"
    assert keys.calls["unwrap"] == 0 and keys.calls["wrap"] == 1
    ev.decrypt_file(sealed, tmp_path / "out", keys=keys, aad=["x"], overwrite=True)
    assert (tmp_path / "out").read_bytes() == (tmp_path / "plain").read_bytes()
    assert names(tmp_path) == ["f.kyok", "out", "plain"]


def test_a_failed_decrypt_leaves_the_old_output_and_no_temp_file(
    tmp_path: Path, keys: LocalKeyService, sealed: Path
) -> None:
    data = bytearray(sealed.read_bytes())
    data[-1] ^= 1
    sealed.write_bytes(bytes(data))
    (tmp_path / "out").write_bytes(b"old")
    with pytest.raises(ev.InvalidEnvelope):
        ev.decrypt_file(sealed, tmp_path / "out", keys=keys, aad=["x"], overwrite=True)
    assert (tmp_path / "out").read_bytes() == b"old"
    assert names(tmp_path) == ["f.kyok", "out", "plain"]


def test_a_refused_key_leaves_nothing(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path
) -> None:
    keys.disable(key_id)
    with pytest.raises(ev.KeyUnavailable):
        ev.decrypt_file(sealed, tmp_path / "out", keys=keys, aad=["x"])
    with pytest.raises(ev.KeyUnavailable):
        ev.encrypt_file(tmp_path / "plain", tmp_path / "again", keys=keys, key=key_id)
    assert names(tmp_path) == ["f.kyok", "plain"]


def test_a_missing_input_creates_nothing(tmp_path: Path, keys: LocalKeyService) -> None:
    with pytest.raises(FileNotFoundError):
        ev.decrypt_file(tmp_path / "nope", tmp_path / "out", keys=keys)
    assert names(tmp_path) == []


def test_a_write_error_in_the_writer_thread_reaches_the_caller() -> None:
    class Full:
        def __init__(self) -> None:
            self.got = 0

        def write(self, data: bytes | bytearray | memoryview, /) -> int:
            if self.got > 2:
                raise OSError(28, "No space left on device")
            self.got += 1
            return len(data)

    pipeline = Pipeline(io.BytesIO(bytes(100 * 10)), Full(), in_size=10, out_size=10)
    with pytest.raises(OSError, match="No space"):
        pipeline.run(lambda i, last, data, out: _copy(data, out))


def _copy(data: memoryview, out: memoryview) -> int:
    out[: len(data)] = data
    return len(data)


def test_the_pipeline_keeps_order() -> None:
    data = b"".join(b"%04d" % i for i in range(500))
    out = io.BytesIO()
    seen: list[int] = []

    def transform(index: int, last: bool, chunk: memoryview, buffer: memoryview) -> int:
        seen.append(index)
        assert last == (len(chunk) < 4)
        return _copy(chunk, buffer)

    assert Pipeline(io.BytesIO(data), out, in_size=4, out_size=4).run(transform) == 501
    assert out.getvalue() == data and seen == list(range(501))


# -- rewrap_file ---------------------------------------------------------------------------


def test_rewrap_changes_only_the_unused_slot(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path
) -> None:
    before = sealed.read_bytes()
    inode = sealed.stat().st_ino
    assert ev.rewrap_file(sealed, keys=keys, aad=["x"]) is False  # already the newest version
    assert sealed.read_bytes() == before
    new_version = keys.rotate(key_id)
    assert ev.rewrap_file(sealed, keys=keys, aad=["x"]) is True
    after = sealed.read_bytes()
    assert sealed.stat().st_ino == inode  # in place
    assert len(after) == len(before)
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    assert changed and min(changed) >= SLOT_B and max(changed) < HEADER_SIZE
    with open(sealed, "rb") as f:
        header = ev.read_header(f)
    assert header.key_version_id == new_version
    out = io.BytesIO()
    opened = ev.decrypt(io.BytesIO(after), out, keys=keys, aad=["x"])
    assert not opened.is_stale and out.getvalue() == (tmp_path / "plain").read_bytes()
    assert keys.calls["rewrap"] == 2


def test_rewraps_alternate_between_the_slots(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path
) -> None:
    plain = (tmp_path / "plain").read_bytes()
    for n in range(1, 6):
        keys.rotate(key_id)
        before = sealed.read_bytes()
        assert ev.rewrap_file(sealed, keys=keys, aad=["x"])
        after = sealed.read_bytes()
        changed = [i for i in range(len(before)) if before[i] != after[i]]
        slot = SLOT_B if n % 2 else SLOT_A
        assert min(changed) >= slot and max(changed) < slot + CAP
        assert ev.decrypt_bytes(after, keys=keys, aad=["x"]) == plain


def test_a_torn_slot_write_leaves_a_file_that_opens(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path
) -> None:
    """A crash in the middle of the slot write: the new slot is half written."""
    plain = (tmp_path / "plain").read_bytes()
    before = sealed.read_bytes()
    keys.rotate(key_id)
    assert ev.rewrap_file(sealed, keys=keys, aad=["x"])
    after = sealed.read_bytes()
    for cut in (1, 17, CAP // 2, CAP - 33, CAP - 1):
        torn = after[: SLOT_B + cut] + before[SLOT_B + cut :]
        # the old slot (version 1) is used; kyok says a newer version exists
        out = io.BytesIO()
        header = ev.decrypt(io.BytesIO(torn), out, keys=keys, aad=["x"])
        assert out.getvalue() == plain and header.is_stale
    # and a rewrap of the torn file repairs it
    sealed.write_bytes(after[: SLOT_B + 100] + before[SLOT_B + 100 :])
    assert ev.rewrap_file(sealed, keys=keys, aad=["x"])
    with open(sealed, "rb") as f:
        assert ev.read_header(f).key_version_id == ev.read_header(io.BytesIO(after)).key_version_id


def test_both_slots_damaged_is_a_damaged_header(keys: LocalKeyService, sealed: Path) -> None:
    data = bytearray(sealed.read_bytes())
    data[SLOT_A + 3] ^= 1
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_bytes(bytes(data), keys=keys, aad=["x"])
    assert info.value.code == "HEADER_DAMAGED"


class LongCiphertexts(LocalKeyService):
    """Returns wrapped DEKs too long for a 1 KiB slot (as a key service with bigger ciphertexts
    might): a prefix of '#' characters that unwrap strips again."""

    PAD = "#" * 3000

    def unwrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> UnwrapResult:
        return super().unwrap(key_id, ciphertext.lstrip("#"), aad=aad)

    def rewrap(
        self, key_id: str, ciphertext: str, *, aad: Sequence[str] | None = None
    ) -> RewrapResult:
        result = super().rewrap(key_id, ciphertext.lstrip("#"), aad=aad)
        return RewrapResult(
            self.PAD + result.ciphertext, result.key_version_id, result.rewrapped_key_version_id
        )


def test_a_wrapped_dek_too_big_for_the_slot_rewrites_the_file(tmp_path: Path) -> None:
    keys = LongCiphertexts()
    key = keys.create_key()
    plain = os.urandom(3 * SMALL + 5)
    (tmp_path / "plain").write_bytes(plain)
    path = tmp_path / "f.kyok"
    ev.encrypt_file(tmp_path / "plain", path, keys=keys, key=key, segment_size=SMALL)
    os.chmod(path, 0o640)
    before = path.read_bytes()
    keys.rotate(key)
    assert ev.rewrap_file(path, keys=keys)
    after = path.read_bytes()
    with open(path, "rb") as f:
        header = ev.read_header(f)
    assert header.header_size == fmt.FIXED_SIZE + 2 * 3328 and header.wrapped_dek.startswith("#")
    assert after[header.header_size :] == before[HEADER_SIZE:]  # segments copied verbatim
    assert path.stat().st_mode & 0o777 == 0o640
    assert ev.decrypt_bytes(after, keys=keys) == plain
    assert names(tmp_path) == ["f.kyok", "plain"]
    # the previous wrapped DEK is kept in the other slot: tear the new one, the old one opens
    capacity = (header.header_size - fmt.FIXED_SIZE) // 2
    torn = bytearray(after)
    torn[fmt.FIXED_SIZE + 5] ^= 1
    out = io.BytesIO()
    assert ev.decrypt(io.BytesIO(bytes(torn)), out, keys=keys).is_stale
    assert out.getvalue() == plain and capacity == 3328


def test_rewrap_reports_refusals(keys: LocalKeyService, key_id: str, sealed: Path) -> None:
    keys.rotate(key_id)
    keys.disable(key_id)
    before = sealed.read_bytes()
    with pytest.raises(ev.KeyUnavailable) as info:
        ev.rewrap_file(sealed, keys=keys, aad=["x"])
    assert info.value.reason == "suspended" and "enable it to rewrap" in str(info.value)
    assert sealed.read_bytes() == before


def test_rewrap_of_a_non_envelope(tmp_path: Path, keys: LocalKeyService) -> None:
    (tmp_path / "x").write_bytes(b"hello")
    with pytest.raises(ev.InvalidEnvelope):
        ev.rewrap_file(tmp_path / "x", keys=keys)
    assert (tmp_path / "x").read_bytes() == b"hello"
