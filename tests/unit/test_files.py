"""Custodian files: key parts (scrypt + AEAD) and administrator signature keys (PKCS#8 PEM)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.crypto.kdf import ScryptParams
from kyok.unit.errors import BadKeyPart
from kyok.unit.keypart import (
    KeyPart,
    decrypt_part,
    encrypt_part,
    peek,
    read_part_file,
    write_part_file,
)
from kyok.unit.sigkey import (
    BadSignatureKey,
    create_sigkey,
    public_path_for,
    read_public_key,
    read_sigkey,
)

FAST = ScryptParams(log2_n=10)
PASS = b"correct horse battery"


def test_part_round_trip_and_permissions(tmp_path: Path) -> None:
    part = KeyPart.generate("alice")
    path = tmp_path / "alice.kpart"
    write_part_file(path, part, PASS, params=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = read_part_file(path, PASS)
    assert back.secret() == part.secret() and back.kcv == part.kcv and back.label == "alice"
    assert peek(path.read_text())["kcv"] == part.kcv
    with pytest.raises(FileExistsError):
        write_part_file(path, part, PASS, params=FAST)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_wrong_passphrase_and_damage_are_told_apart() -> None:
    text = encrypt_part(KeyPart.generate("bob"), PASS, params=FAST)
    with pytest.raises(BadKeyPart, match="wrong passphrase"):
        decrypt_part(text, b"not the passphrase")
    obj = json.loads(text)
    obj["ciphertext"] = obj["ciphertext"][:-4] + (
        "AAAA" if not obj["ciphertext"].endswith("AAAA") else "BBBB"
    )
    with pytest.raises(BadKeyPart, match="damaged"):
        decrypt_part(json.dumps(obj), PASS)
    with pytest.raises(BadKeyPart, match="damaged"):
        decrypt_part(text[: len(text) // 2], PASS)
    with pytest.raises(BadKeyPart, match="not a kyok key-part"):
        decrypt_part(json.dumps({"format": "other"}), PASS)


def test_forged_checksum_still_fails_authentication() -> None:
    """Recomputing the checksum after changing the label or KCV does not get past the AEAD."""
    import hashlib

    from kyok.crypto.encoding import canonical_json

    obj = json.loads(encrypt_part(KeyPart.generate("carol"), PASS, params=FAST))
    obj.pop("checksum")
    obj["label"] = "mallory"
    obj["checksum"] = hashlib.sha256(canonical_json(obj)).hexdigest()
    with pytest.raises(BadKeyPart):
        decrypt_part(json.dumps(obj), PASS)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_edit_is_refused(data: st.DataObject) -> None:
    text = encrypt_part(KeyPart(b"\x11" * 32, "x"), PASS, params=FAST)
    pos = data.draw(st.integers(0, len(text) - 1))
    ch = data.draw(st.characters(codec="ascii").filter(lambda c: c != text[pos]))
    edited = text[:pos] + ch + text[pos + 1 :]
    try:
        part = decrypt_part(edited, PASS)
    except BadKeyPart:
        return
    # only JSON layout (whitespace) changed: the same part comes out
    assert part.secret() == b"\x11" * 32


def test_part_repr_hides_the_secret() -> None:
    part = KeyPart(b"\xab" * 32, "x")
    assert "ab" * 4 not in repr(part) and "redacted" in repr(part)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(part)


def test_short_passphrase_refused() -> None:
    with pytest.raises(ValueError):
        encrypt_part(KeyPart.generate(), b"short", params=FAST)


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ml-dsa-65"])
def test_sigkey_files(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "alice.pem"
    public = create_sigkey(path, PASS, algorithm)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert public_path_for(path) == tmp_path / "alice.pub.pem"
    assert read_public_key(public_path_for(path)) == public
    key = read_sigkey(path, PASS)
    assert key.verifying_key() == public
    with pytest.raises(BadSignatureKey, match="wrong passphrase"):
        read_sigkey(path, b"wrong passphrase!")
    with pytest.raises(BadSignatureKey):
        read_sigkey(public_path_for(path), PASS)
    with pytest.raises(FileExistsError):
        create_sigkey(path, PASS, algorithm)


def test_sigkey_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadSignatureKey):
        create_sigkey(tmp_path / "a.pem", PASS, "rsa")
    with pytest.raises(BadSignatureKey):
        create_sigkey(tmp_path / "b.pem", b"short", "ed25519")
    (tmp_path / "junk.pem").write_bytes(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(BadSignatureKey):
        read_public_key(tmp_path / "junk.pem")
    with pytest.raises(BadSignatureKey):
        read_public_key(tmp_path / "missing.pem")
