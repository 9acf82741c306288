"""envWorkloadSignature: kyok's signatures verify with ``openssl dgst -sha256 -verify`` over
workload‖env, fail once a signed section changes, and openssl-made signatures (seed 004 §3.2,
password-protected key) verify with kyok."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from tests.contract.contract_kit import (
    FIXTURES,
    encryption_key,
    new_rsa,
    openssl,
    private_pem,
    public_pem,
    self_signed,
    sh,
    signing_key,
    write,
)

from kyok.contract.contract import (
    Contract,
    decrypt_contract,
    dump_contract,
    encrypt_contract,
    parse_contract,
    parse_section,
    sign_contract,
    verify_contract,
)
from kyok.contract.signing import (
    SignatureMismatch,
    decode_signing_key,
    encode_signing_key,
    sign_sections,
    signature_payload,
    verify_sections,
)
from kyok.contract.token import ContractError, TokenError, encrypt_token, load_private_key

WORKLOAD = (FIXTURES / "seed004_workload_play_resources.yaml").read_text() + (
    "volumes:\n  payment-data-volume:\n    seed: workload-seed-0123456789\n"
)
ENV = (FIXTURES / "seed004_env_syslog_kms.yaml").read_text()


@pytest.fixture(scope="module")
def signed() -> Contract:
    """A contract encrypted and signed by kyok (with an attestationPublicKey)."""
    contract = Contract(
        workload=WORKLOAD, env=ENV, attestation_public_key=public_pem(new_rsa()).decode()
    )
    return encrypt_contract(contract, encryption_key().public_key(), signing_key=signing_key())


def _openssl_verifies(tmp: Path, contract: Contract, key_pem: bytes) -> bool:
    assert contract.workload is not None and contract.env is not None
    assert contract.env_workload_signature is not None
    write(tmp, "contract.txt", (contract.workload + contract.env).encode())
    write(tmp, "sig.bin", base64.b64decode(contract.env_workload_signature))
    write(tmp, "public.pem", key_pem)
    result = openssl(
        "dgst",
        "-sha256",
        "-verify",
        str(tmp / "public.pem"),
        "-signature",
        str(tmp / "sig.bin"),
        str(tmp / "contract.txt"),
        check=False,
    )
    return result.returncode == 0 and b"Verified OK" in result.stdout


def test_signed_contract_verifies_with_openssl(tmp_path: Path, signed: Contract) -> None:
    assert signed.is_encrypted("workload") and signed.is_encrypted("env")
    assert _openssl_verifies(tmp_path, signed, public_pem(signing_key()))
    # ... also after a YAML round trip of the whole contract
    again = parse_contract(dump_contract(signed))
    assert again == signed
    assert _openssl_verifies(tmp_path, again, public_pem(signing_key()))
    assert verify_contract(signed, private_key=encryption_key()).valid


def _flip(token: str) -> str:
    """Change one base64 character in the middle of a value."""
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.mark.parametrize("section", ["workload", "env", "envWorkloadSignature"])
def test_altering_a_signed_section_breaks_the_signature(
    tmp_path: Path, signed: Contract, section: str
) -> None:
    value = signed.get(section)
    assert value is not None
    altered = signed.with_section(section, _flip(value))
    assert not _openssl_verifies(tmp_path, altered, public_pem(signing_key()))
    report = verify_contract(altered, signing_key=signing_key().public_key())
    assert not report.valid
    assert any("does not verify" in p for p in report.problems)


def test_swapping_in_another_env_breaks_the_signature(tmp_path: Path, signed: Contract) -> None:
    other = encrypt_contract(
        Contract(workload=WORKLOAD, env=ENV),
        encryption_key().public_key(),
        signing_key=signing_key(),
    )
    mixed = signed.with_section("env", other.env)
    assert not _openssl_verifies(tmp_path, mixed, public_pem(signing_key()))
    assert not verify_contract(mixed, signing_key=signing_key().public_key()).valid


def test_attestation_public_key_is_not_covered_by_the_signature(signed: Contract) -> None:
    """By design (reference §3) the signature covers workload‖env only; this test pins that
    fact so the docs' warning stays true."""
    swapped = signed.with_section(
        "attestationPublicKey", encrypt_token(b"other", encryption_key().public_key())
    )
    assert verify_contract(swapped, signing_key=signing_key().public_key()).valid


def test_wrong_signer_is_reported(signed: Contract) -> None:
    report = verify_contract(
        signed, signing_key=new_rsa().public_key(), private_key=encryption_key()
    )
    assert not report.valid
    assert "the given key is not the key in env.signingKey" in report.problems


def test_encrypted_env_without_keys_cannot_be_verified(signed: Contract) -> None:
    with pytest.raises(ContractError, match="env is encrypted"):
        verify_contract(signed)
    with pytest.raises(TokenError, match="env does not decrypt"):
        verify_contract(signed, private_key=new_rsa())  # another size: fails every time


def test_signing_key_is_injected_as_single_base64_of_the_pem(signed: Contract) -> None:
    env = parse_section(decrypt_contract(signed, encryption_key()).env or "", "env")
    assert base64.b64decode(env["signingKey"]) == public_pem(signing_key())
    assert decode_signing_key(env["signingKey"]).form == "base64-public-key"


def test_signature_is_deterministic_and_over_the_concatenation() -> None:
    key = signing_key()
    a = sign_sections("ab", "c", key)
    assert a == sign_sections("ab", "c", key)
    assert signature_payload("ab", "c") == b"abc"
    # the concatenation has no separator: a different split of the same bytes verifies too,
    # exactly as with HPVS (the values are tokens with a fixed prefix, so this cannot be abused)
    verify_sections("a", "bc", a, key.public_key())
    with pytest.raises(SignatureMismatch):
        verify_sections("ab", "cd", a, key.public_key())
    with pytest.raises(SignatureMismatch, match="not standard base64"):
        verify_sections("ab", "c", "***", key.public_key())


def test_seed_procedure_signature_verifies_with_kyok(tmp_path: Path) -> None:
    """Seed 004 §3.2 "Contract signature": a password-protected key made by openssl genrsa
    -aes128, contract.txt = workload token ‖ env token, dgst -sha256 -sign, base64, tr -d ' '."""
    env_text = ENV + "signingKey: __KEY__\n"
    script = r"""
openssl genrsa -aes128 -passout pass:CustomPassphrase -out private.pem 2048 2>/dev/null
openssl rsa -in private.pem -passin pass:CustomPassphrase -pubout -out public.pem 2>/dev/null
"""
    sh(script, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    public = (tmp_path / "public.pem").read_text()
    # the seed's awk one-liner puts the PEM into env as one line with "\n" escapes, double-quoted
    escaped = public.rstrip("\n").replace("\n", "\\n")
    env_text = env_text.replace("__KEY__", f'"{escaped}"')
    workload_token = encrypt_token(WORKLOAD.encode(), encryption_key().public_key())
    env_token = encrypt_token(env_text.encode(), encryption_key().public_key())
    write(tmp_path, "contract.txt", workload_token + env_token)  # no newline at the end
    sig = (
        sh(
            "echo $( cat contract.txt | openssl dgst -sha256 -sign private.pem "
            "-passin pass:CustomPassphrase | openssl enc -base64) | tr -d ' '",
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"]},
        )
        .stdout.decode()
        .strip()
    )
    user_data = f"workload: {workload_token}\nenv: {env_token}\nenvWorkloadSignature: {sig}\n"
    contract = parse_contract(user_data)
    report = verify_contract(contract, private_key=encryption_key())
    assert report.valid, report.problems
    assert report.signing_key_form == "pem-public-key"
    # and kyok's own signature with that key is byte-identical (PKCS#1 v1.5 is deterministic)
    key = load_private_key((tmp_path / "private.pem").read_bytes(), b"CustomPassphrase")
    assert sign_contract(contract, key).env_workload_signature == sig


@pytest.mark.parametrize("pem", [True, False])
def test_signing_key_forms_decode(pem: bool) -> None:
    key = signing_key().public_key()
    cert = self_signed(signing_key(), "signer")
    assert decode_signing_key(encode_signing_key(key, pem=pem)).public_key.public_numbers() == (
        key.public_numbers()
    )
    decoded = decode_signing_key(encode_signing_key(cert, pem=pem))
    assert decoded.certificate == cert
    assert decoded.form == ("pem-certificate" if pem else "base64-certificate")


def test_signing_key_with_crlf_and_indentation() -> None:
    text = public_pem(signing_key()).decode().replace("\n", "\r\n    ")
    assert decode_signing_key(text).form == "pem-public-key"


def test_double_base64_certificate_of_contract_go_is_read() -> None:
    cert = self_signed(signing_key(), "signer")
    once = encode_signing_key(cert)
    twice = base64.b64encode(once.encode()).decode()
    assert decode_signing_key(twice).form == "double-base64-certificate"


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "not a PEM public key"),
        ("xxxxxxxxx", "not a PEM public key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "neither a PUBLIC KEY"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "does not parse"),
    ],
)
def test_bad_signing_keys(value: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        decode_signing_key(value)


def test_small_signing_key_is_refused() -> None:
    with pytest.raises(ContractError, match="at least 2048"):
        decode_signing_key(public_pem(new_rsa(1024)).decode())


def test_private_signing_pem_round_trip_through_cli_format() -> None:
    """A password-protected PKCS#8 signing key signs the same as the clear key."""
    key = load_private_key(private_pem(signing_key(), b"pw"), b"pw")
    assert sign_sections("w", "e", key) == sign_sections("w", "e", signing_key())
