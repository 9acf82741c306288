"""A forwarder destination that sends the ledger to a syslog receiver over mutual TLS.

Message format (RFC 5424), one message per event::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [kyok@32473 instance="…" seq="…" hash="…"] BOM{json}

* PRI = facility * 8 + severity; facility ``local0`` (16) unless configured; severity
  ``info`` (6) for a successful call, ``notice`` (5) for a failed one.
* TIMESTAMP is the event's time (not the sending time), RFC 3339 in UTC with microseconds.
* MSGID is the action (``kms.secrets.wrap``), cut to the 32 characters RFC 5424 allows.
* The structured-data element carries the event's place in the ledger, so a receiver can
  de-duplicate (at-least-once delivery repeats events with the same instance and seq) and check
  order without parsing MSG. Its SD-ID ``kyok@32473`` uses 32473, the enterprise number IANA
  reserves for documentation and examples (RFC 5612); a deployment with its own private
  enterprise number should pass ``sd_id="kyok@<its number>"``.
* MSG is the UTF-8 byte order mark followed by ``canonical_json(chained.to_json())``: exactly
  the object of an export's event line, so the receiver's copy can be verified offline.

Messages can be long (an event with many ``detail`` items is several KiB): the receiver must
accept messages of at least 32 KiB (rsyslog: ``global(maxMessageSize="64k")``).

Transport: TCP with TLS 1.2 or later, octet-counting framing (RFC 5425, RFC 6587 §3.4.1). The
server certificate is verified against ``ca_file`` and ``server_name``; the client presents its
own certificate (the receiver should require and verify it, e.g. rsyslog
``StreamDriver.AuthMode="x509/certvalid"`` or ``x509/name``).

At least once over plain TCP
----------------------------

Syslog over TLS has no acknowledgements. A successful ``send`` only means the bytes reached the
local kernel; if the receiver has gone away (or goes away before reading them), they are lost
silently, and the next write may even "succeed" before the reset arrives. A resend window kept in
memory is not enough either: once :meth:`~SyslogTlsDestination.deliver` has returned, the
forwarder moves its durable cursor, so a loss discovered later (or never, if the process stops)
would be a gap.

So every :meth:`~SyslogTlsDestination.deliver` uses its own connection and does not return before
the receiver has provably consumed all of it:

1. connect, TLS handshake (server verified, client certificate presented);
2. send the whole batch, framed;
3. send TLS ``close_notify`` and wait for the receiver's ``close_notify`` (``SSL_shutdown``);
4. read the receiver's FIN: a clean end of stream, with nothing after the ``close_notify``;
5. (Linux) wait until the kernel reports no unacknowledged bytes (``SIOCOUTQ`` = 0);
6. only then close our socket.

A receiver answers our ``close_notify`` only after its TLS layer read every record before it,
i.e. after its input consumed every message. Steps 4 and 5 close the remaining hole: a receiver
that shuts down on its own sends a ``close_notify`` too, possibly discarding unread data, but
then it closes its socket with our remaining bytes unread (the kernel answers with a reset, not a
FIN) or before they arrive (they are never acknowledged). Any failure, timeout or doubt raises
:class:`~kyok.audit.forward.DeliveryFailed`; the forwarder then keeps its cursor and sends the
batch again later, so the receiver may get duplicates, never a gap.

What the receiver does after reading is its own business, and there the guarantee ends: a
receiver that read a batch may still lose it when it stops (rsyslog drains its in-memory queue on
an orderly shutdown only for ``queue.timeoutShutdown``, and loses it on a crash unless a
disk-assisted queue is configured), or a receiver that reads ahead may drop what it buffered when
it closes the session itself. As a second line of defence the destination keeps the last
confirmed batches (``replay_batches``, at most ``replay_bytes``) and, after any failed delivery,
sends them again ahead of the next batch on the first connection that works: a receiver that went
away gets what it may have dropped on its way down. That covers the losses that come with a
receiver going away while the forwarder keeps sending; a receiver that restarts between two
deliveries unnoticed is not covered (use a durable queue on the receiver; the ``seq`` parameter
lets the receiver side detect gaps). Replayed events are duplicates with the same instance and
seq, sent in their original order, so the first occurrences stay in seq order.

A receiver bug to know: rsyslog before the fix of December 2025 (upstream commit a2fd9b3;
Debian 12 ships 8.2302) closes the socket of every TLS session of its ``ossl`` driver twice. A
file descriptor that another rsyslog thread opens between the two closes is closed under it;
when that is an output file (omfile opens its files on the first message after a start or a
HUP), rsyslog loses or misdirects the lines written through it, although it received them.
A client sees at most one symptom (rsyslog writing such a file into a later session, which
step 4 refuses), not the loss. With such an rsyslog, use the ``gtls`` driver (GnuTLS leaves the
socket to rsyslog's TCP layer), or run the rule set that writes kyok's messages on a direct queue
(``ruleset(... queue.type="Direct")``) so the files are opened by the input thread, in turn with
the session closes (the tests do).

The cost is one TLS handshake per batch (a few milliseconds; batches hold up to 500 events).
The module is not imported by ``kyok.audit`` (which stays free of I/O).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import ssl
import struct
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Final

from kyok.audit.chain import ChainedEvent
from kyok.audit.event import format_time
from kyok.audit.forward import DeliveryFailed
from kyok.crypto.encoding import canonical_json

__all__ = [
    "BOM",
    "DEFAULT_SD_ID",
    "FACILITY_LOCAL0",
    "NILVALUE",
    "SEVERITY_INFO",
    "SEVERITY_NOTICE",
    "SyslogTlsDestination",
    "escape_sd_value",
    "format_rfc5424",
    "frame_octet_counting",
]

NILVALUE: Final = "-"
BOM: Final = b"\xef\xbb\xbf"
DEFAULT_SD_ID: Final = "kyok@32473"  # 32473: IANA's example enterprise number (RFC 5612)
FACILITY_LOCAL0: Final = 16
SEVERITY_NOTICE: Final = 5
SEVERITY_INFO: Final = 6

MAX_HOSTNAME: Final = 255
MAX_APP_NAME: Final = 48
MAX_PROCID: Final = 128
MAX_MSGID: Final = 32
MAX_SD_NAME: Final = 32


def _printable(text: str) -> bool:
    return all(33 <= ord(ch) <= 126 for ch in text)


def _header_field(value: str | None, what: str, limit: int) -> str:
    """A header field: 1..limit printable US-ASCII characters, or NILVALUE for None/empty."""
    if value is None or value == "":
        return NILVALUE
    if len(value) > limit or not _printable(value):
        raise ValueError(f"the syslog {what} must be 1 to {limit} printable US-ASCII characters")
    return value


def _check_sd_id(sd_id: str) -> str:
    if (
        not sd_id
        or len(sd_id) > MAX_SD_NAME
        or not _printable(sd_id)
        or any(ch in sd_id for ch in '= ]"')
        or sd_id.count("@") != 1
        or sd_id.startswith("@")
    ):
        raise ValueError("the SD-ID must be name@number, at most 32 printable characters")
    return sd_id


def escape_sd_value(value: str) -> str:
    """Escape a PARAM-VALUE (RFC 5424 §6.3.3): ``\\``, ``"`` and ``]`` get a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(action: str) -> str:
    kept = "".join(ch for ch in action if 33 <= ord(ch) <= 126)[:MAX_MSGID]
    return kept or NILVALUE


def format_rfc5424(
    chained: ChainedEvent,
    *,
    hostname: str | None,
    app_name: str | None = "kyok",
    procid: str | int | None = None,
    facility: int = FACILITY_LOCAL0,
    sd_id: str = DEFAULT_SD_ID,
) -> bytes:
    """The RFC 5424 message for ``chained`` (the layout is in the module docstring).

    Args:
        chained: the event.
        hostname: the HOSTNAME field (None or "" for NILVALUE); printable US-ASCII, ≤ 255.
        app_name: the APP-NAME field (≤ 48).
        procid: the PROCID field (≤ 128), e.g. the process id.
        facility: 0..23 (16 = local0).
        sd_id: the structured-data element's id.

    Raises:
        ValueError: a header field or the facility is out of range.
    """
    if not 0 <= facility <= 23:
        raise ValueError("the syslog facility is 0..23")
    event = chained.event
    severity = SEVERITY_NOTICE if event.outcome == "failure" else SEVERITY_INFO
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            format_time(event.event_time),
            _header_field(hostname, "hostname", MAX_HOSTNAME),
            _header_field(app_name, "app-name", MAX_APP_NAME),
            _header_field(None if procid is None else str(procid), "procid", MAX_PROCID),
            _msgid(event.action),
        )
    )
    sd = (
        f"[{_check_sd_id(sd_id)}"
        f' instance="{escape_sd_value(event.instance_id)}"'
        f' seq="{event.seq}"'
        f' hash="{chained.hash.hex()}"]'
    )
    return f"{header} {sd} ".encode() + BOM + canonical_json(chained.to_json())


def frame_octet_counting(msg: bytes) -> bytes:
    """Frame ``msg`` for a stream transport: ``MSG-LEN SP MSG`` (RFC 5425 / RFC 6587)."""
    return b"%d " % len(msg) + msg


def _default_hostname() -> str:
    name = socket.gethostname()
    try:
        return _header_field(name, "hostname", MAX_HOSTNAME)
    except ValueError:
        return NILVALUE


def _no_password() -> bytes:
    # An encrypted key must not make OpenSSL prompt on the terminal; an empty password fails.
    return b""


def _why(exc: BaseException) -> str:
    """A short, content-free cause for a DeliveryFailed message."""
    if isinstance(exc, _NotConfirmed):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return type(exc).__name__


class _NotConfirmed(OSError):
    """The receiver did not confirm the batch (the reason is the message)."""


class SyslogTlsDestination:
    """Sends each batch to ``host:port`` over mutual TLS and waits for the receiver to consume it.

    Args:
        host: the receiver's address or name.
        port: its TLS syslog port (6514 is the registered one).
        ca_file: PEM file with the CA certificate(s) the receiver's certificate must chain to.
        cert_file: PEM file with the client certificate (and chain) presented to the receiver.
        key_file: PEM file with the client certificate's unencrypted private key.
        server_name: the name the receiver's certificate must hold (default ``host``).
        timeout: seconds for connecting and for each read or write, and for the receiver's
            confirmation.
        hostname: the HOSTNAME field of the messages (default: this machine's name).
        app_name: the APP-NAME field.
        procid: the PROCID field (default NILVALUE).
        facility: the syslog facility (default local0).
        sd_id: the structured-data id (see the module docstring).
        replay_batches: how many confirmed batches to send again after a failure (0: none).
        replay_bytes: the most bytes of them to keep.

    Raises:
        ValueError: a header field, the port or the timeout is out of range.
        OSError: the certificate or key files cannot be read (``ssl.SSLError`` if malformed).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca_file: str,
        cert_file: str,
        key_file: str,
        server_name: str | None = None,
        timeout: float = 5.0,
        hostname: str | None = None,
        app_name: str | None = "kyok",
        procid: str | int | None = None,
        facility: int = FACILITY_LOCAL0,
        sd_id: str = DEFAULT_SD_ID,
        replay_batches: int = 8,
        replay_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError("the syslog port is 1..65535")
        if not timeout > 0:
            raise ValueError("the timeout must be positive")
        if not 0 <= facility <= 23:
            raise ValueError("the syslog facility is 0..23")
        self.host = host
        self.port = port
        self.server_name = server_name or host
        self.timeout = timeout
        self._hostname = (
            _default_hostname()
            if hostname is None
            else _header_field(hostname, "hostname", MAX_HOSTNAME)
        )
        self._app_name = _header_field(app_name, "app-name", MAX_APP_NAME)
        self._procid = _header_field(None if procid is None else str(procid), "procid", MAX_PROCID)
        self._facility = facility
        self._sd_id = _check_sd_id(sd_id)

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(cert_file, key_file, password=_no_password)
        self._context = context

        if replay_batches < 0 or replay_bytes < 0:
            raise ValueError("the replay window cannot be negative")
        self._replay_batches = replay_batches
        self._replay_bytes = replay_bytes
        self._recent: deque[tuple[bytes, int]] = deque()  # confirmed (payload, events)
        self._replay_due = False
        self._replayed = 0

        self._deliver_lock = threading.Lock()  # one delivery at a time
        self._lock = threading.Lock()  # guards _inflight (close() from another thread)
        self._inflight: socket.socket | None = None

    def __repr__(self) -> str:
        return f"SyslogTlsDestination({self.host!r}, {self.port})"

    @property
    def replayed_events(self) -> int:
        """Events sent again from the replay window so far (after failed deliveries)."""
        return self._replayed

    def message(self, chained: ChainedEvent) -> bytes:
        """The RFC 5424 message this destination sends for ``chained`` (unframed)."""
        return format_rfc5424(
            chained,
            hostname=self._hostname,
            app_name=self._app_name,
            procid=self._procid,
            facility=self._facility,
            sd_id=self._sd_id,
        )

    def deliver(self, events: Sequence[ChainedEvent]) -> None:
        """Send ``events`` on a new connection and wait until the receiver consumed them all.

        Raises:
            DeliveryFailed: connection, TLS or confirmation failed (the receiver may or may not
                have some of the events; the forwarder sends them again).
        """
        if not events:
            return
        payload = b"".join(frame_octet_counting(self.message(chained)) for chained in events)
        with self._deliver_lock:
            replay = list(self._recent) if self._replay_due else []
            try:
                self._session([data for data, _ in replay] + [payload])
            except DeliveryFailed:
                self._replay_due = True
                raise
            self._replay_due = False
            self._replayed += sum(count for _, count in replay)
            self._remember(payload, len(events))

    def _remember(self, payload: bytes, count: int) -> None:
        self._recent.append((payload, count))
        size = sum(len(data) for data, _ in self._recent)
        while self._recent and (
            len(self._recent) > self._replay_batches or size > self._replay_bytes
        ):
            size -= len(self._recent.popleft()[0])

    def close(self) -> None:
        """Abort a delivery in progress in another thread (it raises :class:`DeliveryFailed`).

        No connection outlives a delivery, so there is nothing else to release.
        """
        with self._lock:
            sock = self._inflight
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._inflight = sock

    def _session(self, payloads: Sequence[bytes]) -> None:
        """One connection: handshake, send ``payloads``, confirmed close (module docstring)."""
        sockets: list[socket.socket] = []
        phase = "connect"
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sockets.append(raw)
            self._track(raw)
            phase = "TLS handshake"
            tls = self._context.wrap_socket(raw, server_hostname=self.server_name)
            sockets.append(tls)
            self._track(tls)
            phase = "send"
            for payload in payloads:
                tls.sendall(payload)
            phase = "confirmation"
            plain = tls.unwrap()  # close_notify out, the receiver's close_notify in
            sockets.append(plain)
            self._track(plain)
            _await_clean_eof(plain)  # the receiver closed its socket
            _await_acknowledged(plain, time.monotonic() + self.timeout)
        except OSError as exc:
            raise DeliveryFailed(
                f"syslog receiver {self.host}:{self.port}: {phase} failed: {_why(exc)}"
            ) from exc
        finally:
            self._track(None)
            for sock in reversed(sockets):
                with contextlib.suppress(OSError):
                    sock.close()


def _await_clean_eof(sock: socket.socket) -> None:
    """Wait for the receiver's FIN; a reset, a timeout or any byte after close_notify raises."""
    if sock.recv(1):
        raise _NotConfirmed("the receiver sent data after close_notify")


def _await_acknowledged(sock: socket.socket, deadline: float) -> None:
    """Wait until the kernel holds no unacknowledged bytes of ``sock`` (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    delay = 0.0005
    while True:
        failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if failure:
            raise OSError(failure, "connection failed after the receiver closed")
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # == SIOCOUTQ
        (unacked,) = struct.unpack("i", raw)
        if unacked == 0:
            return
        if time.monotonic() >= deadline:
            raise _NotConfirmed("the receiver did not acknowledge every byte")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
