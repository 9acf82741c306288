"""Memory of ``kyok encrypt``/``kyok decrypt`` does not grow with the number of segments.

The CLI's per-file code path (``_run_one``: the byte counter, the Rich progress bar drawing to
a terminal, the file helpers' pipeline, the stdin/stdout streams) runs over a file of 1,024
and one of 8,192 small segments, under ``tracemalloc``. If anything on that path kept an object
per segment (a buffer, a view, a progress sample, a log record), the second run's peak would
exceed the first's by thousands of those objects; the pools and the bar's bounded history do
not grow. The key service is the SDK's in-process one: a live server in this process would
have its own allocations traced too. No timings are asserted.
"""

from __future__ import annotations

import gc
import io
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from rich.console import Console

from kyok.cli import envelope as cli_envelope
from kyok.client.envelope.testing import LocalKeyService

SEGMENT = 4096
FEW, MANY = 1024, 8192  # segments; the bar keeps at most 1,000 speed samples, so both fill it
# What MANY - FEW = 7,168 more segments may add to the peak: 27 bytes a segment, less than any
# object (an int of 4096 takes 28 bytes, a memoryview 184); the runs differ by ~50 KiB (the
# bar's speed samples, Rich's caches), also when the longer run is made to last seconds.
GROWTH_LIMIT = 192 * 1024
# The peak itself: the pipeline's pools (seven buffers of one segment), the bar's history and
# what the calls allocate once; a fraction of the 32 MiB file.
PEAK_LIMIT = 2 << 20


class _Sink(io.RawIOBase):
    """A binary stdout that keeps nothing (only counts)."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:
        n = len(data)
        self.size += n
        return n


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stderr is a terminal, so every file of these sizes gets a live progress bar (its
    refresh thread included); it draws to /dev/null."""
    with open(os.devnull, "w") as devnull:
        console = Console(file=devnull, force_terminal=True, width=100)
        monkeypatch.setattr(cli_envelope, "err_console", console)
        monkeypatch.setattr(cli_envelope, "_stderr_is_terminal", lambda: True)
        monkeypatch.setattr(cli_envelope, "PROGRESS_THRESHOLD", 0)
        yield


def _peak(step: Callable[[], object]) -> int:
    """Peak traced bytes above the start during ``step`` (what it still holds at its end, a
    retained object included, is part of that peak)."""
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


Case = Callable[[Path, Path], Callable[[], object]]


def _cases(keys: LocalKeyService, key_id: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Case]:
    kw: dict[str, Any] = {"keys": keys, "aad": ["memory"]}

    def run(job: cli_envelope._Job, mode: cli_envelope.Mode, **extra: Any) -> None:
        cli_envelope._run_one(job, mode, force=True, quiet=False, **kw, **extra)

    def encrypt_file(src: Path, work: Path) -> Callable[[], object]:
        job = cli_envelope._Job(src, work / "out.kyok", src.stat().st_size)
        return lambda: run(job, "encrypt", key=key_id, segment_size=SEGMENT)

    def encrypt_stdin(src: Path, work: Path) -> Callable[[], object]:
        job = cli_envelope._Job(None, work / "stdin.kyok", None)

        def step() -> None:
            with open(src, "rb") as stdin:
                monkeypatch.setattr(cli_envelope, "_stdin", lambda: stdin)
                run(job, "encrypt", key=key_id, segment_size=SEGMENT)

        return step

    def decrypt_file(src: Path, work: Path) -> Callable[[], object]:
        sealed = _sealed(src, work)
        job = cli_envelope._Job(sealed, work / "out.plain", sealed.stat().st_size)
        return lambda: run(job, "decrypt")

    def decrypt_stdout(src: Path, work: Path) -> Callable[[], object]:
        sealed = _sealed(src, work)
        job = cli_envelope._Job(sealed, None, sealed.stat().st_size)
        sink = _Sink()

        def stdout() -> BinaryIO:
            return io.BufferedWriter(sink)  # type: ignore[return-value]

        def step() -> None:
            monkeypatch.setattr(cli_envelope, "_stdout", stdout)
            monkeypatch.setattr(cli_envelope, "_stdout_is_terminal", lambda: False)
            run(job, "decrypt")
            assert sink.size == src.stat().st_size

        return step

    def _sealed(src: Path, work: Path) -> Path:
        sealed = work / "in.kyok"
        job = cli_envelope._Job(src, sealed, src.stat().st_size)
        run(job, "encrypt", key=key_id, segment_size=SEGMENT)
        return sealed

    return {
        "encrypt file to file": encrypt_file,
        "encrypt stdin to file": encrypt_stdin,
        "decrypt file to file": decrypt_file,
        "decrypt file to stdout": decrypt_stdout,
    }


@pytest.mark.parametrize(
    "case",
    [
        "encrypt file to file",
        "encrypt stdin to file",
        "decrypt file to file",
        "decrypt file to stdout",
    ],
)
@pytest.mark.usefixtures("terminal")
def test_cli_memory_does_not_grow_with_segments(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = LocalKeyService()
    key_id = keys.create_key()
    make = _cases(keys, key_id, monkeypatch)[case]
    block = os.urandom(SEGMENT)
    peaks: dict[int, int] = {}
    for count in (FEW, FEW, MANY):  # the first run pays for what is allocated once
        work = tmp_path / f"{count}"
        work.mkdir(exist_ok=True)
        src = work / "in"
        src.write_bytes(block * count + b"tail")
        step = make(src, work)
        peaks[count] = _peak(step)
    assert peaks[MANY] - peaks[FEW] < GROWTH_LIMIT, (case, peaks)
    assert peaks[MANY] < PEAK_LIMIT, (case, peaks)
