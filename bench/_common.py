"""What the Python benches share: logging, a free port, the machine and revision lines of a
result, and rewriting one generated section of docs/benchmarks.md.

The benches run as scripts (``.venv/bin/python bench/<name>.py``), so this directory is first on
``sys.path`` and they ``import _common``.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def log(msg: str) -> None:
    """A progress line on stderr (stdout carries the JSON result)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    """CPU model, cores, kernel and Python, for a result's "Machine:" line."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = os.cpu_count() or 2
    return f"{model}, {cores} cores, Linux {platform.release()}, Python {platform.python_version()}"


def git_rev() -> str:
    """The measured revision, and whether src/ had uncommitted changes."""
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return out.stdout.strip() + (" + uncommitted changes in src/" if dirty else "")


def replace_section(begin: str, end: str, text: str, heading: str) -> None:
    """Put ``text`` (which starts with ``begin`` and ends with ``end``) in place of the section
    between those markers in docs/benchmarks.md, or append it under ``heading`` if the file has
    no such section. The file is read just before writing: other benches rewrite other sections."""
    doc = DOC.read_text()
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc = head + text + tail
    else:
        doc = doc.rstrip("\n") + f"\n\n## {heading}\n\n" + text + "\n"
    DOC.write_text(doc)
