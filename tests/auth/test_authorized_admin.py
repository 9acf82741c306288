"""Outside dev mode, an administrator credential exists only because the unit's administrators
signed an ``authorize_admin`` command; it is made once and leaves sealed to the requester."""

from __future__ import annotations

import pytest

from auth_kit import AuthHarness, bearer
from ceremony_kit import ceremony, command, imprint, make_custodians
from kyok.auth.principals import SYSTEM
from kyok.auth.service import open_admin_credential
from kyok.crypto.encoding import b64e
from kyok.crypto.errors import InvalidCiphertext
from kyok.crypto.kem import HybridPrivateKey
from kyok.errors import Conflict, Forbidden
from kyok.unit.commands import Command
from kyok.unit.errors import CeremonyRejected


def shares_instance(harness: AuthHarness) -> tuple[str, object, list[object]]:
    instance = harness.kms.create_instance(SYSTEM, "production", seal="shares").id
    unit = harness.units.for_instance(instance)
    custodians = make_custodians(3)
    imprint(unit, custodians, 2, 2)
    ceremony(unit, custodians, "shamir", 2, custodians[:2])
    return instance, unit, custodians


def authorize(
    unit: object, custodians: list[object], name: str, recipient: HybridPrivateKey, signers: int = 2
) -> int:
    args = {"principal": name, "recipient": b64e(recipient.public_key().to_bytes())}
    cmd = command(unit, Command.AUTHORIZE_ADMIN, args, custodians[:signers])  # type: ignore[arg-type]
    unit.submit(cmd)  # type: ignore[attr-defined]
    return cmd.seq


def test_the_operator_cannot_bootstrap_outside_dev_mode(harness: AuthHarness) -> None:
    instance, _, _ = shares_instance(harness)
    with pytest.raises(Forbidden, match="authorize_admin"):
        harness.auth.bootstrap_admin(instance)


def test_an_authorized_credential_is_made_once_and_only_its_requester_reads_it(
    harness: AuthHarness,
) -> None:
    instance, unit, custodians = shares_instance(harness)
    requester = HybridPrivateKey.generate()
    seq = authorize(unit, custodians, "ops-admin", requester)
    principal_id, sealed = harness.auth.authorized_admin(instance, seq)
    api_key = open_admin_credential(requester, sealed, instance, seq)
    ctx = harness.auth.authenticate(bearer(harness.auth.issue_token(api_key)), instance)
    assert ctx.principal.id == principal_id and {g.role.value for g in ctx.grants} >= {
        "Manager",
        "KyokInstanceAdmin",
    }
    with pytest.raises(InvalidCiphertext):
        open_admin_credential(HybridPrivateKey.generate(), sealed, instance, seq)
    with pytest.raises(Conflict):
        harness.auth.authorized_admin(instance, seq)  # used up
    assert unit.state.admin_authorizations == ()  # type: ignore[attr-defined]


def test_a_taken_name_leaves_the_authorization_unused(harness: AuthHarness) -> None:
    instance, unit, custodians = shares_instance(harness)
    first = authorize(unit, custodians, "ops-admin", HybridPrivateKey.generate())
    harness.auth.authorized_admin(instance, first)
    second = authorize(unit, custodians, "ops-admin", HybridPrivateKey.generate())
    with pytest.raises(Conflict, match="exists"):
        harness.auth.authorized_admin(instance, second)
    assert [a[0] for a in unit.state.admin_authorizations] == [second]  # type: ignore[attr-defined]


def test_authorization_needs_the_signature_threshold_and_a_master_key(harness: AuthHarness) -> None:
    _, unit, custodians = shares_instance(harness)
    with pytest.raises(CeremonyRejected, match="needs 2"):
        authorize(unit, custodians, "lone-admin", HybridPrivateKey.generate(), signers=1)
    bad = {"principal": "x-admin", "recipient": b64e(b"not a key")}
    with pytest.raises(CeremonyRejected, match="recipient"):
        unit.submit(command(unit, Command.AUTHORIZE_ADMIN, bad, custodians[:2]))  # type: ignore[arg-type,attr-defined]
    fresh = harness.kms.create_instance(SYSTEM, "no key yet", seal="shares").id
    fresh_unit = harness.units.for_instance(fresh)
    cs = make_custodians(2)
    imprint(fresh_unit, cs, 2, 2)
    with pytest.raises(CeremonyRejected, match="active master key"):
        authorize(fresh_unit, cs, "early-admin", HybridPrivateKey.generate())
