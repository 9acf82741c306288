"""Registrations (Key Protect reference §2.8): which resources a root key protects.

A service principal records that a resource, named by a CRN, is encrypted under a key (and
under which version). Users only read them. A key with registrations is deleted only with
``force``; a registration with ``preventKeyDeletion`` (a retention hold) stops deletion even
then. This module holds the values and the input rules; :class:`~kyok.kms.service.KeyService`
runs the use cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kyok.kms.errors import InvalidField
from kyok.store.records import RegistrationRecord

__all__ = [
    "CRN_MAX",
    "DESCRIPTION_MAX",
    "METADATA_MAX",
    "UNSET",
    "RegistrationView",
    "Unset",
    "validate_crn",
    "validate_crn_pattern",
    "validate_registration_text",
]

CRN_MAX = 512
DESCRIPTION_MAX = 240
METADATA_MAX = 4096
#: ``crn:v1:<cloud>:<type>:<service>:<region>:<scope>:<instance>:<resource type>:<resource>``
#: segments may be empty but there are exactly ten; no whitespace or control characters.
_CRN = re.compile(r"crn:v1(:[^:\s]*){8}$")


def validate_crn(value: Any, target: str = "resource_crn") -> str:
    """A resource CRN: ``crn:v1:`` then eight more colon-separated segments, at most 512 chars.

    Raises:
        InvalidField: anything else.
    """
    if not isinstance(value, str) or not value or len(value) > CRN_MAX:
        raise InvalidField(target, f"must be a CRN of at most {CRN_MAX} characters")
    if "*" in value or not _CRN.match(value) or not value.isprintable():
        raise InvalidField(
            target,
            "must be a CRN such as crn:v1:bluemix:public:<service>:<region>:a/<account>:"
            "<instance>:<type>:<resource>",
        )
    return value


def validate_crn_pattern(value: Any) -> str:
    """A CRN query: like a CRN, where ``*`` stands for any run of characters.

    Raises:
        InvalidField: not a printable string of at most 512 characters starting with ``crn:``.
    """
    if (
        not isinstance(value, str)
        or not value.startswith("crn:")
        or len(value) > CRN_MAX
        or not value.isprintable()
    ):
        raise InvalidField(
            "resource_crn_query", "must be a CRN in which * stands for any characters"
        )
    return value


def validate_registration_text(value: Any, target: str, limit: int) -> str | None:
    """An optional free-text field (description, registration metadata) of at most ``limit``.

    Raises:
        InvalidField: not a string, or too long.
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidField(target, f"must be text of at most {limit} characters")
    return value


class Unset:
    """The type of :data:`UNSET`: "leave this field as it is" (None means "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


@dataclass(frozen=True, slots=True)
class RegistrationView:
    """A registration with what its representation adds from the key.

    Attributes:
        record: the stored registration.
        key_name: the key's name.
        key_version_created_at: when the registered key version was made.
    """

    record: RegistrationRecord
    key_name: str
    key_version_created_at: datetime | None = None
