"""The deletion guards every key service runs (Key Protect reference §2.8, DESIGN §4).

* :class:`RegistrationGuard`: a key that protects registered resources is deleted only with
  ``force``, and never while one of them has ``preventKeyDeletion``.
* :class:`DualAuthGuard`: a key with a ``dualAuthDelete`` policy is deleted only after another
  principal set it for deletion (``setKeyForDeletion``) within the dual-authorisation window;
  the approval is used up by the deletion. Principals are compared, not API keys, so one person
  holding two API keys is still one person.
"""

from __future__ import annotations

from datetime import datetime

from kyok.auth.principals import Principal
from kyok.kms.errors import AuthorizationsNotMet, DeletionPrevented, ProtectedResource
from kyok.kms.policies import DUAL_AUTH_DELETE
from kyok.store.ports import UnitOfWork
from kyok.store.records import KeyRecord, RegistrationQuery

__all__ = ["DualAuthGuard", "RegistrationGuard", "dual_auth_enabled"]


def dual_auth_enabled(uow: UnitOfWork, key: KeyRecord) -> bool:
    """True if ``key`` has an enabled ``dualAuthDelete`` policy."""
    policy = uow.key_policies.get(key.instance_id, key.id, DUAL_AUTH_DELETE)
    return policy is not None and policy.enabled


class RegistrationGuard:
    """Refuses deleting a key with registrations unless forced; never with a retention hold."""

    def check_delete(
        self, uow: UnitOfWork, key: KeyRecord, actor: Principal, *, force: bool, now: datetime
    ) -> None:
        """Raise unless the key's registrations allow the deletion.

        Raises:
            DeletionPrevented: a registration has ``preventKeyDeletion`` (even with force).
            ProtectedResource: the key has registrations and ``force`` is false.
        """
        query = RegistrationQuery(key.instance_id, key_id=key.id)
        held = uow.registrations.count(
            RegistrationQuery(key.instance_id, key_id=key.id, prevent_key_deletion=True)
        )
        if held:
            raise DeletionPrevented()
        count = uow.registrations.count(query)
        if count and not force:
            raise ProtectedResource(count)


class DualAuthGuard:
    """Refuses deleting a dual-authorisation key without a valid approval by someone else."""

    def check_delete(
        self, uow: UnitOfWork, key: KeyRecord, actor: Principal, *, force: bool, now: datetime
    ) -> None:
        """Raise unless another principal approved the deletion and the approval is valid;
        then use the approval up (in the same unit of work).

        Raises:
            AuthorizationsNotMet: no approval, an expired one, or the deleter's own.
        """
        if not dual_auth_enabled(uow, key):
            return
        approval = uow.deletion_authorizations.get(key.instance_id, key.id)
        if approval is None or approval.expires_at <= now or approval.principal_id == actor.id:
            raise AuthorizationsNotMet()
        uow.deletion_authorizations.delete(key.instance_id, key.id)
