"""``kyok contract …``: every command of the core half through typer's CliRunner, with files,
stdin and stdout, exit codes, and openssl checking the results."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from tests.contract.contract_kit import (
    FIXTURES,
    encryption_cert_pem,
    encryption_key,
    new_rsa,
    openssl,
    private_pem,
    public_pem,
    self_signed,
    signing_key,
    write,
)
from typer.testing import CliRunner, Result

from kyok.cli.contract import app
from kyok.contract.contract import decrypt_contract, dump_contract, parse_contract, parse_section
from kyok.contract.expiry import CsrParams, build_csr
from kyok.contract.sections import list_tgz
from kyok.contract.token import decrypt_token, encrypt_token


def run(*args: str, input: bytes | str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


@pytest.fixture
def files(tmp_path: Path) -> Path:
    write(tmp_path, "enc.crt", encryption_cert_pem())
    write(tmp_path, "enc.key", private_pem(encryption_key(), b"decryptpass"))
    write(tmp_path, "sign.pem", private_pem(signing_key(), b"CustomPassphrase"))
    write(tmp_path, "sign.pub", public_pem(signing_key()))
    compose = tmp_path / "compose"
    compose.mkdir()
    write(compose, "docker-compose.yaml", "services:\n  app:\n    image: busybox\n")
    return tmp_path


def _contract_file(files: Path) -> Path:
    archive = run("base64-tgz", "--in", str(files / "compose")).stdout.strip()
    text = (
        "workload: |\n  type: workload\n  compose:\n"
        f"    archive: {archive}\n"
        "  volumes:\n    data:\n      seed: workload-seed-0123456789\n"
        "env: |\n  type: env\n  logging:\n    logRouter:\n      hostname: logs.example.com\n"
        "      iamApiKey: secret-iam-key\n  volumes:\n    data:\n      seed: env-seed-0123456789\n"
    )
    return write(files, "contract.yaml", text)


def test_base64(files: Path) -> None:
    assert run("base64", "--in", "sashwatk").stdout == "c2FzaHdhdGs=\n"
    assert run("base64", "--in", "-", input=b"hello\n").stdout == "aGVsbG8K\n"
    assert (
        run("base64", "--in", '{"a": 1}', "--format", "json").stdout.strip()
        == base64.b64encode(b'{"a": 1}').decode()
    )
    result = run("base64", "--in", "{nope", "--format", "json", code=1)
    assert "not valid JSON" in result.stderr
    run("base64", "--in", "x", "--out", str(files / "b64.txt"))
    assert (files / "b64.txt").read_text() == "eA=="


def test_base64_tgz_plain_and_encrypted(files: Path) -> None:
    plain = run("base64-tgz", "--in", str(files / "compose")).stdout.strip()
    assert [e.name for e in list_tgz(plain)] == ["docker-compose.yaml"]
    assert run("base64-tgz", "--in", "-", input=f"{files / 'compose'}\n").stdout.strip() == plain
    token = run(
        "base64-tgz",
        "--in",
        str(files / "compose"),
        "--output",
        "encrypted",
        "--cert",
        str(files / "enc.crt"),
        "--os",
        "ccrt",
    ).stdout.strip()
    assert token.startswith("contract-basic.")
    assert decrypt_token(token, encryption_key()).decode() == plain  # the base64 text is encrypted
    missing = run("base64-tgz", "--in", str(files / "compose"), "--output", "encrypted", code=2)
    assert "--cert" in missing.stderr


def test_decrypt_takes_tokens_and_names_too_long_for_a_path(files: Path) -> None:
    # A token is read as a token even when its last base64 part, taken as a file name, is longer
    # than the OS allows (once a flaky crash: stat() raised "File name too long").
    token = run(
        "encrypt-string", "--in", "x" * 600, "--cert", str(files / "enc.crt")
    ).stdout.strip()
    head, a, b = token.split(".")
    long_tail = f"{head}.{a[:40]}/{a[40:]}.{b}"
    assert len(a[40:]) > 255
    assert (
        run(
            "decrypt", "--in", token, "--priv", str(files / "enc.key"), "--password", "decryptpass"
        ).stdout
        == "x" * 600 + "\n"
    )
    bad = run("decrypt", "--in", long_tail + "!", "--priv", str(files / "enc.key"), code=2)
    assert "neither a token nor an existing file" in bad.output


def test_encrypt_string_and_decrypt(files: Path) -> None:
    token = run(
        "encrypt-string", "--in", "my-secret-password", "--cert", str(files / "enc.crt")
    ).stdout.strip()
    assert token.startswith("hyper-protect-basic.")
    out = run(
        "decrypt", "--in", token, "--priv", str(files / "enc.key"), "--password", "decryptpass"
    ).stdout
    assert out == "my-secret-password\n"
    # stdin keeps the bytes exactly (the newline too), a file --out gets exactly the plaintext, 0600
    token = run(
        "encrypt-string", "--in", "-", "--cert", str(files / "enc.crt"), input=b"line\n"
    ).stdout.strip()
    write(files, "token.txt", token + "\n")
    run(
        "decrypt",
        "--in",
        str(files / "token.txt"),
        "--priv",
        str(files / "enc.key"),
        "--password",
        "decryptpass",
        "--out",
        str(files / "plain.txt"),
    )
    assert (files / "plain.txt").read_bytes() == b"line\n"
    assert stat.S_IMODE((files / "plain.txt").stat().st_mode) == 0o600
    result = run("decrypt", "--in", "-", "--priv", str(files / "enc.key"), code=1, input=token)
    assert "encrypted: give its password" in result.stderr
    wrong = run(
        "decrypt",
        "--in",
        token,
        "--priv",
        str(files / "sign.pem"),
        "--password",
        "CustomPassphrase",
        code=1,
    )
    assert "does not decrypt" in wrong.stderr
    assert run("decrypt", "--in", "neither", "--priv", str(files / "enc.key"), code=2).stderr
    bad_json = run(
        "encrypt-string", "--in", "{x", "--format", "json", "--cert", str(files / "enc.crt"), code=1
    )
    assert "not valid JSON" in bad_json.stderr


def test_password_from_environment(files: Path) -> None:
    token = encrypt_token(b"env-pw", encryption_key().public_key())
    result = CliRunner().invoke(
        app,
        ["decrypt", "--in", token, "--priv", str(files / "enc.key")],
        env={"KYOK_KEY_PASSWORD": "decryptpass"},
    )
    assert result.exit_code == 0 and result.stdout == "env-pw\n"


def test_encrypt_sign_verify_decrypt_inspect(files: Path) -> None:
    contract_file = _contract_file(files)
    run(
        "encrypt",
        "--in",
        str(contract_file),
        "--cert",
        str(files / "enc.crt"),
        "--priv",
        str(files / "sign.pem"),
        "--password",
        "CustomPassphrase",
        "--out",
        str(files / "user-data.yaml"),
    )
    signed = parse_contract((files / "user-data.yaml").read_bytes())
    assert signed.is_encrypted("workload") and signed.is_encrypted("env")
    # openssl verifies the signature over workload‖env
    write(files, "contract.txt", (signed.workload or "") + (signed.env or ""))
    write(files, "sig.bin", base64.b64decode(signed.env_workload_signature or ""))
    ok = openssl(
        "dgst",
        "-sha256",
        "-verify",
        str(files / "sign.pub"),
        "-signature",
        str(files / "sig.bin"),
        str(files / "contract.txt"),
    )
    assert b"Verified OK" in ok.stdout
    # kyok verifies it: with the signer's public key, or reading signingKey from the decrypted env
    assert run(
        "verify-signature", "--in", str(files / "user-data.yaml"), "--pub", str(files / "sign.pub")
    ).stdout.startswith("signature OK")
    report = json.loads(
        run(
            "verify-signature",
            "--in",
            "-",
            "--priv",
            str(files / "enc.key"),
            "--password",
            "decryptpass",
            "--json",
            input=(files / "user-data.yaml").read_bytes(),
        ).stdout
    )
    assert (
        report["valid"]
        and report["key_source"] == "env.signingKey"
        and report["signing_key_form"] == "base64-public-key"
    )
    # an altered env fails: exit 3
    altered = signed.with_section(
        "env", encrypt_token(b"type: env\n", encryption_key().public_key())
    )
    write(files, "altered.yaml", dump_contract(altered))
    bad = run(
        "verify-signature",
        "--in",
        str(files / "altered.yaml"),
        "--pub",
        str(files / "sign.pub"),
        code=3,
    )
    assert "NOT OK" in bad.stdout
    # decrypt the whole contract
    plain = run(
        "decrypt",
        "--in",
        str(files / "user-data.yaml"),
        "--priv",
        str(files / "enc.key"),
        "--password",
        "decryptpass",
    ).stdout
    env = parse_section(parse_contract(plain).env or "", "env")
    assert env["logging"]["logRouter"]["iamApiKey"] == "secret-iam-key"
    assert base64.b64decode(env["signingKey"]) == public_pem(signing_key())
    # inspect: no plaintext unless --show
    inspected = json.loads(
        run(
            "inspect",
            "--in",
            str(files / "user-data.yaml"),
            "--priv",
            str(files / "enc.key"),
            "--password",
            "decryptpass",
            "--json",
        ).stdout
    )
    assert [s["name"] for s in inspected["sections"]] == ["workload", "env", "envWorkloadSignature"]
    assert all("plaintext" not in s for s in inspected["sections"])
    assert inspected["signature"]["valid"]
    human = run("inspect", "--in", str(files / "user-data.yaml"))
    assert (
        "secret-iam-key" not in human.stdout and "encrypted (hyper-protect-basic)" in human.stdout
    )
    shown = run(
        "inspect",
        "--in",
        str(files / "user-data.yaml"),
        "--priv",
        str(files / "enc.key"),
        "--password",
        "decryptpass",
        "--show",
    )
    assert "secret-iam-key" in shown.stdout


def test_encrypt_without_priv_generates_a_key(files: Path) -> None:
    contract_file = _contract_file(files)
    result = run(
        "encrypt",
        "--in",
        str(contract_file),
        "--cert",
        str(files / "enc.crt"),
        "--key-out",
        str(files / "new.pem"),
    )
    assert stat.S_IMODE((files / "new.pem").stat().st_mode) == 0o600
    contract = parse_contract(result.stdout)
    assert (
        run(
            "verify-signature",
            "--in",
            "-",
            "--priv",
            str(files / "enc.key"),
            "--password",
            "decryptpass",
            input=result.stdout,
        ).exit_code
        == 0
    )
    plain = decrypt_contract(contract, encryption_key())
    key = serialization.load_pem_private_key((files / "new.pem").read_bytes(), None)
    assert base64.b64decode(parse_section(plain.env or "", "env")["signingKey"]) == public_pem(
        key.public_key()
    )  # type: ignore[arg-type]
    unsigned = parse_contract(
        run(
            "encrypt", "--in", str(contract_file), "--cert", str(files / "enc.crt"), "--no-sign"
        ).stdout
    )
    assert unsigned.env_workload_signature is None


def test_encrypt_refuses_an_invalid_contract(files: Path) -> None:
    write(
        files,
        "bad.yaml",
        "workload: |\n  type: workload\n  play:\n    archive: QUFBQQ==\nenv: |\n  type: env\n",
    )
    result = run(
        "encrypt",
        "--in",
        str(files / "bad.yaml"),
        "--cert",
        str(files / "enc.crt"),
        "--no-sign",
        code=1,
    )
    assert "env.logging: is required" in result.stderr


def test_contract_expiry_with_csr_params_and_csr(files: Path) -> None:
    ca_key = new_rsa()
    write(files, "ca.key", private_pem(ca_key, b"capw"))
    write(
        files,
        "ca.crt",
        self_signed(ca_key, "Personal CA", days=365, ca=True).public_bytes(
            serialization.Encoding.PEM
        ),
    )
    write(files, "params.json", '{"domain": "signer.example.com", "country": "DE"}')
    contract_file = _contract_file(files)
    common = [
        "--in",
        str(contract_file),
        "--cert",
        str(files / "enc.crt"),
        "--priv",
        str(files / "sign.pem"),
        "--password",
        "CustomPassphrase",
        "--contract-expiry",
        "--cacert",
        str(files / "ca.crt"),
        "--cakey",
        str(files / "ca.key"),
        "--cakey-password",
        "capw",
        "--expiry",
        "30",
    ]
    out = run("encrypt", *common, "--csrParam", str(files / "params.json")).stdout
    write(files, "expiring.yaml", out)
    report = json.loads(
        run(
            "verify-signature",
            "--in",
            str(files / "expiring.yaml"),
            "--priv",
            str(files / "enc.key"),
            "--password",
            "decryptpass",
            "--cacert",
            str(files / "ca.crt"),
            "--json",
        ).stdout
    )
    assert (
        report["valid"]
        and report["issued_by_ca"]
        and report["signing_key_form"] == "base64-certificate"
    )
    assert report["certificate"]["days_left"] in (29, 30)
    assert "CN=signer.example.com" in report["certificate"]["subject"]
    csr = build_csr(signing_key(), CsrParams(domain="from-csr"))
    write(files, "csr.pem", csr.public_bytes(serialization.Encoding.PEM))
    run("encrypt", *common, "--csr", str(files / "csr.pem"))
    both = run(
        "encrypt",
        *common,
        "--csr",
        str(files / "csr.pem"),
        "--csrParam",
        str(files / "params.json"),
        code=2,
    )
    assert "exactly one of --csr and --csrParam" in both.stderr
    other_csr = build_csr(new_rsa(), CsrParams(domain="other"))
    write(files, "other.pem", other_csr.public_bytes(serialization.Encoding.PEM))
    assert (
        "different key" in run("encrypt", *common, "--csr", str(files / "other.pem"), code=1).stderr
    )


def test_sign_contract(files: Path) -> None:
    contract_file = _contract_file(files)
    out = run(
        "sign-contract",
        "--in",
        str(contract_file),
        "--priv",
        str(files / "sign.pem"),
        "--password",
        "CustomPassphrase",
    ).stdout
    signed = parse_contract(out)
    assert signed.workload == parse_contract(contract_file.read_bytes()).workload
    result = run("verify-signature", "--in", "-", "--pub", str(files / "sign.pub"), input=out)
    assert result.stdout.startswith("signature OK")


def test_validate_contract(files: Path) -> None:
    assert (
        run(
            "validate-contract", "--in", str(FIXTURES / "seed004_contract_templates_syslog.yaml")
        ).stdout.strip()
        == "valid"
    )
    result = run(
        "validate-contract",
        "--in",
        str(FIXTURES / "seed004_env_logdna.yaml"),
        "--type",
        "env",
        "--json",
        code=3,
    )
    report = json.loads(result.stdout)
    assert {i["path"] for i in report["issues"]} == {"env.logging.logDNA", "env.volumes.test.seed"}
    assert (
        run(
            "validate-contract",
            "--in",
            str(FIXTURES / "seed004_env_logdna.yaml"),
            "--type",
            "env",
            "--legacy",
        ).stdout.strip()
        == "valid"
    )
    # a CCRV contract may not use compose
    contract_file = _contract_file(files)
    ccrv = run("validate-contract", "--in", str(contract_file), "--os", "ccrv", code=3)
    assert "workload.compose: is not available on CCRV" in ccrv.stdout
    # encrypted sections: skipped without a key, checked with one
    encrypted = run(
        "encrypt", "--in", str(contract_file), "--cert", str(files / "enc.crt"), "--no-sign"
    ).stdout
    write(files, "enc.yaml", encrypted)
    skipped = run("validate-contract", "--in", str(files / "enc.yaml"))
    assert "workload is encrypted and was not checked" in skipped.stderr
    checked = json.loads(
        run(
            "validate-contract",
            "--in",
            str(files / "enc.yaml"),
            "--priv",
            str(files / "enc.key"),
            "--password",
            "decryptpass",
            "--json",
        ).stdout
    )
    assert checked == {"valid": True, "issues": [], "skipped": []}
    raw_section = run(
        "validate-contract", "--in", str(FIXTURES / "seed004_env_logdna.yaml"), code=1
    )
    assert "raw env section" in raw_section.stderr


@pytest.mark.parametrize("platform", ["hpvs", "ccrt", "ccrv", "ccco-peerpod", "ccco-bmtl"])
def test_templates(files: Path, platform: str) -> None:
    contract = run("contract-template", "--os", platform).stdout
    workload = run("contract-template", "--os", platform, "--type", "workload").stdout
    env = run("contract-template", "--os", platform, "--type", "env").stdout
    parsed = parse_contract(contract)
    assert parse_section(parsed.workload or "", "workload") == yaml.safe_load(workload)
    assert parse_section(parsed.env or "", "env") == yaml.safe_load(env)
    os_ = "ccco" if platform.startswith("ccco") else platform
    write(files, "t.yaml", contract)
    result = run(
        "validate-contract",
        "--in",
        str(files / "t.yaml"),
        "--os",
        os_,
        "--json",
        code=3 if platform in ("hpvs", "ccrt") else 0,
    )
    issues = {i["path"] for i in json.loads(result.stdout)["issues"]}
    # only the archive placeholder is left to fill in
    assert issues == ({"workload.compose.archive"} if platform in ("hpvs", "ccrt") else set())
    run("contract-template", "--out", str(files / "out.yaml"))
    assert (files / "out.yaml").read_text() == run("contract-template").stdout


def test_usage_errors(files: Path) -> None:
    assert (
        "does not exist"
        in run(
            "encrypt", "--in", str(files / "nope.yaml"), "--cert", str(files / "enc.crt"), code=2
        ).stderr
    )
    run("encrypt", "--in", "x", "--no-sign", "--priv", str(files / "sign.pem"), code=2)
    run("validate-contract", "--in", str(files), code=2)
    run("base64", "--in", "x", "--format", "xml", code=2)
    run("encrypt-string", "--in", "x", "--cert", str(files / "enc.crt"), "--os", "zos", code=2)


def test_app_has_the_attestation_commands() -> None:
    names = {c.name for c in app.registered_commands}
    assert {"decrypt-attestation", "verify-attestation", "passphrase"} <= names
    assert {
        "base64",
        "base64-tgz",
        "contract-template",
        "encrypt",
        "encrypt-string",
        "decrypt",
        "sign-contract",
        "validate-contract",
        "verify-signature",
        "inspect",
    } <= names
