"""Master-key rotation over 100,000 key versions survives a kill -9 and resumes.

The node, the keys and the rotation's start are set up in this process; the re-encryption runs
in a real ``kyok ceremony reencrypt`` subprocess (shares seal: the custodians' parts for both
master keys come through --custodian, passphrases on stdin), which is killed with SIGKILL part
way through. A second run finishes it. Then every blob has moved to the new master key with its
material unchanged, and every key unwraps a DEK wrapped before the rotation.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert

from ceremony_kit import Custodian, ceremony, imprint, make_custodians
from kyok.auth.principals import Principal
from kyok.bootstrap import open_node
from kyok.clock import FakeClock
from kyok.crypto.kdf import ScryptParams
from kyok.crypto.xorsplit import xor_bytes
from kyok.settings import Settings
from kyok.store.sql import tables
from kyok.unit import blob as blobfmt
from kyok.unit.blob import PURPOSE_ROOT_KEY, BlobRef
from kyok.unit.keypart import KeyPart, write_part_file

pytestmark = pytest.mark.slow

KEYS = 25_000
VERSIONS = 4  # 100,000 key versions in all
PW = "rotation passphrase"
ALICE = Principal("alice@example.com")


def write_custodian_files(directory: Path, tag: str, custodians: list[Custodian]) -> list[str]:
    """Each custodian's part file and signature-key file, as they would bring them."""
    specs = []
    for c in custodians:
        part_path = directory / f"{c.name}-{tag}.kpart"
        write_part_file(part_path, c.part, PW.encode(), params=ScryptParams(log2_n=10))
        key_path = directory / f"{c.name}.pem"
        if not key_path.exists():
            key_path.write_bytes(c.key.to_encrypted_pem(PW.encode(), ScryptParams(log2_n=10)))
        specs += ["--custodian", f"{part_path}:{key_path}"]
    return specs


def blobs_at(db: Path, epoch: int) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(
            conn.execute("SELECT count(*) FROM blobs WHERE mk_epoch = ?", (epoch,)).fetchone()[0]
        )
    finally:
        conn.close()


def test_rotation_of_100k_versions_survives_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    clock = FakeClock()
    node = open_node(settings, clock=clock)
    instance = node.service.create_instance(ALICE, "rotation", seal="shares")
    unit = node.units.for_instance(instance.id)
    old = make_custodians(2)
    imprint(unit, old, 2, 2)
    ceremony(unit, old, "xor", 2, old)
    old_mk = xor_bytes(*(c.part.secret() for c in old))

    # 25,000 root keys with 4 versions each, sealed by the unit, bulk-loaded.
    now = clock.now()
    key_rows, version_rows, blob_rows = [], [], []
    materials: dict[str, bytes] = {}
    old_kek = blobfmt.kek_for(old_mk)
    for k in range(KEYS):
        key_id = str(uuid.uuid4())
        version_ids = [str(uuid.uuid4()) for _ in range(VERSIONS)]
        for n, vid in enumerate(version_ids, 1):
            ref = BlobRef(instance.id, key_id, vid, PURPOSE_ROOT_KEY)
            sealed = unit.generate_blob(ref)
            materials[vid] = blobfmt.open_(old_kek, ref, sealed.data)
            version_rows.append(
                {
                    "instance_id": instance.id,
                    "id": vid,
                    "key_id": key_id,
                    "number": n,
                    "created_at": now,
                }
            )
            blob_rows.append(
                {
                    "instance_id": instance.id,
                    "id": vid,
                    "owner_id": key_id,
                    "purpose": PURPOSE_ROOT_KEY,
                    "mk_epoch": sealed.epoch,
                    "data": sealed.data,
                }
            )
        key_rows.append(
            {
                "instance_id": instance.id,
                "id": key_id,
                "name": f"key-{k:05d}",
                "description": None,
                "extractable": False,
                "imported": False,
                "state": 1,
                "key_ring_id": "default",
                "tags": (),
                "created_at": now,
                "created_by": ALICE.id,
                "updated_at": now,
                "last_action_at": now,
                "current_version_id": version_ids[-1],
                "version_count": VERSIONS,
                "bit_length": 256,
                "last_rotated_at": now,
                "expires_at": None,
                "deleted_at": None,
                "deleted_by": None,
                "state_reason": None,
                "row_version": 1,
            }
        )
    with node.store.engine.begin() as conn:
        conn.execute(insert(tables.keys), key_rows)
        conn.execute(insert(tables.key_versions), version_rows)
        conn.execute(insert(tables.blobs), blob_rows)
    wrapped = {
        row["id"]: node.service.wrap(instance.id, row["id"], None, ["before"]) for row in key_rows
    }

    # A new master key from new parts: activation starts the rotation; re-encryption is left to the CLI.
    new = [Custodian(c.name, c.key, KeyPart.generate(c.name)) for c in old]
    ceremony(unit, new, "xor", 2, old)
    new_mk = xor_bytes(*(c.part.secret() for c in new))
    assert unit.state.previous is not None and unit.rotation_remaining() == KEYS * VERSIONS
    node.close()

    db = data / "kyok.db"
    specs = write_custodian_files(tmp_path, "old", old) + write_custodian_files(
        tmp_path, "new", new
    )
    command = [
        sys.executable,
        "-m",
        "kyok.cli.main",
        "ceremony",
        "reencrypt",
        "--data-dir",
        str(data),
        "--batch-size",
        "200",
        "--json",
        *specs,
    ]
    stdin = (PW + "\n") * 16
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    deadline = time.monotonic() + 120
    moved = 0
    while time.monotonic() < deadline and proc.poll() is None:
        moved = blobs_at(db, 2)
        if moved >= KEYS * VERSIONS // 10:
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        f"re-encryption ended before it could be killed: {proc.stderr.read()!r}"
    )  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    moved = blobs_at(db, 2)
    assert 0 < moved < KEYS * VERSIONS, moved
    assert blobs_at(db, 1) + moved == KEYS * VERSIONS  # every blob is under exactly one key

    done = subprocess.run(command, input=stdin.encode(), capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["retired"] is True and report["reencrypted"] == KEYS * VERSIONS - moved
    assert blobs_at(db, 1) == 0 and blobs_at(db, 2) == KEYS * VERSIONS

    # Every version's material is intact under the new master key, and every key still unwraps.
    new_kek = blobfmt.kek_for(new_mk)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT instance_id, owner_id, id, purpose, data FROM blobs").fetchall()
    assert len(rows) == KEYS * VERSIONS
    for instance_id, owner_id, blob_id, purpose, data_ in rows:
        assert blobfmt.epoch_of(data_) == 2
        assert (
            blobfmt.open_(new_kek, BlobRef(instance_id, owner_id, blob_id, purpose), data_)
            == materials[blob_id]
        )

    node = open_node(settings, clock=clock)
    try:
        unit = node.units.for_instance(instance.id)
        assert unit.sealed and unit.state.previous is None
        from ceremony_kit import load

        for c in new:
            load(unit, c, "current")
        for key_id, result in wrapped.items():
            assert (
                node.service.unwrap(instance.id, key_id, result.ciphertext, ["before"]).plaintext
                == result.dek
            )
        transcript = [e.body() for e in unit.transcript()]
        assert any(b.get("event") == "rotation_complete" for b in transcript)
    finally:
        node.close()
