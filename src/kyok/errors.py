"""The kyok error tree.

Every error kyok raises on purpose is a :class:`KyokError`. Each carries a stable ``code``
(a Key Protect reason code where one exists, so the HTTP adapter can render it unchanged),
a ``message`` that never contains key material, a plaintext, a token or a passphrase, and,
where one field is to blame, ``target`` (its name). Adapters map by class, walking the MRO,
so one handler on a category covers every error below it::

    KyokError
    ├── InvalidInput      the request is malformed or out of range            (HTTP 400)
    ├── Unauthenticated   no or bad credentials                               (HTTP 401)
    ├── Forbidden         authenticated, but not allowed                      (HTTP 403)
    ├── NotFound          no such object (or not visible to the caller)       (HTTP 404)
    ├── Conflict          valid, but the current state refuses it             (HTTP 409)
    ├── Gone              the object existed and was destroyed                (HTTP 410)
    ├── Unprocessable     well-formed, but cannot be processed (bad ciphertext)(HTTP 422)
    ├── Unavailable       cannot serve now: sealed unit, store down           (HTTP 503)
    └── InternalError     a defect or a broken invariant                      (HTTP 500)

Layers add their own leaves (``kms.errors``, ``unit.errors``); the leaves choose the branch.
"""

from __future__ import annotations


class KyokError(Exception):
    """Base of every deliberate kyok error."""

    code: str = "KYOK_ERR"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.target = target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidInput(KyokError):
    code = "BAD_BODY_ERR"
    status = 400


class Unauthenticated(KyokError):
    code = "UNAUTHORIZED_ERR"
    status = 401


class Forbidden(KyokError):
    code = "UNAUTHORIZED_ERR"
    status = 403


class NotFound(KyokError):
    code = "NOT_FOUND_ERR"
    status = 404


class Conflict(KyokError):
    code = "CONFLICT_ERR"
    status = 409


class Gone(KyokError):
    code = "GONE_ERR"
    status = 410


class Unprocessable(KyokError):
    code = "UNPROCESSABLE_ERR"
    status = 422


class Unavailable(KyokError):
    code = "SERVICE_UNAVAILABLE_ERR"
    status = 503


class InternalError(KyokError):
    code = "INTERNAL_SERVER_ERR"
    status = 500


class VersionConflict(Conflict):
    """An optimistic-concurrency check failed: someone else changed the object first."""

    code = "CONCURRENT_UPDATE_ERR"


class AlreadyExists(Conflict):
    """A unique name or id is already taken."""

    code = "DUPLICATE_ERR"
