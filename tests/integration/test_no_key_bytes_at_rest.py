"""Scan everything a node writes for the raw bytes of the master key and of every root key.

The only place a secret may appear is the dev seal file, by design (docs/operations.md): with the
``shares`` seal nothing at all may contain them. Each secret is looked for raw, in hex and in
base64, in the data directory's files and (PostgreSQL) in a dump of every table.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ceremony_kit import ceremony, imprint, make_custodians
from kyok.auth.principals import Principal
from kyok.crypto.xorsplit import xor_bytes
from kyok.unit import blob as blobfmt
from kyok.unit.blob import BlobRef

from .conftest import OpenNode

ALICE = Principal("alice@example.com")


def encodings(secret: bytes) -> list[bytes]:
    b64 = base64.b64encode(secret)
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        b64,
        b64.rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def dump_database(node_url: str, node: object) -> bytes:
    """Every row of every table, as the database sees it (covers PostgreSQL, where files are elsewhere)."""
    from kyok.bootstrap import Node

    assert isinstance(node, Node)
    out = bytearray()
    with node.store.engine.connect() as conn:
        from kyok.store.sql.tables import metadata

        for table in metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                for value in row:
                    out += value if isinstance(value, bytes | memoryview) else str(value).encode()
                    out += b"\x00"
    return bytes(out)


@pytest.mark.parametrize("seal", ["shares", "dev"])
def test_no_master_or_root_key_bytes_at_rest(
    node_factory: OpenNode, store_url: str, tmp_path: Path, seal: str
) -> None:
    node = node_factory()
    instance = node.service.create_instance(ALICE, "scan", seal=seal)
    unit = node.units.for_instance(instance.id)
    custodians = make_custodians(3)
    if seal == "shares":
        imprint(unit, custodians, 2, 2)
        ceremony(unit, custodians, "shamir", 2, custodians[:2])
        master_key = xor_bytes(*(c.part.secret() for c in custodians))
    else:
        # the dev seal's one documented exception: its master key sits in dev-seal.json
        from kyok.unit.seal import DevSeal

        recovered = DevSeal(tmp_path / "data").recover(unit.unit_id, 1)
        assert recovered is not None
        master_key = recovered

    imported = [os.urandom(n) for n in (16, 24, 32)]
    keys = [node.service.create_key(ALICE, instance.id, f"gen-{i}") for i in range(5)]
    keys += [
        node.service.create_key(ALICE, instance.id, f"imp-{i}", material=m)
        for i, m in enumerate(imported)
    ]
    for k in keys[:3]:
        node.service.rotate(ALICE, instance.id, k.record.id)
    for k in keys:
        node.service.wrap(instance.id, k.record.id, os.urandom(32))

    unit.secret_hmac("probe", b"")  # makes the unit's own secret (a sealed blob) exist
    # Recover every root key version's material from its blob with the known master key.
    kek = blobfmt.kek_for(master_key)
    secrets: dict[str, bytes] = {"master key": master_key}
    if seal == "shares":
        for c in custodians:
            secrets[f"part of {c.name}"] = c.part.secret()
    with node.store.uow() as uow:
        for k in keys:
            versions = uow.versions.list_for_key(instance.id, k.record.id, 100, 0)
            for version in versions:
                row = uow.blobs.get(instance.id, version.id)
                assert row is not None
                ref = BlobRef(row.instance_id, row.owner_id, row.id, row.purpose)
                secrets[f"{k.record.name} v{version.number}"] = blobfmt.open_(kek, ref, row.data)
    secrets["unit secret"] = unit._unit_secret()  # test-only peek: it must not be at rest either
    assert len(secrets) == 1 + (3 if seal == "shares" else 0) + 8 + 3 + 1
    assert set(imported) <= set(secrets.values())

    haystacks: dict[str, bytes] = {}
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes()
    if store_url.startswith("sqlite"):
        db = Path(store_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = Path(str(db) + suffix)
            if p.exists():
                haystacks[str(p)] = p.read_bytes()
    haystacks["database rows"] = dump_database(store_url, node)
    if store_url.startswith("postgresql") and shutil.which("pg_dump"):
        with node.store.engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = make_url(store_url)
        libpq = f"postgresql://{url.username}@{url.host}:{url.port or 5432}/{url.database}"
        env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
        args = ["pg_dump", "--data-only", "--schema", schema, libpq]
        haystacks["pg_dump"] = subprocess.run(args, capture_output=True, check=True, env=env).stdout
        assert b"COPY" in haystacks["pg_dump"]
    assert len(haystacks) >= 2

    seal_file = str(tmp_path / "data" / "dev-seal.json")
    assert (seal_file in haystacks) == (seal == "dev")
    for name, secret in secrets.items():
        for where, data in haystacks.items():
            if where == seal_file and name == "master key":
                continue  # the documented dev-seal exception
            for form in encodings(secret):
                assert form not in data, f"{name} found in {where}"
