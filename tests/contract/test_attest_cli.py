"""``decrypt-attestation``, ``verify-attestation`` and ``passphrase`` through Typer's CliRunner,
on a throwaway app (the lead wires ``register`` into ``kyok contract``): exit codes, stdin,
0600 output files, ``--json``, and the three-seed passphrase against a real kyok server."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from typer.testing import CliRunner, Result

from contract.test_attestation import (
    DAY,
    NOW,
    Deployment,
    deploy,
    make_cert,
    make_crl,
    pem,
    pki,
    rsa_key,
    sha,
)
from contract.test_volume import ENV_SEED, WORKLOAD_SEED, openssl_sha256
from kyok.cli.contract_attest import KyokSeedKms, register
from kyok.client import KyokClient
from kyok.contract.token import encrypt_token
from kyok.contract.volume import WrappedSeed, three_seed_passphrase
from live_server import LiveServer, dev_server


def make_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


class Cli:
    """Runs the commands in-process, with no KYOK_* variable leaking in."""

    def __init__(self, home: Path, **env: str) -> None:
        self.app = make_app()
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(home),
            "KYOK_URL": None,
            "KYOK_INSTANCE_ID": None,
            "KYOK_API_KEY": None,
            "KYOK_CACERT": None,
            "KYOK_KEY_PASSWORD": None,
            "KYOK_ENV_SEED": None,
            "KYOK_WORKLOAD_SEED": None,
            **env,
        }

    def __call__(
        self, *args: str | Path, input: str | bytes | None = None, code: int = 0, **env: str
    ) -> Result:
        result = self.runner.invoke(
            self.app,
            [str(a) for a in args],
            input=input,
            env=self.env | env,
            catch_exceptions=False,
        )
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def error(self, *args: str | Path, code: int, **kw: Any) -> str:
        """stderr of a failing command as one line (usage errors come in a folded box)."""
        text = self(*args, code=code, **kw).stderr
        return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "config")


@dataclass(frozen=True)
class Files:
    dir: Path
    dep: Deployment

    def __getattr__(self, name: str) -> Path:
        return (
            self.dir
            / {
                "enc": "se-checksums.txt.enc",
                "plain": "se-checksums.txt",
                "sig": "se-signature.bin",
                "key": "attestation-key.pem",
                "locked_key": "attestation-key-locked.pem",
                "cert": "attestation.crt",
                "ibm": "ibm-intermediate.crt",
                "digicert": "digicert-intermediate.crt",
                "bundle": "intermediates.pem",
                "root": "root.crt",
                "crl": "ibm.crl",
                "user_data": "user-data",
            }[name]
        )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    d = tmp_path_factory.mktemp("attestation")
    dep = deploy()
    p = pki()
    f = Files(d, dep)
    f.enc.write_text(dep.record_token + "\n")
    f.plain.write_bytes(dep.record)
    f.sig.write_bytes(dep.signature)
    f.key.write_bytes(
        dep.record_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    f.locked_key.write_bytes(
        dep.record_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass-1"),
        )
    )
    f.cert.write_bytes(p.attestation.public_bytes(serialization.Encoding.DER))
    f.ibm.write_bytes(pem(p.ibm))
    f.digicert.write_bytes(pem(p.digicert))
    f.bundle.write_bytes(pem(p.digicert) + pem(p.ibm))
    f.root.write_bytes(pem(p.root))
    f.crl.write_bytes(p.ibm_crl.public_bytes(serialization.Encoding.DER))
    f.user_data.write_bytes(dep.user_data)
    return f


# ---------------------------------------------------------------- decrypt-attestation


def test_decrypt_prints_the_exact_record(cli: Cli, files: Files) -> None:
    out = cli("decrypt-attestation", "--in", files.enc, "--priv", files.key)
    assert out.stdout == files.dep.record.decode()
    piped = cli(
        "decrypt-attestation", "--in", "-", "--priv", files.key, input=files.enc.read_text()
    )
    assert piped.stdout == files.dep.record.decode()


def test_decrypt_to_a_private_file(cli: Cli, files: Files, tmp_path: Path) -> None:
    target = tmp_path / "record.txt"
    out = cli("decrypt-attestation", "--in", files.enc, "--priv", files.key, "--out", target)
    assert out.stdout == ""
    assert target.read_bytes() == files.dep.record
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_decrypt_with_a_password_protected_key(cli: Cli, files: Files) -> None:
    args = ("decrypt-attestation", "--in", files.enc, "--priv", files.locked_key)
    refused = cli(*args, code=1)
    assert "encrypted: give its password" in refused.stderr
    assert cli(*args, "--password", "key-pass-1").stdout == files.dep.record.decode()
    assert cli(*args, KYOK_KEY_PASSWORD="key-pass-1").stdout == files.dep.record.decode()
    wrong = cli(*args, "--password", "nope", code=1)
    assert "is the password right" in wrong.stderr and "nope" not in wrong.output


def test_decrypt_with_the_wrong_key_fails(cli: Cli, files: Files, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(
        rsa_key("not the auditor").private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    failed = cli("decrypt-attestation", "--in", files.enc, "--priv", other, code=1)
    assert "does not decrypt" in failed.stderr and failed.stdout == ""


def test_decrypt_and_verify_the_signature(cli: Cli, files: Files, tmp_path: Path) -> None:
    args: list[str | Path] = [
        "decrypt-attestation",
        "--in",
        files.enc,
        "--priv",
        files.key,
        "--signature",
        files.sig,
    ]
    ok = cli(*args, "--attestation-cert", files.cert, "--json")
    data = json.loads(ok.stdout)
    assert data["signatureVerified"] is True and data["version"] == "24.6.0"
    assert {"label": "contract: env", "sha256": sha(files.dep.env)} in data["checksums"]
    assert data["metadata"][0] == {"key": "Machine Type/Plant/Serial", "value": "8562/02/4C598"}
    wrong = tmp_path / "wrong.crt"
    wrong.write_bytes(
        pem(
            make_cert(
                "wrong", rsa_key("wrong", 4096), (pki().ibm.subject, rsa_key("ibm")), ca=False
            )
        )
    )
    bad = cli(*args, "--attestation-cert", wrong, code=3)
    assert "does not verify" in bad.stderr and bad.stdout == ""
    usage = cli.error(*args, code=2)
    assert "go together" in usage


# ---------------------------------------------------------------- verify-attestation


def _verify_args(files: Files, *extra: str | Path) -> list[str | Path]:
    return [
        "verify-attestation",
        "--in",
        files.enc,
        "--priv",
        files.key,
        "--signature",
        files.sig,
        "--cert",
        files.cert,
        *extra,
    ]


def test_verify_everything_passes(cli: Cli, files: Files) -> None:
    args = _verify_args(
        files,
        "--chain",
        files.ibm,
        "--chain",
        files.digicert,
        "--root",
        files.root,
        "--crl",
        files.crl,
        "--contract",
        files.user_data,
        "--expect",
        f"baseimage={sha('base')}",
    )
    shown = cli(*args)
    assert "verified: the record is signed and matches everything checked" in shown.stdout
    assert "contract: env" in shown.stdout  # the diff table, labels with spaces intact
    data = json.loads(cli(*args, "--json").stdout)
    assert data["ok"] is True
    assert {c["name"]: c["status"] for c in data["checks"]} == dict.fromkeys(
        ("record", "signature", "certificate", "chain", "revocation", "contract"), "pass"
    )
    statuses = {d["label"]: d["status"] for d in data["diff"]}
    assert statuses["baseimage"] == statuses["cidata/user-data"] == "match"
    assert statuses["root.tar.gz"] == "unknown"


def test_verify_a_chain_bundle_and_a_plain_record_from_stdin(cli: Cli, files: Files) -> None:
    data = json.loads(
        cli(
            "verify-attestation",
            "--in",
            "-",
            "--signature",
            files.sig,
            "--attestation-cert",
            files.cert,
            "--chain",
            files.bundle,
            "--root",
            files.root,
            "--json",
            input=files.dep.record,
        ).stdout
    )
    assert data["ok"] is True
    assert data["diff"] is None
    assert {c["name"]: c["status"] for c in data["checks"]}["revocation"] == "skipped"


def test_verify_fails_on_a_tampered_record(cli: Cli, files: Files, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.txt"
    tampered.write_bytes(files.dep.record.replace(b"24.6.0", b"24.6.9"))
    args = _verify_args(files, "--contract", files.user_data, "--json")
    args[2] = tampered
    data = json.loads(cli(*args, code=3).stdout)
    assert data["ok"] is False
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["signature"]["status"] == "fail"
    assert "record was altered" in checks["signature"]["detail"]
    shown = cli(*args[:-1], code=3)
    assert "NOT verified" in shown.stdout and "FAIL" in shown.stdout


def test_verify_fails_on_another_contract(cli: Cli, files: Files, tmp_path: Path) -> None:
    other = tmp_path / "other-user-data"
    other.write_bytes(deploy().user_data)
    data = json.loads(cli(*_verify_args(files, "--contract", other, "--json"), code=3).stdout)
    contract = next(c for c in data["checks"] if c["name"] == "contract")
    assert contract["status"] == "fail" and "cidata/user-data differs" in contract["detail"]
    assert {d["label"] for d in data["diff"] if d["status"] == "mismatch"} == {
        "cidata/user-data",
        "contract: workload",
        "contract: env",
    }


def test_verify_fails_on_a_revoked_certificate(cli: Cli, files: Files, tmp_path: Path) -> None:
    p = pki()
    revoked_key = rsa_key("revoked-att", 4096)
    revoked = make_cert(
        "revoked attestation", revoked_key, (p.ibm.subject, rsa_key("ibm")), ca=False, serial=12345
    )
    (tmp_path / "rev.crt").write_bytes(pem(revoked))
    (tmp_path / "rev.sig").write_bytes(
        revoked_key.sign(files.dep.record, PKCS1v15(), hashes.SHA256())
    )
    args: list[str | Path] = [
        "verify-attestation",
        "--in",
        files.plain,
        "--signature",
        tmp_path / "rev.sig",
        "--cert",
        tmp_path / "rev.crt",
        "--chain",
        files.bundle,
        "--root",
        files.root,
        "--crl",
        files.crl,
        "--json",
    ]
    data = json.loads(cli(*args, code=3).stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["signature"]["status"] == checks["chain"]["status"] == "pass"
    assert checks["revocation"]["status"] == "fail"
    assert "was revoked" in checks["revocation"]["detail"]


def test_verify_fails_on_an_expired_certificate_or_stale_crl(
    cli: Cli, files: Files, tmp_path: Path
) -> None:
    args = _verify_args(files, "--chain", files.bundle, "--root", files.root, "--json")
    last = pki().attestation.not_valid_after_utc
    assert json.loads(cli(*args, "--at", last.isoformat()).stdout)["ok"] is True
    later = (last + timedelta(seconds=1)).isoformat()
    data = json.loads(cli(*args, "--at", later, code=3).stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["certificate"]["status"] == checks["chain"]["status"] == "fail"
    assert "expired on" in checks["certificate"]["detail"]
    assert "expired on" in checks["chain"]["detail"]
    stale = tmp_path / "stale.crl"
    crl = make_crl(pki().ibm, rsa_key("ibm"), last_update=NOW - 30 * DAY, next_update=NOW - DAY)
    stale.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    data = json.loads(cli(*args, "--crl", stale, code=3).stdout)
    assert "out of date" in {c["name"]: c for c in data["checks"]}["revocation"]["detail"]


def test_verify_usage_errors(cli: Cli, files: Files, tmp_path: Path) -> None:
    assert "--root" in cli.error(*_verify_args(files, "--crl", files.crl), code=2)
    assert "LABEL=SHA256" in cli.error(*_verify_args(files, "--expect", "nohash"), code=2)
    assert "time zone" in cli.error(*_verify_args(files, "--at", "2026-01-01T00:00"), code=2)
    no_key = cli(
        "verify-attestation",
        "--in",
        files.enc,
        "--signature",
        files.sig,
        "--cert",
        files.cert,
        code=1,
    )
    assert "give the private key" in no_key.stderr
    missing = cli.error(*_verify_args(files, "--contract", tmp_path / "nope.yaml"), code=2)
    assert "does not exist" in missing
    bad_expect = cli(*_verify_args(files, "--expect", "baseimage=xyz"), code=1)
    assert "not a sha256" in bad_expect.stderr


# ---------------------------------------------------------------- passphrase, two seeds


def _sections(
    tmp_path: Path, *, env_extra: str = "", workload_extra: str = ""
) -> tuple[Path, Path]:
    env = tmp_path / "env.yaml"
    env.write_text(
        "type: env\nlogging:\n  logRouter:\n    hostname: h\n    iamApiKey: k\n"
        f'volumes:\n  data:\n    seed: "{ENV_SEED}"\n    previousSeed: "old-env-seed-0000"\n'
        + env_extra
    )
    workload = tmp_path / "workload.yaml"
    workload.write_text(
        "type: workload\ncompose:\n  archive: H4sIAAAA\n"
        f"volumes:\n  data:\n    mount: /mnt/data\n    seed: '{WORKLOAD_SEED}'\n"
        "    previousSeed: old-workload-seed\n" + workload_extra
    )
    return env, workload


TWO = openssl_sha256(ENV_SEED + WORKLOAD_SEED)


def test_passphrase_from_the_sections(cli: Cli, tmp_path: Path) -> None:
    env, workload = _sections(tmp_path)
    assert cli("passphrase", "--env", env, "--workload", workload).stdout == TWO + "\n"
    swapped = cli("passphrase", "--env", env, "--workload", workload, "--order", "workload-env")
    assert swapped.stdout.strip() == openssl_sha256(WORKLOAD_SEED + ENV_SEED)
    previous = cli("passphrase", "--env", env, "--workload", workload, "--previous")
    assert previous.stdout.strip() == openssl_sha256("old-env-seed-0000old-workload-seed")
    data = json.loads(cli("passphrase", "--env", env, "--workload", workload, "--json").stdout)
    assert data == {"passphrase": TWO, "volume": "data", "seeds": 2, "order": "env-workload"}


def test_passphrase_from_a_plaintext_contract(cli: Cli, tmp_path: Path) -> None:
    env, workload = _sections(tmp_path)

    def indent(path: Path) -> str:
        return "".join(f"  {line}\n" for line in path.read_text().splitlines())

    contract = tmp_path / "contract.yaml"
    contract.write_text(f"workload: |\n{indent(workload)}env: |\n{indent(env)}")
    assert cli("passphrase", "--contract", contract).stdout.strip() == TWO
    sealed = tmp_path / "sealed.yaml"
    token = encrypt_token(env.read_bytes(), rsa_key("platform").public_key())
    sealed.write_text(f"workload: |\n{indent(workload)}env: {token}\n")
    refused = cli("passphrase", "--contract", sealed, code=1)
    assert "env section is encrypted" in refused.stderr


def test_passphrase_from_files_stdin_and_environment(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "env.seed").write_text(ENV_SEED + "\n")
    (tmp_path / "wl.seed").write_text(WORKLOAD_SEED)
    files = ("--env-seed-file", tmp_path / "env.seed", "--workload-seed-file", tmp_path / "wl.seed")
    assert cli("passphrase", *files).stdout.strip() == TWO
    piped = cli(
        "passphrase",
        "--env-seed-file",
        "-",
        "--workload-seed-file",
        tmp_path / "wl.seed",
        input=ENV_SEED + "\n",
    )
    assert piped.stdout.strip() == TWO
    by_env = cli("passphrase", KYOK_ENV_SEED=ENV_SEED, KYOK_WORKLOAD_SEED=WORKLOAD_SEED)
    assert by_env.stdout.strip() == TWO and "process list" not in by_env.stderr
    by_flag = cli("passphrase", "--env-seed", ENV_SEED, "--workload-seed", WORKLOAD_SEED)
    assert by_flag.stdout.strip() == TWO and "process list" in by_flag.stderr


def test_passphrase_to_a_private_file(cli: Cli, tmp_path: Path) -> None:
    env, workload = _sections(tmp_path)
    target = tmp_path / "luks.pass"
    out = cli("passphrase", "--env", env, "--workload", workload, "--out", target)
    assert TWO not in out.output
    assert target.read_text() == TWO + "\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = cli("passphrase", "--env", env, "--workload", workload, "--out", target, code=1)
    assert "exists" in again.stderr
    cli("passphrase", "--env", env, "--workload", workload, "--out", target, "--force")


def test_passphrase_input_errors(cli: Cli, tmp_path: Path) -> None:
    env, workload = _sections(
        tmp_path,
        env_extra='  logs:\n    seed: "logs-env-seed-00000"\n',
        workload_extra="  logs:\n    seed: logs-workload-seed-0\n",
    )
    several = cli.error("passphrase", "--env", env, "--workload", workload, code=2)
    assert "--volume" in several
    logs = cli("passphrase", "--env", env, "--workload", workload, "--volume", "logs")
    assert logs.stdout.strip() == openssl_sha256("logs-env-seed-00000logs-workload-seed-0")
    twice = cli.error(
        "passphrase",
        "--env",
        env,
        "--workload",
        workload,
        "--volume",
        "data",
        code=2,
        KYOK_ENV_SEED=ENV_SEED,
    )
    assert "more than one way" in twice
    missing = cli.error("passphrase", "--env", env, "--volume", "data", code=2)
    assert "no workload seed" in missing
    short = cli("passphrase", "--env-seed", "short", "--workload-seed", WORKLOAD_SEED, code=1)
    assert "at least 15" in short.stderr and "short" not in short.stdout
    legacy = cli(
        "passphrase",
        "--env-seed",
        "env phrase",
        "--workload-seed",
        "wl",
        "--legacy-seeds",
        code=1,
    )
    assert "at least 3" in legacy.stderr
    unknown = cli("passphrase", "--env", env, "--workload", workload, "--volume", "nope", code=1)
    assert "has no volume 'nope'" in unknown.stderr
    uv = tmp_path / "uv.yaml"
    uv.write_text("type: env\nvolumes:\n  data:\n    uv-secret-id: index-1\n")
    only_uv = cli("passphrase", "--env", uv, "--workload", workload, "--volume", "data", code=1)
    assert "Ultravisor" in only_uv.stderr
    numeric = tmp_path / "num.yaml"
    numeric.write_text("type: env\nvolumes:\n  data:\n    seed: 1234567890123456789\n")
    assert (
        "quote it"
        in cli(
            "passphrase", "--env", numeric, "--workload", workload, "--volume", "data", code=1
        ).stderr
    )
    assert "go with --new-seed" in cli.error("passphrase", "--key", "k", code=2)
    no_sections = cli.error(
        "passphrase", "--previous", code=2, KYOK_ENV_SEED=ENV_SEED, KYOK_WORKLOAD_SEED=ENV_SEED
    )
    assert "previousSeed from the sections" in no_sections


# ---------------------------------------------------------------- passphrase, three seeds


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-passphrase")) as server:
        yield server


@pytest.fixture
def remote_cli(live: LiveServer, tmp_path: Path) -> Cli:
    return Cli(
        tmp_path / "config",
        KYOK_URL=live.url,
        KYOK_INSTANCE_ID=live.instance_id,
        KYOK_API_KEY=live.api_key,
    )


@pytest.fixture
def client(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as c:
        yield c


def test_three_seed_passphrase_through_the_server(
    remote_cli: Cli, client: KyokClient, tmp_path: Path
) -> None:
    key = client.create_root_key(f"luks-{uuid.uuid4().hex[:8]}").id
    env, workload = _sections(tmp_path)
    seed_file = tmp_path / "data.seed.json"
    made = remote_cli(
        "passphrase",
        "--new-seed",
        "--key",
        key,
        "--volume",
        "data",
        "--out",
        seed_file,
        "--aad",
        "tenant:7",
    )
    assert made.stdout == "" and "Keep the file" in made.stderr
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    stored = WrappedSeed.from_json(seed_file.read_text())
    assert stored.key_id == key and stored.extra_aad == ("tenant:7",)
    again = remote_cli(
        "passphrase", "--new-seed", "--key", key, "--volume", "data", "--out", seed_file, code=1
    )
    assert "--force" in again.stderr

    derive = ("passphrase", "--env", env, "--workload", workload, "--wrapped", seed_file)
    value = remote_cli(*derive).stdout.strip()
    assert len(value) == 64 and value != TWO
    assert remote_cli(*derive).stdout.strip() == value  # reproducible
    assert value == three_seed_passphrase(ENV_SEED, WORKLOAD_SEED, stored, KyokSeedKms(client))
    data = json.loads(remote_cli(*derive, "--json").stdout)
    assert data == {"passphrase": value, "volume": "data", "seeds": 3, "order": "env-workload"}

    client.disable_key(key)
    refused = remote_cli(*derive, code=1)
    assert refused.stdout == ""
    assert "no passphrase can be derived" in refused.stderr
    assert ENV_SEED not in refused.output and value not in refused.output
    client.enable_key(key)
    assert remote_cli(*derive).stdout.strip() == value

    client.rotate_key(key)
    rotated = remote_cli(*derive)
    assert rotated.stdout.strip() == value
    assert "was rotated" in rotated.stderr
    updated = WrappedSeed.from_json(seed_file.read_text())
    assert updated.key_version != stored.key_version and updated.wrapped != stored.wrapped
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert "was rotated" not in remote_cli(*derive).stderr


def test_three_seed_usage_errors(remote_cli: Cli, tmp_path: Path) -> None:
    assert "--new-seed needs" in remote_cli.error("passphrase", "--new-seed", "--key", "k", code=2)
    env, workload = _sections(tmp_path)
    mixed = remote_cli.error("passphrase", "--new-seed", "--env", env, "--key", "k", code=2)
    assert "only makes the wrapped seed" in mixed
    seed_file = tmp_path / "w.json"
    seed_file.write_text(
        WrappedSeed(
            volume="logs",
            key_id="k",
            wrapped="AAAA",
            aad=("kyok/v1/luks-third-seed", "volume=logs"),
        ).to_json()
    )
    wrong_volume = remote_cli(
        "passphrase",
        "--env",
        env,
        "--workload",
        workload,
        "--wrapped",
        seed_file,
        "--volume",
        "data",
        code=1,
    )
    assert "is for volume 'logs'" in wrong_volume.stderr
    seed_file.write_text("{}")
    assert (
        "not a kyok wrapped-seed file"
        in remote_cli(
            "passphrase", "--env", env, "--workload", workload, "--wrapped", seed_file, code=1
        ).stderr
    )
    unknown_key = tmp_path / "u.json"
    unknown_key.write_text(
        WrappedSeed(
            volume="data",
            key_id=str(uuid.uuid4()),
            wrapped="AAAA",
            aad=("kyok/v1/luks-third-seed", "volume=data"),
        ).to_json()
    )
    gone = remote_cli(
        "passphrase", "--env", env, "--workload", workload, "--wrapped", unknown_key, code=1
    )
    assert "no passphrase can be derived" in gone.stderr
