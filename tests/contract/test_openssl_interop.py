"""Interop with the real openssl binary, in both directions, with the commands IBM documents.

Seed 004 §3.2 encrypts with ``openssl rsautl -encrypt -inkey CERT -certin`` and
``openssl enc -aes-256-cbc -pbkdf2 -pass stdin``; the reference §2.5 also uses ``pkeyutl
-pkeyopt rsa_padding_mode:pkcs1``. Secrets are forced to contain 0x0A and 0x00 for the
openssl-to-kyok direction: openssl then uses only the part before that byte as the AES
passphrase, and kyok has to do the same.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from tests.contract.contract_kit import encryption_cert_pem, encryption_key, private_pem, sh, write

from kyok.contract.token import (
    decrypt_token,
    encrypt_token,
    load_private_key,
    passphrase_from_secret,
)

ENCRYPT_RSAUTL = 'A="$(echo -n "$PASSWORD" | base64 -d | openssl rsautl -encrypt -inkey enc.crt -certin | base64 -w0)"'
ENCRYPT_PKEYUTL = (
    'A="$(echo -n "$PASSWORD" | base64 -d | openssl pkeyutl -encrypt -inkey enc.crt -certin '
    '-pkeyopt rsa_padding_mode:pkcs1 | base64 -w0)"'
)
ENCRYPT_AES = 'B="$(echo -n "$PASSWORD" | base64 -d | openssl enc -aes-256-cbc -pbkdf2 -pass stdin -in section.yaml | base64 -w0)"'

DECRYPT_PKEYUTL = (
    "openssl pkeyutl -decrypt -inkey enc.key -in pw.enc "
    "| openssl enc -d -aes-256-cbc -pbkdf2 -pass stdin -in data.enc"
)
DECRYPT_RSAUTL = (
    "openssl rsautl -decrypt -inkey enc.key -in pw.enc "
    "| openssl enc -d -aes-256-cbc -pbkdf2 -iter 10000 -md sha256 -pass stdin -in data.enc"
)

PLAINTEXTS = [
    b"type: workload\ncompose:\n  archive: H4sIAAAA\n",
    b"no final newline",
    b"",
    bytes(range(256)),
    b"x" * 5000 + b"\n",
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("openssl")
    write(d, "enc.crt", encryption_cert_pem())
    write(d, "enc.key", private_pem(encryption_key(), pkcs1=True))
    return d


def _openssl_rand_password(workdir: Path) -> str:
    """``PASSWORD="$(openssl rand 32 | base64 -w0)"``, redrawn when the secret starts with 0x00:
    ``openssl enc -pass stdin`` refuses an empty first line that ends in NUL (see below), so
    IBM's script fails for those 1 in 256 secrets and no token exists to test."""
    while True:
        out = sh("openssl rand 32 | base64 -w0", cwd=workdir).stdout.decode().strip()
        if base64.b64decode(out)[:1] != b"\x00":
            return out


def _openssl_token(workdir: Path, plaintext: bytes, password_b64: str, encrypt_rsa: str) -> str:
    """Run the documented encryption commands with ``PASSWORD`` (base64 of the secret)."""
    write(workdir, "section.yaml", plaintext)
    script = f'{encrypt_rsa}\n{ENCRYPT_AES}\necho "hyper-protect-basic.${{A}}.${{B}}"'
    env = {"PATH": os.environ["PATH"], "PASSWORD": password_b64}
    return sh(script, cwd=workdir, env=env).stdout.decode().strip()


@pytest.mark.parametrize("decrypt", [DECRYPT_PKEYUTL, DECRYPT_RSAUTL], ids=["pkeyutl", "rsautl"])
@pytest.mark.parametrize(
    "plaintext", PLAINTEXTS, ids=["yaml", "no-newline", "empty", "binary", "long"]
)
def test_kyok_token_decrypts_with_openssl(workdir: Path, plaintext: bytes, decrypt: str) -> None:
    token = encrypt_token(plaintext, encryption_key().public_key())
    # the reference's decrypt procedure: cut the token, decode each field to a file
    script = (
        f'TOKEN="{token}"\n'
        'echo "$TOKEN" | cut -d. -f2 | base64 -d > pw.enc\n'
        'echo "$TOKEN" | cut -d. -f3 | base64 -d > data.enc\n'
        f"{decrypt} > section.out"
    )
    sh(script, cwd=workdir, env={"PATH": os.environ["PATH"]})
    assert (workdir / "section.out").read_bytes() == plaintext


@pytest.mark.parametrize(
    "encrypt_rsa", [ENCRYPT_RSAUTL, ENCRYPT_PKEYUTL], ids=["rsautl", "pkeyutl"]
)
def test_openssl_tokens_with_random_secrets_decrypt_with_kyok(
    workdir: Path, encrypt_rsa: str
) -> None:
    """The seed's procedure as printed, secret from ``openssl rand 32`` (some hit the cut)."""
    for plaintext in PLAINTEXTS[:2]:
        for _ in range(4):
            token = _openssl_token(workdir, plaintext, _openssl_rand_password(workdir), encrypt_rsa)
            assert token.startswith("hyper-protect-basic.")
            assert decrypt_token(token, encryption_key()) == plaintext


FORCED_SECRETS = {
    "newline-at-14": b"abcdefghijklmn\nopqrstuvwxyz01234",
    "nul-at-3": b"abc\x00" + b"\xfe" * 28,
    "newline-first": b"\n" + bytes(range(1, 32)),
    "newline-then-nul": b"\n\x00" + b"Z" * 30,
    "nul-then-newline": b"0123456\x00789\nabcdefghijklmnopqrst",
    "newline-last": b"A" * 31 + b"\n",
    "carriage-return-kept": b"\r" * 5 + b"\n" + b"B" * 26,
    "no-cut-binary": bytes(range(200, 232)),
}


@pytest.mark.parametrize(
    "encrypt_rsa", [ENCRYPT_RSAUTL, ENCRYPT_PKEYUTL], ids=["rsautl", "pkeyutl"]
)
@pytest.mark.parametrize("secret", list(FORCED_SECRETS.values()), ids=list(FORCED_SECRETS))
def test_openssl_tokens_with_forced_secrets_decrypt_with_kyok(
    workdir: Path, secret: bytes, encrypt_rsa: str
) -> None:
    assert len(secret) == 32
    plaintext = b"type: env\nlogging:\n  logRouter:\n    hostname: x\n"
    token = _openssl_token(workdir, plaintext, base64.b64encode(secret).decode(), encrypt_rsa)
    # RSA carried all 32 bytes ...
    carried = encryption_key().decrypt(base64.b64decode(token.split(".")[1]), PKCS1v15())
    assert carried == secret
    # ... and kyok finds the plaintext, cutting the passphrase where openssl did
    assert decrypt_token(token, encryption_key()) == plaintext
    assert len(passphrase_from_secret(secret)) < 32 or secret == FORCED_SECRETS["no-cut-binary"]


def test_openssl_token_with_password_protected_key(workdir: Path) -> None:
    token = _openssl_token(
        workdir, b"hello-world", _openssl_rand_password(workdir), ENCRYPT_PKEYUTL
    )
    key = load_private_key(private_pem(encryption_key(), b"decryptpass"), b"decryptpass")
    assert decrypt_token(token, key) == b"hello-world"


def test_openssl_refuses_a_secret_that_starts_with_nul(workdir: Path) -> None:
    """Why no openssl-made token has a secret starting with 0x00 (kyok still decrypts one, see
    test_token.py): ``enc -pass stdin`` fails instead of using an empty passphrase."""
    write(workdir, "section.yaml", b"x")
    env = {"PATH": os.environ["PATH"], "PASSWORD": base64.b64encode(b"\x00" + b"Z" * 31).decode()}
    result = sh(ENCRYPT_AES, cwd=workdir, env=env, check=False)
    assert result.returncode != 0
    assert b"password" in result.stderr.lower()
