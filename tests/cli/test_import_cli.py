"""``kyok import`` (bring your own key through the import token), ``kyok key policy``,
dual-authorisation deletion, sync, registrations and ``kyok instance policy`` against the real
server (a dev node under uvicorn in a thread), with ``--json`` parsed and exit codes checked.

Key material is made in the test with ``os.urandom``; no output may ever contain it."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kyok.cli.main import app
from kyok.client import KyokClient
from live_server import LiveServer, dev_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(
        tmp_path_factory.mktemp("kyok-import-cli"), **{"timers.sync_interval": "0s"}
    ) as server:
        yield server


class Kyok:
    """Runs ``kyok …`` in-process against one server, with the connection in the environment.

    Every run checks that none of the ``secrets`` (key material in its raw, hex and base64
    forms) shows up in the output."""

    def __init__(self, live: LiveServer, config: Path) -> None:
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(config),
            "KYOK_URL": live.url,
            "KYOK_INSTANCE_ID": live.instance_id,
            "KYOK_API_KEY": live.api_key,
            "KYOK_CACERT": None,
        }
        self.runner = CliRunner()
        self.secrets: list[bytes] = []

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(app, list(args), input="", env=self.env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        for secret in self.secrets:
            for form in (secret.hex(), base64.b64encode(secret).decode()):
                assert form not in result.output
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)


@pytest.fixture
def kyok(live: LiveServer, tmp_path: Path) -> Kyok:
    return Kyok(live, tmp_path / "config")


@pytest.fixture
def client(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as kms:
        yield kms


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def key_file(tmp_path: Path, kyok: Kyok, size: int = 32, fmt: str = "raw") -> tuple[Path, bytes]:
    """A fresh key (``os.urandom``) in a 0600 file, raw or as hex/base64 text."""
    material = os.urandom(size)
    kyok.secrets.append(material)
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.key"
    data = {
        "raw": material,
        "hex": material.hex().encode() + b"\n",
        "base64": base64.b64encode(material) + b"\n",
    }[fmt]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path, material


def round_trip(client: KyokClient, key_id: str) -> str:
    dek = os.urandom(32)
    wrapped = client.wrap(key_id, dek, aad=["cli"])
    assert client.unwrap(key_id, wrapped.ciphertext, aad=["cli"]).plaintext == dek
    return wrapped.ciphertext


# ---------------------------------------------------------------- imports


@pytest.mark.parametrize(
    ("flags", "fmt", "size"),
    [
        ((), "raw", 32),
        (("--algorithm", "rsa-oaep-sha256"), "raw", 16),
        (("--algorithm", "rsa-oaep-sha1", "--cbc"), "hex", 24),
        (("--algorithm", "rsa-oaep-sha1"), "raw", 32),
        (("--algorithm", "hybrid"), "base64", 32),
    ],
)
def test_import_through_the_token_then_wrap_and_unwrap(
    kyok: Kyok, client: KyokClient, tmp_path: Path, flags: tuple[str, ...], fmt: str, size: int
) -> None:
    path, _ = key_file(tmp_path, kyok, size, fmt)
    alias = _name("byok")
    key = kyok.json(
        "import",
        "--name",
        _name("imported"),
        "--key-file",
        str(path),
        "--format",
        fmt,
        "--alias",
        alias,
        "--description",
        "from the CLI",
        *flags,
    )
    assert key["imported"] is True and key["extractable"] is False and key["state"] == 1
    assert key["aliases"] == [alias] and key["description"] == "from the CLI"
    round_trip(client, alias)


def test_import_shows_a_table_and_warns_about_a_readable_file(
    kyok: Kyok, client: KyokClient, tmp_path: Path
) -> None:
    client.create_key_ring(ring := _name("ring"))
    path, _ = key_file(tmp_path, kyok)
    path.chmod(0o644)
    out = kyok(
        "import", "--name", name := _name("table"), "--key-file", str(path), "--key-ring", ring
    )
    assert "readable by others" in out.stderr and "chmod 600" in out.stderr
    assert "through the import token, RSAES_OAEP_SHA_256" in out.stderr
    assert name in out.stdout and "True" in out.stdout
    (key,) = client.list_keys(search=f"exact:{name}")
    assert key.key_ring_id == ring and key.imported


def test_rotate_with_new_material_through_the_token(
    kyok: Kyok, client: KyokClient, tmp_path: Path
) -> None:
    first, _ = key_file(tmp_path, kyok)
    key = kyok.json("import", "--name", _name("rotating"), "--key-file", str(first))
    old_version = key["keyVersion"]["id"]
    before = round_trip(client, key["id"])

    second, _ = key_file(tmp_path, kyok)
    after = kyok.json("import", "--rotate", key["id"], "--key-file", str(second))
    assert after["id"] == key["id"] and after["keyVersion"]["id"] != old_version
    got = client.unwrap(key["id"], before, aad=["cli"])
    assert got.is_stale and got.rewrapped_key_version_id == after["keyVersion"]["id"]
    round_trip(client, key["id"])

    third, _ = key_file(tmp_path, kyok, 16)
    out = kyok("import", "--rotate", key["id"], "--key-file", str(third), "--algorithm", "hybrid")
    assert "rotated" in out.stdout and "KYOK_HYBRID_MLKEM768_X25519" in out.stdout
    assert len(client.list_key_versions(key["id"])) == 3
    assert client.unwrap(key["id"], before, aad=["cli"]).plaintext

    # a generated key is not rotated with material
    generated = client.create_key(_name("generated"))
    fourth, _ = key_file(tmp_path, kyok)
    kyok("import", "--rotate", generated.id, "--key-file", str(fourth), code=1)


def test_plain_and_standard_imports(kyok: Kyok, client: KyokClient, tmp_path: Path) -> None:
    path, _ = key_file(tmp_path, kyok)
    key = kyok.json("import", "--name", _name("plain"), "--key-file", str(path), "--plain")
    assert key["imported"] is True
    round_trip(client, key["id"])

    secret = os.urandom(100)  # a standard key's material is read back: not a "secret" here
    path = tmp_path / "standard.bin"
    path.write_bytes(secret)
    path.chmod(0o600)
    std = kyok.json("import", "--name", _name("standard"), "--key-file", str(path), "--standard")
    assert std["extractable"] is True and std["imported"] is True
    assert client.get_key(std["id"]).payload == secret
    assert "payload" not in std


def test_material_from_stdin(kyok: Kyok, live: LiveServer, tmp_path: Path) -> None:
    material = os.urandom(32)
    kyok.secrets.append(material)
    result = kyok.runner.invoke(
        app,
        ["import", "--name", _name("stdin"), "--key-file", "-", "--json"],
        input=material,
        env=kyok.env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] is True


# ---------------------------------------------------------------- refusals


def test_usage_errors(kyok: Kyok, tmp_path: Path) -> None:
    path, _ = key_file(tmp_path, kyok)
    missing = str(tmp_path / "nope.key")
    refused = kyok("import", "--name", "x-1", "--key-file", missing, code=2).stderr
    assert "does not exist" in " ".join(refused.replace("│", " ").split())  # Rich wraps long paths
    kyok("import", "--key-file", str(path), code=2)  # no --name
    kyok("import", "--name", "x-1", "--rotate", "k", "--key-file", str(path), code=2)
    kyok("import", "--name", "x-1", "--key-file", str(path), "--cbc", code=2)
    kyok(
        "import",
        "--name",
        "x-1",
        "--key-file",
        str(path),
        "--standard",
        "--algorithm",
        "hybrid",
        code=2,
    )
    kyok(
        "import",
        "--name",
        "x-1",
        "--key-file",
        str(path),
        "--plain",
        "--algorithm",
        "hybrid",
        code=2,
    )
    kyok("import", "--name", "x-1", "--key-file", str(path), "--algorithm", "aes", code=2)
    kyok("import", "--name", "x-1", "--key-file", str(tmp_path), code=2)  # a directory


def test_bad_lengths_and_formats(kyok: Kyok, tmp_path: Path) -> None:
    short, _ = key_file(tmp_path, kyok, 20)
    err = kyok("import", "--name", "x-1", "--key-file", str(short), code=2).stderr
    assert "20 bytes" in err and "16, 24 or 32" in err
    hexed, _ = key_file(tmp_path, kyok, 32, "hex")
    err = kyok("import", "--name", "x-1", "--key-file", str(hexed), code=2).stderr
    assert "65 bytes" in err and "--format hex" in err
    b64, _ = key_file(tmp_path, kyok, 32, "base64")
    err = kyok("import", "--name", "x-1", "--key-file", str(b64), "--format", "hex", code=2).stderr
    assert "not valid hex" in err
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    assert "empty" in kyok("import", "--name", "x-1", "--key-file", str(empty), code=2).stderr
    big = tmp_path / "big.key"
    big.write_bytes(b"\0" * 7501)
    kyok("import", "--name", "x-1", "--key-file", str(big), "--standard", code=2)


def test_no_usable_token_without_creating_one(
    kyok: Kyok, client: KyokClient, tmp_path: Path
) -> None:
    client.create_import_token(max_retrievals=1)
    client.get_import_token()  # its one retrieval is used up
    path, _ = key_file(tmp_path, kyok)
    err = kyok(
        "import", "--name", _name("x"), "--key-file", str(path), "--no-create-token", code=1
    ).stderr
    assert "IMPORT_TOKEN_EXPIRED_ERR" in err and "HTTP 409" in err
    # without the flag a new token is made
    assert kyok.json("import", "--name", _name("x"), "--key-file", str(path))["imported"]


def test_an_expired_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        dev_server(tmp_path / "expiry") as server,
        KyokClient(server.url, server.instance_id, api_key=server.api_key) as kms,
    ):
        kyok = Kyok(server, tmp_path / "config")
        kms.create_import_token(expiration=300, max_retrievals=5)
        path, _ = key_file(tmp_path, kyok)
        real_now = server.node.clock.now
        monkeypatch.setattr(server.node.clock, "now", lambda: real_now() + timedelta(seconds=301))
        err = kyok(
            "import", "--name", _name("late"), "--key-file", str(path), "--no-create-token", code=1
        ).stderr
        assert "IMPORT_TOKEN_EXPIRED_ERR" in err and "HTTP 409" in err
        key = kyok.json("import", "--name", _name("renewed"), "--key-file", str(path))
        assert key["imported"] is True


def test_enforce_token_refuses_plain_imports(kyok: Kyok, tmp_path: Path) -> None:
    kyok(
        "instance",
        "policy",
        "set",
        "keyCreateImportAccess",
        "--enable",
        "--attr",
        "enforce_token=true",
    )
    try:
        path, _ = key_file(tmp_path, kyok)
        err = kyok("import", "--name", _name("plain"), "--key-file", str(path), "--plain", code=1)
        assert "KEY_CREATE_IMPORT_ACCESS_ERR" in err.stderr
        assert kyok.json("import", "--name", _name("sealed"), "--key-file", str(path))["imported"]
    finally:
        kyok("instance", "policy", "set", "keyCreateImportAccess", "--disable")


# ---------------------------------------------------------------- policies and actions


def test_key_policies(kyok: Kyok, client: KyokClient) -> None:
    key = client.create_key(_name("policied"))
    assert kyok.json("key", "policy", "show", key.id) == {}
    assert "no key policies" in kyok("key", "policy", "show", key.id).stdout
    got = kyok.json("key", "policy", "set", key.id, "--rotation-months", "3")
    assert got == {"rotation": {"enabled": True, "interval_month": 3}}
    got = kyok.json("keys", "policy", "set", key.id, "--no-rotation", "--dual-auth-delete")
    assert got["rotation"]["enabled"] is False and got["dualAuthDelete"] == {"enabled": True}
    table = kyok("key", "policy", "show", key.id).stdout
    assert "dualAuthDelete" in table and "rotation" in table
    kyok("key", "policy", "set", key.id, code=2)
    kyok("key", "policy", "set", key.id, "--rotation-months", "13", code=2)
    err = kyok("key", "policy", "set", key.id, "--no-dual-auth-delete", code=1).stderr
    assert "HTTP" in err
    kyok("key", "policy", "show", str(uuid.uuid4()), code=5)


def test_dual_authorisation_and_sync(kyok: Kyok, client: KyokClient, live: LiveServer) -> None:
    key = client.create_key(_name("two-person"))
    err = kyok("key", "set-for-deletion", key.id, code=1).stderr
    assert "NOT_DUAL_AUTH_ERR" in err
    kyok("key", "policy", "set", key.id, "--dual-auth-delete")
    assert "approved" in kyok("key", "set-for-deletion", key.id).stdout
    assert kyok.json("key", "unset-for-deletion", key.id)["done"] is True
    kyok("key", "set-for-deletion", key.id)
    kyok("key", "delete", key.id, code=1)  # the approver cannot delete it too

    bob = client.create_principal(_name("bob"))
    client.grant_role(bob.id, "Manager")
    secret = client.create_api_key(bob.id, "bob").secret
    assert secret is not None
    other = Kyok(live, Path(kyok.env["XDG_CONFIG_HOME"] or ".") / "bob")
    other.env["KYOK_API_KEY"] = secret
    assert other.json("key", "delete", key.id)["state"] == 5

    synced = client.create_key(_name("synced"))
    assert "sync" in kyok("key", "sync", synced.id).stdout
    assert kyok.json("key", "registrations", synced.id) == []
    assert isinstance(kyok.json("key", "registrations", "--crn", "crn:v1:*"), list)
    assert "resource" in kyok("key", "registrations").stdout


def test_instance_policies(kyok: Kyok) -> None:
    shown = kyok.json(
        "instance", "policy", "set", "rotation", "--enable", "--attr", "interval_month=4"
    )
    try:
        assert shown[0]["policyType"] == "rotation" and shown[0]["enabled"] is True
        assert shown[0]["attributes"] == {"interval_month": 4}
        table = kyok("instance", "policy", "show").stdout
        assert "rotation" in table and "interval_month" in table
        only = kyok.json("instance", "policy", "show", "--type", "rotation")
        assert [p["policyType"] for p in only] == ["rotation"]
    finally:
        kyok("instance", "policy", "set", "rotation", "--disable")
    assert kyok.json("instance", "policy", "show", "--type", "rotation")[0]["enabled"] is False
    kyok("instance", "policy", "set", "rotation", "--enable", "--attr", "interval_month=13", code=1)
    kyok("instance", "policy", "set", "rotation", "--attr", "x", code=2)
    kyok("instance", "policy", "set", "rotation", code=2)  # neither --enable nor --disable


# ---------------------------------------------------------------- pieces without a server


def test_attributes_parse_as_json_else_text() -> None:
    from kyok.cli.policies import parse_attributes

    assert parse_attributes(None) is None
    assert parse_attributes(["interval_month=3", "enforce_token=true"]) == {
        "interval_month": 3,
        "enforce_token": True,
    }
    assert parse_attributes(["allowed_network=private-only"]) == {"allowed_network": "private-only"}
    assert parse_attributes(["allowed_ip=10.0.0.0/8"]) == {"allowed_ip": ["10.0.0.0/8"]}
    assert parse_attributes(["allowed_ip=10.0.0.0/8", "allowed_ip=::1/128"]) == {
        "allowed_ip": ["10.0.0.0/8", "::1/128"]
    }
    assert parse_attributes(['allowed_ip=["10.0.0.0/8", "::1/128"]']) == {
        "allowed_ip": ["10.0.0.0/8", "::1/128"]
    }
