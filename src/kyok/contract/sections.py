"""Plain contract values: base64 text, base64 JSON and base64 tgz archives (reference §7.1 #10 to #16).

The tgz form is what ``workload.compose.archive`` and ``workload.play.archive`` hold: base64 of a
gzipped tar of a folder's *contents* (entry names relative to the folder, directories
included). kyok builds it deterministically, so the same folder always gives the same bytes:

- entries in sorted order, directories before the files inside them;
- mtime 0, uid/gid 0, no user or group names, POSIX (ustar/pax) format;
- gzip header with mtime 0 and no file name;
- permission bits kept as they are (an executable script stays executable).

Only regular files and directories are allowed: the image rejects links and pipes (seed 004,
§3.1.1), so kyok refuses them when building instead of producing an archive that fails at boot.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from kyok.contract.token import ContractError

__all__ = [
    "TgzEntry",
    "decode_base64",
    "encode_base64",
    "encode_json",
    "encode_tgz",
    "list_tgz",
    "make_tgz",
]

_MAX_ARCHIVE_ENTRIES = 100_000


@dataclass(frozen=True)
class TgzEntry:
    """One entry of a base64-tgz archive.

    Attributes:
        name: the path inside the archive (``docker-compose.yaml``, ``conf/nginx.conf``).
        kind: ``file`` or ``dir`` (anything else is reported as ``other``).
        size: the file size in bytes (0 for a directory).
        mode: the permission bits.
    """

    name: str
    kind: str
    size: int
    mode: int


def encode_base64(data: bytes) -> str:
    """Standard base64 of ``data`` on one line (contract-go ``HpcrText``)."""
    return base64.b64encode(data).decode("ascii")


def decode_base64(value: str) -> bytes:
    """Decode standard base64; whitespace (line breaks from wrapping) is ignored.

    Raises:
        ContractError: not valid standard base64.
    """
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ContractError("the value is not valid standard base64") from None


def encode_json(data: bytes) -> str:
    """Check that ``data`` is JSON, then base64 it unchanged (contract-go ``HpcrJson``).

    The bytes are encoded as given (indentation and all), not re-serialized.

    Raises:
        ContractError: ``data`` is not UTF-8 JSON.
    """
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(
            f"the input is not valid JSON ({exc.__class__.__name__}): fix it or use --format text"
        ) from None
    return encode_base64(data)


def _check_kind(path: Path, shown: str) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise ContractError(
            f"{shown} is a symbolic link: the archive may hold only regular files and "
            "directories (the image rejects links); copy the target instead"
        )
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise ContractError(
        f"{shown} is not a regular file or directory (a pipe, socket or device): "
        "the image accepts only regular files and directories"
    )


def _add(tar: tarfile.TarFile, path: Path, name: str, kind: str) -> None:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode)
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    info.type = tarfile.REGTYPE
    with path.open("rb") as handle:
        data = handle.read()
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _walk(root: Path) -> list[tuple[Path, str, str]]:
    """(path, archive name, kind) for everything under ``root``, sorted, parents first."""
    found: list[tuple[Path, str, str]] = []

    def visit(directory: Path, prefix: str) -> None:
        for child in sorted(directory.iterdir(), key=lambda p: p.name):
            name = f"{prefix}{child.name}"
            kind = _check_kind(child, name)
            found.append((child, name, kind))
            if len(found) > _MAX_ARCHIVE_ENTRIES:
                raise ContractError(
                    f"the folder holds more than {_MAX_ARCHIVE_ENTRIES} entries: is it the right one?"
                )
            if kind == "dir":
                visit(child, f"{name}/")

    visit(root, "")
    return found


def make_tgz(path: Path) -> bytes:
    """A deterministic gzipped tar of a folder's contents, or of one file.

    Args:
        path: a directory (its contents go to the top level of the archive) or a regular file
            (archived under its own name).

    Returns:
        The ``.tar.gz`` bytes.

    Raises:
        ContractError: the path does not exist, or holds a link, pipe, socket or device.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ContractError(f"{path} does not exist: give a folder or a file to archive")
    kind = _check_kind(path, str(path))
    entries = _walk(path) if kind == "dir" else [(path, path.name, "file")]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry_path, name, entry_kind in entries:
            _add(tar, entry_path, name, entry_kind)
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def encode_tgz(path: Path) -> str:
    """Base64 of :func:`make_tgz` (contract-go ``HpcrTgz``), on one line."""
    return encode_base64(make_tgz(path))


def list_tgz(value: str) -> tuple[TgzEntry, ...]:
    """The entries of a base64-tgz archive, without extracting anything.

    Raises:
        ContractError: not base64 of a gzipped tar archive.
    """
    data = decode_base64(value)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile):
        raise ContractError("the value is not base64 of a gzipped tar archive") from None
    if len(members) > _MAX_ARCHIVE_ENTRIES:
        raise ContractError(f"the archive holds more than {_MAX_ARCHIVE_ENTRIES} entries")
    return tuple(
        TgzEntry(
            name=m.name,
            kind="file" if m.isreg() else "dir" if m.isdir() else "other",
            size=m.size if m.isreg() else 0,
            mode=m.mode,
        )
        for m in members
    )
