"""Errors of the key-management domain.

Each class picks its category from :mod:`kyok.errors` (which fixes the HTTP status) and carries
a stable ``code``: the Key Protect reason code where Key Protect documents one, otherwise a name of
our own in the same style (marked "kyok" below). Messages say what failed and never contain key
material, a plaintext, a ciphertext, a token or the caller's raw input. Where one input is to
blame, ``target`` names it using the *service parameter* name (``name``, ``aliases``,
``expires_at``, ``material``, ``plaintext``, ``aad``, ``ciphertext``, ``limit`` ...); the
adapter maps it to its wire name::

    InvalidInput (400)
    ├── InvalidField            INVALID_FIELD_ERR             one field is malformed or out of range
    ├── InvalidQueryParam       INVALID_QUERY_PARAM_ERR       (kyok) search/sort/filter/state/...
    ├── BadBody                 BAD_BODY_ERR                  the request as a whole is malformed
    ├── RootKeyRequired         KEY_ROOT_REQ_ERR              action needs a root key
    ├── NotExtractable          KEY_NOT_EXTRACTABLE_ERR       (kyok) material of a root key asked for
    ├── PayloadRequired         KEY_PAYLOAD_REQ_ERR           imported key rotated without material
    ├── PayloadNotAllowed       KEY_PAYLOAD_NOT_ALLOWED_ERR   (kyok) generated key rotated with material
    ├── RestoreExpired          KEY_RESTORE_EXPIRED           restore after the 30-day window
    ├── KeyExpired              KEY_EXPIRED_ERR               restore of a key past its expiration
    ├── SearchTooBroad          KEY_SEARCH_TOO_BROAD          search over too many keys
    ├── KeyRingReserved         KEY_RING_RESERVED_ERR         (kyok) ``default`` cannot be made/deleted
    ├── IncorrectNonce          INCORRECT_NONCE_ERR           import: the nonce is not the token's
    ├── IncorrectNonceIv        INCORRECT_NONCE_IV_ERR        import: nonce not encrypted under the key
    ├── CollectionTotalMismatch COLLECTION_TOTAL_MISMATCH_ERR collectionTotal != number of resources
    ├── BodyQueryParamMismatch  BODY_QUERY_PARAM_MISMATCH_ERR ?policy= differs from the body's type
    ├── DuplicatePolicy         NUM_COLLECTION_RESOURCE_ERR   a policy type given twice
    └── DualAuthLocked          DUAL_AUTH_DELETE_LOCKED_ERR   (kyok) dual authorisation cannot be undone
    Unauthenticated (401)
    └── AccessPolicyDenied      UNAUTHORIZED_ERR              the instance's allowedIP policy refuses
    Forbidden (403)
    ├── NetworkPolicyDenied     CONFIG_RULE_CONFLICT_ERR      the allowedNetwork policy refuses
    └── ServiceOnly             SERVICE_ONLY_ERR              registrations: service principals only
    NotFound (404)
    ├── KeyNotFound             KEY_NOT_FOUND_ERR
    ├── KeyRingNotFound         KEY_RING_NOT_FOUND_ERR        (kyok)
    ├── AliasNotFound           KEY_ALIAS_NOT_FOUND_ERR       (kyok)
    ├── RegistrationNotFound    REGISTRATION_NOT_FOUND_ERR    (kyok)
    └── InstanceNotFound        INSTANCE_NOT_FOUND_ERR        (kyok)
    Conflict (409)
    ├── KeyStateConflict        KEY_ACTION_INVALID_STATE_ERR  the key's state forbids the action
    ├── RotationNotPermitted    KEY_ROTATION_NOT_PERMITTED    rotated less than 1 h ago
    ├── RequestTooEarly         REQ_TOO_EARLY_ERR             enable/restore < 30 s after last action
    │   └── PurgeTooEarly       REQ_TOO_EARLY_ERR             purge < 4 h after deletion (assumed code)
    ├── AliasExists             KEY_ALIAS_NOT_UNIQUE_ERR      (kyok)
    ├── AliasLimitExceeded      KEY_ALIAS_QUOTA_ERR           (kyok) 5 per key / 1000 per instance
    ├── KeyRingExists           KEY_RING_EXISTS_ERR           (kyok)
    ├── KeyRingLimitExceeded    KEY_RING_QUOTA_ERR            (kyok) 50 per instance
    ├── KeyRingNotEmpty         KEY_RING_NOT_EMPTY_ERR        (kyok)
    ├── InstanceExists          INSTANCE_EXISTS_ERR           (kyok)
    ├── ImportTokenExpired      IMPORT_TOKEN_EXPIRED_ERR      no token, expired, or no retrievals left
    ├── CreateImportForbidden   KEY_CREATE_IMPORT_ACCESS_ERR  the keyCreateImportAccess policy refuses
    ├── NotDualAuth             NOT_DUAL_AUTH_ERR             (un)set for deletion without dual auth
    ├── AuthorizationsNotMet    AUTHORIZATIONS_NOT_MET        dual-auth delete without another's approval
    ├── ProtectedResource       PROTECTED_RESOURCE_ERR        delete of a registered key without force
    ├── DeletionPrevented       PREV_KEY_DEL_ERR              a registration prevents deletion
    ├── RegistrationExists      REGISTRATION_EXISTS_ERR       (kyok)
    └── SyncTooEarly            REQ_TOO_EARLY_ERR             sync within the sync interval
    Gone (410)
    └── KeyDeleted              KEY_DELETED_ERR               the key is destroyed (state 5)
    Unprocessable (422)
    ├── UnwrapFailed            UNPROCESSABLE_CIPHERTEXT_ERR  (from kyok.unit.handles; re-exported)
    ├── RootKeyRequiredForRegistration KEY_ROOT_REQ_REG_ERR  registrations need a root key
    ├── KeyVersionInvalid       KEY_VERSION_INVALID           registration names another key's version
    └── KeyInvalidState         KEY_INVALID_STATE_ERR         registration on a destroyed key

Also raised through the service unchanged: ``kyok.errors.VersionConflict`` (409, after the retry
budget is spent) and ``kyok.unit.errors.UnitSealed`` (503).
"""

from __future__ import annotations

from kyok.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unprocessable,
)
from kyok.unit.handles import UnwrapFailed

__all__ = [
    "AccessPolicyDenied",
    "AliasExists",
    "AliasLimitExceeded",
    "AliasNotFound",
    "AuthorizationsNotMet",
    "BadBody",
    "BodyQueryParamMismatch",
    "CollectionTotalMismatch",
    "CreateImportForbidden",
    "DeletionPrevented",
    "DualAuthLocked",
    "DuplicatePolicy",
    "ImportTokenExpired",
    "IncorrectNonce",
    "IncorrectNonceIv",
    "InstanceExists",
    "InstanceNotFound",
    "InvalidField",
    "InvalidQueryParam",
    "KeyDeleted",
    "KeyExpired",
    "KeyInvalidState",
    "KeyNotFound",
    "KeyRingExists",
    "KeyRingLimitExceeded",
    "KeyRingNotEmpty",
    "KeyRingNotFound",
    "KeyRingReserved",
    "KeyStateConflict",
    "KeyVersionInvalid",
    "NetworkPolicyDenied",
    "NotDualAuth",
    "NotExtractable",
    "PayloadNotAllowed",
    "PayloadRequired",
    "ProtectedResource",
    "PurgeTooEarly",
    "RegistrationExists",
    "RegistrationNotFound",
    "RequestTooEarly",
    "RestoreExpired",
    "RootKeyRequired",
    "RootKeyRequiredForRegistration",
    "RotationNotPermitted",
    "SearchTooBroad",
    "ServiceOnly",
    "SyncTooEarly",
    "UnwrapFailed",
]


# ------------------------------------------------------------------------------------ 400


class InvalidField(InvalidInput):
    """One input field is malformed or out of range; ``target`` names it."""

    code = "INVALID_FIELD_ERR"

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"invalid field {target}: {reason}", target=target)
        self.reason = reason


class InvalidQueryParam(InvalidInput):
    """A list parameter (``search``, ``sort``, ``filter``, ``state``, ...) is malformed."""

    code = "INVALID_QUERY_PARAM_ERR"

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"invalid query parameter {target}: {reason}", target=target)
        self.reason = reason


class BadBody(InvalidInput):
    """The request as a whole is malformed (no single field to blame)."""

    code = "BAD_BODY_ERR"


class RootKeyRequired(InvalidInput):
    """The action is only defined for root keys (``extractable = False``)."""

    code = "KEY_ROOT_REQ_ERR"

    def __init__(self, action: str) -> None:
        super().__init__(f"Requested action can only be completed with a root key: {action}")
        self.action = action


class NotExtractable(InvalidInput):
    """Key material was asked for, but the key is a root key: its material never leaves."""

    code = "KEY_NOT_EXTRACTABLE_ERR"

    def __init__(self) -> None:
        super().__init__("the material of a root key cannot be retrieved")


class PayloadRequired(InvalidInput):
    """An imported root key can only be rotated with new material supplied by the caller."""

    code = "KEY_PAYLOAD_REQ_ERR"

    def __init__(self) -> None:
        super().__init__(
            "This root key was created with user-supplied key material: "
            "new key material is required to rotate it",
            target="material",
        )


class PayloadNotAllowed(InvalidInput):
    """A generated root key is rotated with new generated material; a payload is refused."""

    code = "KEY_PAYLOAD_NOT_ALLOWED_ERR"

    def __init__(self) -> None:
        super().__init__(
            "this root key was generated by the service: it is rotated without key material",
            target="material",
        )


class RestoreExpired(InvalidInput):
    """The key was deleted longer ago than the restore window (30 days)."""

    code = "KEY_RESTORE_EXPIRED"

    def __init__(self) -> None:
        super().__init__(
            "Key restoration has expired: the restore window after deletion has passed"
        )


class KeyExpired(InvalidInput):
    """The key's expiration date has passed, so it cannot be restored."""

    code = "KEY_EXPIRED_ERR"

    def __init__(self) -> None:
        super().__init__("The action could not be performed on the key: the key has expired")


class SearchTooBroad(InvalidInput):
    """A search would have to scan more keys than allowed; narrow it with state or filter."""

    code = "KEY_SEARCH_TOO_BROAD"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the search covers more than {limit} keys: narrow it with state, extractable or filter",
            target="search",
        )
        self.limit = limit


class KeyRingReserved(InvalidInput):
    """The key ring ``default`` exists in every instance and cannot be created or deleted."""

    code = "KEY_RING_RESERVED_ERR"

    def __init__(self) -> None:
        super().__init__("the key ring id 'default' is reserved", target="key_ring_id")


# ------------------------------------------------------------------------------------ 404


class KeyNotFound(NotFound):
    """No key with this id or alias in the instance (purged keys included)."""

    code = "KEY_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("Key could not be retrieved: key does not exist")


class KeyRingNotFound(NotFound):
    code = "KEY_RING_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("key ring does not exist", target="key_ring_id")


class AliasNotFound(NotFound):
    code = "KEY_ALIAS_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("the alias does not exist on this key", target="alias")


class InstanceNotFound(NotFound):
    code = "INSTANCE_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("instance does not exist")


# ------------------------------------------------------------------------------------ 409


class KeyStateConflict(Conflict):
    """The key's current state does not allow the action (DESIGN §4)."""

    code = "KEY_ACTION_INVALID_STATE_ERR"

    def __init__(self, state: int, action: str) -> None:
        super().__init__(
            f"Key is not in a valid state: the action {action} is not allowed in state {state}"
        )
        self.state = state
        self.action = action


class RotationNotPermitted(Conflict):
    code = "KEY_ROTATION_NOT_PERMITTED"

    def __init__(self) -> None:
        super().__init__("This root key has been rotated within the minimum rotation interval")


class RequestTooEarly(Conflict):
    """The key changed too recently for this action; try again later."""

    code = "REQ_TOO_EARLY_ERR"

    def __init__(self, message: str = "The key was updated recently: try again later") -> None:
        super().__init__(message)


class PurgeTooEarly(RequestTooEarly):
    """A destroyed key can be purged only some hours (4 by default) after its deletion."""

    def __init__(self) -> None:
        super().__init__(
            "The key was deleted recently: it can be purged only after the purge delay"
        )


class AliasExists(Conflict):
    code = "KEY_ALIAS_NOT_UNIQUE_ERR"

    def __init__(self) -> None:
        super().__init__("the alias is already used in this instance", target="aliases")


class AliasLimitExceeded(Conflict):
    code = "KEY_ALIAS_QUOTA_ERR"

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"a {scope} can have at most {limit} aliases", target="aliases")
        self.scope = scope
        self.limit = limit


class KeyRingExists(Conflict):
    code = "KEY_RING_EXISTS_ERR"

    def __init__(self) -> None:
        super().__init__("the key ring already exists", target="key_ring_id")


class KeyRingLimitExceeded(Conflict):
    code = "KEY_RING_QUOTA_ERR"

    def __init__(self, limit: int) -> None:
        super().__init__(f"an instance can have at most {limit} key rings", target="key_ring_id")
        self.limit = limit


class KeyRingNotEmpty(Conflict):
    code = "KEY_RING_NOT_EMPTY_ERR"

    def __init__(self, *, destroyed_only: bool) -> None:
        if destroyed_only:
            message = (
                "the key ring holds destroyed keys: delete it with force to move them to 'default'"
            )
        else:
            message = "the key ring holds keys that are not destroyed"
        super().__init__(message, target="key_ring_id")
        self.destroyed_only = destroyed_only


class InstanceExists(Conflict):
    code = "INSTANCE_EXISTS_ERR"

    def __init__(self) -> None:
        super().__init__("an instance with this id already exists", target="instance_id")


# ------------------------------------------------------------------------------------ 410


class KeyDeleted(Gone):
    """The key is destroyed (state 5); only get, restore and purge remain."""

    code = "KEY_DELETED_ERR"

    def __init__(self) -> None:
        super().__init__("Key has already been deleted: Please delete references to this key")


# ------------------------------------------------------------------------------------ issue 4:
# import tokens, policies, dual authorisation, registrations


class IncorrectNonce(InvalidInput):
    """The encrypted nonce opened under the imported key, but it is not the token's nonce."""

    code = "INCORRECT_NONCE_ERR"

    def __init__(self) -> None:
        super().__init__(
            "The encrypted nonce does not match the import token's nonce", target="encrypted_nonce"
        )


class IncorrectNonceIv(InvalidInput):
    """The encrypted nonce (with its iv) was not encrypted with the key material given."""

    code = "INCORRECT_NONCE_IV_ERR"

    def __init__(self) -> None:
        super().__init__(
            "The encrypted nonce and iv were not made with the key material given",
            target="encrypted_nonce",
        )


class CollectionTotalMismatch(InvalidInput):
    code = "COLLECTION_TOTAL_MISMATCH_ERR"

    def __init__(self) -> None:
        super().__init__("metadata.collectionTotal does not match the number of resources")


class BodyQueryParamMismatch(InvalidInput):
    code = "BODY_QUERY_PARAM_MISMATCH_ERR"

    def __init__(self, query: str, body: str) -> None:
        super().__init__(
            f"the policy query parameter ({query}) does not match the policy in the body ({body})",
            target="policy",
        )


class DuplicatePolicy(InvalidInput):
    code = "NUM_COLLECTION_RESOURCE_ERR"

    def __init__(self, policy_type: str) -> None:
        super().__init__(f"the policy {policy_type} is given more than once", target="policy")


class DualAuthLocked(InvalidInput):
    """Dual authorisation for deletion cannot be turned off once a key has it."""

    code = "DUAL_AUTH_DELETE_LOCKED_ERR"

    def __init__(self) -> None:
        super().__init__(
            "dual authorization for deletion cannot be disabled once it is enabled on a key",
            target="dual_auth_delete",
        )


class AccessPolicyDenied(Unauthenticated):
    """The instance's ``allowedIP`` policy does not admit the caller's address."""

    code = "UNAUTHORIZED_ERR"

    def __init__(self) -> None:
        super().__init__(
            "Unauthorized: The user does not have access to the specified resource "
            "(the instance's allowed IP policy)"
        )


class NetworkPolicyDenied(Forbidden):
    """The instance's ``allowedNetwork`` policy admits private-network callers only."""

    code = "CONFIG_RULE_CONFLICT_ERR"

    def __init__(self) -> None:
        super().__init__(
            "The instance accepts requests from its private network only (allowedNetwork policy)"
        )


class ServiceOnly(Forbidden):
    """Registrations are written by service IDs, not by users."""

    code = "SERVICE_ONLY_ERR"

    def __init__(self) -> None:
        super().__init__("Only a service ID can create, change or delete registrations")


class RegistrationNotFound(NotFound):
    code = "REGISTRATION_NOT_FOUND_ERR"

    def __init__(self) -> None:
        super().__init__("registration does not exist")


class ImportTokenExpired(Conflict):
    """There is no usable import token: none was made, it expired, or its retrievals ran out."""

    code = "IMPORT_TOKEN_EXPIRED_ERR"

    def __init__(self, reason: str = "the import token has expired") -> None:
        super().__init__(f"Import Token could not be retrieved: {reason}")
        self.reason = reason


class CreateImportForbidden(Conflict):
    """The instance's ``keyCreateImportAccess`` policy refuses this way of making a key."""

    code = "KEY_CREATE_IMPORT_ACCESS_ERR"

    def __init__(self, what: str) -> None:
        super().__init__(f"The instance's key create and import access policy forbids {what}")
        self.what = what


class NotDualAuth(Conflict):
    code = "NOT_DUAL_AUTH_ERR"

    def __init__(self) -> None:
        super().__init__("The key does not have a dual authorization deletion policy")


class AuthorizationsNotMet(Conflict):
    """Deleting a dual-authorisation key needs a valid approval by another principal."""

    code = "AUTHORIZATIONS_NOT_MET"

    def __init__(self) -> None:
        super().__init__(
            "1 prior authorization(s) are required for deletion: another user must set the "
            "key for deletion first (setKeyForDeletion), within the last 7 days"
        )


class ProtectedResource(Conflict):
    """The key protects registered resources; deleting it needs ``force``."""

    code = "PROTECTED_RESOURCE_ERR"

    def __init__(self, count: int) -> None:
        super().__init__(
            f"The key protects {count} registered resource(s): delete with force=true to "
            "delete it anyway"
        )
        self.count = count


class DeletionPrevented(Conflict):
    """A registration with ``preventKeyDeletion`` holds the key, even against ``force``."""

    code = "PREV_KEY_DEL_ERR"

    def __init__(self) -> None:
        super().__init__(
            "A registered resource prevents the deletion of this key (preventKeyDeletion)"
        )


class RegistrationExists(Conflict):
    code = "REGISTRATION_EXISTS_ERR"

    def __init__(self) -> None:
        super().__init__("the key already has a registration for this resource")


class SyncTooEarly(Conflict):
    code = "REQ_TOO_EARLY_ERR"

    def __init__(self) -> None:
        super().__init__(
            "The key's resources were synced, or the key changed, too recently: try again later"
        )


class RootKeyRequiredForRegistration(Unprocessable):
    code = "KEY_ROOT_REQ_REG_ERR"

    def __init__(self) -> None:
        super().__init__("Only root keys can have registrations")


class KeyVersionInvalid(Unprocessable):
    code = "KEY_VERSION_INVALID"

    def __init__(self) -> None:
        super().__init__("the key version is not a version of this key", target="key_version_id")


class KeyInvalidState(Unprocessable):
    code = "KEY_INVALID_STATE_ERR"

    def __init__(self, state: int) -> None:
        super().__init__(
            f"the key is in state {state}: registrations need a key that is not destroyed"
        )
        self.state = state
