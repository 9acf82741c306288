"""The audit ledger: events, the per-instance hash chain, signed checkpoints, export files and the
offline verifier.

Pure code: no store, no clock (times are parameters), no private key (checkpoints are signed
through the :class:`~kyok.audit.checkpoint.Signer` protocol). Imports only ``kyok.crypto``,
``kyok.errors`` and ``kyok.clock`` (DESIGN §3). Formats: ``docs/formats.md``, "Audit ledger".
"""

from __future__ import annotations

from kyok.audit.chain import Chain, ChainedEvent, ChainHead, entry_hash, genesis_hash
from kyok.audit.checkpoint import (
    Checkpoint,
    CheckpointPolicy,
    KeySigner,
    Signer,
    make_checkpoint,
)
from kyok.audit.errors import ExportMalformed, LedgerBroken
from kyok.audit.event import AuditEvent, Initiator, ItemRun, Target, correlation_hash
from kyok.audit.export import (
    EXPORT_FORMAT,
    AuditExport,
    ExportHeader,
    ExportItem,
    build_export,
    dumps_export,
    loads_export,
    read_export,
    write_export,
)
from kyok.audit.verify import Problem, ProblemKind, VerifyReport, verify, verify_file

__all__ = [
    "EXPORT_FORMAT",
    "AuditEvent",
    "AuditExport",
    "Chain",
    "ChainHead",
    "ChainedEvent",
    "Checkpoint",
    "CheckpointPolicy",
    "ExportHeader",
    "ExportItem",
    "ExportMalformed",
    "Initiator",
    "ItemRun",
    "KeySigner",
    "LedgerBroken",
    "Problem",
    "ProblemKind",
    "Signer",
    "Target",
    "VerifyReport",
    "build_export",
    "correlation_hash",
    "dumps_export",
    "entry_hash",
    "genesis_hash",
    "loads_export",
    "make_checkpoint",
    "read_export",
    "verify",
    "verify_file",
    "write_export",
]
