"""A production-style ceremony against a running server, entirely over HTTP (``--url``).

The instance is created on the node (``kyok ceremony init``); then the server runs with the
shares seal and every step happens from the custodians' side: administrators, thresholds, each
custodian loading their own part in a separate command, commit, activation, the first
administrator credential (authorized by the administrators, sealed to the requester), real key
use with that credential, a restart (sealed), unsealing by two custodians one at a time, and
the transcript verified offline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kyok.bootstrap import Node, open_node
from kyok.cli.main import app
from kyok.cli.server import bind_socket, build_server
from kyok.client import KyokClient
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.mkvp import mkvp as compute_mkvp
from kyok.crypto.sign import SigningKey
from kyok.crypto.xorsplit import xor_bytes
from kyok.errors import Forbidden
from kyok.settings import Settings
from kyok.unit.keypart import KeyPart, write_part_file
from kyok.unit.sigkey import public_path_for

PW = "custodian passphrase"
FAST = ScryptParams(log2_n=10)
NAMES = ("alice", "bob", "carol")


@contextmanager
def production_server(data_dir: Path) -> Iterator[tuple[str, Node]]:
    """`kyok server --config` as it runs: shares seal, nothing provisioned."""
    settings = Settings.load(
        env={},
        overrides={
            "data_dir": data_dir,
            "seal": "shares",
            "server.host": "127.0.0.1",
            "server.port": 0,
            "scheduler.interval": "0s",
        },
    )
    node = open_node(settings)
    sock = bind_socket("127.0.0.1", 0)
    server = build_server(node)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", node
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        node.close()
        sock.close()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Each custodian's part file and signature key (made the fast way; the CLI makes them too)."""
    out: dict[str, dict[str, Any]] = {}
    for name in NAMES:
        part = KeyPart.generate(name)
        write_part_file(tmp_path / f"{name}.kpart", part, PW.encode(), params=FAST)
        key = SigningKey.generate()
        (tmp_path / f"{name}.pem").write_bytes(key.to_encrypted_pem(PW.encode(), FAST))
        public_path_for(tmp_path / f"{name}.pem").write_bytes(key.verifying_key().to_pem())
        out[name] = {
            "part": part,
            "kpart": str(tmp_path / f"{name}.kpart"),
            "pem": str(tmp_path / f"{name}.pem"),
            "pub": str(public_path_for(tmp_path / f"{name}.pem")),
        }
    return out


def run(env: dict[str, str], *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        app, list(args), input=(PW + "\n") * 20, env=env, catch_exceptions=False
    )
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_ceremony_over_http(tmp_path: Path, files: dict[str, dict[str, Any]]) -> None:
    data = tmp_path / "data"
    init = run({"KYOK_DATA_DIR": str(data)}, "ceremony", "init", "--seal", "shares", "--json")
    instance = json.loads(init.stdout)["instance_id"]
    mkvp = compute_mkvp(xor_bytes(*(files[n]["part"].secret() for n in NAMES)))
    sign = ["--sign", files["alice"]["pem"], "--sign", files["bob"]["pem"]]

    with production_server(data) as (url, node):
        env = {
            "KYOK_URL": url,
            "KYOK_INSTANCE_ID": instance,
            "KYOK_DATA_DIR": str(tmp_path / "elsewhere"),
        }
        run(env, "ceremony", "admin", "add", "--name", "alice", "--pubkey", files["alice"]["pub"])
        for name in NAMES[1:]:
            run(
                env,
                "ceremony",
                "admin",
                "add",
                "--name",
                name,
                "--pubkey",
                files[name]["pub"],
                "--sign",
                files["alice"]["pem"],
            )
        run(
            env,
            "ceremony",
            "thresholds",
            "--signature",
            "2",
            "--revocation",
            "2",
            "--sign",
            files["alice"]["pem"],
        )
        # each custodian loads their own part, from their own machine, one command each
        for name in NAMES:
            loaded = json.loads(
                run(
                    env,
                    "ceremony",
                    "master-key",
                    "load",
                    "--custodian",
                    f"{files[name]['kpart']}:{files[name]['pem']}",
                    "--parts",
                    "3",
                    "--json",
                ).stdout
            )
        assert loaded["mkvp"] == mkvp
        run(env, "ceremony", "master-key", "commit", "--mkvp", mkvp, "--threshold", "2", *sign)
        run(env, "ceremony", "master-key", "activate", "--mkvp", mkvp, *sign)
        assert json.loads(run(env, "ceremony", "status", "--json").stdout)["sealed"] is False

        # outside dev mode the operator cannot bootstrap an administrator ...
        with pytest.raises(Forbidden):
            node.auth.bootstrap_admin(instance)
        # ... the unit's administrators authorize one, and only this command can open its key
        cred = json.loads(
            run(env, "ceremony", "admin-credential", "--name", "ops-admin", *sign, "--json").stdout
        )
        assert cred["api_key"].startswith("kyok_") and cred["instance_id"] == instance
        with KyokClient(url, instance, api_key=cred["api_key"]) as client:
            key = client.create_root_key("payments")
            wrapped = client.wrap(key.id, None, aad=["invoice-7"])
        status = json.loads(run(env, "ceremony", "status", "--json").stdout)
        assert status["adminAuthorizations"] == []  # used once, gone

    with production_server(data) as (url, _node):
        env = {
            "KYOK_URL": url,
            "KYOK_INSTANCE_ID": instance,
            "KYOK_DATA_DIR": str(tmp_path / "elsewhere"),
        }
        assert json.loads(run(env, "ceremony", "status", "--json").stdout)["sealed"] is True
        first = run(
            env,
            "ceremony",
            "unseal",
            "--custodian",
            f"{files['bob']['kpart']}:{files['bob']['pem']}",
            ok=False,
        )
        assert first.exit_code == 4  # one of two parts: still sealed
        run(
            env,
            "ceremony",
            "unseal",
            "--custodian",
            f"{files['carol']['kpart']}:{files['carol']['pem']}",
        )
        with KyokClient(url, instance, api_key=cred["api_key"]) as client:
            assert (
                client.unwrap(key.id, wrapped.ciphertext, aad=["invoice-7"]).plaintext
                == wrapped.dek
            )
        run(env, "ceremony", "transcript", "--out", str(tmp_path / "t.jsonl"))
    verified = json.loads(run({}, "ceremony", "verify", str(tmp_path / "t.jsonl"), "--json").stdout)
    assert verified["ok"] and any("admin_authorization_used" in w for w in verified["warnings"])


def test_remote_mode_needs_an_instance(tmp_path: Path) -> None:
    r = run({"KYOK_URL": "http://127.0.0.1:9"}, "ceremony", "status", ok=False)
    assert r.exit_code == 1 and "--instance" in r.output
