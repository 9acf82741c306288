"""``kyok server --dev`` as a user runs it: a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kyok.auth.principals import SYSTEM
from kyok.bootstrap import open_node
from kyok.bootstrap.dev import CREDENTIALS_FILE, provision_dev, read_credentials
from kyok.errors import InvalidInput
from kyok.settings import Settings

pytestmark = pytest.mark.slow

API_KEY = "kyok-test-fixed-api-key-0001"
INSTANCE = "dev-instance-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DevServer:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "kyok.cli.main",
            "server",
            "--dev",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
        ]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
        self.proc = subprocess.Popen(
            cmd,
            env={**full_env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.proc.stdout.read() if self.proc.stdout else ""
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the dev server did not answer"
            time.sleep(0.1)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out


def test_dev_server_starts_honours_fixed_ids_restarts_and_stops(tmp_path: Path) -> None:
    data = tmp_path / "kyok-data"
    env = {"KYOK_DEV_INSTANCE_ID": INSTANCE, "KYOK_DEV_API_KEY": API_KEY}
    server = DevServer(data, env)
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["status"] == "ok" and health["units"] == {"total": 1, "sealed": 0}
        unit = httpx.get(
            server.url + "/api/v2/kyok/unit", headers={"Bluemix-Instance": INSTANCE}
        ).json()
        assert unit["seal"] == "dev" and unit["sealed"] is False
        creds_file = data / CREDENTIALS_FILE
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        creds = json.loads(creds_file.read_text())
        assert creds == {"url": server.url, "instanceId": INSTANCE, "apiKey": API_KEY}
        assert stat.S_IMODE((data / "dev-seal.json").stat().st_mode) == 0o600
        # the fixed key works end to end: a token from the IAM endpoint, then a Key Protect call
        form = {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": API_KEY}
        token = httpx.post(server.url + "/identity/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Bluemix-Instance": INSTANCE}
        assert httpx.get(server.url + "/api/v2/keys", headers=headers).status_code == 200
    finally:
        out = server.stop()
    assert "WARNING: dev mode" in out and "dev-seal.json" in out
    assert API_KEY not in out  # a fixed key is not printed
    assert "crypto unit(s) sealed" in out

    # restarting on the same data directory keeps the instance
    server = DevServer(data, env)
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["units"] == {"total": 1, "sealed": 0}
    finally:
        server.stop()


def test_dev_server_without_fixed_ids_prints_a_new_key_once(tmp_path: Path) -> None:
    data = tmp_path / "kyok-data"
    server = DevServer(data, {})
    first = read_credentials(data / CREDENTIALS_FILE)
    out = server.stop()
    assert first is not None and f"API key:      {first.api_key}" in out
    server = DevServer(data, {})
    second = read_credentials(data / CREDENTIALS_FILE)
    out = server.stop()
    assert (
        second is not None
        and second.instance_id == first.instance_id
        and second.api_key == first.api_key
    )
    assert first.api_key not in out and "unchanged" in out


def test_provisioned_dev_key_authenticates_with_the_real_auth_service(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", seal="dev")
    with open_node(settings) as node:
        provision = provision_dev(node, "http://127.0.0.1:1", instance_id=INSTANCE, api_key=API_KEY)
        grant = node.auth.issue_token(API_KEY)  # type: ignore[attr-defined]
        ctx = node.auth.authenticate(f"Bearer {grant.access_token}", INSTANCE)
        assert {g.role.value for g in ctx.grants} == {"Manager", "KeyPurge", "KyokInstanceAdmin"}
        assert provision.instance_created and not provision.key_created and provision.key_fixed
    with open_node(settings) as node:  # a restart: same instance, same key, nothing new
        again = provision_dev(node, "http://127.0.0.1:1", api_key=API_KEY)
        assert again.credentials.instance_id == INSTANCE and not again.instance_created


def test_dev_mode_refuses_an_instance_that_is_not_dev_sealed(tmp_path: Path) -> None:
    with open_node(Settings(data_dir=tmp_path / "data")) as node:
        node.service.create_instance(SYSTEM, "prod", seal="shares", instance_id="prod-1")
        with pytest.raises(InvalidInput, match="shares seal"):
            provision_dev(node, "http://x", instance_id="prod-1")


def test_server_refuses_dev_with_config(tmp_path: Path) -> None:
    config = tmp_path / "kyok.toml"
    config.write_text("")
    r = subprocess.run([sys.executable, "-m", "kyok.cli.main", "server", "--dev", "--config", str(config)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "exclude each other" in r.stderr
    config.write_text("[server]\nport = 'x'\n")
    r = subprocess.run([sys.executable, "-m", "kyok.cli.main", "server", "--config", str(config)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "server.port" in r.stderr


def test_config_mode_starts_units_sealed(tmp_path: Path) -> None:
    data = tmp_path / "prod-data"
    with open_node(Settings(data_dir=data)) as node:
        node.service.create_instance(SYSTEM, "prod", seal="shares", instance_id="prod-1")
    config = tmp_path / "kyok.toml"
    port = _free_port()
    config.write_text(
        f'data_dir = "prod-data"\n[server]\nport = {port}\n[scheduler]\ninterval = "5s"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KYOK_")}
    proc = subprocess.Popen([sys.executable, "-m", "kyok.cli.main", "server", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.json()["status"] == "sealed"
        assert not (data / CREDENTIALS_FILE).exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "instance prod-1: its crypto unit is sealed" in out
