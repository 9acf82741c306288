"""Import tokens, token imports (BYOK), key and instance policies, dual-authorisation deletion,
sync and registrations: the SDK against the real server (a dev node under uvicorn in a thread)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kyok.client import BadRequest, Conflict, KyokClient, byok
from live_server import LiveServer, dev_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dev_server(
        tmp_path_factory.mktemp("kyok-import-live"), **{"timers.sync_interval": "0s"}
    ) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[KyokClient]:
    with KyokClient(live.url, live.instance_id, api_key=live.api_key) as client:
        yield client


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _round_trip(kms: KyokClient, key_id: str) -> str:
    dek = os.urandom(32)
    wrapped = kms.wrap(key_id, dek, aad=["byok"])
    assert kms.unwrap(key_id, wrapped.ciphertext, aad=["byok"]).plaintext == dek
    return wrapped.ciphertext


# ---------------------------------------------------------------- import tokens


def test_token_lifecycle(admin: KyokClient) -> None:
    created = admin.create_import_token(expiration=900, max_retrievals=2)
    assert created.max_allowed_retrievals == 2 and created.remaining_retrievals == 2
    assert created.expiration_date is not None and created.creation_date is not None
    assert created.expiration_date - created.creation_date == timedelta(seconds=900)
    assert not created.retrieved

    first = admin.get_import_token()
    assert first.retrieved and first.remaining_retrievals == 1
    assert first.public_key_pem is not None and b"PUBLIC KEY" in first.public_key_pem
    byok.decode_token_payload(first.properties["payload"])  # a PEM RSA key of ≥ 2048 bits
    assert first.nonce is not None and len(first.nonce) == 12
    assert first.hybrid_public_key is not None
    assert admin.get_import_token().remaining_retrievals == 0
    with pytest.raises(Conflict) as info:
        admin.get_import_token()
    assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"

    # retrievals used up: the token retrieved earlier still imports until it expires
    key = admin.import_root_key(_name("spent"), os.urandom(32), token=first)
    assert key.imported is True


def test_bad_token_values_are_refused(admin: KyokClient) -> None:
    with pytest.raises(BadRequest):
        admin.create_import_token(expiration=10)
    with pytest.raises(BadRequest):
        admin.create_import_token(max_retrievals=501)


# ---------------------------------------------------------------- token imports


@pytest.mark.parametrize(
    ("algorithm", "nonce_mode", "size"),
    [
        (byok.ALG_OAEP_SHA256, "gcm", 32),
        (byok.ALG_OAEP_SHA1, "gcm", 24),
        (byok.ALG_OAEP_SHA1, "cbc", 16),
        (byok.ALG_HYBRID, "gcm", 32),
    ],
)
def test_import_then_wrap_and_unwrap(
    admin: KyokClient, algorithm: str, nonce_mode: str, size: int
) -> None:
    alias = _name("byok")
    key = admin.import_root_key(
        _name("imported"),
        os.urandom(size),
        algorithm=algorithm,
        nonce_mode=nonce_mode,
        aliases=[alias],
        description="brought",
    )
    assert key.imported is True and key.extractable is False and key.state == 1
    assert key.aliases == (alias,) and key.description == "brought"
    _round_trip(admin, alias)


def test_import_creates_a_token_when_none_is_usable(admin: KyokClient) -> None:
    admin.create_import_token(max_retrievals=1)
    admin.get_import_token()  # used up
    key = admin.import_root_key(_name("fresh-token"), os.urandom(32))
    assert key.imported is True
    with pytest.raises(Conflict):
        admin.get_import_token()  # the new token's one retrieval went to the import
    with pytest.raises(Conflict) as info:
        admin.import_root_key(_name("no-token"), os.urandom(32), create_token=False)
    assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"


def test_a_wrong_nonce_is_refused(admin: KyokClient) -> None:
    admin.create_import_token()
    token = admin.get_import_token()
    admin.create_import_token()  # replaces `token`
    other = admin.get_import_token()
    assert token.nonce != other.nonce
    with pytest.raises(BadRequest):
        admin.import_root_key(_name("stale"), os.urandom(32), token=token)


# ---------------------------------------------------------------- rotation with new material


def test_rotate_an_imported_key_through_a_token(admin: KyokClient) -> None:
    key = admin.import_root_key(_name("rotating"), os.urandom(32))
    before = _round_trip(admin, key.id)
    admin.rotate_key(key.id, material=os.urandom(32), via_token=True)
    after = admin.get_key_metadata(key.id)
    assert after.key_version is not None and key.key_version is not None
    assert after.key_version.id != key.key_version.id
    old = admin.unwrap(key.id, before, aad=["byok"])
    assert old.is_stale and old.rewrapped_key_version_id == after.key_version.id
    _round_trip(admin, key.id)
    admin.rotate_key(
        key.id,
        material=os.urandom(16),
        via_token=True,
        algorithm=byok.ALG_OAEP_SHA1,
        nonce_mode="cbc",
    )
    admin.rotate_key(key.id, material=os.urandom(24))  # in plain, as before
    assert len(admin.list_key_versions(key.id)) == 4
    assert admin.unwrap(key.id, before, aad=["byok"]).plaintext
    with pytest.raises(BadRequest):
        admin.rotate_key(key.id)  # an imported key needs new material


# ---------------------------------------------------------------- the token expires


def test_an_expired_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        dev_server(tmp_path / "expiry") as server,
        KyokClient(server.url, server.instance_id, api_key=server.api_key) as kms,
    ):
        kms.create_import_token(expiration=300)
        token = kms.get_import_token()
        clock = server.node.clock
        real_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=301))
        with pytest.raises(Conflict) as info:
            kms.import_root_key(_name("late"), os.urandom(32), token=token)
        assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"
        with pytest.raises(Conflict):
            kms.import_root_key(_name("late"), os.urandom(32), create_token=False)
        assert kms.import_root_key(_name("renewed"), os.urandom(32)).imported is True


# ---------------------------------------------------------------- key policies


def test_key_policies(admin: KyokClient) -> None:
    key = admin.create_key(_name("policied"))
    assert len(admin.get_key_policies(key.id)) == 0
    policies = admin.set_key_policies(key.id, rotation_months=3)
    assert policies.rotation is not None and policies.rotation.enabled
    assert policies.rotation.interval_months == 3
    policies = admin.set_key_policies(key.id, rotation_enabled=False, dual_auth_delete=True)
    assert policies.rotation is not None and not policies.rotation.enabled
    assert policies.dual_auth_delete is not None and policies.dual_auth_delete.enabled
    got = admin.get_key_policies(key.id)
    assert got.dual_auth_delete is not None and got.dual_auth_delete.enabled
    only = admin.get_key_policies(key.id, policy_type="dualAuthDelete")
    assert only.rotation is None and only.dual_auth_delete is not None
    with pytest.raises((BadRequest, Conflict)):
        admin.set_key_policies(key.id, dual_auth_delete=False)  # cannot be undone
    with pytest.raises(BadRequest):
        admin.set_key_policies(key.id, rotation_months=13)


def test_imported_keys_do_not_rotate_automatically(admin: KyokClient) -> None:
    key = admin.import_root_key(_name("no-auto"), os.urandom(32))
    with pytest.raises(BadRequest):
        admin.set_key_policies(key.id, rotation_months=1)


def test_create_with_policy_overrides(admin: KyokClient) -> None:
    key = admin.create_key(_name("override"), rotation_months=2, dual_auth_delete=True)
    policies = admin.get_key_policies(key.id)
    assert policies.rotation is not None and policies.rotation.interval_months == 2
    assert policies.dual_auth_delete is not None and policies.dual_auth_delete.enabled


# ---------------------------------------------------------------- dual authorisation


def test_dual_authorisation_deletion(admin: KyokClient, live: LiveServer) -> None:
    key = admin.create_key(_name("two-person"))
    with pytest.raises(Conflict) as info:
        admin.set_key_for_deletion(key.id)
    assert info.value.code == "NOT_DUAL_AUTH_ERR"
    admin.set_key_policies(key.id, dual_auth_delete=True)
    with pytest.raises(Conflict):
        admin.delete_key(key.id)  # no approval yet
    admin.set_key_for_deletion(key.id)
    admin.unset_key_for_deletion(key.id)
    admin.set_key_for_deletion(key.id)
    with pytest.raises(Conflict):
        admin.delete_key(key.id)  # the approver cannot also be the deleter

    bob = admin.create_principal(_name("bob"))
    admin.grant_role(bob.id, "Manager")
    secret = admin.create_api_key(bob.id, "bob").secret
    assert secret is not None
    with KyokClient(live.url, live.instance_id, api_key=secret) as other:
        assert other.delete_key(key.id).state == 5


# ---------------------------------------------------------------- instance policies


def test_instance_policies(admin: KyokClient) -> None:
    admin.set_instance_policy("rotation", True, {"interval_month": 4})
    try:
        (rotation,) = admin.get_instance_policies("rotation")
        assert rotation.enabled and rotation.attributes["interval_month"] == 4
        assert "rotation" in {p.policy_type for p in admin.get_instance_policies()}
    finally:
        admin.set_instance_policy("rotation", False)
    (rotation,) = admin.get_instance_policies("rotation")
    assert not rotation.enabled and not rotation.attributes
    with pytest.raises(BadRequest):
        admin.set_instance_policy("rotation", True, {"interval_month": 13})
    with pytest.raises(BadRequest):
        admin.set_instance_policy("noSuchPolicy", True)


def test_enforce_token_refuses_plain_imports(admin: KyokClient) -> None:
    admin.set_instance_policy("keyCreateImportAccess", True, {"enforce_token": True})
    try:
        with pytest.raises(Conflict) as info:
            admin.create_key(_name("plain"), material=os.urandom(32))
        assert info.value.code == "KEY_CREATE_IMPORT_ACCESS_ERR"
        assert admin.import_root_key(_name("sealed"), os.urandom(32)).imported is True
    finally:
        admin.set_instance_policy("keyCreateImportAccess", False)
    assert admin.create_key(_name("plain"), material=os.urandom(32)).imported is True


# ---------------------------------------------------------------- sync and registrations


def test_sync_and_registrations(admin: KyokClient) -> None:
    key = admin.create_key(_name("synced"))
    admin.sync_key(key.id)
    page = admin.list_registrations(key.id, total_count=True)
    assert len(page) == 0
    everything = admin.list_registrations(crn_query="crn:v1:*", prevent_key_deletion=False)
    assert all(r.key_id for r in everything)
