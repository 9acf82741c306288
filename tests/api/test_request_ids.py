"""Request and correlation ids (kyok.api.middleware.request_ids): the caller's when they are
sane tokens, else new ones: 128 random bits in hex, and a version-4 UUID."""

from __future__ import annotations

import re
import uuid

from kyok.api.middleware import request_ids


def test_new_ids_have_the_shapes_clients_expect() -> None:
    seen = set()
    for _ in range(2000):
        request_id, correlation = request_ids({"headers": []})
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        parsed = uuid.UUID(correlation)
        assert str(parsed) == correlation
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.update((request_id, correlation))
    assert len(seen) == 4000


def test_the_callers_sane_ids_are_kept_and_others_replaced() -> None:
    headers = [(b"x-request-id", b" abc-1 "), (b"x-correlation-id", b"corr:2"),
               (b"correlation-id", b"bad id\r\nx: y")]  # fmt: skip
    request_id, correlation = request_ids({"headers": headers})
    assert (request_id, correlation) == ("abc-1", "corr:2")  # the unsafe one is skipped
    request_id, correlation = request_ids({"headers": [(b"X-Request-Id", b"x" * 129)]})
    assert len(request_id) == 32 and uuid.UUID(correlation)
    request_id, _ = request_ids({"headers": [(b"X-Request-Id", b"first"),
                                             (b"x-request-id", b"second")]})  # fmt: skip
    assert request_id == "first"
