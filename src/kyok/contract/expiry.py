"""Contract expiry: a CA-issued certificate for the signing key (reference §4).

Instead of a bare public key, ``env.signingKey`` may hold an X.509 certificate for the signing
key, issued by a CA the user controls; its notAfter is the contract's expiry date (an instance
that boots later fails). IBM's procedure is ``openssl req -new`` for a CSR, then ``openssl x509
-req -CA … -CAkey … -days N``. kyok does the same natively:

- :func:`build_csr` makes a CSR from CSR parameters (contract-go's JSON keys ``country``,
  ``state``, ``location``, ``org``, ``unit``, ``domain``, ``mail``) — with ``CN=<domain>``, not
  contract-go's ``<domain>C`` — and signs it with the (possibly password-protected) key;
- :func:`issue_signing_certificate` checks the CSR's own signature, that it is for the signing
  key, and that the CA key matches the CA certificate, then issues a certificate valid from
  now for ``days`` days;
- :func:`certificate_status` reports the window, and :func:`check_issued_by` the CA link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from kyok.contract.token import ContractError

__all__ = [
    "MAX_EXPIRY_DAYS",
    "CertificateStatus",
    "CsrParams",
    "build_csr",
    "certificate_status",
    "check_issued_by",
    "issue_signing_certificate",
    "load_ca_key",
    "load_certificate",
    "load_csr",
]

MAX_EXPIRY_DAYS = 3650
_CSR_KEYS = {
    "country": NameOID.COUNTRY_NAME,
    "state": NameOID.STATE_OR_PROVINCE_NAME,
    "location": NameOID.LOCALITY_NAME,
    "org": NameOID.ORGANIZATION_NAME,
    "unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "domain": NameOID.COMMON_NAME,
    "mail": NameOID.EMAIL_ADDRESS,
}

CaKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


@dataclass(frozen=True)
class CsrParams:
    """The subject of a signing-key CSR (contract-go's CSR-parameter JSON).

    ``domain`` becomes the common name; the others are optional. ``country`` must be a
    two-letter code.
    """

    domain: str
    country: str = ""
    state: str = ""
    location: str = ""
    org: str = ""
    unit: str = ""
    mail: str = ""

    @classmethod
    def from_json(cls, data: bytes | str) -> CsrParams:
        """Read the JSON object contract-go and contract-cli take (``--csrParam``).

        Raises:
            ContractError: not a JSON object of strings, an unknown key, or no ``domain``.
        """
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ContractError("the CSR parameters are not valid JSON") from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise ContractError("the CSR parameters must be a JSON object of strings")
        unknown = sorted(set(obj) - set(_CSR_KEYS))
        if unknown:
            raise ContractError(
                f"unknown CSR parameter(s) {', '.join(unknown)}: use {', '.join(_CSR_KEYS)}"
            )
        if not obj.get("domain"):
            raise ContractError("the CSR parameters need 'domain' (the certificate's common name)")
        return cls(**obj)

    def subject(self) -> x509.Name:
        """The X.509 subject: C, ST, L, O, OU, CN, emailAddress (empty fields left out)."""
        if self.country and len(self.country) != 2:
            raise ContractError("'country' must be a two-letter code such as DE or US")
        attrs = [
            x509.NameAttribute(oid, getattr(self, name))
            for name, oid in _CSR_KEYS.items()
            if getattr(self, name)
        ]
        return x509.Name(attrs)


@dataclass(frozen=True)
class CertificateStatus:
    """The validity window of a certificate at a given time.

    Attributes:
        not_before / not_after: the window (UTC).
        valid: ``not_before <= now <= not_after``.
        days_left: whole days until notAfter (negative once expired).
    """

    subject: str
    not_before: datetime
    not_after: datetime
    valid: bool
    days_left: int


def load_certificate(data: bytes) -> x509.Certificate:
    """Load a PEM or DER certificate.

    Raises:
        ContractError: not a certificate.
    """
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ContractError("the data is not a PEM or DER X.509 certificate") from None


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Load a PEM or DER CSR and check its self-signature.

    Raises:
        ContractError: not a CSR, or its signature does not verify.
    """
    try:
        csr = (
            x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
        )
    except ValueError:
        raise ContractError("the data is not a PEM or DER certificate signing request") from None
    if not csr.is_signature_valid:
        raise ContractError("the CSR's signature does not verify: it was altered or is broken")
    return csr


def load_ca_key(data: bytes, password: bytes | None = None) -> CaKey:
    """Load the CA's private key (RSA, EC, Ed25519 or Ed448; PEM or DER, encrypted or not).

    Raises:
        ContractError: not a private key of those kinds, or a wrong or missing password.
    """
    try:
        key = (
            serialization.load_pem_private_key(data, password=password or None)
            if b"-----BEGIN" in data
            else serialization.load_der_private_key(data, password=password or None)
        )
    except TypeError:
        raise ContractError(
            "the CA key is encrypted and no password was given, or a password was given for a "
            "key that is not encrypted"
        ) from None
    except ValueError:
        raise ContractError(
            "the CA key does not load: wrong password, or not a private key"
        ) from None
    if not isinstance(key, CaKey):
        raise ContractError("the CA key must be RSA, EC, Ed25519 or Ed448")
    return key


def build_csr(private_key: rsa.RSAPrivateKey, params: CsrParams) -> x509.CertificateSigningRequest:
    """A CSR for the signing key, subject from ``params``, signed with SHA-256."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ContractError("the signing key must be an RSA private key")
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(params.subject())
        .sign(private_key, hashes.SHA256())
    )


def _same_key(a: object, b: object) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        a.public_bytes(serialization.Encoding.DER, fmt)  # type: ignore[attr-defined]
        == b.public_bytes(serialization.Encoding.DER, fmt)  # type: ignore[attr-defined]
    )


def issue_signing_certificate(
    csr: x509.CertificateSigningRequest,
    ca_certificate: x509.Certificate,
    ca_key: CaKey,
    *,
    days: int,
    signing_key: rsa.RSAPublicKey | None = None,
    now: datetime | None = None,
) -> x509.Certificate:
    """Issue the contract-signing certificate: valid from ``now`` for ``days`` days.

    Args:
        csr: the signing key's CSR (see :func:`build_csr` / :func:`load_csr`).
        ca_certificate / ca_key: the user's own CA.
        days: the contract's lifetime, 1 to 3650 days.
        signing_key: when given, the CSR must be for this key (the key that signs the contract);
            a certificate for another key would make the contract fail at boot.
        now: the issue time (UTC); defaults to the current time.

    Raises:
        ContractError: bad ``days``, a CSR whose signature fails or that is for another key, a CA
            key that does not match the CA certificate, or a CA certificate that is expired.
    """
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXPIRY_DAYS:
        raise ContractError(f"the expiry must be between 1 and {MAX_EXPIRY_DAYS} days")
    if not csr.is_signature_valid:
        raise ContractError("the CSR's signature does not verify: it was altered or is broken")
    subject_key = csr.public_key()
    if not isinstance(subject_key, rsa.RSAPublicKey):
        raise ContractError("the CSR is not for an RSA key: contract signatures use RSA")
    if signing_key is not None and not _same_key(subject_key, signing_key):
        raise ContractError(
            "the CSR is for a different key than the contract's signing key (--priv): "
            "make the CSR with that key"
        )
    if not _same_key(ca_key.public_key(), ca_certificate.public_key()):
        raise ContractError("the CA key does not belong to the CA certificate")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    if not ca_certificate.not_valid_before_utc <= when <= ca_certificate.not_valid_after_utc:
        raise ContractError("the CA certificate is not valid now (expired or not yet valid)")
    not_after = when + timedelta(days=days)
    if not_after > ca_certificate.not_valid_after_utc:
        raise ContractError(
            "the CA certificate expires before the contract would: renew the CA or shorten --expiry"
        )
    algorithm = (
        None
        if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_certificate.subject)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(when)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca_key, algorithm)


def certificate_status(
    certificate: x509.Certificate, *, now: datetime | None = None
) -> CertificateStatus:
    """The validity window of ``certificate`` at ``now`` (UTC, default: the current time)."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    return CertificateStatus(
        subject=certificate.subject.rfc4514_string(),
        not_before=not_before,
        not_after=not_after,
        valid=not_before <= when <= not_after,
        days_left=(not_after - when).days,
    )


def check_issued_by(certificate: x509.Certificate, ca_certificate: x509.Certificate) -> None:
    """Check that ``ca_certificate`` issued ``certificate`` (name and signature).

    Raises:
        ContractError: it did not.
    """
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise ContractError(
            "the signing certificate was not issued by this CA certificate"
        ) from None
