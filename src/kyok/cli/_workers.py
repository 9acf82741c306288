"""A node of several worker processes: the supervisor and the worker's entry point.

``kyok server --workers N`` binds N listening sockets on one port (``SO_REUSEPORT``), then
:func:`supervise` starts N interpreters (``python -m kyok.cli._workers``), each handed its own
listening socket and one end of its own socket pair (the node link, :mod:`kyok.bootstrap.link`)
as inherited file descriptors, and its settings on standard input (never in the environment or
on the command line: a database URL may hold a password). The kernel spreads connections evenly
over the sockets (one shared socket let whichever worker woke first take them: 16/0 splits were
measured). The supervisor keeps every socket open, so a restarting worker's connections wait in
its backlog rather than being refused. The supervisor relays the link, restarts a worker that dies, and on SIGTERM/SIGINT
stops them all gracefully. Worker 0 (the unit worker) also runs the scheduler and the audit
forwarders and answers every ceremony call.

If the supervisor dies, each worker sees its link close and stops: a worker that can no longer
hear its siblings must not keep serving.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

from kyok.bootstrap.link import UNIT_WORKER, Hub

if TYPE_CHECKING:
    from kyok.settings import Settings

__all__ = ["supervise", "worker_main"]

log = logging.getLogger("kyok.server")

_ENV = "KYOK_WORKER_FDS"  # "<index>:<listening fd>:<link fd>", set by the supervisor only
_STOP_GRACE = 20.0  # seconds the workers get to finish their requests at shutdown
_RESTART_LIMIT = 5  # restarts within _RESTART_WINDOW before the supervisor gives up
_RESTART_WINDOW = 60.0


def _settings_json(settings: Settings) -> bytes:
    def plain(value: object) -> object:
        if isinstance(value, timedelta):
            return value.total_seconds()
        return str(value)

    return json.dumps(settings.model_dump(), default=plain).encode()


class _Worker:
    def __init__(self, index: int, proc: subprocess.Popen[bytes], started: float) -> None:
        self.index = index
        self.proc = proc
        self.started = started


def _spawn(index: int, settings: Settings, listener: socket.socket, hub: Hub) -> _Worker:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    env[_ENV] = f"{index}:{listener.fileno()}:{theirs.fileno()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyok.cli._workers"],
        stdin=subprocess.PIPE,
        pass_fds=(listener.fileno(), theirs.fileno()),
        env=env,
    )
    theirs.close()
    assert proc.stdin is not None
    try:
        proc.stdin.write(_settings_json(settings))
        proc.stdin.close()
    except OSError:
        pass  # it died at once; the supervisor's loop sees it
    hub.attach(index, ours)
    log.info("worker %d started (pid %d)", index, proc.pid)
    return _Worker(index, proc, time.monotonic())


def supervise(settings: Settings, listener: socket.socket) -> int:
    """Run ``settings.server.workers`` workers on ``listener`` until SIGTERM/SIGINT.

    Args:
        settings: the node's settings (each worker gets them on its standard input).
        listener: the bound listening socket (with ``SO_REUSEPORT``: the other workers get
            sockets of their own on its port).

    Returns:
        The exit status: 0 after a requested stop, 1 when workers kept dying.
    """
    stop: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    hub = Hub()
    workers: dict[int, _Worker] = {}
    restarts: list[float] = []
    status = 0
    from kyok.cli.server import bind_socket

    host, port = listener.getsockname()[:2]
    listeners = [listener]
    try:
        for _ in range(1, settings.server.workers):
            listeners.append(bind_socket(host, port, reuse_port=True))
        for index in range(settings.server.workers):
            workers[index] = _spawn(index, settings, listeners[index], hub)
        while not stop:
            socks = hub.sockets()
            try:
                ready, _, _ = select.select(list(socks.values()), [], [], 0.5)
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            by_sock = {s: i for i, s in socks.items()}
            for sock in ready:
                index = by_sock[sock]
                try:
                    data = sock.recv(1 << 16)
                    if data:
                        hub.receive(index, data)
                        continue
                except (OSError, ValueError):
                    pass
                hub.detach(index)  # closed or broke the framing: the process check restarts it
            for index, worker in list(workers.items()):
                if worker.proc.poll() is None or stop:
                    continue
                hub.detach(index)
                log.error("worker %d exited with status %s", index, worker.proc.returncode)
                now = time.monotonic()
                restarts[:] = [t for t in restarts if now - t < _RESTART_WINDOW] + [now]
                if len(restarts) > _RESTART_LIMIT:
                    log.error("workers keep dying: stopping the node")
                    status = 1
                    stop.append(signal.SIGTERM)
                    break
                workers[index] = _spawn(index, settings, listeners[index], hub)
    finally:
        _stop_all(workers)
        hub.forget_keys()
        for index in list(hub.sockets()):
            hub.detach(index)
        for sock in listeners:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %d workers", len(workers))
    return status


def _stop_all(workers: dict[int, _Worker]) -> None:
    """SIGTERM every worker, give them :data:`_STOP_GRACE` seconds, then SIGKILL."""
    for worker in workers.values():
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    for worker in workers.values():
        try:
            worker.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker %d did not stop in time: killed", worker.index)
            worker.proc.kill()
            worker.proc.wait()


def worker_main() -> None:
    """A worker process: read the settings, open the node, join the link, serve."""
    from kyok.cli.server import _configure_logging, _freeze_modules, _serve

    try:
        index_text, listen_fd, link_fd = os.environ.pop(_ENV).split(":")
    except (KeyError, ValueError):
        sys.exit("kyok.cli._workers is started by `kyok server --workers N`, not by hand")
    index = int(index_text)
    from kyok.settings import Settings

    settings = Settings.model_validate(json.loads(sys.stdin.buffer.read()))
    sys.stdin.close()
    _configure_logging(settings.log_level)
    gc.disable()
    _freeze_modules()
    from kyok.bootstrap import open_node
    from kyok.bootstrap.link import NodeLink, RemoteUnitConsole

    node = open_node(settings)
    node.worker = index
    link = NodeLink(
        socket.socket(fileno=int(link_fd)),
        index,
        node.units,
        node.key_cache,
        node.unit_console,
        getattr(node.auth, "identity_cache", None),
    )
    if index != UNIT_WORKER:
        node.unit_console = RemoteUnitConsole(link, node.unit_console)
    link.on_lost = lambda: os.kill(os.getpid(), signal.SIGTERM)
    link.start()
    listener = socket.socket(fileno=int(listen_fd))
    _serve(node, listener, unit_worker=index == UNIT_WORKER, link=link)


if __name__ == "__main__":
    worker_main()
