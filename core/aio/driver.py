"""The asyncio driver of one sans-IO ``Endpoint``: a ``DatagramProtocol`` on one UDP socket.

Three inputs reach the core: datagrams (``datagram_received``), the one timer, and the
application's calls on ``Connection`` objects. After an input the driver hands the core's events
to their connections, then runs one *flush*: it wakes writers whose buffer drained, sends every
pending datagram with ``transport.sendto`` in a loop, and re-arms the one timer at the core's
earliest deadline.

Flushes are deferred with ``call_soon`` and coalesced: the datagrams uvloop reads in one poll
(up to a few dozen) and the writes an application makes in one turn of the loop are all
processed before one flush, so acknowledgements and small writes are batched into few packets.
On the stdlib loop the driver's own transport (``BatchingDatagramTransport``) reads every
queued datagram in one go as well (the stdlib's reads one per loop turn).
When a peer has just opened connections, the flush waits for their handlers' first step (a
loop turn, a few at most under a stream of new connections), so that an answer a handler
writes at once leaves in the packet that acknowledges the request, not in one of its own.

Sends (Linux): runs of equal-sized datagrams to one address go out as one ``sendmsg`` with
UDP generic segmentation offload (``UDP_SEGMENT``): one system call and one trip through the
loop and the kernel's socket layer per run instead of per datagram; the kernel (or the NIC)
cuts the run into ordinary datagrams, so the peer sees no difference. Off with the environment
variable ``MINIMALT_GSO=0`` or ``EndpointDriver.use_gso = False``; off by itself where the
kernel refuses it (then each datagram goes through ``transport.sendto`` as before).

Path MTU probing (RFC 8899; the core decides what to probe): the socket gets the IP
Don't-Fragment bit, so that a probe is only acknowledged if the path carried it whole; where
that cannot be set, the endpoint does not probe. A probe (a ``ProbeDatagram``) is sent on its
own, never in a GSO run, and a local EMSGSIZE for it goes back to the core, which then
abandons that size at once.

Time: ``now`` is always ``time.monotonic()``, never ``loop.time()`` (uvloop's ticks in whole
milliseconds, which would ruin RTT samples and pacing on loopback, DESIGN §16).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import logging
import os
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any

from ..proto import constants as C
from ..proto.crypto import SigningKeyPair
from ..proto.endpoint import Endpoint
from ..proto.errors import LocalProtocolError
from ..proto.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionOpened,
    DatagramReceived,
    DataReceived,
    EarlyDataRejected,
    RecordUpdated,
    TunnelClosed,
    TunnelEstablished,
    TunnelMigrated,
    TunnelRekeyed,
)
from ..proto.events import ConnectionRefused as ConnectionRefusedEvent
from ..proto.events import ConnectionReset as ConnectionResetEvent
from ..proto.packet import ProbeDatagram
from ..proto.records import ServerRecord
from ..proto.tunnel import OPEN, Tunnel
from .connection import Connection
from .errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeoutError,
    RecordError,
    TunnelClosedError,
)

logger = logging.getLogger("minimalt")

#: Socket buffers we ask for: a burst at loopback speed overflows Linux's 208 KiB default.
SOCKET_BUFFER = 4 << 20
#: Datagrams the stdlib-loop transport reads per wake-up before letting other callbacks run.
READ_BATCH = 64
#: Datagrams it queues when the socket's send buffer is full; beyond, it drops (it is UDP: the
#: tunnel's loss recovery resends what matters).
SEND_BACKLOG = 4096
_TIMER_FLOOR = 0.001
_INF = float("inf")

# --- UDP GSO (Linux >= 4.18) ---------------------------------------------------------------------
#: Send runs of equal-sized datagrams with one ``sendmsg`` each (UDP generic segmentation
#: offload). ``MINIMALT_GSO=0`` in the environment turns it off.
GSO_DEFAULT = sys.platform.startswith("linux") and os.environ.get("MINIMALT_GSO", "1") != "0"
_SOL_UDP = getattr(socket, "SOL_UDP", 17)
_UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
#: At most this many segments per call (the kernel's UDP_MAX_SEGMENTS: 64 before Linux 5.x).
GSO_MAX_SEGMENTS = 64
#: At most this many bytes per call: one IPv4 datagram's payload limit (65,507), with room.
GSO_MAX_BYTES = 65000
#: Loop turns a flush waits, at most, for the first step of handlers just started (so that an
#: answer they write at once shares the acknowledging packet).
_MAX_FLUSH_DEFERRALS = 4
#: ``sendmsg`` failing with these means the socket or device cannot segment: stop trying.
#: (Not EMSGSIZE: runs stay far below the 64 KiB a GSO call may carry, so it says that a
#: datagram is too big for the interface, which ``sendto`` then reports datagram by datagram.)
_GSO_UNSUPPORTED = frozenset({errno.EINVAL, errno.EIO, errno.EOPNOTSUPP, errno.ENOPROTOOPT})

# --- Don't-Fragment (path MTU probing) ----------------------------------------------------------
# Linux: IP_MTU_DISCOVER / IPV6_MTU_DISCOVER = *_PMTUDISC_PROBE sets DF and sends up to the
# interface's MTU whatever the kernel's path MTU cache says (probing is ours; a cached or forged
# ICMP figure must not stop it). Python 3.11 does not name these; the values are Linux's ABI.
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PMTUDISC_PROBE = getattr(socket, "IP_PMTUDISC_PROBE", 3)
_IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
_IPV6_PMTUDISC_PROBE = getattr(socket, "IPV6_PMTUDISC_PROBE", 3)


def set_dont_fragment(sock: Any) -> bool:
    """Set the IP Don't-Fragment bit on the UDP socket ``sock``; False where it cannot be set.

    Path MTU probing needs it: a probe the network fragments and reassembles would be
    acknowledged although the path does not carry a datagram that big, and every packet of
    that size would then be fragmented (or lost) for good."""
    try:
        family = sock.family
        if sys.platform.startswith("linux"):
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_PROBE)
                return True
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _IPV6_PMTUDISC_PROBE)
                try:  # IPv4-mapped peers of a dual-stack socket
                    sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_PROBE)
                except OSError:
                    pass
                return True
            return False
        # BSD, macOS (IP_DONTFRAG) and Windows (IP_DONTFRAGMENT), where Python names them.
        if family == socket.AF_INET:
            option = getattr(socket, "IP_DONTFRAG", None) or getattr(
                socket, "IP_DONTFRAGMENT", None
            )
            if option is None:
                return False
            sock.setsockopt(socket.IPPROTO_IP, option, 1)
            return True
        if family == socket.AF_INET6 and hasattr(socket, "IPV6_DONTFRAG"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DONTFRAG, 1)
            return True
    except (OSError, AttributeError, ValueError):
        pass
    return False


class _TunnelState:
    """What the driver keeps per tunnel: its connections and how to name it in errors."""

    __slots__ = ("conns", "connect_timer", "_label", "timed_out", "tunnel")

    def __init__(self, tunnel: Tunnel, label: str | None = None) -> None:
        self.tunnel = tunnel
        self._label = label
        self.conns: dict[int, Connection] = {}
        self.connect_timer: asyncio.TimerHandle | None = None
        self.timed_out: float | None = None  # the connect timeout that expired, if one did

    @property
    def label(self) -> str:
        """How errors name the tunnel: given, or (a server's tunnel) its client's address,
        made only when an error needs it."""
        return self._label or f"client {_address_label(self.tunnel.peer)}"


def _address_label(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class EndpointDriver(asyncio.DatagramProtocol):
    """Runs one core ``Endpoint`` on one UDP socket. Created with :meth:`create`.

    ``on_connection`` is called with each ``Connection`` a peer opens to a service the endpoint
    accepts (servers); without it such connections are reset.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        loop: asyncio.AbstractEventLoop,
        *,
        on_connection: Callable[[Connection], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.on_connection = on_connection
        #: Called with each ``TunnelMigrated`` (a peer's new address passed its path check) and
        #: ``TunnelRekeyed`` (a tunnel moved to a new TID) event, for monitoring.
        self.on_path_event: Callable[[TunnelMigrated | TunnelRekeyed], None] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.sockname: Any = None
        #: Connections waiting in ``drain()``; checked after every input.
        self.drainers: set[Connection] = set()
        #: Connections whose FIN is sent and not yet acknowledged; checked after every input.
        self.closing: set[Connection] = set()
        self._tunnels: dict[Tunnel, _TunnelState] = {}
        # Client side: the tunnel to each (server identity, address), reused while open. The
        # core's ``connect`` would find it too, but only after verifying the record's signature
        # again (~40-150 us), which would dominate opening a connection on an open tunnel.
        self._client_tunnels: dict[tuple[bytes, Any], Tunnel] = {}
        #: Client side: the newest record each server (by identity) handed us in-band, after a
        #: key rotation or at a bootstrap (``connect_bootstrap``); for callers that keep records.
        self.learned_records: dict[bytes, ServerRecord] = {}
        self._flush_scheduled = False
        # A peer opened connections whose handlers were just started: the flush waits one
        # loop turn for their first step, so that an answer they write at once goes out in
        # the same packet as the acknowledgement instead of a packet of its own.
        self._handlers_started = False
        self._flush_deferrals = 0  # loop turns the pending flush has waited for handlers
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _INF
        self._closing = False
        self._lost: asyncio.Future[None] = loop.create_future()
        self._sendto: Callable[..., None] | None = None
        #: The socket's ``sendmsg`` for GSO runs (a dup of the transport's descriptor under
        #: uvloop, whose socket object has no ``sendmsg``); None when GSO is off.
        self._sendmsg: Callable[..., int] | None = None
        self._gso_sock: socket.socket | None = None  # the dup we own and close, if any
        self._gso_cmsg: dict[int, list[tuple[int, int, bytes]]] = {}
        self._probes_seen = 0  # the endpoint's pmtu_probes_sent at the last flush
        self._probe_in_send: tuple[bytes, Any] | None = None  # for error_received
        self._receive = endpoint.receive_datagram
        # Typed Any: the dispatch below tests ``type(event) is X`` (faster than isinstance).
        self._next_event: Callable[[], Any] = endpoint.next_event

    @classmethod
    async def create(
        cls,
        endpoint: Endpoint,
        local_addr: tuple[str, int],
        *,
        family: int = 0,
        on_connection: Callable[[Connection], None] | None = None,
        reuse_port: bool | None = None,
    ) -> EndpointDriver:
        """Bind a UDP socket at ``local_addr`` and start driving ``endpoint`` on it."""
        loop = asyncio.get_running_loop()
        if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            # The stdlib's datagram transport reads one datagram per loop iteration; ours
            # reads every queued one, so a burst costs one flush instead of one per datagram.
            sock = await _bind_udp(loop, local_addr, family, reuse_port)
            protocol = cls(endpoint, loop, on_connection=on_connection)
            BatchingDatagramTransport(loop, sock, protocol)
            return protocol
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(endpoint, loop, on_connection=on_connection),
            local_addr=local_addr,
            family=family,
            reuse_port=reuse_port,
        )
        return protocol

    #: Send with UDP GSO where the kernel allows it (class-wide; see ``GSO_DEFAULT``).
    use_gso: bool = GSO_DEFAULT

    # --- asyncio.DatagramProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._sendto = transport.sendto  # type: ignore[attr-defined]
        self.sockname = transport.get_extra_info("sockname")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                except OSError:  # pragma: no cover - capped or refused by the OS: keep its size
                    pass
        self._close_gso()  # (rebind: a new transport)
        if sock is not None and self.use_gso:
            self._open_gso(sock)
        if self.endpoint.config.pmtu_probing and (sock is None or not set_dont_fragment(sock)):
            self.endpoint.pmtu_probing = False
            logger.debug(
                "minimalt endpoint %s: no Don't-Fragment bit, no PMTU probing", self.sockname
            )

    def _open_gso(self, sock: Any) -> None:
        """Find a ``sendmsg`` on the transport's socket and check the kernel knows GSO."""
        try:
            if sock.type != socket.SOCK_DGRAM or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                return
            if isinstance(sock, socket.socket):  # our own transport (stdlib loop)
                real = sock
            else:  # uvloop's PseudoSocket: its sendmsg takes no arguments
                real = self._gso_sock = socket.socket(fileno=os.dup(sock.fileno()))
                real.setblocking(False)  # (shared with the transport's descriptor: it is)
            real.getsockopt(_SOL_UDP, _UDP_SEGMENT)  # ENOPROTOOPT before Linux 4.18
        except (OSError, AttributeError, ValueError):
            self._close_gso()
            return
        self._sendmsg = real.sendmsg

    def _close_gso(self) -> None:
        self._sendmsg = None
        if self._gso_sock is not None:
            self._gso_sock.close()
            self._gso_sock = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receive(data, addr, monotonic())
        self._process_events()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable, ...) surface here on some platforms. The tunnel's own
        # timers decide when a peer is gone; one ICMP message is not proof enough.
        sending = self._probe_in_send
        if sending is not None and getattr(exc, "errno", None) == errno.EMSGSIZE:
            # A path MTU probe bigger than the interface carries: the core drops that size.
            self._probe_in_send = None
            self.endpoint.datagram_too_big(sending[0], sending[1], monotonic())
            self.schedule_flush()
            return
        logger.debug("minimalt endpoint %s: socket error %s", self.sockname, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._sendto = None
        self._close_gso()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for state in list(self._tunnels.values()):
            self._fail_tunnel(
                state, lambda label: TunnelClosedError(f"tunnel to {label} closed: socket closed")
            )
        self._tunnels.clear()
        if not self._lost.done():
            self._lost.set_result(None)

    # --- flush and timer ------------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Ask for one flush soon (after the current callback and its siblings)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._handlers_started and self._flush_deferrals < _MAX_FLUSH_DEFERRALS:
            # Handler tasks started since this flush was scheduled run their first step
            # before it (they were scheduled after it): go round once more, behind them.
            # A few times at most: under a steady stream of new connections (each loop turn
            # starting more handlers) a flush must still come.
            self._flush_deferrals += 1
            self._handlers_started = False
            self.loop.call_soon(self._flush)
            return
        self._flush_deferrals = 0
        self._handlers_started = False
        self._flush_scheduled = False
        sendto = self._sendto
        if sendto is None:
            return
        if self.drainers:
            for conn in list(self.drainers):
                conn._check_drain()
        if self.closing:
            for conn in list(self.closing):
                conn._check_send_done()
        endpoint = self.endpoint
        datagrams = endpoint.datagrams_to_send(monotonic())
        probes: list[tuple[bytes, Any]] = []
        if endpoint.pmtu_probes_sent != self._probes_seen:  # rare: path MTU probes among them
            self._probes_seen = endpoint.pmtu_probes_sent
            probes = [item for item in datagrams if type(item[0]) is ProbeDatagram]
            datagrams = [item for item in datagrams if type(item[0]) is not ProbeDatagram]
        if self._sendmsg is not None and len(datagrams) > 1:
            self._send_gso(datagrams)
        else:
            for data, addr in datagrams:
                sendto(data, addr)
        for data, addr in probes:  # each on its own, so that an EMSGSIZE names it
            self._probe_in_send = (data, addr)
            try:
                sendto(data, addr)
            finally:
                self._probe_in_send = None
        self._process_events()
        self._arm_timer()

    def _send_gso(self, datagrams: list[tuple[bytes, Any]]) -> None:
        """Send ``datagrams`` in order: each run of equal-sized datagrams to one address (the
        last may be shorter) as one ``sendmsg`` with ``UDP_SEGMENT``, lone ones with ``sendto``.
        On a full socket buffer the rest goes through ``sendto``, which queues it; on an error
        saying GSO cannot work here, GSO is turned off for this driver."""
        sendto = self._sendto
        assert sendto is not None and self.transport is not None
        if self.transport.get_write_buffer_size():  # type: ignore[attr-defined]
            # The transport holds a queue: going around it would reorder. Let it carry all.
            for data, addr in datagrams:
                sendto(data, addr)
            return
        sendmsg = self._sendmsg
        n = len(datagrams)
        # The usual case, tested at C speed: one tunnel's burst, all to one address, all of one
        # size but the last, few enough for one call.
        bufs, addrs = zip(*datagrams, strict=True)
        size = len(bufs[0])
        addr = addrs[0]
        if (
            n <= GSO_MAX_SEGMENTS
            and n * size <= GSO_MAX_BYTES
            and addrs.count(addr) == n
            and (same := list(map(len, bufs)).count(size)) >= n - 1
            and (same == n or len(bufs[-1]) < size)  # the odd one out, if any, is the last
        ):
            try:
                sendmsg(bufs, self._gso_control(size), 0, addr)  # type: ignore[misc]
            except OSError as exc:
                self._gso_failed(exc)
                for data, addr in datagrams:
                    sendto(data, addr)
            return
        i = 0
        while i < n:
            data, addr = datagrams[i]
            size = len(data)
            end = min(n, i + min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // max(size, 1)))
            j = i + 1
            while j < end:
                other, to = datagrams[j]
                if to is not addr and to != addr:
                    break
                length = len(other)
                if length != size:
                    if length < size:  # a shorter one may close the run
                        j += 1
                    break
                j += 1
            if j - i == 1:
                sendto(data, addr)
                i = j
                continue
            try:
                sendmsg(bufs[i:j], self._gso_control(size), 0, addr)  # type: ignore[misc]
            except OSError as exc:
                if not self._gso_failed(exc):
                    break  # sendto below carries the rest (queued, if the buffer is full)
                for d, a in datagrams[i:j]:  # this destination's error: sendto reports it
                    sendto(d, a)
            i = j
        for d, a in datagrams[i:]:
            sendto(d, a)

    def _gso_control(self, size: int) -> list[tuple[int, int, bytes]]:
        """The ancillary data of a GSO ``sendmsg``: segments of ``size`` bytes."""
        cmsg = self._gso_cmsg.get(size)
        if cmsg is None:
            cmsg = self._gso_cmsg[size] = [(_SOL_UDP, _UDP_SEGMENT, struct.pack("=H", size))]
        return cmsg

    def _gso_failed(self, exc: OSError) -> bool:
        """A GSO ``sendmsg`` raised ``exc`` (nothing was sent). True if it concerns only that
        run's destination (then ``sendto`` should send the run and report the error, and GSO
        carry on); False if every later send should go through ``sendto``: the buffer is full
        (EAGAIN, ENOBUFS: the transport queues), or the kernel refused GSO (now off)."""
        if isinstance(exc, (BlockingIOError, InterruptedError)) or exc.errno == errno.ENOBUFS:
            return False
        if exc.errno in _GSO_UNSUPPORTED:
            logger.debug("minimalt endpoint %s: UDP GSO off (%s)", self.sockname, exc)
            self._close_gso()
            return False
        return True

    def _arm_timer(self) -> None:
        deadline = self.endpoint.get_timer()
        # An armed timer that fires no later than needed is kept: an early wake-up costs one
        # idle handle_timer, while cancelling and re-creating a timer per packet costs more.
        if deadline is None or deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = deadline - monotonic()
        if delay > 0.0:
            # uvloop's timers tick in whole milliseconds and run a shorter delay at once: a
            # deadline a few hundred microseconds away would fire, find nothing due, re-arm
            # and spin until it passes. At least a millisecond: at worst that much late.
            delay = max(delay, _TIMER_FLOOR)
        self._timer = self.loop.call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = _INF
        if self._sendto is None:
            return
        try:
            self.endpoint.handle_timer(monotonic())
            self._process_events()
        except Exception:  # a core bug must not leave the endpoint without a timer
            logger.exception("minimalt: endpoint timer failed")
        if self._handlers_started and self._flush_scheduled:
            return  # the scheduled flush sends (and re-arms) once the new handlers had a step
        self._flush()

    # --- events ---------------------------------------------------------------------------------

    def _process_events(self) -> None:
        next_event = self._next_event
        tunnels = self._tunnels
        while (event := next_event()) is not None:
            kind = type(event)
            if kind is DataReceived:
                state = tunnels.get(event.tunnel)
                conn = state.conns.get(event.cid) if state is not None else None
                if conn is not None:
                    conn._feed(event.data, event.end_stream)
                elif event.data and event.tunnel.state == OPEN:
                    # Nobody reads this connection any more: its bytes still count against the
                    # tunnel's window, so release them.
                    event.tunnel.consume(event.cid, len(event.data))
            elif kind is ConnectionOpened:
                self._on_opened(event)
            elif kind is ConnectionAccepted:
                conn = self._conn(event.tunnel, event.cid)
                if conn is not None:
                    conn._on_accepted()
            elif kind is ConnectionClosed:
                conn = self._conn(event.tunnel, event.cid)
                if conn is not None:
                    conn._on_closed()
            elif kind is ConnectionResetEvent:
                conn = self._conn(event.tunnel, event.cid)
                if conn is not None:
                    conn._fail(
                        ConnectionReset(
                            f"connection {event.cid} ({conn.service!r}) reset by the peer "
                            f"(code {event.code:#x})",
                            event.code,
                        )
                    )
            elif kind is ConnectionRefusedEvent:
                conn = self._conn(event.tunnel, event.cid)
                if conn is not None:
                    label = tunnels[event.tunnel].label
                    conn._fail(
                        ConnectionRefused(
                            f"{label} refused a connection to service {conn.service!r}: "
                            f"{event.reason or 'no reason given'} (code {event.code:#x})",
                            event.code,
                        )
                    )
            elif kind is TunnelEstablished:
                state = tunnels.get(event.tunnel)
                if state is not None and state.connect_timer is not None:
                    state.connect_timer.cancel()
                    state.connect_timer = None
            elif kind is TunnelClosed:
                self._on_tunnel_closed(event)
            elif kind is DatagramReceived:
                conn = self._conn(event.tunnel, event.cid)
                if conn is not None:
                    conn._feed_datagram(event.data)
            elif kind is EarlyDataRejected:
                logger.debug("minimalt: %r: early data rejected, resending", event.tunnel)
            elif kind is RecordUpdated:
                logger.debug("minimalt: %r: the server handed us its newer record", event.tunnel)
                record = event.record
                known = self.learned_records.get(record.identity)
                if known is None or record.expires >= known.expires:
                    self.learned_records[record.identity] = record
            elif kind is TunnelMigrated or kind is TunnelRekeyed:
                logger.debug("minimalt: %r", event)
                if self.on_path_event is not None:
                    self.on_path_event(event)

    def _conn(self, tunnel: Tunnel, cid: int) -> Connection | None:
        state = self._tunnels.get(tunnel)
        return state.conns.get(cid) if state is not None else None

    def _on_opened(self, event: ConnectionOpened) -> None:
        tunnel = event.tunnel
        state = self._tunnels.get(tunnel)
        if state is None:
            state = self._tunnels[tunnel] = _TunnelState(tunnel)
        conn = Connection(
            self, tunnel, event.cid, event.service, local=False, retry_safe=event.retry_safe
        )
        conn.user = event.user
        state.conns[event.cid] = conn
        if self.on_connection is None:
            conn.abort()
            return
        self.on_connection(conn)
        self._handlers_started = True

    def _on_tunnel_closed(self, event: TunnelClosed) -> None:
        if event.tunnel.is_client:
            for key, tunnel in list(self._client_tunnels.items()):
                if tunnel is event.tunnel:  # (its peer may have moved since: match the object)
                    del self._client_tunnels[key]
        state = self._tunnels.pop(event.tunnel, None)
        if state is None or (not state.conns and state.connect_timer is None):
            return  # nobody to tell (a server's tunnel whose handlers are done, say)
        tunnel = event.tunnel
        if (
            tunnel.is_client
            and not tunnel.established
            and (state.timed_out is not None or event.code == C.ERR_IDLE_TIMEOUT)
        ):
            waited = state.timed_out
            if waited is None:
                waited = monotonic() - tunnel.created_at
            message = (
                f"no answer from {state.label} within {waited:.3g} s (is the server running, "
                "and is its record current?)"
            )
            self._fail_tunnel(state, lambda label: ConnectTimeoutError(message))
            return
        if event.code == C.ERR_SERVER_BUSY:
            reason = event.reason
            self._fail_tunnel(
                state,
                lambda label: ConnectionRefused(
                    f"{label} refused a new tunnel: {reason} (try again later)",
                    C.ERR_SERVER_BUSY,
                ),
            )
            return
        if event.by_peer:
            why = f"closed by the peer: {event.reason or 'no reason given'}"
        elif event.code == C.ERR_IDLE_TIMEOUT:
            idle = self.endpoint.config.idle_timeout
            why = f"closed: idle timeout (no packet from the peer for {idle:g} s)"
        else:
            why = f"closed: {event.reason or 'closed locally'}"
        code = event.code
        self._fail_tunnel(
            state,
            lambda label: TunnelClosedError(f"tunnel to {label} {why} (code {code:#x})", code),
        )

    def _fail_tunnel(self, state: _TunnelState, make: Callable[[str], BaseException]) -> None:
        if state.connect_timer is not None:
            state.connect_timer.cancel()
            state.connect_timer = None
        for conn in list(state.conns.values()):
            conn._fail(make(state.label))
        state.conns.clear()

    def forget(self, conn: Connection) -> None:
        """``conn`` is over: stop routing events to it."""
        state = self._tunnels.get(conn.tunnel)
        if state is not None and state.conns.get(conn.cid) is conn:
            del state.conns[conn.cid]
        self.drainers.discard(conn)
        self.closing.discard(conn)

    # --- client side ----------------------------------------------------------------------------

    def open_connection(
        self,
        record: ServerRecord | None,
        addr: Any,
        service: str,
        *,
        retry_safe: bool,
        connect_timeout: float | None,
        user: SigningKeyPair | None = None,
        identity: bytes | None = None,
    ) -> Connection:
        """A new connection to ``service`` at the server ``record`` names, over the open tunnel
        to it if there is one. Returns at once; nothing waits for the network.

        Without a record, ``identity`` names the server at ``addr`` and a new tunnel starts with
        ``connect_bootstrap`` (one round trip more: the server answers with its record).
        ``user``: open the connection as that user (createAuth)."""
        if self._sendto is None or self._closing:
            raise TunnelClosedError("the client endpoint is closed")
        server_identity = record.identity if record is not None else identity
        if server_identity is None:
            raise LocalProtocolError("open_connection needs a record or the server's identity")
        key = (server_identity, addr)
        tunnel = self._client_tunnels.get(key)
        if tunnel is None or tunnel.state != OPEN:
            try:
                if record is None:
                    tunnel = self.endpoint.connect_bootstrap(server_identity, addr, monotonic())
                else:
                    tunnel = self.endpoint.connect(record, monotonic(), addr=addr)
            except LocalProtocolError as exc:
                raise RecordError(str(exc)) from None
            self._client_tunnels[key] = tunnel
        state = self._tunnels.get(tunnel)
        if state is None:
            who = f"server {record.name!r} at " if record is not None and record.name else "server "
            state = self._tunnels[tunnel] = _TunnelState(tunnel, who + _address_label(addr))
            if connect_timeout is not None and not tunnel.established:
                state.connect_timer = self.loop.call_later(
                    connect_timeout, self._connect_timed_out, tunnel, connect_timeout
                )
        cid = tunnel.open_connection(service, retry_safe=retry_safe, user=user)
        conn = Connection(self, tunnel, cid, service, local=True, retry_safe=retry_safe)
        conn.user = user.public if user is not None else None
        state.conns[cid] = conn
        self.schedule_flush()
        return conn

    def _connect_timed_out(self, tunnel: Tunnel, timeout: float) -> None:
        state = self._tunnels.get(tunnel)
        if state is None or tunnel.established:
            return
        state.connect_timer = None
        state.timed_out = timeout
        tunnel.close(C.ERR_NONE, "connect timeout")
        self._process_events()
        self.schedule_flush()

    async def rebind(self, local_addr: tuple[str, int], *, family: int = 0) -> Any:
        """Move to a new UDP socket bound at ``local_addr`` and close the old one, as when a
        NAT rebinds or a host changes network. The tunnels carry on: a server follows a client
        to its new address once the address answers a path challenge, and a client tunnel
        moves to a new TID, so the old and new locations cannot be linked. Returns the new
        socket's address."""
        if self._sendto is None or self._closing:
            raise TunnelClosedError("the endpoint is closed")
        old = self.transport
        loop = self.loop
        if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            sock = await _bind_udp(loop, local_addr, family, None)
            BatchingDatagramTransport(loop, sock, self)  # calls connection_made
        else:
            await loop.create_datagram_endpoint(lambda: self, local_addr=local_addr, family=family)
        if old is not None:
            # The old socket's end must not look like ours: detach it, then close it. What
            # still arrives at the old address is lost, as after a real move.
            old.set_protocol(asyncio.DatagramProtocol())
            old.close()
        now = monotonic()
        for tunnel in list(self.endpoint.tunnels.values()):
            if tunnel.is_client and tunnel.state == OPEN and tunnel.established:
                # A new TID for the new location; its first packet goes out at once, so the
                # server learns of the move even if we had nothing else to send.
                tunnel.rekey(now)
        self._process_events()
        self.schedule_flush()
        return self.sockname

    # --- lifetime -------------------------------------------------------------------------------

    @property
    def tunnels(self) -> list[Tunnel]:
        """The tunnels this endpoint holds (open or closing)."""
        return list(self.endpoint.tunnels.values())

    def close_tunnels(self, reason: str) -> None:
        """Close every tunnel, telling each peer ``reason``; their connections fail at once."""
        for tunnel in list(self.endpoint.tunnels.values()):
            if tunnel.state == OPEN:
                tunnel.close(C.ERR_NONE, reason)
        self._process_events()
        if self._sendto is not None:
            for data, addr in self.endpoint.datagrams_to_send(monotonic()):
                self._sendto(data, addr)

    def close(self, reason: str = "endpoint closed") -> None:
        """Close every tunnel (peers are told) and then the socket. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self.close_tunnels(reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    def is_closing(self) -> bool:
        return self._closing or self.transport is None

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)


# --- a batching UDP transport for the stdlib selector loop ---------------------------------------


async def _bind_udp(
    loop: asyncio.AbstractEventLoop,
    local_addr: tuple[str, int],
    family: int,
    reuse_port: bool | None,
) -> socket.socket:
    host, port = local_addr
    infos = await loop.getaddrinfo(
        host, port, family=family, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )
    error: OSError | None = None
    for fam, kind, proto, _, address in infos:
        sock = socket.socket(fam, kind, proto)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setblocking(False)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error if error is not None else OSError(f"cannot resolve {host!r}")


class BatchingDatagramTransport(asyncio.DatagramTransport):
    """A UDP transport for selector event loops: on each wake-up it reads every datagram
    queued (up to ``READ_BATCH``), so the driver flushes once per burst; sends go straight to
    the socket, queued only while its buffer is full. Public loop API only (add_reader)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
    ) -> None:
        super().__init__(extra={"socket": sock, "sockname": sock.getsockname()})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._backlog: deque[tuple[bytes, Any]] = deque()
        self._closing = False
        self._lost = False
        loop.add_reader(self._fd, self._read_ready)
        protocol.connection_made(self)

    def _read_ready(self) -> None:
        recvfrom = self._sock.recvfrom
        received = self._protocol.datagram_received
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            received(data, addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            return
        if self._backlog:
            if len(self._backlog) < SEND_BACKLOG:
                self._backlog.append((data, addr))
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._backlog.append((data, addr))
            self._loop.add_writer(self._fd, self._write_ready)
        except OSError as exc:
            self._protocol.error_received(exc)

    def _write_ready(self) -> None:
        backlog = self._backlog
        while backlog:
            data, addr = backlog[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
            backlog.popleft()
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._loop.call_soon(self._connection_lost)

    def get_write_buffer_size(self) -> int:
        return sum(len(data) for data, _ in self._backlog)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; close once the queued datagrams are sent."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._backlog:
            self._loop.call_soon(self._connection_lost)

    def abort(self) -> None:
        self._backlog.clear()
        self._loop.remove_writer(self._fd)
        self._closing = False
        self.close()

    def _connection_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        try:
            self._protocol.connection_lost(None)
        finally:
            self._sock.close()
