"""``kyok contract``: the Hyper Protect contract toolkit, offline (docs/contract.md).

The commands and flags follow IBM's contract-cli (``--in``, ``--out``, ``--priv``,
``--password``, ``--cert``, ``--os``…); ``--in -`` reads stdin and a missing ``--out`` writes
to stdout. Nothing here uses the network: the platform's encryption certificate is a file
(``--cert``)::

    kyok contract base64 --in 'text' [--format text|json]
    kyok contract base64-tgz --in ./compose [--output encrypted --cert enc.crt --os hpvs]
    kyok contract contract-template [--type contract|workload|env] [--os hpvs|ccrt|ccrv|…]
    kyok contract encrypt --in contract.yaml --cert enc.crt --priv sign.pem [--os ccrt]
          [--contract-expiry --cacert ca.crt --cakey ca.key (--csr csr.pem | --csrParam p.json)
           --expiry 90]
    kyok contract encrypt-string --in 'secret' --cert enc.crt [--format json]
    kyok contract decrypt --in token-or-contract --priv enc.key [--password …]
    kyok contract sign-contract --in contract.yaml --priv sign.pem
    kyok contract validate-contract --in contract.yaml [--os …] [--type workload|env] [--priv …]
    kyok contract verify-signature --in contract.yaml [--pub sign.pub | --priv enc.key] [--cacert ca.crt]
    kyok contract inspect --in contract.yaml [--priv enc.key] [--show]
    kyok contract decrypt-attestation | verify-attestation | passphrase   (see contract_attest)

Exit codes: 0 success; 1 an input cannot be used (bad key, bad YAML, invalid contract for
encrypt); 2 usage error; 3 a check found something broken (validate-contract,
verify-signature).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kyok.cli import contract_attest
from kyok.cli._output import EXIT_BROKEN, EXIT_USAGE, console, emit_json, fail, guarded, note
from kyok.contract.contract import (
    Contract,
    SignatureReport,
    decrypt_contract,
    dump_contract,
    encrypt_contract,
    inspect_contract,
    parse_contract,
    parse_section,
    prefix_for,
    sign_contract,
    validate_contract,
    verify_contract,
)
from kyok.contract.expiry import (
    CsrParams,
    build_csr,
    issue_signing_certificate,
    load_ca_key,
    load_certificate,
    load_csr,
)
from kyok.contract.schema import Issue, validate_section
from kyok.contract.sections import encode_base64, encode_json, encode_tgz
from kyok.contract.templates import contract_template
from kyok.contract.token import (
    decrypt_token,
    encrypt_token,
    is_token,
    load_encryption_key,
    load_private_key,
)
from kyok.unit.files import write_private, write_public


class Platform(StrEnum):
    """``--os`` for sections and contracts."""

    HPVS = "hpvs"
    CCRT = "ccrt"
    CCRV = "ccrv"
    CCCO = "ccco"


class InputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class TgzOutput(StrEnum):
    PLAIN = "plain"
    ENCRYPTED = "encrypted"


class TemplateKind(StrEnum):
    CONTRACT = "contract"
    WORKLOAD = "workload"
    ENV = "env"


class TemplatePlatform(StrEnum):
    HPVS = "hpvs"
    CCRT = "ccrt"
    CCRV = "ccrv"
    CCCO_PEERPOD = "ccco-peerpod"
    CCCO_BMTL = "ccco-bmtl"


class SectionType(StrEnum):
    BOTH = ""
    WORKLOAD = "workload"
    ENV = "env"


app = typer.Typer(
    help="Hyper Protect contracts: encrypt, sign, verify, decrypt, validate (offline).",
    no_args_is_help=True,
)

# --- options ---------------------------------------------------------------------------------

OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the result to this file instead of stdout ('-': stdout)."),
]
OsOpt = Annotated[
    Platform,
    typer.Option(
        "--os",
        help="Target platform: hpvs and ccco use the hyper-protect-basic prefix, ccrt and ccrv "
        "contract-basic; ccrv has no compose.",
    ),
]
CertOpt = Annotated[
    Path | None,
    typer.Option(
        "--cert",
        help="The platform's encryption certificate (…-encrypt.crt) or its public key, as a file.",
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="KYOK_KEY_PASSWORD",
        help="Password of the private key given with --priv (or KYOK_KEY_PASSWORD; a flag's "
        "value shows in the process list).",
    ),
]
FormatOpt = Annotated[
    InputFormat,
    typer.Option(
        "--format",
        help="json checks that the input is JSON first; the bytes are used unchanged.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout (and nothing else).")
]
LegacyOpt = Annotated[
    bool,
    typer.Option(
        "--legacy",
        help="Validate with the rules of older images: 3-character seeds, the logDNA backend.",
    ),
]


# --- input and output ----------------------------------------------------------------------------


def _stdin() -> bytes:
    data: bytes = sys.stdin.buffer.read()
    return data


def _literal(value: str) -> bytes:
    """``--in`` that takes the data itself: the string, or stdin for ``-``."""
    return _stdin() if value == "-" else value.encode("utf-8")


def _file(value: str, what: str) -> bytes:
    """``--in`` that names a file: its bytes, or stdin for ``-``."""
    if value == "-":
        return _stdin()
    path = Path(value)
    if not path.exists():
        fail(f"the {what} {value} does not exist", EXIT_USAGE)
    if path.is_dir():
        fail(f"the {what} {value} is a directory", EXIT_USAGE)
    return path.read_bytes()


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        fail(f"the {what} {path} does not exist or is not a file", EXIT_USAGE)
    return path.read_bytes()


def _emit(data: str | bytes, out: Path | None, *, secret: bool = False) -> None:
    """The result on stdout (with a final newline for one-line values) or in ``out``.

    Files holding plaintext or keys are written 0600, others 0644; both replace an old file.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if out is None or str(out) == "-":
        sys.stdout.buffer.write(raw if raw.endswith(b"\n") or not raw else raw + b"\n")
        sys.stdout.flush()
        return
    (write_private if secret else write_public)(out, raw, overwrite=True)
    note(f"wrote {out}")


def _encryption_key(cert: Path | None) -> rsa.RSAPublicKey:
    if cert is None:
        fail(
            "give the platform's encryption certificate with --cert (kyok works offline and "
            "embeds no IBM certificates)",
            EXIT_USAGE,
        )
    return load_encryption_key(_read(cert, "encryption certificate"))


def _private(priv: Path, password: str | None) -> rsa.RSAPrivateKey:
    return load_private_key(
        _read(priv, "private key"), password.encode("utf-8") if password else None
    )


def _contract_from(value: str) -> Contract:
    return parse_contract(_file(value, "contract"))


def _issue_lines(issues: tuple[Issue, ...]) -> None:
    for issue in issues:
        console.print(f"  {issue}", markup=False, highlight=False, soft_wrap=True)


# --- base64, base64-tgz, encrypt-string, template ---------------------------------------------------


@app.command("base64")
@guarded
def base64_cmd(
    in_: Annotated[str, typer.Option("--in", help="The data itself ('-': read it from stdin).")],
    format_: FormatOpt = InputFormat.TEXT,
    out: OutOpt = None,
) -> None:
    """Base64 of text or JSON, for values in a contract."""
    data = _literal(in_)
    value = encode_json(data) if format_ is InputFormat.JSON else encode_base64(data)
    _emit(value, out, secret=True)  # base64 hides nothing: a file gets 0600


@app.command("base64-tgz")
@guarded
def base64_tgz(
    in_: Annotated[
        str,
        typer.Option(
            "--in",
            help="The folder whose contents to archive (docker-compose.yaml or pod files), or "
            "one file; '-' reads the path from stdin.",
        ),
    ],
    output: Annotated[
        TgzOutput,
        typer.Option(
            "--output",
            help="plain: base64 of the tgz; encrypted: a token of that base64 text.",
        ),
    ] = TgzOutput.PLAIN,
    os_: OsOpt = Platform.HPVS,
    cert: CertOpt = None,
    out: OutOpt = None,
) -> None:
    """Base64 of a deterministic tar.gz of a folder (compose.archive / play.archive)."""
    path = Path(_stdin().decode("utf-8").strip()) if in_ == "-" else Path(in_)
    value = encode_tgz(path)
    if output is TgzOutput.ENCRYPTED:
        value = encrypt_token(
            value.encode("ascii"), _encryption_key(cert), prefix=prefix_for(os_.value)
        )
    _emit(value, out, secret=output is TgzOutput.PLAIN)  # a plain archive may hold secrets


@app.command("encrypt-string")
@guarded
def encrypt_string(
    in_: Annotated[
        str,
        typer.Option(
            "--in", help="The string to encrypt ('-': stdin, bytes kept exactly, newline too)."
        ),
    ],
    format_: FormatOpt = InputFormat.TEXT,
    cert: CertOpt = None,
    os_: OsOpt = Platform.HPVS,
    out: OutOpt = None,
) -> None:
    """Encrypt a string (or a section file via stdin) into a hyper-protect-basic/contract-basic token."""
    data = _literal(in_)
    if format_ is InputFormat.JSON:
        encode_json(data)  # validates
    _emit(encrypt_token(data, _encryption_key(cert), prefix=prefix_for(os_.value)), out)


@app.command("contract-template")
@guarded
def template(
    type_: Annotated[
        TemplateKind, typer.Option("--type", help="contract, workload or env.")
    ] = TemplateKind.CONTRACT,
    os_: Annotated[
        TemplatePlatform, typer.Option("--os", help="The platform flavour.")
    ] = TemplatePlatform.HPVS,
    out: OutOpt = None,
) -> None:
    """A contract, workload or env template to fill in."""
    _emit(contract_template(type_.value, os_.value), out)


# --- encrypt, sign ----------------------------------------------------------------------------


def _signing_certificate(
    *,
    signing_key: rsa.RSAPrivateKey,
    cacert: Path | None,
    cakey: Path | None,
    cakey_password: str | None,
    csr: Path | None,
    csr_param: Path | None,
    expiry: int | None,
) -> x509.Certificate:
    missing = [
        name
        for name, value in (("--cacert", cacert), ("--cakey", cakey), ("--expiry", expiry))
        if value is None
    ]
    if missing:
        fail(f"--contract-expiry needs {', '.join(missing)}", EXIT_USAGE)
    if (csr is None) == (csr_param is None):
        fail("--contract-expiry needs exactly one of --csr and --csrParam", EXIT_USAGE)
    assert cacert is not None and cakey is not None and expiry is not None
    ca_cert = load_certificate(_read(cacert, "CA certificate"))
    ca_key = load_ca_key(
        _read(cakey, "CA key"), cakey_password.encode("utf-8") if cakey_password else None
    )
    if csr is not None:
        request = load_csr(_read(csr, "CSR"))
    else:
        assert csr_param is not None
        request = build_csr(signing_key, CsrParams.from_json(_read(csr_param, "CSR parameters")))
    return issue_signing_certificate(
        request, ca_cert, ca_key, days=expiry, signing_key=signing_key.public_key()
    )


@app.command("encrypt")
@guarded
def encrypt(
    in_: Annotated[str, typer.Option("--in", help="The plaintext contract YAML ('-': stdin).")],
    cert: CertOpt = None,
    priv: Annotated[
        Path | None,
        typer.Option(
            "--priv",
            help="The RSA key that signs the contract. Without it a new 4096-bit key is made "
            "(kept only with --key-out).",
        ),
    ] = None,
    password: PasswordOpt = None,
    os_: OsOpt = Platform.HPVS,
    out: OutOpt = None,
    no_sign: Annotated[
        bool, typer.Option("--no-sign", help="Encrypt only: no signingKey, no signature.")
    ] = False,
    key_out: Annotated[
        Path | None,
        typer.Option("--key-out", help="Where to keep a newly made signing key (written 0600)."),
    ] = None,
    contract_expiry: Annotated[
        bool,
        typer.Option(
            "--contract-expiry",
            help="Put a CA-issued certificate for the signing key in signingKey; the contract "
            "expires with it.",
        ),
    ] = False,
    cacert: Annotated[
        Path | None, typer.Option("--cacert", help="Your CA's certificate (--contract-expiry).")
    ] = None,
    cakey: Annotated[
        Path | None, typer.Option("--cakey", help="Your CA's private key (--contract-expiry).")
    ] = None,
    cakey_password: Annotated[
        str | None,
        typer.Option(
            "--cakey-password", envvar="KYOK_CAKEY_PASSWORD", help="Password of the CA key."
        ),
    ] = None,
    csr: Annotated[
        Path | None,
        typer.Option("--csr", help="A CSR for the signing key (PEM), instead of --csrParam."),
    ] = None,
    csr_param: Annotated[
        Path | None,
        typer.Option(
            "--csrParam",
            help="JSON with country, state, location, org, unit, domain, mail: kyok makes the CSR.",
        ),
    ] = None,
    expiry: Annotated[
        int | None,
        typer.Option("--expiry", min=1, help="Days the contract stays valid (--contract-expiry)."),
    ] = None,
    legacy: LegacyOpt = False,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Do not validate the plaintext sections first.")
    ] = False,
) -> None:
    """Encrypt a contract for the platform, adding signingKey and envWorkloadSignature."""
    if no_sign and (priv is not None or contract_expiry):
        fail("--no-sign cannot be combined with --priv or --contract-expiry", EXIT_USAGE)
    contract = _contract_from(in_)
    encryption_key = _encryption_key(cert)
    signing_key: rsa.RSAPrivateKey | None = None
    if not no_sign:
        if priv is not None:
            signing_key = _private(priv, password)
        else:
            signing_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
            if key_out is not None:
                pem = signing_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                write_private(key_out, pem)
                note(f"wrote the new signing key to {key_out} (0600)")
            else:
                note(
                    "signed with a new key that is not kept: give --priv (or --key-out) to be "
                    "able to sign this env again"
                )
    certificate = None
    if contract_expiry:
        assert signing_key is not None
        certificate = _signing_certificate(
            signing_key=signing_key,
            cacert=cacert,
            cakey=cakey,
            cakey_password=cakey_password,
            csr=csr,
            csr_param=csr_param,
            expiry=expiry,
        )
    result = encrypt_contract(
        contract,
        encryption_key,
        signing_key=signing_key,
        signing_certificate=certificate,
        platform=os_.value,
        legacy=legacy,
        validate=not no_validate,
    )
    _emit(dump_contract(result), out)


@app.command("sign-contract")
@guarded
def sign(
    in_: Annotated[str, typer.Option("--in", help="The contract YAML ('-': stdin).")],
    priv: Annotated[Path, typer.Option("--priv", help="The RSA signing key.")],
    password: PasswordOpt = None,
    out: OutOpt = None,
) -> None:
    """Set envWorkloadSignature over the contract's workload and env as they stand."""
    contract = _contract_from(in_)
    signed = sign_contract(contract, _private(priv, password))
    plaintext = any(not signed.is_encrypted(k) for k in ("workload", "env"))
    _emit(dump_contract(signed), out, secret=plaintext)  # plaintext sections: a 0600 file


# --- decrypt, validate, verify, inspect -----------------------------------------------------------


def _is_file(name: str) -> bool:
    """Whether ``name`` names a regular file (False for names the OS refuses, e.g. too long)."""
    try:
        return Path(name).is_file()
    except OSError:
        return False


@app.command("decrypt")
@guarded
def decrypt(
    in_: Annotated[
        str,
        typer.Option(
            "--in",
            help="A token, a file holding one, or a contract YAML file (every encrypted section "
            "is decrypted); '-': stdin.",
        ),
    ],
    priv: Annotated[Path, typer.Option("--priv", help="The RSA private key to decrypt with.")],
    password: PasswordOpt = None,
    out: OutOpt = None,
) -> None:
    """Decrypt a token, or every encrypted section of a contract."""
    if in_ == "-":
        data = _stdin()
    elif is_token(in_):  # first: a token is seldom a valid path (names over 255 bytes fail)
        data = in_.encode("ascii")
    elif _is_file(in_):
        data = Path(in_).read_bytes()
    else:
        fail(f"--in is neither a token nor an existing file: {in_[:40]}", EXIT_USAGE)
    key = _private(priv, password)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail("the input is not a token or a contract (not UTF-8 text)")
    if is_token(text):
        _emit(decrypt_token(text, key), out, secret=True)
        return
    contract = parse_contract(data)
    _emit(dump_contract(decrypt_contract(contract, key)), out, secret=True)


def _validation_target(data: bytes, type_: str) -> tuple[Contract | None, Any]:
    """A contract, or (for --type) a raw section's parsed YAML; contract-cli accepts the latter."""
    if type_:
        doc = parse_section(data.decode("utf-8"), type_)
        if isinstance(doc, dict) and doc.get("type") == type_:
            return None, doc
    return parse_contract(data), None


@app.command("validate-contract")
@guarded
def validate(
    in_: Annotated[
        str,
        typer.Option(
            "--in",
            help="The contract YAML, or with --type a raw workload or env section ('-': stdin).",
        ),
    ],
    os_: OsOpt = Platform.HPVS,
    type_: Annotated[
        SectionType,
        typer.Option("--type", help="Validate only this section ('' for the whole contract)."),
    ] = SectionType.BOTH,
    priv: Annotated[
        Path | None,
        typer.Option("--priv", help="Decrypt encrypted sections with this key to validate them."),
    ] = None,
    password: PasswordOpt = None,
    legacy: LegacyOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Validate a contract (or one section) against kyok's schema; errors name the path."""
    data = _file(in_, "contract")
    try:
        contract, section_doc = _validation_target(data, type_.value)
    except UnicodeDecodeError:
        fail("the contract is not UTF-8 text")
    skipped: tuple[str, ...] = ()
    if section_doc is not None:
        issues = validate_section(type_.value, section_doc, platform=os_.value, legacy=legacy)
    else:
        assert contract is not None
        key = _private(priv, password) if priv is not None else None
        report = validate_contract(
            contract,
            private_key=key,
            platform=os_.value,
            legacy=legacy,
            section=type_.value or None,
        )
        issues, skipped = report.issues, report.skipped
    if json_:
        emit_json(
            {
                "valid": not issues,
                "issues": [i.as_dict() for i in issues],
                "skipped": list(skipped),
            }
        )
    else:
        for name in skipped:
            note(f"{name} is encrypted and was not checked: give --priv to check it")
        if issues:
            console.print(f"{len(issues)} problem(s):", highlight=False)
            _issue_lines(issues)
        else:
            console.print("valid", highlight=False)
    if issues:
        raise typer.Exit(EXIT_BROKEN)


def _signing_key_file(path: Path) -> rsa.RSAPublicKey | x509.Certificate:
    data = _read(path, "signing key")
    if b"CERTIFICATE" in data:
        return load_certificate(data)
    return load_encryption_key(data)  # a PEM/DER RSA public key


def _signature_json(report: SignatureReport) -> dict[str, Any]:
    cert = report.certificate
    return {
        "valid": report.valid,
        "key_source": report.key_source,
        "signing_key_form": report.signing_key_form,
        "certificate": None
        if cert is None
        else {
            "subject": cert.subject,
            "not_before": cert.not_before.isoformat(),
            "not_after": cert.not_after.isoformat(),
            "valid_now": cert.valid,
            "days_left": cert.days_left,
        },
        "issued_by_ca": report.issued_by_ca,
        "problems": list(report.problems),
    }


@app.command("verify-signature")
@guarded
def verify_signature(
    in_: Annotated[str, typer.Option("--in", help="The contract YAML ('-': stdin).")],
    pub: Annotated[
        Path | None,
        typer.Option("--pub", help="The signer's public key or signing certificate (PEM or DER)."),
    ] = None,
    priv: Annotated[
        Path | None,
        typer.Option(
            "--priv", help="The encryption private key, to read signingKey from an encrypted env."
        ),
    ] = None,
    password: PasswordOpt = None,
    cacert: Annotated[
        Path | None,
        typer.Option("--cacert", help="Check that this CA issued the signing certificate."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Verify envWorkloadSignature over workload‖env, and the signing certificate's window."""
    contract = _contract_from(in_)
    report = verify_contract(
        contract,
        signing_key=_signing_key_file(pub) if pub is not None else None,
        private_key=_private(priv, password) if priv is not None else None,
        ca_certificate=load_certificate(_read(cacert, "CA certificate")) if cacert else None,
    )
    if json_:
        emit_json(_signature_json(report))
    else:
        _print_signature(report)
    if not report.valid:
        raise typer.Exit(EXIT_BROKEN)


def _print_signature(report: SignatureReport) -> None:
    verdict = "signature OK" if report.valid else "signature NOT OK"
    console.print(f"{verdict} (key from {report.key_source})", highlight=False)
    if report.certificate is not None:
        c = report.certificate
        console.print(
            f"signing certificate {c.subject}: valid {c.not_before:%Y-%m-%d} to "
            f"{c.not_after:%Y-%m-%d} ({c.days_left} days left)",
            markup=False,
            highlight=False,
        )
    for problem in report.problems:
        console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)


@app.command("inspect")
@guarded
def inspect(
    in_: Annotated[str, typer.Option("--in", help="The contract YAML ('-': stdin).")],
    priv: Annotated[
        Path | None,
        typer.Option("--priv", help="The encryption private key, to decrypt sections."),
    ] = None,
    password: PasswordOpt = None,
    pub: Annotated[
        Path | None,
        typer.Option(
            "--pub", help="The signer's public key or certificate, to check the signature."
        ),
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the decrypted sections (they may hold secrets).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Each section: encrypted or not, prefix, SHA-256 (as attestation records hash it), signature."""
    contract = _contract_from(in_)
    result = inspect_contract(
        contract,
        private_key=_private(priv, password) if priv is not None else None,
        signing_key=_signing_key_file(pub) if pub is not None else None,
    )
    if json_:
        emit_json(
            {
                "sections": [
                    {
                        "name": s.name,
                        "encrypted": s.encrypted,
                        "prefix": s.prefix,
                        "sha256": s.sha256,
                        "length": s.length,
                        "decrypted": s.encrypted and s.plaintext is not None,
                        "error": s.error,
                        **({"plaintext": s.plaintext} if show else {}),
                    }
                    for s in result.sections
                ],
                "signature": None
                if result.signature is None
                else _signature_json(result.signature),
                "signature_error": result.signature_error,
            }
        )
        return
    for s in result.sections:
        kind = f"encrypted ({s.prefix})" if s.encrypted else "plaintext"
        extra = ", decrypted" if s.encrypted and s.plaintext is not None else ""
        extra += f", {s.error}" if s.error else ""
        console.print(f"{s.name}: {kind}{extra}; sha256 {s.sha256}", markup=False, highlight=False)
        if show and s.plaintext is not None and s.name in ("workload", "env"):
            console.print(s.plaintext, markup=False, highlight=False)
    if result.signature is not None:
        _print_signature(result.signature)
    elif result.signature_error:
        console.print(
            f"signature not checked: {result.signature_error}", markup=False, highlight=False
        )


contract_attest.register(app)
