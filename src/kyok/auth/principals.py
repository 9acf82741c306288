"""Who is acting: a principal is a user or a service ID within an instance, or kyok itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor. ``id`` is what records show as createdBy/deletedBy."""

    id: str
    kind: PrincipalKind = PrincipalKind.USER
    instance_id: str | None = None


#: kyok's own scheduler and maintenance jobs.
SYSTEM = Principal("kyok-system", PrincipalKind.SYSTEM)
