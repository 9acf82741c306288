"""base64, base64 JSON and deterministic base64-tgz values."""

from __future__ import annotations

import base64
import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from kyok.contract.sections import (
    decode_base64,
    encode_base64,
    encode_json,
    encode_tgz,
    list_tgz,
    make_tgz,
)
from kyok.contract.token import ContractError


def test_base64_and_json() -> None:
    assert encode_base64(b"sashwatk") == "c2FzaHdhdGs="  # contract-go's HpcrText vector
    indented = b'\n\t{\n\t\t"type": "env"\n\t}\n\t'
    assert (
        encode_json(indented) == "Cgl7CgkJInR5cGUiOiAiZW52IgoJfQoJ"
    )  # HpcrJson vector: bytes kept
    with pytest.raises(ContractError, match="not valid JSON"):
        encode_json(b"{not json")
    assert decode_base64("c2Fz\naHdh\r\ndGs=") == b"sashwatk"
    with pytest.raises(ContractError):
        decode_base64("***")


def _tree(root: Path) -> None:
    (root / "docker-compose.yaml").write_text("services:\n  app:\n    image: busybox\n")
    (root / "conf").mkdir()
    (root / "conf" / "b.conf").write_text("b\n")
    (root / "conf" / "a.conf").write_text("a\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)


def test_tgz_is_deterministic_and_ordered(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        _tree(root)
    os.utime(two / "docker-compose.yaml", (1, 1))  # a different mtime changes nothing
    assert make_tgz(one) == make_tgz(two)
    entries = list_tgz(encode_tgz(one))
    assert [e.name for e in entries] == [
        "conf",
        "conf/a.conf",
        "conf/b.conf",
        "docker-compose.yaml",
        "run.sh",
    ]
    assert [e.kind for e in entries] == ["dir", "file", "file", "file", "file"]
    assert entries[-1].mode == 0o755
    data = make_tgz(one)
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
                0,
                0,
                0,
                "",
                "",
            )
        assert (
            tar.extractfile("docker-compose.yaml").read()
            == b"services:\n  app:\n    image: busybox\n"
        )  # type: ignore[union-attr]


def test_tgz_reads_with_system_tar(tmp_path: Path) -> None:
    _tree(tmp_path)
    archive = tmp_path.parent / "a.tgz"
    archive.write_bytes(make_tgz(tmp_path))
    listed = subprocess.run(
        ["tar", "tzf", str(archive)], capture_output=True, check=True, text=True
    )
    assert "docker-compose.yaml" in listed.stdout.split()


def test_seed_tar_command_output_is_listed(tmp_path: Path) -> None:
    """``tar czvf - -C <COMPOSE_FOLDER> . | base64 -w0`` (seed 004 Example 3-4) gives ./names."""
    (tmp_path / "c").mkdir()
    _tree(tmp_path / "c")
    out = subprocess.run(
        f"tar czf - -C {tmp_path / 'c'} . | base64 -w0",
        shell=True,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    names = {e.name for e in list_tgz(out)}
    assert "./docker-compose.yaml" in names


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("kind: Pod\n")
    assert [(e.name, e.kind) for e in list_tgz(encode_tgz(path))] == [("pod.yaml", "file")]


def test_links_and_pipes_are_refused(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "run.sh")
    with pytest.raises(ContractError, match="symbolic link"):
        make_tgz(tmp_path)
    (tmp_path / "link").unlink()
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ContractError, match="pipe, socket or device"):
        make_tgz(tmp_path)
    with pytest.raises(ContractError, match="does not exist"):
        make_tgz(tmp_path / "missing")


def test_list_rejects_non_archives() -> None:
    with pytest.raises(ContractError, match="gzipped tar"):
        list_tgz(base64.b64encode(gzip.compress(b"not a tar" * 100)).decode())
    with pytest.raises(ContractError, match="gzipped tar"):
        list_tgz(base64.b64encode(b"plain").decode())
