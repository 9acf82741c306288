"""A real kyok dev server in a thread, for end-to-end tests of the SDK and the CLI.

It is what ``kyok server --dev`` runs (``kyok.cli.server``'s ``bind_socket`` and
``build_server``, ``kyok.bootstrap.dev.provision_dev``), on 127.0.0.1 with an ephemeral port,
a fresh data directory, timers at zero so that enable/restore/rotate/purge/sync need no waiting,
and RSA-2048 import tokens (quicker to make than Key Protect's 4096).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kyok.bootstrap import Node, open_node
from kyok.bootstrap.dev import provision_dev
from kyok.cli.server import bind_socket, build_server
from kyok.settings import Settings

ZERO_TIMERS = {
    "timers.enable_delay": "0s",
    "timers.restore_delay": "0s",
    "timers.min_rotate_interval": "0s",
    "timers.purge_after": "0s",
    "timers.sync_interval": "0s",
}


@dataclass
class LiveServer:
    """How to reach the running server, and its node (for assertions)."""

    url: str
    instance_id: str
    api_key: str = field(repr=False)
    node: Node = field(repr=False)


@contextmanager
def dev_server(data_dir: Path, **overrides: object) -> Iterator[LiveServer]:
    """Run a dev server until the block ends.

    Args:
        data_dir: a fresh directory for its SQLite store and dev seal.
        overrides: settings by dotted name (default: every timer at zero).
    """
    settings = Settings.load(
        env={},
        overrides={
            "data_dir": data_dir,
            "seal": "dev",
            "server.host": "127.0.0.1",
            "server.port": 0,
            "scheduler.interval": "0s",
            "server.import_token_rsa_bits": 2048,
            **ZERO_TIMERS,
            **overrides,
        },
    )
    node = open_node(settings)
    sock = bind_socket("127.0.0.1", 0)
    scheme = "https" if settings.server.tls_cert else "http"
    url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    creds = provision_dev(node, url).credentials
    server = build_server(node)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dev server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url, creds.instance_id, creds.api_key, node)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        node.close()
        sock.close()
