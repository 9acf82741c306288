"""Where a wrap request's time goes, piece by piece, in one process (no sockets).

Run with the project's interpreter, pinned to one core (bench/profile.sh does both):

    taskset -c 0 .venv/bin/python bench/breakdown.py [--quick]

It opens a dev node on a fresh temporary data directory exactly as ``kyok server --dev`` does
(SQLite, dev seal, the access log at INFO into a file), builds the same FastAPI application,
and times

* the whole application for one wrap, called through ASGI directly (no uvicorn, no socket,
  no HTTP parsing): one request at a time, and 16 at a time as wrk's connections make them;
* each piece the request goes through, called on its own with the same inputs: the request-id
  middleware's work, authentication, authorisation, body parsing, ``KeyService.wrap`` (and,
  inside it, the unit's AES-GCM wrap), rendering the response, the access-log line, the
  metrics, and the two hops to a worker thread that FastAPI makes for the sync dependency
  ``caller`` and the sync route handler.

Prints one JSON object (µs per call, medians of several repeats) on stdout. Only reads kyok's
code: private helpers it borrows are looked up defensively and skipped if they moved.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

INSTANCE = "6b3c1f2e-0000-4000-8000-00000000be4c"
API_KEY = "kyok_bench_0123456789abcdefghijklmnopqrstuv"


class Asgi:
    """Calls an ASGI application the way uvicorn would, without a socket."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        raw_headers = [(b"host", b"127.0.0.1:8200")] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8200),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # a client that stays connected
            return {"type": "http.disconnect"}  # pragma: no cover

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def time_sync(fn: Callable[[], Any], n: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean µs per call of ``fn`` over ``n`` calls."""
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def time_async(
    loop: asyncio.AbstractEventLoop,
    make: Callable[[], Awaitable[Any]],
    n: int,
    repeats: int,
    concurrency: int = 1,
) -> float:
    """As :func:`time_sync` for a coroutine, ``concurrency`` of them in flight at a time."""

    async def batch(count: int) -> None:
        for _ in range(count // concurrency):
            if concurrency == 1:
                await make()
            else:
                await asyncio.gather(*(make() for _ in range(concurrency)))

    loop.run_until_complete(batch(concurrency))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop.run_until_complete(batch(n))
        samples.append((time.perf_counter() - t0) / (n // concurrency * concurrency) * 1e6)
    return statistics.median(samples)


def gc_under_load(
    loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[Any]], requests: int
) -> dict[str, Any]:
    """The cyclic garbage collector's pauses while ``requests`` wraps run, 16 in flight.

    A collection stops the whole process (the event loop and every worker thread), so each
    pause delays every request in flight: long full (generation 2) collections set the p99.
    """
    import gc

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: list[float] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses[info["generation"]].append((time.perf_counter() - started.pop()) * 1000)

    tracked = len(gc.get_objects())
    gc.callbacks.append(callback)
    t0 = time.perf_counter()
    try:
        loop.run_until_complete(_in_flight(make, requests, 16))
    finally:
        gc.callbacks.remove(callback)
    wall_ms = (time.perf_counter() - t0) * 1000
    full = sorted(pauses[2])
    return {
        "tracked_objects": tracked,
        "thresholds": list(gc.get_threshold()),
        "requests": requests,
        "wall_ms": wall_ms,
        "gen0_collections": len(pauses[0]),
        "gen1_collections": len(pauses[1]),
        "gen2_collections": len(full),
        "gen2_median_ms": statistics.median(full) if full else 0.0,
        "gen2_max_ms": full[-1] if full else 0.0,
        "gc_total_ms": sum(sum(v) for v in pauses.values()),
    }


async def _in_flight(make: Callable[[], Awaitable[Any]], count: int, concurrency: int) -> None:
    for _ in range(count // concurrency):
        await asyncio.gather(*(make() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke test)")
    args = parser.parse_args()
    n, repeats = (200, 3) if args.quick else (2000, 5)

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    from kyok.api.app import create_app
    from kyok.api.kp._common import authorize_key
    from kyok.api.kp.body import Fields, decode_b64, parse_json
    from kyok.api.kp.render import wrap_result
    from kyok.api.responses import json_response
    from kyok.auth.roles import Permission
    from kyok.bootstrap import open_node
    from kyok.bootstrap.dev import provision_dev
    from kyok.kms.lifecycle import Action
    from kyok.settings import Settings

    tmp = tempfile.TemporaryDirectory(prefix="kyok-breakdown.")
    data = Path(tmp.name) / "kyok-data"
    log_file = open(Path(tmp.name) / "server.log", "w")  # noqa: SIM115
    # As `kyok server` configures logging, with the stream a file (the bench's server log).
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=log_file
    )
    logging.getLogger("kyok").setLevel("INFO")
    for name in os.environ:
        if name.startswith("KYOK_"):
            os.environ.pop(name)
    settings = Settings.load(None, overrides={"data_dir": data})
    settings = settings.model_copy(update={"database_url": None, "seal": "dev"})
    node = open_node(settings)
    results: dict[str, Any] = {}
    try:
        provision_dev(node, "http://127.0.0.1:8200", instance_id=INSTANCE, api_key=API_KEY)
        app = create_app(node)
        client = Asgi(app)

        def request(
            method: str, path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, bytes]:
            return loop.run_until_complete(client.call(method, path, headers, body))

        status, raw = request(
            "POST",
            "/identity/token",
            {"content-type": "application/x-www-form-urlencoded"},
            f"grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey={API_KEY}".encode(),
        )
        assert status == 200, raw
        token = json.loads(raw)["access_token"]
        auth = {"authorization": f"Bearer {token}", "bluemix-instance": INSTANCE}
        create = {
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.key+json",
                "collectionTotal": 1,
            },
            "resources": [
                {
                    "type": "application/vnd.ibm.kms.key+json",
                    "name": "bench-root",
                    "extractable": False,
                }
            ],
        }
        status, raw = request(
            "POST",
            "/api/v2/keys",
            {**auth, "content-type": "application/vnd.ibm.kms.key+json"},
            json.dumps(create).encode(),
        )
        assert status == 201, raw
        key_id = json.loads(raw)["resources"][0]["id"]
        dek = secrets.token_bytes(32)
        body = f'{{"plaintext": "{base64.b64encode(dek).decode()}"}}'.encode()
        wrap_path = f"/api/v2/keys/{key_id}/actions/wrap"
        wrap_headers = {
            **auth,
            "content-type": "application/vnd.ibm.kms.key_action_wrap+json",
            "accept": "application/json",
        }
        status, raw = request("POST", wrap_path, wrap_headers, body)
        assert status == 200, raw

        def whole() -> Awaitable[Any]:
            return client.call("POST", wrap_path, wrap_headers, body)

        results["asgi_wrap_sequential"] = time_async(loop, whole, n, repeats)
        results["asgi_wrap_16_in_flight"] = time_async(loop, whole, n, repeats, concurrency=16)

        # The pieces, in the order a request meets them.
        try:
            from kyok.api.middleware import _header

            scope = {"headers": [(k.encode(), v.encode()) for k, v in wrap_headers.items()]}
            results["middleware_ids"] = time_sync(
                lambda: (
                    _header(scope, b"x-request-id") or uuid.uuid4().hex,
                    _header(scope, b"correlation-id", b"x-correlation-id") or str(uuid.uuid4()),
                ),
                n,
                repeats,
            )
        except ImportError:
            pass
        bearer = f"Bearer {token}"
        results["authenticate"] = time_sync(
            lambda: node.auth.authenticate(bearer, INSTANCE), n, repeats
        )
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            sk = Ed25519PrivateKey.generate()
            pk, msg = sk.public_key(), token.rsplit(".", 1)[0].encode()
            sig = sk.sign(msg)
            results["ed25519_verify_alone"] = time_sync(lambda: pk.verify(sig, msg), n, repeats)
        except Exception as exc:  # an optional detail: report and go on
            results["ed25519_verify_alone_error"] = repr(exc)
        ctx = node.auth.authenticate(bearer, INSTANCE)
        results["authorize_key"] = time_sync(
            lambda: authorize_key(ctx, node.service, Permission.KEYS_WRAP, key_id), n, repeats
        )
        results["parse_body"] = time_sync(
            lambda: decode_b64(
                Fields(parse_json(body)).value("plaintext"), "plaintext", what="DEK"
            ),
            n,
            repeats,
        )
        results["service_wrap"] = time_sync(
            lambda: node.service.wrap(INSTANCE, key_id, dek, None), n, repeats
        )
        try:
            key, blobs, unit = node.service._load_for_crypto(INSTANCE, key_id, Action.WRAP, ())
            handle = unit.handle(blobs[key.current_version_id])
            results["unit_handle_wrap"] = time_sync(lambda: handle.wrap(dek, []), n, repeats)
        except Exception as exc:
            results["unit_handle_wrap_error"] = repr(exc)
        result = node.service.wrap(INSTANCE, key_id, dek, None)
        media = app.state.kp_media
        results["render_response"] = time_sync(
            lambda: json_response(wrap_result(result), 200, media.action), n, repeats
        )
        access = logging.getLogger("kyok.access")
        results["access_log_line"] = time_sync(
            lambda: access.info(
                "%s %s %d %.1fms request_id=%s correlation_id=%s",
                "POST",
                "/api/v2/keys/{id}/actions/wrap",
                200,
                1.234,
                uuid.uuid4().hex,
                str(uuid.uuid4()),
            ),
            n,
            repeats,
        )
        metrics = app.state.metrics
        results["metrics_observe"] = time_sync(
            lambda: metrics.observe("POST", "/api/v2/keys/{id}/actions/wrap", 200, 0.001, "wrap"),
            n,
            repeats,
        )
        from starlette.concurrency import run_in_threadpool

        def nothing() -> None:
            return None

        results["thread_hop"] = time_async(loop, lambda: run_in_threadpool(nothing), n, repeats)
        results["thread_hop_16_in_flight"] = time_async(
            loop, lambda: run_in_threadpool(nothing), n, repeats, concurrency=16
        )
        results["gc"] = gc_under_load(loop, whole, 800 if args.quick else 8000)
        results["python"] = sys.version.split()[0]
        results["iterations"] = n
        results["repeats"] = repeats
    finally:
        node.close()
        log_file.close()
        tmp.cleanup()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
