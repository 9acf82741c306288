"""``kyok contract decrypt-attestation | verify-attestation | passphrase``.

Attestation records and data-volume passphrases of Hyper Protect instances (reference
hpcr-contract.md §5 and §6; docs/contract-attestation.md)::

    kyok contract decrypt-attestation --in se-checksums.txt.enc --priv attest.pem [--out rec.txt]
    kyok contract verify-attestation --in se-checksums.txt.enc --priv attest.pem \\
        --signature se-signature.bin --cert attestation.crt \\
        --chain ibm-intermediate.crt --chain digicert-intermediate.crt --root digicert-root.crt \\
        --crl ibm-intermediate.crl --contract user-data.yaml [--json]
    kyok contract passphrase --env env.yaml --workload workload.yaml           (offline, 2 seeds)
    kyok contract passphrase --new-seed --key KEY --volume data --out data.seed.json
    kyok contract passphrase --env env.yaml --workload workload.yaml --wrapped data.seed.json

Nothing here reaches the network except ``passphrase`` with ``--new-seed`` or ``--wrapped``,
which asks the kyok server to wrap or unwrap the third seed. Certificates and CRLs come from
files. ``-`` reads stdin (one input per command). Seeds are best given in files, on stdin or in
``KYOK_ENV_SEED`` / ``KYOK_WORKLOAD_SEED``: a flag's value shows in the process list. The
passphrase goes to stdout or to a 0600 file, nowhere else.

``verify-attestation`` exits 0 only when every check it ran passed (and the signature was
checked), 3 when one failed, 1 when an input cannot be used, 2 on a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.markup import escape

from kyok.cli._output import (
    EXIT_BROKEN,
    EXIT_USAGE,
    console,
    emit_json,
    fail,
    guarded,
    note,
)
from kyok.cli._remote import Remote, grid, remote_command, say
from kyok.client import BadRequest as ClientBadRequest
from kyok.client import Conflict, Gone, KyokClient, NotFound, Unprocessable
from kyok.contract.attestation import (
    AttestationRecord,
    AttestationReport,
    CheckStatus,
    ChecksumDiff,
    RecordFormatError,
    load_certificates,
    load_crl,
    load_signature,
    load_verification_key,
    open_record,
    parse_record,
    verify_attestation,
    verify_record_signature,
)
from kyok.contract.token import ContractError, is_token, load_private_key
from kyok.contract.volume import (
    KmsWrapped,
    SeedError,
    SeedOrder,
    ThirdSeedUnavailable,
    WrappedSeed,
    WrappedSeedError,
    check_volume_name,
    new_third_seed,
    three_seed_passphrase,
    two_seed_passphrase,
)
from kyok.unit.files import write_private

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["KyokSeedKms", "register"]

# ---------------------------------------------------------------- shared options


def _path_opt(flag: str, text: str, *, dash: bool = True) -> Any:
    return typer.Option(
        flag, help=text, show_default=False, dir_okay=False, allow_dash=dash, exists=False
    )


PrivOpt = Annotated[
    Path | None,
    _path_opt(
        "--priv",
        "The private key (PEM) of the contract's attestationPublicKey; needed for an "
        "encrypted record.",
        dash=False,
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="KYOK_KEY_PASSWORD",
        help="The private key's password, if it is encrypted. Prefer the environment variable: "
        "a flag shows in the process list.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout (and nothing else).")
]


class _Inputs:
    """Reads files, and stdin for at most one ``-``."""

    def __init__(self) -> None:
        self._stdin_used_by: str | None = None

    def read(self, path: Path, what: str) -> bytes:
        if str(path) == "-":
            if self._stdin_used_by is not None:
                raise typer.BadParameter(
                    f"stdin is already used for the {self._stdin_used_by}; give the {what} as a file"
                )
            self._stdin_used_by = what
            return sys.stdin.buffer.read()
        try:
            return path.read_bytes()
        except FileNotFoundError:
            fail(f"the {what} {path} does not exist", EXIT_USAGE)
        except IsADirectoryError:
            fail(f"the {what} {path} is a directory", EXIT_USAGE)


def _private_key(
    inputs: _Inputs, priv: Path | None, password: str | None
) -> rsa.RSAPrivateKey | None:
    if priv is None:
        return None
    data = inputs.read(priv, "private key")
    return load_private_key(data, password.encode("utf-8") if password else None)


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            "use an RFC 3339 time such as 2026-01-31T00:00:00Z", param_hint="--at"
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a time zone (Z or +01:00)", param_hint="--at")
    return parsed.astimezone(UTC)


def _record_json(record: AttestationRecord) -> dict[str, Any]:
    return {
        "version": record.version,
        "metadata": [{"key": m.key, "value": m.value} for m in record.metadata],
        "checksums": [{"label": c.label, "sha256": c.digest} for c in record.checksums],
    }


# ---------------------------------------------------------------- decrypt-attestation


@guarded
def decrypt_attestation(
    in_: Annotated[
        Path,
        _path_opt("--in", "The encrypted record, se-checksums.txt.enc ('-' for stdin)."),
    ],
    priv: Annotated[
        Path,
        _path_opt(
            "--priv",
            "The private key (PEM) matching the contract's attestationPublicKey.",
            dash=False,
        ),
    ],
    password: PasswordOpt = None,
    out: Annotated[
        Path | None,
        _path_opt("--out", "Write the record to this file (mode 0600) instead of stdout."),
    ] = None,
    signature: Annotated[
        Path | None,
        _path_opt("--signature", "se-signature.bin: verify it (with --attestation-cert)."),
    ] = None,
    attestation_cert: Annotated[
        Path | None,
        _path_opt(
            "--attestation-cert",
            "IBM's attestation certificate for the image (PEM or DER), to verify --signature.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Decrypt an attestation record (contract-cli's decrypt-attestation).

    Prints the record exactly as the instance wrote it. With --signature and
    --attestation-cert the signature is verified too (exit 3 if it does not verify); for the
    chain, CRLs and a comparison with your contract use verify-attestation.
    """
    if (signature is None) != (attestation_cert is None):
        raise typer.BadParameter(
            "--signature and --attestation-cert go together: give both or neither"
        )
    inputs = _Inputs()
    data = inputs.read(in_, "record")
    key = _private_key(inputs, priv, password)
    plain = open_record(data, key)
    if plain == data:
        note("[yellow]note:[/] the record is not encrypted; it is shown as it is")
    try:
        record = parse_record(plain)
    except RecordFormatError as exc:
        fail(
            f"decrypted, but the result is not an attestation record ({exc.message}): is the "
            "private key the one for this record?"
        )
    verified = False
    if signature is not None and attestation_cert is not None:
        public, _ = load_verification_key(inputs.read(attestation_cert, "attestation certificate"))
        sig = load_signature(inputs.read(signature, "signature"), public)
        try:
            verify_record_signature(plain, sig, public)
        except ContractError as exc:
            fail(exc.message, EXIT_BROKEN)
        verified = True
        if not json_out:
            note("signature verified: the record was signed by the attestation certificate's key")
    if out is not None and str(out) != "-":
        write_private(out, plain, overwrite=True)
        if not json_out:
            note(f"attestation record written to {escape(str(out))}")
    if json_out:
        emit_json(_record_json(record) | {"signatureVerified": verified})
    elif out is None or str(out) == "-":
        sys.stdout.write(plain.decode("utf-8"))
        sys.stdout.flush()


# ---------------------------------------------------------------- verify-attestation


def _expect_pairs(values: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        label, sep, digest = value.rpartition("=")
        if not sep or not label.strip():
            raise typer.BadParameter(
                "use LABEL=SHA256, e.g. baseimage=4330…1baf", param_hint="--expect"
            )
        found[label.strip()] = digest.strip()
    return found


def _report_json(report: AttestationReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "record": _record_json(report.record) if report.record is not None else None,
        "checks": [
            {"name": c.name, "status": c.status.value, "detail": c.detail} for c in report.checks
        ],
        "diff": None if report.diff is None else _diff_json(report.diff),
    }


def _diff_json(diff: ChecksumDiff) -> list[dict[str, Any]]:
    return [
        {
            "label": e.label,
            "status": e.status.value,
            "record": e.recorded,
            "expected": e.expected,
            "required": e.required,
            "note": e.note,
        }
        for e in diff.entries
    ]


def _short(digest: str | None) -> str | None:
    return None if digest is None else f"{digest[:12]}…{digest[-6:]}"


def _show_report(report: AttestationReport) -> None:
    marks = {CheckStatus.PASS: "pass", CheckStatus.FAIL: "FAIL", CheckStatus.SKIPPED: "skipped"}
    console.print(
        grid(
            "Attestation checks",
            ["check", "result", "detail"],
            [[c.name, marks[c.status], c.detail] for c in report.checks],
        )
    )
    if report.diff is not None:
        console.print(
            grid(
                "Record against the contract",
                ["label", "status", "record", "expected", "note"],
                [
                    [e.label, e.status.value, _short(e.recorded), _short(e.expected), e.note]
                    for e in report.diff.entries
                ],
            )
        )
    say(
        "verified: the record is signed and matches everything checked"
        if report.ok
        else "NOT verified: see the failed checks above"
    )


@guarded
def verify_attestation_cmd(
    in_: Annotated[
        Path,
        _path_opt(
            "--in", "The record: se-checksums.txt.enc (with --priv) or se-checksums.txt ('-')."
        ),
    ],
    signature: Annotated[Path, _path_opt("--signature", "se-signature.bin.")],
    cert: Annotated[
        Path,
        typer.Option(
            "--cert",
            "--attestation-cert",
            help="IBM's attestation certificate for the image (PEM or DER), or its public key.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    priv: PrivOpt = None,
    password: PasswordOpt = None,
    chain: Annotated[
        list[Path] | None,
        typer.Option(
            "--chain",
            help="Intermediate certificate(s): the IBM and the DigiCert intermediates (repeat; a "
            "file may hold several PEM certificates).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            help="The root certificate you trust (DigiCert Trusted Root G4); the chain is "
            "checked up to it.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    crl: Annotated[
        list[Path] | None,
        typer.Option(
            "--crl",
            help="A CRL (PEM or DER) of an issuer in the chain; repeat for several. Needs --root.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    contract: Annotated[
        Path | None,
        _path_opt(
            "--contract",
            "The contract exactly as submitted as user data: its checksums are compared with "
            "the record's.",
        ),
    ] = None,
    expect: Annotated[
        list[str] | None,
        typer.Option(
            "--expect",
            help="LABEL=SHA256 the record must hold, e.g. IBM's published baseimage value "
            "(repeat).",
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Check certificates and CRLs at this time (RFC 3339; default: now).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify an attestation record: signature, certificate, chain, CRLs, and your contract.

    Answers "does this instance run the contract I expect?": the record must be signed by the
    attestation certificate's key, the certificate must chain to the root you give (if any) and
    not be revoked by the CRLs you give (if any), and the record's cidata/user-data and section
    checksums must match the contract you give. Exit 0 only when everything checked passes.
    """
    when = _parse_time(at)
    expected = _expect_pairs(expect or [])
    if (crl or chain) and not root:
        raise typer.BadParameter(
            "the chain and CRLs are checked up to a root you trust: add --root", param_hint="--root"
        )
    inputs = _Inputs()
    data = inputs.read(in_, "record")
    plain = open_record(data, _private_key(inputs, priv, password))
    public, certificate = load_verification_key(inputs.read(cert, "attestation certificate"))
    intermediates = [
        c for path in chain or [] for c in load_certificates(inputs.read(path, "chain file"))
    ]
    roots = [c for path in root or [] for c in load_certificates(inputs.read(path, "root file"))]
    crls = [load_crl(inputs.read(path, "CRL"), what=f"CRL {path}") for path in crl or []]
    report = verify_attestation(
        plain,
        inputs.read(signature, "signature"),
        certificate if certificate is not None else public,
        intermediates=intermediates,
        roots=roots,
        crls=crls,
        contract=inputs.read(contract, "contract") if contract is not None else None,
        expect=expected or None,
        now=when,
    )
    if json_out:
        emit_json(_report_json(report))
    else:
        _show_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)


# ---------------------------------------------------------------- passphrase


class KyokSeedKms:
    """:class:`~kyok.contract.volume.SeedKms` over a :class:`KyokClient`.

    Turns the server's refusals into the contract layer's errors: a key that is suspended,
    deactivated, destroyed or missing gives :class:`ThirdSeedUnavailable`; a wrapped seed that
    does not open gives :class:`WrappedSeedError`. When the key was rotated since the seed was
    wrapped, the rewrapped ciphertext is kept in :attr:`rewrapped`.
    """

    def __init__(self, client: KyokClient) -> None:
        self._client = client
        self.rewrapped: KmsWrapped | None = None

    def wrap(self, key_id: str, plaintext: bytes, *, aad: Sequence[str]) -> KmsWrapped:
        """Wrap with the root key ``key_id``."""
        try:
            result = self._client.wrap(key_id, plaintext, aad=list(aad))
        except (Conflict, Gone, NotFound) as exc:
            raise ThirdSeedUnavailable(
                f"root key {key_id} cannot wrap the third seed: {exc.message}"
            ) from None
        return KmsWrapped(result.ciphertext, result.key_version_id)

    def unwrap(self, key_id: str, wrapped: str, *, aad: Sequence[str]) -> bytes:
        """Unwrap with the root key ``key_id``."""
        try:
            result = self._client.unwrap(key_id, wrapped, aad=list(aad))
        except (Conflict, Gone, NotFound) as exc:
            raise ThirdSeedUnavailable(
                f"root key {key_id} refuses to unwrap the third seed ({exc.message}): while the "
                "key is suspended, deactivated or destroyed no passphrase can be derived; enable "
                "(or restore) the key to open the volume again"
            ) from None
        except (Unprocessable, ClientBadRequest):
            raise WrappedSeedError(
                f"the wrapped seed does not unwrap with root key {key_id} and its AAD: the file "
                "was altered, or the seed was wrapped by another key"
            ) from None
        if result.rewrapped_ciphertext is not None:
            self.rewrapped = KmsWrapped(
                result.rewrapped_ciphertext, result.rewrapped_key_version_id
            )
        return result.plaintext


def _one_line(data: bytes, what: str) -> str:
    """A seed from a file or stdin: the first line, without its line end."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SeedError(f"the {what} file is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise SeedError(f"the {what} file is empty (the seed is its first line)")
    if any(line.strip() for line in lines[1:]):
        raise SeedError(f"the {what} file has more than one line: put the seed alone in it")
    return lines[0]


def _yaml_mapping(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        raise ContractError(f"the {what} is not valid YAML") from None
    if not isinstance(doc, dict):
        raise ContractError(f"the {what} is not a YAML mapping")
    return doc


def _section_from_contract(contract: dict[str, Any], name: str) -> dict[str, Any]:
    value = contract.get(name)
    if value is None:
        raise ContractError(f"the contract has no {name} section")
    if isinstance(value, str) and is_token(value.strip()):
        raise ContractError(
            f"the contract's {name} section is encrypted: give its plaintext (the YAML you "
            f"encrypted) with --{name}"
        )
    if isinstance(value, str):
        return _yaml_mapping(value.encode("utf-8"), f"{name} section")
    if isinstance(value, dict):
        return value
    raise ContractError(f"the contract's {name} section is neither YAML text nor a mapping")


def _volumes(section: dict[str, Any], name: str) -> dict[str, Any]:
    volumes = section.get("volumes")
    if not isinstance(volumes, dict) or not volumes:
        raise SeedError(f"the {name} section has no volumes")
    return volumes


def _pick_volume(sections: dict[str, dict[str, Any]], volume: str | None) -> str:
    if volume is not None:
        return volume
    names: set[str] | None = None
    for name, section in sections.items():
        keys = set(_volumes(section, name))
        names = keys if names is None else names & keys
    if names is not None and len(names) == 1:
        return next(iter(names))
    raise typer.BadParameter(
        "the sections define several volumes (or none in common): name one with --volume",
        param_hint="--volume",
    )


def _seed_in(section: dict[str, Any], name: str, volume: str, previous: bool) -> str:
    volumes = _volumes(section, name)
    entry = volumes.get(volume)
    if not isinstance(entry, dict):
        raise SeedError(f"the {name} section has no volume {volume!r}")
    field = "previousSeed" if previous else "seed"
    if field not in entry:
        extra = (
            " (it uses uv-secret-id, an Ultravisor secret, which only the instance can read)"
            if "uv-secret-id" in entry
            else ""
        )
        raise SeedError(f"volume {volume!r} in the {name} section has no {field}{extra}")
    seed = entry[field]
    if not isinstance(seed, str):
        raise SeedError(
            f"volumes.{volume}.{field} in the {name} section is not a string: quote it (the "
            "schema requires text)"
        )
    return seed


def _given_on_command_line(ctx: typer.Context, param: str) -> bool:
    source = ctx.get_parameter_source(param)
    return source is not None and source.name == "COMMANDLINE"


def passphrase(
    remote: Remote,
    ctx: typer.Context,
    env: Annotated[
        Path | None,
        _path_opt(
            "--env", "The plaintext env section (YAML): the env seed is volumes.<volume>.seed."
        ),
    ] = None,
    workload: Annotated[
        Path | None,
        _path_opt(
            "--workload",
            "The plaintext workload section (YAML): the workload seed is volumes.<volume>.seed.",
        ),
    ] = None,
    contract: Annotated[
        Path | None,
        _path_opt(
            "--contract",
            "A contract whose env and workload sections are plaintext: both seeds come from it.",
        ),
    ] = None,
    env_seed_file: Annotated[
        Path | None,
        _path_opt("--env-seed-file", "A file holding the env seed on one line ('-' for stdin)."),
    ] = None,
    workload_seed_file: Annotated[
        Path | None,
        _path_opt(
            "--workload-seed-file", "A file holding the workload seed on one line ('-' for stdin)."
        ),
    ] = None,
    env_seed: Annotated[
        str | None,
        typer.Option(
            "--env-seed",
            envvar="KYOK_ENV_SEED",
            help="The env seed. Prefer the environment variable or a file: a flag shows in the "
            "process list.",
            show_default=False,
        ),
    ] = None,
    workload_seed: Annotated[
        str | None,
        typer.Option(
            "--workload-seed",
            envvar="KYOK_WORKLOAD_SEED",
            help="The workload seed. Prefer the environment variable or a file.",
            show_default=False,
        ),
    ] = None,
    volume: Annotated[
        str | None,
        typer.Option(
            "--volume",
            help="The volume's key in the contract (default: the only one; with --wrapped, the "
            "file's).",
            show_default=False,
        ),
    ] = None,
    previous: Annotated[
        bool,
        typer.Option(
            "--previous", help="Use previousSeed from the sections (the passphrase before a roll)."
        ),
    ] = False,
    order: Annotated[
        SeedOrder,
        typer.Option(
            "--order",
            help="Which seed comes first in the hash (IBM's docs call the env seed seed1).",
        ),
    ] = SeedOrder.ENV_WORKLOAD,
    legacy_seeds: Annotated[
        bool,
        typer.Option(
            "--legacy-seeds",
            help="Accept seeds under the older schema rule (3+ characters, any), for old volumes.",
        ),
    ] = False,
    new_seed: Annotated[
        bool,
        typer.Option(
            "--new-seed",
            help="Make a third seed, wrap it with --key through the kyok server and write the "
            "wrapped seed to --out (no passphrase is printed).",
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key", help="The root key (id or alias) for --new-seed.", show_default=False
        ),
    ] = None,
    aad: Annotated[
        list[str] | None,
        typer.Option(
            "--aad",
            help="Extra AAD for --new-seed (repeat); it is kept in the wrapped-seed file.",
            show_default=False,
        ),
    ] = None,
    wrapped: Annotated[
        Path | None,
        _path_opt(
            "--wrapped",
            "A wrapped-seed file from --new-seed: derive the three-seed passphrase (the server "
            "unwraps the third seed).",
            dash=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        _path_opt(
            "--out",
            "With --new-seed: where to write the wrapped seed. Otherwise: write the passphrase "
            "to this file (mode 0600) instead of stdout.",
            dash=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Compute a data volume's LUKS passphrase from its seeds (two seeds, or three with kyok).

    Two seeds (offline): sha256 hex of env seed ‖ workload seed, as the HPVS image computes it.
    Three seeds: first `--new-seed --key KEY --volume NAME --out FILE` wraps a random third seed
    with a kyok root key; then `--wrapped FILE` derives HKDF-SHA256 over the two-seed value and
    the unwrapped third seed. While the root key is suspended no passphrase can be derived.
    """
    if new_seed:
        if any(x is not None for x in (env, workload, contract, env_seed_file, workload_seed_file)):
            raise typer.BadParameter(
                "--new-seed only makes the wrapped seed; derive the passphrase afterwards with "
                "--wrapped and the seeds",
                param_hint="--new-seed",
            )
        if wrapped is not None:
            raise typer.BadParameter("--new-seed and --wrapped exclude each other")
        _make_third_seed(remote, key, volume, aad or [], out, force)
        return
    if key is not None or aad:
        raise typer.BadParameter("--key and --aad go with --new-seed", param_hint="--key")
    if previous and env is None and workload is None and contract is None:
        raise typer.BadParameter(
            "--previous reads previousSeed from the sections: give --env and --workload, or "
            "--contract",
            param_hint="--previous",
        )
    for param, flag in (("env_seed", "--env-seed"), ("workload_seed", "--workload-seed")):
        if _given_on_command_line(ctx, param):
            note(
                f"[yellow]warning:[/] {flag} puts the seed in the process list and shell history; "
                "prefer a file, stdin or the environment variable"
            )
    inputs = _Inputs()
    stored: WrappedSeed | None = None
    if wrapped is not None:
        stored = WrappedSeed.from_json(inputs.read(wrapped, "wrapped-seed file"))
        if volume is not None and check_volume_name(volume) != stored.volume:
            raise SeedError(
                f"the wrapped-seed file is for volume {stored.volume!r}, not {volume!r}"
            )
        volume = stored.volume
    sections: dict[str, dict[str, Any]] = {}
    if contract is not None:
        doc = _yaml_mapping(inputs.read(contract, "contract"), "contract")
        sections = {n: _section_from_contract(doc, n) for n in ("env", "workload")}
    for name, path in (("env", env), ("workload", workload)):
        if path is not None:
            if name in sections:
                raise typer.BadParameter(f"give the {name} section with --contract or --{name}")
            sections[name] = _yaml_mapping(inputs.read(path, f"{name} section"), f"{name} section")
    picked = _pick_volume(sections, volume) if sections else volume
    seeds: dict[str, str] = {}
    for name, flag_value, seed_file in (
        ("env", env_seed, env_seed_file),
        ("workload", workload_seed, workload_seed_file),
    ):
        sources = [s for s in (flag_value, seed_file, sections.get(name)) if s is not None]
        if len(sources) > 1:
            raise typer.BadParameter(
                f"the {name} seed is given more than one way (flag or {name.upper()} variable, "
                f"file, section): give it once"
            )
        if flag_value is not None:
            seeds[name] = flag_value
        elif seed_file is not None:
            seeds[name] = _one_line(inputs.read(seed_file, f"{name} seed"), f"{name} seed")
        elif name in sections:
            assert picked is not None
            seeds[name] = _seed_in(sections[name], name, picked, previous)
        else:
            raise typer.BadParameter(
                f"no {name} seed: give --{name} (section), --contract, --{name}-seed-file or "
                f"KYOK_{name.upper()}_SEED"
            )
    if stored is None:
        value = two_seed_passphrase(
            seeds["env"], seeds["workload"], order=order, legacy=legacy_seeds
        )
        _emit_passphrase(remote, value, picked, 2, order, out, force)
        return
    kms = KyokSeedKms(remote.client)
    value = three_seed_passphrase(
        seeds["env"], seeds["workload"], stored, kms, order=order, legacy=legacy_seeds
    )
    if kms.rewrapped is not None and wrapped is not None:
        update = stored.rewrapped(kms.rewrapped.ciphertext, kms.rewrapped.key_version)
        write_private(wrapped, update.to_json().encode("utf-8"), overwrite=True)
        note(
            f"the root key was rotated since the seed was wrapped: {escape(str(wrapped))} now "
            f"holds it wrapped by key version {kms.rewrapped.key_version}"
        )
    _emit_passphrase(remote, value, stored.volume, 3, order, out, force)


def _emit_passphrase(
    remote: Remote,
    value: str,
    volume: str | None,
    seeds: int,
    order: SeedOrder,
    out: Path | None,
    force: bool,
) -> None:
    if out is not None:
        write_private(out, (value + "\n").encode("ascii"), overwrite=force)
        if remote.json:
            emit_json({"passphraseFile": str(out), "volume": volume, "seeds": seeds})
        else:
            note(f"{seeds}-seed passphrase written to {escape(str(out))} (mode 0600)")
        return
    if remote.json:
        emit_json({"passphrase": value, "volume": volume, "seeds": seeds, "order": order.value})
    else:
        say(value)


def _make_third_seed(
    remote: Remote,
    key: str | None,
    volume: str | None,
    aad: list[str],
    out: Path | None,
    force: bool,
) -> None:
    if key is None or volume is None or out is None:
        raise typer.BadParameter(
            "--new-seed needs --key (the root key), --volume (the volume's key in the contract) "
            "and --out (the wrapped-seed file)",
            param_hint="--new-seed",
        )
    if out.exists() and not force:
        fail(
            f"{out} exists: it may hold the only wrapped seed of a volume; pass --force to "
            "replace it"
        )
    made = new_third_seed(KyokSeedKms(remote.client), key, volume=volume, aad=aad)
    write_private(out, made.to_json().encode("utf-8"), overwrite=force)
    if remote.json:
        emit_json(
            {
                "wrappedSeedFile": str(out),
                "volume": made.volume,
                "keyId": made.key_id,
                "keyVersion": made.key_version,
            }
        )
    else:
        note(
            f"third seed for volume {escape(made.volume)} wrapped with key {escape(made.key_id)} "
            f"(version {made.key_version or '?'}) and written to {escape(str(out))}. Keep the "
            "file: without it, or without the key, the volume's passphrase is gone."
        )


def register(app: typer.Typer) -> None:
    """Add ``decrypt-attestation``, ``verify-attestation`` and ``passphrase`` to ``app``."""
    app.command("decrypt-attestation")(decrypt_attestation)
    app.command("verify-attestation")(verify_attestation_cmd)
    app.command("passphrase")(remote_command(passphrase))
