"""The hash chain and signed checkpoints, built with a real Ed25519 key."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import timedelta

import pytest

from kyok.audit import (
    Chain,
    ChainedEvent,
    ChainHead,
    Checkpoint,
    CheckpointPolicy,
    KeySigner,
    entry_hash,
    genesis_hash,
    make_checkpoint,
)
from kyok.crypto.encoding import lp
from kyok.crypto.errors import InvalidSignature
from kyok.crypto.sign import SignatureAlgorithm, SigningKey

from ._kit import INSTANCE_A, INSTANCE_B, T0, make_event


def test_hash_construction_byte_by_byte() -> None:
    e = make_event(INSTANCE_A, 0)
    g = hashlib.sha256(b"kyok/audit/genesis/v1" + lp(INSTANCE_A.encode())).digest()
    assert genesis_hash(INSTANCE_A) == g
    body = e.canonical_bytes()
    expected = hashlib.sha256(
        b"kyok/audit/v1" + len(g).to_bytes(4, "big") + g + len(body).to_bytes(4, "big") + body
    ).digest()
    assert entry_hash(g, e) == expected


def test_genesis_differs_per_instance() -> None:
    assert genesis_hash(INSTANCE_A) != genesis_hash(INSTANCE_B)
    assert len(genesis_hash(INSTANCE_A)) == 32


def test_chain_links_every_event() -> None:
    chain = Chain.new(INSTANCE_A)
    out = [chain.append(make_event(INSTANCE_A, i)) for i in range(5)]
    assert out[0].prev_hash == genesis_hash(INSTANCE_A)
    for before, after in itertools.pairwise(out):
        assert after.prev_hash == before.hash
    assert all(c.hash_ok() for c in out)
    assert chain.head == ChainHead(INSTANCE_A, 5, out[-1].hash)
    assert chain.head.last_seq == 4
    resumed = Chain.resume(out[-1])
    assert resumed.head == chain.head
    for c in out:
        assert ChainedEvent.from_json(c.to_json()) == c


def test_chain_refuses_wrong_seq_and_instance() -> None:
    chain = Chain.new(INSTANCE_A)
    with pytest.raises(ValueError, match="expected seq 0"):
        chain.append(make_event(INSTANCE_A, 1))
    with pytest.raises(ValueError, match="another instance"):
        chain.append(make_event(INSTANCE_B, 0))
    assert chain.next_seq == 0
    assert chain.append(make_event(INSTANCE_A, 9), renumber=True).seq == 0


def test_group_commit_prepare_then_advance() -> None:
    chain = Chain.new(INSTANCE_A)
    chain.append(make_event(INSTANCE_A, 0))
    before = chain.head
    batch, new_head = chain.prepare([make_event(INSTANCE_A, 0) for _ in range(3)])
    assert [c.seq for c in batch] == [1, 2, 3]
    assert chain.head == before  # nothing moved until the batch is committed
    chain.advance(before, new_head)
    assert chain.head == new_head and chain.next_seq == 4
    with pytest.raises(ValueError, match="moved"):
        chain.advance(before, new_head)  # a second committer with a stale head


def test_checkpoint_signs_and_verifies(signer: KeySigner, other_signer: KeySigner) -> None:
    chain = Chain.new(INSTANCE_A)
    last = [chain.append(make_event(INSTANCE_A, i)) for i in range(3)][-1]
    cp = make_checkpoint(signer, last, issued_at=T0)
    assert (cp.seq, cp.head_hash, cp.instance_id) == (2, last.hash, INSTANCE_A)
    assert cp.key_id == signer.public_key().fingerprint and cp.algorithm == "ed25519"
    assert cp.message().startswith(b"kyok/audit-checkpoint/v1{")
    cp.verify(signer.public_key())
    assert Checkpoint.from_json(cp.to_json()) == cp
    with pytest.raises(InvalidSignature):
        cp.verify(other_signer.public_key())
    for change in ({"seq": 1}, {"head_hash": bytes(32)}, {"issued_at": T0 + timedelta(1)}):
        with pytest.raises(InvalidSignature):
            dataclasses.replace(cp, **change).verify(signer.public_key())


def test_checkpoint_with_another_algorithm() -> None:
    p256 = KeySigner(SigningKey.generate(SignatureAlgorithm.ECDSA_P256))
    last = Chain.new(INSTANCE_A).append(make_event(INSTANCE_A, 0))
    cp = make_checkpoint(p256, last, issued_at=T0)
    assert cp.algorithm == "ecdsa-p256"
    cp.verify(p256.public_key())


def test_checkpoint_from_json_is_strict(signer: KeySigner) -> None:
    last = Chain.new(INSTANCE_A).append(make_event(INSTANCE_A, 0))
    good = make_checkpoint(signer, last, issued_at=T0).to_json()
    for bad in (
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "keyId"},
        {**good, "seq": "0"},
        {**good, "headHash": good["headHash"].upper()},
        {**good, "signature": "not base64!"},
        {**good, "algorithm": "rsa"},
    ):
        with pytest.raises(ValueError):
            Checkpoint.from_json(bad)


def test_policy_every_n_events_or_t_seconds(signer: KeySigner) -> None:
    policy = CheckpointPolicy(every_events=3, every_seconds=10)
    chain = Chain.new(INSTANCE_A)
    assert not policy.due(None, chain.head, T0)  # nothing to sign
    first = chain.append(make_event(INSTANCE_A, 0))
    assert policy.due(None, chain.head, T0)  # no checkpoint yet
    cp = make_checkpoint(signer, first, issued_at=T0)
    assert not policy.due(cp, chain.head, T0 + timedelta(hours=1))  # all signed
    chain.append(make_event(INSTANCE_A, 1))
    assert not policy.due(cp, chain.head, T0 + timedelta(seconds=9))
    assert policy.due(cp, chain.head, T0 + timedelta(seconds=10))
    chain.append(make_event(INSTANCE_A, 2))
    chain.append(make_event(INSTANCE_A, 3))
    assert policy.due(cp, chain.head, T0)  # three unsigned events
    with pytest.raises(ValueError):
        CheckpointPolicy(every_events=0)
