"""Start to serving of the dev node (issue 7): from the exec of ``kyok server --dev`` until
``GET /health`` answers 200.

Run it under the benchmark lock, from the repository root::

    flock /tmp/kyok-bench.lock .venv/bin/python bench/start.py [--runs 5] [--kyok .venv/bin/kyok]

Each run starts ``kyok server --dev --data-dir DIR --host 127.0.0.1 --port PORT`` on a free port,
polls ``/health`` every 10 ms over a raw socket (HTTP/1.0, nothing but the status line is read)
and stops the server with SIGTERM once it answers 200. ``fresh`` runs get a new, empty data
directory each (database created and migrated, dev instance provisioned); ``warm`` runs reuse one
directory that an untimed first start prepared. It prints JSON: for each of ``fresh`` and
``warm``, the seconds of every run and their median.

Python's bytecode is cached (``PYTHONPYCACHEPREFIX`` in the run's temporary directory, filled by
an untimed first start) as an installed package has it, even where ``PYTHONDONTWRITEBYTECODE``
is set; ``--no-bytecode-cache`` writes no bytecode, so modules without a ``.pyc`` beside them (in
a source checkout: kyok's own) are compiled at each start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.010  # seconds between two /health requests
TIMEOUT = 60.0  # seconds one start may take before the run is abandoned


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _health(port: int) -> int | None:
    """The status of ``GET /health`` (None: nothing listens yet, or no full status line)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            line = s.makefile("rb").readline()
    except OSError:
        return None
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def start_once(kyok: Path, data_dir: Path, pycache: Path | None) -> float:
    """Seconds from the exec of ``kyok server --dev`` until ``/health`` answers 200."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [str(kyok), "server", "--dev", "--data-dir", str(data_dir)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = (data_dir.parent / f"{data_dir.name}.log").open("ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        while True:
            if _health(port) == 200:
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise SystemExit(f"kyok server exited with {proc.returncode}; see {log.name}")
            if time.perf_counter() - t0 > TIMEOUT:
                raise SystemExit(f"no /health 200 within {TIMEOUT} s; see {log.name}")
            time.sleep(POLL)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def measure(kyok: Path, runs: int, bytecode_cache: bool = True) -> dict[str, Any]:
    """``runs`` fresh and ``runs`` warm starts."""
    tmp = Path(tempfile.mkdtemp(prefix="kyok-start-"))
    pycache = tmp / "pycache" if bytecode_cache else None
    try:
        if pycache is not None:
            start_once(kyok, tmp / "compile", pycache)  # untimed: fills the bytecode cache
        fresh = [start_once(kyok, tmp / f"fresh-{i}", pycache) for i in range(runs)]
        warm_dir = tmp / "warm"
        start_once(kyok, warm_dir, pycache)  # untimed: creates the database and the dev instance
        warm = [start_once(kyok, warm_dir, pycache) for _ in range(runs)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(times: list[float]) -> dict[str, Any]:
        return {"runs": [round(t, 3) for t in times], "median": round(statistics.median(times), 3)}

    return {"bytecode_cache": bytecode_cache, "fresh": summary(fresh), "warm": summary(warm)}


def main() -> None:
    """Parse the arguments, measure, print JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument(
        "--kyok", type=Path, default=ROOT / ".venv" / "bin" / "kyok", help="the kyok executable"
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="write no bytecode: modules without a .pyc beside them compile at each start",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1 to 50")
    print(json.dumps(measure(args.kyok, args.runs, not args.no_bytecode_cache), indent=2))


if __name__ == "__main__":
    main()
