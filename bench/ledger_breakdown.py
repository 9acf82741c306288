"""What the audit ledger costs a wrap request, piece by piece, in one process (no sockets).

Run with the project's interpreter, pinned to one core (as the server is in bench/wrap.sh):

    taskset -c 0 .venv/bin/python bench/ledger_breakdown.py [--quick]

It opens a dev node on a fresh temporary data directory as ``kyok server --dev`` does (and as
bench/breakdown.py does) and times

* the whole application, 16 wraps in flight (as wrk's 16 connections make them), built four
  times on that node, each step adding one piece of the ledger: without the audit middleware
  (bench/noledger_server.py's pass-through); with it but a writer that answers at once (the
  middleware's own work and the event); with a real group committer whose store does nothing
  (the hand-off to its thread and back, the batching); and as kyok builds it. For each: wall
  time, the process's CPU and the committer thread's CPU per request, and events per batch;
* the ledger's pieces on their own: building a call's event (``call_event``: ``RequestAudit``,
  ``Initiator``, ``Target`` and ``AuditEvent`` with their validation), the committer's
  per-event work before SQL (``with_seq``, ``canonical_bytes``, the chain hash), a batch's
  transaction of 1, 4, 16 and 64 events (the committer's own write path when it has one, else
  ``Ledger.append`` in a unit of work + commit; wall and CPU), the head's SELECT (and UPDATE)
  alone through a unit of work, the same batch of one in plain sqlite3 (the floor), and one
  ``fsync`` on the data directory's disk.

Like bench/wrap.sh it first waits until other processes use less than ``--quiet-pct`` of a core
(at most ``--quiet-wait`` s), and it reports what they used meanwhile (``other_cpu_pct``): the
machine is shared, and figures taken beside other work are not worth much. Prints one JSON
object (µs, medians of several repeats) on stdout. Bench only: reads kyok's code, changes
nothing in it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from breakdown import API_KEY, INSTANCE, Asgi, time_sync
from driver import Window, wait_for_quiet
from noledger_server import NoRecorder, PassThrough


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds ``thread`` has used (0 if it is not running)."""
    if thread is None or thread.ident is None or not thread.is_alive():
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, ValueError):
        return 0.0


@contextlib.contextmanager
def cpu_and_wall() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    yield out
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0


async def _in_flight(make: Callable[[], Awaitable[Any]], count: int, concurrency: int) -> None:
    for _ in range(count // concurrency):
        await asyncio.gather(*(make() for _ in range(concurrency)))


def median_dicts(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke test)")
    parser.add_argument(
        "--quiet-pct", type=float, default=15.0, help="as bench/wrap.sh's QUIET_PCT"
    )
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="... and QUIET_WAIT")
    args = parser.parse_args()
    n, repeats = (320, 3) if args.quick else (3200, 5)

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    import kyok.api.app as app_module
    from kyok.audit import ChainedEvent
    from kyok.audit.chain import entry_hash_of
    from kyok.bootstrap import open_node
    from kyok.bootstrap.dev import provision_dev
    from kyok.kms.ledger import GroupCommitter, RequestAudit, call_event
    from kyok.settings import Settings

    tmp = tempfile.TemporaryDirectory(prefix="kyok-ledger-breakdown.")
    data = Path(tmp.name) / "kyok-data"
    log_file = open(Path(tmp.name) / "server.log", "w")  # noqa: SIM115
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=log_file
    )
    logging.getLogger("kyok").setLevel("INFO")
    for name in list(os.environ):
        if name.startswith("KYOK_"):
            os.environ.pop(name)
    settings = Settings.load(None, overrides={"data_dir": data})
    settings = settings.model_copy(update={"database_url": None, "seal": "dev"})
    node = open_node(settings)
    results: dict[str, Any] = {"iterations": n, "repeats": repeats}
    # Other processes' CPU while this ran, in % of one core: distrust the figures if it is large.
    results["waited_for_quiet_s"] = wait_for_quiet([os.getpid()], args.quiet_pct, args.quiet_wait)
    window = Window([os.getpid()])
    window.start()
    try:
        provision_dev(node, "http://127.0.0.1:8200", instance_id=INSTANCE, api_key=API_KEY)
        with_ledger = Asgi(app_module.create_app(node))
        # As bench/noledger_server.py builds it: no middleware, and a fast path that records
        # nothing.
        real, real_recorder = app_module.AuditMiddleware, app_module.CallRecorder
        app_module.AuditMiddleware = PassThrough  # type: ignore[misc,assignment]
        app_module.CallRecorder = NoRecorder  # type: ignore[misc,assignment]
        try:
            without = Asgi(app_module.create_app(node))
        finally:
            app_module.AuditMiddleware = real  # type: ignore[misc]
            app_module.CallRecorder = real_recorder  # type: ignore[misc]

        def request(client: Asgi, path: str, headers: dict[str, str], body: bytes) -> bytes:
            status, raw = loop.run_until_complete(client.call("POST", path, headers, body))
            if status not in (200, 201):
                raise SystemExit(f"ledger_breakdown: {path} answered {status}: {raw[:300]!r}")
            return raw

        token = json.loads(
            request(
                with_ledger,
                "/identity/token",
                {"content-type": "application/x-www-form-urlencoded"},
                f"grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey={API_KEY}".encode(),
            )
        )["access_token"]
        auth = {"authorization": f"Bearer {token}", "bluemix-instance": INSTANCE}
        create = {
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.key+json",
                "collectionTotal": 1,
            },
            "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "bench-root"}],
        }
        key_id = json.loads(
            request(
                with_ledger,
                "/api/v2/keys",
                {**auth, "content-type": "application/vnd.ibm.kms.key+json"},
                json.dumps(create).encode(),
            )
        )["resources"][0]["id"]
        body = f'{{"plaintext": "{base64.b64encode(secrets.token_bytes(32)).decode()}"}}'.encode()
        wrap_path = f"/api/v2/keys/{key_id}/actions/wrap"
        wrap_headers = {
            **auth,
            "content-type": "application/vnd.ibm.kms.key_action_wrap+json",
            "accept": "application/json",
        }
        request(with_ledger, wrap_path, wrap_headers, body)
        request(without, wrap_path, wrap_headers, body)
        writer = node.audit_writer

        # ---------------------------------------------------------------- the whole app
        # The same application four times, 16 wraps in flight; each step adds one piece of the
        # ledger, so the differences are what each piece costs:
        #   no audit      PassThrough in place of AuditMiddleware (bench/noledger_server.py)
        #   instant       AuditMiddleware with a writer whose futures are done at once: the
        #                 middleware's own work, the event, asyncio.wrap_future; no thread
        #   no-op store   AuditMiddleware with a real GroupCommitter (its thread, batches,
        #                 futures) whose ledger and unit of work do nothing: the hand-off
        #   kyok          AuditMiddleware with the node's GroupCommitter: the SQL transaction
        class NoUow:
            def __enter__(self) -> NoUow:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def commit(self) -> None:
                return None

        class NoLedger:
            policy = node.ledger.policy

            def append(self, uow: Any, events: list[Any]) -> list[Any]:
                return [ChainedEvent(e, bytes(32), bytes(32)) for e in events]

            def load_keys(self) -> None:
                return None

        class InstantWriter:
            """Answers at once (whichever of kyok's two writer APIs the middleware calls)."""

            batches = events = 0
            _thread = None

            def submit(self, event: Any) -> Future[Any]:
                done: Future[Any] = Future()
                done.set_result(ChainedEvent(event, bytes(32), bytes(32)))
                return done

            def submit_async(self, event: Any) -> asyncio.Future[Any]:
                done = asyncio.get_running_loop().create_future()
                done.set_result(ChainedEvent(event, bytes(32), bytes(32)))
                return done

        # As the node's committer is configured (a commit delay, if this kyok has one).
        delay = {"commit_delay": writer._commit_delay} if hasattr(writer, "_commit_delay") else {}
        noop_committer = GroupCommitter(lambda read_only=False: NoUow(), NoLedger(), **delay)  # type: ignore[arg-type,return-value]
        noop_committer.start()

        def with_writer(w: Any) -> Asgi:
            app = app_module.create_app(node)
            for m in app.user_middleware:  # the recorder the middleware and fast path share
                if m.cls is app_module.AuditMiddleware:
                    m.kwargs["recorder"].writer = w
            return Asgi(app)

        variants: list[tuple[str, Asgi, Any]] = [
            ("no_audit", without, None),
            ("instant_writer", with_writer(InstantWriter()), None),
            ("noop_store_committer", with_writer(noop_committer), noop_committer),
            ("kyok", with_ledger, writer),
        ]

        def load(client: Asgi, w: Any) -> dict[str, float]:
            async def make() -> None:
                status, raw = await client.call("POST", wrap_path, wrap_headers, body)
                if status != 200:  # a failing variant would time the error path
                    raise SystemExit(f"ledger_breakdown: a wrap answered {status}: {raw[:300]!r}")

            loop.run_until_complete(_in_flight(make, 160, 16))  # warm
            b0, e0 = (w.batches, w.events) if w else (0, 0)
            t0 = thread_cpu(w._thread) if w else 0.0
            with cpu_and_wall() as m:
                loop.run_until_complete(_in_flight(make, n, 16))
            batches, events = (w.batches - b0, w.events - e0) if w else (0, 0)
            return {
                "wall_us_per_req": 1e6 * m["wall_s"] / n,
                "cpu_us_per_req": 1e6 * m["cpu_s"] / n,
                "committer_thread_cpu_us_per_req": 1e6
                * ((thread_cpu(w._thread) - t0) if w else 0.0)
                / n,
                "events_per_req": events / n,
                "events_per_batch": events / batches if batches else 0.0,
            }

        try:
            rows: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
            for _ in range(repeats):  # interleaved, so that drift hits all alike
                for name, client, w in variants:
                    rows[name].append(load(client, w))
        finally:
            noop_committer.stop()
        for name, _, _ in variants:
            results[f"app_16_in_flight_{name}"] = median_dicts(rows[name])

        # ---------------------------------------------------------------- pieces
        def build_event() -> Any:
            req = RequestAudit(
                request_id="0123456789abcdef0123456789abcdef",
                correlation_id="01234567-89ab-cdef-0123-456789abcdef",
                address="127.0.0.1",
                credential="token",
            )
            req.instance_id = INSTANCE
            req.principal_id = "0a247e78-12e8-42c7-acd2-f52994f691d9"
            req.principal_type = "user"
            return call_event(
                req,
                instance_id=INSTANCE,
                action="kms.secrets.wrap",
                target_id=key_id,
                target_type="kms/key",
                status=200,
                reason_code=None,
                at=datetime.now(UTC),
            )

        results["build_event_us"] = time_sync(build_event, n, repeats)
        event = build_event()
        prev = bytes(32)

        def per_event() -> bytes:
            return entry_hash_of(prev, event.with_seq(12345).canonical_bytes())

        results["with_seq_canonical_hash_us"] = time_sync(per_event, n, repeats)
        results["canonical_bytes_us"] = time_sync(event.canonical_bytes, n, repeats)

        # A batch's transaction, called directly (the committer thread is idle meanwhile).
        uow_factory = node.store.uow

        def timed(fn: Callable[[], Any], count: int) -> dict[str, float]:
            out = []
            for _ in range(repeats):
                with cpu_and_wall() as m:
                    for _ in range(count):
                        fn()
                out.append(
                    {"wall_us": 1e6 * m["wall_s"] / count, "cpu_us": 1e6 * m["cpu_s"] / count}
                )
            return median_dicts(out)

        # Through the committer's own write path when this kyok has one (GroupCommitter._write:
        # its dedicated connection), else through a unit of work as Ledger.append is used.
        write_path = getattr(writer, "_write", None)
        results["batch_path"] = "GroupCommitter._write" if write_path else "unit of work"
        for size in (1, 4, 16, 64):
            events = [event] * size

            def batch(events: list[Any] = events) -> None:
                if write_path is not None:
                    write_path(events)
                    return
                with uow_factory() as uow:
                    node.ledger.append(uow, events)
                    uow.commit()

            med = timed(batch, max(20, n // (4 * size)))
            med["cpu_us_per_event"] = med["cpu_us"] / size
            results[f"batch_of_{size}"] = med

        def head_locked() -> None:
            with uow_factory() as uow:  # BEGIN IMMEDIATE, SELECT the head, COMMIT (no write)
                uow.audit.head(INSTANCE, lock=True)
                uow.commit()

        def head_moved() -> None:
            with uow_factory() as uow:  # ... plus the head UPDATE: a write, so the commit syncs
                head = uow.audit.head(INSTANCE, lock=True)
                assert head is not None
                uow.audit.append([], head, head.next_seq)
                uow.commit()

        results["tx_head_select_locked"] = timed(head_locked, 200)
        results["tx_head_select_and_update"] = timed(head_moved, 200)

        # The same transaction as a batch of one, in plain sqlite3 with the same pragmas and SQL
        # shape (what SQLAlchemy Core costs on top). Rows go far beyond the ledger's seqs and are
        # deleted again; the head is rewritten with its own values.
        db = next(data.glob("*.db"), None) or next(data.glob("*.sqlite*"))
        raw = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA synchronous = FULL")
        seq = [10**12]

        def raw_batch() -> None:
            raw.execute("BEGIN IMMEDIATE")
            row = raw.execute(
                "SELECT next_seq, hash FROM audit_heads WHERE instance_id = ?", (INSTANCE,)
            ).fetchone()
            seq[0] += 1
            body_text = event.with_seq(seq[0]).canonical_bytes()
            digest = entry_hash_of(prev, body_text)
            raw.execute(
                "INSERT INTO audit_events (instance_id, seq, event_time, action, outcome, body, "
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (INSTANCE, seq[0], "2026-01-01 00:00:00.000000", "kms.secrets.wrap", "success",
                 body_text.decode(), prev, digest),
            )  # fmt: skip
            raw.execute(
                "UPDATE audit_heads SET next_seq = ?, hash = ? WHERE instance_id = ? "
                "AND next_seq = ?",
                (row[0], row[1], INSTANCE, row[0]),
            )
            raw.execute("COMMIT")

        results["raw_sqlite3_batch_of_1"] = timed(raw_batch, 200)
        raw.execute("DELETE FROM audit_events WHERE seq > ?", (10**12,))
        raw.close()

        probe = data / "fsync-probe"
        with open(probe, "wb") as f:

            def sync() -> None:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())

            results["fsync_4k"] = timed(sync, 50)
        probe.unlink()
        results["other_cpu_pct"] = window.stop()["foreign_pct"]
        results["python"] = sys.version.split()[0]
        results["ledger_events_written"] = writer.events
    finally:
        node.close()
        log_file.close()
        tmp.cleanup()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
