"""The error catalogue (codes, statuses, no secrets) and the layer rule of DESIGN §3 for kms."""

from __future__ import annotations

import ast
import inspect
import os
from pathlib import Path

import pytest

import kyok.kms
from kyok import errors as base
from kyok.kms import errors
from kyok.kms.errors import InvalidField, UnwrapFailed
from kyok.unit import handles

# Written by hand from the Key Protect reference §6 (and kyok's own names where it has none).
EXPECTED = {
    "InvalidField": ("INVALID_FIELD_ERR", 400),
    "InvalidQueryParam": ("INVALID_QUERY_PARAM_ERR", 400),
    "BadBody": ("BAD_BODY_ERR", 400),
    "RootKeyRequired": ("KEY_ROOT_REQ_ERR", 400),
    "NotExtractable": ("KEY_NOT_EXTRACTABLE_ERR", 400),
    "PayloadRequired": ("KEY_PAYLOAD_REQ_ERR", 400),
    "PayloadNotAllowed": ("KEY_PAYLOAD_NOT_ALLOWED_ERR", 400),
    "RestoreExpired": ("KEY_RESTORE_EXPIRED", 400),
    "KeyExpired": ("KEY_EXPIRED_ERR", 400),
    "SearchTooBroad": ("KEY_SEARCH_TOO_BROAD", 400),
    "KeyRingReserved": ("KEY_RING_RESERVED_ERR", 400),
    "KeyNotFound": ("KEY_NOT_FOUND_ERR", 404),
    "KeyRingNotFound": ("KEY_RING_NOT_FOUND_ERR", 404),
    "AliasNotFound": ("KEY_ALIAS_NOT_FOUND_ERR", 404),
    "InstanceNotFound": ("INSTANCE_NOT_FOUND_ERR", 404),
    "KeyStateConflict": ("KEY_ACTION_INVALID_STATE_ERR", 409),
    "RotationNotPermitted": ("KEY_ROTATION_NOT_PERMITTED", 409),
    "RequestTooEarly": ("REQ_TOO_EARLY_ERR", 409),
    "PurgeTooEarly": ("REQ_TOO_EARLY_ERR", 409),
    "AliasExists": ("KEY_ALIAS_NOT_UNIQUE_ERR", 409),
    "AliasLimitExceeded": ("KEY_ALIAS_QUOTA_ERR", 409),
    "KeyRingExists": ("KEY_RING_EXISTS_ERR", 409),
    "KeyRingLimitExceeded": ("KEY_RING_QUOTA_ERR", 409),
    "KeyRingNotEmpty": ("KEY_RING_NOT_EMPTY_ERR", 409),
    "InstanceExists": ("INSTANCE_EXISTS_ERR", 409),
    "KeyDeleted": ("KEY_DELETED_ERR", 410),
    "UnwrapFailed": ("UNPROCESSABLE_CIPHERTEXT_ERR", 422),
    # Issue 4: import tokens, policies, dual authorisation, registrations.
    "IncorrectNonce": ("INCORRECT_NONCE_ERR", 400),
    "IncorrectNonceIv": ("INCORRECT_NONCE_IV_ERR", 400),
    "CollectionTotalMismatch": ("COLLECTION_TOTAL_MISMATCH_ERR", 400),
    "BodyQueryParamMismatch": ("BODY_QUERY_PARAM_MISMATCH_ERR", 400),
    "DuplicatePolicy": ("NUM_COLLECTION_RESOURCE_ERR", 400),
    "DualAuthLocked": ("DUAL_AUTH_DELETE_LOCKED_ERR", 400),
    "AccessPolicyDenied": ("UNAUTHORIZED_ERR", 401),
    "NetworkPolicyDenied": ("CONFIG_RULE_CONFLICT_ERR", 403),
    "ServiceOnly": ("SERVICE_ONLY_ERR", 403),
    "RegistrationNotFound": ("REGISTRATION_NOT_FOUND_ERR", 404),
    "ImportTokenExpired": ("IMPORT_TOKEN_EXPIRED_ERR", 409),
    "CreateImportForbidden": ("KEY_CREATE_IMPORT_ACCESS_ERR", 409),
    "NotDualAuth": ("NOT_DUAL_AUTH_ERR", 409),
    "AuthorizationsNotMet": ("AUTHORIZATIONS_NOT_MET", 409),
    "ProtectedResource": ("PROTECTED_RESOURCE_ERR", 409),
    "DeletionPrevented": ("PREV_KEY_DEL_ERR", 409),
    "RegistrationExists": ("REGISTRATION_EXISTS_ERR", 409),
    "SyncTooEarly": ("REQ_TOO_EARLY_ERR", 409),
    "RootKeyRequiredForRegistration": ("KEY_ROOT_REQ_REG_ERR", 422),
    "KeyVersionInvalid": ("KEY_VERSION_INVALID", 422),
    "KeyInvalidState": ("KEY_INVALID_STATE_ERR", 422),
}


def test_every_error_has_its_code_and_status() -> None:
    exported = {name: getattr(errors, name) for name in errors.__all__}
    assert set(exported) == set(EXPECTED)
    for name, cls in exported.items():
        assert issubclass(cls, base.KyokError), name
        assert (cls.code, cls.status) == EXPECTED[name], name


def test_unwrap_failure_is_the_units_one_opaque_error() -> None:
    assert UnwrapFailed is handles.UnwrapFailed


def test_invalid_field_never_echoes_the_value() -> None:
    secret = "hunter2-" + os.urandom(8).hex()
    from kyok.kms import validation

    for call in (
        lambda: validation.validate_name(secret + "\x00"),
        lambda: validation.validate_alias(secret + " !"),
        lambda: validation.validate_tags([secret + ":"]),
        lambda: validation.validate_aad([secret * 40]),
    ):
        with pytest.raises(InvalidField) as info:
            call()
        assert secret not in str(info.value) and secret not in repr(info.value)


def test_wrap_errors_hold_no_key_material(service, actor, instance) -> None:
    key = service.create_key(actor, instance, "quiet")
    dek = os.urandom(32)
    ct = service.wrap(instance, key.id, dek, ["aad-secret"]).ciphertext
    with pytest.raises(UnwrapFailed) as info:
        service.unwrap(instance, key.id, ct, ["other"])
    text = str(info.value) + repr(info.value)
    assert "aad-secret" not in text and dek.hex() not in text and ct.hex() not in text


# ----------------------------------------------------------------------------- layer rule

FORBIDDEN = ("sqlalchemy", "fastapi", "pydantic", "typer", "starlette", "httpx")
FORBIDDEN_KYOK = (
    "kyok.api",
    "kyok.cli",
    "kyok.kmip",
    "kyok.client",
    "kyok.store.sql",
    "kyok.store.memory",
    "kyok.bootstrap",
)
ALLOWED_KYOK = (
    "kyok.kms",
    "kyok.unit",
    "kyok.auth",
    "kyok.store.ports",
    "kyok.store.records",
    "kyok.clock",
    "kyok.errors",
    "kyok.crypto",
    "kyok.audit",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_kms_imports_only_what_design_allows() -> None:
    package = Path(inspect.getfile(kyok.kms)).parent
    files = sorted(package.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            if top == "kyok":
                assert not name.startswith(FORBIDDEN_KYOK), f"{path.name} imports {name}"
                assert name.startswith(ALLOWED_KYOK), f"{path.name} imports {name}"


def test_package_exports() -> None:
    for name in kyok.kms.__all__:
        assert getattr(kyok.kms, name) is not None
    assert "KeyService" in kyok.kms.__all__
