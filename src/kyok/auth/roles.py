"""Roles and permissions (Key Protect's service roles, reference §7), as data.

Roles are additive: Reader ⊂ ReaderPlus ⊂ Writer ⊂ Manager; KeyPurge only adds purge.
``KyokInstanceAdmin`` is kyok's own: it manages the instance's principals, API keys and role
bindings (and nothing about keys). ``KyokAuditor`` is kyok's own too: it reads the instance's
audit ledger and its public key (``kyok.audit.read``) and nothing else; Managers can read the
ledger as well. A binding grants a role on a *scope*: the whole instance,
one key ring, or one key.

Choices the reference leaves open: creating and deleting aliases need Writer (aliases are
metadata, like tags); listing key versions is a Reader permission; writing registrations
(``kms.registrations.write``: create, replace, update, delete) needs Writer, and the key
service further limits it to service principals (Key Protect: "service-to-service" only).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    READER = "Reader"
    READER_PLUS = "ReaderPlus"
    WRITER = "Writer"
    MANAGER = "Manager"
    KEY_PURGE = "KeyPurge"
    INSTANCE_ADMIN = "KyokInstanceAdmin"
    AUDITOR = "KyokAuditor"


class Permission(StrEnum):
    """Permissions, named after the IAM actions Key Protect reports (``kms.secrets.wrap``...)."""

    KEYS_LIST = "kms.secrets.list"  # list keys, HEAD key total
    KEYS_READ_METADATA = "kms.secrets.readmetadata"
    KEYS_READ = "kms.secrets.read"  # get a standard key with its payload
    KEYS_LIST_VERSIONS = "kms.secrets.listkeyversions"
    KEYS_WRAP = "kms.secrets.wrap"
    KEYS_UNWRAP = "kms.secrets.unwrap"
    KEYS_REWRAP = "kms.secrets.rewrap"
    KEYS_CREATE = "kms.secrets.create"  # create and import
    KEYS_ROTATE = "kms.secrets.rotate"
    KEYS_SET_FOR_DELETION = "kms.secrets.setkeyfordeletion"
    KEYS_UNSET_FOR_DELETION = "kms.secrets.unsetkeyfordeletion"
    KEYS_SYNC = "kms.secrets.sync"
    KEYS_DISABLE = "kms.secrets.disable"
    KEYS_ENABLE = "kms.secrets.enable"
    KEYS_DELETE = "kms.secrets.delete"
    KEYS_RESTORE = "kms.secrets.restore"
    KEYS_PATCH = "kms.secrets.patch"  # move to another key ring
    KEYS_PURGE = "kms.secrets.purge"
    ALIASES_CREATE = "kms.secrets.createalias"
    ALIASES_DELETE = "kms.secrets.deletealias"
    IMPORT_TOKEN_CREATE = "kms.importtoken.create"  # noqa: S105 (a permission name)
    IMPORT_TOKEN_READ = "kms.importtoken.read"  # noqa: S105 (a permission name)
    KEY_RINGS_LIST = "kms.keyrings.list"
    KEY_RINGS_CREATE = "kms.keyrings.create"
    KEY_RINGS_DELETE = "kms.keyrings.delete"
    POLICIES_READ = "kms.policies.read"
    POLICIES_WRITE = "kms.policies.write"
    INSTANCE_POLICIES_READ = "kms.instancepolicies.read"
    INSTANCE_POLICIES_WRITE = "kms.instancepolicies.write"
    REGISTRATIONS_LIST = "kms.registrations.list"
    REGISTRATIONS_WRITE = "kms.registrations.write"  # service principals only (the key service)
    PRINCIPALS_MANAGE = "kyok.principals.manage"  # principals, API keys, role bindings
    AUDIT_READ = "kyok.audit.read"  # the instance's audit ledger and its public key


_P = Permission
_READER = frozenset(
    {
        _P.KEYS_LIST,
        _P.KEYS_READ_METADATA,
        _P.KEYS_LIST_VERSIONS,
        _P.KEYS_WRAP,
        _P.KEYS_UNWRAP,
        _P.KEYS_REWRAP,
        _P.KEY_RINGS_LIST,
        _P.REGISTRATIONS_LIST,
    }
)
_READER_PLUS = _READER | {_P.KEYS_READ}
_WRITER = _READER_PLUS | {
    _P.KEYS_CREATE,
    _P.KEYS_ROTATE,
    _P.KEYS_SET_FOR_DELETION,
    _P.KEYS_UNSET_FOR_DELETION,
    _P.KEYS_SYNC,
    _P.IMPORT_TOKEN_CREATE,
    _P.IMPORT_TOKEN_READ,
    _P.KEY_RINGS_CREATE,
    _P.ALIASES_CREATE,
    _P.ALIASES_DELETE,
    _P.REGISTRATIONS_WRITE,
}
_MANAGER = _WRITER | {
    _P.KEYS_DISABLE,
    _P.KEYS_ENABLE,
    _P.KEYS_DELETE,
    _P.KEYS_RESTORE,
    _P.KEYS_PATCH,
    _P.KEY_RINGS_DELETE,
    _P.POLICIES_READ,
    _P.POLICIES_WRITE,
    _P.INSTANCE_POLICIES_READ,
    _P.INSTANCE_POLICIES_WRITE,
    _P.AUDIT_READ,
}

#: What each role grants.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.READER: _READER,
        Role.READER_PLUS: frozenset(_READER_PLUS),
        Role.WRITER: frozenset(_WRITER),
        Role.MANAGER: frozenset(_MANAGER),
        Role.KEY_PURGE: frozenset({_P.KEYS_PURGE}),
        Role.INSTANCE_ADMIN: frozenset({_P.PRINCIPALS_MANAGE}),
        Role.AUDITOR: frozenset({_P.AUDIT_READ}),
    }
)

#: Permissions that make sense on a key-ring or key scope (the rest need the instance scope).
KEY_SCOPED: frozenset[Permission] = frozenset(
    {
        _P.KEYS_READ_METADATA,
        _P.KEYS_READ,
        _P.KEYS_LIST_VERSIONS,
        _P.KEYS_WRAP,
        _P.KEYS_UNWRAP,
        _P.KEYS_REWRAP,
        _P.KEYS_ROTATE,
        _P.KEYS_SET_FOR_DELETION,
        _P.KEYS_UNSET_FOR_DELETION,
        _P.KEYS_SYNC,
        _P.KEYS_DISABLE,
        _P.KEYS_ENABLE,
        _P.KEYS_DELETE,
        _P.KEYS_RESTORE,
        _P.KEYS_PATCH,
        _P.KEYS_PURGE,
        _P.ALIASES_CREATE,
        _P.ALIASES_DELETE,
        _P.POLICIES_READ,
        _P.POLICIES_WRITE,
        _P.REGISTRATIONS_LIST,
        _P.REGISTRATIONS_WRITE,
    }
)
#: Permissions a key-ring scope also grants for the ring as a whole (listing and creating in it).
RING_SCOPED: frozenset[Permission] = KEY_SCOPED | {_P.KEYS_LIST, _P.KEYS_CREATE}
