"""One real kyok dev server for the client-compatibility suites.

What ``kyok server --dev`` runs (``tests/live_server.py``): uvicorn on 127.0.0.1 with an
ephemeral port, SQLite in a fresh directory, the real auth service (IAM's ``/identity/token``
and ``/oidc/token`` on the same port), every timer at zero so that enable, restore, rotate and
purge need no waiting, and the scheduler off. Started once for the package: the suites keep
to their own keys and key rings, so they do not see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from live_server import LiveServer, dev_server


@pytest.fixture(scope="package")
def kyok_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("compat")) as server:
        yield server
