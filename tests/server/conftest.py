"""Real servers for the server tests: uvicorn in a thread on 127.0.0.1 (an ephemeral port),
with or without TLS (trustme), over a node with the real auth service and a dev instance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from kyok.bootstrap import Node, open_node
from kyok.bootstrap.dev import DevProvision, provision_dev
from kyok.cli.server import bind_socket, build_server
from kyok.settings import Settings


@dataclass
class Running:
    """A node served by uvicorn in a thread."""

    node: Node
    url: str
    provision: DevProvision
    ca: trustme.CA | None

    @property
    def instance(self) -> str:
        return self.provision.credentials.instance_id

    @property
    def api_key(self) -> str:
        return self.provision.credentials.api_key

    def token(self) -> str:
        """An access token for the dev administrator (issued by the real auth service)."""
        grant = self.node.auth.issue_token(self.api_key)  # type: ignore[attr-defined]
        token: str = grant.access_token
        return token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Bluemix-Instance": self.instance}


def _serve(settings: Settings, ca: trustme.CA | None) -> Iterator[Running]:
    node = open_node(settings)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    provision = provision_dev(node, url)
    server = build_server(node)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield Running(node, url, provision, ca)
    finally:
        server.should_exit = True
        thread.join(2)
        if thread.is_alive():  # a client still holds an idle keep-alive connection
            server.force_exit = True
            thread.join(10)
        node.close()
        sock.close()


ServeFactory = Callable[..., Running]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeFactory]:
    """``served(tls=False, **settings)`` starts a server; all stop at teardown."""
    running: list[Iterator[Running]] = []

    def start(*, tls: bool = False, **overrides: Any) -> Running:
        ca = None
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data{len(running)}",
            "seal": "dev",
            **overrides,
        }
        if tls:
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
            cert.private_key_pem.write_to_path(str(key_file))
            cert.cert_chain_pems[0].write_to_path(str(cert_file))
            for extra in cert.cert_chain_pems[1:]:
                extra.write_to_path(str(cert_file), append=True)
            values.update({"server.tls_cert": cert_file, "server.tls_key": key_file})
        gen = _serve(Settings.load(env={}, overrides=values), ca)
        running.append(gen)
        return next(gen)

    yield start
    for gen in reversed(running):
        for _ in gen:  # runs the generator's cleanup
            pass
