"""The key-management use cases: one method per thing a caller can ask for.

Every change follows one path: open a unit of work, load the key, apply the lifecycle check
(:mod:`kyok.kms.lifecycle`) and the timers, write with optimistic concurrency
(``keys.update(record, expected_row_version)``), hand one :class:`~kyok.kms.events.KmsEvent` to
the audit sink in the same unit of work, commit, then tell the crypto unit to drop cached
handles of the key. A ``VersionConflict`` (raised by the update or, in some stores, by the
commit) restarts the whole attempt; after ``max_attempts`` it is surfaced (409).

The data plane (wrap, unwrap, rewrap) reads the key and the blobs it needs in one short
read-only unit of work and then works with cached key handles from the unit; it writes nothing.

``id_or_alias`` is a key UUID or one of its aliases everywhere. Keys are scoped by instance: a
key of another instance is "not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, cast, overload

from kyok.auth.principals import SYSTEM, Principal, PrincipalKind
from kyok.clock import Clock
from kyok.errors import AlreadyExists, InternalError, KyokError, VersionConflict
from kyok.kms import policies as pol
from kyok.kms import validation as v
from kyok.kms.cache import KeyCache
from kyok.kms.errors import (
    AliasExists,
    AliasLimitExceeded,
    AliasNotFound,
    BadBody,
    BodyQueryParamMismatch,
    DualAuthLocked,
    DuplicatePolicy,
    InstanceExists,
    InstanceNotFound,
    InvalidField,
    KeyDeleted,
    KeyExpired,
    KeyInvalidState,
    KeyNotFound,
    KeyRingExists,
    KeyRingLimitExceeded,
    KeyRingNotEmpty,
    KeyRingNotFound,
    KeyRingReserved,
    KeyStateConflict,
    KeyVersionInvalid,
    NotDualAuth,
    PayloadNotAllowed,
    PayloadRequired,
    PurgeTooEarly,
    RegistrationExists,
    RegistrationNotFound,
    RequestTooEarly,
    RestoreExpired,
    RootKeyRequired,
    RootKeyRequiredForRegistration,
    RotationNotPermitted,
    SearchTooBroad,
    ServiceOnly,
    SyncTooEarly,
    UnwrapFailed,
)
from kyok.kms.events import EventAction, KmsEvent, NullAuditSink
from kyok.kms.guards import DualAuthGuard, RegistrationGuard, dual_auth_enabled
from kyok.kms.imports import WrappedImport, import_with_token
from kyok.kms.keys import (
    EXPIRABLE_STATES,
    NO_POLICIES,
    KeyPolicyState,
    KeyState,
    KeyView,
    effective_state,
    stored_state_of,
    view_of,
)
from kyok.kms.lifecycle import Action, check, check_kind
from kyok.kms.ports import AuditSink, DeletionGuard, KeyUnit, UnitDirectory, UowFactory
from kyok.kms.query import check_key_query
from kyok.kms.registrations import (
    DESCRIPTION_MAX,
    METADATA_MAX,
    UNSET,
    RegistrationView,
    Unset,
    validate_crn,
    validate_crn_pattern,
    validate_registration_text,
)
from kyok.kms.results import RewrapResult, UnwrapResult, WrapResult
from kyok.kms.shared_commit import BatchUnitOfWork, GroupCommit, Slot, add_all
from kyok.kms.timers import Timers
from kyok.store.ports import UnitOfWork
from kyok.store.records import (
    AliasRecord,
    BlobRecord,
    DeletionAuthorizationRecord,
    InstancePolicyRecord,
    InstanceRecord,
    KeyFilter,
    KeyPolicyRecord,
    KeyQuery,
    KeyRecord,
    KeyRingRecord,
    KeyVersionRecord,
    RegistrationQuery,
    RegistrationRecord,
)
from kyok.unit import wrapping
from kyok.unit.blob import PURPOSE_ROOT_KEY, PURPOSE_STANDARD_KEY, BlobRef, SealedBlob
from kyok.unit.errors import UnitSealed
from kyok.unit.handles import STANDARD_KEY_EXPORT, HandleRevoked, KeyHandle

__all__ = ["KeyService"]

#: States that keep a key ring from being deleted.
_LIVE_STATES = frozenset(int(s) for s in KeyState if s is not KeyState.DESTROYED)
_DESTROYED = frozenset({int(KeyState.DESTROYED)})

#: How long a batch of key creations from coroutines waits for as many creations as the
#: previous batch held (:class:`~kyok.kms.shared_commit.GroupCommit`), in seconds: about the
#: time the event loop takes to answer 16 creations and read the next 16.
CREATE_COMMIT_DELAY = 0.005

#: Applies a checked action to a loaded key: ``(uow, key, next state, now) -> record to write``.
_Apply = Callable[[UnitOfWork, KeyRecord, KeyState, datetime], KeyRecord]


def _blob_record(blob: SealedBlob) -> BlobRecord:
    ref = blob.ref
    return BlobRecord(ref.instance_id, ref.owner_id, ref.id, ref.purpose, blob.epoch, blob.data)


def _sealed(record: BlobRecord) -> SealedBlob:
    ref = BlobRef(record.instance_id, record.owner_id, record.id, record.purpose)
    return SealedBlob(ref, record.mk_epoch, record.data)


def _key_id(id_or_alias: str) -> str | None:
    """The canonical key id if ``id_or_alias`` is a UUID (aliases never are), else None."""
    try:
        return str(uuid.UUID(id_or_alias))
    except (ValueError, TypeError, AttributeError):
        return None


def _version_named_by(ciphertext: bytes) -> str | None:
    """The key version a wrapped DEK names, or None if it cannot be one of ours."""
    if len(ciphertext) > v.CIPHERTEXT_MAX:
        return None
    try:
        return wrapping.version_of(ciphertext)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _NewKey:
    """A key creation whose input is checked, waiting for its transaction."""

    actor: Principal
    instance_id: str
    key_id: str
    version_id: str
    name: str
    description: str | None
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    expires_at: datetime | None
    material: bytes | None
    key_ring_id: str
    extractable: bool
    imported: bool
    wrapped: WrappedImport | None
    policies: pol.KeyPolicySpec | None
    now: datetime


@dataclass(frozen=True, slots=True)
class _MadeKey:
    """A new key's rows, its audit event and what its caller gets back."""

    record: KeyRecord
    version: KeyVersionRecord
    blob: BlobRecord
    aliases: tuple[AliasRecord, ...]
    policies: tuple[KeyPolicyRecord, ...]
    event: KmsEvent
    view: KeyView


class _Claims:
    """What the checks of a batch's keys learnt so far: the instances and key rings found and
    the instances' rules (read once per batch: the transaction sees them unchanged), and the
    aliases the batch's keys took, per instance (the store does not hold them yet when the next
    key of the batch is checked)."""

    def __init__(self) -> None:
        self._by_instance: dict[str, set[str]] = {}
        self.instances: set[str] = set()
        self.rings: set[tuple[str, str]] = set()
        self.rules: dict[str, pol.InstanceRules] = {}

    def claim(self, plan: _NewKey) -> None:
        if plan.aliases:
            self._by_instance.setdefault(plan.instance_id, set()).update(plan.aliases)

    def taken(self, instance_id: str, alias: str) -> bool:
        return alias in self._by_instance.get(instance_id, ())

    def count(self, instance_id: str) -> int:
        return len(self._by_instance.get(instance_id, ()))


class KeyService:
    """Instances, keys, versions, aliases and key rings, with the Key Protect rules.

    Args:
        uow_factory: makes a fresh unit of work (one transaction) per call; plain reads ask
            for ``read_only=True`` ones.
        units: finds the crypto unit of an instance.
        clock: the time source of every rule.
        timers: the service timers (Key Protect defaults when omitted).
        audit: receives one event per change inside its transaction (default: dropped).
        deletion_guards: rules that may refuse a delete; default: registrations and dual
            authorisation (:mod:`kyok.kms.guards`), which every real service needs.
        max_attempts: how often a change is tried when concurrent updates get in the way (>= 1).
        search_scope_limit: a search over more keys than this is refused (``SearchTooBroad``);
            0 disables the check.
    """

    def __init__(
        self,
        uow_factory: UowFactory,
        units: UnitDirectory,
        clock: Clock,
        timers: Timers | None = None,
        *,
        audit: AuditSink | None = None,
        deletion_guards: Sequence[DeletionGuard] | None = None,
        max_attempts: int = 3,
        search_scope_limit: int = 5000,
        cache: KeyCache | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._uow = uow_factory
        self._units = units
        self._clock = clock
        self._timers = timers or Timers()
        self._audit: AuditSink = audit or NullAuditSink()
        self._guards: tuple[DeletionGuard, ...] = (
            (RegistrationGuard(), DualAuthGuard())
            if deletion_guards is None
            else tuple(deletion_guards)
        )
        self._rules = _RulesCache()
        self._max_attempts = max_attempts
        self._search_scope_limit = search_scope_limit
        self._cache = cache if cache is not None else KeyCache()
        # Concurrent key creations share a transaction (and its fsync): see _create_batch.
        # Coroutines' creations wait a little for a full batch (bench/keys_create.sh).
        self._creations: GroupCommit[_NewKey, KeyView] = GroupCommit(
            self._create_batch, commit_delay=CREATE_COMMIT_DELAY
        )
        # Instances a creation found: instances are never deleted, nor is their default key
        # ring, so a creation in one of these skips both lookups (see _check_new_key).
        self._known_instances: set[str] = set()

    def invalidate_cached(self, instance_id: str, key_id: str | None = None) -> None:
        """Drop what the data-plane cache holds for a key (or a whole instance).

        Changes made through this service do this themselves; call it after changing keys by
        other means (maintenance, tests) to see the change before the cache's ttl runs out.
        """
        if key_id is None:
            self._cache.invalidate_instance(instance_id)
        else:
            self._cache.invalidate(instance_id, key_id)

    @property
    def timers(self) -> Timers:
        """The timers the rules use.

        Returns:
            The service's :class:`Timers`.
        """
        return self._timers

    # ------------------------------------------------------------------------------ instances

    def create_instance(
        self, actor: Principal, name: str, *, seal: str = "dev", instance_id: str | None = None
    ) -> InstanceRecord:
        """Create an instance, its crypto unit and its ``default`` key ring.

        Args:
            actor: who creates it.
            name: display name (1-100 characters).
            seal: ``dev`` (unit ready at once) or ``shares`` (waits for a key ceremony).
            instance_id: a chosen id (dev mode's fixed id); a new UUID when omitted.

        Returns:
            The stored instance.

        Raises:
            InvalidField: bad name, seal or id.
            InstanceExists: the id is taken.
        """
        name = v.validate_instance_name(name)
        seal = v.validate_seal(seal)
        iid = str(uuid.uuid4()) if instance_id is None else v.validate_instance_id(instance_id)
        with self._uow(read_only=True) as uow:
            if uow.instances.get(iid) is not None:
                raise InstanceExists()
        try:
            unit = self._units.create_for_instance(iid, seal)
        except AlreadyExists:
            raise InstanceExists() from None
        now = self._clock.now()
        record = InstanceRecord(iid, name, unit.unit_id, now, actor.id)
        try:
            with self._uow() as uow:
                uow.instances.add(record)
                uow.key_rings.add(KeyRingRecord(iid, v.DEFAULT_KEY_RING, now, actor.id))
                event = KmsEvent(EventAction.INSTANCE_CREATE, iid, iid, actor.id, now)
                self._audit.record(uow, event)
                uow.commit()
        except AlreadyExists:
            raise InstanceExists() from None
        return record

    def get_instance(self, instance_id: str) -> InstanceRecord:
        """The instance ``instance_id``.

        Args:
            instance_id: the instance.

        Returns:
            The stored instance.

        Raises:
            InstanceNotFound: there is none.
        """
        with self._uow(read_only=True) as uow:
            return self._instance(uow, instance_id)

    def list_instances(self) -> list[InstanceRecord]:
        """Every instance.

        Returns:
            The instances, oldest first.
        """
        with self._uow(read_only=True) as uow:
            return uow.instances.list()

    # ------------------------------------------------------------------------ keys: create/read

    def create_key(
        self,
        actor: Principal,
        instance_id: str,
        name: str,
        *,
        extractable: bool = False,
        description: str | None = None,
        tags: Sequence[str] = (),
        aliases: Sequence[str] = (),
        expires_at: datetime | None = None,
        material: bytes | None = None,
        key_ring_id: str | None = None,
        wrapped: WrappedImport | None = None,
        policies: pol.KeyPolicySpec | None = None,
    ) -> KeyView:
        """Create a root key (``extractable=False``) or a standard key.

        Without ``material`` the unit generates 32 bytes; with it the key is *imported*; with
        ``wrapped`` it is imported through the instance's import token (root keys only: the
        crypto unit opens the material, so it never exists outside it). The key, its version 1,
        the sealed blob, the aliases, its policies and its audit event are written in one unit
        of work; keys created concurrently share it and its commit (group commit, see
        :meth:`_create_batch`), and the call returns once that commit is durable.

        Policies: the instance's ``dualAuthDelete`` and ``rotation`` policies apply to new keys
        (rotation only to generated root keys); ``policies`` overrides them (the
        ``keys_with_policy_overrides`` endpoint). The ``keyCreateImportAccess`` policy may
        refuse the key.

        Args:
            actor: who creates it (``created_by``).
            instance_id: the instance.
            name: 2-90 characters.
            extractable: True for a standard key (material retrievable), False for a root key.
            description: at most 240 characters.
            tags: at most 30 tags.
            aliases: at most 5 aliases, each unused in the instance.
            expires_at: when the key becomes Deactivated (must be in the future).
            material: key material to import (root: 16/24/32 bytes; standard: 1-7,500 bytes).
            key_ring_id: the key ring (default ``default``).
            wrapped: key material encrypted under the instance's import token.
            policies: per-key policies that override the instance's.

        Returns:
            The new key (state 1).

        Raises:
            InvalidField: any input breaks a rule of :mod:`kyok.kms.validation`.
            InstanceNotFound: no such instance.
            KeyRingNotFound: no such key ring.
            AliasExists: an alias is taken.
            AliasLimitExceeded: the instance would have more than 1,000 aliases.
            UnitSealed: the instance's crypto unit is sealed.
            BadBody: a standard key with an import token.
            ImportTokenExpired: ``wrapped`` but no valid token.
            IncorrectNonce, IncorrectNonceIv: the token import's nonce check failed.
            CreateImportForbidden: the instance's policy forbids this kind of key.
        """
        plan = self._plan_new_key(
            actor,
            instance_id,
            name,
            extractable=extractable,
            description=description,
            tags=tags,
            aliases=aliases,
            expires_at=expires_at,
            material=material,
            key_ring_id=key_ring_id,
            wrapped=wrapped,
            policies=policies,
        )
        if plan.wrapped is not None:
            # The import token is read and used up in the key's transaction: on its own.
            return self._create_alone(plan)
        return self._creations.submit(plan)

    async def create_key_async(
        self,
        actor: Principal,
        instance_id: str,
        name: str,
        *,
        extractable: bool = False,
        description: str | None = None,
        tags: Sequence[str] = (),
        aliases: Sequence[str] = (),
        expires_at: datetime | None = None,
        material: bytes | None = None,
        key_ring_id: str | None = None,
        wrapped: WrappedImport | None = None,
        policies: pol.KeyPolicySpec | None = None,
    ) -> KeyView:
        """:meth:`create_key` for a coroutine: the same rules, errors and transaction, and the
        event loop is not blocked meanwhile (the store work runs in a worker thread, together
        with the keys other callers create at the same time)."""
        plan = self._plan_new_key(
            actor,
            instance_id,
            name,
            extractable=extractable,
            description=description,
            tags=tags,
            aliases=aliases,
            expires_at=expires_at,
            material=material,
            key_ring_id=key_ring_id,
            wrapped=wrapped,
            policies=policies,
        )
        if plan.wrapped is not None:
            return await asyncio.to_thread(self._create_alone, plan)
        return await self._creations.submit_async(plan)

    def _plan_new_key(
        self,
        actor: Principal,
        instance_id: str,
        name: str,
        *,
        extractable: bool,
        description: str | None,
        tags: Sequence[str],
        aliases: Sequence[str],
        expires_at: datetime | None,
        material: bytes | None,
        key_ring_id: str | None,
        wrapped: WrappedImport | None,
        policies: pol.KeyPolicySpec | None,
    ) -> _NewKey:
        """Check the input of a new key (everything that needs no store) and give it ids."""
        now = self._clock.now()
        if not isinstance(extractable, bool):
            raise InvalidField("extractable", "must be true or false")
        if wrapped is not None:
            if extractable:
                raise BadBody("Standard keys cannot be imported with an import token")
            if material is not None:
                raise BadBody("give the key material either in plain or through the import token")
        imported = material is not None or wrapped is not None
        if policies is not None and policies.rotation_enabled:
            if extractable:
                raise InvalidField("rotation", "standard keys cannot be rotated")
            if imported:
                raise InvalidField("rotation", "imported keys cannot be rotated automatically")
        return _NewKey(
            actor=actor,
            instance_id=instance_id,
            key_id=str(uuid.uuid4()),
            version_id=str(uuid.uuid4()),
            name=v.validate_name(name),
            description=v.validate_description(description),
            tags=v.validate_tags(tags),
            aliases=v.validate_aliases(aliases),
            expires_at=v.validate_expiration(expires_at, now),
            material=(
                None if material is None else v.validate_material(material, extractable=extractable)
            ),
            key_ring_id=(
                v.DEFAULT_KEY_RING if key_ring_id is None else v.validate_key_ring_id(key_ring_id)
            ),
            extractable=extractable,
            imported=imported,
            wrapped=wrapped,
            policies=policies,
            now=now,
        )

    def _create_alone(self, plan: _NewKey) -> KeyView:
        """Create one key in a transaction of its own."""
        try:
            with self._uow() as uow:
                rules = self._check_new_key(uow, plan, _Claims())
                new = self._make_new_key(uow, plan, rules)
                self._write_new_keys(uow, [new])
                self._audit.record(uow, new.event)
                uow.commit()
        except AlreadyExists:
            # The key and version ids are fresh UUIDs: only an alias can collide.
            raise AliasExists() from None
        return new.view

    def _create_batch(self, slots: list[Slot[_NewKey, KeyView]]) -> None:
        """Create the keys of concurrent callers in one transaction (:class:`GroupCommit`).

        Each key is checked in the batch's transaction as it would be in its own, seeing the
        keys and aliases of the batch before it; a key that is refused (a 4xx error, or a unit
        that cannot make its material) is left out and its caller gets the error. Its rows and
        its audit event are then written, and the batch commits once. Anything else that goes
        wrong (the database, the ledger, a defect) abandons the batch: every key of it is then
        created in a transaction of its own, so one key's trouble never fails another.
        """
        made: list[tuple[Slot[_NewKey, KeyView], _MadeKey]] = []
        committed = False
        try:
            with self._uow() as uow:
                batch = BatchUnitOfWork(uow)
                claims = _Claims()
                for slot in slots:
                    try:
                        rules = self._check_new_key(uow, slot.item, claims)
                    except KyokError as exc:
                        if exc.status >= 500:
                            raise  # the database: abandon the batch
                        slot.fail(exc)
                        continue
                    try:
                        new = self._make_new_key(uow, slot.item, rules)
                    except KyokError as exc:  # the unit's refusal; the transaction is intact
                        slot.fail(exc)
                        continue
                    claims.claim(slot.item)
                    made.append((slot, new))
                self._write_new_keys(uow, [new for _, new in made])
                sink_uow = cast(UnitOfWork, batch)
                for slot, new in made:
                    slot.context.run(self._audit.record, sink_uow, new.event)
                batch.flush()
                uow.commit()
                committed = True
                self._known_instances.update(claims.instances)
        except Exception:
            if committed:  # only closing the unit of work failed: the keys are stored
                for slot, new in made:
                    slot.succeed(new.view)
                return
            for slot in slots:
                try:
                    slot.succeed(slot.context.run(self._create_alone, slot.item))
                except Exception as exc:
                    slot.fail(exc)
            return
        for slot, new in made:
            slot.succeed(new.view)

    def _check_new_key(self, uow: UnitOfWork, plan: _NewKey, claims: _Claims) -> pol.InstanceRules:
        """The checks of a new key that read the store; returns the instance's rules."""
        iid = plan.instance_id
        if iid not in claims.instances:
            if iid not in self._known_instances:
                self._instance(uow, iid)
            claims.instances.add(iid)
        if (iid, plan.key_ring_id) not in claims.rings:
            known = plan.key_ring_id == v.DEFAULT_KEY_RING and iid in self._known_instances
            if not known and uow.key_rings.get(iid, plan.key_ring_id) is None:
                raise KeyRingNotFound()
            claims.rings.add((iid, plan.key_ring_id))
        if plan.aliases:
            if any(
                claims.taken(iid, a) or uow.aliases.get(iid, a) is not None for a in plan.aliases
            ):
                raise AliasExists()
            in_use = uow.aliases.count_for_instance(iid) + claims.count(iid)
            if in_use + len(plan.aliases) > v.ALIASES_PER_INSTANCE:
                raise AliasLimitExceeded("instance", v.ALIASES_PER_INSTANCE)
        rules = claims.rules.get(iid)
        if rules is None:
            rules = claims.rules[iid] = self._rules_in(uow, iid)
        rules.check_create(
            extractable=plan.extractable,
            imported=plan.imported,
            with_token=plan.wrapped is not None,
        )
        return rules

    def _make_new_key(self, uow: UnitOfWork, plan: _NewKey, rules: pol.InstanceRules) -> _MadeKey:
        """The sealed material, rows, event and view of a checked new key (writes only an
        import token's use)."""
        iid, key_id, version_id, now = plan.instance_id, plan.key_id, plan.version_id, plan.now
        unit = self._units.for_instance(iid)
        purpose = PURPOSE_STANDARD_KEY if plan.extractable else PURPOSE_ROOT_KEY
        ref = BlobRef(iid, key_id, version_id, purpose)
        if plan.wrapped is not None:
            sealed, size = import_with_token(uow, unit, ref, plan.wrapped, now)
        elif plan.material is None:
            sealed = unit.generate_blob(ref, v.GENERATED_KEY_SIZE)
            size = v.GENERATED_KEY_SIZE
        else:
            sealed = unit.seal_material(ref, plan.material)
            size = len(plan.material)
        record = KeyRecord(
            instance_id=iid,
            id=key_id,
            name=plan.name,
            description=plan.description,
            extractable=plan.extractable,
            imported=plan.imported,
            state=int(KeyState.ACTIVE),
            key_ring_id=plan.key_ring_id,
            tags=plan.tags,
            created_at=now,
            created_by=plan.actor.id,
            updated_at=now,
            last_action_at=now,
            current_version_id=version_id,
            version_count=1,
            bit_length=size * 8,
            expires_at=plan.expires_at,
        )
        key_policies = self._initial_policies(record, rules, plan.policies, plan.actor, now)
        event = KmsEvent(
            EventAction.KEY_CREATE,
            iid,
            key_id,
            plan.actor.id,
            now,
            to_state=record.state,
            key_version_id=version_id,
            detail=(
                ("imported", str(record.imported).lower()),
                ("import_token", str(plan.wrapped is not None).lower()),
                ("key_ring_id", plan.key_ring_id),
                ("policies", ",".join(p.policy_type for p in key_policies if p.enabled)),
            ),
        )
        # A new key has no deletion approval yet.
        view = view_of(
            record, plan.aliases, now, self._timers, _policy_state_of(key_policies, None)
        )
        return _MadeKey(
            record=record,
            version=KeyVersionRecord(iid, key_id, version_id, 1, now),
            blob=_blob_record(sealed),
            aliases=tuple(AliasRecord(iid, a, key_id, now, plan.actor.id) for a in plan.aliases),
            policies=tuple(key_policies),
            event=event,
            view=view,
        )

    @staticmethod
    def _write_new_keys(uow: UnitOfWork, new: Sequence[_MadeKey]) -> None:
        """Insert the rows of new keys (one statement per table where the store can)."""
        add_all(uow.keys, [n.record for n in new])
        add_all(uow.versions, [n.version for n in new])
        add_all(uow.blobs, [n.blob for n in new])
        add_all(uow.aliases, [a for n in new for a in n.aliases])
        for n in new:
            for policy in n.policies:
                uow.key_policies.put(policy)

    @staticmethod
    def _initial_policies(
        key: KeyRecord,
        rules: pol.InstanceRules,
        spec: pol.KeyPolicySpec | None,
        actor: Principal,
        now: datetime,
    ) -> list[KeyPolicyRecord]:
        """The policy rows of a new key: the instance's defaults, overridden by ``spec``."""
        found: list[KeyPolicyRecord] = []
        dual = rules.dual_auth_delete
        if spec is not None and spec.dual_auth_delete is not None:
            dual = spec.dual_auth_delete
        if dual:
            found.append(
                KeyPolicyRecord(
                    key.instance_id,
                    key.id,
                    pol.DUAL_AUTH_DELETE,
                    True,
                    now,
                    actor.id,
                    now,
                    actor.id,
                )
            )
        enabled: bool | None = None
        months: int | None = None
        if spec is not None and spec.rotation_enabled is not None:
            enabled, months = spec.rotation_enabled, spec.interval_months
        elif rules.rotation_months is not None and not key.extractable and not key.imported:
            enabled, months = True, rules.rotation_months
        if enabled is not None:
            found.append(
                KeyPolicyRecord(
                    key.instance_id,
                    key.id,
                    pol.ROTATION,
                    enabled,
                    now,
                    actor.id,
                    now,
                    actor.id,
                    interval_months=months,
                    next_rotation_at=pol.next_rotation(now, months) if enabled and months else None,
                )
            )
        return found

    def get_key(self, instance_id: str, id_or_alias: str) -> KeyView:
        """A key's metadata (any state, destroyed keys included).

        Args:
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.

        Returns:
            The key.

        Raises:
            KeyNotFound: no such key in the instance (or it was purged).
        """
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            key = self._resolve(uow, instance_id, id_or_alias)
            check(effective_state(key, now), Action.READ)
            return self._view(uow, key, now)

    def get_key_material(self, instance_id: str, id_or_alias: str) -> bytes:
        """The material of a standard key (its newest version). Root key material never leaves.

        Args:
            instance_id: the instance.
            id_or_alias: the standard key's UUID or alias.

        Returns:
            The raw key bytes.

        Raises:
            KeyNotFound: no such key.
            NotExtractable: the key is a root key.
            KeyDeleted: the key is destroyed.
            KeyStateConflict: the key is not yet active (state 0).
            UnitSealed: the crypto unit is sealed.
        """
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            key = self._resolve(uow, instance_id, id_or_alias)
            check_kind(key.extractable, Action.EXPORT)
            check(effective_state(key, now), Action.EXPORT)
            blob = uow.blobs.get(instance_id, key.current_version_id)
        if blob is None or blob.owner_id != key.id or blob.purpose != PURPOSE_STANDARD_KEY:
            raise InternalError("the material of the key's newest version is missing")
        unit = self._units.for_instance(instance_id)
        return unit.export_material(_sealed(blob), STANDARD_KEY_EXPORT)

    @overload
    def list_keys(
        self, query: KeyQuery, *, with_total: Literal[True] = ...
    ) -> tuple[list[KeyView], int]: ...

    @overload
    def list_keys(
        self, query: KeyQuery, *, with_total: Literal[False]
    ) -> tuple[list[KeyView], None]: ...

    def list_keys(
        self, query: KeyQuery, *, with_total: bool = True
    ) -> tuple[list[KeyView], int | None]:
        """One page of keys and, unless not wanted, the number of all matches.

        States in ``query`` are matched against the stored state; a key whose expiration passed
        but that the scheduler has not yet deactivated shows state 3 in its view.

        Args:
            query: what to list (see :func:`kyok.kms.query.parse_key_query`).
            with_total: count every match too. Counting is linear in the number of matches
                (~50 ms for a million keys on PostgreSQL) while a page is not, so a caller
                that does not show the total (Key Protect's ``GET /keys``) passes False.

        Returns:
            ``(keys, total)``: the page and how many keys match ignoring limit and offset
            (None when ``with_total`` is False). The page is the same either way.

        Raises:
            InvalidQueryParam: the query names an unknown field, operator, state or page.
            InstanceNotFound: no such instance.
            KeyRingNotFound: the query's key ring does not exist.
            SearchTooBroad: the search would scan more keys than ``search_scope_limit``.
        """
        check_key_query(query)
        now = self._clock.now()
        total: int | None = None
        with self._uow(read_only=True) as uow:
            self._check_query_scope(uow, query)
            records = uow.keys.find(query)
            if with_total:
                total = uow.keys.count(query)
            direct = self._direct_match(uow, query)
            if direct is not None:
                # Key Protect: a search for a full key id also finds that key, first.
                if total is not None and not self._found_by_search(uow, direct, query):
                    total += 1
                if query.offset == 0:
                    records = [direct, *(r for r in records if r.id != direct.id)][: query.limit]
            ids = [r.id for r in records]
            aliases = uow.aliases.list_for_keys(query.instance_id, ids) if ids else {}
            policies = uow.key_policies.list_for_keys(query.instance_id, ids) if ids else {}
            states = {
                r.id: self._policy_state(uow, r, policies.get(r.id, []), now) for r in records
            }
        views = [
            view_of(r, aliases.get(r.id, ()), now, self._timers, states[r.id]) for r in records
        ]
        return views, total

    def _direct_match(self, uow: UnitOfWork, query: KeyQuery) -> KeyRecord | None:
        """The key whose id a (non-negated) search names, if it passes the query's state,
        extractable and key-ring filters."""
        search = query.search
        if search is None or search.negate:
            return None
        key_id = _key_id(search.text)
        if key_id is None:
            return None
        record = uow.keys.get(query.instance_id, key_id)
        if record is None:
            return None
        states = query.states if query.states is not None else frozenset({0, 1, 2, 3})
        if record.state not in states:
            return None
        if query.extractable is not None and record.extractable != query.extractable:
            return None
        if query.key_ring_id is not None and record.key_ring_id != query.key_ring_id:
            return None
        return record

    @staticmethod
    def _found_by_search(uow: UnitOfWork, record: KeyRecord, query: KeyQuery) -> bool:
        """Whether the store's own search (names, aliases) matches ``record`` already."""
        search = query.search
        assert search is not None
        text = search.text.lower()
        fields = [record.name] if search.names else []
        if search.aliases:
            fields += [a.alias for a in uow.aliases.list_for_key(record.instance_id, record.id)]
        return any((f.lower() == text) if search.exact else (text in f.lower()) for f in fields)

    def count_keys(self, query: KeyQuery) -> int:
        """How many keys match ``query`` (limit and offset ignored).

        Args:
            query: what to count (see :func:`kyok.kms.query.parse_key_query`).

        Returns:
            The number of matches.

        Raises:
            InvalidQueryParam, InstanceNotFound, KeyRingNotFound, SearchTooBroad: as for
                :meth:`list_keys`.
        """
        check_key_query(query)
        with self._uow(read_only=True) as uow:
            self._check_query_scope(uow, query)
            total = uow.keys.count(query)
            direct = self._direct_match(uow, query)
            if direct is not None and not self._found_by_search(uow, direct, query):
                total += 1
            return total

    def list_versions(
        self,
        instance_id: str,
        id_or_alias: str,
        limit: int = 200,
        offset: int = 0,
        *,
        all_states: bool = False,
    ) -> tuple[list[KeyVersionRecord], int]:
        """A key's versions, newest first, and how many there are.

        Args:
            instance_id: the instance.
            id_or_alias: the key.
            limit: page size (1-5,000).
            offset: 0-based start.
            all_states: also for keys that are not active.

        Returns:
            ``(versions, total)``.

        Raises:
            InvalidField: bad limit or offset.
            KeyNotFound: no such key.
            KeyStateConflict: the key is not active and ``all_states`` is False.
        """
        v.validate_page(limit, offset)
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            key = self._resolve(uow, instance_id, id_or_alias)
            state = effective_state(key, now)
            if not all_states:
                try:
                    check(state, Action.LIST_VERSIONS)
                except KeyDeleted:
                    # Key Protect answers 409 for every non-active key here, destroyed included.
                    raise KeyStateConflict(int(state), Action.LIST_VERSIONS.value) from None
            versions = uow.versions.list_for_key(instance_id, key.id, limit, offset)
            total = uow.versions.count_for_key(instance_id, key.id)
        return versions, total

    # ------------------------------------------------------------------------------ data plane

    def wrap(
        self,
        instance_id: str,
        id_or_alias: str,
        plaintext: bytes | None = None,
        aad: Sequence[str] | None = None,
    ) -> WrapResult:
        """Wrap a DEK under the newest version of a root key.

        Args:
            instance_id: the instance.
            id_or_alias: the root key.
            plaintext: the DEK (1-4,096 bytes); None makes the service generate a 32-byte DEK.
            aad: strings bound to the ciphertext; unwrap must present the same list.

        Returns:
            The ciphertext and the version that made it (plus the DEK if it was generated).

        Raises:
            InvalidField: bad plaintext or AAD.
            KeyNotFound: no such key.
            RootKeyRequired: the key is a standard key.
            KeyStateConflict: the key is not active.
            KeyDeleted: the key is destroyed.
            UnitSealed: the crypto unit is sealed.
        """
        dek = v.validate_plaintext(plaintext)
        aad_list = v.validate_aad(aad)
        for attempt in range(self._max_attempts):
            key, blobs, unit = self._load_for_crypto(instance_id, id_or_alias, Action.WRAP, ())
            try:
                handle = unit.handle(blobs[key.current_version_id])
                ciphertext, used = handle.wrap(dek, aad_list)
            except HandleRevoked:
                if attempt + 1 == self._max_attempts:
                    raise
                continue  # the key changed state meanwhile: judge it again
            return WrapResult(ciphertext, key.current_version_id, used if dek is None else None)
        raise AssertionError("unreachable")  # pragma: no cover

    def unwrap(
        self,
        instance_id: str,
        id_or_alias: str,
        ciphertext: bytes,
        aad: Sequence[str] | None = None,
    ) -> UnwrapResult:
        """Unwrap a DEK; if an older version made it, also re-wrap it under the newest version.

        The key is checked (found, root, state) before the ciphertext is looked at.

        Args:
            instance_id: the instance.
            id_or_alias: the root key that wrapped the DEK.
            ciphertext: what :meth:`wrap` (or :meth:`rewrap`) returned.
            aad: the same AAD as given to wrap.

        Returns:
            The DEK and the version that had wrapped it; when that version is not the newest,
            also the DEK wrapped under the newest version (same AAD) and that version's id.

        Raises:
            InvalidField: no ciphertext, or bad AAD.
            KeyNotFound: no such key.
            RootKeyRequired: the key is a standard key.
            KeyStateConflict: the key is neither active nor deactivated.
            KeyDeleted: the key is destroyed.
            UnwrapFailed: the ciphertext is damaged, not ours, of another key, or the AAD
                differs (one opaque error, 422).
            UnitSealed: the crypto unit is sealed.
        """
        ciphertext = v.validate_ciphertext(ciphertext)
        aad_list = v.validate_aad(aad)
        version_id = _version_named_by(ciphertext)
        for attempt in range(self._max_attempts):
            key, source, newest, unit = self._load_for_unwrap(
                instance_id, id_or_alias, Action.UNWRAP, version_id
            )
            try:
                dek = unit.handle(source).unwrap(ciphertext, aad_list)
                if source.ref.id == key.current_version_id:
                    return UnwrapResult(dek, source.ref.id)
                rewrapped, _ = unit.handle(newest).wrap(dek, aad_list)
            except HandleRevoked:
                if attempt + 1 == self._max_attempts:
                    raise
                continue
            return UnwrapResult(dek, source.ref.id, rewrapped, key.current_version_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def rewrap(
        self,
        instance_id: str,
        id_or_alias: str,
        ciphertext: bytes,
        aad: Sequence[str] | None = None,
    ) -> RewrapResult:
        """Move a wrapped DEK to the newest key version; the DEK never leaves the service.

        Args:
            instance_id: the instance.
            id_or_alias: the root key that wrapped the DEK.
            ciphertext: what :meth:`wrap` (or an earlier rewrap) returned.
            aad: the same AAD as given to wrap; the new ciphertext binds it too.

        Returns:
            The new ciphertext, the version that had wrapped the old one and the newest version.

        Raises:
            The same errors as :meth:`unwrap`.
        """
        ciphertext = v.validate_ciphertext(ciphertext)
        aad_list = v.validate_aad(aad)
        version_id = _version_named_by(ciphertext)
        for attempt in range(self._max_attempts):
            key, source, newest, unit = self._load_for_unwrap(
                instance_id, id_or_alias, Action.REWRAP, version_id
            )
            try:
                dek = unit.handle(source).unwrap(ciphertext, aad_list)
                rewrapped, _ = unit.handle(newest).wrap(dek, aad_list)
            except HandleRevoked:
                if attempt + 1 == self._max_attempts:
                    raise
                continue
            return RewrapResult(rewrapped, source.ref.id, key.current_version_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def data_plane_handles(
        self,
        instance_id: str,
        id_or_alias: str,
        action: Action,
        version_ids: Sequence[str] = (),
    ) -> tuple[KeyRecord, dict[str, KeyHandle]]:
        """The key, judged for ``action``, and handles of its newest version and of those of
        ``version_ids`` that are its own (the batch operations in :mod:`kyok.kms.batch`).

        Served from the key cache like :meth:`wrap`; versions that are not this key's root-key
        material are left out (an item naming one fails as an unwrap failure).

        Raises:
            KeyNotFound, RootKeyRequired, KeyStateConflict, KeyDeleted, UnitSealed: as
                :meth:`wrap`/:meth:`unwrap`.
        """
        key, blobs, unit = self._load_for_crypto(
            instance_id, id_or_alias, action, tuple(dict.fromkeys(version_ids))
        )
        return key, {vid: unit.handle(blob) for vid, blob in blobs.items()}

    # ------------------------------------------------------------------------------- lifecycle

    def rotate(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        material: bytes | None = None,
        *,
        wrapped: WrappedImport | None = None,
    ) -> KeyView:
        """Give a root key a new version; older versions keep unwrapping.

        Generated keys get new generated material (``material`` must be None); imported keys
        need new material of a root size, in plain (``material``) or through the instance's
        import token (``wrapped``). A rotation policy's next due date moves on.

        Args:
            actor: who rotates.
            instance_id: the instance.
            id_or_alias: the root key.
            material: new material for an imported key (16/24/32 bytes).
            wrapped: new material for an imported key, under the import token.

        Returns:
            The key with its new version.

        Raises:
            InvalidField: ``material`` is not 16/24/32 bytes.
            KeyNotFound: no such key.
            RootKeyRequired: the key is a standard key.
            KeyStateConflict: the key is neither active nor deactivated.
            KeyDeleted: the key is destroyed.
            PayloadRequired: an imported key without new material.
            PayloadNotAllowed: a generated key with material.
            RotationNotPermitted: rotated less than ``min_rotate_interval`` ago.
            UnitSealed: the crypto unit is sealed.
        """
        if material is not None:
            material = v.validate_material(material, extractable=False)
        if material is not None and wrapped is not None:
            raise BadBody("give the key material either in plain or through the import token")
        new_material = material is not None or wrapped is not None

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if key.imported and not new_material:
                raise PayloadRequired()
            if not key.imported and new_material:
                raise PayloadNotAllowed()
            if new_material:
                self._rules_in(uow, instance_id).check_create(
                    extractable=False, imported=True, with_token=wrapped is not None
                )
            last = key.last_rotated_at
            if last is not None and now < last + self._timers.min_rotate_interval:
                raise RotationNotPermitted()
            version_id = str(uuid.uuid4())
            unit = self._units.for_instance(instance_id)
            ref = BlobRef(instance_id, key.id, version_id, PURPOSE_ROOT_KEY)
            if wrapped is not None:
                sealed, size = import_with_token(uow, unit, ref, wrapped, now)
            elif material is None:
                sealed = unit.generate_blob(ref, v.GENERATED_KEY_SIZE)
                size = v.GENERATED_KEY_SIZE
            else:
                sealed = unit.seal_material(ref, material)
                size = len(material)
            policy = uow.key_policies.get(instance_id, key.id, pol.ROTATION)
            if policy is not None and policy.enabled and policy.interval_months:
                due = pol.next_rotation(now, policy.interval_months)
                uow.key_policies.put(replace(policy, next_rotation_at=due))
            number = key.version_count + 1
            uow.versions.add(KeyVersionRecord(instance_id, key.id, version_id, number, now))
            uow.blobs.add(_blob_record(sealed))
            return replace(
                key,
                state=int(state),
                current_version_id=version_id,
                version_count=number,
                bit_length=size * 8,
                last_rotated_at=now,
                updated_at=now,
                last_action_at=now,
            )

        return self._change(
            actor, instance_id, id_or_alias, Action.ROTATE, EventAction.KEY_ROTATE, apply
        )

    def disable(self, actor: Principal, instance_id: str, id_or_alias: str) -> KeyView:
        """Suspend a root key (state 1 -> 2): it can no longer wrap or unwrap.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.

        Returns:
            The suspended key.

        Raises:
            KeyNotFound: no such key.
            RootKeyRequired: the key is a standard key.
            KeyStateConflict: the key is not active.
            KeyDeleted: the key is destroyed.
        """
        return self._change(
            actor, instance_id, id_or_alias, Action.DISABLE, EventAction.KEY_DISABLE, _to_state
        )

    def enable(self, actor: Principal, instance_id: str, id_or_alias: str) -> KeyView:
        """Re-activate a suspended root key (state 2 -> 1).

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.

        Returns:
            The active key.

        Raises:
            KeyNotFound: no such key.
            RootKeyRequired: the key is a standard key.
            KeyStateConflict: the key is not suspended.
            KeyDeleted: the key is destroyed.
            RequestTooEarly: less than ``enable_delay`` after the key's last action.
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if now < key.last_action_at + self._timers.enable_delay:
                raise RequestTooEarly()
            return _to_state(uow, key, state, now)

        return self._change(
            actor, instance_id, id_or_alias, Action.ENABLE, EventAction.KEY_ENABLE, apply
        )

    def delete(
        self, actor: Principal, instance_id: str, id_or_alias: str, *, force: bool = False
    ) -> KeyView:
        """Destroy a key (state -> 5). Its material stays until purge so that restore works.

        Every configured :class:`~kyok.kms.ports.DeletionGuard` (registrations, dual
        authorisation) is asked first, inside the same unit of work, with ``force``.

        Args:
            actor: who deletes it (``deleted_by``).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.
            force: delete despite registrations (passed to the deletion guards).

        Returns:
            The destroyed key.

        Raises:
            KeyNotFound: no such key.
            KeyDeleted: already destroyed (410).
            KyokError: whatever a deletion guard raises.
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            for guard in self._guards:
                guard.check_delete(uow, key, actor, force=force, now=now)
            return replace(
                key,
                state=int(state),
                deleted_at=now,
                deleted_by=actor.id,
                updated_at=now,
                last_action_at=now,
            )

        return self._change(
            actor, instance_id, id_or_alias, Action.DELETE, EventAction.KEY_DELETE, apply
        )

    def restore(self, actor: Principal, instance_id: str, id_or_alias: str) -> KeyView:
        """Bring a destroyed key back (state 5 -> 1) within the restore window.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.

        Returns:
            The active key.

        Raises:
            KeyNotFound: no such key (or purged).
            KeyStateConflict: the key is not destroyed.
            KeyExpired: the key's expiration date has passed.
            RestoreExpired: deleted longer ago than ``restore_window``.
            RequestTooEarly: less than ``restore_delay`` after the deletion (last action).
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if key.expires_at is not None and key.expires_at <= now:
                raise KeyExpired()
            deleted_at = key.deleted_at or key.last_action_at
            if now > deleted_at + self._timers.restore_window:
                raise RestoreExpired()
            if now < key.last_action_at + self._timers.restore_delay:
                raise RequestTooEarly()
            return replace(
                key,
                state=int(state),
                deleted_at=None,
                deleted_by=None,
                updated_at=now,
                last_action_at=now,
            )

        return self._change(
            actor, instance_id, id_or_alias, Action.RESTORE, EventAction.KEY_RESTORE, apply
        )

    def purge(self, actor: Principal, instance_id: str, id_or_alias: str) -> KeyView:
        """Remove a destroyed key for good: its row, versions, sealed material and aliases.

        Without the sealed material no DEK it wrapped can ever be unwrapped (crypto-shredding);
        afterwards every call for the key answers ``KeyNotFound``.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.

        Returns:
            The key as it was just before the purge.

        Raises:
            KeyNotFound: no such key.
            KeyStateConflict: the key is not destroyed.
            PurgeTooEarly: less than ``purge_after`` since the deletion.
        """
        return self._purge(actor, instance_id, id_or_alias, enforce_delay=True)

    def expire_due(self, now: datetime | None = None, *, batch: int = 500) -> int:
        """Deactivate (state 3) every key whose expiration date has passed, in all instances.

        Called by the scheduler. Keys changed concurrently are left for the next run.

        Args:
            now: the time to judge by (default: the service clock).
            batch: how many keys to read at once.

        Returns:
            How many keys were deactivated.
        """
        when = now or self._clock.now()
        done = 0
        seen: set[tuple[str, str]] = set()
        while True:
            with self._uow(read_only=True) as uow:
                due = uow.keys.expiring(when, batch)
            fresh = [r for r in due if (r.instance_id, r.id) not in seen]
            for record in fresh:
                seen.add((record.instance_id, record.id))
                if self._expire_one(record.instance_id, record.id, when):
                    done += 1
            if len(due) < batch or not fresh:
                return done

    def purge_overdue(self, now: datetime | None = None, *, batch: int = 500) -> int:
        """Purge keys destroyed longer ago than ``auto_purge_after``, in all instances.

        Args:
            now: the time to judge by (default: the service clock).
            batch: how many keys to read at once per instance.

        Returns:
            How many keys were purged.
        """
        when = now or self._clock.now()
        cutoff = when - self._timers.auto_purge_after
        done = 0
        with self._uow(read_only=True) as uow:
            instances = uow.instances.list()
        for instance in instances:
            query = KeyQuery(
                instance_id=instance.id,
                states=_DESTROYED,
                filters=(KeyFilter("deleted_at", "lte", cutoff),),
                sort=(("deleted_at", False), ("id", False)),
                limit=batch,
            )
            seen: set[str] = set()
            while True:
                with self._uow(read_only=True) as uow:
                    overdue = uow.keys.find(query)
                fresh = [r for r in overdue if r.id not in seen]
                for record in fresh:
                    seen.add(record.id)
                    try:
                        self._purge(SYSTEM, instance.id, record.id, enforce_delay=False, now=when)
                    except (KeyNotFound, KeyStateConflict, VersionConflict):
                        continue  # gone, restored or changed meanwhile: nothing to do now
                    done += 1
                if len(overdue) < batch or not fresh:
                    break
        return done

    # --------------------------------------------------------------------------------- aliases

    def create_alias(
        self, actor: Principal, instance_id: str, id_or_alias: str, alias: str
    ) -> AliasRecord:
        """Give a key one more alias.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.
            alias: the new alias.

        Returns:
            The stored alias.

        Raises:
            InvalidField: the alias breaks the alias rules (target ``alias``).
            KeyNotFound: no such key.
            KeyDeleted: the key is destroyed.
            AliasExists: the alias is used in the instance.
            AliasLimitExceeded: the key has 5 aliases, or the instance 1,000.
        """
        alias = v.validate_alias(alias, target="alias")
        made: list[AliasRecord] = []

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            made.clear()
            if uow.aliases.get(instance_id, alias) is not None:
                raise AliasExists()
            if len(uow.aliases.list_for_key(instance_id, key.id)) >= v.ALIASES_PER_KEY:
                raise AliasLimitExceeded("key", v.ALIASES_PER_KEY)
            if uow.aliases.count_for_instance(instance_id) >= v.ALIASES_PER_INSTANCE:
                raise AliasLimitExceeded("instance", v.ALIASES_PER_INSTANCE)
            record = AliasRecord(instance_id, alias, key.id, now, actor.id)
            uow.aliases.add(record)
            made.append(record)
            # Writing the key serialises alias changes of one key (the per-key limit holds).
            return replace(key, updated_at=now)

        try:
            self._change(
                actor,
                instance_id,
                id_or_alias,
                Action.EDIT,
                EventAction.ALIAS_CREATE,
                apply,
                detail=(("alias", alias),),
                forget=False,
            )
        except AlreadyExists:
            raise AliasExists() from None
        return made[0]

    def delete_alias(
        self, actor: Principal, instance_id: str, id_or_alias: str, alias: str
    ) -> None:
        """Remove one alias of a key.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            id_or_alias: the key's UUID or one of its aliases.
            alias: the alias to remove.

        Raises:
            KeyNotFound: no such key.
            KeyDeleted: the key is destroyed.
            AliasNotFound: the key has no such alias.
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            record = uow.aliases.get(instance_id, alias) if isinstance(alias, str) else None
            if record is None or record.key_id != key.id:
                raise AliasNotFound()
            uow.aliases.delete(instance_id, alias)
            return replace(key, updated_at=now)

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.EDIT,
            EventAction.ALIAS_DELETE,
            apply,
            detail=(("alias", str(alias)),),
            forget=False,
        )

    # ------------------------------------------------------------------------------- key rings

    def create_key_ring(
        self, actor: Principal, instance_id: str, key_ring_id: str
    ) -> KeyRingRecord:
        """Create a key ring.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            key_ring_id: the new ring's id.

        Returns:
            The stored key ring.

        Raises:
            InvalidField: the id breaks the key ring id rule.
            KeyRingReserved: the id is ``default``.
            InstanceNotFound: no such instance.
            KeyRingExists: the id is taken.
            KeyRingLimitExceeded: the instance has 50 key rings.
        """
        ring_id = v.validate_key_ring_id(key_ring_id)
        if ring_id == v.DEFAULT_KEY_RING:
            raise KeyRingReserved()
        now = self._clock.now()
        record = KeyRingRecord(instance_id, ring_id, now, actor.id)
        try:
            with self._uow() as uow:
                self._instance(uow, instance_id)
                if uow.key_rings.get(instance_id, ring_id) is not None:
                    raise KeyRingExists()
                if uow.key_rings.count(instance_id) >= v.KEY_RINGS_PER_INSTANCE:
                    raise KeyRingLimitExceeded(v.KEY_RINGS_PER_INSTANCE)
                uow.key_rings.add(record)
                event = KmsEvent(EventAction.KEY_RING_CREATE, instance_id, ring_id, actor.id, now)
                self._audit.record(uow, event)
                uow.commit()
        except AlreadyExists:
            raise KeyRingExists() from None
        return record

    def list_key_rings(
        self, instance_id: str, limit: int = 100, offset: int = 0
    ) -> tuple[list[KeyRingRecord], int]:
        """One page of the instance's key rings and how many there are.

        Args:
            instance_id: the instance.
            limit: page size (1-5,000).
            offset: 0-based start.

        Returns:
            ``(key rings, total)``, oldest first.

        Raises:
            InvalidField: bad limit or offset.
            InstanceNotFound: no such instance.
        """
        v.validate_page(limit, offset)
        with self._uow(read_only=True) as uow:
            self._instance(uow, instance_id)
            return uow.key_rings.list(instance_id, limit, offset), uow.key_rings.count(instance_id)

    def delete_key_ring(
        self, actor: Principal, instance_id: str, key_ring_id: str, *, force: bool = False
    ) -> None:
        """Delete an empty key ring; with ``force``, destroyed keys in it move to ``default``.

        Args:
            actor: who does it (recorded as the actor).
            instance_id: the instance.
            key_ring_id: the ring.
            force: move destroyed keys to ``default`` instead of refusing.

        Raises:
            InvalidField: the id breaks the key ring id rule.
            KeyRingReserved: the id is ``default``.
            KeyRingNotFound: no such key ring.
            KeyRingNotEmpty: it holds keys that are not destroyed, or destroyed keys and
                ``force`` is False.
        """
        ring_id = v.validate_key_ring_id(key_ring_id)
        if ring_id == v.DEFAULT_KEY_RING:
            raise KeyRingReserved()
        for attempt in range(self._max_attempts):
            now = self._clock.now()
            with self._uow() as uow:
                if uow.key_rings.get(instance_id, ring_id) is None:
                    raise KeyRingNotFound()
                if uow.keys.count_in_ring(instance_id, ring_id, _LIVE_STATES):
                    raise KeyRingNotEmpty(destroyed_only=False)
                moved = 0
                if uow.keys.count_in_ring(instance_id, ring_id, _DESTROYED):
                    if not force:
                        raise KeyRingNotEmpty(destroyed_only=True)
                    moved = uow.keys.move_ring(instance_id, ring_id, v.DEFAULT_KEY_RING, _DESTROYED)
                uow.key_rings.delete(instance_id, ring_id)
                detail = (("force", str(force).lower()), ("moved_keys", str(moved)))
                event = KmsEvent(
                    EventAction.KEY_RING_DELETE, instance_id, ring_id, actor.id, now, detail=detail
                )
                self._audit.record(uow, event)
                try:
                    uow.commit()
                except VersionConflict:
                    if attempt + 1 == self._max_attempts:
                        raise
                    continue
            if moved:
                self._cache.invalidate_instance(instance_id)
            return

    def patch_key_ring(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        key_ring_id: str,
        *,
        current_key_ring_id: str | None = None,
    ) -> KeyView:
        """Move a key to another key ring.

        Args:
            actor: who moves it.
            instance_id: the instance.
            id_or_alias: the key.
            key_ring_id: the target ring.
            current_key_ring_id: if given, the key must be in this ring (else KeyNotFound).

        Returns:
            The key in its new ring.

        Raises:
            InvalidField: a ring id breaks the rule.
            KeyNotFound: no such key (in ``current_key_ring_id``).
            KeyRingNotFound: the target ring does not exist.
            KeyDeleted: the key is destroyed.
        """
        target = v.validate_key_ring_id(key_ring_id)
        current = None
        if current_key_ring_id is not None:
            current = v.validate_key_ring_id(current_key_ring_id)

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if current is not None and key.key_ring_id != current:
                raise KeyNotFound()
            if uow.key_rings.get(instance_id, target) is None:
                raise KeyRingNotFound()
            return replace(key, key_ring_id=target, updated_at=now)

        return self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.EDIT,
            EventAction.KEY_MOVE,
            apply,
            detail=(("key_ring_id", target),),
            forget=False,
        )

    # ------------------------------------------------------------------------------- internals

    # ------------------------------------------------------------------------- key policies

    def get_key_policies(self, instance_id: str, id_or_alias: str) -> list[KeyPolicyRecord]:
        """A key's policies (``rotation``, ``dualAuthDelete``), those that were ever set.

        Raises:
            KeyNotFound: no such key.
        """
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            key = self._resolve(uow, instance_id, id_or_alias)
            check(effective_state(key, now), Action.READ)
            return uow.key_policies.list_for_key(instance_id, key.id)

    def set_key_policies(
        self, actor: Principal, instance_id: str, id_or_alias: str, spec: pol.KeyPolicySpec
    ) -> list[KeyPolicyRecord]:
        """Set a key's rotation and/or dual-authorisation policy.

        Rotation is for generated root keys only (1-12 months of 30 days; the next due date
        counts from the last rotation, or creation). Dual authorisation, once enabled, cannot be
        disabled.

        Returns:
            All the key's policies after the change.

        Raises:
            InvalidField: an empty request, or rotation for an imported key.
            RootKeyRequired: rotation for a standard key.
            DualAuthLocked: an attempt to disable dual authorisation.
            KeyNotFound, KeyDeleted: no such key, or destroyed.
        """
        if spec.empty:
            raise InvalidField("policies", "name at least one policy: rotation or dualAuthDelete")
        result: list[KeyPolicyRecord] = []

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if spec.rotation_enabled is not None:
                if key.extractable:
                    raise RootKeyRequired("rotation policy")
                if key.imported and spec.rotation_enabled:
                    raise InvalidField("rotation", "imported keys cannot be rotated automatically")
            current = {p.policy_type: p for p in uow.key_policies.list_for_key(instance_id, key.id)}
            dual = current.get(pol.DUAL_AUTH_DELETE)
            if spec.dual_auth_delete is not None:
                if dual is not None and dual.enabled and not spec.dual_auth_delete:
                    raise DualAuthLocked()
                uow.key_policies.put(
                    KeyPolicyRecord(
                        instance_id,
                        key.id,
                        pol.DUAL_AUTH_DELETE,
                        spec.dual_auth_delete,
                        dual.created_at if dual is not None else now,
                        dual.created_by if dual is not None else actor.id,
                        now,
                        actor.id,
                    )
                )
            if spec.rotation_enabled is not None:
                old = current.get(pol.ROTATION)
                months = spec.interval_months or (old.interval_months if old else None)
                due = None
                if spec.rotation_enabled and months:
                    base = max(key.last_rotated_at or key.created_at, key.created_at)
                    due = pol.next_rotation(base, months)
                uow.key_policies.put(
                    KeyPolicyRecord(
                        instance_id,
                        key.id,
                        pol.ROTATION,
                        spec.rotation_enabled,
                        old.created_at if old is not None else now,
                        old.created_by if old is not None else actor.id,
                        now,
                        actor.id,
                        interval_months=months,
                        next_rotation_at=due,
                    )
                )
            result.extend(uow.key_policies.list_for_key(instance_id, key.id))
            return replace(key, updated_at=now)

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.EDIT,
            EventAction.KEY_POLICY_SET,
            apply,
            detail=_policy_detail(spec),
            forget=False,
        )
        return result

    def rotate_due(self, now: datetime | None = None, *, batch: int = 100) -> int:
        """Rotate every key whose rotation policy is due, in all instances (scheduler job).

        A key that cannot rotate now (suspended, destroyed, sealed unit...) is tried again a
        day later (sealed units: at the next run).

        Returns:
            How many keys were rotated.
        """
        when = now or self._clock.now()
        with self._uow(read_only=True) as uow:
            due = uow.key_policies.rotation_due(when, batch)
        rotated = 0
        for policy in due:
            try:
                self.rotate(SYSTEM, policy.instance_id, policy.key_id)
                rotated += 1
            except UnitSealed:
                continue
            except KyokError:
                self._postpone_rotation(policy, when + _RETRY_ROTATION)
        return rotated

    def _postpone_rotation(self, policy: KeyPolicyRecord, until: datetime) -> None:
        with self._uow() as uow:
            current = uow.key_policies.get(policy.instance_id, policy.key_id, pol.ROTATION)
            if current is None or current.next_rotation_at != policy.next_rotation_at:
                return  # changed meanwhile
            uow.key_policies.put(replace(current, next_rotation_at=until))
            uow.commit()

    # ---------------------------------------------------------------- dual authorisation

    def set_key_for_deletion(self, actor: Principal, instance_id: str, id_or_alias: str) -> None:
        """Give the first approval to delete a dual-authorisation key (valid for
        ``dual_auth_window``, 7 days); another principal may then delete it.

        Raises:
            NotDualAuth: the key has no dual-authorisation policy.
            KeyNotFound, KeyDeleted: no such key, or destroyed.
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if not dual_auth_enabled(uow, key):
                raise NotDualAuth()
            uow.deletion_authorizations.put(
                DeletionAuthorizationRecord(
                    instance_id, key.id, actor.id, now, now + self._timers.dual_auth_window
                )
            )
            return replace(key, updated_at=now)

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.EDIT,
            EventAction.KEY_SET_FOR_DELETION,
            apply,
            forget=False,
        )

    def unset_key_for_deletion(self, actor: Principal, instance_id: str, id_or_alias: str) -> None:
        """Withdraw the approval to delete a dual-authorisation key.

        Raises:
            NotDualAuth: the key has no dual-authorisation policy.
            KeyNotFound, KeyDeleted: no such key, or destroyed.
        """

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if not dual_auth_enabled(uow, key):
                raise NotDualAuth()
            uow.deletion_authorizations.delete(instance_id, key.id)
            return replace(key, updated_at=now)

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.EDIT,
            EventAction.KEY_UNSET_FOR_DELETION,
            apply,
            forget=False,
        )

    # ---------------------------------------------------------------------- registrations

    def sync(self, actor: Principal, instance_id: str, id_or_alias: str) -> int:
        """Ask the services that registered resources under a key to catch up with its state.

        kyok has no push channel to those services: the request is recorded (the key's
        ``last_synced_at`` and an audit event per call) and services read it from there.

        Returns:
            How many registrations the key has.

        Raises:
            SyncTooEarly: synced, or the key changed, within ``sync_interval`` (1 h).
            KeyNotFound: no such key.
        """
        count = 0

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            nonlocal count
            window = self._timers.sync_interval
            last = max(key.last_synced_at or key.last_action_at, key.last_action_at)
            if now < last + window:
                raise SyncTooEarly()
            count = uow.registrations.count(RegistrationQuery(instance_id, key_id=key.id))
            return replace(key, last_synced_at=now)

        self._change(
            actor, instance_id, id_or_alias, Action.READ, EventAction.KEY_SYNC, apply, forget=False
        )
        return count

    def create_registration(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        resource_crn: str,
        *,
        description: str | None = None,
        registration_metadata: str | None = None,
        prevent_key_deletion: bool = False,
        key_version_id: str | None = None,
        replace_existing: bool = False,
    ) -> RegistrationView:
        """Record that ``resource_crn`` is protected by a root key (service principals only).

        Args:
            actor: the service principal.
            instance_id: the instance.
            id_or_alias: the root key.
            resource_crn: the resource.
            description: free text (at most 240 characters).
            registration_metadata: the service's own text (at most 4,096 characters).
            prevent_key_deletion: a retention hold: the key cannot be deleted while it lasts.
            key_version_id: the key version the resource uses (default: the newest).
            replace_existing: replace a registration of the same resource instead of refusing.

        Raises:
            ServiceOnly: the actor is not a service principal.
            RootKeyRequiredForRegistration: a standard key.
            KeyInvalidState: the key is destroyed.
            KeyVersionInvalid: ``key_version_id`` is not a version of the key.
            RegistrationExists: the resource is registered already (without replace_existing).
        """
        _require_service(actor)
        crn = validate_crn(resource_crn)
        text = validate_registration_text(description, "description", DESCRIPTION_MAX)
        meta = validate_registration_text(
            registration_metadata, "registration_metadata", METADATA_MAX
        )
        if not isinstance(prevent_key_deletion, bool):
            raise InvalidField("prevent_key_deletion", "must be true or false")
        made: list[RegistrationView] = []

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if key.extractable:
                raise RootKeyRequiredForRegistration()
            if state is KeyState.DESTROYED:
                raise KeyInvalidState(int(state))
            version = self._registered_version(uow, key, key_version_id)
            old = uow.registrations.get(instance_id, key.id, crn)
            if old is not None and not replace_existing:
                raise RegistrationExists()
            record = RegistrationRecord(
                instance_id=instance_id,
                key_id=key.id,
                resource_crn=crn,
                created_at=old.created_at if old is not None else now,
                created_by=old.created_by if old is not None else actor.id,
                updated_at=now,
                updated_by=actor.id,
                key_version_id=version.id,
                prevent_key_deletion=prevent_key_deletion,
                description=text,
                registration_metadata=meta,
            )
            if old is None:
                uow.registrations.add(record)
            else:
                uow.registrations.update(record)
            made.append(RegistrationView(record, key.name, version.created_at))
            return key

        event = EventAction.REGISTRATION_CREATE
        try:
            self._change(
                actor,
                instance_id,
                id_or_alias,
                Action.READ,
                event,
                apply,
                detail=(
                    ("resource_crn", crn),
                    ("prevent_key_deletion", str(prevent_key_deletion).lower()),
                ),
                forget=False,
            )
        except AlreadyExists:
            raise RegistrationExists() from None
        return made[0]

    def update_registration(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        resource_crn: str,
        *,
        description: str | Unset | None = UNSET,
        registration_metadata: str | Unset | None = UNSET,
        prevent_key_deletion: bool | None = None,
        key_version_id: str | None = None,
    ) -> RegistrationView:
        """Change a registration's fields (those given); service principals only.

        Raises:
            ServiceOnly: the actor is not a service principal.
            RegistrationNotFound: the key has no registration for the resource.
            KeyVersionInvalid: ``key_version_id`` is not a version of the key.
        """
        _require_service(actor)
        crn = validate_crn(resource_crn)
        if not isinstance(description, Unset):
            description = validate_registration_text(description, "description", DESCRIPTION_MAX)
        if not isinstance(registration_metadata, Unset):
            registration_metadata = validate_registration_text(
                registration_metadata, "registration_metadata", METADATA_MAX
            )
        if prevent_key_deletion is not None and not isinstance(prevent_key_deletion, bool):
            raise InvalidField("prevent_key_deletion", "must be true or false")
        made: list[RegistrationView] = []

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            old = uow.registrations.get(instance_id, key.id, crn)
            if old is None:
                raise RegistrationNotFound()
            version = (
                self._registered_version(uow, key, key_version_id)
                if key_version_id is not None
                else uow.versions.get(instance_id, old.key_version_id)
            )
            record = replace(
                old,
                updated_at=now,
                updated_by=actor.id,
                key_version_id=version.id if version is not None else old.key_version_id,
                prevent_key_deletion=(
                    old.prevent_key_deletion
                    if prevent_key_deletion is None
                    else prevent_key_deletion
                ),
                description=old.description if isinstance(description, Unset) else description,
                registration_metadata=(
                    old.registration_metadata
                    if isinstance(registration_metadata, Unset)
                    else registration_metadata
                ),
            )
            uow.registrations.update(record)
            made.append(RegistrationView(record, key.name, version.created_at if version else None))
            return key

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.READ,
            EventAction.REGISTRATION_UPDATE,
            apply,
            detail=(("resource_crn", crn),),
            forget=False,
        )
        return made[0]

    def delete_registration(
        self, actor: Principal, instance_id: str, id_or_alias: str, resource_crn: str
    ) -> None:
        """Remove a registration (service principals only; in any key state).

        Raises:
            ServiceOnly: the actor is not a service principal.
            RegistrationNotFound: the key has no registration for the resource.
        """
        _require_service(actor)
        crn = validate_crn(resource_crn)

        def apply(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
            if not uow.registrations.delete(instance_id, key.id, crn):
                raise RegistrationNotFound()
            return key

        self._change(
            actor,
            instance_id,
            id_or_alias,
            Action.READ,
            EventAction.REGISTRATION_DELETE,
            apply,
            detail=(("resource_crn", crn),),
            forget=False,
        )

    def list_registrations(
        self,
        instance_id: str,
        id_or_alias: str | None = None,
        *,
        crn_pattern: str | None = None,
        prevent_key_deletion: bool | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> tuple[list[RegistrationView], int]:
        """Registrations of one key, or of the whole instance, and how many match.

        Args:
            instance_id: the instance.
            id_or_alias: one key (None: every key of the instance).
            crn_pattern: only CRNs matching it (``*`` for any characters).
            prevent_key_deletion: only registrations with (True) or without (False) a hold.
            limit: page size (1-5,000).
            offset: 0-based start.

        Raises:
            InvalidField: bad paging or pattern.
            KeyNotFound: ``id_or_alias`` names no key.
        """
        v.validate_page(limit, offset)
        pattern = None if crn_pattern is None else validate_crn_pattern(crn_pattern)
        with self._uow(read_only=True) as uow:
            self._instance(uow, instance_id)
            key_id = None
            if id_or_alias is not None:
                key_id = self._resolve(uow, instance_id, id_or_alias).id
            query = RegistrationQuery(
                instance_id,
                key_id=key_id,
                crn_pattern=pattern,
                prevent_key_deletion=prevent_key_deletion,
                limit=limit,
                offset=offset,
            )
            records = uow.registrations.find(query)
            total = uow.registrations.count(query)
            views: list[RegistrationView] = []
            keys: dict[str, KeyRecord | None] = {}
            for record in records:
                if record.key_id not in keys:
                    keys[record.key_id] = uow.keys.get(instance_id, record.key_id)
                key = keys[record.key_id]
                version = uow.versions.get(instance_id, record.key_version_id)
                views.append(
                    RegistrationView(
                        record,
                        key.name if key is not None else "",
                        version.created_at if version is not None else None,
                    )
                )
        return views, total

    @staticmethod
    def _registered_version(
        uow: UnitOfWork, key: KeyRecord, version_id: str | None
    ) -> KeyVersionRecord:
        wanted = version_id or key.current_version_id
        version = uow.versions.get(key.instance_id, wanted)
        if version is None or version.key_id != key.id:
            raise KeyVersionInvalid()
        return version

    # ---------------------------------------------------------------------- instance policies

    def get_instance_policies(
        self, instance_id: str, policy_type: str | None = None
    ) -> list[InstancePolicyRecord]:
        """The instance's policies (those ever set), or the one of ``policy_type``.

        Raises:
            InvalidField: an unknown policy type.
            InstanceNotFound: no such instance.
        """
        if policy_type is not None and policy_type not in pol.INSTANCE_POLICY_TYPES:
            raise InvalidField("policy", "unknown policy type")
        with self._uow(read_only=True) as uow:
            self._instance(uow, instance_id)
            found = uow.instance_policies.list(instance_id)
        return [p for p in found if policy_type is None or p.policy_type == policy_type]

    def set_instance_policies(
        self,
        actor: Principal,
        instance_id: str,
        specs: Sequence[pol.InstancePolicySpec],
        *,
        policy_type: str | None = None,
    ) -> list[InstancePolicyRecord]:
        """Set one or several instance policies in one transaction.

        Args:
            actor: who sets them.
            instance_id: the instance.
            specs: validated policies (:func:`kyok.kms.policies.validate_instance_policy`),
                each type at most once.
            policy_type: the type the caller named (``?policy=``); it must be the first's.

        Returns:
            The stored policies.

        Raises:
            InvalidField: no policy given.
            DuplicatePolicy: a type given twice.
            BodyQueryParamMismatch: ``policy_type`` is not the type of the first policy.
            InstanceNotFound: no such instance.
        """
        if not specs:
            raise InvalidField("policies", "name at least one policy")
        if policy_type is not None:
            if len(specs) != 1:
                raise DuplicatePolicy(policy_type)
            if specs[0].policy_type != policy_type:
                raise BodyQueryParamMismatch(policy_type, specs[0].policy_type)
        seen: set[str] = set()
        for spec in specs:
            if spec.policy_type in seen:
                raise DuplicatePolicy(spec.policy_type)
            seen.add(spec.policy_type)
        now = self._clock.now()
        stored: list[InstancePolicyRecord] = []
        with self._uow() as uow:
            self._instance(uow, instance_id)
            for spec in specs:
                old = uow.instance_policies.get(instance_id, spec.policy_type)
                record = InstancePolicyRecord(
                    instance_id=instance_id,
                    policy_type=spec.policy_type,
                    enabled=spec.enabled,
                    attributes=spec.attributes_json(),
                    created_at=old.created_at if old is not None else now,
                    created_by=old.created_by if old is not None else actor.id,
                    updated_at=now,
                    updated_by=actor.id,
                )
                uow.instance_policies.put(record)
                stored.append(record)
                self._audit.record(
                    uow,
                    KmsEvent(
                        EventAction.INSTANCE_POLICY_SET,
                        instance_id,
                        instance_id,
                        actor.id,
                        now,
                        detail=(
                            ("attributes", record.attributes),
                            ("enabled", str(spec.enabled).lower()),
                            ("policy_type", spec.policy_type),
                        ),
                    ),
                )
            uow.commit()
        self._rules.invalidate(instance_id)
        return stored

    def instance_rules(self, instance_id: str) -> pol.InstanceRules:
        """What the instance's policies demand (cached for up to a second; a change made
        through this service is seen at once).

        Raises:
            InstanceNotFound: no such instance.
        """
        cached = self._rules.get(instance_id)
        if cached is not None:
            return cached
        with self._uow(read_only=True) as uow:
            rules = self._rules_in(uow, instance_id)
        return rules

    def _rules_in(self, uow: UnitOfWork, instance_id: str) -> pol.InstanceRules:
        rules = pol.rules_of(uow.instance_policies.list(instance_id))
        self._rules.put(instance_id, rules)
        return rules

    # ------------------------------------------------------------------------------- helpers

    def _instance(self, uow: UnitOfWork, instance_id: str) -> InstanceRecord:
        record = uow.instances.get(instance_id) if isinstance(instance_id, str) else None
        if record is None:
            raise InstanceNotFound()
        return record

    def _resolve(self, uow: UnitOfWork, instance_id: str, id_or_alias: str) -> KeyRecord:
        """The key named by a UUID or an alias, in this instance."""
        if not isinstance(id_or_alias, str) or not id_or_alias:
            raise KeyNotFound()
        key_id = _key_id(id_or_alias)
        if key_id is None:
            alias = uow.aliases.get(instance_id, id_or_alias)
            if alias is None:
                raise KeyNotFound()
            key_id = alias.key_id
        record = uow.keys.get(instance_id, key_id)
        if record is None:
            raise KeyNotFound()
        return record

    def _view(self, uow: UnitOfWork, record: KeyRecord, now: datetime) -> KeyView:
        aliases = [a.alias for a in uow.aliases.list_for_key(record.instance_id, record.id)]
        policies = uow.key_policies.list_for_key(record.instance_id, record.id)
        return view_of(
            record, aliases, now, self._timers, self._policy_state(uow, record, policies, now)
        )

    @staticmethod
    def _policy_state(
        uow: UnitOfWork, record: KeyRecord, policies: Sequence[KeyPolicyRecord], now: datetime
    ) -> KeyPolicyState:
        """What a key's policy rows (and its deletion approval) mean for its representation;
        the approval is read only for keys with dual authorisation."""
        approval = None
        if any(p.policy_type == pol.DUAL_AUTH_DELETE and p.enabled for p in policies):
            found = uow.deletion_authorizations.get(record.instance_id, record.id)
            if found is not None and found.expires_at > now:
                approval = found
        return _policy_state_of(policies, approval)

    def _check_query_scope(self, uow: UnitOfWork, query: KeyQuery) -> None:
        self._instance(uow, query.instance_id)
        ring = query.key_ring_id
        if ring is not None and uow.key_rings.get(query.instance_id, ring) is None:
            raise KeyRingNotFound()
        if query.search is not None and self._search_scope_limit:
            # Only "more than the limit?" matters: stop counting just past it.
            cap = self._search_scope_limit + 1
            scope = uow.keys.count(replace(query, search=None), cap=cap)
            if scope > self._search_scope_limit:
                raise SearchTooBroad(self._search_scope_limit)

    def _forget(self, instance_id: str, key_id: str) -> None:
        """Make the unit drop cached handles of a key; a sealed unit holds none."""
        self._cache.invalidate(instance_id, key_id)
        with contextlib.suppress(UnitSealed):
            self._units.for_instance(instance_id).forget(key_id)

    def _change(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        action: Action,
        event: EventAction,
        apply: _Apply,
        *,
        detail: tuple[tuple[str, str], ...] = (),
        forget: bool = True,
    ) -> KeyView:
        """Load, check, apply, write with the expected row version, audit, commit, forget."""
        for attempt in range(self._max_attempts):
            now = self._clock.now()
            with self._uow() as uow:
                key = self._resolve(uow, instance_id, id_or_alias)
                state = effective_state(key, now)
                check_kind(key.extractable, action)
                next_state = check(state, action)
                updated = apply(uow, key, next_state, now)
                try:
                    stored = uow.keys.update(updated, key.row_version)
                    self._audit.record(
                        uow,
                        KmsEvent(
                            event,
                            instance_id,
                            key.id,
                            actor.id,
                            now,
                            from_state=int(state),
                            to_state=stored.state,
                            key_version_id=stored.current_version_id,
                            detail=detail,
                        ),
                    )
                    view = self._view(uow, stored, now)
                    uow.commit()
                except VersionConflict:
                    # Someone changed the key first (seen at the update, or at commit in stores
                    # that check there): start again from a fresh read.
                    if attempt + 1 == self._max_attempts:
                        raise
                    continue
            if forget:
                self._forget(instance_id, key.id)
            else:
                self._cache.invalidate(instance_id, key.id)
            return view
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_for_crypto(
        self, instance_id: str, id_or_alias: str, action: Action, version_ids: tuple[str, ...]
    ) -> tuple[KeyRecord, dict[str, SealedBlob], KeyUnit]:
        """Read and check the key; read the blobs of its newest version and ``version_ids``.

        Served from the :class:`~kyok.kms.cache.KeyCache` while fresh, so a key in use costs no
        database read. Blobs that do not belong to this key (another owner, not root-key
        material) are left out, so a ciphertext naming another key's version finds nothing.
        """
        now = self._clock.now()
        cached = self._cache.get(instance_id, id_or_alias)
        if cached is None:
            with self._uow(read_only=True) as uow:
                key = self._resolve(uow, instance_id, id_or_alias)
                check_kind(key.extractable, action)
                check(effective_state(key, now), action)
                wanted = list(dict.fromkeys((key.current_version_id, *version_ids)))
                found = uow.blobs.get_many(instance_id, wanted)
            blobs = {
                blob_id: _sealed(record)
                for blob_id, record in found.items()
                if record.owner_id == key.id and record.purpose == PURPOSE_ROOT_KEY
            }
            if key.current_version_id not in blobs:
                raise InternalError("the material of the key's newest version is missing")
            self._cache.put(key, id_or_alias, blobs.values())
        else:
            key, blobs = cached
            check_kind(key.extractable, action)
            check(effective_state(key, now), action)
            missing = [vid for vid in version_ids if vid not in blobs]
            if missing:
                with self._uow(read_only=True) as uow:
                    found = uow.blobs.get_many(instance_id, missing)
                more = [
                    _sealed(r)
                    for r in found.values()
                    if r.owner_id == key.id and r.purpose == PURPOSE_ROOT_KEY
                ]
                blobs.update({b.ref.id: b for b in more})
                self._cache.add_blobs(instance_id, key.id, more)
        return key, blobs, self._units.for_instance(instance_id)

    def _load_for_unwrap(
        self, instance_id: str, id_or_alias: str, action: Action, version_id: str | None
    ) -> tuple[KeyRecord, SealedBlob, SealedBlob, KeyUnit]:
        """:meth:`_load_for_crypto` for a ciphertext naming ``version_id``.

        Returns:
            ``(key, blob of version_id, blob of the newest version, unit)``.

        Raises:
            UnwrapFailed: the ciphertext names no version of this key.
        """
        wanted = () if version_id is None else (version_id,)
        key, blobs, unit = self._load_for_crypto(instance_id, id_or_alias, action, wanted)
        source = None if version_id is None else blobs.get(version_id)
        if source is None:
            raise UnwrapFailed()
        return key, source, blobs[key.current_version_id], unit

    def _expire_one(self, instance_id: str, key_id: str, now: datetime) -> bool:
        """Write state 3 for one key whose expiration has passed; False if nothing to do."""
        for _ in range(self._max_attempts):
            with self._uow() as uow:
                key = uow.keys.get(instance_id, key_id)
                if key is None or key.expires_at is None or key.expires_at > now:
                    return False
                stored_state = stored_state_of(key)
                if stored_state not in EXPIRABLE_STATES:
                    return False
                next_state = check(stored_state, Action.EXPIRE)
                updated = replace(key, state=int(next_state), updated_at=now, last_action_at=now)
                try:
                    uow.keys.update(updated, key.row_version)
                    event = KmsEvent(
                        EventAction.KEY_EXPIRE,
                        instance_id,
                        key_id,
                        SYSTEM.id,
                        now,
                        from_state=int(stored_state),
                        to_state=int(next_state),
                    )
                    self._audit.record(uow, event)
                    uow.commit()
                except VersionConflict:
                    continue
            self._forget(instance_id, key_id)
            return True
        return False

    def _purge(
        self,
        actor: Principal,
        instance_id: str,
        id_or_alias: str,
        *,
        enforce_delay: bool,
        now: datetime | None = None,
    ) -> KeyView:
        for attempt in range(self._max_attempts):
            when = now or self._clock.now()
            with self._uow() as uow:
                key = self._resolve(uow, instance_id, id_or_alias)
                state = effective_state(key, when)
                check(state, Action.PURGE)
                deleted_at = key.deleted_at or key.last_action_at
                if enforce_delay and when < deleted_at + self._timers.purge_after:
                    raise PurgeTooEarly()
                view = self._view(uow, key, when)
                try:
                    # Claim the row first: a concurrent restore makes this fail instead of the
                    # purge deleting a key that is active again.
                    uow.keys.update(replace(key, updated_at=when), key.row_version)
                    uow.aliases.delete_for_key(instance_id, key.id)
                    uow.key_policies.delete_for_key(instance_id, key.id)
                    uow.deletion_authorizations.delete(instance_id, key.id)
                    uow.registrations.delete_for_key(instance_id, key.id)
                    uow.blobs.delete_for_owner(instance_id, key.id)
                    uow.versions.delete_for_key(instance_id, key.id)
                    uow.keys.delete(instance_id, key.id)
                    event = KmsEvent(
                        EventAction.KEY_PURGE,
                        instance_id,
                        key.id,
                        actor.id,
                        when,
                        from_state=int(state),
                        to_state=None,
                        detail=(("automatic", str(not enforce_delay).lower()),),
                    )
                    self._audit.record(uow, event)
                    uow.commit()
                except VersionConflict:
                    if attempt + 1 == self._max_attempts:
                        raise
                    continue
            self._forget(instance_id, key.id)
            return view
        raise AssertionError("unreachable")  # pragma: no cover


def _to_state(uow: UnitOfWork, key: KeyRecord, state: KeyState, now: datetime) -> KeyRecord:
    """The plain state change: new state, updated now, last action now."""
    return replace(key, state=int(state), updated_at=now, last_action_at=now)


def _policy_state_of(
    policies: Sequence[KeyPolicyRecord], approval: DeletionAuthorizationRecord | None
) -> KeyPolicyState:
    """A key's policy rows and its valid deletion approval (if any), as its view shows them."""
    if not policies:
        return NO_POLICIES
    rotation = next((p for p in policies if p.policy_type == pol.ROTATION), None)
    dual = any(p.policy_type == pol.DUAL_AUTH_DELETE and p.enabled for p in policies)
    return KeyPolicyState(
        rotation_enabled=rotation is not None and rotation.enabled,
        rotation_months=rotation.interval_months if rotation is not None else None,
        dual_auth_delete=dual,
        set_for_deletion=approval is not None,
        auth_expires_at=approval.expires_at if approval is not None else None,
    )


#: A due rotation that could not run is tried again this much later.
_RETRY_ROTATION = timedelta(days=1)


def _require_service(actor: Principal) -> None:
    if actor.kind is not PrincipalKind.SERVICE:
        raise ServiceOnly()


def _policy_detail(spec: pol.KeyPolicySpec) -> tuple[tuple[str, str], ...]:
    detail: list[tuple[str, str]] = []
    if spec.dual_auth_delete is not None:
        detail.append(("dual_auth_delete", str(spec.dual_auth_delete).lower()))
    if spec.rotation_enabled is not None:
        detail.append(("rotation", str(spec.rotation_enabled).lower()))
        if spec.interval_months is not None:
            detail.append(("interval_month", str(spec.interval_months)))
    return tuple(detail)


class _RulesCache:
    """Instance rules for up to ``ttl`` seconds (the allowed-IP check runs on every request)."""

    def __init__(self, ttl: float = 1.0) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, pol.InstanceRules]] = {}

    def get(self, instance_id: str) -> pol.InstanceRules | None:
        entry = self._entries.get(instance_id)
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return None
        return entry[1]

    def put(self, instance_id: str, rules: pol.InstanceRules) -> None:
        self._entries[instance_id] = (time.monotonic(), rules)

    def invalidate(self, instance_id: str) -> None:
        self._entries.pop(instance_id, None)
