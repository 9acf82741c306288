"""Bring your own key through an import token (reference §5), at the service.

Key material is made here with ``os.urandom`` and encrypted with ``cryptography`` directly, as a
customer's HSM script would; a DEK that kyok wraps under the imported key is then unwrapped
outside kyok with the raw key alone (tests/outside_kyok.py imports no kyok code).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kyok.auth.principals import Principal
from kyok.client.byok import seal_for_import
from kyok.clock import FakeClock
from kyok.kms import policies as pol
from kyok.kms.errors import (
    BadBody,
    CreateImportForbidden,
    ImportTokenExpired,
    IncorrectNonce,
    IncorrectNonceIv,
    InvalidField,
    PayloadNotAllowed,
)
from kyok.kms.imports import ImportTokenService, ImportTokenView, validate_wrapped
from kyok.kms.service import KeyService
from kyok.store.records import KeyQuery
from kyok.unit.imports import WrappedImport
from outside_kyok import unwrap_outside, version_named

from .conftest import UnitsHarness
from .fakes import RecordingAuditSink

SHA256 = "RSAES_OAEP_SHA_256"
SHA1 = "RSAES_OAEP_SHA_1"
HYBRID = "KYOK_HYBRID_MLKEM768_X25519"


@pytest.fixture
def tokens(
    store: Any, units: UnitsHarness, clock: FakeClock, audit: RecordingAuditSink
) -> ImportTokenService:
    # 2048-bit RSA keeps the suite fast; the server uses 4096 (settings).
    return ImportTokenService(store.uow, units.directory, clock, audit=audit, rsa_bits=2048)


def _oaep(digest: hashes.HashAlgorithm) -> asym.OAEP:
    return asym.OAEP(mgf=asym.MGF1(digest), algorithm=digest, label=None)


def encrypt_for(
    token: ImportTokenView,
    material: bytes,
    algorithm: str = SHA256,
    *,
    cbc: bool = False,
    nonce: bytes | None = None,
    nonce_key: bytes | None = None,
) -> WrappedImport:
    """What a customer sends: K under the token's public key, the nonce under K."""
    nonce = token.nonce if nonce is None else nonce
    nonce_key = material if nonce_key is None else nonce_key
    if algorithm == HYBRID:
        fields = seal_for_import(
            material, nonce, hybrid_public_key=token.hybrid_public_key, algorithm=HYBRID
        )
        payload = _b64d(fields.payload)
    else:
        public = serialization.load_pem_public_key(token.public_key_pem)
        assert isinstance(public, rsa.RSAPublicKey)
        digest: hashes.HashAlgorithm = hashes.SHA1() if algorithm == SHA1 else hashes.SHA256()
        payload = public.encrypt(material, _oaep(digest))
    if cbc:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(nonce) + padder.finalize()
        encryptor = Cipher(algorithms.AES(nonce_key), modes.CBC(iv)).encryptor()
        encrypted = encryptor.update(padded) + encryptor.finalize()
    else:
        iv = os.urandom(12)
        encrypted = AESGCM(nonce_key).encrypt(iv, nonce, None)
    return validate_wrapped(payload, encrypted, iv, algorithm)


def _b64d(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


@dataclass
class Counts:
    keys: int
    blobs: int


def counts(service: KeyService, store: Any, instance: str) -> Counts:
    """Keys (any state) and key-material blobs of the instance."""
    keys = service.count_keys(KeyQuery(instance, states=frozenset({0, 1, 2, 3, 5})))
    with store.uow(read_only=True) as uow:
        found = uow.keys.find(KeyQuery(instance, states=frozenset({0, 1, 2, 3, 5}), limit=5000))
        blobs = sum(
            1
            for k in found
            for v in uow.versions.list_for_key(instance, k.id, 5000, 0)
            if uow.blobs.get(instance, v.id) is not None
        )
    return Counts(keys, blobs)


# ---------------------------------------------------------------------------- tokens


def test_token_defaults_and_retrievals(
    tokens: ImportTokenService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    made = tokens.create(actor, instance)
    record = made.record
    assert record.expires_at - record.created_at == timedelta(seconds=600)
    assert (record.max_retrievals, record.remaining_retrievals) == (1, 1)
    assert not made.retrieved
    got = tokens.retrieve(actor, instance)
    assert got.retrieved and got.record.remaining_retrievals == 0
    assert got.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(got.nonce) == 12 and got.nonce == record.nonce
    with pytest.raises(ImportTokenExpired, match="no retrievals left"):
        tokens.retrieve(actor, instance)


def test_token_expires(
    tokens: ImportTokenService, actor: Principal, instance: str, clock: FakeClock
) -> None:
    tokens.create(actor, instance, expiration=300, max_retrievals=5)
    tokens.retrieve(actor, instance)
    clock.advance(timedelta(seconds=300))
    with pytest.raises(ImportTokenExpired):
        tokens.retrieve(actor, instance)


def test_no_token(tokens: ImportTokenService, actor: Principal, instance: str) -> None:
    with pytest.raises(ImportTokenExpired, match="create one first"):
        tokens.retrieve(actor, instance)


@pytest.mark.parametrize(
    ("kwargs", "target"),
    [
        ({"expiration": 299}, "expiration"),
        ({"expiration": 86_401}, "expiration"),
        ({"expiration": True}, "expiration"),
        ({"max_retrievals": 0}, "max_retrievals"),
        ({"max_retrievals": 501}, "max_retrievals"),
    ],
)
def test_token_bounds(
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    kwargs: dict[str, Any],
    target: str,
) -> None:
    with pytest.raises(InvalidField) as caught:
        tokens.create(actor, instance, **kwargs)
    assert caught.value.target == target


def test_new_token_replaces_and_destroys_the_old(
    tokens: ImportTokenService, actor: Principal, instance: str, store: Any
) -> None:
    first = tokens.create(actor, instance, max_retrievals=3)
    second = tokens.create(actor, instance)
    assert first.record.id != second.record.id
    with store.uow(read_only=True) as uow:
        assert uow.blobs.get(instance, f"import-token:{first.record.id}") is None
        assert uow.blobs.get(instance, f"import-token:{second.record.id}") is not None
        token = uow.import_tokens.get(instance)
        assert token is not None and token.id == second.record.id


def test_expired_tokens_are_removed_with_their_keys(
    tokens: ImportTokenService, actor: Principal, instance: str, store: Any, clock: FakeClock
) -> None:
    made = tokens.create(actor, instance)
    assert tokens.expire_due() == 0
    clock.advance(timedelta(seconds=601))
    assert tokens.expire_due() == 1
    with store.uow(read_only=True) as uow:
        assert uow.import_tokens.get(instance) is None
        assert uow.blobs.get(instance, f"import-token:{made.record.id}") is None


# ---------------------------------------------------------------------------- imports


@pytest.mark.parametrize(
    ("algorithm", "cbc", "size"),
    [
        (SHA256, False, 32),
        (SHA256, False, 16),
        (SHA1, False, 24),
        (SHA1, True, 32),
        (HYBRID, False, 32),
    ],
)
def test_import_then_unwrap_outside_kyok(
    service: KeyService,
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    algorithm: str,
    cbc: bool,
    size: int,
) -> None:
    tokens.create(actor, instance)
    token = tokens.retrieve(actor, instance)
    material = os.urandom(size)
    key = service.create_key(
        actor, instance, "byok", wrapped=encrypt_for(token, material, algorithm, cbc=cbc)
    )
    assert key.record.imported and key.record.bit_length == size * 8
    wrapped = service.wrap(instance, key.id, aad=["tenant=acme"])
    assert unwrap_outside(material, wrapped.ciphertext, ["tenant=acme"]) == wrapped.dek
    assert service.unwrap(instance, key.id, wrapped.ciphertext, ["tenant=acme"]).plaintext == (
        wrapped.dek
    )


def test_rotation_with_new_material_through_a_token(
    service: KeyService,
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    clock: FakeClock,
) -> None:
    tokens.create(actor, instance, max_retrievals=2)
    token = tokens.retrieve(actor, instance)
    first, second = os.urandom(32), os.urandom(32)
    key = service.create_key(actor, instance, "byok", wrapped=encrypt_for(token, first))
    old = service.wrap(instance, key.id)
    with pytest.raises(PayloadNotAllowed):
        generated = service.create_key(actor, instance, "generated")
        service.rotate(actor, instance, generated.id, wrapped=encrypt_for(token, second))
    rotated = service.rotate(actor, instance, key.id, wrapped=encrypt_for(token, second))
    assert rotated.version_id != key.version_id
    new = service.wrap(instance, key.id)
    assert version_named(new.ciphertext) == rotated.version_id
    assert unwrap_outside(second, new.ciphertext) == new.dek
    # The old ciphertext still unwraps, comes back under the new version, and that one opens
    # with the new raw key outside kyok.
    result = service.unwrap(instance, key.id, old.ciphertext)
    assert result.plaintext == old.dek and result.rewrapped is not None
    assert unwrap_outside(second, result.rewrapped) == old.dek


def _assert_refused(
    service: KeyService,
    store: Any,
    instance: str,
    error: type[Exception],
    make: Callable[[], object],
) -> None:
    before = counts(service, store, instance)
    with pytest.raises(error):
        make()
    assert counts(service, store, instance) == before


def test_every_import_failure_creates_nothing(
    service: KeyService,
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    store: Any,
    clock: FakeClock,
) -> None:
    tokens.create(actor, instance, max_retrievals=5)
    token = tokens.retrieve(actor, instance)
    material = os.urandom(32)
    refused = lambda error, make: _assert_refused(service, store, instance, error, make)  # noqa: E731

    # The nonce encrypted under other material: it does not open.
    other = os.urandom(32)
    refused(
        IncorrectNonceIv,
        lambda: service.create_key(
            actor, instance, "key-k", wrapped=encrypt_for(token, material, nonce_key=other)
        ),
    )
    # The right key, but not the token's nonce.
    refused(
        IncorrectNonce,
        lambda: service.create_key(
            actor, instance, "key-k", wrapped=encrypt_for(token, material, nonce=os.urandom(12))
        ),
    )
    # Material of a length no AES key has (the nonce step needs an AES key: use a good one).
    for size in (15, 31, 33, 64):
        wrong = os.urandom(size)
        good = encrypt_for(token, material)
        public = serialization.load_pem_public_key(token.public_key_pem)
        assert isinstance(public, rsa.RSAPublicKey)
        bad = WrappedImport(
            SHA256, public.encrypt(wrong, _oaep(hashes.SHA256())), good.encrypted_nonce, good.iv
        )
        refused(
            InvalidField, lambda bad=bad: service.create_key(actor, instance, "key-k", wrapped=bad)
        )
    # A payload that is not for this token's key.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    good = encrypt_for(token, material)
    forged = WrappedImport(
        SHA256, stranger.encrypt(material, _oaep(hashes.SHA256())), good.encrypted_nonce, good.iv
    )
    refused(InvalidField, lambda: service.create_key(actor, instance, "key-k", wrapped=forged))
    # The right payload under the wrong algorithm name.
    swapped = WrappedImport(SHA1, good.payload, good.encrypted_nonce, good.iv)
    refused(InvalidField, lambda: service.create_key(actor, instance, "key-k", wrapped=swapped))
    # A standard key cannot come through a token.
    refused(
        BadBody,
        lambda: service.create_key(
            actor, instance, "key-k", extractable=True, wrapped=encrypt_for(token, material)
        ),
    )
    # The token expired.
    clock.advance(timedelta(seconds=601))
    refused(
        ImportTokenExpired,
        lambda: service.create_key(actor, instance, "key-k", wrapped=encrypt_for(token, material)),
    )


def test_no_token_at_all(
    service: KeyService,
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    store: Any,
) -> None:
    other = service.create_instance(actor, "other").id
    tokens.create(actor, other)
    token = tokens.retrieve(actor, other)  # another instance's token is no use here
    _assert_refused(
        service,
        store,
        instance,
        ImportTokenExpired,
        lambda: service.create_key(
            actor, instance, "key-k", wrapped=encrypt_for(token, os.urandom(32))
        ),
    )


@pytest.mark.parametrize(
    ("payload", "nonce", "iv", "algorithm", "error", "target"),
    [
        (b"p", b"n", None, None, BadBody, None),
        (b"p", None, b"i", None, BadBody, None),
        (b"", b"n", b"i", None, InvalidField, "material"),
        (b"p", b"n", b"i", "AES_KW", InvalidField, "encryption_algorithm"),
        (b"p" * 5000, b"n", b"i", None, InvalidField, "material"),
    ],
)
def test_wrapped_fields_are_validated(
    payload: bytes,
    nonce: bytes | None,
    iv: bytes | None,
    algorithm: str | None,
    error: type[Exception],
    target: str | None,
) -> None:
    with pytest.raises(error) as caught:
        validate_wrapped(payload, nonce, iv, algorithm)
    assert getattr(caught.value, "target", None) == target


def test_default_algorithm_is_oaep_sha256() -> None:
    assert validate_wrapped(b"p", b"n", b"i", None).algorithm == SHA256


# ---------------------------------------------------------------------------- create/import access


def _access(service: KeyService, actor: Principal, instance: str, **attributes: bool) -> None:
    spec = pol.validate_instance_policy("keyCreateImportAccess", True, attributes)
    service.set_instance_policies(actor, instance, [spec])


@pytest.mark.parametrize(
    ("attribute", "extractable", "plain_material"),
    [
        ("create_root_key", False, False),
        ("create_standard_key", True, False),
        ("import_root_key", False, True),
        ("import_standard_key", True, True),
    ],
)
def test_create_import_access_refuses_each_kind(
    service: KeyService,
    actor: Principal,
    instance: str,
    store: Any,
    attribute: str,
    extractable: bool,
    plain_material: bool,
) -> None:
    _access(service, actor, instance, **{attribute: False})
    material = os.urandom(32) if plain_material else None
    _assert_refused(
        service,
        store,
        instance,
        CreateImportForbidden,
        lambda: service.create_key(
            actor, instance, "key-k", extractable=extractable, material=material
        ),
    )
    # The other kinds still work.
    service.create_key(actor, instance, "ok", extractable=not extractable, material=material)


def test_enforce_token_refuses_plain_imports_only(
    service: KeyService,
    tokens: ImportTokenService,
    actor: Principal,
    instance: str,
    store: Any,
) -> None:
    _access(service, actor, instance, enforce_token=True)
    _assert_refused(
        service,
        store,
        instance,
        CreateImportForbidden,
        lambda: service.create_key(actor, instance, "key-k", material=os.urandom(32)),
    )
    tokens.create(actor, instance)
    token = tokens.retrieve(actor, instance)
    key = service.create_key(actor, instance, "key-k", wrapped=encrypt_for(token, os.urandom(32)))
    with pytest.raises(CreateImportForbidden):
        service.rotate(actor, instance, key.id, material=os.urandom(32))
    service.create_key(actor, instance, "generated")  # generating is not importing


def test_disabled_access_policy_allows_everything(
    service: KeyService, actor: Principal, instance: str
) -> None:
    _access(service, actor, instance, create_root_key=False)
    off = pol.validate_instance_policy("keyCreateImportAccess", False, None)
    service.set_instance_policies(actor, instance, [off])
    service.create_key(actor, instance, "key-k")
