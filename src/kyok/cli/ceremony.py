"""``kyok ceremony``: the custodians' offline steps and the crypto unit's ceremony steps.

Offline, on each custodian's own machine:
    kyok ceremony sigkey create alice.pem        administrator signature key (+ alice.pub.pem)
    kyok ceremony keypart create alice.kpart     a 256-bit master-key part, shows its KCV

At the unit (this node's data directory or database):
    kyok ceremony init --seal shares             a new instance and its unit, in imprint mode
    kyok ceremony admin add --name alice --pubkey alice.pub.pem
    kyok ceremony admin add --name bob --pubkey bob.pub.pem --sign alice.pem
    kyok ceremony thresholds --signature 2 --revocation 2 --sign alice.pem
    kyok ceremony master-key create --scheme shamir --threshold 2 \\
        --custodian alice.kpart:alice.pem --custodian bob.kpart:bob.pem --custodian carol.kpart:carol.pem \\
        --sign alice.pem --sign bob.pem
    kyok ceremony status | transcript | verify FILE

Signed commands take ``--sign KEYFILE`` (repeat for each administrator). Commands that need no
master key in memory (admin add/remove, thresholds, master-key clear, and activate with the dev
seal) also take ``--out FILE`` to write a command file that administrators sign elsewhere
(``kyok ceremony sign``) before ``kyok ceremony submit``. ``--custodian PART:SIGKEY`` loads a
custodian's part, signed with their own key; commands that need a master key in memory take it
to unseal first.

Where the unit is: by default in this command's process, on the node's data directory or
database (local mode); with ``--url`` (or ``KYOK_URL``) and ``--instance``, the unit of a running
server. Locally a partly loaded register does not outlast the command, so load, commit and
activate happen in one ``master-key create``; against a server each custodian can load their
part from their own machine (``master-key load``, ``unseal``) and the administrators commit and
activate afterwards. ``admin-credential`` makes an instance administrator's API key that the
unit's administrators authorized — outside dev mode the only way to get one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kyok.cli._output import (
    EXIT_BROKEN,
    console,
    emit_json,
    fail,
    guarded,
    note,
    table,
)
from kyok.cli._secrets import PassphraseReader
from kyok.cli._unit_endpoint import LocalEndpoint, RemoteEndpoint, UnitEndpoint, UnitView
from kyok.crypto.encoding import b64e
from kyok.crypto.mkvp import pretty
from kyok.errors import InvalidInput
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.errors import CeremonyRejected, UnitNotFound
from kyok.unit.keypart import KeyPart, peek, read_part_file, write_part_file
from kyok.unit.sigkey import create_sigkey, read_public_key, read_sigkey
from kyok.unit.state import Register
from kyok.unit.transcript import parse_export, verify_export
from kyok.unit.transport import load_part_command

if TYPE_CHECKING:  # a node (store, unit, key service) is opened only by the local commands
    from kyok.bootstrap import Node

app = typer.Typer(
    help="The key ceremony: administrators, master-key parts, registers and the verifiable transcript.",
    no_args_is_help=True,
)
sigkey_app = typer.Typer(
    help="Administrator signature keys (custodian, offline).", no_args_is_help=True
)
keypart_app = typer.Typer(help="Master-key parts (custodian, offline).", no_args_is_help=True)
admin_app = typer.Typer(help="Add or remove crypto-unit administrators.", no_args_is_help=True)
mk_app = typer.Typer(help="Create, activate or clear master keys.", no_args_is_help=True)
app.add_typer(sigkey_app, name="sigkey")
app.add_typer(keypart_app, name="keypart")
app.add_typer(admin_app, name="admin")
app.add_typer(mk_app, name="master-key")

# ---------------------------------------------------------------- shared options

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="KYOK_DATA_DIR",
        help="Node data directory (default ./kyok-data).",
        show_default=False,
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="KYOK_DATABASE_URL",
        help="Database URL (default: SQLite in the data directory).",
        show_default=False,
    ),
]
Instance = Annotated[
    str | None,
    typer.Option(
        "--instance",
        envvar="KYOK_INSTANCE_ID",
        help="Instance id (default: the only instance).",
        show_default=False,
    ),
]
Sign = Annotated[
    list[Path] | None,
    typer.Option(
        "--sign",
        help="An administrator's signature-key file; repeat for each signer.",
        show_default=False,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Write the command to this file for signing elsewhere instead of submitting it.",
        show_default=False,
    ),
]
Custodians = Annotated[
    list[str] | None,
    typer.Option(
        "--custodian",
        help="PART:SIGKEY — a custodian's part file and their own signature-key file; repeat per custodian.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]


Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="KYOK_URL",
        help="A running kyok server: work with its unit over HTTP instead of a local data directory.",
        show_default=False,
    ),
]
CaCert = Annotated[
    Path | None,
    typer.Option(
        "--cacert",
        envvar="KYOK_CACERT",
        help="CA bundle for the server's TLS certificate.",
        show_default=False,
    ),
]
Insecure = Annotated[
    bool,
    typer.Option("--insecure", help="Do not verify the server's TLS certificate (testing only)."),
]


@dataclass
class _Target:
    """The unit a command works on (local or remote), closed when the command ends."""

    ep: UnitEndpoint

    def __enter__(self) -> _Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ep.close()

    def view(self) -> UnitView:
        return self.ep.view()


def _open(data_dir: Path | None, database_url: str | None) -> Node:
    from kyok.bootstrap import open_node
    from kyok.settings import Settings

    return open_node(Settings.from_env(data_dir=data_dir, database_url=database_url))


def _resolve_instance(node: Node, instance: str | None) -> str:
    if instance:
        return instance
    instances = node.service.list_instances()
    if not instances:
        fail("this node has no instance yet: run `kyok ceremony init`")
    if len(instances) > 1:
        ids = ", ".join(i.id for i in instances)
        fail(f"this node has several instances ({ids}): choose one with --instance")
    return instances[0].id


def _target(
    data_dir: Path | None,
    database_url: str | None,
    instance: str | None,
    url: str | None = None,
    cacert: Path | None = None,
    insecure: bool = False,
) -> _Target:
    if url:
        if not instance:
            fail("with --url, name the instance with --instance (or KYOK_INSTANCE_ID)")
        verify: Any = False if insecure else (str(cacert) if cacert else True)
        return _Target(RemoteEndpoint(url, instance, verify))
    node = _open(data_dir, database_url)
    try:
        return _Target(LocalEndpoint(node, _resolve_instance(node, instance)))
    except BaseException:
        node.close()
        raise


def _signers(paths: list[Path] | None, pw: PassphraseReader) -> list[Any]:
    return [read_sigkey(p, pw.get(p, purpose="signature key")) for p in (paths or [])]


def _custodians(specs: list[str] | None) -> list[tuple[Path, Path]]:
    out = []
    for spec in specs or []:
        part, sep, key = spec.rpartition(":")
        if not sep or not part or not key:
            raise InvalidInput(f"--custodian takes PART:SIGKEY (got {spec!r})")
        out.append((Path(part), Path(key)))
    return out


def _signed(view: UnitView, name: str, args: dict[str, Any], signers: list[Any]) -> SignedCommand:
    cmd = SignedCommand(view.unit_id, view.seq, name, args)
    for key in signers:
        cmd = cmd.signed_by(key)
    return cmd


def _submit_or_write(
    t: _Target, name: str, args: dict[str, Any], signers: list[Any], out: Path | None
) -> dict[str, Any] | None:
    cmd = _signed(t.view(), name, args, signers)
    if out is not None:
        from kyok.unit.files import write_public

        write_public(out, cmd.dumps().encode())
        note(f"wrote {name} (sequence {cmd.seq}) with {len(cmd.signatures)} signature(s) to {out}")
        note("sign it with `kyok ceremony sign`, then run `kyok ceremony submit`")
        return None
    return t.ep.submit(cmd)


@dataclass
class _Custodian:
    path: Path
    part: KeyPart
    key: Any  # SigningKey


def _read_custodians(specs: list[str] | None, pw: PassphraseReader) -> list[_Custodian]:
    """Open every custodian's part and signature key first, so a bad file or passphrase stops
    the command before anything reaches the unit."""
    out = []
    for part_path, key_path in _custodians(specs):
        part = read_part_file(part_path, pw.get(part_path, purpose="key part"))
        key = read_sigkey(key_path, pw.get(key_path, purpose="signature key"))
        out.append(_Custodian(part_path, part, key))
    return out


def _load_parts(
    t: _Target,
    custodians: list[_Custodian],
    *,
    register: Register | None = None,
    parts_total: int | None = None,
) -> list[dict[str, Any]]:
    """Load each custodian's part, sealed to the unit's transport key and signed with their own
    key; route it by its KCV unless told where."""
    view = t.view()
    routes = [register or _register_of(view, c.part) for c in custodians]
    results = []
    for c, target in zip(custodians, routes, strict=True):
        view = t.view()  # the sequence number moves on with every load
        cmd, sealed = load_part_command(
            unit_id=view.unit_id,
            seq=view.seq,
            register=target.value,
            part=c.part,
            transport=view.transport_key,
            parts=parts_total if target is Register.NEW else None,
        )
        result = t.ep.submit(cmd.signed_by(c.key), sealed)
        result["label"] = c.part.label
        results.append(result)
        needed = result.get("needed", result.get("parts"))
        note(
            f"loaded part {c.part.label or c.path} (KCV {pretty(c.part.kcv)}) into {target.value}: {result['loaded']} of {needed}"
        )
    return results


def _check_signers(view: UnitView, signers: list[Any], what: str) -> None:
    """Refuse early when the given keys cannot meet the signature threshold."""
    ids = {k.verifying_key().fingerprint for k in signers}
    unknown = ids - view.admin_ids
    if unknown:
        raise CeremonyRejected(
            f"{len(unknown)} of the --sign keys are not administrators of this unit"
        )
    if len(ids) < view.signature_threshold:
        raise CeremonyRejected(
            f"{what} needs {view.signature_threshold} administrator signatures: give that many --sign keys"
        )


def _register_of(view: UnitView, part: KeyPart) -> Register:
    name = view.register_of(part.kcv)
    if name is None:
        raise CeremonyRejected(
            f"the part with KCV {pretty(part.kcv)} belongs to no master key of this unit"
        )
    return Register(name)


def _status_tables(view: UnitView) -> None:
    raw = view.raw
    transcript = raw.get("transcript") or {}
    console.print(
        table(
            "Crypto unit",
            ["unit", "instance", "seal", "sealed", "mode", "next sequence", "transcript entries"],
            [
                [
                    view.unit_id,
                    view.instance_id,
                    view.seal,
                    "yes" if view.sealed else "no",
                    "imprint"
                    if view.imprint
                    else f"signature {view.signature_threshold}, revocation {view.revocation_threshold}",
                    view.seq,
                    transcript.get("entries"),
                ]
            ],
        )
    )
    if view.tampered:
        console.print(
            "[bold red]TAMPERED:[/] the unit's transcript failed its checks: it stays sealed"
        )
    console.print(
        table(
            "Administrators",
            ["name", "id", "algorithm"],
            [[a["name"], a["id"], a["algorithm"]] for a in view.admins],
        )
    )
    rows = [
        [
            r.register,
            r.state,
            r.epoch,
            pretty(r.mkvp) if r.mkvp else None,
            r.scheme,
            f"{r.loaded}/{r.needed}" if r.needed else None,
            "yes" if r.in_memory else "no",
        ]
        for r in view.registers
    ]
    console.print(
        table(
            "Master-key registers",
            ["register", "state", "epoch", "MKVP", "scheme", "parts", "in memory"],
            rows,
        )
    )
    if view.rotation_remaining is not None:
        console.print(
            f"master-key rotation in progress: {view.rotation_remaining} blob(s) still under the previous key"
        )


# ---------------------------------------------------------------- custodian: offline


@sigkey_app.command("create")
@guarded
def sigkey_create(
    out: Annotated[
        Path, typer.Argument(help="Where to write the encrypted private key (PKCS#8 PEM).")
    ],
    algorithm: Annotated[
        str, typer.Option(help="ed25519, ecdsa-p256, ecdsa-p384 or ml-dsa-65.")
    ] = "ed25519",
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Make an administrator signature key on this machine.

    The private key stays in OUT, encrypted under your passphrase (at least 8 characters);
    its public key goes to OUT with .pub.pem, which is what the unit gets.
    """
    pw = PassphraseReader()
    public = create_sigkey(
        out, pw.get(out, purpose="new signature key", confirm=True), algorithm, overwrite=force
    )
    from kyok.unit.sigkey import public_path_for

    info = {
        "private_key": str(out),
        "public_key": str(public_path_for(out)),
        "algorithm": public.algorithm.value,
        "fingerprint": public.fingerprint,
    }
    if json_out:
        emit_json(info)
    else:
        console.print(
            table(
                "Signature key",
                ["private key", "public key", "algorithm", "fingerprint"],
                [list(info.values())],
            )
        )


@sigkey_app.command("show")
@guarded
def sigkey_show(
    path: Annotated[
        Path, typer.Argument(help="A public key (.pub.pem) or an encrypted private key.")
    ],
    json_out: Json = False,
) -> None:
    """Show a signature key's algorithm and fingerprint (the administrator id)."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        public = read_sigkey(
            path, PassphraseReader().get(path, purpose="signature key")
        ).verifying_key()
    else:
        public = read_public_key(path)
    info = {
        "file": str(path),
        "algorithm": public.algorithm.value,
        "fingerprint": public.fingerprint,
    }
    if json_out:
        emit_json(info)
    else:
        console.print(table(None, ["file", "algorithm", "fingerprint"], [list(info.values())]))


@keypart_app.command("create")
@guarded
def keypart_create(
    out: Annotated[Path, typer.Argument(help="Where to write the encrypted part file.")],
    label: Annotated[
        str, typer.Option(help="A label for this part, e.g. the custodian's name.")
    ] = "",
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Make a 256-bit master-key part on this machine, encrypted under your passphrase.

    Note the key check value (KCV) it shows: the unit shows the same value when the part loads.
    """
    pw = PassphraseReader()
    part = KeyPart.generate(label or out.stem)
    write_part_file(out, part, pw.get(out, purpose="new key part", confirm=True), overwrite=force)
    info = {"file": str(out), "label": part.label, "kcv": part.kcv}
    if json_out:
        emit_json(info)
    else:
        console.print(
            table(
                "Master-key part",
                ["file", "label", "KCV"],
                [[str(out), part.label, pretty(part.kcv)]],
            )
        )


@keypart_app.command("check")
@guarded
def keypart_check(
    path: Annotated[Path, typer.Argument(help="A part file.")],
    json_out: Json = False,
) -> None:
    """Open a part file with its passphrase and show its KCV (proves the file and passphrase work)."""
    meta = peek(path.read_bytes())
    part = read_part_file(path, PassphraseReader().get(path, purpose="key part"))
    info = {"file": str(path), "label": part.label, "kcv": part.kcv, "created": meta.get("created")}
    if json_out:
        emit_json(info)
    else:
        console.print(
            table(
                "Master-key part: intact",
                ["file", "label", "KCV", "created"],
                [[str(path), part.label, pretty(part.kcv), meta.get("created")]],
            )
        )


# ---------------------------------------------------------------- the unit


@app.command("init")
@guarded
def init(
    seal: Annotated[
        str | None,
        typer.Option(
            help="shares (custodians unseal after each restart) or dev (INSECURE: key in a file); "
            "default: the node's KYOK_SEAL setting, else shares.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="The new instance's name.")] = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: Json = False,
) -> None:
    """Create a new instance and its crypto unit, in imprint mode, ready for the ceremony.

    Runs on the node (its data directory or database). With --seal dev the unit gets a random
    master key at once, kept in a file: development only.
    """
    from kyok.auth.principals import SYSTEM

    node = _open(data_dir, database_url)
    with node:
        seal = seal or node.settings.seal
        instance = node.service.create_instance(SYSTEM, name, seal=seal)
        unit = node.units.for_instance(instance.id)
        info = {
            "instance_id": instance.id,
            "unit_id": unit.unit_id,
            "seal": seal,
            "imprint": unit.state.imprint,
        }
        if json_out:
            emit_json(info)
        else:
            console.print(
                table(
                    "New instance",
                    ["instance", "unit", "seal"],
                    [[instance.id, unit.unit_id, seal]],
                )
            )
            if seal == "dev":
                note(
                    "[yellow]dev seal: the master key sits in a file in the data directory — never use this in production[/]"
                )
            else:
                note(
                    "next: add administrators with `kyok ceremony admin add` (the first needs no signature)"
                )


@app.command("status")
@guarded
def status(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Show the unit: administrators, thresholds, sequence number, registers with their MKVPs."""
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        view = t.view()
        if json_out:
            emit_json(view.raw)
        else:
            _status_tables(view)


@admin_app.command("add")
@guarded
def admin_add(
    name: Annotated[str, typer.Option(help="The administrator's name.")],
    pubkey: Annotated[Path, typer.Option(help="Their public key file (.pub.pem).")],
    sign: Sign = None,
    out: Out = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Add an administrator. The first is added without signatures (imprint); later ones need
    one signature in imprint mode, then the signature threshold."""
    public = read_public_key(pubkey)
    signers = _signers(sign, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        args = {"name": name, "public_key": b64e(public.der)}
        result = _submit_or_write(t, Command.ADD_ADMIN, args, signers, out)
        if result is not None:
            _done(
                json_out, {"added": name, "id": public.fingerprint, "admins": len(t.view().admins)}
            )


@admin_app.command("remove")
@guarded
def admin_remove(
    admin: Annotated[str, typer.Argument(help="The administrator's name or id.")],
    sign: Sign = None,
    out: Out = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Remove an administrator (needs the revocation threshold of signatures; the last one
    stays)."""
    signers = _signers(sign, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        match = [a for a in t.view().admins if a["name"] == admin or a["id"] == admin.lower()]
        if not match:
            fail(f"no administrator {admin!r}")
        result = _submit_or_write(t, Command.REMOVE_ADMIN, {"admin": match[0]["id"]}, signers, out)
        if result is not None:
            _done(json_out, {"removed": match[0]["name"], "admins": len(t.view().admins)})


@app.command("thresholds")
@guarded
def thresholds(
    signature: Annotated[int, typer.Option(help="Signatures needed for ceremony commands.")],
    revocation: Annotated[int, typer.Option(help="Signatures needed to remove an administrator.")],
    sign: Sign = None,
    out: Out = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Set the signature and revocation thresholds (1 to the number of administrators).

    The first time, this leaves imprint mode."""
    signers = _signers(sign, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        args = {"signature": signature, "revocation": revocation}
        result = _submit_or_write(t, Command.SET_THRESHOLDS, args, signers, out)
        if result is not None:
            _done(json_out, {"signature_threshold": signature, "revocation_threshold": revocation})


def _done(json_out: bool, info: dict[str, Any]) -> None:
    if json_out:
        emit_json(info)
    else:
        console.print(table(None, list(info), [list(info.values())]))


@mk_app.command("create")
@guarded
def master_key_create(
    custodian: Custodians = None,
    scheme: Annotated[
        str,
        typer.Option(
            help="xor: every part needed (n-of-n, as HPCS); shamir: any --threshold of them."
        ),
    ] = "shamir",
    threshold: Annotated[
        int | None, typer.Option(help="Parts needed to unseal (shamir); xor always needs all.")
    ] = None,
    sign: Sign = None,
    expect_mkvp: Annotated[
        str | None,
        typer.Option(help="Refuse unless the assembled key has this MKVP (spaces ignored)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Commit without asking to confirm the MKVP.")
    ] = False,
    activate: Annotated[
        bool, typer.Option(help="Activate after committing (a rotation if the unit has a key).")
    ] = True,
    reencrypt: Annotated[
        bool, typer.Option(help="After a rotating activation, re-encrypt every blob now.")
    ] = True,
    unseal: Annotated[
        list[str] | None,
        typer.Option(
            "--unseal",
            help="PART:SIGKEY of the current key's custodians, when rotating a sealed unit.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Load every custodian's part into the new register, confirm its MKVP, commit and activate.

    Each part is sealed to the unit's transport key and signed by its custodian's own key;
    commit and activation need the signature threshold (--sign). When the unit already has a
    master key this is a rotation: every key blob is re-encrypted under the new key.
    """
    parts = _custodians(custodian)
    if len(parts) < 2:
        fail("a master key has at least two parts: give --custodian PART:SIGKEY for each")
    if scheme not in ("xor", "shamir"):
        fail("--scheme is xor or shamir")
    if scheme == "xor" and threshold is not None and threshold != len(parts):
        fail(
            f"an xor master key needs all of its parts: --threshold must be {len(parts)} (or left out)"
        )
    k = len(parts) if scheme == "xor" else threshold
    if k is None:
        fail("a shamir master key needs --threshold (parts needed to unseal)")
    pw = PassphraseReader()
    # Everything that can be checked is checked before the first part reaches the unit.
    unsealers = _read_custodians(unseal, pw)
    custodians = _read_custodians(custodian, pw)
    signers = _signers(sign, pw)
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        from kyok.crypto.mkvp import mkvp as compute_mkvp
        from kyok.crypto.xorsplit import xor_bytes

        mkvp = compute_mkvp(xor_bytes(*(c.part.secret() for c in custodians)))
        if len({c.part.kcv for c in custodians}) != len(custodians):
            fail("the same part is given twice")
        if expect_mkvp is not None and expect_mkvp.replace(" ", "").lower() != mkvp:
            fail(
                f"these parts assemble the master key with MKVP {pretty(mkvp)}, not the expected one: nothing was loaded"
            )
        view = t.view()
        if view.imprint:
            fail("the unit is in imprint mode: set the thresholds first (kyok ceremony thresholds)")
        if view.register("pending") is not None:
            fail("a committed master key waits for activation: activate it or clear it first")
        if activate and view.register("previous") is not None:
            fail(
                "a master-key rotation is still re-encrypting: run `kyok ceremony reencrypt` first"
            )
        if any(view.register_of(c.part.kcv) for c in custodians):
            fail(
                "a part of the unit's existing master key is given: a new master key needs new parts"
            )
        _check_signers(view, signers, "committing a master key")
        note(f"these parts assemble the master key with MKVP {pretty(mkvp)}")
        if expect_mkvp is None and not yes:
            if not sys.stdin.isatty():
                fail("confirm the MKVP with --expect-mkvp (or --yes): nothing was loaded")
            if not typer.confirm(f"Do the custodians confirm MKVP {pretty(mkvp)}?", default=False):
                fail("not confirmed: nothing was loaded")
        if unsealers:
            _load_parts(t, unsealers)
        view = t.view()
        if activate and view.register("current") is not None and view.sealed:
            fail("rotating needs the current master key: give its custodians with --unseal")
        _load_parts(t, custodians, register=Register.NEW, parts_total=len(parts))
        t.ep.submit(
            _signed(
                t.view(), Command.COMMIT, {"mkvp": mkvp, "scheme": scheme, "threshold": k}, signers
            )
        )
        note(f"committed master key {pretty(mkvp)} ({scheme}, {k} of {len(parts)} parts unseal it)")
        info: dict[str, Any] = {
            "mkvp": mkvp,
            "scheme": scheme,
            "parts": len(parts),
            "threshold": k,
            "committed": True,
            "activated": False,
        }
        if activate:
            result = t.ep.submit(_signed(t.view(), Command.ACTIVATE, {"mkvp": mkvp}, signers))
            info.update(
                activated=True, epoch=result.get("epoch"), rotation=bool(result.get("rotation"))
            )
            note(f"activated master key {pretty(mkvp)} (epoch {result.get('epoch')})")
            if result.get("rotation") and reencrypt:
                info["reencrypted"] = _reencrypt(t, 1000, json_out)
        _done(json_out, info)


@mk_app.command("activate")
@guarded
def master_key_activate(
    mkvp: Annotated[str, typer.Option(help="The committed key's MKVP (spaces ignored).")],
    sign: Sign = None,
    custodian: Custodians = None,
    out: Out = None,
    reencrypt: Annotated[
        bool, typer.Option(help="Re-encrypt every blob now if this is a rotation.")
    ] = True,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Activate the committed master key. With the shares seal, give --custodian for the parts the
    unit needs in memory (the committed key's and, for a rotation, the current key's)."""
    pw = PassphraseReader()
    custodians, signers = _read_custodians(custodian, pw), _signers(sign, pw)
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        _load_parts(t, custodians)
        args = {"mkvp": mkvp.replace(" ", "").lower()}
        result = _submit_or_write(t, Command.ACTIVATE, args, signers, out)
        if result is not None:
            info = dict(result)
            if result.get("rotation") and reencrypt:
                info["reencrypted"] = _reencrypt(t, 1000, json_out)
            _done(json_out, info)


@mk_app.command("clear")
@guarded
def master_key_clear(
    sign: Sign = None,
    out: Out = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Discard the new register and any committed-but-not-activated master key."""
    signers = _signers(sign, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        result = _submit_or_write(t, Command.CLEAR_NEW, {}, signers, out)
        if result is not None:
            _done(json_out, result)


@mk_app.command("load")
@guarded
def master_key_load(
    custodian: Custodians = None,
    parts: Annotated[int, typer.Option(help="How many parts the new master key has in all.")] = 0,
    url: Url = None,
    instance: Instance = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Load your part into the new register of a running server's unit (--url), from your own
    machine. When the last custodian has loaded, the administrators commit with
    `master-key commit` (the server keeps the register between commands; a local unit does not,
    so locally use `master-key create`)."""
    if not url:
        fail(
            "master-key load works against a running server (--url): locally, use `master-key create`"
        )
    if parts < 2:
        fail("give --parts: the number of parts of the new master key (at least 2)")
    custodians = _read_custodians(custodian, PassphraseReader())
    with _target(None, None, instance, url, cacert, insecure) as t:
        results = _load_parts(t, custodians, register=Register.NEW, parts_total=parts)
        last = results[-1] if results else {}
        if last.get("mkvp"):
            note(f"the new register is full: MKVP {pretty(str(last['mkvp']))}")
        _done(json_out, {"loaded": last.get("loaded"), "parts": parts, "mkvp": last.get("mkvp")})


@mk_app.command("commit")
@guarded
def master_key_commit(
    mkvp: Annotated[str, typer.Option(help="The MKVP the custodians confirmed (spaces ignored).")],
    scheme: Annotated[str, typer.Option(help="xor or shamir.")] = "shamir",
    threshold: Annotated[int | None, typer.Option(help="Parts needed to unseal (shamir).")] = None,
    sign: Sign = None,
    out: Out = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Commit the full new register of a running server's unit (after `master-key load`)."""
    signers = _signers(sign, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        new = t.view().register("new")
        if new is None or new.state != "full":
            fail("the new register is not full: every custodian must `master-key load` first")
        k = new.needed if scheme == "xor" else threshold
        if k is None:
            fail("a shamir master key needs --threshold")
        args = {"mkvp": mkvp.replace(" ", "").lower(), "scheme": scheme, "threshold": k}
        result = _submit_or_write(t, Command.COMMIT, args, signers, out)
        if result is not None:
            record = result.get("record") or {}
            _done(json_out, {"committed": record.get("mkvp"), "epoch": record.get("epoch")})


@app.command("unseal")
@guarded
def unseal_cmd(
    custodian: Custodians = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Load custodians' parts into the registers they belong to and report whether the unit is
    unsealed.

    Against a server (--url), each custodian can run this from their own machine; the server
    keeps what is loaded. Locally the unit lives only as long as this command, so this proves
    the parts work; commands that need the master key take --custodian themselves.
    """
    custodians = _read_custodians(custodian, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        results = _load_parts(t, custodians)
        view = t.view()
        info = {
            "sealed": view.sealed,
            "loaded": [
                {k: r.get(k) for k in ("label", "register", "kcv", "loaded", "needed")}
                for r in results
            ],
        }
        if json_out:
            emit_json(info)
        else:
            _status_tables(view)
        if view.sealed:
            raise typer.Exit(4)


def _reencrypt(t: _Target, batch_size: int, quiet: bool) -> int:
    if quiet or not sys.stderr.isatty():

        def report(done: int, total: int) -> None:
            note(f"re-encrypted {done}/{total}")

        return t.ep.reencrypt(batch_size, report)
    columns = (
        TextColumn("re-encrypting key blobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("reencrypt", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return t.ep.reencrypt(batch_size, update)


@app.command("reencrypt")
@guarded
def reencrypt_cmd(
    custodian: Custodians = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Blobs per transaction.")
    ] = 1000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Continue a master-key rotation: re-encrypt the remaining blobs, then retire the old key.

    Safe to interrupt and run again. With the shares seal, give --custodian parts for both the
    current and the previous master key (unless a server holds them already)."""
    custodians = _read_custodians(custodian, PassphraseReader())
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        _load_parts(t, custodians)
        if t.view().register("previous") is None:
            _done(json_out, {"rotation": "none in progress", "reencrypted": 0})
            return
        done = _reencrypt(t, batch_size, json_out)
        _done(json_out, {"reencrypted": done, "retired": t.view().register("previous") is None})


@app.command("admin-credential")
@guarded
def admin_credential(
    name: Annotated[str, typer.Option("--name", help="The administrator principal to create.")],
    sign: Sign = None,
    custodian: Custodians = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Create an administrator credential for the instance, authorized by the unit's
    administrators (the signature threshold of --sign keys).

    Outside dev mode this is the only way an instance gets its first administrator (or a new one
    when all have lost theirs): an operator with the database alone cannot make one. The principal
    gets Manager, KeyPurge and KyokInstanceAdmin; its API key is shown once. The key travels
    sealed to a key pair this command makes, so whoever sees the signed command learns nothing.
    """
    from kyok.auth.service import open_admin_credential
    from kyok.crypto.kem import HybridPrivateKey

    pw = PassphraseReader()
    custodians, signers = _read_custodians(custodian, pw), _signers(sign, pw)
    recipient = HybridPrivateKey.generate()
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        _load_parts(t, custodians)
        view = t.view()
        _check_signers(view, signers, "authorizing an administrator credential")
        args = {"principal": name, "recipient": b64e(recipient.public_key().to_bytes())}
        principal_id, seq, sealed = t.ep.admin_credential(
            _signed(view, Command.AUTHORIZE_ADMIN, args, signers)
        )
        api_key = open_admin_credential(recipient, sealed, view.instance_id, seq)
        info = {
            "instance_id": view.instance_id,
            "principal": name,
            "principal_id": principal_id,
            "api_key": api_key,
        }
        if json_out:
            emit_json(info)
        else:
            console.print(
                table(
                    "Administrator credential (the API key is shown only now)",
                    list(info),
                    [list(info.values())],
                )
            )


# ---------------------------------------------------------------- command files


@app.command("sign")
@guarded
def sign_cmd(
    file: Annotated[Path, typer.Argument(help="A command file made with --out.")],
    sigkey: Annotated[
        list[Path], typer.Option("--sigkey", help="Your signature-key file (repeatable).")
    ],
) -> None:
    """Add your signature to a command file (review what it says first: `cat` it)."""
    cmd = SignedCommand.loads(file.read_text())
    pw = PassphraseReader()
    for path in sigkey:
        cmd = cmd.signed_by(read_sigkey(path, pw.get(path, purpose="signature key")))
    from kyok.unit.files import write_public

    write_public(file, cmd.dumps().encode(), overwrite=True)
    note(f"{cmd.command} (sequence {cmd.seq}) now has {len(cmd.signatures)} signature(s)")


@app.command("submit")
@guarded
def submit_cmd(
    file: Annotated[Path, typer.Argument(help="A signed command file.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    json_out: Json = False,
) -> None:
    """Submit a signed command file to the unit."""
    cmd = SignedCommand.loads(file.read_text())
    if cmd.command == Command.LOAD_PART:
        fail("parts are loaded with --custodian, not from command files")
    if cmd.command == Command.AUTHORIZE_ADMIN:
        fail("administrator credentials are made with `kyok ceremony admin-credential`")
    with _target(data_dir, database_url, instance, url, cacert, insecure) as t:
        view = t.view()
        if cmd.unit_id != view.unit_id:
            fail(f"the command is for unit {cmd.unit_id}, not this instance's unit {view.unit_id}")
        pending = view.register("pending")
        if (
            t.ep.local
            and cmd.command == Command.ACTIVATE
            and pending is not None
            and not pending.in_memory
        ):
            fail(
                "the committed master key is not in memory (shares seal): in local mode, activate it "
                "with `kyok ceremony master-key activate --custodian PART:SIGKEY ... --sign ...`, "
                "which loads its parts and signs in one command"
            )
        _done(json_out, {"command": cmd.command, "seq": cmd.seq, **t.ep.submit(cmd)})


# ---------------------------------------------------------------- the transcript


@app.command("transcript")
@guarded
def transcript_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the export here (default: stdout).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    instance: Instance = None,
    url: Url = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
) -> None:
    """Export the ceremony transcript (JSON Lines) for offline verification.

    Locally it reads the stored entries directly, so it works even when the unit refuses to open."""
    if url:
        with _target(None, None, instance, url, cacert, insecure) as t:
            lines = t.ep.transcript_lines()
    else:
        node = _open(data_dir, database_url)
        with node:
            instance_id = _resolve_instance(node, instance)
            unit_id = node.store.units.unit_for_instance(instance_id)
            if unit_id is None:
                raise UnitNotFound(f"instance {instance_id} has no crypto unit")
            from kyok.unit.transcript import TranscriptEntry

            lines = [
                TranscriptEntry(e.n, e.entry, e.hash, e.mac).export_line()
                for e in node.store.units.transcript(unit_id)
            ]
    text = "".join(line + "\n" for line in lines)
    if out is None:
        sys.stdout.write(text)
    else:
        from kyok.unit.files import write_public

        write_public(out, text.encode(), overwrite=True)
        note(f"wrote {len(lines)} entries to {out}")


@app.command("verify")
@guarded
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="An exported transcript.")],
    unit_id: Annotated[
        str | None, typer.Option("--unit-id", help="The unit the transcript must belong to.")
    ] = None,
    first_admin: Annotated[
        str | None,
        typer.Option("--first-admin", help="Fingerprint the imprinted administrator must have."),
    ] = None,
    json_out: Json = False,
) -> None:
    """Verify an exported transcript offline: hash chain, every signature, thresholds, rules.

    Needs nothing but the file. Exit code 0 only when it is intact; 3 names the first broken entry."""
    try:
        entries = parse_export(file.read_text().splitlines())
    except ValueError as exc:
        if json_out:
            emit_json({"ok": False, "error": str(exc)})
        fail(str(exc), EXIT_BROKEN)
    report = verify_export(entries, unit_id=unit_id, first_admin=first_admin)
    info: dict[str, Any] = {
        "ok": report.ok,
        "entries": report.entries,
        "commands": report.commands,
        "error": report.error,
        "broken_at": report.broken_at,
        "macs": report.macs,
        "warnings": report.warnings,
    }
    if report.state is not None:
        info["state"] = report.state.summary()
    if json_out:
        emit_json(info)
    elif report.ok:
        s = report.state
        assert s is not None
        console.print(
            f"[green]intact[/]: {report.entries} entries, {report.commands} signed commands, "
            f"{report.macs} with the unit's MAC; unit {s.unit_id}"
        )
        for warning in report.warnings:
            console.print(f"[yellow]note:[/] {warning}")
        _print_summary(s)
    if not report.ok:
        fail(f"transcript broken: {report.error}", EXIT_BROKEN)


def _print_summary(s: Any) -> None:
    console.print(
        table(
            "Administrators",
            ["name", "id", "algorithm"],
            [[a.name, a.id, a.algorithm] for a in s.admins],
        )
    )
    rows = [
        [
            reg.value,
            rec.epoch,
            pretty(rec.mkvp),
            rec.scheme.value,
            f"{rec.threshold} of {rec.parts}",
        ]
        for reg, rec in s.records()
    ]
    console.print(
        table("Master keys", ["register", "epoch", "MKVP", "scheme", "unseal with"], rows)
    )
