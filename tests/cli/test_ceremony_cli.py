"""A whole key ceremony through the CLI with three custodians, and every way it should refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kyok.cli.main import app
from kyok.crypto.mkvp import mkvp as compute_mkvp
from kyok.crypto.xorsplit import xor_bytes
from kyok.unit.keypart import read_part_file

PW = "custodian passphrase"
NAMES = ("alice", "bob", "carol")


class Kyok:
    """Runs `kyok ...` in-process against one data directory."""

    def __init__(self, data: Path, files: Path) -> None:
        self.data = data
        self.files = files
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = self.runner.invoke(
            app,
            list(args),
            input=input if input is not None else (PW + "\n") * 20,
            env={"KYOK_DATA_DIR": str(self.data)},
            catch_exceptions=False,
        )
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)

    def f(self, name: str) -> str:
        return str(self.files / name)

    def persisted(self) -> dict[str, Any]:
        """The unit's persisted state (what a refused command must not change)."""
        status = self.json("ceremony", "status")
        return {
            k: status[k]
            for k in (
                "seq",
                "admins",
                "signature_threshold",
                "revocation_threshold",
                "transcript",
                "imprint",
            )
        } | {"registers": [r for r in status["registers"] if r["register"] != "new"]}


@pytest.fixture
def kyok(tmp_path: Path) -> Kyok:
    files = tmp_path / "custodians"
    files.mkdir()
    k = Kyok(tmp_path / "data", files)
    for name in NAMES:  # each custodian, on their own machine
        made = k.json("ceremony", "sigkey", "create", k.f(f"{name}.pem"))
        assert made["algorithm"] == "ed25519" and Path(made["public_key"]).exists()
        part = k.json("ceremony", "keypart", "create", k.f(f"{name}.kpart"), "--label", name)
        assert len(part["kcv"]) == 16
    return k


def custodian(k: Kyok, name: str, part: str | None = None) -> list[str]:
    return ["--custodian", f"{part or k.f(name + '.kpart')}:{k.f(name + '.pem')}"]


def the_mkvp(k: Kyok) -> str:
    parts = [read_part_file(Path(k.f(f"{n}.kpart")), PW.encode()).secret() for n in NAMES]
    return compute_mkvp(xor_bytes(*parts))


def assert_refused(k: Kyok, message: str, *args: str, input: str | None = None) -> Result:
    before = k.persisted()
    result = k(*args, input=input, ok=False)
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert k.persisted() == before
    return result


def imprint(k: Kyok) -> str:
    instance = k.json("ceremony", "init", "--seal", "shares")["instance_id"]
    k("ceremony", "admin", "add", "--name", "alice", "--pubkey", k.f("alice.pub.pem"))
    for name in NAMES[1:]:
        k(
            "ceremony",
            "admin",
            "add",
            "--name",
            name,
            "--pubkey",
            k.f(f"{name}.pub.pem"),
            "--sign",
            k.f("alice.pem"),
        )
    k("ceremony", "thresholds", "--signature", "2", "--revocation", "2", "--sign", k.f("alice.pem"))
    return str(instance)


def create_args(k: Kyok, scheme: str) -> list[str]:
    args = ["ceremony", "master-key", "create", "--scheme", scheme]
    if scheme == "shamir":
        args += ["--threshold", "2"]
    for name in NAMES:
        args += custodian(k, name)
    return [*args, "--sign", k.f("alice.pem"), "--sign", k.f("bob.pem")]


@pytest.mark.parametrize("scheme", ["shamir", "xor"])
def test_three_custodian_ceremony(kyok: Kyok, scheme: str) -> None:
    k = kyok
    imprint(k)
    status = k.json("ceremony", "status")
    assert [a["name"] for a in status["admins"]] == list(NAMES) and not status["imprint"]

    mkvp = the_mkvp(k)
    created = k.json(*create_args(k, scheme), "--expect-mkvp", mkvp)
    assert created["mkvp"] == mkvp and created["activated"] and created["epoch"] == 1

    status = k.json("ceremony", "status")  # a new process: the shares seal starts sealed
    current = next(r for r in status["registers"] if r["register"] == "current")
    assert current["mkvp"] == mkvp and status["sealed"] is True and not current["in_memory"]

    two = [*custodian(k, "bob"), *custodian(k, "carol")]
    result = k("ceremony", "unseal", *two, "--json", ok=False)
    if scheme == "shamir":
        assert result.exit_code == 0 and json.loads(result.stdout)["sealed"] is False
    else:
        assert result.exit_code == 4 and json.loads(result.stdout)["sealed"] is True
        assert (
            json.loads(k("ceremony", "unseal", *two, *custodian(k, "alice"), "--json").stdout)[
                "sealed"
            ]
            is False
        )

    k("ceremony", "transcript", "--out", k.f("transcript.jsonl"))
    first_admin = status["admins"][0]["id"]
    verified = k.json(
        "ceremony",
        "verify",
        k.f("transcript.jsonl"),
        "--unit-id",
        status["unit_id"],
        "--first-admin",
        first_admin,
    )
    current_record = next(r for r in verified["state"]["registers"] if r["register"] == "current")
    assert verified["ok"] and current_record["mkvp"] == mkvp


def test_refusals_change_nothing(kyok: Kyok) -> None:
    k = kyok
    imprint(k)
    k.json("ceremony", "sigkey", "create", k.f("dave.pem"))
    dave_pub = k.f("dave.pub.pem")
    # unsigned and under-signed commands
    assert_refused(k, "needs 2", "ceremony", "admin", "add", "--name", "dave", "--pubkey", dave_pub)
    assert_refused(
        k,
        "needs 2",
        "ceremony",
        "admin",
        "add",
        "--name",
        "dave",
        "--pubkey",
        dave_pub,
        "--sign",
        k.f("alice.pem"),
    )
    assert_refused(
        k,
        "needs 2",
        "ceremony",
        "thresholds",
        "--signature",
        "1",
        "--revocation",
        "1",
        "--sign",
        k.f("bob.pem"),
    )
    # a signature by someone who is not an administrator does not count
    assert_refused(
        k,
        "unknown administrator",
        "ceremony",
        "thresholds",
        "--signature",
        "1",
        "--revocation",
        "1",
        "--sign",
        k.f("bob.pem"),
        "--sign",
        k.f("dave.pem"),
    )
    # a replayed command: prepared, signed elsewhere, submitted, then submitted again
    cmd = k.f("thresholds.json")
    k("ceremony", "thresholds", "--signature", "2", "--revocation", "3", "--out", cmd)
    k("ceremony", "sign", cmd, "--sigkey", k.f("alice.pem"))
    k("ceremony", "sign", cmd, "--sigkey", k.f("carol.pem"))
    k("ceremony", "submit", cmd)
    assert k.json("ceremony", "status")["revocation_threshold"] == 3
    assert_refused(k, "sequence number", "ceremony", "submit", cmd)
    # an altered command file
    altered = json.loads(Path(cmd).read_text())
    altered["args"]["revocation"] = 1
    altered["seq"] = k.json("ceremony", "status")["seq"]
    Path(cmd).write_text(json.dumps(altered))
    assert_refused(k, "does not verify", "ceremony", "submit", cmd)

    base = create_args(k, "shamir")
    # a wrong MKVP
    assert_refused(k, "not the expected", *base, "--expect-mkvp", "0" * 32)
    # a corrupted part file
    damaged = Path(k.f("carol-damaged.kpart"))
    obj = json.loads(Path(k.f("carol.kpart")).read_text())
    obj["ciphertext"] = obj["ciphertext"][::-1]
    damaged.write_text(json.dumps(obj))
    corrupt_args = [a.replace(k.f("carol.kpart"), str(damaged)) for a in base]
    assert_refused(k, "damaged", *corrupt_args, "--yes")
    # a wrong passphrase (the third file asked for is bob's part)
    wrong = f"{PW}\n{PW}\nnot the passphrase\n" + (PW + "\n") * 10
    assert_refused(k, "wrong passphrase", *base, "--yes", input=wrong)
    # nothing committed without a confirmed MKVP when nobody is at a terminal
    assert_refused(k, "confirm the MKVP", *base)
    # a commit that is signed by one administrator only
    one_signer = [*base[: base.index("--sign")], "--sign", k.f("alice.pem")]
    assert_refused(k, "needs 2", *one_signer, "--yes")

    # and after all that, the real ceremony still works
    assert k.json(*base, "--yes")["activated"]


def test_custodian_files_refuse_bad_input(kyok: Kyok) -> None:
    k = kyok
    r = k("ceremony", "keypart", "check", k.f("alice.kpart"), input="wrong passphrase\n", ok=False)
    assert r.exit_code == 1 and "wrong passphrase" in r.output
    assert k.json("ceremony", "keypart", "check", k.f("alice.kpart"))["label"] == "alice"
    r = k("ceremony", "keypart", "create", k.f("alice.kpart"), ok=False)
    assert r.exit_code == 1 and "exists" in r.output
    r = k("ceremony", "sigkey", "create", k.f("x.pem"), input="short\n", ok=False)
    assert r.exit_code == 1 and "8 characters" in r.output
    shown = k.json("ceremony", "sigkey", "show", k.f("alice.pub.pem"))
    assert shown == k.json("ceremony", "sigkey", "show", k.f("alice.pem")) | {
        "file": k.f("alice.pub.pem")
    }


def test_verify_names_the_broken_entry(kyok: Kyok) -> None:
    k = kyok
    imprint(k)
    k("ceremony", "transcript", "--out", k.f("t.jsonl"))
    lines = Path(k.f("t.jsonl")).read_text().splitlines()
    entry = json.loads(lines[2])
    entry["body"]["args"]["name"] = "mallory"
    lines[2] = json.dumps(entry)
    Path(k.f("t.jsonl")).write_text("\n".join(lines) + "\n")
    r = k("ceremony", "verify", k.f("t.jsonl"), ok=False)
    assert r.exit_code == 3 and "entry 2" in r.output
    del lines[2]
    Path(k.f("t.jsonl")).write_text("\n".join(lines) + "\n")
    r = k("ceremony", "verify", k.f("t.jsonl"), "--json", ok=False)
    assert r.exit_code == 3 and json.loads(r.stdout)["broken_at"] == 2
