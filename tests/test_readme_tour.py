"""The README's five-minute tour, run line by line as a user would paste it.

A real ``kyok server --dev`` subprocess in a temporary directory (ephemeral port); then every
command of the tour's "Terminal 2" block, exactly as written, with the venv's ``kyok``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KYOK = str(Path(sys.executable).with_name("kyok"))


def tour_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("Terminal 2, in the same directory:", 1)[1].split("```", 2)[1]
    lines = []
    for raw in block.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("kyok "):
            lines.append(line)
    return lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_tour_works_as_written(tmp_path: Path) -> None:
    lines = tour_lines()
    assert [line.split()[1] for line in lines] == [
        "login",
        "key",
        "wrap",
        "unwrap",
        "key",
        "unwrap",
        "key",
        "audit",
        "audit",
        "audit",
        "audit",
        "encrypt",
        "decrypt",
    ]
    port = free_port()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for name in (
        "KYOK_URL",
        "KYOK_INSTANCE_ID",
        "KYOK_API_KEY",
        "KYOK_DATA_DIR",
        "KYOK_DATABASE_URL",
    ):
        env.pop(name, None)
    server = subprocess.Popen(
        [KYOK, "server", "--dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (
                "the dev server did not start"
            )
            time.sleep(0.1)
        outputs = []
        for line in lines:
            argv = shlex.split(line)
            done = subprocess.run(
                [KYOK, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout + done.stderr)
        first_dek = outputs[3].strip().splitlines()[0]
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", first_dek)
        assert first_dek in outputs[5] and "rewrapped" in outputs[5]  # after the rotation
        assert outputs[6].count("-") > 8  # two versions listed
        assert "kms.keys.list-versions" in outputs[7]  # the last call, on the record
        assert "BEGIN PUBLIC KEY" in (tmp_path / "audit.pub.pem").read_text()
        assert "intact" in outputs[10]
        sealed = (tmp_path / "ledger.jsonl.kyok").read_bytes()
        assert b"kms.keys.list-versions" not in sealed  # encrypted
        assert (tmp_path / "ledger-copy.jsonl").read_bytes() == (
            tmp_path / "ledger.jsonl"
        ).read_bytes()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
