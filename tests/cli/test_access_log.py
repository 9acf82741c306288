"""The access log written in batches (kyok.cli.access_log): every line arrives, formatted as
the plain formatter would, in order; at the latest after the interval, at once when a batch is
full, and at close; nothing from it reaches the root handler twice."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyok.cli.access_log import BatchedStreamHandler, SecondCachingFormatter, install

FMT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("kyok.test-access")
    log.setLevel(logging.INFO)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.propagate = True


def test_lines_arrive_in_order_after_the_interval(logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = install(logger.name, stream, FMT)
    handler.interval = 0.05
    for n in range(5):
        logger.info("line %d", n)
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["0", "1", "2", "3", "4"]
    assert all(" INFO    kyok.test-access: line " in line for line in lines)


def test_a_full_batch_is_written_at_once_and_the_rest_at_close(logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, interval=3600, max_lines=3)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    for n in range(4):
        logger.info("m%d", n)
    assert stream.getvalue() == "m0\nm1\nm2\n"
    handler.close()
    assert stream.getvalue() == "m0\nm1\nm2\nm3\n"


def test_install_stops_propagation_and_replaces_an_earlier_handler(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = io.StringIO(), io.StringIO()
    install(logger.name, first, FMT)
    handler = install(logger.name, second, FMT)
    batched = [h for h in logger.handlers if isinstance(h, BatchedStreamHandler)]
    assert batched == [handler] and logger.propagate is False
    with caplog.at_level(logging.INFO):
        logger.info("once")
    handler.flush()
    assert second.getvalue().endswith("once\n") and first.getvalue() == ""
    assert "once" not in caplog.text  # the root handler did not write it too


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_times_are_the_plain_formatters(created: float) -> None:
    cached, plain = SecondCachingFormatter(FMT), logging.Formatter(FMT)
    for at in (created, created + 0.0004, created + 1.0):
        record = logging.LogRecord("kyok.access", logging.INFO, "", 0, "x %s", ("y",), None)
        record.created, record.msecs = at, (at - int(at)) * 1000
        assert cached.format(record) == plain.format(record)


def test_the_sink_writes_what_logging_would(logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = install(logger.name, stream, FMT)
    sink = handler.sink(logger.name)
    assert sink is not None
    logger.info("%s", "POST /api/v2/keys/{id}/actions/wrap 200 0.9ms request_id=r1")
    sink("POST /api/v2/keys/{id}/actions/wrap 200 0.9ms request_id=r1")
    handler.flush()
    logged, sunk = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO    kyok\.test-access: POST .* request_id=r1", sunk)
    assert logged[23:] == sunk[23:] and abs(_ms(logged) - _ms(sunk)) < 1000


def test_no_sink_for_another_format(logger: logging.Logger) -> None:
    handler = install(logger.name, io.StringIO(), "%(levelname)s %(message)s")
    assert handler.sink(logger.name) is None


def _ms(line: str) -> float:
    return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) * 1000 + int(line[20:23])
