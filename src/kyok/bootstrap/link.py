"""The node link: how the worker processes of one node stay one node (docs/architecture.md §7).

A node with ``server.workers`` > 1 is a supervisor process and N worker processes that accept
on one listening socket. Each worker has one end of an anonymous ``socketpair`` the supervisor
made before starting it; the supervisor (:class:`Hub`) relays what one worker says to the others.
Nothing else can reach the link: it has no name in the filesystem and no port.

What travels (length-prefixed JSON frames, :func:`send_frame`/:class:`FrameReader`):

- ``keys``: a unit's master keys by epoch, after they changed in one worker (a custodian's last
  part, a dev bootstrap, a rotation step). The receiver (:meth:`CryptoUnit.adopt`) re-reads the
  transcript and takes a key only if the MKVP recorded for its epoch matches and the transcript
  passes the auto-unseal MAC check; the transcript alone decides what is dropped. So custodians
  unseal a node once, whichever worker their calls reach. The hub keeps the newest key of each
  epoch so that a worker it restarts starts unsealed.
- ``seal``: a unit was sealed on purpose; every worker seals it, the hub forgets its keys.
- ``key``/``forget``: a key changed: the data-plane cache entry and the unit's handles must go
  everywhere at once, not after the cache's TTL. ``key`` with ``cache: identities`` does the
  same for a principal's cached grants (a revoked role, a deleted principal or API key). The worker that made the change waits until
  every sibling has dropped the entry (``ack``s, collected by the hub) before it answers, so
  once a disable returns no worker wraps with that key.
- ``call``/``ret``: the ceremony console. Custodians' parts are sealed to a transport key and
  collected in buffers that live in one process, so every ``/api/v2/kyok/unit`` call runs in
  worker 0 (the *unit worker*); the others forward it (:class:`RemoteUnitConsole`).
- ``ledger``: a socket passed with the message (``SCM_RIGHTS``): a new end of a ledger link
  (:mod:`kyok.bootstrap.ledger_link`), for a worker when the node's ledger writer was started
  again, or for the writer when a worker was (:meth:`Hub.pass_socket`, ``NodeLink.on_ledger``).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import importlib
import itertools
import json
import logging
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kyok.auth._cache import TtlCache
from kyok.errors import KyokError, Unavailable
from kyok.kms.cache import KeyCache
from kyok.unit.directory import UnitDirectory
from kyok.unit.unit import CryptoUnit

__all__ = [
    "MAX_FRAME",
    "UNIT_WORKER",
    "FrameReader",
    "Hub",
    "NodeLink",
    "RemoteUnitConsole",
    "send_frame",
]

log = logging.getLogger("kyok.server.link")

UNIT_WORKER = 0
"""The worker that runs the ceremony console (and the scheduler and the audit forwarders)."""

MAX_FRAME = 64 << 20
"""The largest frame either side accepts (a transcript export is the largest message)."""

CALL_TIMEOUT = 60.0
"""Seconds a forwarded console call waits for the unit worker."""

ACK_TIMEOUT = 5.0
"""Seconds a key change waits for the siblings to drop their cached copies."""

READY_TIMEOUT = 30.0
"""Seconds a starting worker waits for the hub's news (every unit's keys) before it serves."""

_HEADER = struct.Struct(">I")


def send_frame(sock: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    """Send one message (JSON) with its 4-byte length in front, and ``fds`` (file descriptors,
    ``SCM_RIGHTS``) with its first byte: the receiver has them once it has the message.

    Raises:
        OSError: the peer is gone.
    """
    data = json.dumps(message, separators=(",", ":")).encode()
    frame = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


class FrameReader:
    """Splits a byte stream into the messages :func:`send_frame` made."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        """Add received bytes; yield every message now complete.

        Raises:
            ValueError: a frame longer than :data:`MAX_FRAME` or not a JSON object.
        """
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ValueError("node link frame too large")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            message = json.loads(bytes(self._buffer[_HEADER.size : end]))
            del self._buffer[:end]
            if not isinstance(message, dict):
                raise ValueError("node link frame is not an object")
            yield message


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _keys_out(keys: Mapping[int, bytes]) -> dict[str, str]:
    return {str(epoch): _b64(mk) for epoch, mk in keys.items()}


def _keys_in(keys: Mapping[str, str]) -> dict[int, bytes]:
    return {int(epoch): base64.b64decode(mk) for epoch, mk in keys.items()}


def encode_error(exc: KyokError) -> dict[str, Any]:
    """A kyok error as the unit worker sends it back (its class, code, message, target)."""
    cls = type(exc)
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "code": exc.code,
        "message": exc.message,
        "target": exc.target,
    }


def decode_error(data: Mapping[str, Any]) -> KyokError:
    """The error :func:`encode_error` described, as the same class when it is a kyok error
    class (anything else becomes :class:`~kyok.errors.Unavailable`)."""
    module, _, name = str(data.get("type", "")).rpartition(".")
    cls: type[KyokError] = Unavailable
    if module.startswith("kyok."):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if isinstance(found, type) and issubclass(found, KyokError):
            cls = found
    exc = cls.__new__(cls)
    KyokError.__init__(
        exc, str(data.get("message", "")), code=data.get("code"), target=data.get("target")
    )
    return exc


# ---------------------------------------------------------------------------- worker side


@dataclass
class _Call:
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None


class NodeLink:
    """A worker's end of the node link.

    Args:
        sock: the worker's end of its socket pair with the supervisor.
        index: the worker's number (0 is the unit worker).
        units: the worker's crypto units.
        cache: the key service's data-plane cache.
        console: the ceremony console (the unit worker runs forwarded calls on it).
        identities: the auth service's grant cache (None: nothing to keep in step).
    """

    def __init__(
        self,
        sock: socket.socket,
        index: int,
        units: UnitDirectory,
        cache: KeyCache,
        console: Any,
        identities: TtlCache[tuple[str, str], Any] | None = None,
    ) -> None:
        self.index = index
        self._identities = identities
        self._sock = sock
        self._units = units
        self._cache = cache
        self._console = console
        self._send_lock = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._changed: queue.SimpleQueue[CryptoUnit | None] = queue.SimpleQueue()
        self._sent: dict[str, tuple[int, frozenset[int]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._ready = threading.Event()
        self.on_lost: Callable[[], None] | None = None
        """Called once when the link closes while this worker still serves (the supervisor
        died): the worker should stop."""
        self.on_ledger: Callable[[socket.socket], None] | None = None
        """Called (in the link's thread) with each new socket of the ledger link the supervisor
        passes (``ledger``, :mod:`kyok.bootstrap.ledger_link`): a worker's new connection to
        the ledger writer, or the writer's to a worker."""
        self._fds: collections.deque[int] = collections.deque()

    def start(self) -> None:
        """Hear and tell: watch the units and the cache, read the link."""
        if self.index == UNIT_WORKER:
            self._pool = ThreadPoolExecutor(4, thread_name_prefix="kyok-link-call")
        self._units.observe(self._unit_changed, self._unit_forgot)
        self._cache.on_invalidate = self._key_changed
        if self._identities is not None:
            self._identities.on_invalidate = self._identity_changed
        for name, target in (("kyok-link-read", self._read), ("kyok-link-sync", self._sync)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._ready.wait(READY_TIMEOUT):
            log.error("the node link sent nothing: this worker may start sealed")

    def close(self) -> None:
        """Stop telling the others anything (call before the node seals its units at exit:
        that sealing is this process's, not the node's)."""
        self._closed = True
        self._cache.on_invalidate = None
        if self._identities is not None:
            self._identities.on_invalidate = None
        for unit in self._units.loaded():
            unit.on_change = None
            unit.on_forget = None
        self._changed.put(None)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        while self._fds:
            os.close(self._fds.popleft())
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for call in list(self._calls.values()):
            call.done.set()

    # -- telling

    def _send(self, message: Mapping[str, Any]) -> None:
        if self._closed:
            return
        try:
            with self._send_lock:
                send_frame(self._sock, message)
        except OSError:
            if not self._closed:
                log.error("the node link is down: this worker no longer hears its siblings")

    def _unit_changed(self, unit: CryptoUnit, sealed: bool) -> None:
        if sealed:
            self._sent.pop(unit.unit_id, None)
            self._send({"t": "seal", "unit": unit.unit_id})
        else:
            self._changed.put(unit)  # the unit's lock may be held: snapshot it elsewhere

    def _unit_forgot(self, unit: CryptoUnit, owner_id: str) -> None:
        self._send({"t": "forget", "unit": unit.unit_id, "owner": owner_id})

    def _key_changed(self, instance_id: str, key_id: str | None) -> None:
        self._acked_change({"t": "key", "instance": instance_id, "key": key_id})

    def _identity_changed(self, key: tuple[str, str] | None) -> None:
        self._acked_change(
            {"t": "key", "cache": "identities", "key": list(key) if key is not None else None}
        )

    def _acked_change(self, message: dict[str, Any]) -> None:
        """Tell the siblings and wait until each has applied it (or :data:`ACK_TIMEOUT`)."""
        if self._closed:
            return
        if self._request(message, ACK_TIMEOUT) is None:
            log.warning("a sibling worker did not confirm dropping a changed key in time")

    def _request(self, message: Mapping[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send ``message`` with a fresh id and wait for the ``ret`` with that id (None: no
        answer within ``timeout`` seconds, or the link closed)."""
        call_id = next(self._ids)
        call = _Call()
        self._calls[call_id] = call
        try:
            self._send({**message, "id": call_id})
            call.done.wait(timeout)
            return call.reply
        finally:
            self._calls.pop(call_id, None)

    def _sync(self) -> None:
        while True:
            unit = self._changed.get()
            if unit is None:
                return
            self._send_keys(unit)

    def _send_keys(self, unit: CryptoUnit) -> None:
        n, keys = unit.shared_keys()
        mark = (n, frozenset(keys))
        if not keys or self._sent.get(unit.unit_id) == mark:
            return
        self._sent[unit.unit_id] = mark
        self._send({"t": "keys", "unit": unit.unit_id, "keys": _keys_out(keys)})

    # -- hearing

    def _read(self) -> None:
        reader = FrameReader()
        while not self._closed:
            try:
                data, fds, _flags, _address = socket.recv_fds(self._sock, 1 << 16, 16)
            except OSError:
                data, fds = b"", []
            self._fds.extend(fds)
            if not data:
                if not self._closed:
                    log.error("the node link closed: the supervisor is gone; stopping")
                    if self.on_lost is not None:
                        self.on_lost()
                return
            try:
                for message in reader.feed(data):
                    self._dispatch(message)
            except Exception:  # a defect here must not kill the worker's link silently
                log.exception("node link: bad message")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "keys":
            unit_id = str(message["unit"])
            try:
                self._units.adopt(unit_id, _keys_in(message["keys"]))
            except KyokError as exc:
                log.error("unit %s: keys from a sibling worker not taken: %s", unit_id, exc.message)
            else:
                unit = self._units.loaded_unit(unit_id)
                if unit is not None:
                    n, keys = unit.shared_keys()
                    self._sent[unit_id] = (n, frozenset(keys))
        elif kind == "seal":
            unit = self._units.loaded_unit(str(message["unit"]))
            self._sent.pop(str(message["unit"]), None)
            if unit is not None:
                unit.seal_quietly()
        elif kind == "key" and message.get("cache") == "identities":
            if self._identities is not None:
                key = message.get("key")
                if key is None:
                    self._identities.clear(propagate=False)
                else:
                    self._identities.invalidate((str(key[0]), str(key[1])), propagate=False)
            self._send({"t": "ack", "id": message.get("id"), "to": message.get("from")})
        elif kind == "key":
            key_id = message.get("key")
            if key_id is None:
                self._cache.invalidate_instance(str(message["instance"]), propagate=False)
            else:
                self._cache.invalidate(str(message["instance"]), str(key_id), propagate=False)
            self._send({"t": "ack", "id": message.get("id"), "to": message.get("from")})
        elif kind == "ready":
            self._ready.set()
        elif kind == "ledger":
            if not self._fds:
                log.error("node link: a ledger socket announced but none came")
                return
            sock = socket.socket(fileno=self._fds.popleft())
            if self.on_ledger is None:
                sock.close()
            else:
                self.on_ledger(sock)
        elif kind == "forget":
            unit = self._units.loaded_unit(str(message["unit"]))
            if unit is not None:
                unit.forget(str(message["owner"]), propagate=False)
        elif kind == "call" and self._pool is not None:
            self._pool.submit(self._serve_call, message)
        elif kind == "ret":
            call = self._calls.get(int(message["id"]))
            if call is not None:
                call.reply = message
                call.done.set()

    # -- the console, across processes

    def _serve_call(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"t": "ret", "id": message["id"], "to": message["from"]}
        try:
            result = self._run(str(message["m"]), message.get("a") or [])
        except KyokError as exc:
            reply["err"] = encode_error(exc)
        except Exception:
            log.exception("forwarded console call %s failed", message.get("m"))
            reply["err"] = encode_error(Unavailable("the unit worker failed this call"))
        else:
            reply["ok"] = result
        # The units' news goes first, so the caller's worker holds the keys before it answers.
        for unit in self._units.loaded():
            self._send_keys(unit)
        self._send(reply)

    def _run(self, method: str, args: Sequence[Any]) -> Any:
        console = self._console
        if method == "status":
            return dict(console.status(str(args[0])))
        if method == "submit":
            part = base64.b64decode(args[2]) if args[2] is not None else None
            return dict(console.submit(str(args[0]), dict(args[1]), part))
        if method == "transcript_head":
            head = console.transcript_head(str(args[0]))
            return list(head) if head is not None else None
        if method == "start_reencrypt":
            return dict(console.start_reencrypt(str(args[0])))
        if method == "wait":
            return bool(console.wait(str(args[0]), args[1]))
        raise Unavailable(f"no console call {method!r}")

    def call(self, method: str, *args: Any) -> Any:
        """Run a console method in the unit worker and return its result.

        Raises:
            KyokError: what the unit worker raised (same class).
            Unavailable: the unit worker did not answer in :data:`CALL_TIMEOUT` seconds.
        """
        reply = self._request({"t": "call", "m": method, "a": list(args)}, CALL_TIMEOUT)
        if reply is None:
            raise Unavailable("the node's unit worker did not answer")
        if "err" in reply:
            raise decode_error(reply["err"])
        return reply.get("ok")


class RemoteUnitConsole:
    """The ceremony console of a worker other than the unit worker: the calls that need the
    unit's in-process ceremony state run in the unit worker; the rest read the store here.

    Args:
        link: this worker's node link.
        local: this worker's own console (transcript export and the health overview).
    """

    def __init__(self, link: NodeLink, local: Any) -> None:
        self._link = link
        self._local = local

    def status(self, instance_id: str) -> dict[str, Any]:
        """See :meth:`kyok.bootstrap.units.UnitConsole.status` (runs in the unit worker)."""
        return dict(self._link.call("status", instance_id))

    def submit(
        self, instance_id: str, command: Mapping[str, Any], sealed_part: bytes | None = None
    ) -> dict[str, Any]:
        """See :meth:`kyok.bootstrap.units.UnitConsole.submit` (runs in the unit worker)."""
        part = _b64(sealed_part) if sealed_part is not None else None
        return dict(self._link.call("submit", instance_id, dict(command), part))

    def transcript_head(self, instance_id: str) -> tuple[int, str] | None:
        """See :meth:`kyok.bootstrap.units.UnitConsole.transcript_head` (the unit worker's)."""
        head = self._link.call("transcript_head", instance_id)
        return (int(head[0]), str(head[1])) if head is not None else None

    def transcript(self, instance_id: str) -> list[str]:
        """See :meth:`kyok.bootstrap.units.UnitConsole.transcript` (read from the store)."""
        lines: list[str] = self._local.transcript(instance_id)
        return lines

    def start_reencrypt(self, instance_id: str) -> dict[str, Any]:
        """See :meth:`kyok.bootstrap.units.UnitConsole.start_reencrypt` (in the unit worker)."""
        return dict(self._link.call("start_reencrypt", instance_id))

    def wait(self, instance_id: str, timeout: float | None = None) -> bool:
        """See :meth:`kyok.bootstrap.units.UnitConsole.wait` (in the unit worker)."""
        return bool(self._link.call("wait", instance_id, timeout))

    def overview(self) -> Any:
        """This worker's own view (the health report is per process)."""
        return self._local.overview()


# ---------------------------------------------------------------------------- supervisor side


class Hub:
    """The supervisor's side: relays messages between the workers' links.

    Holds the newest master key of each epoch of each unit (from ``keys`` messages) so a worker
    it starts again joins unsealed; forgets a unit's keys on ``seal``. Runs in the supervisor's
    main thread (:meth:`pump`); sockets are registered with :meth:`attach` / :meth:`detach`.
    """

    def __init__(self) -> None:
        self._socks: dict[int, socket.socket] = {}
        self._readers: dict[int, FrameReader] = {}
        self._keys: dict[str, dict[str, str]] = {}
        self._acks: dict[tuple[int, int], set[int]] = {}  # (sender, id) -> who has not acked

    def attach(self, index: int, sock: socket.socket) -> None:
        """A worker (re)started on ``sock``: hand it every unit's keys first."""
        sock.settimeout(10)  # a wedged worker must not wedge the hub for ever
        self._socks[index] = sock
        self._readers[index] = FrameReader()
        for unit_id, keys in self._keys.items():
            self._send(index, {"t": "keys", "unit": unit_id, "keys": keys})
        self._send(index, {"t": "ready"})

    def detach(self, index: int) -> None:
        """A worker is gone."""
        sock = self._socks.pop(index, None)
        self._readers.pop(index, None)
        if sock is not None:
            sock.close()
        for (sender, call_id), waiting in list(self._acks.items()):
            waiting.discard(index)
            if sender == index:
                del self._acks[(sender, call_id)]
            elif not waiting:
                self._acked(sender, call_id)

    def sockets(self) -> dict[int, socket.socket]:
        """The attached workers' sockets, by worker number."""
        return dict(self._socks)

    def receive(self, index: int, data: bytes) -> None:
        """Bytes from worker ``index``: relay every complete message.

        Raises:
            ValueError: the worker broke the framing (the caller detaches it).
        """
        for message in self._readers[index].feed(data):
            self._relay(index, message)

    def pass_socket(self, index: int, sock: socket.socket) -> bool:
        """Pass ``sock`` to worker ``index`` (a ``ledger`` message; its link hands it to
        ``on_ledger``). Returns False if that worker is not attached or does not hear."""
        link = self._socks.get(index)
        if link is None:
            return False
        try:
            send_frame(link, {"t": "ledger"}, [sock.fileno()])
        except OSError:
            log.warning("worker %d does not hear the node link", index)
            return False
        return True

    def forget_keys(self) -> None:
        """Drop every master key the hub holds (at shutdown)."""
        self._keys.clear()

    def _relay(self, sender: int, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "keys":
            held = self._keys.setdefault(str(message["unit"]), {})
            held.update({str(k): str(v) for k, v in dict(message["keys"]).items()})
            self._others(sender, message)
        elif kind == "seal":
            self._keys.pop(str(message["unit"]), None)
            self._others(sender, message)
        elif kind == "key":
            call_id = int(message["id"])
            others = set(self._socks) - {sender}
            if not others:
                self._acked(sender, call_id)
                return
            self._acks[(sender, call_id)] = others
            self._others(sender, {**message, "from": sender})
        elif kind == "ack":
            key = (int(message["to"]), int(message["id"]))
            waiting = self._acks.get(key)
            if waiting is not None:
                waiting.discard(sender)
                if not waiting:
                    self._acked(*key)
        elif kind == "forget":
            self._others(sender, message)
        elif kind == "call":
            if UNIT_WORKER not in self._socks:
                error = encode_error(Unavailable("the node's unit worker is restarting"))
                self._send(sender, {"t": "ret", "id": message["id"], "err": error})
            else:
                self._send(UNIT_WORKER, {**message, "from": sender})
        elif kind == "ret":
            self._send(int(message["to"]), message)

    def _acked(self, sender: int, call_id: int) -> None:
        self._acks.pop((sender, call_id), None)
        self._send(sender, {"t": "ret", "id": call_id})

    def _others(self, sender: int, message: Mapping[str, Any]) -> None:
        for index in list(self._socks):
            if index != sender:
                self._send(index, message)

    def _send(self, index: int, message: Mapping[str, Any]) -> None:
        sock = self._socks.get(index)
        if sock is None:
            return
        try:
            send_frame(sock, message)
        except OSError:
            log.warning("worker %d does not hear the node link", index)
