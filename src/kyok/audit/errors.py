"""Errors of the audit ledger.

``ExportMalformed`` is raised while *reading* an export (a line that is not JSON, a field of the
wrong type); tampering that parses is never an exception but a :class:`~kyok.audit.verify.Problem`
in the :class:`~kyok.audit.verify.VerifyReport`. ``LedgerBroken`` is for writers that must refuse
to continue a chain that does not link (the future ledger sink).
"""

from __future__ import annotations

from kyok.errors import InternalError, InvalidInput

__all__ = ["ExportMalformed", "LedgerBroken"]


class ExportMalformed(InvalidInput):
    """An export file (or one of its lines) is not in the kyok-audit-export/1 format."""

    code = "AUDIT_EXPORT_MALFORMED_ERR"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


class LedgerBroken(InternalError):
    """The stored ledger does not link at ``seq`` (the writer refuses to extend it)."""

    code = "AUDIT_LEDGER_BROKEN_ERR"

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"the audit ledger is broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason
