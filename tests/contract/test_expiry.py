"""Contract expiry: CSR, CA-issued signing certificate, window checks, openssl agreement."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from tests.contract.contract_kit import (
    FIXTURES,
    encryption_key,
    new_rsa,
    openssl,
    private_pem,
    self_signed,
    sh,
    signing_key,
    write,
)

from kyok.contract.contract import (
    Contract,
    decrypt_contract,
    encrypt_contract,
    parse_section,
    verify_contract,
)
from kyok.contract.expiry import (
    CsrParams,
    build_csr,
    certificate_status,
    check_issued_by,
    issue_signing_certificate,
    load_ca_key,
    load_certificate,
    load_csr,
)
from kyok.contract.signing import decode_signing_key
from kyok.contract.token import ContractError

PARAMS = b"""{"country": "DE", "state": "Baden-Wurttemberg", "location": "Boeblingen",
"org": "Example", "unit": "Deploy", "domain": "signer.example.com", "mail": "ops@example.com"}"""


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = new_rsa()
    return self_signed(key, "Personal CA", days=3650, ca=True), key


def test_csr_params_and_subject() -> None:
    params = CsrParams.from_json(PARAMS)
    csr = build_csr(signing_key(), params)
    assert csr.is_signature_valid
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "signer.example.com"  # not contract-go's "signer.example.comC"
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    assert csr.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "ops@example.com"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object of strings"),
        (b'{"domain": "x", "colour": "red"}', "unknown CSR parameter"),
        (b'{"org": "x"}', "need 'domain'"),
    ],
)
def test_csr_params_rejected(data: bytes, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        CsrParams.from_json(data)


def test_bad_country_code() -> None:
    with pytest.raises(ContractError, match="two-letter"):
        build_csr(signing_key(), CsrParams(domain="x", country="DEU"))


def test_issue_certificate_window_and_extensions(
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    ca_cert, ca_key = ca
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ca_cert = self_signed(ca_key, "Personal CA", days=36500, ca=True)
    cert = issue_signing_certificate(
        build_csr(signing_key(), CsrParams(domain="signer")),
        ca_cert,
        ca_key,
        days=90,
        signing_key=signing_key().public_key(),
        now=now,
    )
    assert cert.not_valid_before_utc == now.replace(microsecond=0)
    assert cert.not_valid_after_utc == (now + timedelta(days=90)).replace(microsecond=0)
    assert cert.issuer == ca_cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    check_issued_by(cert, ca_cert)
    status = certificate_status(cert, now=now + timedelta(days=10))
    assert status.valid and status.days_left == 80
    assert not certificate_status(cert, now=now + timedelta(days=91)).valid
    assert not certificate_status(cert, now=now - timedelta(seconds=1)).valid


def test_certificate_verifies_with_openssl(
    tmp_path: Path, ca: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    ca_cert, ca_key = ca
    cert = issue_signing_certificate(
        build_csr(signing_key(), CsrParams(domain="signer")), ca_cert, ca_key, days=30
    )
    write(tmp_path, "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))
    write(tmp_path, "signing.crt", cert.public_bytes(serialization.Encoding.PEM))
    verified = openssl("verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "signing.crt"))
    assert b"OK" in verified.stdout
    # still valid in 29 days, no longer in 31 (openssl x509 -checkend)
    assert (
        openssl(
            "x509",
            "-in",
            str(tmp_path / "signing.crt"),
            "-noout",
            "-checkend",
            str(29 * 86400),
            check=False,
        ).returncode
        == 0
    )
    assert (
        openssl(
            "x509",
            "-in",
            str(tmp_path / "signing.crt"),
            "-noout",
            "-checkend",
            str(31 * 86400),
            check=False,
        ).returncode
        == 1
    )


def test_openssl_made_csr_and_ca_are_accepted(tmp_path: Path) -> None:
    """IBM's procedure (reference §4): openssl req -new for the CSR, a personal CA from genrsa +
    req -x509; kyok issues the certificate from those files."""
    write(tmp_path, "private.pem", private_pem(signing_key(), b"pw"))
    script = """
openssl req -new -key private.pem -passin pass:pw -subj "/C=DE/O=Example/CN=signer" -out csr.pem
openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -days 365 -subj "/CN=Personal CA" -out ca.crt
"""
    sh(script, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    csr = load_csr((tmp_path / "csr.pem").read_bytes())
    ca_cert = load_certificate((tmp_path / "ca.crt").read_bytes())
    ca_key = load_ca_key((tmp_path / "ca.key").read_bytes())
    cert = issue_signing_certificate(
        csr, ca_cert, ca_key, days=10, signing_key=signing_key().public_key()
    )
    write(tmp_path, "signing.crt", cert.public_bytes(serialization.Encoding.PEM))
    assert (
        b"OK"
        in openssl(
            "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "signing.crt")
        ).stdout
    )


def test_refusals(ca: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    ca_cert, ca_key = ca
    csr = build_csr(signing_key(), CsrParams(domain="signer"))
    with pytest.raises(ContractError, match="different key"):
        issue_signing_certificate(csr, ca_cert, ca_key, days=5, signing_key=new_rsa().public_key())
    with pytest.raises(ContractError, match="does not belong"):
        issue_signing_certificate(csr, ca_cert, new_rsa(), days=5)
    for days in (0, -1, 3651):
        with pytest.raises(ContractError, match="between 1 and"):
            issue_signing_certificate(csr, ca_cert, ca_key, days=days)
    short_key = new_rsa()
    short_ca = self_signed(short_key, "Short CA", days=10, ca=True)
    with pytest.raises(ContractError, match="expires before the contract"):
        issue_signing_certificate(csr, short_ca, short_key, days=30)
    with pytest.raises(ContractError, match="not valid now"):
        issue_signing_certificate(
            csr, ca_cert, ca_key, days=5, now=datetime(2000, 1, 1, tzinfo=UTC)
        )
    ec_csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    )
    ec_request = ec_csr.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    with pytest.raises(ContractError, match="not for an RSA key"):
        issue_signing_certificate(ec_request, ca_cert, ca_key, days=5)


def test_tampered_csr_is_refused() -> None:
    pem = build_csr(signing_key(), CsrParams(domain="signer")).public_bytes(
        serialization.Encoding.PEM
    )
    der = bytearray(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    der[-10] ^= 1  # inside the signature
    with pytest.raises(ContractError, match="signature does not verify"):
        load_csr(bytes(der))


def test_not_issued_by_other_ca(ca: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    ca_cert, ca_key = ca
    cert = issue_signing_certificate(
        build_csr(signing_key(), CsrParams(domain="s")), ca_cert, ca_key, days=3
    )
    other = self_signed(new_rsa(), "Personal CA", ca=True)
    with pytest.raises(ContractError, match="not issued by"):
        check_issued_by(cert, other)


def test_ca_key_loading(tmp_path: Path) -> None:
    key = new_rsa()
    assert (
        load_ca_key(private_pem(key, b"pw"), b"pw").public_key().public_numbers()
        == key.public_key().public_numbers()
    )
    with pytest.raises(ContractError, match="encrypted and no password"):
        load_ca_key(private_pem(key, b"pw"))
    with pytest.raises(ContractError, match="wrong password"):
        load_ca_key(private_pem(key, b"pw"), b"nope")
    ec_key = ec.generate_private_key(ec.SECP384R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert isinstance(load_ca_key(pem), ec.EllipticCurvePrivateKey)


def test_expiring_contract_end_to_end(ca: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    """encrypt with a signing certificate; verify now, after expiry, and against the CA."""
    ca_cert, ca_key = ca
    cert = issue_signing_certificate(
        build_csr(signing_key(), CsrParams(domain="signer")), ca_cert, ca_key, days=30
    )
    workload = (FIXTURES / "seed004_workload_play_resources.yaml").read_text()
    env = "type: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: key\n"
    contract = encrypt_contract(
        Contract(workload=workload, env=env),
        encryption_key().public_key(),
        signing_key=signing_key(),
        signing_certificate=cert,
    )
    plain_env = parse_section(decrypt_contract(contract, encryption_key()).env or "", "env")
    decoded = decode_signing_key(plain_env["signingKey"])
    assert decoded.form == "base64-certificate" and decoded.certificate == cert
    ok = verify_contract(contract, private_key=encryption_key(), ca_certificate=ca_cert)
    assert ok.valid and ok.issued_by_ca and ok.certificate is not None
    assert ok.certificate.days_left in (29, 30)
    late = verify_contract(
        contract, private_key=encryption_key(), now=datetime.now(UTC) + timedelta(days=31)
    )
    assert not late.valid
    assert any("expired" in p for p in late.problems)
    foreign = self_signed(new_rsa(), "Other CA", ca=True)
    wrong_ca = verify_contract(contract, private_key=encryption_key(), ca_certificate=foreign)
    assert not wrong_ca.valid and wrong_ca.issued_by_ca is False


def test_certificate_for_another_key_is_refused_by_encrypt(
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    ca_cert, ca_key = ca
    other = new_rsa()
    cert = issue_signing_certificate(
        build_csr(other, CsrParams(domain="x")), ca_cert, ca_key, days=3
    )
    env = "type: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: key\n"
    with pytest.raises(ContractError, match="not for the signing key"):
        encrypt_contract(
            Contract(
                workload=(FIXTURES / "seed004_workload_play_resources.yaml").read_text(), env=env
            ),
            encryption_key().public_key(),
            signing_key=signing_key(),
            signing_certificate=cert,
        )
