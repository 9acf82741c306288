#!/usr/bin/env python3
"""List and search over 1,000,000 keys on PostgreSQL, or on SQLite (issue 7: p99 <= 50 ms).

    .venv/bin/python bench/keys_list.py           # one command: set up, seed, measure, report
    KEYS=200000 RUNS=1 NO_DOC=1 .venv/bin/python bench/keys_list.py   # a quicker look
    STORE=sqlite KEYS=300000 .venv/bin/python bench/keys_list.py      # the same on SQLite

``STORE`` picks the store the server runs on: ``postgresql`` (the default) or ``sqlite`` (the
embedded store, one file). Both run the same workloads, checks and wrk measurements and render
them the same way; only provisioning, seeding and the database's CPU differ (steps 1, 4 and 5).

What it does:

1. PostgreSQL: creates a fresh database ``kyok_bench_list`` on the PostgreSQL at 127.0.0.1:5432
   (role kyok, ``PG_URL``), and provisions it as ``kyok server --dev`` would (a dev-sealed
   instance with the bench's fixed instance id and API key; ``--dev`` itself always uses
   SQLite, so the server then runs as ``kyok server --config`` with ``database_url`` and
   ``seal = "dev"``). SQLite: the same in a fresh temporary data directory, with
   ``database_url`` the file ``kyok.db`` in it.
2. Starts that server on 127.0.0.1, pinned to CPU ``SERVER_CPU``, every other setting at its
   default (access log, audit ledger, scheduler).
3. Creates a few hundred keys through the API: root and standard keys, some with aliases, some
   in a second key ring, some disabled and some deleted.
4. Seeds the instance up to ``KEYS`` keys: every new key is a clone of one of the keys made
   through the API (its row in ``keys``, its version, its key blob), with a new id, version
   id, name, key ring, state-dependent times, and creation times spread over a year; 5% get an
   alias. PostgreSQL: in SQL while the server runs, then ``VACUUM (ANALYZE, INDEX_CLEANUP ON)``
   (also on a reused database), so that every page of ``keys`` is all-visible and counts and
   id scans stay index-only. SQLite: the server is stopped first; the rows are computed in
   Python and written with sqlite3's ``executemany`` in one transaction (rollback journal and
   ``synchronous=OFF`` meanwhile, WAL again after), the triggers of migration 0006 keeping
   ``key_buckets``; then ``ANALYZE`` (also on a reused file), a check that every count in
   ``key_buckets`` equals the count of its keys (the bench stops if not), and the server
   starts again.
5. Checks every workload once (status, number of resources, or the ``Key-Total`` header)
   against what SQL says the answer must be, then measures each with wrk pinned to
   ``LOAD_CPU`` (``RUNS`` runs of ``DURATION`` s after ``WARMUP`` s), recording the CPU of the
   server, of PostgreSQL (none on SQLite: the store runs inside the server process) and of
   everything else.
6. Prints JSON, keeps raw output in bench/results/keys-list-<time>/ (SQLite:
   keys-list-sqlite-<time>/; ``keys_list.py render DIR`` re-renders the docs section from it),
   rewrites the keys_list section of docs/benchmarks.md (SQLite: the keys_list_sqlite
   section, created after the keys_list section if missing; neither with ``NO_DOC=1``), stops
   the server and drops the database (not with ``KEEP_DB=1``; ``REUSE_DB=1`` skips steps 1-4
   when a kept database already holds the bench's keys). On SQLite the data directory is
   temporary, or with ``KEEP_DB=1``/``REUSE_DB=1`` the one kept in
   ``$TMPDIR/kyok-bench-list-sqlite``.

Other knobs: ``KEYS`` (1000000), ``RUNS`` (3), ``DURATION`` (10), ``WARMUP`` (3), ``CONNS``
(``1,16``: wrk connections, each measured), ``SERVER_CPU`` (0), ``LOAD_CPU`` (1), ``NICE`` (-10
as root), ``QUIET_PCT``/``QUIET_WAIT`` (as bench/wrap.sh), ``PG_URL``
(``postgresql://kyok:kyok@127.0.0.1:5432``), ``DB`` (``kyok_bench_list``), and ``SERVER``: a
program run instead of ``.venv/bin/kyok`` with ``server --config FILE`` (to compare a variant
of the server on the same data).

The cloned rows carry real key material: the blob of the key they were cloned from. A blob is
bound to its key and version by its AAD, so a clone's blob would not open; listing never opens
a blob (list responses carry no ``payload``), so what is measured is the same as with 1,000,000
keys made one by one: the same rows, row sizes, index entries and child rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import driver  # noqa: E402  (bench/driver.py: wrk runs, CPU accounting, tokens)

DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- BEGIN keys_list: generated by bench/keys_list.py, do not edit by hand -->"
END = "<!-- END keys_list -->"
HEADING = "## List and search over 1,000,000 keys on PostgreSQL"
SQLITE_BEGIN = (
    "<!-- BEGIN keys_list_sqlite: generated by bench/keys_list.py, do not edit by hand -->"
)
SQLITE_END = "<!-- END keys_list_sqlite -->"
SQLITE_HEADING = "## Listing keys on SQLite"
SQLITE_INTRO = (
    "`STORE=sqlite bench/keys_list.py`: the workloads, checks and wrk runs of the PostgreSQL "
    "section above, against a server on the embedded SQLite store (one file, `kyok.db`, in a "
    "fresh data directory), seeded the same way with Python's sqlite3 while the server is "
    "stopped."
)
#: Where ``STORE=sqlite`` keeps its data directory with ``KEEP_DB=1`` / reuses it with
#: ``REUSE_DB=1`` (the file is large: not under bench/results).
SQLITE_KEEP_DIR = Path(tempfile.gettempdir()) / "kyok-bench-list-sqlite"

INSTANCE_ID = "6b3c1f2e-0000-4000-8000-00000000be4c"
API_KEY = "kyok_bench_0123456789abcdefghijklmnopqrstuv"
RING_TWO = "ring-two"
GOAL_P99_MS = 50.0

#: Name parts of every key: ``<team>-<service>-<6 hex digits>``.
# fmt: off
TEAMS = (
    "payments", "billing", "identity", "search", "storage", "analytics", "ledger", "mobile",
    "web", "backup", "ml", "iot", "crm", "hr", "audit", "edge", "mail", "video", "ads", "ops",
)
SERVICES = (
    "orders", "invoices", "refunds", "carts", "sessions", "profiles", "tokens", "uploads",
    "archive", "reports", "metrics", "traces", "events", "queue", "cache", "index", "catalog",
    "pricing", "stock", "shipping", "geo", "chat", "notify", "push", "email", "sms", "media",
    "thumbs", "transcode", "ingest", "etl", "warehouse", "lake", "features", "models",
    "scoring", "fraud", "risk", "consent", "kestrel", "gateway", "proxy", "dns", "certs",
    "secrets", "config", "flags", "sched", "batch", "cron",
)
# fmt: on
#: A service word that is in about 1 name in 50 (and in no other word).
SEARCH_HIT = "kestrel"
SEARCH_MISS = "no-such-key-name"

LUA = "kp_list.lua"
API_KEYS = 300  # made through the API; every 30th+7 disabled, every 30th+19 deleted


def knob(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def log(msg: str) -> None:
    driver.log(msg)


# ----------------------------------------------------------------------------- HTTP


def call(
    url: str,
    method: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, Any, Any]:
    """One request; (status, headers, parsed JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 (loopback only)
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, exc.headers, exc.read()
    return status, hdrs, (json.loads(raw) if raw else None)


def must(result: tuple[int, Any, Any], expect: int, what: str) -> Any:
    status, _, body = result
    if status != expect:
        raise SystemExit(f"bench: {what} answered {status}, expected {expect}: {body}")
    return body


# ----------------------------------------------------------------------------- database


@dataclass(frozen=True)
class Database:
    admin_url: str  # libpq URL of the maintenance database (postgres)
    url: str  # libpq URL of the bench database
    sqlalchemy_url: str  # the same for kyok
    name: str


def database(name: str) -> Database:
    base = os.environ.get("PG_URL", "postgresql://kyok:kyok@127.0.0.1:5432")
    parts = urllib.parse.urlsplit(base)
    if parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"bench: only a loopback PostgreSQL is used ({base})")
    root = f"postgresql://{parts.netloc}"
    return Database(
        admin_url=root + "/postgres",
        url=f"{root}/{name}",
        sqlalchemy_url=f"postgresql+psycopg://{parts.netloc}/{name}",
        name=name,
    )


def recreate_database(db: Database) -> None:
    import psycopg

    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db.name}"')


def drop_database(db: Database) -> None:
    import psycopg

    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


def database_exists(db: Database) -> bool:
    import psycopg

    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,)).fetchone()
    return row is not None


@dataclass(frozen=True)
class SqliteDatabase:
    path: Path  # the file, <data dir>/kyok.db
    sqlalchemy_url: str  # for kyok
    name: str


def sqlite_database(data_dir: Path) -> SqliteDatabase:
    path = data_dir / "kyok.db"
    return SqliteDatabase(path=path, sqlalchemy_url=f"sqlite:///{path}", name=path.name)


def sqlite_connect(db: SqliteDatabase) -> sqlite3.Connection:
    """A connection in autocommit mode (the statements say BEGIN and COMMIT themselves)."""
    return sqlite3.connect(db.path, isolation_level=None)


#: The store the server runs on.
Store = Database | SqliteDatabase


def provision(db: Store, data_dir: Path) -> None:
    """What ``kyok server --dev`` does at start, on PostgreSQL or on ``db``'s SQLite file:
    migrate, a dev-sealed instance with the fixed id, its administrator with the fixed API
    key."""
    from kyok.bootstrap import open_node
    from kyok.bootstrap.dev import provision_dev
    from kyok.settings import Settings

    settings = Settings.load(
        env={},
        overrides={"data_dir": data_dir, "database_url": db.sqlalchemy_url, "seal": "dev"},
    )
    with open_node(settings) as node:
        provision_dev(node, "http://127.0.0.1", instance_id=INSTANCE_ID, api_key=API_KEY)


SEED_SQL = """
CREATE TEMP TABLE tpl ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY k.created_at, k.id) - 1 AS rn, k.*,
       b.purpose AS blob_purpose, b.mk_epoch AS blob_epoch, b.data AS blob_data
FROM keys k JOIN blobs b ON b.instance_id = k.instance_id AND b.id = k.current_version_id
WHERE k.instance_id = %(inst)s;

CREATE TEMP TABLE clone ON COMMIT DROP AS
SELECT g,
       md5('kyok-bench-key:' || g)::uuid::text AS id,
       md5('kyok-bench-version:' || g)::uuid::text AS vid,
       g %% (SELECT count(*) FROM tpl) AS rn,
       %(now)s::timestamptz - interval '365 days' * (1 - g::float8 / %(n)s)
           - interval '1 hour' AS created_at,
       ('x' || substr(md5('kyok-bench-name:' || g), 1, 8))::bit(32)::bigint AS h
FROM generate_series(1, %(n)s) AS g;

INSERT INTO keys (instance_id, id, name, description, extractable, imported, state,
                  key_ring_id, tags, created_at, created_by, updated_at, last_action_at,
                  current_version_id, version_count, bit_length, last_rotated_at, expires_at,
                  deleted_at, deleted_by, state_reason, last_synced_at, row_version)
SELECT t.instance_id, c.id,
       (%(teams)s::text[])[1 + c.h %% %(n_teams)s] || '-'
           || (%(services)s::text[])[1 + (c.h / 64) %% %(n_services)s] || '-'
           || substr(md5('kyok-bench-suffix:' || c.g), 1, 6),
       t.description, t.extractable, t.imported, t.state,
       CASE WHEN c.g %% %(ring_every)s = 0 THEN %(ring)s ELSE 'default' END,
       t.tags, c.created_at, t.created_by,
       CASE t.state
           WHEN 5 THEN %(now)s::timestamptz - (%(now)s::timestamptz - c.created_at) * 0.15
           WHEN 2 THEN c.created_at + (%(now)s::timestamptz - c.created_at) * 0.5
           ELSE c.created_at END,
       CASE t.state
           WHEN 5 THEN %(now)s::timestamptz - (%(now)s::timestamptz - c.created_at) * 0.15
           WHEN 2 THEN c.created_at + (%(now)s::timestamptz - c.created_at) * 0.5
           ELSE c.created_at END,
       c.vid, 1, t.bit_length, NULL,
       CASE WHEN t.state IN (1, 2) AND c.h %% 10 = 0
            THEN %(now)s::timestamptz + interval '1 day' * (1 + (c.h / 16) %% 365) END,
       CASE WHEN t.state = 5
            THEN %(now)s::timestamptz - (%(now)s::timestamptz - c.created_at) * 0.15 END,
       t.deleted_by, t.state_reason, NULL, t.row_version
FROM clone c JOIN tpl t ON t.rn = c.rn;

INSERT INTO key_versions (instance_id, id, key_id, number, created_at)
SELECT t.instance_id, c.vid, c.id, 1, c.created_at FROM clone c JOIN tpl t ON t.rn = c.rn;

INSERT INTO blobs (instance_id, id, owner_id, purpose, mk_epoch, data)
SELECT t.instance_id, c.vid, c.id, t.blob_purpose, t.blob_epoch, t.blob_data
FROM clone c JOIN tpl t ON t.rn = c.rn;

INSERT INTO aliases (instance_id, alias, key_id, created_at, created_by)
SELECT t.instance_id, 'alias-' || c.g, c.id, c.created_at, t.created_by
FROM clone c JOIN tpl t ON t.rn = c.rn
WHERE c.g %% 20 = 0;
"""


def seed(db: Database, total: int) -> dict[str, Any]:
    """Clone the API-made keys up to ``total`` keys; vacuum (:func:`vacuum`); what the data
    holds."""
    import psycopg

    with psycopg.connect(db.url) as conn:
        made = conn.execute(
            "SELECT count(*) FROM keys WHERE instance_id = %s", (INSTANCE_ID,)
        ).fetchone()
        n = total - int(made[0] if made else 0)
        if n > 0:
            t0 = time.monotonic()
            params = {
                "inst": INSTANCE_ID,
                "n": n,
                "now": datetime.now(UTC),
                "teams": list(TEAMS),
                "services": list(SERVICES),
                "n_teams": len(TEAMS),
                "n_services": len(SERVICES),
                "ring": RING_TWO,
                "ring_every": 250,
            }
            for statement in SEED_SQL.split(";\n\n"):
                if statement.strip():
                    conn.execute(statement, params)
            conn.commit()
            log(f"seeded {n:,} cloned keys in {time.monotonic() - t0:.0f} s")
    return vacuum(db)


def vacuum(db: Database) -> dict[str, Any]:
    """``VACUUM (ANALYZE, INDEX_CLEANUP ON)``; what the data holds.

    Counting and the id scans of a page are index-only scans: they read a heap page only where
    the visibility map does not say "all visible". A plain VACUUM may skip index cleanup when
    few pages hold dead tuples (the keys disabled and deleted through the API), and leaves
    those pages not all-visible; ``INDEX_CLEANUP ON`` makes every page all-visible."""
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as conn:
        t0 = time.monotonic()
        conn.execute("VACUUM (ANALYZE, INDEX_CLEANUP ON)")
        log(f"VACUUM (ANALYZE, INDEX_CLEANUP ON) in {time.monotonic() - t0:.0f} s")
        return data_facts(conn)


_COUNT_BY_STATE = "SELECT state, count(*) FROM keys WHERE instance_id = ? GROUP BY 1 ORDER BY 1"
_COUNT_BY_RING = (
    "SELECT key_ring_id, count(*) FROM keys WHERE instance_id = ? GROUP BY 1 ORDER BY 1"
)
_COUNT_ALIASES = "SELECT count(*) FROM aliases WHERE instance_id = ?"


def key_counts(conn: Any, mark: str) -> dict[str, Any]:
    """The seeded instance's keys by state and by key ring, and its aliases (``mark``: the
    driver's placeholder, ``%s`` or ``?``)."""

    def run(sql: str) -> list[Any]:
        return list(conn.execute(sql.replace("?", mark), (INSTANCE_ID,)).fetchall())

    by_state = dict(run(_COUNT_BY_STATE))
    return {
        "keys": sum(by_state.values()),
        "by_state": {str(k): v for k, v in by_state.items()},
        "by_ring": dict(run(_COUNT_BY_RING)),
        "aliases": run(_COUNT_ALIASES)[0][0],
    }


def data_facts(conn: Any) -> dict[str, Any]:
    counts = key_counts(conn, "%s")
    sizes = dict(
        conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname IN ('keys', 'key_versions', 'blobs', 'aliases')"
        ).fetchall()
    )
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'keys' ORDER BY indexname"
        ).fetchall()
    ]
    extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1")]
    pages, visible = conn.execute(
        "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'keys'"
    ).fetchone()
    return {
        **counts,
        "table_bytes": sizes,
        "keys_indexes": indexes,
        "extensions": extensions,
        "keys_all_visible_pct": round(100 * visible / pages, 2) if pages else 100.0,
        "server_version": conn.execute("SHOW server_version").fetchone()[0],
    }


# ----------------------------------------------------------------------------- SQLite

#: The columns of a seeded ``keys`` row, in the order of :func:`_clone_rows`' tuples.
_SQLITE_KEY_COLUMNS = (
    "instance_id, id, name, description, extractable, imported, state, key_ring_id, tags, "
    "created_at, created_by, updated_at, last_action_at, current_version_id, version_count, "
    "bit_length, last_rotated_at, expires_at, deleted_at, deleted_by, state_reason, "
    "last_synced_at, row_version"
)
_SQLITE_CHUNK = 20_000  # clones per executemany round (all in one transaction)


def _md5(prefix: str, g: int) -> str:
    return hashlib.md5(f"{prefix}{g}".encode()).hexdigest()  # noqa: S324 (names, not security)


def _sqlite_time(value: datetime) -> str:
    """A naive UTC datetime as kyok stores it on SQLite (``kyok.store.sql.types``)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _clone_rows(
    tpl: list[sqlite3.Row], g0: int, g1: int, n: int, now: datetime
) -> tuple[list[tuple[Any, ...]], ...]:
    """The rows of clones ``g0 .. g1 - 1`` (of ``n``) for keys, key_versions, blobs and
    aliases: the rows of :data:`SEED_SQL`, computed in Python (SQLite has no md5)."""
    keys_rows, versions, blobs, aliases = [], [], [], []
    year, hour = timedelta(days=365), timedelta(hours=1)
    for g in range(g0, g1):
        t = tpl[g % len(tpl)]
        key_id = str(uuid.UUID(_md5("kyok-bench-key:", g)))
        vid = str(uuid.UUID(_md5("kyok-bench-version:", g)))
        h = int(_md5("kyok-bench-name:", g)[:8], 16)
        created = now - year * (1 - g / n) - hour
        state = t["state"]
        if state == 5:
            changed: datetime = now - (now - created) * 0.15
        elif state == 2:
            changed = created + (now - created) * 0.5
        else:
            changed = created
        expires = (
            _sqlite_time(now + timedelta(days=1 + (h // 16) % 365))
            if state in (1, 2) and h % 10 == 0
            else None
        )
        name = (
            f"{TEAMS[h % len(TEAMS)]}-{SERVICES[(h // 64) % len(SERVICES)]}-"
            f"{_md5('kyok-bench-suffix:', g)[:6]}"
        )
        at = _sqlite_time(created)
        keys_rows.append((
            t["instance_id"], key_id, name, t["description"], t["extractable"], t["imported"],
            state, RING_TWO if g % 250 == 0 else "default", t["tags"], at, t["created_by"],
            _sqlite_time(changed), _sqlite_time(changed), vid, 1, t["bit_length"], None,
            expires, _sqlite_time(changed) if state == 5 else None, t["deleted_by"],
            t["state_reason"], None, t["row_version"],
        ))  # fmt: skip
        versions.append((t["instance_id"], vid, key_id, 1, at))
        blobs.append((t["instance_id"], vid, key_id, t["blob_purpose"], t["blob_epoch"],
                      t["blob_data"]))  # fmt: skip
        if g % 20 == 0:
            aliases.append((t["instance_id"], f"alias-{g}", key_id, at, t["created_by"]))
    return keys_rows, versions, blobs, aliases


def seed_sqlite(db: SqliteDatabase, total: int) -> float:
    """Clone the API-made keys up to ``total`` keys in ``db``'s file, the server stopped (no
    other connection); the seconds it took.

    The same rows as :data:`SEED_SQL` on PostgreSQL, inserted in creation order with
    ``executemany`` in one transaction. Meanwhile the file uses a rollback journal and
    ``synchronous=OFF`` (WAL would write every page twice: to the log, then back); it is put
    back in WAL mode, as kyok opens it, at the end. The triggers of migration 0006 keep
    ``key_buckets`` row by row."""
    with closing(sqlite_connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        made = conn.execute(
            "SELECT count(*) FROM keys WHERE instance_id = ?", (INSTANCE_ID,)
        ).fetchone()[0]
        if made != API_KEYS:  # the server wrote elsewhere, or the API calls went missing
            raise SystemExit(f"bench: {db.path} holds {made} keys, expected the {API_KEYS} "
                             "made through the API")  # fmt: skip
        tpl = conn.execute(
            "SELECT k.*, b.purpose AS blob_purpose, b.mk_epoch AS blob_epoch, "
            "b.data AS blob_data FROM keys k JOIN blobs b "
            "ON b.instance_id = k.instance_id AND b.id = k.current_version_id "
            "WHERE k.instance_id = ? ORDER BY k.created_at, k.id",
            (INSTANCE_ID,),
        ).fetchall()
        n = total - made
        if n <= 0:
            return 0.0
        t0 = time.monotonic()
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if mode != "delete":
            raise SystemExit(f"bench: {db.path} stays in journal mode {mode}: still open?")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB: the indexes stay in memory
        now = datetime.now(UTC).replace(tzinfo=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for g0 in range(1, n + 1, _SQLITE_CHUNK):
                keys_rows, versions, blobs, aliases = _clone_rows(
                    tpl, g0, min(g0 + _SQLITE_CHUNK, n + 1), n, now
                )
                conn.executemany(
                    f"INSERT INTO keys ({_SQLITE_KEY_COLUMNS}) "  # noqa: S608 (constants)
                    f"VALUES ({', '.join('?' * 23)})",
                    keys_rows,
                )
                conn.executemany(
                    "INSERT INTO key_versions (instance_id, id, key_id, number, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    versions,
                )
                conn.executemany(
                    "INSERT INTO blobs (instance_id, id, owner_id, purpose, mk_epoch, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    blobs,
                )
                conn.executemany(
                    "INSERT INTO aliases (instance_id, alias, key_id, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, ?)",
                    aliases,
                )
                done = min(g0 + _SQLITE_CHUNK - 1, n)
                if done % 100_000 < _SQLITE_CHUNK or done == n:
                    log(f"  {done:,} of {n:,} cloned keys, {time.monotonic() - t0:.0f} s")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA journal_mode = WAL")
        took = time.monotonic() - t0
    log(f"seeded {n:,} cloned keys in {took:.0f} s")
    return took


def prepare_sqlite(db: SqliteDatabase) -> dict[str, Any]:
    """``ANALYZE``, the check of ``key_buckets``, and what the data holds (server stopped)."""
    with closing(sqlite_connect(db)) as conn:
        t0 = time.monotonic()
        conn.execute("ANALYZE")
        log(f"ANALYZE in {time.monotonic() - t0:.0f} s")
        buckets = check_key_buckets(conn)
        return {**sqlite_facts(db, conn), "key_buckets": buckets}


def check_key_buckets(conn: sqlite3.Connection) -> dict[str, Any]:
    """Stop the bench unless ``key_buckets`` (kept by the triggers of migration 0006) holds
    exactly the counts of ``keys``: per bucket, and summed per instance and state."""
    counted = "SELECT instance_id, state, substr(id, 1, 3), count(*) FROM keys GROUP BY 1, 2, 3"
    kept = "SELECT instance_id, state, bucket, n FROM key_buckets"
    missing = conn.execute(f"{counted} EXCEPT {kept} LIMIT 5").fetchall()
    extra = conn.execute(f"{kept} EXCEPT {counted} LIMIT 5").fetchall()
    by_keys = dict(
        ((i, s), n)
        for i, s, n in conn.execute(
            "SELECT instance_id, state, count(*) FROM keys GROUP BY 1, 2"
        ).fetchall()
    )
    by_buckets = dict(
        ((i, s), n)
        for i, s, n in conn.execute(
            "SELECT instance_id, state, sum(n) FROM key_buckets GROUP BY 1, 2"
        ).fetchall()
    )
    if missing or extra or by_keys != by_buckets:
        raise SystemExit(
            "bench: key_buckets does not match keys: counted in keys but not so in key_buckets "
            f"{missing}; in key_buckets but not so in keys {extra}; per (instance, state) "
            f"keys {by_keys}, key_buckets {by_buckets}"
        )
    rows = conn.execute("SELECT count(*) FROM key_buckets").fetchone()[0]
    by_state = {str(s): n for (_, s), n in sorted(by_buckets.items())}
    log(f"key_buckets: {rows:,} rows, every count equal to the keys' (by state {by_state})")
    return {"rows": rows, "by_state": by_state}


def sqlite_facts(db: SqliteDatabase, conn: sqlite3.Connection) -> dict[str, Any]:
    counts = key_counts(conn, "?")
    sizes = dict(
        conn.execute(
            "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m "
            "ON m.name = d.name WHERE m.tbl_name IN ('keys', 'key_versions', 'blobs', "
            "'aliases', 'key_buckets') GROUP BY 1"
        ).fetchall()
    )
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT coalesce(sql, name) FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'keys' ORDER BY name"
        ).fetchall()
    ]
    return {
        **counts,
        "table_bytes": sizes,
        "file_bytes": db.path.stat().st_size,
        "keys_indexes": indexes,
        "analyzed": conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0,
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "server_version": conn.execute("SELECT sqlite_version()").fetchone()[0],
    }


def expected_search(db: Store, text: str, ring: str | None) -> int:
    """How many keys a plain search for ``text`` must find (default states, names and
    aliases, case-insensitive substring), computed here in SQL without kyok's code."""
    if isinstance(db, SqliteDatabase):
        with closing(sqlite_connect(db)) as lite:
            row = lite.execute(
                "SELECT count(*) FROM keys k WHERE k.instance_id = :i "
                "AND k.state IN (0, 1, 2, 3) AND (:r IS NULL OR k.key_ring_id = :r) "
                "AND (instr(lower(k.name), :t) > 0 OR EXISTS (SELECT 1 FROM aliases a "
                "WHERE a.instance_id = k.instance_id AND a.key_id = k.id "
                "AND instr(lower(a.alias), :t) > 0))",
                {"i": INSTANCE_ID, "r": ring, "t": text.lower()},
            ).fetchone()
        return int(row[0]) if row else 0
    import psycopg

    sql = (
        "SELECT count(*) FROM keys k WHERE k.instance_id = %(i)s AND k.state IN (0, 1, 2, 3) "
        "AND (%(r)s::text IS NULL OR k.key_ring_id = %(r)s) "
        "AND (strpos(lower(k.name), %(t)s) > 0 OR EXISTS (SELECT 1 FROM aliases a "
        "WHERE a.instance_id = k.instance_id AND a.key_id = k.id "
        "AND strpos(lower(a.alias), %(t)s) > 0))"
    )
    with psycopg.connect(db.url) as conn:
        row = conn.execute(sql, {"i": INSTANCE_ID, "r": ring, "t": text.lower()}).fetchone()
    return int(row[0])


def expected_states(db: Store, states: tuple[int, ...]) -> int:
    if isinstance(db, SqliteDatabase):
        with closing(sqlite_connect(db)) as lite:
            row = lite.execute(
                "SELECT count(*) FROM keys WHERE instance_id = ? "  # noqa: S608 (placeholders)
                f"AND state IN ({', '.join('?' * len(states))})",
                (INSTANCE_ID, *states),
            ).fetchone()
        return int(row[0]) if row else 0
    import psycopg

    with psycopg.connect(db.url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM keys WHERE instance_id = %s AND state = ANY(%s)",
            (INSTANCE_ID, list(states)),
        ).fetchone()
    return int(row[0])


def pg_ticks() -> int:
    """CPU of PostgreSQL so far, in clock ticks: utime + stime of every live ``postgres``
    process, plus the postmaster's reaped children (backends and parallel workers that have
    exited since)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[1] is the parent; [11] [12] utime stime; [13] [14] cutime cstime
        total += int(fields[11]) + int(fields[12])
        try:
            with open(f"/proc/{fields[1]}/comm") as f:
                parent = f.read().strip()
        except OSError:
            parent = ""
        if parent != "postgres":  # the postmaster: add what its exited children used
            total += int(fields[13]) + int(fields[14])
    return total


# ----------------------------------------------------------------------------- server


class Server:
    """``kyok server --config`` on PostgreSQL or SQLite with the dev seal, pinned to one core."""

    def __init__(self, db: Store, tmp: Path, cpu: str, nice: int) -> None:
        self.data_dir = tmp / "data"
        self.log_path = tmp / "kyok.log"
        port = int(
            subprocess.run(
                [sys.executable, "-c", "import socket; s=socket.socket(); "
                 "s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"],
                capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        config = tmp / "kyok.toml"
        config.write_text(
            f'database_url = "{db.sqlalchemy_url}"\n'
            'seal = "dev"\n'
            f'data_dir = "{self.data_dir}"\n'
            f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
        cmd = []
        if nice:
            cmd += ["nice", "-n", str(nice)]
        program = os.environ.get("SERVER", "").split() or [str(REPO / ".venv" / "bin" / "kyok")]
        cmd += ["taskset", "-c", cpu, *program, "server", "--config", str(config)]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("bench: the server stopped:\n" + self.log_tail())
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:  # noqa: S310
                    health = json.loads(resp.read())
                if health.get("status") == "ok":
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("bench: the server did not start:\n" + self.log_tail())
            time.sleep(0.2)
        self.pid = self.proc.pid

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_api_keys(url: str, headers: dict[str, str]) -> None:
    """A few hundred real keys: root and standard, aliases, a second ring, disabled, deleted."""
    h = {**headers, "Content-Type": "application/json"}
    must(call(f"{url}/api/v2/key_rings/{RING_TWO}", "POST", h), 201, "create key ring")
    for i in range(API_KEYS):
        team, service = TEAMS[i % len(TEAMS)], SERVICES[(i * 7) % len(SERVICES)]
        resource: dict[str, Any] = {
            "type": "application/vnd.ibm.kms.key+json",
            "name": f"{team}-{service}-{i:06x}",
            "extractable": i % 4 == 0,
            "description": f"bench key {i}" if i % 3 == 0 else None,
            "tags": ["bench", team] if i % 5 == 0 else [],
        }
        if i % 6 == 0:
            resource["aliases"] = [f"api-alias-{i}", f"{team}-{i}"]
        resource = {k: v for k, v in resource.items() if v is not None}
        ring = {"X-Kms-Key-Ring": RING_TWO} if i % 8 == 0 else {}
        body = {
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.key+json",
                "collectionTotal": 1,
            },
            "resources": [resource],
        }
        created = must(call(f"{url}/api/v2/keys", "POST", {**h, **ring}, body), 201, "create key")
        key_id = created["resources"][0]["id"]
        if i % 30 == 7:
            must(
                call(f"{url}/api/v2/keys/{key_id}/actions/disable", "POST", {**h, **ring}),
                204,
                "disable key",
            )
        elif i % 30 == 19:
            must(call(f"{url}/api/v2/keys/{key_id}", "DELETE", {**h, **ring}), 204, "delete key")


# ----------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    path: str
    ring: str | None
    status: int  # the answer every request must get
    resources: int | None  # len(resources) expected (GET 200)
    key_total: int | None  # Key-Total expected (HEAD)
    what: str


def workloads(db: Store, facts: dict[str, Any]) -> list[Workload]:
    visible = expected_states(db, (0, 1, 2, 3))
    deep = 900_000 if visible >= 900_200 else max(0, visible - 200)
    active_or_destroyed = expected_states(db, (1, 5))
    hits_ring = expected_search(db, SEARCH_HIT, RING_TWO)
    ring_scope = facts["by_ring"].get(RING_TWO, 0)
    return [
        Workload("first page", "GET", "/api/v2/keys?limit=200", None, 200, 200, None,
                 f"the first 200 of {visible:,} keys (states 0-3), id order"),
        Workload("deep page", "GET", f"/api/v2/keys?limit=200&offset={deep}", None, 200,
                 min(200, visible - deep), None, f"200 keys from offset {deep:,}"),
        Workload("state filter", "GET", "/api/v2/keys?limit=200&offset=0&state=1%2C5", None,
                 200, min(200, active_or_destroyed), None,
                 f"states 1 and 5 as the py3 client sends them ({active_or_destroyed:,} match)"),
        Workload("search (key ring)", "GET", f"/api/v2/keys?search={SEARCH_HIT}", RING_TWO,
                 200, min(200, hits_ring), None,
                 f"substring of name or alias in the {ring_scope:,} keys of `{RING_TWO}`; "
                 f"{hits_ring} match"),
        Workload("search nothing (key ring)", "GET", f"/api/v2/keys?search={SEARCH_MISS}",
                 RING_TWO, 200, 0, None, f"the same scope, no key matches `{SEARCH_MISS}`"),
        Workload("search (whole instance)", "GET", f"/api/v2/keys?search={SEARCH_HIT}", None,
                 400, None, None,
                 "over more than 5,000 keys: 400 KEY_SEARCH_TOO_BROAD, as Key Protect answers"),
        Workload("count", "HEAD", "/api/v2/keys", None, 200, None, visible,
                 "the `Key-Total` header: Key Protect's count of keys"),
    ]  # fmt: skip


def check(url: str, headers: dict[str, str], w: Workload) -> float:
    """Send ``w``'s request once and check the answer; its latency in ms."""
    h = dict(headers)
    if w.ring:
        h["X-Kms-Key-Ring"] = w.ring
    t0 = time.monotonic()
    status, hdrs, body = call(url + w.path, w.method, h)
    took = time.monotonic() - t0
    if status != w.status:
        raise SystemExit(
            f"bench: {w.name}: {w.path} answered {status}, expected {w.status}: {body}"
        )
    if w.status == 400:
        code = body["resources"][0]["reasons"][0]["code"]
        if code != "KEY_SEARCH_TOO_BROAD":
            raise SystemExit(f"bench: {w.name}: error code {code}, expected KEY_SEARCH_TOO_BROAD")
    if w.resources is not None:
        got = len(body.get("resources", []))
        if got != w.resources or body["metadata"]["collectionTotal"] != got:
            raise SystemExit(f"bench: {w.name}: {got} resources, expected {w.resources}")
    if w.key_total is not None and int(hdrs.get("Key-Total", "-1")) != w.key_total:
        raise SystemExit(
            f"bench: {w.name}: Key-Total {hdrs.get('Key-Total')}, expected {w.key_total}"
        )
    log(f"checked {w.name}: {status} in {took * 1000:.0f} ms")
    return took * 1000


# ----------------------------------------------------------------------------- report


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over runs of each (concurrency, workload), in the order measured."""
    fields = ("rps", "p50_us", "p90_us", "p99_us", "lat_max_us", "errors", "server_cpu_pct",
              "server_cpu_us_per_req", "pg_cpu_pct", "wrk_cpu_pct", "foreign_pct")  # fmt: skip
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["conns"], r["workload"]), []).append(r)
    out = []
    for (conns, name), rows in groups.items():
        # pg_cpu_pct: PostgreSQL only (on SQLite the store's CPU is the server's)
        med = {k: float(statistics.median(r[k] for r in rows)) for k in fields if k in rows[0]}
        out.append({"conns": conns, "workload": name, "runs": len(rows), **med})
    return out


def render(meta: dict[str, Any], loads: list[Workload], results: list[dict[str, Any]]) -> str:
    """The docs section of a run, on either store: the same tables; on SQLite without the
    columns of PostgreSQL's CPU and with the rows that say how the file was set up."""
    cfg, facts = meta["config"], meta["data"]
    pg = cfg.get("store", "postgresql") == "postgresql"
    ms = driver.ms
    states = ", ".join(f"{s}: {n:,}" for s, n in facts["by_state"].items())
    rings = ", ".join(f"`{r}` {n:,}" for r, n in facts["by_ring"].items())
    mib = {t: b / 2**20 for t, b in facts["table_bytes"].items()}
    conns = ", ".join(f"`-c{c}`" for c in cfg["conns"])
    tables = ", ".join(f"`{t}` {v:,.0f} MiB" for t, v in sorted(mib.items()))
    lines = [
        BEGIN if pg else SQLITE_BEGIN,
        "",
        f"Measured {meta['date']} with `{cfg['command']}` ({cfg['runs']} runs; each workload "
        f"{cfg['warmup']} s warm-up, then {cfg['duration']} s measured; wrk `-t1 --latency "
        f"--timeout 2s` with {conns}; medians of the runs).",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {meta['machine']} |",
    ]
    if pg:
        lines += [
            f"| kyok | commit {meta['commit']}, `kyok server --config` (PostgreSQL "
            f"{facts['server_version']} at 127.0.0.1, database `{cfg['database']}`, dev seal, "
            "one uvicorn worker, default settings: access log, audit ledger, scheduler) pinned "
            f"to CPU {cfg['server_cpu']}; wrk on CPU {cfg['load_cpu']}; PostgreSQL not pinned |",
            f"| data | {facts['keys']:,} keys in one instance (by state: {states}; by key ring: "
            f"{rings}), {facts['aliases']:,} aliases; {API_KEYS} made through the API, the rest "
            "cloned from them in SQL (below); `VACUUM (ANALYZE, INDEX_CLEANUP ON)` after "
            f"seeding: {facts.get('keys_all_visible_pct', '?')}% of the `keys` pages "
            "all-visible |",
            f"| sizes | {tables} (with their indexes); extensions: "
            + (", ".join(facts["extensions"]) or "none")
            + " |",
        ]
    else:
        where = (
            "a data directory kept from an earlier run (`REUSE_DB=1`)"
            if cfg.get("reused")
            else "a fresh temporary data directory"
        )
        seeded = f", {meta['seed_s']:.0f} s" if meta.get("seed_s") else ""
        buckets = facts["key_buckets"]
        lines += [
            f"| kyok | commit {meta['commit']}, `kyok server --config` (SQLite "
            f"{facts['server_version']}, `database_url` the file `{cfg['database']}` in "
            f"{where}, journal mode {facts['journal_mode'].upper()}, `synchronous=FULL` as kyok "
            "sets it, dev seal, "
            "one uvicorn worker, default settings: access log, audit ledger, scheduler) pinned "
            f"to CPU {cfg['server_cpu']}; wrk on CPU {cfg['load_cpu']}; no database process: "
            "SQLite runs inside the server, so the server's CPU includes the store |",
            f"| data | {facts['keys']:,} keys in one instance (by state: {states}; by key ring: "
            f"{rings}), {facts['aliases']:,} aliases; {API_KEYS} made through the API, the rest "
            "cloned from them with Python's sqlite3 (`executemany` in one transaction, the "
            f"server stopped{seeded}; below); `ANALYZE` after seeding; `key_buckets` (kept by "
            f"the triggers on `keys`) checked: {buckets['rows']:,} bucket rows, each count "
            "equal to its keys' |",
            f"| sizes | {tables} (with their indexes, from `dbstat`); the file "
            f"{facts['file_bytes'] / 2**20:,.0f} MiB |",
        ]
    lines += [
        "",
        "| workload | request | the check request (first, alone) |",
        "|---|---|--:|",
    ]
    first = meta.get("first_request_ms", {})
    for w in loads:
        ring = f" with `X-Kms-Key-Ring: {w.ring}`" if w.ring else ""
        alone = f"{first[w.name]:,.0f} ms" if w.name in first else "-"
        lines.append(f"| {w.name} | `{w.method} {w.path}`{ring}: {w.what} | {alone} |")
    lines += [
        "",
        "**Medians** (latency in ms; CPU in % of one core; server CPU also in µs per request):",
        "",
        "| conns | workload | req/s | p50 | p90 | p99 | max | errors | server CPU | "
        + ("µs/req | PostgreSQL CPU | p99 ≤ 50 ms |" if pg else "µs/req | p99 ≤ 50 ms |"),
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|:-:|" if pg else ":-:|"),
    ]
    for r in summarize(results):
        timed_out = not r["p99_us"]  # no answer within wrk's 2 s timeout
        ok = "✔" if not timed_out and r["p99_us"] / 1000 <= GOAL_P99_MS else "✘"
        lat = (
            "> 2 s | > 2 s | > 2 s | > 2 s"
            if timed_out
            else f"{ms(r['p50_us'])} | {ms(r['p90_us'])} | {ms(r['p99_us'])} | "
            f"{ms(r['lat_max_us'])}"
        )
        pg_cpu = f"{r['pg_cpu_pct']:.0f}% | " if pg else ""
        lines.append(
            f"| {r['conns']} | {r['workload']} | {r['rps']:,.1f} | {lat} | "
            f"{r['errors']:.0f} | {r['server_cpu_pct']:.0f}% | "
            + (f"{r['server_cpu_us_per_req']:,.0f}" if r["rps"] else "-")  # nothing answered
            + f" | {pg_cpu}{ok} |"
        )
    lines += [
        "",
        "One connection measures what a list call costs a caller (no queueing); 16 measure "
        "the server saturated, where latency is mostly waiting in line (≈ 16 / req/s). "
        "Errors are wrk's: timeouts (> 2 s: such answers are not in the percentiles; "
        '"> 2 s" when none came sooner), socket errors, and answers other than the one '
        "checked beforehand. Before loading, every request was sent once and checked: its "
        "status, its number of resources (or `Key-Total`) against a count made directly in "
        "SQL, and for the whole-instance search the error code."
        + (
            " After a run with timeouts the next run waited until the server had finished "
            "the requests wrk had left (up to "
            f"{max(r['drained_s'] for r in drained):.0f} s), so that they did not load it."
            if (drained := [r for r in results if "drained_s" in r])
            else ""
        ),
        "",
        *(
            []
            if pg
            else [
                "SQLite is a library inside the server process: there is no database process, "
                "so the server CPU (and µs/req) includes the store's work, which on PostgreSQL "
                "is the separate PostgreSQL CPU of the section above.",
                "",
            ]
        ),
        "The seeded keys are clones: each is a copy of one of the keys made through the API "
        "(its `keys` row, its version and its key blob, i.e. real key material) with a new id, "
        "version id, name, key ring, creation time (spread over a year) and the times its state "
        "implies. A blob's AAD binds it to its key and version, so a clone's blob would not "
        "open; listing and counting never open a blob (no `payload` in a list), so the "
        "database, the rows and the work per request are those of as many keys made one by "
        "one.",
        "",
        "<details><summary>Every run</summary>",
        "",
        "| run | conns | workload | req/s | p50 | p90 | p99 | max | errors | server CPU | "
        + (
            "PostgreSQL CPU | wrk CPU | other CPU (PostgreSQL included) |"
            if pg
            else "wrk CPU | other CPU |"
        ),
        "|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" if pg else ""),
    ]
    for r in results:
        pg_cpu = f"{r['pg_cpu_pct']:.0f}% | " if pg else ""
        lines.append(
            f"| {r['run']} | {r['conns']} | {r['workload']} | {r['rps']:,.1f} | "
            f"{ms(r['p50_us'])} | {ms(r['p90_us'])} | {ms(r['p99_us'])} | "
            f"{ms(r['lat_max_us'])} | {r['errors']} | {r['server_cpu_pct']:.0f}% | "
            f"{pg_cpu}{r['wrk_cpu_pct']:.0f}% | {r['foreign_pct']:.0f}% |"
        )
    lines += ["", "</details>", "", END if pg else SQLITE_END]
    return "\n".join(lines) + "\n"


def write_doc(section: str, *, sqlite: bool = False) -> None:
    text = DOC.read_text()  # read just before writing: other sections change under us
    if sqlite:
        write_sqlite_doc(text, section)
        return
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    elif HEADING in text:
        head, tail = text.split(HEADING, 1)
        text = head + HEADING + "\n\n" + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + HEADING + "\n\n" + section
    DOC.write_text(text)
    log(f"rewrote the keys_list section of {DOC.relative_to(REPO)}")


def write_sqlite_doc(text: str, section: str) -> None:
    """Put the keys_list_sqlite section in place, or, the first time, under its heading after
    the keys_list section and the notes that follow it (before the next heading)."""
    section = section.rstrip("\n")
    if SQLITE_BEGIN in text and SQLITE_END in text:
        head, rest = text.split(SQLITE_BEGIN, 1)
        _, tail = rest.split(SQLITE_END, 1)
        text = head + section + tail
    else:
        new = f"{SQLITE_HEADING}\n\n{SQLITE_INTRO}\n\n{section}\n\n"
        at = text.find("\n## ", text.index(END)) + 1 if END in text else 0
        if at > 0:
            text = text[:at] + new + text[at:]
        else:
            text = text.rstrip("\n") + "\n\n" + new.rstrip("\n") + "\n"
    DOC.write_text(text)
    log(f"rewrote the keys_list_sqlite section of {DOC.relative_to(REPO)}")


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Linux {os.uname().release}"


def commit() -> str:
    rev = driver._first_line(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "src"], check=False
    ).returncode
    return rev + (" + uncommitted changes in src/" if dirty else "")


def print_table(results: list[dict[str, Any]]) -> None:
    ms = driver.ms
    pg = all("pg_cpu_pct" in r for r in results)  # none on SQLite
    print(f"\n{'conns':>5} {'workload':<28} {'req/s':>8} {'p50ms':>8} {'p99ms':>8} {'errs':>5} "
          f"{'srvCPU':>7}" + (f" {'pgCPU':>6}" if pg else ""), file=sys.stderr)  # fmt: skip
    for r in summarize(results):
        print(f"{r['conns']:>5} {r['workload']:<28} {r['rps']:>8,.1f} {ms(r['p50_us']):>8} "
              f"{ms(r['p99_us']):>8} {r['errors']:>5.0f} {r['server_cpu_pct']:>6.0f}%"
              + (f" {r['pg_cpu_pct']:>5.0f}%" if pg else ""), file=sys.stderr)  # fmt: skip


# ----------------------------------------------------------------------------- main


def main() -> None:
    store = os.environ.get("STORE", "").strip() or "postgresql"
    if store not in ("postgresql", "sqlite"):
        raise SystemExit(f"bench: STORE must be postgresql or sqlite, not {store!r}")
    sqlite = store == "sqlite"
    total = knob("KEYS", 1_000_000)
    runs, duration, warmup = knob("RUNS", 3), knob("DURATION", 10), knob("WARMUP", 3)
    conns_raw = os.environ.get("CONNS", "").strip() or "1,16"
    conns = [int(c) for c in conns_raw.split(",")]
    if not (1 <= runs <= 20 and 1 <= duration <= 120 and 0 <= warmup <= 60):
        raise SystemExit("bench: RUNS must be 1..20, DURATION 1..120 s, WARMUP 0..60 s")
    if not (all(1 <= c <= 256 for c in conns) and API_KEYS <= total <= 5_000_000):
        raise SystemExit(f"bench: CONNS must be 1..256 each, KEYS {API_KEYS}..5,000,000")
    nice = knob("NICE", -10 if os.geteuid() == 0 else 0)
    server_cpu = os.environ.get("SERVER_CPU", "0")
    load_cpu = os.environ.get("LOAD_CPU", "1")
    keep, reuse = bool(os.environ.get("KEEP_DB")), bool(os.environ.get("REUSE_DB"))
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not installed (apt-get install wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs 2 cores (server and wrk on their own)")
    pg_db = None if sqlite else database(os.environ.get("DB", "kyok_bench_list"))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = BENCH_DIR / "results" / f"keys-list{'-sqlite' if sqlite else ''}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python bench/keys_list.py"
    changed = [
        f"{name}={value}"
        for name, value, default in (
            ("STORE", store, "postgresql"),
            ("KEYS", total, 1_000_000), ("RUNS", runs, 3), ("DURATION", duration, 10),
            ("WARMUP", warmup, 3), ("CONNS", ",".join(map(str, conns)), "1,16"),
        )
        if value != default
    ]  # fmt: skip
    command = " ".join([*changed, command])
    server: Server | None = None
    with tempfile.TemporaryDirectory(prefix="kyok-bench-list.") as tmp_name:
        tmp = Path(tmp_name)
        try:
            db: Store
            extra: dict[str, Any] = {}
            if pg_db is None:  # SQLite: provision, keys, seed and ANALYZE, the server stopped
                db, facts, extra = setup_sqlite(tmp, total, server_cpu, nice, keep, reuse)
                server = Server(db, tmp, server_cpu, nice)
            else:
                db = pg_db
                keep_data = BENCH_DIR / "results" / "keys-list-data"  # dev seal of a kept db
                reused = reuse and database_exists(pg_db) and (keep_data / "dev-seal.json").exists()
                if reused:
                    log(f"reusing database {pg_db.name}")
                    (tmp / "data").symlink_to(keep_data)
                    server = Server(pg_db, tmp, server_cpu, nice)
                else:
                    log(f"database {pg_db.name}: created afresh")
                    recreate_database(pg_db)
                    (tmp / "data").mkdir()
                    provision(pg_db, tmp / "data")
                    server = Server(pg_db, tmp, server_cpu, nice)
                    token = driver.kyok_token(server.url, API_KEY)
                    headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE_ID}
                    log(f"creating {API_KEYS} keys through the API")
                    make_api_keys(server.url, headers)
                    seed(pg_db, total)
                    if keep:
                        shutil.rmtree(keep_data, ignore_errors=True)
                        shutil.copytree(tmp / "data", keep_data)
                pg_facts = vacuum(pg_db) if reused else None  # a kept db may have changed since
                if pg_facts is None:
                    import psycopg

                    with psycopg.connect(pg_db.url) as conn:
                        pg_facts = data_facts(conn)
                facts = pg_facts
            log(f"{facts['keys']:,} keys; by state {facts['by_state']}; by ring {facts['by_ring']}")
            token = driver.kyok_token(server.url, API_KEY)
            headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE_ID}
            loads = workloads(db, facts)
            first = {w.name: check(server.url, headers, w) for w in loads}
            cfg = driver.Config(
                runs=runs, duration=duration, warmup=warmup, conns=conns[0], load_cpu=load_cpu,
                server_cpu=server_cpu, nice=nice, quiet_pct=float(knob("QUIET_PCT", 15)),
                quiet_wait=float(knob("QUIET_WAIT", 300)), out=out,
                write_doc=not os.environ.get("NO_DOC"), command=command,
            )  # fmt: skip
            results = measure(cfg, conns, server, loads, db_ticks=None if sqlite else pg_ticks)
            meta = {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "config": {
                    "command": command, "runs": runs, "duration": duration, "warmup": warmup,
                    "conns": conns, "server_cpu": server_cpu, "load_cpu": load_cpu,
                    "nice": nice, "database": db.name, "keys": total,
                    **({"store": store, "reused": extra["reused"]} if sqlite else {}),
                },
                "machine": machine(),
                "commit": commit(),
                "data": facts,
                "workloads": [w.__dict__ for w in loads],
                "first_request_ms": first,
                **({"seed_s": extra["seed_s"]} if "seed_s" in extra else {}),
            }  # fmt: skip
            (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
            summary = summarize(results)
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
            print_table(results)
            print(json.dumps({"meta": meta, "medians": summary}, indent=2, default=str))
            if cfg.write_doc:
                write_doc(render(meta, loads, results), sqlite=sqlite)
            (out / "kyok-server.tail.log").write_text(server.log_tail())
        finally:
            if server is not None:
                server.stop()
            if pg_db is None:
                if keep or reuse:
                    log(f"kept the data directory {SQLITE_KEEP_DIR} (REUSE_DB=1 measures it)")
            elif keep or reuse:
                log(f"kept database {pg_db.name} (drop it with: dropdb {pg_db.name})")
            else:
                drop_database(pg_db)
                log(f"dropped database {pg_db.name}")
    log(f"raw results in {out.relative_to(REPO)}")


def setup_sqlite(
    tmp: Path, total: int, server_cpu: str, nice: int, keep: bool, reuse: bool
) -> tuple[SqliteDatabase, dict[str, Any], dict[str, Any]]:
    """Steps 1-4 on SQLite: a data directory with its ``kyok.db`` provisioned, the API keys
    made through a server that is stopped again, then seeded and ``ANALYZE``d (or a kept
    one); the database, what the data holds, and how it was set up. No server is left
    running."""
    data = tmp / "data"
    reused = (
        reuse and (SQLITE_KEEP_DIR / "kyok.db").exists()
        and (SQLITE_KEEP_DIR / "dev-seal.json").exists()
    )  # fmt: skip
    if keep or reused:
        if not reused:
            shutil.rmtree(SQLITE_KEEP_DIR, ignore_errors=True)
            SQLITE_KEEP_DIR.mkdir(parents=True)
        data.symlink_to(SQLITE_KEEP_DIR)
    else:
        data.mkdir()
    db = sqlite_database(data)
    extra: dict[str, Any] = {"reused": reused}
    if reused:
        log(f"reusing {SQLITE_KEEP_DIR / db.name}")
    else:
        log(f"SQLite file {db.path}: created afresh")
        provision(db, data)
        server = Server(db, tmp, server_cpu, nice)
        try:
            token = driver.kyok_token(server.url, API_KEY)
            headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE_ID}
            log(f"creating {API_KEYS} keys through the API")
            make_api_keys(server.url, headers)
        finally:
            server.stop()  # nothing else may write while the file is seeded
        extra["seed_s"] = round(seed_sqlite(db, total), 1)
    return db, prepare_sqlite(db), extra


def measure(
    cfg: driver.Config,
    conns: list[int],
    server: Server,
    loads: list[Workload],
    db_ticks: Callable[[], int] | None,
) -> list[dict[str, Any]]:
    """Every run measures every workload at every concurrency, one after the other; the
    database's CPU too where it has processes of its own (``db_ticks``: PostgreSQL)."""
    results: list[dict[str, Any]] = []
    token, token_at = driver.kyok_token(server.url, API_KEY), time.monotonic()
    quiet_pids = [server.pid, os.getpid()]
    with open(cfg.out / "results.jsonl", "w") as sink:
        for run in range(1, cfg.runs + 1):
            for n in conns:
                cfg.conns = n
                for w in loads:
                    if time.monotonic() - token_at > driver.TOKEN_MAX_AGE_S:
                        token, token_at = driver.kyok_token(server.url, API_KEY), time.monotonic()
                    env = {
                        "BENCH_PATH": w.path,
                        "BENCH_METHOD": w.method,
                        "BENCH_TOKEN": token,
                        "BENCH_INSTANCE": INSTANCE_ID,
                        "BENCH_KEY_RING": w.ring or "",
                    }
                    waited = driver.wait_for_quiet(quiet_pids, cfg.quiet_pct, cfg.quiet_wait)
                    if cfg.warmup:
                        driver.run_wrk(cfg, server.url, LUA, env, cfg.warmup, server.pid)
                    log(f"run {run}/{cfg.runs}: {w.name}, -c{n}, {cfg.duration} s")
                    db0 = db_ticks() if db_ticks else 0
                    res = driver.run_wrk(cfg, server.url, LUA, env, cfg.duration, server.pid)
                    if db_ticks:
                        res["pg_cpu_pct"] = (
                            100 * (db_ticks() - db0) / driver.CLK_TCK / res["wall_s"]
                        )
                    if w.status >= 400:  # the expected error answer is not an error here
                        res["errors"] -= res["status_errors"]
                    if res["timeouts"] or not res["p99_us"]:  # answers slower than 2 s:
                        # the requests wrk left waiting may still be running
                        res["drained_s"] = round(wait_for_idle_server(server.pid), 1)
                        log(f"  timeouts: the server was busy {res['drained_s']} s more")
                    res.update(run=run, conns=n, workload=w.name, waited_for_quiet_s=waited)
                    name = f"run{run}-c{n}-{w.name.replace(' ', '-')}.txt"
                    (cfg.out / name).write_text(res.pop("wrk_output"))
                    log(
                        f"  {res['rps']:,.1f} req/s, p50 {driver.ms(res['p50_us'])} ms, "
                        f"p99 {driver.ms(res['p99_us'])} ms, errors {res['errors']}, server "
                        f"CPU {res['server_cpu_pct']:.0f}%"
                        + (f", PostgreSQL CPU {res['pg_cpu_pct']:.0f}%" if db_ticks else "")
                    )
                    results.append(res)
                    sink.write(json.dumps(res) + "\n")
                    sink.flush()
    return results


def wait_for_idle_server(pid: int, max_wait_s: float = 300.0) -> float:
    """Wait until the server uses less than 10% of a core for a second; the seconds waited.

    After a run with timeouts (or no answer at all within wrk's 2 s) it may still be working
    on requests wrk stopped waiting for (the server finishes them after wrk exits), which
    would load the next workload's run."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait_s:
        ticks = driver.proc_ticks(pid)
        time.sleep(1.0)
        if driver.proc_ticks(pid) - ticks < 0.1 * driver.CLK_TCK:
            break
    return time.monotonic() - t0


def rerender(out: Path) -> None:
    """Print the table and rewrite the docs section again from a results directory."""
    meta = json.loads((out / "meta.json").read_text())
    loads = [Workload(**w) for w in meta["workloads"]]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    print_table(results)
    write_doc(render(meta, loads, results), sqlite=meta["config"].get("store") == "sqlite")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if sys.argv[1:2] == ["render"] and len(sys.argv) == 3:
            rerender(Path(sys.argv[2]))
        else:
            main()
    except KeyboardInterrupt:
        sys.exit(130)
