"""Whole contracts: parse and write YAML, encrypt, sign, verify, decrypt, validate, inspect.

A contract is a YAML mapping whose values are strings (reference §1): ``workload`` and ``env``
(plaintext YAML or a token), optionally ``attestationPublicKey`` and ``envWorkloadSignature``.

What kyok does differently from contract-go (reference §2.4, §8.1), on purpose:

- sections are encrypted exactly as written: no whitespace is trimmed;
- ``signingKey`` is added to ``env`` by appending one line when it is absent, so the deployer's
  comments and layout survive; only an existing, different ``signingKey`` makes kyok re-write
  env (key order kept);
- an already encrypted ``workload`` (the workload provider's usual hand-over) is kept as it is;
- contracts are written with sorted keys, tokens as plain scalars, plaintext as ``|`` blocks,
  no line folding — so ``parse_contract(dump_contract(c)) == c`` always holds.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from kyok.contract.expiry import CertificateStatus, certificate_status, check_issued_by
from kyok.contract.schema import (
    PLATFORMS,
    ContractInvalid,
    Issue,
    format_path,
    validate_section,
)
from kyok.contract.sections import list_tgz
from kyok.contract.signing import (
    SignatureMismatch,
    SigningKey,
    decode_signing_key,
    encode_signing_key,
    public_key_pem,
    sign_sections,
    verify_sections,
)
from kyok.contract.token import (
    PREFIX_CONTRACT,
    PREFIX_HPVS,
    ContractError,
    TokenError,
    decrypt_token,
    encrypt_token,
    is_token,
    load_encryption_key,
    parse_token,
)

__all__ = [
    "MAX_CONTRACT_BYTES",
    "SECTION_KEYS",
    "Contract",
    "ContractInspection",
    "SectionReport",
    "SignatureReport",
    "ValidationReport",
    "decrypt_contract",
    "dump_contract",
    "encrypt_contract",
    "inspect_contract",
    "parse_contract",
    "parse_section",
    "prefix_for",
    "sign_contract",
    "validate_contract",
    "verify_contract",
    "with_signing_key",
]

MAX_CONTRACT_BYTES = 16 * 1024 * 1024
SECTION_KEYS: tuple[str, ...] = ("workload", "env", "attestationPublicKey", "envWorkloadSignature")
_FIELDS = {
    "workload": "workload",
    "env": "env",
    "attestationPublicKey": "attestation_public_key",
    "envWorkloadSignature": "env_workload_signature",
}
_PLATFORM_PREFIX = {
    "hpvs": PREFIX_HPVS,
    "ccco": PREFIX_HPVS,
    "ccrt": PREFIX_CONTRACT,
    "ccrv": PREFIX_CONTRACT,
}


def prefix_for(platform: str) -> str:
    """The token prefix for a platform: ``contract-basic`` for ccrt/ccrv, else ``hyper-protect-basic``."""
    if platform not in _PLATFORM_PREFIX:
        raise ContractError(f"unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    return _PLATFORM_PREFIX[platform]


@dataclass(frozen=True)
class Contract:
    """A contract: each section is the string value found in the YAML, or None when absent.

    ``workload`` and ``env`` may hold secrets in plaintext, so the repr only says what kind of
    value each section holds.
    """

    workload: str | None = field(default=None, repr=False)
    env: str | None = field(default=None, repr=False)
    attestation_public_key: str | None = field(default=None, repr=False)
    env_workload_signature: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        parts = [f"{key}=<{self.kind(key)}>" for key in SECTION_KEYS if self.get(key) is not None]
        return f"Contract({', '.join(parts)})"

    def get(self, key: str) -> str | None:
        """The value of the section named as in the YAML (``attestationPublicKey``…)."""
        if key not in _FIELDS:
            raise ContractError(f"unknown contract section {key!r}")
        value: str | None = getattr(self, _FIELDS[key])
        return value

    def with_section(self, key: str, value: str | None) -> Contract:
        """A copy with one section set (or removed with None)."""
        if key not in _FIELDS:
            raise ContractError(f"unknown contract section {key!r}")
        return replace(self, **{_FIELDS[key]: value})

    def present(self) -> dict[str, str]:
        """The sections that are present, by YAML name, in the contract's order."""
        out: dict[str, str] = {}
        for key in SECTION_KEYS:
            value = self.get(key)
            if value is not None:
                out[key] = value
        return out

    def is_encrypted(self, key: str) -> bool:
        """Whether the section holds a token."""
        value = self.get(key)
        return value is not None and is_token(value)

    def kind(self, key: str) -> str:
        """``encrypted``, ``plaintext`` or ``absent``."""
        value = self.get(key)
        if value is None:
            return "absent"
        return "encrypted" if is_token(value) else "plaintext"


# --- YAML --------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a second ``env:`` must not hide the first)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        with contextlib.suppress(TypeError):  # an unhashable key fails in construct_mapping
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _load_yaml(text: str, what: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or "syntax error"
        if problem.startswith("duplicate key"):
            problem = "a key appears twice"
        raise ContractError(f"{what} is not valid YAML{where}: {problem}") from None
    except yaml.YAMLError:
        raise ContractError(f"{what} is not valid YAML") from None


def _text(data: str | bytes, what: str) -> str:
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_CONTRACT_BYTES:
            raise ContractError(f"{what} is larger than {MAX_CONTRACT_BYTES} bytes")
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(f"{what} is not UTF-8 text") from None
    if len(data) > MAX_CONTRACT_BYTES:
        raise ContractError(f"{what} is larger than {MAX_CONTRACT_BYTES} bytes")
    return data


def parse_contract(data: str | bytes) -> Contract:
    """Read a contract (user-data) YAML.

    Raises:
        ContractError: not YAML, not a mapping, an unknown or duplicate key, or a section whose
            value is not a string (write plaintext sections as ``|`` blocks).
    """
    doc = _load_yaml(_text(data, "the contract"), "the contract")
    if not isinstance(doc, Mapping):
        raise ContractError(
            "the contract must be a YAML mapping with workload and env (and optionally "
            "attestationPublicKey and envWorkloadSignature)"
        )
    unknown = sorted(str(k) for k in doc if k not in _FIELDS)
    if unknown and doc.get("type") in ("workload", "env"):
        kind = doc["type"]
        raise ContractError(
            f"this is a raw {kind} section, not a contract: put it under '{kind}: |' "
            f"(validate-contract also takes it with --type {kind})"
        )
    if unknown:
        raise ContractError(
            f"unknown top-level key(s) {', '.join(unknown)}: a contract holds only "
            f"{', '.join(SECTION_KEYS)}"
        )
    values: dict[str, str] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise ContractError(
                f"{key} must be a string: write a plaintext section as a '|' block "
                f"({key}: |) followed by its YAML, indented"
            )
        values[_FIELDS[key]] = value
    return Contract(**values)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(ch in value for ch in "\x85\u2028\u2029\ufeff"):
        style: str | None = '"'  # YAML line breaks other than \n survive only when escaped
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_contract(contract: Contract) -> str:
    """Write a contract as YAML: sorted keys, one line per token, ``|`` blocks for plaintext."""
    return yaml.dump(
        dict(sorted(contract.present().items())),
        Dumper=_Dumper,
        sort_keys=True,
        width=2**31 - 1,
        allow_unicode=True,
        default_flow_style=False,
    )


def parse_section(text: str, name: str) -> Any:
    """Parse one plaintext section's YAML (duplicate keys refused)."""
    return _load_yaml(text, f"the {name} section")


# --- signingKey injection ----------------------------------------------------------------------


def with_signing_key(env_text: str, value: str) -> str:
    """The env section's text with ``signingKey: <value>``.

    When env has no ``signingKey``, one line is appended, so comments and layout survive.
    When it has the same value, the text is returned unchanged. When it has another value,
    that line is replaced if it is a one-line entry, else env is re-written from its parsed
    form (keys in their order; comments are lost then).

    Raises:
        ContractError: env is not a YAML mapping.
    """
    doc = parse_section(env_text, "env")
    if not isinstance(doc, Mapping):
        raise ContractError("the env section must be a YAML mapping (type: env, logging: …)")
    if "\n" in value or not value.strip():
        raise ContractError("a signingKey value to inject must be one line (base64 of the PEM)")
    expected = {**doc, "signingKey": value}
    if doc.get("signingKey") == value:
        return env_text
    candidates: list[str] = []
    if "signingKey" not in doc:
        base = env_text if env_text.endswith("\n") or not env_text else env_text + "\n"
        candidates.append(f"{base}signingKey: {value}\n")
    else:
        lines = env_text.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.startswith("signingKey:"):
                end = "\n" if line.endswith("\n") else ""
                candidates.append(
                    "".join([*lines[:index], f"signingKey: {value}{end}", *lines[index + 1 :]])
                )
    for candidate in candidates:
        try:
            if parse_section(candidate, "env") == expected:
                return candidate
        except ContractError:
            continue
    rewritten: str = yaml.dump(
        expected, Dumper=_Dumper, sort_keys=False, width=2**31 - 1, allow_unicode=True
    )
    return rewritten


# --- sign, encrypt, decrypt --------------------------------------------------------------------


def _require_sections(contract: Contract, what: str) -> tuple[str, str]:
    if contract.workload is None or contract.env is None:
        missing = [k for k in ("workload", "env") if contract.get(k) is None]
        raise ContractError(f"cannot {what}: the contract has no {' and no '.join(missing)}")
    return contract.workload, contract.env


def sign_contract(contract: Contract, private_key: rsa.RSAPrivateKey) -> Contract:
    """Set ``envWorkloadSignature`` over the current workload and env values.

    Nothing else changes (contract-go ``HpcrContractSign``): the env section must already hold
    the matching ``signingKey`` for the instance to accept the contract.
    """
    workload, env = _require_sections(contract, "sign the contract")
    return replace(contract, env_workload_signature=sign_sections(workload, env, private_key))


def encrypt_contract(
    contract: Contract,
    encryption_key: rsa.RSAPublicKey,
    *,
    signing_key: rsa.RSAPrivateKey | None = None,
    signing_certificate: x509.Certificate | None = None,
    platform: str = "hpvs",
    legacy: bool = False,
    validate: bool = True,
) -> Contract:
    """Encrypt (and, with a signing key, sign) a contract for the platform's certificate.

    Steps (reference §2.4, §3, §7.1 #18/#19): validate the plaintext sections; add
    ``signingKey`` (base64 of the public key PEM, or of ``signing_certificate``) to env;
    encrypt workload (unless already a token) and env; sign workload‖env tokens; encrypt a
    plaintext ``attestationPublicKey``.

    Args:
        contract: the contract with plaintext sections (workload may already be a token).
        encryption_key: the platform's encryption key (:func:`~kyok.contract.token.load_encryption_key`).
        signing_key: the RSA key that signs the contract; None leaves it unsigned.
        signing_certificate: the CA-issued certificate for ``signing_key`` (contract expiry).
        platform: ``hpvs``, ``ccrt``, ``ccrv`` or ``ccco`` (token prefix and schema).
        legacy: validate with the older image rules.
        validate: validate plaintext sections first (and refuse to encrypt invalid ones).

    Raises:
        ContractInvalid: a plaintext section breaks the schema.
        ContractError: no workload/env, env already encrypted while a signature was asked for,
            or a certificate that is not for ``signing_key``.
    """
    prefix = prefix_for(platform)
    workload, env = _require_sections(contract, "encrypt the contract")
    if signing_certificate is not None and signing_key is None:
        raise ContractError("a signing certificate needs its private key (--priv) to sign")
    if validate:
        report = validate_contract(contract, platform=platform, legacy=legacy)
        if report.issues:
            raise ContractInvalid(report.issues)
    if signing_key is not None:
        if is_token(env):
            raise ContractError(
                "env is already encrypted, so kyok cannot add signingKey to it: give env in "
                "plaintext, or sign an already complete contract with sign-contract"
            )
        public = signing_key.public_key()
        if signing_certificate is not None:
            cert_key = signing_certificate.public_key()
            if not isinstance(cert_key, rsa.RSAPublicKey) or public_key_pem(
                cert_key
            ) != public_key_pem(public):
                raise ContractError("the signing certificate is not for the signing key (--priv)")
            value = encode_signing_key(signing_certificate)
        else:
            value = encode_signing_key(public)
        env = with_signing_key(env, value)
    workload_token = (
        workload
        if is_token(workload)
        else encrypt_token(workload.encode("utf-8"), encryption_key, prefix=prefix)
    )
    env_token = (
        env if is_token(env) else encrypt_token(env.encode("utf-8"), encryption_key, prefix=prefix)
    )
    attestation = contract.attestation_public_key
    if attestation is not None and not is_token(attestation):
        load_encryption_key(attestation.encode("utf-8"))  # a clear error before encrypting it
        attestation = encrypt_token(attestation.encode("utf-8"), encryption_key, prefix=prefix)
    result = Contract(
        workload=workload_token,
        env=env_token,
        attestation_public_key=attestation,
        env_workload_signature=None,
    )
    if signing_key is not None:
        result = sign_contract(result, signing_key)
    return result


def decrypt_contract(contract: Contract, private_key: rsa.RSAPrivateKey) -> Contract:
    """Decrypt every encrypted section; plaintext sections stay as they are.

    The result is for reading and checking: its signature (if any) was made over the tokens,
    so it does not verify over the decrypted values.

    Raises:
        TokenError: a section does not decrypt with ``private_key`` (its name is in the message).
    """
    out = contract
    for key, value in contract.present().items():
        if is_token(value):
            try:
                plain = decrypt_token(value, private_key)
            except TokenError as exc:
                raise TokenError(f"{key}: {exc.message}") from None
            try:
                out = out.with_section(key, plain.decode("utf-8"))
            except UnicodeDecodeError:
                raise TokenError(f"{key}: the decrypted section is not UTF-8 text") from None
    return out


# --- validation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`validate_contract`.

    Attributes:
        issues: every problem found, sorted by path.
        skipped: sections that could not be checked because they are encrypted and no
            private key was given.
    """

    issues: tuple[Issue, ...]
    skipped: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """No issues (skipped sections are not issues)."""
        return not self.issues

    def raise_if_invalid(self) -> None:
        """Raise :class:`~kyok.contract.schema.ContractInvalid` when there are issues."""
        if self.issues:
            raise ContractInvalid(self.issues)


def _archive_issues(value: Any, path: list[str | int], *, compose: bool) -> list[Issue]:
    if not isinstance(value, str):
        return []
    where = format_path(path)
    try:
        entries = list_tgz(value)
    except ContractError:
        return [Issue(where, "does not decode as base64 of a gzipped tar archive")]
    issues = [
        Issue(
            where, f"holds {e.name!r}, which is not a regular file or directory (links are refused)"
        )
        for e in entries
        if e.kind == "other"
    ]
    names = {e.name.removeprefix("./") for e in entries if e.kind == "file"}
    if compose and not names & {"docker-compose.yaml", "docker-compose.yml"}:
        issues.append(
            Issue(where, "has no docker-compose.yaml or docker-compose.yml at its top level")
        )
    return issues


def _deep_issues(workload: Any, env: Any, *, check_archives: bool) -> list[Issue]:
    issues: list[Issue] = []
    if isinstance(workload, Mapping) and check_archives:
        compose = workload.get("compose")
        if isinstance(compose, Mapping) and "archive" in compose:
            issues += _archive_issues(
                compose["archive"], ["workload", "compose", "archive"], compose=True
            )
        play = workload.get("play")
        if isinstance(play, Mapping) and "archive" in play:
            issues += _archive_issues(
                play["archive"], ["workload", "play", "archive"], compose=False
            )
    if isinstance(env, Mapping) and isinstance(env.get("signingKey"), str):
        try:
            decode_signing_key(env["signingKey"])
        except ContractError as exc:
            issues.append(Issue("env.signingKey", exc.message))
    if isinstance(workload, Mapping) and isinstance(env, Mapping):
        wv = workload.get("volumes")
        ev = env.get("volumes")
        w_names = set(wv) if isinstance(wv, Mapping) else set()
        e_names = set(ev) if isinstance(ev, Mapping) else set()
        issues += [
            Issue(
                format_path(["workload", "volumes", str(n)]),
                "has no matching env volume: both sections must give a seed for each volume",
            )
            for n in sorted(w_names - e_names, key=str)
        ]
        issues += [
            Issue(
                format_path(["env", "volumes", str(n)]),
                "has no matching workload volume (the names must match)",
            )
            for n in sorted(e_names - w_names, key=str)
        ]
    return issues


def validate_contract(
    contract: Contract,
    *,
    private_key: rsa.RSAPrivateKey | None = None,
    platform: str = "hpvs",
    legacy: bool = False,
    section: str | None = None,
    check_archives: bool = True,
) -> ValidationReport:
    """Validate a contract's sections against the schema, plus checks a schema cannot express.

    Plaintext sections are validated as they are; encrypted ones are decrypted first when
    ``private_key`` is given, and otherwise listed in ``skipped`` (a token's own form is still
    checked). Beyond the schema: ``signingKey`` must decode to an RSA key or certificate, volume
    names must match between workload and env, archives must decode (compose archives must hold
    a docker-compose file), and a plaintext ``attestationPublicKey`` must be an RSA public key.

    Args:
        section: ``workload`` or ``env`` to validate one section only; None for all.
        check_archives: decode ``compose.archive`` and ``play.archive`` and check their entries.
    """
    if section not in (None, "workload", "env"):
        raise ContractError(f"unknown section {section!r}: use workload, env, or none for both")
    issues: list[Issue] = []
    skipped: list[str] = []
    decoded: dict[str, Any] = {}
    wanted = ("workload", "env") if section is None else (section,)
    for name in wanted:
        value = contract.get(name)
        if value is None:
            issues.append(Issue(name, "is required"))
            continue
        if is_token(value):
            if private_key is None:
                skipped.append(name)
                continue
            try:
                value = decrypt_token(value, private_key).decode("utf-8")
            except (TokenError, UnicodeDecodeError):
                issues.append(Issue(name, "does not decrypt with the given private key"))
                continue
        elif value.strip().startswith(("hyper-protect-basic.", "contract-basic.")):
            try:
                parse_token(value)
            except TokenError as exc:
                issues.append(Issue(name, f"looks like a token but is broken: {exc.message}"))
                continue
        try:
            doc = parse_section(value, name)
        except ContractError as exc:
            issues.append(Issue(name, exc.message))
            continue
        decoded[name] = doc
        issues += validate_section(name, doc, platform=platform, legacy=legacy)
    if section is None:
        issues += _top_level_issues(contract)
    flagged = {issue.path for issue in issues}
    issues += [
        issue
        for issue in _deep_issues(
            decoded.get("workload"), decoded.get("env"), check_archives=check_archives
        )
        if issue.path not in flagged  # one message per place: the schema's comes first
    ]
    return ValidationReport(tuple(sorted(set(issues))), tuple(skipped))


def _top_level_issues(contract: Contract) -> list[Issue]:
    issues: list[Issue] = []
    apk = contract.attestation_public_key
    if apk is not None:
        if is_token(apk):
            pass
        elif apk.strip().startswith(("hyper-protect-basic.", "contract-basic.")):
            issues.append(Issue("attestationPublicKey", "looks like a token but is broken"))
        else:
            try:
                load_encryption_key(apk.encode("utf-8"))
            except ContractError:
                issues.append(
                    Issue(
                        "attestationPublicKey",
                        "must be an RSA public key in PEM, base64 of the PEM, or a token of either",
                    )
                )
    signature = contract.env_workload_signature
    if signature is not None:
        compact = "".join(signature.split())
        if not compact or len(compact) % 4 or not all(c.isalnum() or c in "+/=" for c in compact):
            issues.append(Issue("envWorkloadSignature", "must be base64 of the RSA signature"))
    return issues


# --- verification and inspection ---------------------------------------------------------------


@dataclass(frozen=True)
class SignatureReport:
    """The outcome of :func:`verify_contract`.

    Attributes:
        valid: the signature verifies and, for a signing certificate, it is within its window
            (and issued by ``ca_certificate`` when one was given).
        key_source: ``given`` (the caller's key or certificate) or ``env.signingKey``.
        signing_key_form: the form of env.signingKey when it could be read (see
            :class:`~kyok.contract.signing.SigningKey`), else None.
        certificate: the signing certificate's window (contract expiry), or None.
        issued_by_ca: whether ``ca_certificate`` issued the signing certificate (None: not asked).
        problems: what is wrong, one sentence each.
    """

    valid: bool
    key_source: str
    signing_key_form: str | None
    certificate: CertificateStatus | None
    issued_by_ca: bool | None
    problems: tuple[str, ...]


def _env_plaintext(contract: Contract, private_key: rsa.RSAPrivateKey | None) -> str | None:
    env = contract.env
    if env is None:
        return None
    if not is_token(env):
        return env
    if private_key is None:
        return None
    try:
        return decrypt_token(env, private_key).decode("utf-8")
    except (TokenError, UnicodeDecodeError):
        raise TokenError("env does not decrypt with the given private key") from None


def _env_signing_key(env_text: str | None) -> SigningKey | None:
    if env_text is None:
        return None
    doc = parse_section(env_text, "env")
    if not isinstance(doc, Mapping) or doc.get("signingKey") is None:
        return None
    value = doc["signingKey"]
    if not isinstance(value, str):
        raise ContractError("env.signingKey must be a string (PEM or base64)")
    return decode_signing_key(value)


def verify_contract(
    contract: Contract,
    *,
    signing_key: rsa.RSAPublicKey | x509.Certificate | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
    ca_certificate: x509.Certificate | None = None,
    now: datetime | None = None,
) -> SignatureReport:
    """Verify ``envWorkloadSignature`` as the instance does, and report on the signing key.

    The key comes from ``signing_key`` when given, else from ``env.signingKey`` (decrypting env
    with ``private_key`` if env is a token). When both are known they must be the same key.

    Raises:
        ContractError: no workload, env or signature; or no way to find the signing key.
        TokenError: env does not decrypt with ``private_key``.
    """
    workload, env = _require_sections(contract, "verify the signature")
    signature = contract.env_workload_signature
    if signature is None:
        raise ContractError("the contract is not signed: it has no envWorkloadSignature")
    problems: list[str] = []
    try:
        embedded = _env_signing_key(_env_plaintext(contract, private_key))
    except TokenError:
        raise
    except ContractError as exc:
        if signing_key is None:
            raise
        embedded = None
        problems.append(f"env.signingKey: {exc.message}")
    if signing_key is not None:
        given = SigningKey(
            public_key=_rsa_of(signing_key),
            certificate=signing_key if isinstance(signing_key, x509.Certificate) else None,
            form="given",
        )
        if embedded is not None and public_key_pem(embedded.public_key) != public_key_pem(
            given.public_key
        ):
            problems.append("the given key is not the key in env.signingKey")
        chosen, source = given, "given"
        if given.certificate is None and embedded is not None and embedded.certificate is not None:
            chosen = SigningKey(given.public_key, embedded.certificate, embedded.form)
    elif embedded is not None:
        chosen, source = embedded, "env.signingKey"
    elif contract.is_encrypted("env"):
        raise ContractError(
            "env is encrypted: give the private key to decrypt it (--priv), or the signer's "
            "public key or certificate (--pub)"
        )
    else:
        raise ContractError(
            "env has no signingKey: give the signer's public key or certificate (--pub)"
        )
    try:
        verify_sections(workload, env, signature, chosen.public_key)
    except SignatureMismatch as exc:
        problems.append(exc.message)
    status = None
    issued: bool | None = None
    if chosen.certificate is not None:
        status = certificate_status(chosen.certificate, now=now)
        if not status.valid:
            when = status.not_after.strftime("%Y-%m-%d %H:%M UTC")
            problems.append(
                f"the signing certificate is outside its validity window (notAfter {when}): "
                "the contract has expired or is not valid yet"
            )
        if ca_certificate is not None:
            try:
                check_issued_by(chosen.certificate, ca_certificate)
                issued = True
            except ContractError as exc:
                issued = False
                problems.append(exc.message)
    elif ca_certificate is not None:
        issued = False
        problems.append(
            "a CA certificate was given, but the signing key is a bare key, not a certificate"
        )
    return SignatureReport(
        valid=not problems,
        key_source=source,
        signing_key_form=embedded.form if embedded is not None else None,
        certificate=status,
        issued_by_ca=issued,
        problems=tuple(problems),
    )


def _rsa_of(key: rsa.RSAPublicKey | x509.Certificate) -> rsa.RSAPublicKey:
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    if not isinstance(public, rsa.RSAPublicKey):
        raise ContractError("the signing key must be RSA")
    return public


@dataclass(frozen=True)
class SectionReport:
    """What :func:`inspect_contract` found for one section.

    Attributes:
        name: the section (``workload``, ``env``, ``attestationPublicKey``, ``envWorkloadSignature``).
        encrypted: whether it holds a token; ``prefix`` is the token's prefix.
        sha256: SHA-256 (hex) of the value as written, which attestation records hash.
        length: characters in the value.
        plaintext: the decrypted (or plain) text, when available. Secret: never in the repr.
        error: why an encrypted section could not be decrypted, if it could not.
    """

    name: str
    encrypted: bool
    prefix: str | None
    sha256: str
    length: int
    plaintext: str | None = field(default=None, repr=False)
    error: str | None = None


@dataclass(frozen=True)
class ContractInspection:
    """Every section of a contract and, if it is signed, the signature check."""

    sections: tuple[SectionReport, ...]
    signature: SignatureReport | None
    signature_error: str | None = None


def inspect_contract(
    contract: Contract,
    *,
    private_key: rsa.RSAPrivateKey | None = None,
    signing_key: rsa.RSAPublicKey | x509.Certificate | None = None,
    now: datetime | None = None,
) -> ContractInspection:
    """Describe each section (decrypting what ``private_key`` opens) and check the signature."""
    reports: list[SectionReport] = []
    for key, value in contract.present().items():
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        if is_token(value):
            prefix = parse_token(value).prefix
            plaintext: str | None = None
            error: str | None = None
            if private_key is not None:
                try:
                    plaintext = decrypt_token(value, private_key).decode("utf-8")
                except TokenError as exc:
                    error = exc.message
                except UnicodeDecodeError:
                    error = "the decrypted section is not UTF-8 text"
            reports.append(SectionReport(key, True, prefix, digest, len(value), plaintext, error))
        else:
            reports.append(SectionReport(key, False, None, digest, len(value), value, None))
    signature: SignatureReport | None = None
    signature_error: str | None = None
    if contract.env_workload_signature is not None:
        try:
            signature = verify_contract(
                contract, signing_key=signing_key, private_key=private_key, now=now
            )
        except ContractError as exc:
            signature_error = exc.message
    return ContractInspection(tuple(reports), signature, signature_error)
