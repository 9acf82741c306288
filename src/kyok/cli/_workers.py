"""A node of several worker processes: the supervisor and the worker's entry point.

``kyok server --workers N`` binds N listening sockets on one port (``SO_REUSEPORT``), then
:func:`supervise` starts N interpreters (``python -m kyok.cli._workers``), each handed its own
listening socket and one end of its own socket pair (the node link, :mod:`kyok.bootstrap.link`)
as inherited file descriptors, and its settings on standard input (never in the environment or
on the command line: a database URL may hold a password). The kernel spreads connections evenly
over the sockets (one shared socket let whichever worker woke first take them: 16/0 splits were
measured). The supervisor keeps every socket open, so a restarting worker's connections wait in
its backlog rather than being refused. The supervisor relays the link, restarts a worker that dies, and on SIGTERM/SIGINT
stops them all gracefully. Worker 0 (the unit worker) also runs the scheduler and answers every
ceremony call. One more process, the ledger writer (no listening socket), commits every
worker's call events and runs the audit forwarders; each worker reaches it over a socket pair
of its own (:mod:`kyok.bootstrap.ledger_link`), made by the supervisor and passed anew over the
node link when either side is restarted.

If the supervisor dies, each worker sees its link close and stops: a worker that can no longer
hear its siblings must not keep serving.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

from kyok.bootstrap.link import UNIT_WORKER, Hub

if TYPE_CHECKING:
    from kyok.bootstrap import Node
    from kyok.bootstrap.link import NodeLink
    from kyok.settings import Settings

__all__ = ["supervise", "worker_main"]

log = logging.getLogger("kyok.server")

# "<index>:<listening fd, or - for the ledger writer>:<link fd>:<ledger link fds, comma-separated>",
# set by the supervisor only
_ENV = "KYOK_WORKER_FDS"
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


def _spawn(
    index: int,
    settings: Settings,
    listener: socket.socket | None,
    hub: Hub,
    ledger: Sequence[socket.socket],
) -> _Worker:
    """Start worker ``index`` on ``listener`` (None: the ledger writer) with its ends of the
    ledger link (``ledger``: a worker's one socket, or the writer's one per worker)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    listen = "-" if listener is None else str(listener.fileno())
    ledger_fds = ",".join(str(sock.fileno()) for sock in ledger)
    env[_ENV] = f"{index}:{listen}:{theirs.fileno()}:{ledger_fds}"
    inherited = [theirs.fileno(), *(sock.fileno() for sock in ledger)]
    if listener is not None:
        inherited.append(listener.fileno())
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyok.cli._workers"],
        stdin=subprocess.PIPE,
        pass_fds=inherited,
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
    serving = settings.server.workers
    writer = serving  # the ledger writer's number: after the serving workers'
    try:
        for _ in range(1, serving):
            listeners.append(bind_socket(host, port, reuse_port=True))
        pairs = [_ledger_pair() for _ in range(serving)]
        workers[writer] = _spawn(writer, settings, None, hub, [w for w, _ in pairs])
        for index in range(serving):
            workers[index] = _spawn(index, settings, listeners[index], hub, [pairs[index][1]])
        _close_pairs(pairs)
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
                _restart(index, writer, settings, listeners, hub, workers)
    finally:
        _stop_all(workers, writer)
        hub.forget_keys()
        for index in list(hub.sockets()):
            hub.detach(index)
        for sock in listeners:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %d workers", len(workers))
    return status


def _ledger_pair() -> tuple[socket.socket, socket.socket]:
    """A new ledger link (:mod:`kyok.bootstrap.ledger_link`): the writer's end, the worker's."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def _close_pairs(pairs: Sequence[tuple[socket.socket, socket.socket]]) -> None:
    """Close the supervisor's copies (the processes hold theirs)."""
    for a, b in pairs:
        a.close()
        b.close()


def _restart(
    index: int,
    writer: int,
    settings: Settings,
    listeners: Sequence[socket.socket],
    hub: Hub,
    workers: dict[int, _Worker],
) -> None:
    """Start worker ``index`` again, with new ledger links: a serving worker gets one to the
    writer (whose end goes to the writer over its node link); a new writer gets one to every
    serving worker still running (their ends go to them over theirs)."""
    if index == writer:
        running = [i for i, worker in workers.items() if i != writer and worker.proc.poll() is None]
        pairs = [_ledger_pair() for _ in running]
        workers[index] = _spawn(index, settings, None, hub, [w for w, _ in pairs])
        for i, (_, theirs) in zip(running, pairs, strict=True):
            hub.pass_socket(i, theirs)
    else:
        pairs = [_ledger_pair()]
        workers[index] = _spawn(index, settings, listeners[index], hub, [pairs[0][1]])
        # A writer that is down gets a new link to this worker when it is started again.
        hub.pass_socket(writer, pairs[0][0])
    _close_pairs(pairs)


def _stop_all(workers: dict[int, _Worker], writer: int) -> None:
    """SIGTERM the serving workers, give them :data:`_STOP_GRACE` seconds, then SIGKILL; then
    the same for the ledger writer, which writes their last events meanwhile."""
    _stop([w for i, w in workers.items() if i != writer])
    _stop([w for i, w in workers.items() if i == writer])


def _stop(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    for worker in workers:
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
        index_text, listen_fd, link_fd, ledger_fds = os.environ.pop(_ENV).split(":")
    except (KeyError, ValueError):
        sys.exit("kyok.cli._workers is started by `kyok server --workers N`, not by hand")
    index = int(index_text)
    ledger = [socket.socket(fileno=int(fd)) for fd in ledger_fds.split(",") if fd]
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
    link.on_lost = lambda: os.kill(os.getpid(), signal.SIGTERM)
    if listen_fd == "-":
        _write_ledger(node, link, ledger)
        return
    if index != UNIT_WORKER:
        node.unit_console = RemoteUnitConsole(link, node.unit_console)
    from kyok.bootstrap.ledger_link import LedgerClient

    client = LedgerClient(commit_delay=settings.audit.commit_delay_ms / 1000)
    for sock in ledger:
        client.attach(sock)
    link.on_ledger = client.attach
    node.audit_writer = client
    link.start()
    listener = socket.socket(fileno=int(listen_fd))
    _serve(node, listener, unit_worker=index == UNIT_WORKER, link=link, forwarders=False)


def _write_ledger(node: Node, link: NodeLink, socks: list[socket.socket]) -> None:
    """The ledger writer process: commit the serving workers' audit events (and run the audit
    forwarders, which each commit wakes) until SIGTERM/SIGINT."""
    from kyok.bootstrap.ledger_link import LedgerServer
    from kyok.cli.server import _started_up
    from kyok.kms.ledger import GroupCommitter

    committer = node.audit_writer
    assert isinstance(committer, GroupCommitter)
    server = LedgerServer(committer)
    link.on_ledger = server.attach
    link.start()
    committer.start()
    node.start_forwarders()
    # The loop commits the workers' events itself (LedgerServer); it shares the GIL with the
    # committer thread (fail-open events, checkpoint sweeps) and the forwarders.
    _started_up()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        await server.serve(socks)

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve())
    finally:
        link.close()
        node.close()  # writes what is queued
        log.info(
            "ledger writer stopped: %d events in %d batches", committer.events, committer.batches
        )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (as uvicorn uses it), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    worker_main()
