"""Hyper Protect attestation records: decrypt, parse, verify, compare with a contract (reference
hpcr-contract.md §5).

An HPVS/CCRT instance writes an attestation record to ``/var/hyperprotect``: ``se-checksums.txt``,
or ``se-checksums.txt.enc`` (a section token, reference §2) when the contract has an
``attestationPublicKey``, and ``se-signature.bin``, an RSASSA-PKCS1-v1_5/SHA-256 signature over
the *plaintext* record by IBM's attestation key. The record is::

    24.3.3                                              <- line 1: the image version
    Machine Type/Plant/Serial: 8562/02/4C598            <- optional "Key: value" metadata lines
    3879908b…e3d0ea cidata/user-data                    <- "<sha256 hex> <label>"; a label may
    37f04773…49623e contract: env                          contain spaces

This module answers "does this instance run the contract I expect?":

- :func:`open_record` decrypts the token (or passes a plaintext record through) and
  :func:`parse_record` reads it;
- :func:`verify_record_signature` checks ``se-signature.bin`` with the attestation certificate;
- :func:`verify_chain` checks that certificate up to a root you trust (names, signatures, CA
  constraints, validity windows) and :func:`check_revocation` checks CRLs you supply (their
  signature and dates, and that no certificate of the chain is listed). Everything comes from
  files: there is no network access;
- :func:`expected_checksums` computes what the record should say for a contract (sha256 of the
  exact user-data bytes for ``cidata/user-data``; sha256 of each section's value for
  ``workload``, ``env`` and ``attestationPublicKey`` under all three label forms) and
  :func:`diff_checksums` compares the two;
- :func:`verify_attestation` runs all of it and returns a report of named checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID

from kyok.contract.token import ContractError, TokenError, decrypt_token

__all__ = [
    "SECTION_LABEL_FORMS",
    "SECTION_NAMES",
    "USER_DATA_LABEL",
    "AttestationError",
    "AttestationRecord",
    "AttestationReport",
    "CertificateProblem",
    "Check",
    "CheckStatus",
    "Checksum",
    "ChecksumDiff",
    "DiffEntry",
    "DiffStatus",
    "Expectation",
    "MetadataLine",
    "RecordFormatError",
    "RecordSignatureInvalid",
    "check_revocation",
    "describe",
    "diff_checksums",
    "expected_checksums",
    "load_certificate",
    "load_certificates",
    "load_crl",
    "load_signature",
    "load_verification_key",
    "open_record",
    "parse_record",
    "verify_attestation",
    "verify_chain",
    "verify_record_signature",
]

USER_DATA_LABEL = "cidata/user-data"
#: Contract sections whose value the record hashes (23.x: attestationPublicKey only).
SECTION_NAMES: tuple[str, ...] = ("workload", "env", "attestationPublicKey")
#: How images label a section's hash: 24.3 ``env``, 24.6 ``contract: env``, 26.x ``contract:env``.
SECTION_LABEL_FORMS: tuple[str, ...] = ("{}", "contract: {}", "contract:{}")

_CHECKSUM = re.compile(r"([0-9a-fA-F]{64})(?:[ \t]+(.*))?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_CHAIN = 8
_WEAK_HASHES = (hashes.SHA1, hashes.MD5)
_ISSUER_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    dsa.DSAPublicKey,
)

#: What the labels we cannot compute from a contract hold (shown next to "unknown" entries).
_LABEL_NOTES: dict[str, str] = {
    "root.tar.gz": "image constant: compare with IBM's published value for this image (--expect)",
    "baseimage": "image constant: compare with IBM's published value for this image (--expect)",
    "/dev/disk/by-label/cidata": "the whole cloud-init disk: made by the cloud, not reproducible",
    "cidata/meta-data": "written by the cloud, not by you",
    "cidata/vendor-data": "written by the cloud, not by you",
    "user-data.decrypted": "serialized by the instance itself: not reproducible offline",
    "sbom": "image constant (software bill of materials)",
    "certificate_expiry_date.json": "written by the instance",
}


class AttestationError(ContractError):
    """An attestation record, signature, certificate or CRL is unusable or does not verify."""

    code = "CONTRACT_ATTESTATION_ERR"


class RecordFormatError(AttestationError):
    """The bytes are not an attestation record (or were decrypted with the wrong key)."""

    code = "CONTRACT_RECORD_FORMAT_ERR"


class RecordSignatureInvalid(AttestationError):
    """``se-signature.bin`` does not verify over the record with the attestation key."""

    code = "CONTRACT_RECORD_SIGNATURE_ERR"


class CertificateProblem(AttestationError):
    """The attestation certificate, its chain or a CRL fails a check (the message says which)."""

    code = "CONTRACT_CERTIFICATE_ERR"


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class Checksum:
    """One ``<sha256> <label>`` line: the digest (lowercase hex), the label, the line number."""

    digest: str
    label: str
    line: int


@dataclass(frozen=True)
class MetadataLine:
    """A line that is neither the version nor a checksum, e.g. ``Image age: 3 days …``.

    ``key`` is the text before the first colon (None if there is no colon), ``value`` the rest.
    """

    key: str | None
    value: str
    line: int


@dataclass(frozen=True)
class AttestationRecord:
    """A parsed attestation record.

    Attributes:
        version: the image version (line 1).
        metadata: the ``Key: value`` lines, in order.
        checksums: the checksum lines, in order (a label appears once).
        raw: the record's bytes, as signed.
    """

    version: str
    metadata: tuple[MetadataLine, ...]
    checksums: tuple[Checksum, ...]
    raw: bytes = field(repr=False)

    def digest(self, label: str) -> str | None:
        """The digest recorded for ``label``, or None."""
        for item in self.checksums:
            if item.label == label:
                return item.digest
        return None

    def as_dict(self) -> dict[str, str]:
        """``{label: digest}`` for every checksum line."""
        return {c.label: c.digest for c in self.checksums}


def parse_record(data: bytes | str) -> AttestationRecord:
    """Parse an attestation record (reference §5.2), tolerating what real records vary in.

    Line 1 is the version; lines of 64 hex digits, white space and a label are checksums (the
    label is the rest of the line and may contain spaces; trailing white space is dropped);
    every other non-empty line is metadata. CRLF line ends and a missing final newline are
    accepted.

    Raises:
        RecordFormatError: not UTF-8 text, control characters, no version line, no checksum
            line, a checksum without a label, or one label with two different digests.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordFormatError(
            "the record is not text: was it decrypted with the right private key?"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    for number, line in enumerate(lines, start=1):
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in line):
            raise RecordFormatError(
                f"line {number} of the record holds control characters: this is not an "
                "attestation record (or the private key is wrong)"
            )
    if not lines or not lines[0].strip():
        raise RecordFormatError(
            "the record is empty, or its first line (the image version) is blank"
        )
    version = lines[0].strip()
    if _CHECKSUM.fullmatch(version):
        raise RecordFormatError("the record's first line is a checksum, not the image version")
    metadata: list[MetadataLine] = []
    checksums: list[Checksum] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        match = _CHECKSUM.fullmatch(line.strip())
        if match is None:
            key, sep, value = line.partition(":")
            metadata.append(
                MetadataLine(key.strip(), value.strip(), number)
                if sep
                else MetadataLine(None, line.strip(), number)
            )
            continue
        digest, label = match.group(1).lower(), (match.group(2) or "").strip()
        if not label:
            raise RecordFormatError(f"line {number} of the record has a checksum but no label")
        if label in seen:
            if seen[label] != digest:
                raise RecordFormatError(
                    f"the record gives two different checksums for {label!r}: it is ambiguous "
                    "and cannot be trusted"
                )
            continue
        seen[label] = digest
        checksums.append(Checksum(digest, label, number))
    if not checksums:
        raise RecordFormatError("the record holds no checksum lines")
    return AttestationRecord(version, tuple(metadata), tuple(checksums), raw)


def open_record(data: bytes, private_key: rsa.RSAPrivateKey | None = None) -> bytes:
    """The plaintext record from ``se-checksums.txt.enc`` (a token) or ``se-checksums.txt``.

    Args:
        data: the file's bytes.
        private_key: the private key of the contract's ``attestationPublicKey``; needed only
            when the record is encrypted.

    Raises:
        AttestationError: the record is encrypted and no private key was given.
        TokenError: the token is malformed or does not decrypt with this key (including the
            rare wrong-key decryption that passes the padding check but yields no text).
    """
    text = bytes(data).strip()
    try:
        candidate = text.decode("ascii")
    except UnicodeDecodeError:
        return bytes(data)
    # A plain record has several lines with spaces; a token is one word with two dots (a
    # malformed one goes to the token module too, which says what is wrong with it).
    if candidate.count(".") == 2 and not any(c.isspace() for c in candidate):
        if private_key is None:
            raise AttestationError(
                "the record is encrypted (se-checksums.txt.enc): give the private key that "
                "matches the contract's attestationPublicKey"
            )
        plain = decrypt_token(candidate, private_key)
        # The token format has no MAC, and RSA PKCS#1 v1.5 decryption with a wrong key yields
        # random bytes instead of an error (implicit rejection), so about 1 in 200 wrong-key
        # decryptions passes the padding check. A record is text: random bytes are not.
        try:
            plain.decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError("the token does not decrypt with this private key") from None
        return plain
    return bytes(data)


# ---------------------------------------------------------------- keys, certificates, CRLs


def describe(cert: x509.Certificate) -> str:
    """A short name for a certificate: its CN, else its whole subject."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return cert.subject.rfc4514_string() or "(empty subject)"


def load_certificates(data: bytes, *, what: str = "certificate file") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one certificate of a DER file.

    Raises:
        AttestationError: no certificate could be read.
    """
    data = bytes(data)
    if b"-----BEGIN" in data:
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise AttestationError(f"the {what} holds no PEM certificate")
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            raise AttestationError(f"the {what} holds a malformed PEM certificate") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise AttestationError(f"the {what} is neither a PEM nor a DER certificate") from None


def load_certificate(data: bytes, *, what: str = "certificate") -> x509.Certificate:
    """Exactly one certificate (PEM or DER).

    Raises:
        AttestationError: none, or more than one.
    """
    certs = load_certificates(data, what=what)
    if len(certs) != 1:
        raise AttestationError(
            f"the {what} file holds {len(certs)} certificates; give that certificate alone "
            "(the intermediates go with --chain, the root with --root)"
        )
    return certs[0]


def load_verification_key(
    data: bytes,
) -> tuple[rsa.RSAPublicKey, x509.Certificate | None]:
    """The attestation key from IBM's attestation certificate (or from a bare PEM public key).

    Returns:
        The RSA public key, and the certificate if the data was one (chain and validity checks
        need it).

    Raises:
        AttestationError: neither a certificate nor a public key, or not RSA.
    """
    data = bytes(data)
    cert: x509.Certificate | None = None
    if b"-----BEGIN PUBLIC KEY-----" in data or b"-----BEGIN RSA PUBLIC KEY-----" in data:
        try:
            key: object = serialization.load_pem_public_key(data)
        except ValueError:
            raise AttestationError("the attestation public key is not a valid PEM key") from None
    else:
        cert = load_certificate(data, what="attestation certificate")
        key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AttestationError(
            "the attestation key is not RSA: IBM signs attestation records with RSA-4096"
        )
    return key, cert


def load_signature(data: bytes, key: rsa.RSAPublicKey) -> bytes:
    """``se-signature.bin`` as raw bytes (base64 of it is accepted too).

    Raises:
        AttestationError: the length does not fit the key.
    """
    size = (key.key_size + 7) // 8
    data = bytes(data)
    if len(data) == size:
        return data
    try:
        decoded = base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == size:
        return decoded
    raise AttestationError(
        f"the signature is {len(data)} bytes, but an RSA-{key.key_size} key makes {size}-byte "
        "signatures: is it se-signature.bin, and the right attestation certificate?"
    )


def load_crl(data: bytes, *, what: str = "CRL") -> x509.CertificateRevocationList:
    """A certificate revocation list, PEM or DER.

    Raises:
        AttestationError: not a CRL.
    """
    data = bytes(data)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise AttestationError(
            f"the {what} is not a PEM or DER certificate revocation list"
        ) from None


# ---------------------------------------------------------------- signature and chain


def verify_record_signature(
    record: bytes, signature: bytes, key: x509.Certificate | rsa.RSAPublicKey
) -> None:
    """Check ``se-signature.bin`` (RSASSA-PKCS1-v1_5 with SHA-256) over the plaintext record.

    The same check as ``openssl sha256 -verify pub.pem -signature se-signature.bin
    se-checksums.txt``.

    Raises:
        RecordSignatureInvalid: it does not verify (the record was altered, or the key is not
            the one that signed it).
        AttestationError: the key is not RSA.
    """
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    if not isinstance(public, rsa.RSAPublicKey):
        raise AttestationError("the attestation key is not RSA")
    try:
        public.verify(bytes(signature), bytes(record), PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise RecordSignatureInvalid(
            "the record's signature does not verify with the attestation certificate: the "
            "record was altered, or the certificate is not the one for this image"
        ) from None


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("give the verification time with a time zone (UTC)")
    return now.astimezone(UTC)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_validity(cert: x509.Certificate, now: datetime, role: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateProblem(
            f"the {role} {describe(cert)!r} is not valid before {_stamp(cert.not_valid_before_utc)}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateProblem(
            f"the {role} {describe(cert)!r} expired on {_stamp(cert.not_valid_after_utc)}"
        )
    if isinstance(cert.signature_hash_algorithm, _WEAK_HASHES):
        raise CertificateProblem(
            f"the {role} {describe(cert)!r} is signed with {cert.signature_hash_algorithm.name}, "
            "which is too weak to trust"
        )


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_issuer_may_sign(issuer: x509.Certificate, below: int) -> None:
    """``issuer`` is a CA allowed to issue certificates with ``below`` CAs under it."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateProblem(
            f"{describe(issuer)!r} signs another certificate but is not a CA certificate "
            "(basicConstraints CA:TRUE is missing)"
        )
    if constraints.path_length is not None and below > constraints.path_length:
        raise CertificateProblem(
            f"{describe(issuer)!r} allows {constraints.path_length} CA certificates below it, "
            f"the chain has {below}"
        )
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateProblem(
            f"the key usage of {describe(issuer)!r} does not allow signing certificates"
        )


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
) -> tuple[x509.Certificate, ...]:
    """Build and check the path from ``leaf`` to one of ``roots`` (the trust anchors).

    For IBM's attestation certificate the path is attestation certificate ← IBM intermediate ←
    "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1" ← DigiCert Trusted Root G4.
    Intermediates may be given in any order. Each link must match by name and verify by
    signature; every issuer must be a CA (basicConstraints, path length, keyCertSign); every
    certificate, the root included, must be inside its validity window at ``now`` and not
    signed with SHA-1 or MD5.

    Args:
        leaf: the attestation certificate.
        intermediates: candidate intermediate certificates.
        roots: trusted root certificates.
        now: the time to check validity at (default: now).

    Returns:
        The chain, leaf first, ending with the root.

    Raises:
        CertificateProblem: no path, or a check fails (the message names the certificate).
        ContractError: no root was given.
    """
    at = _aware(now)
    if not roots:
        raise ContractError("give the root certificate to check the chain against (--root)")
    pool = list(intermediates)
    chain = [leaf]
    current = leaf
    _check_validity(leaf, at, "attestation certificate")
    if any(leaf == root for root in roots):
        return (leaf,)
    for _ in range(_MAX_CHAIN):
        candidates = [c for c in (*roots, *pool) if c.subject == current.issuer]
        if not candidates:
            raise CertificateProblem(
                f"no given certificate is the issuer of {describe(current)!r} (issued by "
                f"{current.issuer.rfc4514_string()!r}): add it with --chain or --root"
            )
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            raise CertificateProblem(
                f"the signature on {describe(current)!r} does not verify with the key of "
                f"{describe(candidates[0])!r}: the certificate was not issued by it"
            )
        _check_issuer_may_sign(issuer, below=len(chain) - 1)
        is_root = any(issuer == root for root in roots)
        _check_validity(issuer, at, "root certificate" if is_root else "intermediate certificate")
        chain.append(issuer)
        if is_root:
            return tuple(chain)
        pool.remove(issuer)
        current = issuer
    raise CertificateProblem(
        f"no path to a given root within {_MAX_CHAIN} certificates: is the right root given?"
    )


def check_revocation(
    chain: Sequence[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList],
    *,
    now: datetime | None = None,
) -> tuple[str, ...]:
    """Check ``chain`` (leaf first, from :func:`verify_chain`) against the given CRLs.

    Each CRL must come from an issuer in the chain, verify with that issuer's key (whose key
    usage, if stated, allows cRLSign), and be current (``thisUpdate ≤ now ≤ nextUpdate``); the
    certificate that issuer signed in the chain must not be listed.

    Returns:
        One line per certificate of the chain below the root: which CRL cleared it, or that no
        CRL from its issuer was given.

    Raises:
        CertificateProblem: a CRL is foreign, badly signed or out of date, or a certificate of
            the chain is revoked.
    """
    at = _aware(now)
    checked: dict[int, list[str]] = {}
    for crl in crls:
        position = next((i for i, c in enumerate(chain) if c.subject == crl.issuer and i > 0), None)
        if position is None:
            raise CertificateProblem(
                f"the CRL issued by {crl.issuer.rfc4514_string()!r} belongs to no issuer in the "
                "attestation certificate's chain"
            )
        issuer, child = chain[position], chain[position - 1]
        usage = _extension(issuer, x509.KeyUsage)
        if usage is not None and not usage.crl_sign:
            raise CertificateProblem(
                f"the key usage of {describe(issuer)!r} does not allow signing CRLs"
            )
        key = issuer.public_key()
        if not isinstance(key, _ISSUER_KEYS) or not crl.is_signature_valid(key):
            raise CertificateProblem(
                f"the CRL from {describe(issuer)!r} does not verify with its issuer's key: it "
                "is forged or damaged"
            )
        if at < crl.last_update_utc:
            raise CertificateProblem(
                f"the CRL from {describe(issuer)!r} is not valid before "
                f"{_stamp(crl.last_update_utc)}"
            )
        if crl.next_update_utc is not None and at > crl.next_update_utc:
            raise CertificateProblem(
                f"the CRL from {describe(issuer)!r} is out of date (its next update was due "
                f"{_stamp(crl.next_update_utc)}): get a current one"
            )
        revoked = crl.get_revoked_certificate_by_serial_number(child.serial_number)
        if revoked is not None:
            reason = _revocation_reason(revoked)
            raise CertificateProblem(
                f"{describe(child)!r} (serial {child.serial_number:#x}) was revoked by "
                f"{describe(issuer)!r} on {_stamp(revoked.revocation_date_utc)}{reason}"
            )
        checked.setdefault(position - 1, []).append(
            f"not revoked (CRL of {_stamp(crl.last_update_utc)})"
        )
    lines = []
    for i, cert in enumerate(chain[:-1]):
        status = "; ".join(checked.get(i, [])) or "not checked (no CRL from its issuer given)"
        lines.append(f"{describe(cert)}: {status}")
    return tuple(lines)


def _revocation_reason(revoked: x509.RevokedCertificate) -> str:
    try:
        reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return ""
    return f" (reason: {reason.name})"


# ---------------------------------------------------------------- the contract and the diff


@dataclass(frozen=True)
class Expectation:
    """A checksum the record should hold.

    Attributes:
        name: what it is, e.g. ``cidata/user-data`` or ``env``.
        digest: the sha256, lowercase hex.
        labels: the record labels that may carry it (any present one must match).
        source: how it was computed, for people.
        required: whether the record must carry it (``cidata/user-data`` and ``--expect``
            values are; section hashes are not, since older images do not record them).
    """

    name: str
    digest: str
    labels: tuple[str, ...]
    source: str
    required: bool


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_checksums(
    user_data: bytes | None = None, *, extra: Mapping[str, str] | None = None
) -> tuple[Expectation, ...]:
    """What a record should say for the contract ``user_data`` (and for ``extra`` labels).

    ``cidata/user-data`` is sha256 of the exact bytes given to the instance as user data, so
    pass the contract file exactly as submitted. Each section present among ``workload``,
    ``env`` and ``attestationPublicKey`` gives sha256 of its value (the token when encrypted,
    the block text with its final newline when plain), expected under ``X``, ``contract: X`` or
    ``contract:X``.

    Args:
        user_data: the contract as submitted, or None.
        extra: more ``{label: sha256 hex}`` to expect, e.g. IBM's published ``baseimage`` and
            ``root.tar.gz`` values for the image version.

    Raises:
        ContractError: the contract is not a YAML mapping, a section is not a string, or an
            extra digest is not 64 hex digits.
    """
    found: list[Expectation] = []
    if user_data is not None:
        user_data = bytes(user_data)
        found.append(
            Expectation(
                USER_DATA_LABEL,
                _sha256(user_data),
                (USER_DATA_LABEL,),
                "sha256 of the contract file",
                True,
            )
        )
        for name, value in _sections(user_data).items():
            found.append(
                Expectation(
                    name,
                    _sha256(value.encode("utf-8")),
                    tuple(form.format(name) for form in SECTION_LABEL_FORMS),
                    f"sha256 of the contract's {name} value",
                    False,
                )
            )
    for label, digest in (extra or {}).items():
        if not isinstance(label, str) or not label.strip():
            raise ContractError("an expected label is empty")
        clean = digest.strip().lower() if isinstance(digest, str) else ""
        if not _HEX64.fullmatch(clean):
            raise ContractError(
                f"the expected checksum for {label!r} is not a sha256 (64 hex digits)"
            )
        found.append(Expectation(label, clean, (label,), "value given with --expect", True))
    return tuple(found)


def _sections(user_data: bytes) -> dict[str, str]:
    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError:
        raise ContractError(
            "the contract is not valid YAML: give the user data exactly as submitted"
        ) from None
    if not isinstance(doc, dict):
        raise ContractError("the contract is not a YAML mapping of sections")
    values: dict[str, str] = {}
    for name in SECTION_NAMES:
        if name not in doc:
            continue
        value = doc[name]
        if not isinstance(value, str):
            raise ContractError(
                f"the contract's {name} section is not a string (write it as a '|' block or a "
                "token): the instance would not accept it"
            )
        values[name] = value
    return values


class DiffStatus(StrEnum):
    """How a record line and an expectation compare."""

    MATCH = "match"
    MISMATCH = "mismatch"
    MISSING = "missing"  # expected, but the record has no such label
    UNKNOWN = "unknown"  # in the record, but nothing to compare it with


@dataclass(frozen=True)
class DiffEntry:
    """One row of a diff: a record label (or the expectation's name when missing)."""

    label: str
    status: DiffStatus
    recorded: str | None
    expected: str | None
    note: str
    required: bool = False


@dataclass(frozen=True)
class ChecksumDiff:
    """A record against expectations, in record order, then the missing ones."""

    entries: tuple[DiffEntry, ...]

    def having(self, status: DiffStatus) -> tuple[DiffEntry, ...]:
        """The entries with ``status``."""
        return tuple(e for e in self.entries if e.status is status)

    @property
    def ok(self) -> bool:
        """No mismatch, and nothing required is missing."""
        return not any(
            e.status is DiffStatus.MISMATCH or (e.status is DiffStatus.MISSING and e.required)
            for e in self.entries
        )


def diff_checksums(record: AttestationRecord, expected: Sequence[Expectation]) -> ChecksumDiff:
    """Compare a record with expectations (from :func:`expected_checksums`).

    Every record label an expectation covers is a match or a mismatch; an expectation with no
    label in the record is missing; other record labels are unknown (with a note on what they
    are).
    """
    by_label: dict[str, list[int]] = {}
    for index, expectation in enumerate(expected):
        for label in expectation.labels:
            by_label.setdefault(label, []).append(index)
    entries: list[DiffEntry] = []
    covered: set[int] = set()
    for line in record.checksums:
        indices = by_label.get(line.label)
        if not indices:
            entries.append(
                DiffEntry(
                    line.label,
                    DiffStatus.UNKNOWN,
                    line.digest,
                    None,
                    _LABEL_NOTES.get(line.label, "not computed from the contract"),
                )
            )
            continue
        covered.update(indices)
        items = [expected[i] for i in indices]
        # several expectations for one label (a contract value and an --expect): all must hold
        wrong = next((e for e in items if e.digest != line.digest), None)
        shown = wrong or items[0]
        entries.append(
            DiffEntry(
                line.label,
                DiffStatus.MATCH if wrong is None else DiffStatus.MISMATCH,
                line.digest,
                shown.digest,
                shown.source if wrong is None else f"differs from the {shown.source}",
                any(e.required for e in items),
            )
        )
    for index, item in enumerate(expected):
        if index not in covered:
            note = (
                "the record has no such line"
                if item.required
                else "the record has no such line (older images hash fewer sections)"
            )
            entries.append(
                DiffEntry(item.name, DiffStatus.MISSING, None, item.digest, note, item.required)
            )
    return ChecksumDiff(tuple(entries))


# ---------------------------------------------------------------- all checks together


class CheckStatus(StrEnum):
    """The outcome of one check."""

    PASS = "pass"  # noqa: S105 - not a password
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One named check and what it found."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class AttestationReport:
    """The result of :func:`verify_attestation`.

    ``ok`` holds only when the signature verified and no check failed.
    """

    record: AttestationRecord | None
    checks: tuple[Check, ...]
    diff: ChecksumDiff | None

    @property
    def ok(self) -> bool:
        """Whether everything that was checked passed (and the signature was checked)."""
        signed = any(c.name == "signature" and c.status is CheckStatus.PASS for c in self.checks)
        return signed and not any(c.status is CheckStatus.FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name``.

        Raises:
            KeyError: there is none.
        """
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


def verify_attestation(
    record: bytes,
    signature: bytes,
    key: x509.Certificate | rsa.RSAPublicKey,
    *,
    intermediates: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    contract: bytes | None = None,
    expect: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> AttestationReport:
    """Run every check on a decrypted record and return a report (nothing is raised for a
    failed check; each failure is a :class:`Check` with its reason).

    Checks, in order: ``record`` (it parses), ``signature`` (se-signature.bin with the
    attestation key), ``certificate`` (the attestation certificate's validity window),
    ``chain`` (up to a given root), ``revocation`` (the given CRLs), ``contract`` (the record's
    checksums against the contract and ``expect``). A check whose inputs were not given is
    ``skipped``.

    Args:
        record: the plaintext record (see :func:`open_record`).
        signature: se-signature.bin (raw, or base64).
        key: the attestation certificate, or a bare RSA public key (then no certificate checks).
        intermediates: the IBM and DigiCert intermediates.
        roots: the trusted root(s); without one the chain and CRLs are not checked.
        crls: CRLs to check the chain against (needs ``roots``).
        contract: the contract as submitted (user data), for the diff.
        expect: more ``{label: sha256}`` to expect.
        now: the time to check certificates and CRLs at (default: now).

    Raises:
        ContractError: unusable input: CRLs or intermediates without a root, a malformed
            contract or ``expect`` value, a key that is not RSA.
    """
    at = _aware(now)
    if (crls or intermediates) and not roots:
        raise ContractError(
            "the chain and CRLs are checked up to a trusted root: give the root certificate too"
        )
    checks: list[Check] = []
    expectations = (
        expected_checksums(contract, extra=expect) if contract is not None or expect else None
    )

    parsed: AttestationRecord | None = None
    try:
        parsed = parse_record(record)
        checks.append(
            Check(
                "record",
                CheckStatus.PASS,
                f"image {parsed.version}, {len(parsed.checksums)} checksums",
            )
        )
    except RecordFormatError as exc:
        checks.append(Check("record", CheckStatus.FAIL, exc.message))

    cert = key if isinstance(key, x509.Certificate) else None
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    if not isinstance(public, rsa.RSAPublicKey):
        raise AttestationError(
            "the attestation key is not RSA: IBM signs attestation records with RSA-4096"
        )
    try:
        verify_record_signature(record, load_signature(signature, public), public)
        who = describe(cert) if cert is not None else "the given public key"
        checks.append(Check("signature", CheckStatus.PASS, f"RSA/SHA-256 signature by {who}"))
    except AttestationError as exc:
        checks.append(Check("signature", CheckStatus.FAIL, exc.message))

    if cert is None:
        checks.append(Check("certificate", CheckStatus.SKIPPED, "a bare public key was given"))
    else:
        try:
            _check_validity(cert, at, "attestation certificate")
            checks.append(
                Check(
                    "certificate",
                    CheckStatus.PASS,
                    f"valid {_stamp(cert.not_valid_before_utc)} to "
                    f"{_stamp(cert.not_valid_after_utc)}",
                )
            )
        except CertificateProblem as exc:
            checks.append(Check("certificate", CheckStatus.FAIL, exc.message))

    chain: tuple[x509.Certificate, ...] | None = None
    if not roots or cert is None:
        why = "no root certificate given" if cert is not None else "no certificate given"
        checks.append(Check("chain", CheckStatus.SKIPPED, why))
    else:
        try:
            chain = verify_chain(cert, intermediates, roots, now=at)
            checks.append(Check("chain", CheckStatus.PASS, " ← ".join(describe(c) for c in chain)))
        except CertificateProblem as exc:
            checks.append(Check("chain", CheckStatus.FAIL, exc.message))

    if not crls:
        checks.append(Check("revocation", CheckStatus.SKIPPED, "no CRL given"))
    elif chain is None:
        checks.append(
            Check("revocation", CheckStatus.FAIL, "the chain did not verify, so CRLs cannot be")
        )
    else:
        try:
            lines = check_revocation(chain, crls, now=at)
            checks.append(Check("revocation", CheckStatus.PASS, "; ".join(lines)))
        except CertificateProblem as exc:
            checks.append(Check("revocation", CheckStatus.FAIL, exc.message))

    diff: ChecksumDiff | None = None
    if expectations is None:
        checks.append(Check("contract", CheckStatus.SKIPPED, "no contract or expected value"))
    elif parsed is None:
        checks.append(Check("contract", CheckStatus.FAIL, "the record did not parse"))
    else:
        diff = diff_checksums(parsed, expectations)
        checks.append(_contract_check(diff))
    return AttestationReport(parsed, tuple(checks), diff)


def _contract_check(diff: ChecksumDiff) -> Check:
    matched = diff.having(DiffStatus.MATCH)
    if diff.ok:
        names = ", ".join(e.label for e in matched) or "nothing"
        return Check("contract", CheckStatus.PASS, f"{len(matched)} match: {names}")
    problems = [f"{e.label} differs" for e in diff.having(DiffStatus.MISMATCH)]
    problems += [
        f"{e.label} is not in the record" for e in diff.having(DiffStatus.MISSING) if e.required
    ]
    return Check("contract", CheckStatus.FAIL, "; ".join(problems))
