"""``kyok encrypt``, ``kyok decrypt`` and ``kyok rewrap-file`` against the real server (a dev node
under uvicorn in a thread): rotate twice and rewrap a file in place, directories, pipes, no
overwrite without --force, failed decrypts that leave nothing behind, a suspended key, and a
deleted then purged key (crypto-shredding)."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from kyok.cli import envelope as cli_envelope
from kyok.cli import main
from kyok.client import envelope
from live_server import LiveServer, dev_server

SEG = "4KiB"  # small segments: a few hundred KiB make many of them


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(tmp_path_factory.mktemp("kyok-envelope-cli")) as server:
        yield server


class Kyok:
    """Runs ``kyok …`` in-process with its own config directory; stdin and stdout as bytes."""

    def __init__(self, config: Path) -> None:
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(config),
            "KYOK_URL": None,
            "KYOK_INSTANCE_ID": None,
            "KYOK_API_KEY": None,
            "KYOK_CACERT": None,
        }
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, input: bytes | str | None = b"", code: int = 0) -> Result:
        result = self.runner.invoke(
            main.app, [str(a) for a in args], input=input, env=self.env, catch_exceptions=False
        )
        assert result.exit_code == code, (args, result.stdout_bytes[:300], result.stderr)
        assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str | Path, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)


@pytest.fixture
def kyok(live: LiveServer, tmp_path: Path) -> Kyok:
    k = Kyok(tmp_path / "config")
    k("login", "--url", live.url, "--instance", live.instance_id, input=live.api_key + "\n")
    return k


@pytest.fixture
def key(kyok: Kyok) -> str:
    return str(kyok.json("key", "create", f"files-{uuid.uuid4().hex[:8]}")["id"])


def _header(path: Path) -> envelope.EnvelopeHeader:
    with open(path, "rb") as fh:
        return envelope.read_header(fh)


def _flat(text: str) -> str:
    """Rich folds long lines on stderr; the tests read messages as one line."""
    return " ".join(text.split())


def _leftovers(directory: Path, *expected: str) -> list[str]:
    """Names in ``directory`` other than ``expected`` (temporary files included)."""
    return sorted(set(os.listdir(directory)) - set(expected))


# ---------------------------------------------------------------- the "done when" test


def test_rotate_twice_rewrap_file_then_decrypt(kyok: Kyok, key: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    plain = tmp_path / "ledger.csv"
    plain.write_bytes(data)
    [rec] = kyok.json("encrypt", plain, "--key", key, "--segment-size", SEG, "--aad", "team:7")
    sealed = tmp_path / "ledger.csv.kyok"
    assert rec["output"] == str(sealed) and rec["keyId"] == key and rec["bytes"] == len(data)
    assert rec["segmentSize"] == 4096
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    blob = sealed.read_bytes()
    assert data[:64] not in blob
    before = _header(sealed)
    assert before.key_id == key and before.key_version_id == rec["keyVersionId"]
    segments = blob[before.header_size :]

    newest = None
    for _ in range(2):
        newest = kyok.json("key", "rotate", key)["keyVersion"]["id"]
    assert newest != before.key_version_id
    # decrypt still works, and says that the file could move to the newest version
    stale = kyok("decrypt", sealed, "-o", "-", "--aad", "team:7")
    assert stale.stdout_bytes == data and "kyok rewrap-file" in _flat(stale.stderr)

    [done] = kyok.json("rewrap-file", sealed, "--aad", "team:7")
    assert done == {
        "file": str(sealed),
        "rewrapped": True,
        "keyId": key,
        "keyVersionId": newest,
    }
    after = _header(sealed)
    assert after.key_version_id == newest and after.wrapped_dek != before.wrapped_dek
    # the data segments are the very same bytes: only the header changed
    assert sealed.read_bytes()[after.header_size :] == segments
    assert _leftovers(tmp_path, "config", plain.name, sealed.name) == []
    # a second rewrap finds nothing to do
    [again] = kyok.json("rewrap-file", sealed, "--aad", "team:7")
    assert again["rewrapped"] is False and again["keyVersionId"] == newest
    human = kyok("rewrap-file", sealed, "--aad", "team:7")
    assert "already on key version" in human.stderr

    plain.unlink()
    kyok("decrypt", sealed, "--aad", "team:8", code=3)  # wrong AAD: refused, nothing written
    assert not plain.exists()
    out = kyok("decrypt", sealed, "--aad", "team:7")
    assert plain.read_bytes() == data
    assert "decrypted" in out.stderr and str(plain) in _flat(out.stderr)


# ---------------------------------------------------------------- directories


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_directories_mirror_the_tree(kyok: Kyok, key: str, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "2026" / "may").mkdir(parents=True)
    (src / "empty").mkdir()
    files = {
        "a.jpg": os.urandom(5000),
        "2026/b.raw": os.urandom(70_000),
        "2026/may/c.txt": b"",
        "2026/may/old.kyok": b"not encrypted again",
    }
    for name, data in files.items():
        (src / name).write_bytes(data)

    kyok("encrypt", src, "-k", key, code=2)  # a directory needs -r
    vault = tmp_path / "vault"
    records = kyok.json("encrypt", "-r", src, "-k", key, "-o", vault, "--segment-size", SEG)
    assert sorted(r["input"] for r in records) == sorted(
        str(src / n) for n in files if not n.endswith(".kyok")
    )
    assert sorted(_tree(vault)) == ["2026/b.raw.kyok", "2026/may/c.txt.kyok", "a.jpg.kyok"]
    assert _tree(src) == files  # inputs untouched

    back = tmp_path / "back"
    kyok("decrypt", "-r", vault, "-o", back)
    assert _tree(back) == {n: d for n, d in files.items() if not n.endswith(".kyok")}

    # without -o the outputs go beside the inputs; decrypt -r takes only *.kyok
    kyok("encrypt", "-r", src, "-k", key, "--quiet")
    assert (src / "2026" / "may" / "c.txt.kyok").is_file()
    assert not (src / "2026" / "may" / "old.kyok.kyok").exists()
    (src / "a.jpg").unlink()
    kyok("decrypt", "-r", src, code=1)  # b.raw and c.txt exist: nothing is overwritten
    assert not (src / "a.jpg").exists()
    # old.kyok is named like an envelope but is not one: the files before it are done, then
    # the run stops there, saying so
    res = kyok("decrypt", "-r", src, "--force", "--quiet", code=3)
    assert "old.kyok" in res.stderr and "not a kyok envelope" in _flat(res.stderr)
    assert "3 files before this one finished" in _flat(res.stderr)
    assert (src / "a.jpg").read_bytes() == files["a.jpg"]
    assert not (src / "2026" / "may" / "old").exists()


def test_several_files_into_a_directory(kyok: Kyok, key: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"alpha")
    b.write_bytes(b"bravo")
    out = tmp_path / "out"
    kyok("encrypt", a, b, "-k", key, "-o", out)  # several inputs: -o is a directory
    assert sorted(os.listdir(out)) == ["a.bin.kyok", "b.bin.kyok"]
    dec = tmp_path / "dec"
    kyok("decrypt", out / "a.bin.kyok", out / "b.bin.kyok", "-o", f"{dec}{os.sep}")
    assert (dec / "a.bin").read_bytes() == b"alpha" and (dec / "b.bin").read_bytes() == b"bravo"
    # one file and an explicit output name
    kyok("decrypt", out / "a.bin.kyok", "-o", tmp_path / "alpha.txt")
    assert (tmp_path / "alpha.txt").read_bytes() == b"alpha"
    # no default name for a file that does not end in .kyok
    (tmp_path / "x.enc").write_bytes((out / "a.bin.kyok").read_bytes())
    res = kyok("decrypt", tmp_path / "x.enc", code=2)
    assert "-o" in res.stderr


# ---------------------------------------------------------------- pipes


def test_pipes(kyok: Kyok, key: str, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    sealed = kyok("encrypt", "-", "-k", key, "--segment-size", SEG, input=data).stdout_bytes
    assert sealed[:8] != data[:8] and len(sealed) > len(data)
    assert kyok("decrypt", "-", input=sealed).stdout_bytes == data
    # file → stdout and stdin → file
    f = tmp_path / "f.kyok"
    f.write_bytes(sealed)
    assert kyok("decrypt", f, "-o", "-").stdout_bytes == data
    target = tmp_path / "from-stdin.bin"
    kyok("decrypt", "-", "-o", target, input=sealed)
    assert target.read_bytes() == data
    assert _leftovers(tmp_path, "config", "f.kyok", "from-stdin.bin") == []
    kyok("encrypt", "-", "-k", key, "-o", tmp_path / "g.kyok", input=b"stdin to a file")
    assert kyok("decrypt", tmp_path / "g.kyok", "-o", "-").stdout_bytes == b"stdin to a file"
    # usage errors
    kyok("encrypt", "-", tmp_path / "g.kyok", "-k", key, code=2)  # '-' only alone
    kyok("decrypt", "-", "--json", input=sealed, code=2)  # JSON and data cannot share stdout


def test_terminals(kyok: Kyok, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(20_000)  # five 4 KiB segments
    sealed = tmp_path / "s.kyok"
    kyok("encrypt", "-", "-k", key, "-o", sealed, "--segment-size", SEG, input=data)
    blob = bytearray(sealed.read_bytes())
    blob[-1] ^= 1  # the final segment is damaged, the first four are fine
    # on a pipe, verified segments stream out before the damage is found: the exit status says
    piped = kyok("decrypt", "-", input=bytes(blob), code=3)
    assert piped.stdout_bytes == data[: 4 * 4096]

    monkeypatch.setattr(cli_envelope, "_stdout_is_terminal", lambda: True)
    res = kyok("encrypt", "-", "-k", key, input=b"x", code=2)
    assert "terminal" in res.stderr and res.stdout_bytes == b""
    # plaintext to a terminal: printed once the whole file checked out, and nothing otherwise
    assert kyok("decrypt", sealed, "-o", "-").stdout_bytes == data
    res = kyok("decrypt", "-", input=bytes(blob), code=3)
    assert res.stdout_bytes == b""
    monkeypatch.setattr(cli_envelope, "TERMINAL_LIMIT", 10_000)
    res = kyok("decrypt", sealed, "-o", "-", code=1)
    assert res.stdout_bytes == b"" and "-o FILE" in _flat(res.stderr)
    monkeypatch.setattr(cli_envelope, "_stdin_is_terminal", lambda: True)
    kyok("decrypt", "-", code=2)


# ---------------------------------------------------------------- no overwrite, no half files


def test_no_overwrite_without_force(kyok: Kyok, key: str, tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"first")
    kyok("encrypt", plain, "-k", key)
    sealed = tmp_path / "notes.txt.kyok"
    first = sealed.read_bytes()
    plain.write_bytes(b"second")
    res = kyok("encrypt", plain, "-k", key, code=1)
    assert "already exists" in res.stderr and "--force" in res.stderr
    assert sealed.read_bytes() == first
    kyok("encrypt", plain, "-k", key, "--force")
    assert sealed.read_bytes() != first
    # decrypt onto the existing plaintext: refused, then allowed with --force
    plain.write_bytes(b"edited since")
    kyok("decrypt", sealed, code=1)
    assert plain.read_bytes() == b"edited since"
    kyok("decrypt", sealed, "--force")
    assert plain.read_bytes() == b"second"
    kyok("decrypt", sealed, "-o", sealed, "--force", code=2)  # never onto its own input
    assert _leftovers(tmp_path, "config", "notes.txt", "notes.txt.kyok") == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "garbage"])
def test_failed_decrypt_leaves_no_output(kyok: Kyok, key: str, tmp_path: Path, damage: str) -> None:
    data = os.urandom(40_000)
    plain = tmp_path / "db.dump"
    plain.write_bytes(data)
    kyok("encrypt", plain, "-k", key, "--segment-size", SEG)
    sealed = tmp_path / "db.dump.kyok"
    blob = bytearray(sealed.read_bytes())
    size = _header(sealed).header_size
    if damage == "flip":
        blob[size + 5 * 4096 + 100] ^= 0x40  # inside the sixth segment of ten
    elif damage == "truncate":
        del blob[size + 3 * 4096 :]
    elif damage == "extend":
        blob += blob[size : size + 4096 + 32]
    else:
        blob = bytearray(b"this is not a kyok envelope at all" * 10)
    sealed.write_bytes(bytes(blob))
    plain.unlink()
    res = kyok("decrypt", sealed, code=3)
    assert "error:" in res.stderr and "no output" in _flat(res.stderr)
    assert _leftovers(tmp_path, "config", sealed.name) == []
    # stdin to a named file: the same
    kyok("decrypt", "-", "-o", plain, input=bytes(blob), code=3)
    assert _leftovers(tmp_path, "config", sealed.name) == []


# ---------------------------------------------------------------- control through the key


def test_suspended_key_then_enabled(kyok: Kyok, key: str, tmp_path: Path) -> None:
    plain = tmp_path / "payroll.xlsx"
    plain.write_bytes(b"salaries")
    kyok("encrypt", plain, "-k", key)
    plain.unlink()
    sealed = tmp_path / "payroll.xlsx.kyok"
    assert kyok.json("key", "disable", key)["state"] == 2
    res = kyok("decrypt", sealed, code=1)
    assert f"root key {key} is suspended; enable it and retry" in _flat(res.stderr)
    assert not plain.exists()
    res = kyok("encrypt", tmp_path / "payroll.xlsx.kyok", "-k", key, "-o", tmp_path / "x", code=1)
    assert "is suspended" in _flat(res.stderr)
    assert kyok.json("key", "enable", key)["state"] == 1
    kyok("decrypt", sealed)
    assert plain.read_bytes() == b"salaries"


def test_deleted_then_purged_key_is_crypto_shredding(kyok: Kyok, key: str, tmp_path: Path) -> None:
    plain = tmp_path / "diary.txt"
    plain.write_bytes(b"dear diary")
    kyok("encrypt", plain, "-k", key)
    plain.unlink()
    sealed = tmp_path / "diary.txt.kyok"
    kyok("key", "delete", key)
    res = _flat(kyok("decrypt", sealed, code=1).stderr)
    assert f"root key {key} was deleted" in res and "kyok key restore" in res
    kyok("key", "purge", key, "--yes")
    res = _flat(kyok("decrypt", sealed, code=5).stderr)
    assert "unrecoverable" in res and "crypto-shredding" in res and key in res
    assert not plain.exists()
    res = _flat(kyok("rewrap-file", sealed, code=5).stderr)
    assert "crypto-shredding" in res


def test_unknown_key_and_bad_options(kyok: Kyok, tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_bytes(b"a")
    res = kyok("encrypt", plain, "-k", "no-such-alias", code=5)
    assert "no-such-alias" in res.stderr
    assert not (tmp_path / "a.txt.kyok").exists()
    kyok("encrypt", plain, "-k", "x", "--segment-size", "1KiB", code=2)
    kyok("encrypt", plain, "-k", "x", "--segment-size", "lots", code=2)
    kyok("encrypt", tmp_path / "missing", "-k", "x", code=2)
    kyok("rewrap-file", "-", code=2)
    res = kyok("encrypt", plain, "-k", "x", "-o", plain / "in" / "a.kyok", code=1)
    assert "not a directory" in _flat(res.stderr)


# ---------------------------------------------------------------- pieces


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=4 << 10, max_value=64 << 20))
def test_parse_size_reads_what_it_is_given(n: int) -> None:
    assert cli_envelope.parse_size(str(n)) == n
    if n % 1024 == 0:
        assert cli_envelope.parse_size(f"{n // 1024}KiB") == n
    if n % (1 << 20) == 0:
        assert cli_envelope.parse_size(f"{n >> 20} MiB") == n
        assert cli_envelope.parse_size(f"{n >> 20}m") == n


@pytest.mark.parametrize("bad", ["", "1.5MiB", "-4KiB", "4 GiB", "4095", "65MiB", "12 parsecs"])
def test_parse_size_refuses(bad: str) -> None:
    with pytest.raises(typer.BadParameter):
        cli_envelope.parse_size(bad)


def test_progress_only_for_large_files_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    big = cli_envelope._Job(
        tmp_path / "big", tmp_path / "big.kyok", cli_envelope.PROGRESS_THRESHOLD
    )
    small = cli_envelope._Job(tmp_path / "s", tmp_path / "s.kyok", 10)
    piped = cli_envelope._Job(None, tmp_path / "p.kyok", None)
    monkeypatch.setattr(cli_envelope, "_stderr_is_terminal", lambda: False)
    with cli_envelope._progress(big, "encrypting", quiet=False) as cb:
        assert cb is None
    monkeypatch.setattr(cli_envelope, "_stderr_is_terminal", lambda: True)
    for job, quiet in ((small, False), (piped, False), (big, True)):
        with cli_envelope._progress(job, "encrypting", quiet=quiet) as cb:
            assert cb is None
    with cli_envelope._progress(big, "encrypting", quiet=False) as cb:
        assert cb is not None
        cb(1 << 20)
