"""The file helpers' pipeline (reader thread, AES-GCM in the caller, writer thread): it reuses a
fixed pool of buffers, stops every stage on any failure, joins its threads, leaves no output
or temporary file, and never hands the plaintext of a segment that failed to the writer."""

from __future__ import annotations

import io
import os
import resource
import signal
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kyok.client import envelope as ev
from kyok.client.envelope import _format as fmt
from kyok.client.envelope._files import write_atomically
from kyok.client.envelope._pipeline import Pipeline, open_pipelined, seal_pipelined
from kyok.client.envelope._segments import SegmentCipher
from kyok.client.envelope._stream import decrypt_to, encrypt_to
from kyok.client.envelope.testing import LocalKeyService

from ._util import SMALL, segments

SEGMENTS = 64
DATA = bytes(range(256)) * (SEGMENTS * SMALL // 256) + b"the short final segment"
# (reader thread, writer thread): the file helpers' choice on several cores, for a pipe, on one
MODES = [(True, True), (False, True), (False, False)]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def threads_before() -> Iterator[int]:
    """The thread count before the test; checks after it that the pipeline's threads are gone."""
    before = threading.active_count()
    yield before
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("kyok-envelope")]


def _copy(data: memoryview, out: memoryview) -> int:
    out[: len(data)] = data
    return len(data)


class Recorder:
    """A writer that keeps copies of what it is given, and which buffers it came in."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.buffers: set[int] = set()

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if isinstance(data, memoryview):
            self.buffers.add(id(data.obj))
        self.chunks.append(bytes(data))
        return len(data)


class FailingReader(io.RawIOBase):
    """Reads ``data``, then fails with ``error`` once ``after`` bytes were read."""

    def __init__(self, data: bytes, after: int, error: BaseException) -> None:
        self._src = io.BytesIO(data)
        self._left = after
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise self._error
        n = self._src.readinto(buffer[: self._left])
        self._left -= n
        return n


class FailingWriter:
    """Accepts ``limit`` bytes, then fails with ``error``."""

    def __init__(self, limit: int, error: BaseException) -> None:
        self.got = 0
        self._limit = limit
        self._error = error

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self.got + len(data) > self._limit:
            raise self._error
        self.got += len(data)
        return len(data)


# -- the pipeline itself -------------------------------------------------------------------


@pytest.mark.parametrize(("reader", "writer"), MODES)
def test_buffers_are_allocated_once_and_reused(reader: bool, writer: bool) -> None:
    seen_in: set[int] = set()
    seen_out: set[int] = set()

    def transform(index: int, last: bool, data: memoryview, out: memoryview) -> int:
        seen_in.add(id(data.obj))
        seen_out.add(id(out.obj))
        return _copy(data, out)

    sink = Recorder()
    pipeline = Pipeline(
        io.BytesIO(DATA),
        sink,
        in_size=SMALL,
        out_size=SMALL,
        reader_thread=reader,
        writer_thread=writer,
    )
    assert pipeline.run(transform) == SEGMENTS + 1
    assert b"".join(sink.chunks) == DATA
    assert 1 <= len(seen_in) <= 2 and 1 <= len(seen_out) <= 3
    assert sink.buffers == seen_out  # the writer got the pool's own buffers, no copies


@pytest.mark.parametrize(("reader", "writer"), MODES)
def test_a_reader_that_fails_mid_file_stops_everything(
    reader: bool, writer: bool, threads_before: int
) -> None:
    error = OSError(5, "Input/output error")
    calls: list[int] = []

    def transform(index: int, last: bool, data: memoryview, out: memoryview) -> int:
        calls.append(index)
        return _copy(data, out)

    sink = Recorder()
    pipeline = Pipeline(
        FailingReader(DATA, 10 * SMALL + 100, error),
        sink,
        in_size=SMALL,
        out_size=SMALL,
        reader_thread=reader,
        writer_thread=writer,
    )
    with pytest.raises(OSError) as info:
        pipeline.run(transform)
    assert info.value is error  # the original error, not a wrapper
    assert calls == list(range(len(calls))) and len(calls) <= 10
    assert b"".join(sink.chunks) == DATA[: len(sink.chunks) * SMALL]


@pytest.mark.parametrize(("reader", "writer"), MODES)
def test_a_writer_that_fails_stops_everything(
    reader: bool, writer: bool, threads_before: int
) -> None:
    error = OSError(28, "No space left on device")
    source = io.BytesIO(DATA)
    pipeline = Pipeline(
        source,
        FailingWriter(5 * SMALL, error),
        in_size=SMALL,
        out_size=SMALL,
        reader_thread=reader,
        writer_thread=writer,
    )
    with pytest.raises(OSError) as info:
        pipeline.run(lambda i, last, data, out: _copy(data, out))
    assert info.value is error
    # the reader stopped within a few segments of the failure instead of reading everything
    assert source.tell() <= 12 * SMALL


@pytest.mark.parametrize(
    "error", [ev.InvalidEnvelope("bad", code="SEGMENT_DAMAGED"), KeyboardInterrupt()]
)
@pytest.mark.parametrize(("reader", "writer"), MODES)
def test_a_transform_that_fails_stops_everything(
    reader: bool, writer: bool, error: BaseException, threads_before: int
) -> None:
    def transform(index: int, last: bool, data: memoryview, out: memoryview) -> int:
        if index == 7:
            out[:] = b"\xee" * len(out)  # whatever a failed transform left there
            raise error
        return _copy(data, out)

    sink = Recorder()
    pipeline = Pipeline(
        io.BytesIO(DATA),
        sink,
        in_size=SMALL,
        out_size=SMALL,
        reader_thread=reader,
        writer_thread=writer,
    )
    with pytest.raises(type(error)) as info:
        pipeline.run(transform)
    assert info.value is error
    written = b"".join(sink.chunks)
    assert written == DATA[: len(written)] and len(written) <= 7 * SMALL  # segment 7 never


@pytest.mark.parametrize("stage", ["reader", "writer"])
def test_a_failure_wakes_stages_waiting_for_a_buffer(stage: str, threads_before: int) -> None:
    """With one buffer of each kind every stage spends most of its time waiting for the other
    two; whichever fails, the waiting ones wake up and stop, and the error comes through."""
    error = OSError(5, "Input/output error")
    source: io.RawIOBase | io.BytesIO = io.BytesIO(DATA)
    sink: Recorder | FailingWriter = Recorder()
    if stage == "reader":
        source = FailingReader(DATA, 30 * SMALL, error)
    else:
        sink = FailingWriter(30 * SMALL, error)
    pipeline = Pipeline(source, sink, in_size=SMALL, out_size=SMALL, in_count=1, out_count=1)
    with pytest.raises(OSError) as info:
        pipeline.run(lambda i, last, data, out: _copy(data, out))
    assert info.value is error


def test_a_pipeline_runs_once() -> None:
    pipeline = Pipeline(io.BytesIO(b"x"), io.BytesIO(), in_size=SMALL, out_size=SMALL)
    pipeline.run(lambda i, last, data, out: _copy(data, out))
    with pytest.raises(RuntimeError):
        pipeline.run(lambda i, last, data, out: _copy(data, out))


# -- through the file helpers --------------------------------------------------------------


@pytest.fixture
def sealed(tmp_path: Path, keys: LocalKeyService, key_id: str) -> Path:
    (tmp_path / "plain").write_bytes(DATA)
    ev.encrypt_file(
        tmp_path / "plain", tmp_path / "f.kyok", keys=keys, key=key_id, segment_size=SMALL
    )
    return tmp_path / "f.kyok"


@pytest.mark.parametrize("size", [0, 1, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL, len(DATA)])
def test_files_of_every_shape_round_trip(
    size: int, tmp_path: Path, keys: LocalKeyService, key_id: str, threads_before: int
) -> None:
    (tmp_path / "plain").write_bytes(DATA[:size])
    ev.encrypt_file(
        tmp_path / "plain", tmp_path / "f.kyok", keys=keys, key=key_id, segment_size=SMALL
    )
    sealed = (tmp_path / "f.kyok").read_bytes()
    _, parts = segments(sealed)
    assert len(parts) == size // SMALL + 1
    assert ev.decrypt_bytes(sealed, keys=keys) == DATA[:size]  # the streaming path agrees
    ev.decrypt_file(tmp_path / "f.kyok", tmp_path / "out", keys=keys)
    assert (tmp_path / "out").read_bytes() == DATA[:size]
    assert names(tmp_path) == ["f.kyok", "out", "plain"]


def test_a_damaged_middle_segment_leaves_nothing(
    tmp_path: Path, keys: LocalKeyService, sealed: Path, threads_before: int
) -> None:
    data = bytearray(sealed.read_bytes())
    header, _ = segments(bytes(data))
    data[len(header) + 40 * (SMALL + fmt.TAG_SIZE) + 9] ^= 4  # inside segment 40 of 65
    sealed.write_bytes(bytes(data))
    with pytest.raises(ev.InvalidEnvelope) as info:
        ev.decrypt_file(sealed, tmp_path / "out", keys=keys)
    assert info.value.code == "SEGMENT_DAMAGED" and "segment 40 " in str(info.value)
    assert names(tmp_path) == ["f.kyok", "plain"]


def test_the_plaintext_of_a_damaged_segment_never_reaches_the_writer(
    keys: LocalKeyService, sealed: Path, threads_before: int
) -> None:
    data = bytearray(sealed.read_bytes())
    header, _ = segments(bytes(data))
    data[len(header) + 40 * (SMALL + fmt.TAG_SIZE) + 9] ^= 4
    sink = Recorder()
    with pytest.raises(ev.InvalidEnvelope):
        decrypt_to(
            io.BytesIO(bytes(data)),
            sink,
            keys=keys,
            aad=None,
            cache=None,
            progress=None,
            segments=open_pipelined,
        )
    written = b"".join(sink.chunks)
    assert written == DATA[: len(written)] and len(written) <= 40 * SMALL


def test_a_failed_tag_leaves_zeros_in_the_output_buffer() -> None:
    cipher = SegmentCipher(bytes(range(32)), b"bound")
    plain = b"secret plaintext" * 256
    out = bytearray(len(plain) + fmt.TAG_SIZE)
    n = cipher.seal_into(3, False, plain, out)
    damaged = bytearray(out[:n])
    damaged[5] ^= 1  # pyca decrypts into the buffer before it checks the tag
    opened = bytearray(b"\xee" * len(plain))
    with pytest.raises(ev.InvalidEnvelope):
        cipher.open_into(3, False, damaged, opened)
    assert opened == bytes(len(plain))
    assert cipher.open_into(3, False, out[:n], opened) == len(plain) and opened == plain
    with pytest.raises(ev.InvalidEnvelope):  # the wrong index fails the same way
        cipher.open_into(4, False, out[:n], opened)
    assert opened == bytes(len(plain))


def test_a_reader_error_mid_file_leaves_nothing(
    tmp_path: Path, keys: LocalKeyService, key_id: str, threads_before: int
) -> None:
    (tmp_path / "plain").write_bytes(DATA)
    error = OSError(5, "Input/output error")

    class Breaks(io.FileIO):
        """A regular file whose reads fail after 20 segments (a disk error)."""

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.tell() >= 20 * SMALL:
                raise error
            return super().readinto(buffer)

    with Breaks(tmp_path / "plain") as fin, pytest.raises(OSError) as info:
        write_atomically(
            tmp_path / "f.kyok",
            False,
            lambda out: encrypt_to(
                fin,
                out,
                keys=keys,
                key=key_id,
                aad=None,
                segment_size=SMALL,
                cache=None,
                progress=None,
                segments=seal_pipelined,
            ),
        )
    assert info.value is error
    assert names(tmp_path) == ["plain"]


def test_a_full_disk_leaves_nothing(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path, threads_before: int
) -> None:
    """A real write error (EFBIG, from RLIMIT_FSIZE) in the writer thread."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * SMALL, hard))
        runs: list[Callable[[], object]] = [
            lambda: ev.encrypt_file(
                tmp_path / "plain",
                tmp_path / "again.kyok",
                keys=keys,
                key=key_id,
                segment_size=SMALL,
            ),
            lambda: ev.decrypt_file(sealed, tmp_path / "out", keys=keys),
        ]
        for run in runs:
            with pytest.raises(OSError) as info:
                run()
            assert info.value.errno == 27  # EFBIG: File too large
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert names(tmp_path) == ["f.kyok", "plain"]


def test_an_interrupt_leaves_nothing(
    tmp_path: Path, keys: LocalKeyService, key_id: str, sealed: Path, threads_before: int
) -> None:
    def interrupt_at(limit: int) -> Callable[[int], None]:
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            if done[0] >= limit:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        ev.encrypt_file(
            tmp_path / "plain",
            tmp_path / "again.kyok",
            keys=keys,
            key=key_id,
            segment_size=SMALL,
            progress=interrupt_at(30 * SMALL),
        )
    with pytest.raises(KeyboardInterrupt):
        ev.decrypt_file(sealed, tmp_path / "out", keys=keys, progress=interrupt_at(30 * SMALL))
    assert names(tmp_path) == ["f.kyok", "plain"]


def test_a_pipe_as_the_source(
    tmp_path: Path, keys: LocalKeyService, key_id: str, threads_before: int
) -> None:
    """A FIFO is read in the calling thread (a reader thread blocked on it could not be
    stopped); the result is the same."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(DATA[: 5 * SMALL + 3])

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        ev.encrypt_file(fifo, tmp_path / "f.kyok", keys=keys, key=key_id, segment_size=SMALL)
    finally:
        feeder.join(timeout=30)
    assert ev.decrypt_bytes((tmp_path / "f.kyok").read_bytes(), keys=keys) == DATA[: 5 * SMALL + 3]


def test_memory_stays_at_a_few_segments(tmp_path: Path, keys: LocalKeyService, key_id: str) -> None:
    """Peak Python allocations while a 64-segment file is encrypted and decrypted stay at a few
    segments (the pools), not the file's size."""
    segment = 64 * 1024
    (tmp_path / "big").write_bytes(os.urandom(segment) * SEGMENTS)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        ev.encrypt_file(
            tmp_path / "big", tmp_path / "big.kyok", keys=keys, key=key_id, segment_size=segment
        )
        _, enc_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ev.decrypt_file(tmp_path / "big.kyok", tmp_path / "big.out", keys=keys)
        _, dec_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "big.out").read_bytes() == (tmp_path / "big").read_bytes()
    # the pools (3 input + 4 output buffers of one segment), plus small change; the file is 64
    # segments
    assert enc_peak < 9 * segment and dec_peak < 9 * segment, (enc_peak, dec_peak)
