"""The key-management CLI against the real server (a dev node under uvicorn in a thread): log in,
keys, wrap/unwrap/rotate/rewrap, rings, aliases, delete/restore/purge, principals, API keys and
roles, all through ``kyok …`` with ``--json`` parsed and exit codes checked."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kyok.cli.main import app
from live_server import LiveServer, dev_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-cli-live")) as server:
        yield server


class Kyok:
    """Runs ``kyok …`` in-process with its own config directory and no KYOK_* leaking in."""

    def __init__(self, config: Path, **env: str) -> None:
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(config),
            "KYOK_URL": None,
            "KYOK_INSTANCE_ID": None,
            "KYOK_API_KEY": None,
            "KYOK_CACERT": None,
            **env,
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = "", code: int = 0) -> Result:
        result = self.runner.invoke(
            app, list(args), input=input, env=self.env, catch_exceptions=False
        )
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kyok(live: LiveServer, tmp_path: Path) -> Kyok:
    k = Kyok(tmp_path / "config")
    k("login", "--url", live.url, "--instance", live.instance_id, input=live.api_key + "\n")
    return k


def test_login_prompts_verifies_and_saves(live: LiveServer, tmp_path: Path) -> None:
    k = Kyok(tmp_path / "config")
    result = k("login", input=f"{live.url}\n{live.instance_id}\n{live.api_key}\n")
    assert "admin" in result.stdout and "KyokInstanceAdmin" in result.stdout
    assert live.api_key not in result.output
    profile = tmp_path / "config" / "kyok" / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert json.loads(profile.read_text())["api_key"] == live.api_key
    me = k.json("whoami")
    assert me["instanceId"] == live.instance_id and me["principal"]["name"] == "admin"
    bad = Kyok(tmp_path / "other")
    out = bad(
        "login",
        "--url",
        live.url,
        "--instance",
        live.instance_id,
        "--api-key",
        "kyok_wrong",
        code=1,
    )
    assert "refused" in out.stderr and not (tmp_path / "other" / "kyok" / "profile.json").exists()


def test_environment_without_a_profile(live: LiveServer, tmp_path: Path) -> None:
    k = Kyok(
        tmp_path / "none",
        KYOK_URL=live.url,
        KYOK_INSTANCE_ID=live.instance_id,
        KYOK_API_KEY=live.api_key,
    )
    assert k.json("whoami")["instanceId"] == live.instance_id


def test_the_key_tour(kyok: Kyok, tmp_path: Path) -> None:
    ring = _name("ring")
    assert kyok.json("ring", "create", ring) == {"id": ring}
    assert ring in {r["id"] for r in kyok.json("ring", "list")}

    alias = _name("orders")
    key = kyok.json(
        "key",
        "create",
        _name("root"),
        "--alias",
        alias,
        "--tag",
        "t1",
        "--ring",
        ring,
        "--description",
        "cli tour",
    )
    kid = key["id"]
    assert key["extractable"] is False and key["state"] == 1 and key["keyRingID"] == ring
    assert key["aliases"] == [alias] and "payload" not in key
    shown = kyok.json("key", "show", alias)
    assert shown["id"] == kid and shown["description"] == "cli tour"
    assert "cli tour" in kyok("key", "show", kid).stdout
    assert kid in {k["id"] for k in kyok.json("key", "list", "--all")}
    assert kid in kyok("key", "list").stdout

    # wrap without input: the server generates a DEK, both printed
    gen = kyok.json("wrap", alias, "--aad", "tenant:1", "--generate")
    dek = base64.b64decode(gen["plaintext"])
    assert len(dek) == 32
    v1 = gen["keyVersion"]["id"]
    ct1 = gen["ciphertext"]
    # unwrap, ciphertext on stdin
    out = kyok.json("unwrap", kid, "--aad", "tenant:1", input=ct1 + "\n")
    assert base64.b64decode(out["plaintext"]) == dek and "ciphertext" not in out
    # wrong AAD: refused, not a crash
    bad = kyok("unwrap", kid, ct1, "--aad", "tenant:2", code=1)
    assert "error:" in bad.stderr and bad.stdout == ""
    # wrap our own DEK from a file, ciphertext to a file: pipe-friendly output
    mine = os.urandom(32)
    dek_file = tmp_path / "dek.b64"
    dek_file.write_text(base64.b64encode(mine).decode() + "\n")
    ct_file = tmp_path / "dek.wrapped"
    kyok("wrap", kid, "--in", str(dek_file), "-o", str(ct_file))
    plain = kyok("unwrap", kid, "--in", str(ct_file))
    assert base64.b64decode(plain.stdout.strip()) == mine

    # rotate: the old ciphertext still opens and comes back rewrapped
    rotated = kyok.json("key", "rotate", kid)
    v2 = rotated["keyVersion"]["id"]
    assert v2 != v1
    versions = kyok.json("key", "versions", kid)
    assert [v["id"] for v in versions] == [v2, v1]
    stale = kyok.json("unwrap", kid, ct1, "--aad", "tenant:1")
    assert base64.b64decode(stale["plaintext"]) == dek
    assert stale["keyVersion"]["id"] == v1 and stale["rewrappedKeyVersion"]["id"] == v2
    human = kyok("unwrap", kid, ct1, "--aad", "tenant:1")
    assert "rotated" in human.stderr and stale["ciphertext"][:20] in human.stderr.replace("\n", "")
    fresh = kyok.json("unwrap", kid, stale["ciphertext"], "--aad", "tenant:1")
    assert "ciphertext" not in fresh and base64.b64decode(fresh["plaintext"]) == dek
    rewrapped = kyok.json("rewrap", kid, ct1, "--aad", "tenant:1")
    assert rewrapped["rewrappedKeyVersion"]["id"] == v2
    assert (
        base64.b64decode(
            kyok.json("unwrap", kid, rewrapped["ciphertext"], "--aad", "tenant:1")["plaintext"]
        )
        == dek
    )

    # aliases
    extra = _name("billing")
    made = kyok.json("alias", "create", kid, extra)
    assert (made["keyId"], made["alias"]) == (kid, extra)
    assert kyok.json("key", "show", extra)["id"] == kid
    kyok("alias", "delete", kid, extra)
    kyok("key", "show", extra, code=5)

    # disable / enable
    assert kyok.json("key", "disable", kid)["state"] == 2
    kyok("wrap", kid, "--generate", code=1)
    assert kyok.json("key", "enable", kid)["state"] == 1

    # move out of the ring, delete the ring
    assert kyok.json("key", "move", kid, "--ring", "default")["keyRingID"] == "default"
    kyok("ring", "delete", ring)
    assert ring not in {r["id"] for r in kyok.json("ring", "list")}

    # delete, restore, delete, purge
    assert kyok.json("key", "delete", kid)["state"] == 5
    assert kid in {k["id"] for k in kyok.json("key", "list", "--state", "destroyed")}
    assert kid not in {k["id"] for k in kyok.json("key", "list")}
    assert kyok.json("key", "restore", kid)["state"] == 1
    assert base64.b64decode(kyok.json("unwrap", kid, ct1, "--aad", "tenant:1")["plaintext"]) == dek
    kyok("key", "delete", kid, "--force")
    kyok("key", "purge", kid, input="n\n", code=1)
    kyok("key", "purge", kid, "--yes")
    missing = kyok("key", "show", kid, code=5)
    assert "KEY_NOT_FOUND_ERR" in missing.stderr or "HTTP 404" in missing.stderr


def test_standard_keys_show_material_only_when_asked(kyok: Kyok) -> None:
    material = os.urandom(40)
    made = kyok.json(
        "key",
        "create",
        _name("std"),
        "--standard",
        "--material-b64",
        base64.b64encode(material).decode(),
    )
    assert made["extractable"] is True and "payload" not in made
    assert "payload" not in kyok.json("key", "show", made["id"])
    shown = kyok.json("key", "show", made["id"], "--show-material")
    assert base64.b64decode(shown["payload"]) == material
    assert kyok.json("key", "count", "--standard")["count"] >= 1


def test_principals_api_keys_and_roles(kyok: Kyok, live: LiveServer, tmp_path: Path) -> None:
    name = _name("app")
    p = kyok.json("principal", "create", name, "--kind", "service")
    assert (p["name"], p["kind"]) == (name, "service")
    assert p["id"] in {x["id"] for x in kyok.json("principal", "list")}
    created = kyok("apikey", "create", name, "--name", "ci", "--json")
    assert "shown only now" in created.stderr
    secret = json.loads(created.stdout)["apikey"]
    listed = kyok.json("apikey", "list", name)
    assert len(listed) == 1 and "apikey" not in listed[0]

    app_cli = Kyok(
        tmp_path / "app", KYOK_URL=live.url, KYOK_INSTANCE_ID=live.instance_id, KYOK_API_KEY=secret
    )
    assert app_cli.json("whoami")["principal"]["id"] == p["id"]
    app_cli("key", "list", code=1)  # no role yet: forbidden
    binding = kyok.json("role", "grant", name, "Writer")
    assert (binding["role"], binding["scope"]) == ("Writer", "instance")
    key = app_cli.json("key", "create", _name("app-key"))
    app_cli("key", "disable", key["id"], code=1)  # Manager only
    wrapped = app_cli.json("wrap", key["id"], "--generate")
    assert (
        app_cli.json("unwrap", key["id"], wrapped["ciphertext"])["plaintext"]
        == wrapped["plaintext"]
    )
    assert [b["id"] for b in kyok.json("role", "list", name)] == [binding["id"]]
    shown = kyok.json("principal", "show", name)
    assert shown["roles"][0]["id"] == binding["id"] and shown["apikeys"][0]["name"] == "ci"

    kyok("role", "revoke", binding["id"])
    app_cli("key", "create", _name("nope"), code=1)
    kyok("apikey", "delete", listed[0]["id"])
    app_cli("whoami", code=1)
    kyok("principal", "delete", name, "--yes")
    kyok("principal", "show", name, code=5)


def test_unavailable_and_usage_exit_codes(kyok: Kyok, live: LiveServer) -> None:
    kyok("key", "show", str(uuid.uuid4()), code=5)
    kyok("wrap", "some-key", "not base64!", code=2)
    kyok("key", "list", "--url", "http://127.0.0.1:9", "--instance", "x", "--api-key", "y", code=4)


def test_tls_cacert_and_insecure(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    with dev_server(
        tmp_path / "data", **{"server.tls_cert": cert_file, "server.tls_key": key_file}
    ) as live:
        k = Kyok(tmp_path / "config")
        args = ("--url", live.url, "--instance", live.instance_id, "--api-key", live.api_key)
        failed = k("login", *args, code=4)
        assert "CERTIFICATE_VERIFY_FAILED" in failed.stderr
        k("login", *args, "--cacert", str(ca_file))
        profile = json.loads((tmp_path / "config" / "kyok" / "profile.json").read_text())
        assert profile["cacert"] == str(ca_file.resolve())
        assert k.json("whoami")["instanceId"] == live.instance_id  # the saved CA is used
        env_only = Kyok(
            tmp_path / "none",
            KYOK_URL=live.url,
            KYOK_INSTANCE_ID=live.instance_id,
            KYOK_API_KEY=live.api_key,
        )
        env_only("whoami", code=4)
        env_only("whoami", "--insecure")
        env_only.env["KYOK_CACERT"] = str(ca_file)
        env_only("whoami")
