"""Attestation records (reference hpcr-contract.md §5): decrypting, parsing, the signature, the
certificate chain and CRLs, and the comparison with a contract.

The test material is made here: a CA hierarchy shaped like IBM's (root ← "DigiCert-like"
intermediate ← "IBM-like" intermediate ← attestation certificate) with ``cryptography``'s x509
builders, CRLs, a contract whose workload and env are tokens and whose attestationPublicKey is a
plain PEM, and a record with labels that contain spaces, encrypted as a token. The attestation
key is RSA-4096 as IBM's is; the CA and token keys are RSA-2048 to keep the module quick. The
real ``openssl`` binary cross-checks the signature and the chain. (A real HPVS capture was
checked by hand while this was written; third-party data with a private key is not kept here.)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from kyok.contract.attestation import (
    AttestationError,
    CertificateProblem,
    CheckStatus,
    DiffStatus,
    RecordFormatError,
    RecordSignatureInvalid,
    check_revocation,
    describe,
    diff_checksums,
    expected_checksums,
    load_certificate,
    load_certificates,
    load_crl,
    load_signature,
    load_verification_key,
    open_record,
    parse_record,
    verify_attestation,
    verify_chain,
    verify_record_signature,
)
from kyok.contract.token import (
    ContractError,
    TokenError,
    decrypt_token,
    encrypt_token,
    passphrase_from_secret,
)

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


# ---------------------------------------------------------------- test material


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@functools.cache
def rsa_key(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One key per name for the whole test process (4096-bit keys take a while to make)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kyok test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_cert(
    cn: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    ca: bool,
    path_length: int | None = None,
    not_before: datetime = NOW - 30 * DAY,
    not_after: datetime = NOW + 365 * DAY,
    serial: int | None = None,
    basic_constraints: bool = True,
    key_usage: bool = True,
) -> x509.Certificate:
    """A certificate for ``key``; self-signed when ``issuer`` is None."""
    issuer_name, issuer_key = issuer if issuer is not None else (name(cn), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(issuer_key, hashes.SHA384())


def make_crl(
    issuer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    revoked: Sequence[int] = (),
    *,
    last_update: datetime = NOW - DAY,
    next_update: datetime = NOW + 7 * DAY,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - 2 * DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    """IBM's shape: root ← DigiCert-like intermediate ← IBM-like intermediate ← attestation."""

    root: x509.Certificate
    digicert: x509.Certificate
    ibm: x509.Certificate
    attestation: x509.Certificate
    attestation_key: rsa.RSAPrivateKey
    ibm_crl: x509.CertificateRevocationList
    digicert_crl: x509.CertificateRevocationList

    @property
    def intermediates(self) -> list[x509.Certificate]:
        return [self.ibm, self.digicert]


@functools.cache
def pki() -> Pki:
    root_key, dc_key, ibm_key = rsa_key("root"), rsa_key("digicert"), rsa_key("ibm")
    root = make_cert("Test Trusted Root G4", root_key, None, ca=True)
    digicert = make_cert(
        "Test Code Signing RSA4096 SHA384 2021 CA1",
        dc_key,
        (root.subject, root_key),
        ca=True,
        path_length=0 + 1,
    )
    ibm = make_cert(
        "International Business Machines Corporation (test)",
        ibm_key,
        (digicert.subject, dc_key),
        ca=True,
        path_length=0,
    )
    att_key = rsa_key("attestation", 4096)
    attestation = make_cert(
        "ibm-hyper-protect-container-runtime-26-attestation (test)",
        att_key,
        (ibm.subject, ibm_key),
        ca=False,
    )
    return Pki(
        root,
        digicert,
        ibm,
        attestation,
        att_key,
        make_crl(ibm, ibm_key, revoked=[12345]),
        make_crl(digicert, dc_key),
    )


@dataclass(frozen=True)
class Deployment:
    """A contract as submitted, and what the instance made of it."""

    user_data: bytes
    workload: str
    env: str
    attestation_public_key: str
    record: bytes  # plaintext se-checksums.txt
    record_token: str  # se-checksums.txt.enc
    signature: bytes  # se-signature.bin
    record_key: rsa.RSAPrivateKey  # the auditor's key behind attestationPublicKey


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def record_text(
    user_data: bytes, sections: dict[str, str], form: str = "contract: {}", version: str = "24.6.0"
) -> bytes:
    lines = [
        version,
        "Machine Type/Plant/Serial: 8562/02/4C598",
        "Image age: 3 days since creation.",
        f"{sha('root')} root.tar.gz",
        f"{sha('base')} baseimage",
        f"{sha('disk')} /dev/disk/by-label/cidata",
        f"{sha('meta')} cidata/meta-data",
        f"{sha(user_data)} cidata/user-data",
        f"{sha('vendor')} cidata/vendor-data",
    ]
    lines += [f"{sha(value)} {form.format(key)}" for key, value in sections.items()]
    return ("\n".join(lines) + "\n").encode()


def deploy(form: str = "contract: {}", signer: rsa.RSAPrivateKey | None = None) -> Deployment:
    platform = rsa_key("platform").public_key()
    workload = encrypt_token(b"type: workload\ncompose:\n  archive: H4sIAAAA\n", platform)
    env = encrypt_token(b"type: env\nlogging:\n  logRouter:\n    hostname: h\n", platform)
    record_key = rsa_key("auditor")
    apk = (
        record_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    indented = "".join(f"  {line}\n" for line in apk.splitlines())
    user_data = f"workload: {workload}\nenv: {env}\nattestationPublicKey: |\n{indented}".encode()
    record = record_text(
        user_data, {"workload": workload, "env": env, "attestationPublicKey": apk}, form
    )
    signature = (signer or pki().attestation_key).sign(record, PKCS1v15(), hashes.SHA256())
    return Deployment(
        user_data,
        workload,
        env,
        apk,
        record,
        encrypt_token(record, record_key.public_key()),
        signature,
        record_key,
    )


@pytest.fixture(scope="module")
def dep() -> Deployment:
    return deploy()


# ---------------------------------------------------------------- parsing


def test_a_record_with_labels_with_spaces_parses(dep: Deployment) -> None:
    record = parse_record(dep.record)
    assert record.version == "24.6.0"
    assert [(m.key, m.value) for m in record.metadata] == [
        ("Machine Type/Plant/Serial", "8562/02/4C598"),
        ("Image age", "3 days since creation."),
    ]
    labels = [c.label for c in record.checksums]
    assert labels[:3] == ["root.tar.gz", "baseimage", "/dev/disk/by-label/cidata"]
    assert labels[-3:] == ["contract: workload", "contract: env", "contract: attestationPublicKey"]
    assert record.digest("contract: env") == sha(dep.env)
    assert record.digest("env") is None
    assert record.raw == dep.record


def test_parsing_tolerates_crlf_blank_lines_and_no_final_newline() -> None:
    text = f"26.1.0\r\n\r\nImage age: 1 days\r\n{'A' * 64}  contract:env \r\n{'b' * 64}\tsbom"
    record = parse_record(text)
    assert record.version == "26.1.0"
    assert record.as_dict() == {"contract:env": "a" * 64, "sbom": "b" * 64}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"", "empty"),
        (b"\n" + f"{'a' * 64} x\n".encode(), "empty"),
        (f"{'a' * 64} baseimage\n".encode(), "first line is a checksum"),
        (b"24.3.3\nMachine Type: 1\n", "no checksum lines"),
        (f"24.3.3\n{'a' * 64}\n".encode(), "no label"),
        (f"24.3.3\n{'a' * 64} env\n{'b' * 64} env\n".encode(), "two different checksums"),
        (b"24.3.3\n\xff\xfe garbage\n", "not text"),
        (b"24.3.3\nbad\x00line\n", "control characters"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(text: bytes, reason: str) -> None:
    with pytest.raises(RecordFormatError, match=reason):
        parse_record(text)


def test_a_repeated_identical_line_is_kept_once() -> None:
    record = parse_record(f"1\n{'a' * 64} env\n{'a' * 64} env\n")
    assert len(record.checksums) == 1


_LABEL = (
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.just(" "),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
_META = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
).filter(lambda s: s.strip() and not (len(s.strip()) >= 64 and s.strip()[:64].isalnum()))


@settings(max_examples=60)
@given(
    version=st.from_regex(r"[0-9]{2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True),
    meta=st.lists(_META, max_size=4),
    entries=st.dictionaries(_LABEL, st.binary(min_size=1, max_size=8), min_size=1, max_size=8),
    crlf=st.booleans(),
)
def test_parse_round_trips_any_record(
    version: str, meta: list[str], entries: dict[str, bytes], crlf: bool
) -> None:
    sums = {label: sha(value) for label, value in entries.items()}
    lines = [version, *meta, *(f"{d} {label}" for label, d in sums.items())]
    end = "\r\n" if crlf else "\n"
    record = parse_record(end.join(lines) + end)
    assert record.version == version
    assert record.as_dict() == sums
    assert [m.line for m in record.metadata] == list(range(2, 2 + len(meta)))


# ---------------------------------------------------------------- decrypting


def test_the_encrypted_record_decrypts_to_the_exact_bytes(dep: Deployment) -> None:
    assert open_record(dep.record_token.encode(), dep.record_key) == dep.record
    assert open_record(dep.record_token.encode() + b"\n", dep.record_key) == dep.record
    assert open_record(dep.record, None) == dep.record  # plaintext passes through


def test_an_encrypted_record_needs_the_right_key(dep: Deployment) -> None:
    with pytest.raises(AttestationError, match="give the private key"):
        open_record(dep.record_token.encode(), None)
    with pytest.raises(TokenError, match="does not decrypt with this private key"):
        open_record(dep.record_token.encode(), rsa_key("someone else"))
    broken = dep.record_token.replace("hyper-protect-basic", "bogus-prefix")
    with pytest.raises(TokenError, match="unknown token prefix"):
        open_record(broken.encode(), dep.record_key)


def test_a_wrong_key_never_yields_a_record() -> None:
    """With a wrong key, RSA PKCS#1 v1.5 decryption gives pseudo-random bytes instead of an error
    (implicit rejection) and the token has no MAC, so about 1 wrong-key decryption in 200 gets
    past the AES padding check. Such a token is built here on purpose: its data field is
    encrypted under what the stranger's key makes of the secret. open_record refuses the
    result, because a record is text."""
    owner, stranger = rsa_key("owner"), rsa_key("stranger")
    encrypted_secret = owner.public_key().encrypt(b"s" * 32, PKCS1v15())
    try:
        seen = stranger.decrypt(encrypted_secret, PKCS1v15())
    except ValueError:
        pytest.skip("this OpenSSL rejects explicitly: a wrong key always fails to decrypt")
    salt = bytes(range(8))
    derived = PBKDF2HMAC(hashes.SHA256(), 48, salt, 10_000).derive(passphrase_from_secret(seen))
    padder = padding.PKCS7(128).padder()
    garbage = padder.update(b"\xff\xfe not text \x00") + padder.finalize()
    cipher = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:])).encryptor()
    data = b"Salted__" + salt + cipher.update(garbage) + cipher.finalize()
    token = ".".join(
        ["hyper-protect-basic", *(base64.b64encode(x).decode() for x in (encrypted_secret, data))]
    )
    assert decrypt_token(token, stranger) == b"\xff\xfe not text \x00"  # the token layer's view
    with pytest.raises(TokenError, match="does not decrypt with this private key"):
        open_record(token.encode(), stranger)
    assert open_record(encrypt_token(b"24.6.0\n", owner.public_key()).encode(), owner)


# ---------------------------------------------------------------- the signature


def test_the_signature_verifies_with_the_certificate_and_with_openssl(
    dep: Deployment, tmp_path: Path
) -> None:
    verify_record_signature(dep.record, dep.signature, pki().attestation)
    verify_record_signature(dep.record, dep.signature, pki().attestation_key.public_key())
    # the documented command: openssl sha256 -verify pub.pem -signature se-signature.bin rec
    (tmp_path / "rec").write_bytes(dep.record)
    (tmp_path / "sig").write_bytes(dep.signature)
    (tmp_path / "pub.pem").write_bytes(
        pki()
        .attestation.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    out = subprocess.run(
        ["openssl", "sha256", "-verify", "pub.pem", "-signature", "sig", "rec"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    assert b"Verified OK" in out.stdout


def test_a_signature_made_by_openssl_verifies(dep: Deployment, tmp_path: Path) -> None:
    key_pem = pki().attestation_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "rec").write_bytes(dep.record)
    subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "rec"],
        cwd=tmp_path,
        check=True,
    )
    signature = (tmp_path / "sig").read_bytes()
    assert len(signature) == 512
    verify_record_signature(dep.record, signature, pki().attestation)


def test_a_tampered_record_or_a_wrong_certificate_fails(dep: Deployment) -> None:
    tampered = dep.record.replace(sha(dep.env).encode(), sha("other env").encode())
    assert tampered != dep.record
    with pytest.raises(RecordSignatureInvalid, match="record was altered"):
        verify_record_signature(tampered, dep.signature, pki().attestation)
    impostor = make_cert(
        "impostor", rsa_key("impostor", 4096), (pki().ibm.subject, rsa_key("ibm")), ca=False
    )
    with pytest.raises(RecordSignatureInvalid):
        verify_record_signature(dep.record, dep.signature, impostor)


def test_signature_files_raw_or_base64_and_length_checked(dep: Deployment) -> None:
    public = pki().attestation_key.public_key()
    assert load_signature(dep.signature, public) == dep.signature
    assert load_signature(base64.encodebytes(dep.signature), public) == dep.signature
    with pytest.raises(AttestationError, match="512-byte"):
        load_signature(dep.signature[:256], public)


def test_keys_and_certificates_load_from_pem_and_der(tmp_path: Path) -> None:
    cert = pki().attestation
    der = cert.public_bytes(serialization.Encoding.DER)
    assert load_certificate(der) == cert
    assert load_verification_key(pem(cert)) == (cert.public_key(), cert)
    pub_pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_verification_key(pub_pem) == (cert.public_key(), None)
    assert load_certificates(pem(pki().ibm) + pem(pki().digicert)) == pki().intermediates
    with pytest.raises(AttestationError, match="holds 2 certificates"):
        load_certificate(pem(pki().ibm) + pem(pki().digicert))
    with pytest.raises(AttestationError, match="neither a PEM nor a DER"):
        load_certificate(b"junk")
    crl = pki().ibm_crl
    assert load_crl(crl.public_bytes(serialization.Encoding.DER)) == crl
    with pytest.raises(AttestationError, match="revocation list"):
        load_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")


# ---------------------------------------------------------------- chain and CRLs


def test_the_chain_builds_from_intermediates_in_any_order() -> None:
    p = pki()
    chain = verify_chain(p.attestation, [p.digicert, p.ibm], [p.root], now=NOW)
    assert chain == (p.attestation, p.ibm, p.digicert, p.root)
    lines = check_revocation(chain, [p.ibm_crl, p.digicert_crl], now=NOW)
    assert len(lines) == 3
    assert "not revoked" in lines[0] and "not revoked" in lines[1]
    assert "no CRL from its issuer given" in lines[2]


def test_openssl_agrees_with_the_test_chain(tmp_path: Path) -> None:
    """Our material is a valid hierarchy for openssl too, and openssl sees the revocation."""
    p = pki()
    (tmp_path / "root.pem").write_bytes(pem(p.root))
    (tmp_path / "ints.pem").write_bytes(pem(p.ibm) + pem(p.digicert))
    (tmp_path / "att.pem").write_bytes(pem(p.attestation))
    (tmp_path / "crl.pem").write_bytes(p.ibm_crl.public_bytes(serialization.Encoding.PEM))
    base = ["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "ints.pem"]
    ok = subprocess.run([*base, "att.pem"], cwd=tmp_path, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    revoked = make_cert(
        "revoked", rsa_key("r", 2048), (p.ibm.subject, rsa_key("ibm")), ca=False, serial=12345
    )
    (tmp_path / "rev.pem").write_bytes(pem(revoked))
    crl_args = ["-crl_check", "-CRLfile", "crl.pem"]
    bad = subprocess.run([*base, *crl_args, "rev.pem"], cwd=tmp_path, capture_output=True)
    assert bad.returncode != 0 and b"revoked" in bad.stdout + bad.stderr
    with pytest.raises(CertificateProblem, match="was revoked"):
        check_revocation(verify_chain(revoked, p.intermediates, [p.root]), [p.ibm_crl])


def test_a_revoked_attestation_certificate_fails() -> None:
    p = pki()
    revoked = make_cert(
        "att-rev", rsa_key("r", 2048), (p.ibm.subject, rsa_key("ibm")), ca=False, serial=12345
    )
    chain = verify_chain(revoked, p.intermediates, [p.root], now=NOW)
    with pytest.raises(CertificateProblem, match=r"serial 0x3039\) was revoked .*key_compromise"):
        check_revocation(chain, [p.ibm_crl], now=NOW)


def test_an_expired_or_not_yet_valid_certificate_fails() -> None:
    p = pki()
    old = make_cert(
        "old",
        rsa_key("r", 2048),
        (p.ibm.subject, rsa_key("ibm")),
        ca=False,
        not_before=NOW - 400 * DAY,
        not_after=NOW - DAY,
    )
    with pytest.raises(CertificateProblem, match="attestation certificate 'old' expired on"):
        verify_chain(old, p.intermediates, [p.root], now=NOW)
    # the same IBM intermediate (name and key), reissued with a window that has passed
    lapsed = make_cert(
        describe(p.ibm),
        rsa_key("ibm"),
        (p.digicert.subject, rsa_key("digicert")),
        ca=True,
        path_length=0,
        not_after=NOW - DAY,
    )
    with pytest.raises(CertificateProblem, match=r"intermediate certificate .* expired"):
        verify_chain(p.attestation, [lapsed, p.digicert], [p.root], now=NOW)
    with pytest.raises(CertificateProblem, match="not valid before"):
        verify_chain(p.attestation, p.intermediates, [p.root], now=NOW - 60 * DAY)


def test_a_forged_or_incomplete_chain_fails() -> None:
    p = pki()
    # signed by a key that merely claims the IBM intermediate's name
    forged = make_cert("forged", rsa_key("r", 2048), (p.ibm.subject, rsa_key("evil")), ca=False)
    with pytest.raises(CertificateProblem, match="does not verify with the key of"):
        verify_chain(forged, p.intermediates, [p.root], now=NOW)
    with pytest.raises(CertificateProblem, match="no given certificate is the issuer"):
        verify_chain(p.attestation, [p.ibm], [p.root], now=NOW)
    other_root = make_cert("Other Root", rsa_key("other-root"), None, ca=True)
    with pytest.raises(CertificateProblem, match="no given certificate is the issuer"):
        verify_chain(p.attestation, p.intermediates, [other_root], now=NOW)
    with pytest.raises(ContractError, match="root"):
        verify_chain(p.attestation, p.intermediates, [], now=NOW)


def test_an_issuer_that_is_not_a_ca_fails() -> None:
    p = pki()
    not_ca = make_cert(
        "not a CA", rsa_key("nca"), (p.digicert.subject, rsa_key("digicert")), ca=False
    )
    leaf = make_cert("leaf", rsa_key("r", 2048), (not_ca.subject, rsa_key("nca")), ca=False)
    with pytest.raises(CertificateProblem, match="not a CA certificate"):
        verify_chain(leaf, [not_ca, p.digicert], [p.root], now=NOW)
    # the IBM intermediate allows no CA below it
    sub = make_cert("sub CA", rsa_key("sub"), (p.ibm.subject, rsa_key("ibm")), ca=True)
    leaf2 = make_cert("leaf2", rsa_key("r", 2048), (sub.subject, rsa_key("sub")), ca=False)
    with pytest.raises(CertificateProblem, match="allows 0 CA certificates below it"):
        verify_chain(leaf2, [sub, *p.intermediates], [p.root], now=NOW)


def test_a_bad_crl_fails() -> None:
    p = pki()
    chain = verify_chain(p.attestation, p.intermediates, [p.root], now=NOW)
    stale = make_crl(p.ibm, rsa_key("ibm"), last_update=NOW - 30 * DAY, next_update=NOW - DAY)
    with pytest.raises(CertificateProblem, match="out of date"):
        check_revocation(chain, [stale], now=NOW)
    forged = make_crl(p.ibm, rsa_key("evil"))
    with pytest.raises(CertificateProblem, match="forged or damaged"):
        check_revocation(chain, [forged], now=NOW)
    other = make_cert("Other CA", rsa_key("other-root"), None, ca=True)
    with pytest.raises(CertificateProblem, match="belongs to no issuer"):
        check_revocation(chain, [make_crl(other, rsa_key("other-root"))], now=NOW)
    future = make_crl(p.ibm, rsa_key("ibm"), last_update=NOW + DAY, next_update=NOW + 9 * DAY)
    with pytest.raises(CertificateProblem, match="not valid before"):
        check_revocation(chain, [future], now=NOW)


# ---------------------------------------------------------------- the contract diff


@pytest.mark.parametrize("form", ["{}", "contract: {}", "contract:{}"])
def test_every_label_form_matches_the_contract(form: str) -> None:
    dep = deploy(form)
    diff = diff_checksums(parse_record(dep.record), expected_checksums(dep.user_data))
    assert diff.ok
    matched = {e.label for e in diff.having(DiffStatus.MATCH)}
    assert matched == {"cidata/user-data"} | {
        form.format(n) for n in ("workload", "env", "attestationPublicKey")
    }
    unknown = {e.label: e.note for e in diff.having(DiffStatus.UNKNOWN)}
    assert set(unknown) == {
        "root.tar.gz",
        "baseimage",
        "/dev/disk/by-label/cidata",
        "cidata/meta-data",
        "cidata/vendor-data",
    }
    assert "published" in unknown["baseimage"]
    assert not diff.having(DiffStatus.MISSING) and not diff.having(DiffStatus.MISMATCH)


def test_expected_values_are_sha256_of_bytes_and_section_values(dep: Deployment) -> None:
    by_name = {e.name: e for e in expected_checksums(dep.user_data)}
    assert by_name["cidata/user-data"].digest == sha(dep.user_data)
    assert by_name["cidata/user-data"].required
    assert by_name["workload"].digest == sha(dep.workload)
    assert by_name["attestationPublicKey"].digest == sha(dep.attestation_public_key)
    assert dep.attestation_public_key.endswith("-----\n")  # the block keeps its final newline
    assert by_name["env"].labels == ("env", "contract: env", "contract:env")
    assert not by_name["env"].required


def test_another_contract_is_a_mismatch(dep: Deployment) -> None:
    other = deploy()  # new tokens: same plaintexts, different ciphertexts
    diff = diff_checksums(parse_record(dep.record), expected_checksums(other.user_data))
    assert not diff.ok
    mismatched = {e.label for e in diff.having(DiffStatus.MISMATCH)}
    assert mismatched == {"cidata/user-data", "contract: workload", "contract: env"}
    assert {e.label for e in diff.having(DiffStatus.MATCH)} == {"contract: attestationPublicKey"}


def test_expect_values_are_required_and_missing_sections_are_not(dep: Deployment) -> None:
    old = record_text(dep.user_data, {}, version="23.3.0")  # no section lines
    diff = diff_checksums(
        parse_record(old),
        expected_checksums(dep.user_data, extra={"baseimage": sha("base").upper()}),
    )
    assert diff.ok
    assert {e.label for e in diff.having(DiffStatus.MISSING)} == {
        "workload",
        "env",
        "attestationPublicKey",
    }
    diff = diff_checksums(parse_record(old), expected_checksums(None, extra={"sbom": sha("sbom")}))
    assert not diff.ok
    assert [(e.label, e.required) for e in diff.having(DiffStatus.MISSING)] == [("sbom", True)]
    with pytest.raises(ContractError, match="not a sha256"):
        expected_checksums(None, extra={"baseimage": "abc"})
    # an --expect for a label the contract also covers must hold as well
    both = expected_checksums(dep.user_data, extra={"cidata/user-data": sha("elsewhere")})
    diff = diff_checksums(parse_record(dep.record), both)
    assert not diff.ok
    (entry,) = diff.having(DiffStatus.MISMATCH)
    assert entry.label == "cidata/user-data" and entry.expected == sha("elsewhere")
    assert "--expect" in entry.note


@pytest.mark.parametrize(
    ("user_data", "reason"),
    [
        (b"workload: [unclosed", "not valid YAML"),
        (b"- a\n- b\n", "not a YAML mapping"),
        (b"env:\n  type: env\n", "env section is not a string"),
    ],
)
def test_a_malformed_contract_is_refused(user_data: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        expected_checksums(user_data)


# ---------------------------------------------------------------- everything together


def test_verify_attestation_passes_everything(dep: Deployment) -> None:
    p = pki()
    report = verify_attestation(
        dep.record,
        dep.signature,
        p.attestation,
        intermediates=p.intermediates,
        roots=[p.root],
        crls=[p.ibm_crl, p.digicert_crl],
        contract=dep.user_data,
        now=NOW,
    )
    assert report.ok
    assert {c.name: c.status for c in report.checks} == {
        n: CheckStatus.PASS
        for n in ("record", "signature", "certificate", "chain", "revocation", "contract")
    }
    assert "Test Trusted Root G4" in report.check("chain").detail
    assert report.record is not None and report.record.version == "24.6.0"


def test_verify_attestation_reports_each_failure(dep: Deployment) -> None:
    p = pki()
    tampered = dep.record.replace(b"24.6.0", b"24.6.1")
    report = verify_attestation(tampered, dep.signature, p.attestation, contract=dep.user_data)
    assert not report.ok
    assert report.check("signature").status is CheckStatus.FAIL
    assert report.check("contract").status is CheckStatus.PASS  # the lines still match
    assert report.check("chain").status is CheckStatus.SKIPPED

    report = verify_attestation(
        dep.record, dep.signature, p.attestation, contract=deploy().user_data
    )
    assert not report.ok and report.check("signature").status is CheckStatus.PASS
    assert "cidata/user-data differs" in report.check("contract").detail

    report = verify_attestation(
        dep.record,
        dep.signature,
        p.attestation,
        intermediates=p.intermediates,
        roots=[p.root],
        crls=[p.ibm_crl],
        now=p.attestation.not_valid_after_utc + DAY,
    )
    assert not report.ok
    assert "expired" in report.check("certificate").detail
    assert report.check("revocation").status is CheckStatus.FAIL

    # a bare public key checks the signature only, and that alone can pass
    report = verify_attestation(dep.record, dep.signature, p.attestation_key.public_key())
    assert report.ok and report.check("certificate").status is CheckStatus.SKIPPED

    with pytest.raises(ContractError, match="root"):
        verify_attestation(dep.record, dep.signature, p.attestation, crls=[p.ibm_crl])


def test_an_unparsable_record_fails_but_is_still_signature_checked() -> None:
    bogus = b"not a record\n"
    signature = pki().attestation_key.sign(bogus, PKCS1v15(), hashes.SHA256())
    report = verify_attestation(bogus, signature, pki().attestation, expect={"x": sha("x")})
    assert not report.ok
    assert report.check("record").status is CheckStatus.FAIL
    assert report.check("signature").status is CheckStatus.PASS
    assert report.check("contract").detail == "the record did not parse"
