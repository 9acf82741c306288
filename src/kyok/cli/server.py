"""``kyok server``: run a node's HTTP API (DESIGN §5).

    kyok server --dev                      SQLite and a dev-sealed instance in ./kyok-data
    kyok server --config kyok.toml         production: settings from the file (and KYOK_*)

Dev mode prints the instance id and, the first time, the administrator's API key, and writes
both to ``<data-dir>/dev-credentials.json`` (0600). ``KYOK_DEV_INSTANCE_ID`` and
``KYOK_DEV_API_KEY`` fix them. Config mode opens the configured database; units with the shares
seal start sealed and are unsealed through ``POST /api/v2/kyok/unit/commands``.

One worker process serves the API (uvicorn, httptools/uvloop when installed); a background
thread deactivates expired keys and purges overdue ones. SIGTERM or Ctrl-C stop it gracefully:
requests in flight finish, then every unit is sealed.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from kyok.cli._output import EXIT_USAGE, console, fail, guarded, note

if TYPE_CHECKING:  # the HTTP stack, settings and the node load when a server starts, not with
    # every command
    import uvicorn

    from kyok.bootstrap import Node
    from kyok.bootstrap.dev import DevProvision
    from kyok.bootstrap.link import NodeLink
    from kyok.settings import Settings

__all__ = ["bind_socket", "build_server", "server", "workers_advice"]

log = logging.getLogger("kyok.server")


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind the listening socket before the server starts (so port 0 gets a known port).

    Args:
        host: the address (IPv4 or IPv6).
        port: the port; 0 picks a free one.
        reuse_port: set ``SO_REUSEPORT``, so that each worker of a node gets a socket of its
            own on the same port and the kernel spreads connections evenly over them (Linux
            allows it only among sockets of the same user).

    Returns:
        The bound socket.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def build_server(node: Node) -> uvicorn.Server:
    """A uvicorn server for ``node``'s application (TLS when the settings name a certificate).

    Args:
        node: the node.

    Returns:
        The server; run it with ``server.run(sockets=[bind_socket(...)])``.
    """
    import uvicorn

    from kyok.api.app import create_app
    from kyok.api.fast_protocol import protocol_for

    tls = node.settings.server
    app = create_app(node)
    config = uvicorn.Config(
        app,
        # uvicorn's httptools protocol, answering the data plane's canonical requests itself
        http=protocol_for(app),
        # The socket peer is the caller: forwarding headers are not trusted (network policies
        # and audit events speak about the peer; see kyok.api.deps.check_network).
        proxy_headers=False,
        host=tls.host,
        port=tls.port,
        ssl_certfile=str(tls.tls_cert) if tls.tls_cert else None,
        ssl_keyfile=str(tls.tls_key) if tls.tls_key else None,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=15,
        workers=1,
    )
    return uvicorn.Server(config)


def _freeze_modules() -> None:
    """Import what serving needs and move it out of the collector's reach before the node opens.

    Imports leave next to no garbage (~800 objects of ~170k), so freezing them uncollected is
    safe and leaves :func:`_serve`'s full collection only what start-up makes after them.
    """
    import uvicorn  # noqa: F401

    import kyok.api.app  # noqa: F401

    gc.freeze()


def _started_up() -> None:
    """Ready a serving process (a node's, a worker's, the ledger writer's) for its steady state,
    once its start-up is done."""
    # Everything made at start-up (modules, the app, caches) lives as long as the process: move
    # it out of the collector's reach, so a full collection scans only what requests create.
    # Measured (bench/profile.sh): full collections of the start-up objects took ~60 ms each
    # and set the wrap p99.
    gc.collect()
    gc.freeze()
    gc.enable()  # paused for the start
    # The audit ledger's writer thread shares the GIL with the event loop; with CPython's
    # default 5 ms switch interval it waits up to 5 ms for each turn after every database call,
    # so group commits come late. 1 ms measured ~5% more wraps per second (bench/wrap.sh).
    sys.setswitchinterval(0.001)


def _url(settings: Settings, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = "127.0.0.1" if ":" not in host else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if settings.server.tls else 'http'}://{shown}:{port}"


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Stands in for the default handlers while serving (see :func:`_serve`)."""


def _serve(
    node: Node,
    sock: socket.socket,
    *,
    unit_worker: bool = True,
    link: NodeLink | None = None,
    forwarders: bool = True,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop the scheduler and seal every unit.

    uvicorn handles the signals while it serves and, once it has shut down, raises them again
    against the handlers it found. Those are :func:`_ignore` here, so control comes back and
    the node is closed properly instead of the process dying on the re-raised signal.

    Args:
        node: the node (this process's).
        sock: the bound listening socket.
        unit_worker: run the scheduler here (one process per node).
        link: a worker's node link, closed before the units are sealed at exit (the sealing
            is this process's own, not news for its siblings).
        forwarders: run the audit forwarders here (a multi-worker node runs them in its
            ledger writer, whose commits wake them, not in a serving worker).
    """
    from kyok.bootstrap.scheduler import Scheduler

    interval = node.settings.scheduler.interval
    scheduler = (
        Scheduler(node.service, node.clock, interval, import_tokens=node.import_tokens)
        if interval.total_seconds() and unit_worker
        else None
    )
    server = build_server(node)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    _started_up()
    try:
        if scheduler is not None:
            scheduler.start()
        if forwarders:
            node.start_forwarders()
        server.run(sockets=[sock])
    finally:
        if scheduler is not None:
            scheduler.stop()
        if link is not None:
            link.close()
        sealed = len(node.units.loaded())
        node.close()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped: %d crypto unit(s) sealed", sealed)


def _announce_dev(provision: DevProvision, settings: Settings) -> None:
    creds = provision.credentials
    from kyok.unit.seal.dev import FILENAME as DEV_SEAL_FILE

    seal_file = settings.data_dir / DEV_SEAL_FILE
    console.print(
        "[bold red]WARNING: dev mode.[/] The master key sits in the clear in "
        f"{seal_file} (mode 0600): anyone who can read it can read every key. "
        "Never use --dev in production.",
        soft_wrap=True,
    )
    console.print(f"URL:          {creds.url}", highlight=False)
    console.print(f"Instance id:  {creds.instance_id}", highlight=False)
    if provision.key_created:
        console.print(f"API key:      {creds.api_key}   (shown once)", highlight=False)
    elif provision.key_fixed:
        console.print("API key:      the one in KYOK_DEV_API_KEY", highlight=False)
    else:
        console.print("API key:      unchanged since the last start", highlight=False)
    console.print(f"Credentials:  {provision.path} (0600)", highlight=False)


def _check_listener(settings: Settings) -> None:
    host = settings.server.host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not settings.server.tls:
        log.warning("serving plain HTTP on %s: configure tls_cert and tls_key", host)


def _no_core_dumps() -> None:
    """A core dump of a serving process would write its master keys to disk: allow none (the
    workers of a multi-worker node inherit the limit)."""
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError):  # pragma: no cover - lowering a limit is always allowed
        log.warning("could not turn core dumps off")


def workers_advice(settings: Settings) -> str | None:
    """What an operator should know about ``server.workers`` with this store, or None.

    Every call's audit event is committed durably by the node's one ledger writer; on SQLite
    (one write transaction at a time, a durable commit per batch) that append sets the pace, and
    two workers served the data plane about as fast as one (docs/benchmarks.md, "Several
    workers").
    """
    if settings.server.workers > 1 and settings.resolved_database_url.startswith("sqlite"):
        return (
            f"{settings.server.workers} workers on SQLite: every call's audit event is committed "
            "by the node's one ledger writer, and the data plane is served about as fast as by "
            "one worker (measured for wrap/unwrap on 2 cores); use one worker, or the batch "
            "endpoints for more throughput (docs/server.md)"
        )
    return None


def _configure_logging(level: str) -> None:
    import kyok.api.middleware
    from kyok.cli import access_log

    logging.basicConfig(level=level.upper(), format=access_log.LINE_FORMAT)
    # The format names no source line, thread or process: skip collecting them for every
    # record (the Python docs' "Optimization" advice; a stack walk and two system calls per
    # access-log line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # One access line per request, written in batches (kyok.cli.access_log).
    handler = access_log.install("kyok.access", sys.stderr, access_log.LINE_FORMAT)
    kyok.api.middleware.access_sink = handler.sink("kyok.access")
    logging.getLogger("kyok").setLevel(level.upper())


@guarded
def server(
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Development mode: SQLite and a dev-sealed instance in the data directory "
            "(INSECURE: the master key sits in a file).",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="KYOK_CONFIG",
            help="TOML settings file (production).",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory (KYOK_DATA_DIR; default ./kyok-data).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Listen address (KYOK_HOST; default 127.0.0.1).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Listen port (KYOK_PORT; default 8200).", show_default=False),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", help="PEM certificate chain (KYOK_TLS_CERT).", show_default=False
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", help="PEM private key (KYOK_TLS_KEY).", show_default=False),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes on one listening socket, unsealed once (KYOK_WORKERS; "
            "default 1).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP API: Key Protect v2, kyok's unit endpoints, /health and /metrics."""
    # Start-up makes ~170k objects that live as long as the process (modules, the app) and
    # little garbage; the collector's automatic passes over them while they are made took
    # ~0.1 s of a ~1 s start (bench/start.py). Instead _freeze_modules freezes the imports and
    # _serve collects what came after them (~13 ms), then freezes that too.
    gc.disable()
    try:
        _start(dev, config, data_dir, host, port, tls_cert, tls_key, workers)
    finally:
        gc.enable()


def _start(
    dev: bool,
    config: Path | None,
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int | None = None,
) -> None:
    """What :func:`server` does: settings, the node, the dev instance, then :func:`_serve`
    (or, with several workers, :func:`kyok.cli._workers.supervise`)."""
    if dev and config is not None:
        fail("--dev and --config exclude each other", EXIT_USAGE)
    from pydantic import ValidationError

    from kyok.settings import Settings

    overrides = {
        "data_dir": data_dir,
        "server.host": host,
        "server.port": port,
        "server.tls_cert": tls_cert,
        "server.tls_key": tls_key,
        "server.workers": workers,
    }
    try:
        settings = Settings.load(config, overrides=overrides)
    except (OSError, ValueError) as exc:  # ValidationError and TOMLDecodeError are ValueErrors
        if isinstance(exc, ValidationError):
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
        else:
            detail = str(exc)
        fail(f"bad settings: {detail}", EXIT_USAGE)
    _configure_logging(settings.log_level)
    _no_core_dumps()
    if dev:
        if settings.database_url:
            note("dev mode uses SQLite in the data directory: KYOK_DATABASE_URL is ignored")
        settings = settings.model_copy(update={"database_url": None, "seal": "dev"})
    _check_listener(settings)
    from kyok.bootstrap import open_node
    from kyok.bootstrap.dev import provision_dev

    _freeze_modules()
    node = open_node(settings)
    try:
        sock = bind_socket(
            settings.server.host, settings.server.port, reuse_port=settings.server.workers > 1
        )
    except OSError as exc:
        node.close()
        fail(f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}")
    try:
        url = _url(settings, sock)
        if dev:
            provision = provision_dev(
                node,
                url,
                instance_id=os.environ.get("KYOK_DEV_INSTANCE_ID") or None,
                api_key=os.environ.get("KYOK_DEV_API_KEY") or None,
            )
            _announce_dev(provision, settings)
        else:
            from sqlalchemy.engine import make_url

            db = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
            log.info("database %s; new instances use the %s seal", db, settings.seal)
            for unit in node.unit_console.overview():
                if unit.sealed:
                    log.warning("instance %s: its crypto unit is sealed", unit.instance_id)
    except BaseException:
        node.close()
        sock.close()
        raise
    if settings.server.workers > 1:
        from kyok.cli._workers import supervise

        node.close()  # the workers open their own; dev-sealed units unseal from the seal file
        log.info("kyok listening on %s with %d workers", url, settings.server.workers)
        advice = workers_advice(settings)
        if advice:
            log.warning("%s", advice)
        code = supervise(settings, sock)
        if code:
            raise typer.Exit(code)
        return
    log.info("kyok listening on %s", url)
    _serve(node, sock)
