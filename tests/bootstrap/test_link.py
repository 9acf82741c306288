"""The node link's parts: framing, errors across processes, the hub's relaying and acks, and
how a unit takes master keys from a sibling worker (only keys its transcript vouches for)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceremony_kit import ceremony, imprint, make_custodians
from kyok.bootstrap.link import (
    MAX_FRAME,
    FrameReader,
    Hub,
    decode_error,
    encode_error,
    send_frame,
)
from kyok.clock import FakeClock
from kyok.errors import Unavailable
from kyok.store.memory import MemoryStore
from kyok.unit.blob import PURPOSE_ROOT_KEY, BlobRef
from kyok.unit.errors import UnitSealed
from kyok.unit.seal import DevSeal, SealProvider, SharesSeal
from kyok.unit.unit import CryptoUnit

# ------------------------------------------------------------------------------------ frames


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers()), max_size=5), st.integers(1, 7))
def test_frames_come_out_whole_however_the_stream_is_cut(
    messages: list[dict[str, int]], step: int
) -> None:
    a, b = socket.socketpair()
    with a, b:
        for m in messages:
            send_frame(a, m)
        a.shutdown(socket.SHUT_WR)
        stream = b""
        while chunk := b.recv(4096):
            stream += chunk
    reader = FrameReader()
    out: list[dict[str, Any]] = []
    for i in range(0, len(stream), step):
        out.extend(reader.feed(stream[i : i + step]))
    assert out == messages


def test_an_oversized_or_non_object_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        list(FrameReader().feed(struct.pack(">I", MAX_FRAME + 1)))
    with pytest.raises(ValueError, match="not an object"):
        list(FrameReader().feed(struct.pack(">I", 2) + b"[]"))


# ------------------------------------------------------------------------------------ errors


def test_a_kyok_error_crosses_as_its_own_class() -> None:
    back = decode_error(encode_error(UnitSealed("sealed for now")))
    assert type(back) is UnitSealed and back.message == "sealed for now"
    assert back.code == UnitSealed.code and back.status == 503


@pytest.mark.parametrize(
    "name", ["os.system", "builtins.Exception", "kyok.nothing.Here", "kyok.errors.__builtins__"]
)
def test_only_kyok_error_classes_are_rebuilt(name: str) -> None:
    back = decode_error({"type": name, "message": "m", "code": "X_ERR"})
    assert type(back) is Unavailable and back.message == "m"


# ------------------------------------------------------------------------------------ hub


class Worker:
    """A worker's end of the link, read synchronously."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(5)
        self.reader = FrameReader()
        self.inbox: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        send_frame(self.sock, message)

    def expect(self, kind: str) -> dict[str, Any]:
        while True:
            for i, m in enumerate(self.inbox):
                if m["t"] == kind:
                    return self.inbox.pop(i)
            self.inbox.extend(self.reader.feed(self.sock.recv(1 << 16)))

    def quiet(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.inbox.extend(self.reader.feed(self.sock.recv(1 << 16)))
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(5)
        return not self.inbox


@pytest.fixture
def hub() -> Iterator[tuple[Hub, Callable[[int], Worker]]]:
    hub = Hub()
    ours: dict[int, socket.socket] = {}

    def join(index: int) -> Worker:
        a, b = socket.socketpair()
        hub.attach(index, a)
        ours[index] = a
        return Worker(b)

    yield hub, join
    for index in list(hub.sockets()):
        hub.detach(index)


def pump(hub: Hub) -> None:
    """Relay whatever the workers sent (the supervisor's loop, one round)."""
    for index, sock in hub.sockets().items():
        sock.settimeout(0.05)
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            continue
        hub.receive(index, data)


def test_keys_go_to_the_others_and_to_a_worker_that_joins_later(
    hub: tuple[Hub, Callable[[int], Worker]],
) -> None:
    h, join = hub
    w0, w1 = join(0), join(1)
    assert w0.expect("ready") and w1.expect("ready")
    w0.send({"t": "keys", "unit": "u1", "keys": {"1": "a2V5"}})
    pump(h)
    assert w1.expect("keys")["keys"] == {"1": "a2V5"} and w0.quiet()
    w2 = join(2)  # a restarted worker gets the node's keys before "ready"
    assert w2.expect("keys") == {"t": "keys", "unit": "u1", "keys": {"1": "a2V5"}}
    w2.expect("ready")
    w1.send({"t": "seal", "unit": "u1"})
    pump(h)
    assert w0.expect("seal") and w2.expect("seal")
    w3 = join(3)
    w3.expect("ready")
    assert w3.quiet()  # sealed: the hub forgot the keys


def test_a_key_change_is_confirmed_only_after_every_sibling_acked(
    hub: tuple[Hub, Callable[[int], Worker]],
) -> None:
    h, join = hub
    w0, w1, w2 = join(0), join(1), join(2)
    w1.send({"t": "key", "instance": "i", "key": "k", "id": 7})
    pump(h)
    for w in (w0, w2):
        msg = w.expect("key")
        assert msg["from"] == 1 and msg["key"] == "k"
    w0.send({"t": "ack", "id": 7, "to": 1})
    pump(h)
    w1.expect("ready")
    assert w1.quiet()  # w2 has not acked yet
    h.detach(2)  # a worker that dies cannot hold the change up
    assert w1.expect("ret")["id"] == 7


def test_console_calls_go_to_worker_0_and_back(hub: tuple[Hub, Callable[[int], Worker]]) -> None:
    h, join = hub
    w1 = join(1)
    w1.send({"t": "call", "id": 3, "m": "status", "a": ["i"]})
    pump(h)
    assert w1.expect("ret")["err"]["type"] == "kyok.errors.Unavailable"  # no worker 0 yet
    w0 = join(0)
    w1.send({"t": "call", "id": 4, "m": "status", "a": ["i"]})
    pump(h)
    call = w0.expect("call")
    assert call["from"] == 1 and call["m"] == "status"
    w0.send({"t": "ret", "id": 4, "to": 1, "ok": {"sealed": False}})
    pump(h)
    assert w1.expect("ret")["ok"] == {"sealed": False}


# ------------------------------------------------------------------------------------ adopt


@pytest.fixture
def two_workers(tmp_path: Path) -> tuple[CryptoUnit, CryptoUnit, list[BlobRef]]:
    """One shares-sealed unit as two processes see it: the first after the ceremony, the
    second opened from the same store (sealed)."""
    store = MemoryStore()
    seals: dict[str, SealProvider] = {"dev": DevSeal(tmp_path), "shares": SharesSeal()}
    clock = FakeClock()
    first = CryptoUnit.create(store.units, instance_id="inst-1", seal=seals["shares"], clock=clock)
    custodians = make_custodians(3)
    imprint(first, custodians, 2, 2)
    ceremony(first, custodians, "shamir", 2, custodians[:2])
    second = CryptoUnit.open(store.units, first.unit_id, seals, clock)
    refs = [BlobRef("inst-1", "key-1", "00000000-0000-4000-8000-000000000001", PURPOSE_ROOT_KEY)]
    return first, second, refs


def test_a_sibling_takes_the_master_key_and_opens_what_the_first_sealed(
    two_workers: tuple[CryptoUnit, CryptoUnit, list[BlobRef]],
) -> None:
    first, second, refs = two_workers
    assert second.sealed
    blob = first.generate_blob(refs[0])
    ciphertext, dek = first.handle(blob).wrap(os.urandom(32))
    _n, keys = first.shared_keys()
    second.adopt(keys)
    assert not second.sealed
    assert second.handle(blob).unwrap(ciphertext) == dek


def test_a_wrong_or_unrecorded_key_is_not_taken(
    two_workers: tuple[CryptoUnit, CryptoUnit, list[BlobRef]],
) -> None:
    first, second, _ = two_workers
    (epoch,) = first.shared_keys()[1]
    second.adopt({epoch: os.urandom(32)})  # MKVP does not match
    assert second.sealed
    second.adopt({epoch + 5: first.shared_keys()[1][epoch]})  # no record of that epoch
    assert second.sealed


def test_changes_are_reported_and_seal_is_told_apart(
    two_workers: tuple[CryptoUnit, CryptoUnit, list[BlobRef]],
) -> None:
    first, second, _ = two_workers
    seen: list[bool] = []
    first.on_change = lambda unit, sealed: seen.append(sealed)
    forgotten: list[str] = []
    first.on_forget = lambda unit, owner: forgotten.append(owner)
    first.forget("key-1")
    first.forget("key-2", propagate=False)
    assert forgotten == ["key-1"]
    first.seal()
    assert seen == [True] and first.sealed
    second.adopt(first.shared_keys()[1])
    assert second.sealed  # nothing to take from a sealed unit
    second.on_change = lambda unit, sealed: seen.append(sealed)
    second.seal_quietly()
    assert seen == [True]
