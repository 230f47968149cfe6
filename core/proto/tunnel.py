"""A tunnel: the encrypted, reliable, congestion-controlled channel between two hosts.

One ``Tunnel`` per peer. It owns the two direction keys and their nonces, the replay window,
acknowledgements, loss recovery, congestion control, pacing and the tunnel-wide flow-control
window, and multiplexes ``Connection``s over all that. Connection 0 is the control connection:
its RPCs (Create, Refuse, Reset, the window updates, Close, Hello) are frames without a stream.

The tunnel does no I/O: the ``Endpoint`` hands it authenticated-looking datagrams
(``receive``), asks it for datagrams (``datagrams_to_send``) and fires its timer
(``handle_timer``). The application drives it with ``open_connection``, ``send``, ``consume``,
``reset_connection``, ``send_datagram`` and ``close``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from . import constants as C
from . import events
from .congestion import Pacer, create_congestion_control
from .connection import Connection
from .crypto import (
    BoxKeyPair,
    DirectionKey,
    SigningKeyPair,
    auth_binding,
    client_to_server_key,
    evolve_key,
    next_tid,
    server_to_client_key,
    verify_signature,
)
from .errors import (
    FinalSizeError,
    FlowControlError,
    FrameEncodingError,
    LocalProtocolError,
    RemoteProtocolError,
)
from .frames import (
    Blocked,
    Close,
    Create,
    Datagram,
    Hello,
    HelloAck,
    MaxConnData,
    MaxConns,
    MaxData,
    NewRecord,
    PathChallenge,
    PathResponse,
    Ping,
    Refuse,
    RekeyNow,
    Reset,
    auth_message,
    decode_ack,
    decode_frame,
    encode_ack,
    encode_frame,
    encode_max_conn_data,
    encode_max_conns,
    encode_max_data,
    read_varint,
    skip_padding,
    stream_header,
    stream_overhead,
)
from .packet import Header, ProbeDatagram, build_header
from .pmtud import BASE, DISABLED, SEARCHING, PathMtu
from .puzzle import busy_limit, solve
from .rangeset import RangeSet
from .records import RecordError, ServerRecord
from .recovery import LossRecovery, SentPacket
from .replay import ReplayWindow
from .streams import BytesLike

if TYPE_CHECKING:
    from .endpoint import Endpoint

# Tunnel states.
OPEN = "open"
CLOSING = "closing"  # we sent Close; we linger to repeat it if the peer keeps talking
# The peer sent Close: silent from now on. Passed through at once: the tunnel is forgotten
# and the endpoint only remembers its TIDs until the linger ends (Endpoint._remove).
DRAINING = "draining"
CLOSED = "closed"

# Tags of the records a sent packet keeps about its retransmittable content.
_M_STREAM = 0  # (tag, cid, offset, length, fin)
_M_CONTROL = 1  # (tag, frame): resend the same frame
_M_ACK = 2  # (tag, largest acknowledged in the ACK we sent)
_M_CONN_WINDOW = 3  # (tag, cid): resend the current window
_M_TUNNEL_WINDOW = 4  # (tag,)
_M_CREATE = 5  # (tag, cid)
_M_MAX_CONNS = 6  # (tag,)
_M_HELLO = 7  # (tag,): a client first-flight packet
_M_PMTU_PROBE = 8  # (tag, size): a path MTU probe (nothing to resend if lost)

_AEAD_OVERHEAD = C.BOX_TAG_SIZE
_MAX_STREAM_OFFSET = (1 << 62) - 1
_PLAIN_HEADER = struct.Struct(">QQ")  # TID (no flags) and nonce: the header of most packets
_MAX_PUZZLES = 4  # puzzles a client solves for one tunnel before giving up on them
# Below this many bytes of amplification budget a server does not bother to send a packet.
_MIN_UNVALIDATED_PACKET = C.HEADER_SIZE + C.DIVERSIFIER_SIZE + _AEAD_OVERHEAD + 32
# Frames a server ignores from a client whose early data it refused, until the client proves
# it got the refusal (by acknowledging a server packet).
_EARLY_APPLICATION_FRAMES = frozenset({Create, Reset, Datagram, MaxConnData})
_PING = b"\x01"
# A packet with at most this much room left was filled: the sender has bulk data, and path MTU
# probing (which small exchanges never repay) may start.
_FULL_PACKET_SLACK = 24


class Tunnel:
    """See the module docstring. Created by ``Endpoint.connect`` (client) or by the endpoint when
    an authenticated first packet arrives (server)."""

    __slots__ = (
        "_ack_deadline",
        "_ack_eliciting_unacked",
        "_accepting",
        "_ack_immediately",
        "_app_limited",
        "_auth_binding",
        "_blocked_sent_at",
        "_client_keypair",
        "_close_deadline",
        "_close_frame",
        "_close_sent",
        "_control",
        "_data_consumed",
        "_data_received",
        "_data_sent",
        "_datagrams",
        "_diversifier",
        "_early_recv_key",
        "_epoch_first_packet",
        "_epoch_started",
        "_first_later_pn",
        "_hello",
        "_hello_pending",
        "_key_section",
        "_largest_recv_pn",
        "_largest_recv_time",
        "_last_received",
        "_mds",
        "_last_sent",
        "_last_stream_data",
        "_waiting_pings",
        "_local_max_conns",
        "_local_max_data",
        "_local_opened",
        "_max_conns_pending",
        "_next_local_cid",
        "_next_pn",
        "_next_tid",
        "_old_recv_key",
        "_old_tid",
        "_pacer_wake",
        "_parity",
        "_path_budget",
        "_path_candidate",
        "_path_challenge",
        "_path_challenge_sent",
        "_path_out",
        "_peer_cids",
        "_peer_conns_closed",
        "_peer_has_diversifier",
        "_peer_max_conns",
        "_peer_max_data",
        "_peer_open",
        "_pmtu",
        "_pmtu_hold",
        "_pmtu_watch",
        "_probes",
        "_puzzle_answer",
        "_puzzles_solved",
        "_ready",
        "_recv_key",
        "_recv_pns",
        "_rekey_wanted",
        "_replay",
        "_restarts",
        "_scheduled",
        "_send_key",
        "_shared",
        "_source",
        "_trace",
        "_tunnel_window_pending",
        "_unvalidated_received",
        "_unvalidated_sent",
        "_window_updates",
        "address_validated",
        "bytes_received",
        "bytes_sent",
        "clock_skew_ms",
        "config",
        "connections",
        "created_at",
        "drops",
        "early_data_accepted",
        "early_refusal",
        "endpoint",
        "epoch",
        "established",
        "identity",
        "is_client",
        "pacer",
        "packets_lost",
        "packets_received",
        "packets_retransmitted",
        "packets_sent",
        "peer",
        "recovery",
        "server_key_id",
        "state",
        "tid",
        "__weakref__",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        is_client: bool,
        tid: int,
        peer: Any,
        now: float,
        send_key: DirectionKey,
        recv_key: DirectionKey | None,
    ) -> None:
        config = endpoint.config
        self.endpoint = endpoint
        self.config = config
        self.is_client = is_client
        self.tid = tid
        self.peer = peer
        self.state = OPEN
        self.created_at = now
        #: An authenticated packet from the peer arrived (for a server: the first packet,
        #: processed right after the tunnel is made).
        self.established = False

        self._send_key = send_key
        self._recv_key = recv_key
        # Server only: the key of the client's first-flight packets (the ones carrying its
        # public key), kept until a packet under the later key proves the client's address.
        self._early_recv_key: DirectionKey | None = None
        self._parity = C.CLIENT_NONCE_PARITY if is_client else C.SERVER_NONCE_PARITY
        self._next_pn = 0
        self._replay = ReplayWindow()
        # Client only, until the server's first packet: what we need to derive the receive key.
        self._shared: bytes | None = None
        self._key_section: bytes | None = None  # client ephemeral key + key id, in clear
        # Server only: the diversifier we send until the client acknowledges a packet of ours.
        self._diversifier: bytes | None = None
        self._peer_has_diversifier = is_client
        self.identity: bytes | None = None  # client: the server's identity key
        self._client_keypair: BoxKeyPair | None = None  # client, until the server answers
        self._restarts = 0  # client: first flights redone for a server's newer record
        #: The id of the server ephemeral key this tunnel was opened with.
        self.server_key_id: bytes | None = None
        self._auth_binding = b""  # secret to both ends: what user authenticators sign

        # Acknowledgements of what we receive.
        self._recv_pns = RangeSet()
        self._ack_eliciting_unacked = 0
        self._ack_deadline: float | None = None
        self._largest_recv_pn = -1
        self._largest_recv_time = 0.0
        self._ack_immediately = False

        # Path MTU discovery: the largest datagram we send now (the base size until probing
        # proves more); whether a filled packet should start probing; the search, made when it
        # starts (most tunnels never fill a packet: they need not carry it).
        self._mds = config.max_datagram_size
        self._pmtu_watch = (
            config.pmtu_probing
            and endpoint.pmtu_probing
            and config.max_probed_datagram_size > config.max_datagram_size
        )
        self._pmtu: PathMtu | None = None
        self._pmtu_hold = False  # a probe is waiting for room in the window: data waits too

        # Loss recovery, congestion control, pacing.
        self.recovery = LossRecovery(
            create_congestion_control(config.congestion_control, config.max_datagram_size),
            max_ack_delay=config.max_ack_delay,
            initial_rtt=config.initial_rtt,
        )
        self.pacer = Pacer(config.max_datagram_size) if config.pacing else None
        self._pacer_wake: float | None = None
        self._app_limited = False
        self._probes = 0

        # Connections.
        self.connections: dict[int, Connection] = {}
        self._ready: list[Connection] = []  # connections that may have data to send
        self._window_updates: list[Connection] = []  # connections owing a MaxConnData
        self._next_local_cid = 1 if is_client else 2
        self._local_opened = 0  # connections we opened (ordinal of the last one)
        self._peer_max_conns = C.INITIAL_MAX_CONNS  # how many the peer lets us open in total
        self._peer_cids = RangeSet()  # peer-initiated cids ever seen (as ordinals)
        self._peer_open = 0  # peer-initiated connections currently open
        self._local_max_conns = C.INITIAL_MAX_CONNS  # cumulative limit we granted the peer
        self._max_conns_pending = config.max_connections > C.INITIAL_MAX_CONNS
        self._peer_conns_closed = 0

        # Tunnel-wide flow control.
        self._peer_max_data = C.INITIAL_TUNNEL_WINDOW
        self._data_sent = 0  # new stream bytes sent, all connections
        self._local_max_data = C.INITIAL_TUNNEL_WINDOW
        self._data_received = 0  # highest offsets received, summed over connections
        self._data_consumed = 0
        self._tunnel_window_pending = config.tunnel_window > C.INITIAL_TUNNEL_WINDOW
        self._blocked_sent_at = -1

        self._control: list[Any] = []  # control frames waiting to be sent
        self._datagrams: list[bytes] = []  # encoded Datagram frames (unreliable)
        self._close_frame: bytes | None = None
        self._close_deadline: float | None = None
        self._close_sent = False

        # Amplification limit (server, until the client's address is proven).
        self.address_validated = is_client
        self._unvalidated_received = 0
        self._unvalidated_sent = 0
        # Mobility (server): a new address is followed only once it answers a challenge.
        self._path_candidate: Any = None
        self._path_challenge: bytes | None = None
        self._path_challenge_sent = -1.0
        self._path_budget = 0  # bytes we may still send to the unproven candidate address
        self._path_out: list[bytes] = []  # datagrams for the candidate address

        # Early data (0-RTT) and clock skew.
        self.early_data_accepted: bool | None = None
        self.early_refusal: str | None = None  # server: why early data was refused
        self.clock_skew_ms = 0
        self._hello = b""  # client: the encoded Hello frame of every key-carrying packet
        self._hello_pending = is_client  # client: a first packet must go out even if empty
        self._puzzle_answer: bytes | None = None  # client: our answer to the server's puzzle
        self._puzzles_solved = 0

        self._last_received = now
        self._last_sent = now
        self._trace = config.trace

        # Statistics.
        self.bytes_sent = 0
        self.bytes_received = 0
        self.packets_sent = 0
        self.packets_received = 0
        self.packets_lost = 0
        self.packets_retransmitted = 0
        self.drops: dict[str, int] = {}
        self._scheduled: float | None = None  # the endpoint's bookkeeping of our timer
        self._source: Any = None  # server: the source address counted against its limit

        # Rekey (nextTid): epochs of (TID, keys); nonces keep increasing across them.
        self.epoch = 0
        self._epoch_started = now
        self._epoch_first_packet = 0  # packets_sent when the epoch began
        self._old_tid: int | None = None  # client: until the server follows us to the new TID
        self._old_recv_key: DirectionKey | None = None
        self._next_tid: int | None = None  # server: registered in advance at the endpoint
        self._first_later_pn: int | None = None  # client: first packet under the later key
        self._rekey_wanted = False
        self._accepting: list[int] = []  # our connections whose Create was just acknowledged
        self._last_stream_data = now  # client: when stream data last arrived
        self._waiting_pings = 0  # client: PINGs sent since then (exponential backoff)

    # --- construction helpers ----------------------------------------------------------------

    @classmethod
    def new_client(
        cls,
        endpoint: Endpoint,
        *,
        tid: int,
        peer: Any,
        now: float,
        send_key: DirectionKey,
        shared: bytes,
        key_section: bytes,
        identity: bytes,
        client_time_ms: int,
        keypair: BoxKeyPair | None = None,
    ) -> Tunnel:
        tunnel = cls(
            endpoint,
            is_client=True,
            tid=tid,
            peer=peer,
            now=now,
            send_key=send_key,
            recv_key=None,
        )
        tunnel._shared = shared
        tunnel._client_keypair = keypair
        tunnel.server_key_id = key_section[C.PUBLIC_KEY_SIZE :]
        tunnel._auth_binding = auth_binding(shared)
        tunnel._key_section = key_section
        tunnel.identity = identity
        # Every packet carrying the client key carries the Hello too: whichever arrives first
        # creates the server's tunnel, and the server judges early data by its clock.
        tunnel._hello = encode_frame(Hello(C.PROTOCOL_VERSION, client_time_ms))
        return tunnel

    @classmethod
    def new_server(
        cls,
        endpoint: Endpoint,
        *,
        tid: int,
        peer: Any,
        now: float,
        shared: bytes,
        recv_key: DirectionKey,
        diversifier: bytes,
        key_section: bytes,
        hello: Hello,
        early_refusal: str | None,
    ) -> Tunnel:
        """A server tunnel for an authenticated first packet. ``early_refusal`` is why its
        early data may not run (None: it may), from the anti-replay checks."""
        send_key = DirectionKey(
            server_to_client_key(shared, diversifier), C.DIRECTION_SERVER_TO_CLIENT
        )
        later_key = DirectionKey(
            client_to_server_key(shared, diversifier), C.DIRECTION_CLIENT_TO_SERVER
        )
        tunnel = cls(
            endpoint,
            is_client=False,
            tid=tid,
            peer=peer,
            now=now,
            send_key=send_key,
            recv_key=later_key,
        )
        tunnel._early_recv_key = recv_key
        tunnel.server_key_id = key_section[C.PUBLIC_KEY_SIZE :]
        tunnel._auth_binding = auth_binding(shared)
        tunnel._diversifier = diversifier
        tunnel._key_section = key_section
        tunnel.early_data_accepted = early_refusal is None
        tunnel.early_refusal = early_refusal
        skew = int(endpoint.wall_time(now) * 1000) - hello.client_time_ms
        tunnel._control.append(HelloAck(skew, early_refusal is None))
        return tunnel

    # --- application API ---------------------------------------------------------------------

    def open_connection(
        self, service: str, *, retry_safe: bool = False, user: SigningKeyPair | None = None
    ) -> int:
        """Open a connection to ``service``; returns its id at once (0-RTT: data written now
        goes in the first flight if ``retry_safe``; other data waits for the server's answer).

        ``user``: open it as that user (createAuth); the server's handler sees the user's
        public key, and the authenticator only works on this tunnel to this server."""
        self._check_open()
        encoded = service.encode()
        if not encoded or len(encoded) > C.MAX_SERVICE_NAME:
            raise LocalProtocolError(f"service name must be 1 to {C.MAX_SERVICE_NAME} bytes")
        cid = self._next_local_cid
        self._next_local_cid += 2
        self._local_opened += 1
        conn = Connection(
            cid,
            service,
            local=True,
            retry_safe=retry_safe,
            send_limit=C.INITIAL_CONN_WINDOW,
            recv_limit=C.INITIAL_CONN_WINDOW,
            recv_window=self.config.connection_window,
        )
        if user is not None:
            if not self.is_client or self.identity is None:
                raise LocalProtocolError("only a client authenticates as a user")
            conn.user = user.public
            conn.user_key = user  # signs when the Create goes out (the binding may change)
        self.connections[cid] = conn
        self._mark_ready(conn)
        return cid

    def send(
        self,
        cid: int,
        data: BytesLike,
        end_stream: bool = False,
        *,
        retry_safe: bool | None = None,
    ) -> None:
        """Queue ``data`` on connection ``cid``; ``end_stream`` half-closes after it.

        ``retry_safe`` (default: the connection's flag) says the bytes may travel in the 0-RTT
        first flight, where a replay could deliver them again to a server that lost its replay
        cache; other bytes, and everything written after them, wait until the server answers.
        """
        conn = self._writable_connection(cid)
        safe = conn.retry_safe if retry_safe is None else retry_safe
        send = conn.send
        early = safe and not self.established and conn.early_limit == send.write_offset
        if data:
            send.write(bytes(data))
            if early:
                conn.early_limit = send.write_offset
        if end_stream:
            send.finish()
        self._mark_ready(conn)
        self.endpoint._touch(self)

    def send_eof(self, cid: int) -> None:
        """Half-close: the peer reads end-of-stream after what was sent; we can still read."""
        self.send(cid, b"", end_stream=True)

    def consume(self, cid: int, nbytes: int) -> bool:
        """The application took ``nbytes`` of ``cid``'s received data: reopen that much window.

        Returns True when this queued a window update (or finished the connection), i.e. when
        the driver has something new to send; most calls change nothing on the wire."""
        if nbytes <= 0:
            return False
        changed = self._credit_tunnel(nbytes)
        conn = self.connections.get(cid)
        if conn is not None and not conn.reset:
            conn.consumed += nbytes
            if conn.recv.final_size is None and (
                conn.recv_limit - conn.consumed < conn.recv_window // 2
            ):
                conn.recv_limit = conn.consumed + conn.recv_window
                self._queue_window_update(conn)
                changed = True
            if conn.fin_delivered:
                self._maybe_finish(conn)
        if changed:
            self.endpoint._touch(self)
        return changed

    def _credit_tunnel(self, nbytes: int) -> bool:
        self._data_consumed += nbytes
        if self._local_max_data - self._data_consumed < self.config.tunnel_window // 2:
            self._local_max_data = self._data_consumed + self.config.tunnel_window
            self._tunnel_window_pending = True
            return True
        return False

    def reset_connection(self, cid: int, code: int = C.ERR_APPLICATION) -> None:
        """Abort ``cid`` both ways: unsent data is dropped, the peer gets ConnectionReset."""
        conn = self.connections.get(cid)
        if conn is None:
            raise LocalProtocolError(f"no connection {cid}")
        if not conn.create_pending:
            # The final size is what the peer can have seen: what we sent, not what we wrote
            # (bytes past its window would otherwise look like a flow-control violation).
            self._control.append(Reset(cid, code, conn.send.sent_offset))
        self._drop_connection(conn)
        self.endpoint._touch(self)

    def send_datagram(self, cid: int, data: BytesLike) -> None:
        """An unreliable message on ``cid`` (no retransmission; dropped if it does not fit)."""
        self._check_open()
        # The base size, not the probed one: a datagram is never re-framed, and the path may
        # shrink back to the base at any time. The wire caps DATAGRAM data at 1200 bytes too.
        if len(data) > min(self.config.max_datagram_size - 100, C.MAX_DATAGRAM_DATA):
            raise LocalProtocolError("datagram larger than a packet")
        self._datagrams.append(encode_frame(Datagram(cid, bytes(data))))
        if len(self._datagrams) > 1024:  # unreliable: drop the oldest rather than grow
            self._datagrams.pop(0)
        self.endpoint._touch(self)

    def buffered(self, cid: int) -> int:
        """Bytes written to ``cid`` and not yet acknowledged (what ``drain()`` waits on)."""
        conn = self.connections.get(cid)
        return conn.send.buffered if conn is not None else 0

    def close(self, code: int = C.ERR_NONE, reason: str = "") -> None:
        """Close the tunnel and every connection in it; the peer is told with a Close frame."""
        if self.state != OPEN:
            return
        self._close_frame = encode_frame(Close(code, reason.encode()[: C.MAX_REASON_SIZE]))
        self._enter_closing(CLOSING, code, reason, by_peer=False)
        self.endpoint._touch(self)

    def stats(self) -> dict[str, Any]:
        """Counters and estimates for monitoring (always on, cheap)."""
        rtt = self.recovery.rtt
        cc = self.recovery.congestion
        return {
            "tid": self.tid,
            "state": self.state,
            "peer": self.peer,
            "established": self.established,
            "smoothed_rtt": rtt.smoothed_rtt,
            "min_rtt": rtt.min_rtt,
            "latest_rtt": rtt.latest_rtt,
            "rttvar": rtt.rttvar,
            "cwnd": cc.cwnd,
            "ssthresh": cc.ssthresh,
            "congestion_control": cc.name,
            "datagram_size": self._mds,
            "pmtu": self._pmtu_stats(),
            "bytes_in_flight": self.recovery.bytes_in_flight,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
            "packets_lost": self.packets_lost,
            "packets_retransmitted": self.packets_retransmitted,
            "connections": len(self.connections),
            "drops": dict(self.drops),
        }

    def _pmtu_stats(self) -> dict[str, Any]:
        pmtu = self._pmtu  # None until a filled packet starts the search (if it may start)
        return {
            "state": pmtu.state if pmtu else BASE if self._pmtu_watch else DISABLED,
            "base": self.config.max_datagram_size,
            "maximum": self.config.max_probed_datagram_size,
            "probes_sent": pmtu.probes_sent if pmtu else 0,
            "probes_lost": pmtu.probes_lost if pmtu else 0,
            "black_holes": pmtu.black_holes if pmtu else 0,
        }

    # --- input -------------------------------------------------------------------------------

    def receive(self, header: Header, data: bytes, addr: Any, now: float) -> None:
        """A datagram whose TID is ours, with a key section in clear (a client's first packets,
        a server's first answers). Drops (and counts) anything that does not authenticate."""
        if self.state == CLOSED:
            return
        nonce = header.nonce
        if (nonce & 1) == self._parity:
            self._drop("wrong_direction")
            return
        if header.puzzle is not None and not header.from_client:
            self._on_puzzle(header.puzzle)
            return
        if header.record is not None:
            self._on_stale_key(header.record)
            return
        if not self._replay.check(nonce):
            self._drop("replay")
            return
        key = self._recv_key
        new_key = False
        if header.client_public is not None:
            # A client's retransmitted first packet: its clear key section must be unchanged.
            if self._key_section is None or header.client_public + (header.key_id or b"") != (
                self._key_section
            ):
                self._drop("key_section_mismatch")
                return
            key = self._early_recv_key
        elif header.diversifier is not None:
            if key is None:
                if self._shared is None:
                    self._drop("no_key")
                    return
                key = DirectionKey(
                    server_to_client_key(self._shared, header.diversifier),
                    C.DIRECTION_SERVER_TO_CLIENT,
                )
                new_key = True
            elif header.diversifier != self._diversifier:
                self._drop("diversifier_mismatch")
                return
        if key is None:
            self._drop("no_key")
            return
        plaintext = key.open(memoryview(data)[header.box_offset :], header.tid, nonce)
        if plaintext is None:
            self._drop("auth")
            return
        if new_key:  # the server's first packet authenticated: its diversifier is genuine
            self._recv_key = key
            self._diversifier = header.diversifier
            # From now on our packets use the key that proves we got the server's answer.
            self._send_key = DirectionKey(
                client_to_server_key(self._shared or b"", header.diversifier),
                C.DIRECTION_CLIENT_TO_SERVER,
            )
            self._first_later_pn = self._next_pn
            self._shared = None
            self._key_section = None
            self._client_keypair = None
        self.on_authenticated(nonce, plaintext, len(data), addr, now)

    def receive_plain(self, data: bytes, tid: int, nonce: int, addr: Any, now: float) -> None:
        """The common case: a datagram with no clear sections (the header is TID and nonce)."""
        if (nonce & 1) == self._parity:
            self._drop("wrong_direction")
            return
        if not self._replay.check(nonce):
            self._drop("replay")
            return
        if tid != self.tid:
            self._receive_other_epoch(data, tid, nonce, addr, now)
            return
        key = self._recv_key
        if key is None:
            self._drop("no_key")
            return
        plaintext = key.open(memoryview(data)[C.HEADER_SIZE :], tid, nonce)
        if plaintext is None:
            self._drop("auth")
            return
        if not self._peer_has_diversifier:
            # Server: the client's first packet under its later key. Only the holder of our
            # diversifier can make it, so the client got our answer: from here on no more
            # diversifier in clear, no more early key, and its address (if unchanged) is proven.
            self._peer_has_diversifier = True
            self._early_recv_key = None
            if addr == self.peer:
                self.address_validated = True
            self.on_authenticated(nonce, plaintext, len(data), addr, now)
            # The client may move to its next TID once we acknowledge this packet: be ready
            # for it then (not before the frames: a packet that closes the tunnel needs none).
            if self.state == OPEN:
                self._register_next_tid()
            return
        if self._old_tid is not None:
            # Client: the server follows us into the new epoch; the old one is over.
            self._end_old_epoch()
        self.on_authenticated(nonce, plaintext, len(data), addr, now)

    def _receive_other_epoch(
        self, data: bytes, tid: int, nonce: int, addr: Any, now: float
    ) -> None:
        """A packet under the previous TID (client, mid-rekey) or the next one (server)."""
        box = memoryview(data)[C.HEADER_SIZE :]
        if tid == self._old_tid and self._old_recv_key is not None:
            plaintext = self._old_recv_key.open(box, tid, nonce)
            if plaintext is None:
                self._drop("auth")
                return
            self.on_authenticated(nonce, plaintext, len(data), addr, now)
            return
        if tid == self._next_tid and self._recv_key is not None:
            recv_key = DirectionKey(evolve_key(self._recv_key.key), C.DIRECTION_CLIENT_TO_SERVER)
            plaintext = recv_key.open(box, tid, nonce)
            if plaintext is None:
                self._drop("auth")
                return
            # The client moved to the next epoch: follow it, and forget the old keys.
            old_tid = self.tid
            self._recv_key = recv_key
            self._send_key = DirectionKey(
                evolve_key(self._send_key.key), C.DIRECTION_SERVER_TO_CLIENT
            )
            self._next_tid = None
            self.endpoint._retire_tid(self, old_tid, tid)
            self.tid = tid
            self._new_epoch(now)
            self._register_next_tid()
            self.endpoint._events.append(events.TunnelRekeyed(self, old_tid, tid))
            self.on_authenticated(nonce, plaintext, len(data), addr, now)
            return
        self._drop("stale_tid")

    # --- rekey -------------------------------------------------------------------------------

    def rekey(self, now: float | None = None) -> None:
        """Move the tunnel to a new TID and new keys (the paper's nextTid): the old keys are
        dropped, and an observer cannot link the new TID to the old one. Client only; the
        server asks for one with ``request_rekey``. Deferred until the server can follow
        (it has seen one of our packets under the later key)."""
        self._check_open()
        if not self.is_client:
            raise LocalProtocolError("only the client moves the tunnel; use request_rekey()")
        self._rekey_wanted = True
        self._maybe_rekey(self._last_received if now is None else now)
        self.endpoint._touch(self)

    def request_rekey(self) -> None:
        """Server: ask the client to rekey now (the paper's rekeyNow)."""
        self._check_open()
        if self.is_client:
            raise LocalProtocolError("the client rekeys with rekey()")
        self._control.append(RekeyNow())
        self.endpoint._touch(self)

    def _maybe_rekey(self, now: float) -> None:
        if not self._rekey_wanted or self._old_tid is not None or self.state != OPEN:
            return
        largest = self.recovery.largest_acked
        first = self._first_later_pn
        if first is None or largest is None or largest < first:
            return  # the server cannot know our next TID yet
        self._rekey_wanted = False
        old_tid = self.tid
        new_tid = next_tid(self._send_key.key)
        if not self.endpoint._add_alias(self, new_tid):
            return  # taken locally (2^-62): try again next epoch
        self._old_tid = old_tid
        self._old_recv_key = self._recv_key
        assert self._recv_key is not None
        self._recv_key = DirectionKey(evolve_key(self._recv_key.key), C.DIRECTION_SERVER_TO_CLIENT)
        self._send_key = DirectionKey(evolve_key(self._send_key.key), C.DIRECTION_CLIENT_TO_SERVER)
        self.endpoint._retire_tid(self, old_tid, new_tid, keep_old=True)
        self.tid = new_tid
        self._new_epoch(now)
        self._probes = max(self._probes, 1)  # one packet at once, so the server follows now
        self.endpoint._events.append(events.TunnelRekeyed(self, old_tid, new_tid))

    def _end_old_epoch(self) -> None:
        if self._old_tid is not None:
            self.endpoint._drop_alias(self, self._old_tid)
        self._old_tid = None
        self._old_recv_key = None

    def _new_epoch(self, now: float) -> None:
        self.epoch += 1
        self._epoch_started = now
        self._epoch_first_packet = self.packets_sent

    def _register_next_tid(self) -> None:
        if self._recv_key is None or self.is_client:
            return
        tid = next_tid(self._recv_key.key)
        if self.endpoint._add_alias(self, tid):
            self._next_tid = tid

    def _rekey_due(self, now: float) -> bool:
        config = self.config
        return (
            config.rekey_interval is not None and now - self._epoch_started >= config.rekey_interval
        ) or (
            config.rekey_packets is not None
            and self.packets_sent - self._epoch_first_packet >= config.rekey_packets
        )

    def on_authenticated(
        self, nonce: int, plaintext: bytes, size: int, addr: Any, now: float
    ) -> None:
        """An authenticated packet: account for it, then act on its frames."""
        if self.state != OPEN:
            if self.state == CLOSING:
                self._close_sent = False  # the peer is still talking: repeat our Close once
            return
        self._replay.accept(nonce)
        pn = nonce >> 1
        self.packets_received += 1
        self.bytes_received += size
        self._last_received = now
        if not self.address_validated:
            self._unvalidated_received += size
        largest = self._largest_recv_pn
        if pn > largest:
            if addr != self.peer and not self.is_client:
                self._on_new_address(addr, size, now)
            self._largest_recv_pn = pn
            self._largest_recv_time = now
        else:
            self._ack_immediately = True  # out of order: tell the sender at once
        if not self.established:
            self.established = True
            self._ack_immediately = True  # acknowledge a first flight at once (address proof)
            self.endpoint._events.append(events.TunnelEstablished(self, addr))
        try:
            eliciting = self._process_frames(plaintext, now)
        except (IndexError, struct.error):
            self._drop("malformed_frames")
            self._protocol_error(FrameEncodingError("frame truncated"))
            return
        except FrameEncodingError as exc:
            # Authenticated but malformed: the peer is broken. Close, as QUIC does.
            self._drop("malformed_frames")
            self._protocol_error(exc)
            return
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return
        if self._accepting:
            self._announce_accepted()
        if eliciting is None:
            # Refused early data: not acknowledged, so the client's copy stays in flight until
            # it learns of the refusal and resends it (DESIGN §7.2).
            return
        recv_pns = self._recv_pns
        recv_pns.add(pn, pn + 1)
        if len(recv_pns) > C.MAX_ACK_RANGES:
            recv_pns.shift()
        if eliciting:
            self._ack_eliciting_unacked += 1
            if self._ack_deadline is None:
                self._ack_deadline = now + self.config.max_ack_delay
        if self._trace:
            self._trace(now, "transport:packet_received", {"pn": pn, "size": size})

    def _process_frames(self, buf: bytes, now: float) -> bool | None:
        """Act on every frame of a payload; True if any was ack-eliciting, None if the packet
        carried early data this server refused (it must then not be acknowledged).

        Stream, Ack and Padding frames (nearly all traffic) are parsed inline here; the rest
        go through ``decode_frame``. Raises on malformed input (the caller closes the tunnel).
        """
        pos = 0
        end = len(buf)
        eliciting = False
        refused = False
        while pos < end:
            ftype = buf[pos]
            if ftype == 0x08 or ftype == 0x09:  # STREAM, STREAM_FIN
                first = buf[pos + 1]
                if first < 0x40:
                    cid = first
                    pos += 2
                else:
                    cid, pos = read_varint(buf, pos + 1)
                offset, pos = read_varint(buf, pos)
                length, pos = read_varint(buf, pos)
                stop = pos + length
                if stop > end:
                    raise FrameEncodingError("STREAM data runs past the end of the payload")
                if offset + length > _MAX_STREAM_OFFSET:
                    raise FrameEncodingError("STREAM offset out of range")
                if self.early_refusal is not None and not self.address_validated:
                    refused = True
                else:
                    self._on_stream(cid, offset, buf[pos:stop], ftype == 0x09)
                pos = stop
                eliciting = True
            elif ftype == 0x02:  # ACK
                ack, pos = decode_ack(buf, pos + 1)
                self._on_ack(ack.ranges, ack.delay, now)
            elif ftype == 0x00:  # PADDING
                pos = skip_padding(buf, pos + 1)
            elif ftype == 0x03 and not self.is_client:  # HELLO, on every first-flight packet
                _, pos = read_varint(buf, pos + 1)  # version and clock: the endpoint judged
                _, pos = read_varint(buf, pos)  # them on the packet that made the tunnel
                eliciting = True
            elif ftype == 0x0A:  # MAX_DATA (every first flight carries the window frames)
                maximum, pos = read_varint(buf, pos + 1)
                self._on_max_data(maximum)
                eliciting = True
            elif ftype == 0x0C:  # MAX_CONNS
                maximum, pos = read_varint(buf, pos + 1)
                self._on_max_conns(maximum)
                eliciting = True
            elif ftype == 0x0B:  # MAX_CONN_DATA
                cid, pos = read_varint(buf, pos + 1)
                maximum, pos = read_varint(buf, pos)
                eliciting = True
                if self.early_refusal is not None and not self.address_validated:
                    refused = True  # early application frame (_EARLY_APPLICATION_FRAMES)
                else:
                    self._on_max_conn_data(cid, maximum)
            else:
                frame, pos = decode_frame(buf, pos)
                kind = type(frame)
                if kind is not Close:
                    eliciting = True
                if (
                    kind in _EARLY_APPLICATION_FRAMES
                    and self.early_refusal is not None
                    and not self.address_validated
                ):
                    refused = True
                    continue
                self._on_control(frame, now)
                if self.state != OPEN:
                    break
        return None if refused else eliciting

    # --- frame handlers ----------------------------------------------------------------------

    def _on_stream(self, cid: int, offset: int, data: bytes, fin: bool) -> None:
        conn = self.connections.get(cid) or self._conn_for_peer_frame(cid)
        if conn is None or conn.reset:
            return
        new = conn.recv.add(offset, data, fin)
        self._last_stream_data = self._last_received
        self._waiting_pings = 0
        if new:
            if conn.recv.highest > conn.recv_limit:
                raise FlowControlError(f"connection {conn.cid} sent past its window")
            self._data_received += new
            if self._data_received > self._local_max_data:
                raise FlowControlError("peer sent past the tunnel window")
        self._deliver(conn)

    def _deliver(self, conn: Connection) -> None:
        if not conn.opened:
            return  # held until the Create arrives (and is accepted)
        readable = conn.recv.readable
        fin_now = (
            conn.recv.final_size is not None
            and not conn.fin_delivered
            and (conn.recv.read_offset + readable == conn.recv.final_size)
        )
        if readable or fin_now:
            data = conn.recv.read()
            if fin_now:
                conn.fin_delivered = True
            self.endpoint._events.append(events.DataReceived(self, conn.cid, data, fin_now))
            if fin_now:
                self._maybe_finish(conn)

    def _on_ack(self, ranges: tuple[tuple[int, int], ...], delay_us: int, now: float) -> None:
        acked, lost = self.recovery.on_ack_received(ranges, delay_us / 1e6, now)
        if acked:
            for packet in acked:
                self._on_packet_acked(packet)
            pmtu = self._pmtu
            if pmtu is not None and self._mds > pmtu.base:
                base = pmtu.base
                for packet in reversed(acked):  # the newest big packet (usually the last)
                    if packet.size > base:
                        pmtu.on_large_acked(packet.time_sent)
                        break
        if lost:
            self._on_packets_lost(lost, now)
        self._update_pacer()
        if self._rekey_wanted:
            self._maybe_rekey(now)

    def _on_packet_acked(self, packet: SentPacket) -> None:
        for meta in packet.frames:
            tag = meta[0]
            if tag == _M_STREAM:
                conn = self.connections.get(meta[1])
                if conn is not None:
                    conn.send.on_acked(meta[2], meta[3], meta[4])
                    if meta[4] or conn.fin_delivered:
                        self._maybe_finish(conn)
            elif tag == _M_ACK:
                # The peer has our ACK up to this packet: stop repeating those ranges (RFC 9000
                # §13.2.4); duplicates are still caught by the replay window.
                self._recv_pns.trim_below(meta[1] + 1)
            elif tag == _M_CREATE:
                # The peer got our Create. A refusal would come in this very packet, after its
                # ACK: decide once the whole packet is processed.
                self._accepting.append(meta[1])
            elif tag == _M_PMTU_PROBE:
                now = self._last_received
                pmtu = self._pmtu
                if pmtu is not None and pmtu.on_probe_acked(
                    packet.pn, meta[1], packet.time_sent, now
                ):
                    self._set_datagram_size(now)

    def _announce_accepted(self) -> None:
        for cid in self._accepting:
            conn = self.connections.get(cid)
            if conn is not None and conn.local and not conn.accepted and not conn.reset:
                conn.accepted = True
                self.endpoint._events.append(events.ConnectionAccepted(self, cid))
        self._accepting.clear()

    def _on_packets_lost(self, lost: list[SentPacket], now: float) -> None:
        if self._trace:
            for packet in lost:
                self._trace(now, "recovery:packet_lost", {"pn": packet.pn})
        self._requeue(lost)
        pmtu = self._pmtu
        if pmtu is None:
            self.packets_lost += len(lost)
            return
        probes = 0
        for packet in lost:
            if packet.probe:  # counted by the path MTU search, not as a loss of data
                probes += 1
                pmtu.on_probe_lost(packet.pn, now)
        self.packets_lost += len(lost) - probes
        if self._mds > pmtu.base:
            # RFC 8899 §4.3: big packets lost over a persistent-congestion period while none
            # got through (small ones do, or nothing would be declared lost): a black hole.
            base = pmtu.base
            period = self.recovery.persistent_congestion_period()
            for packet in lost:
                if (
                    packet.size > base
                    and not packet.probe
                    and pmtu.on_large_lost(packet.time_sent, period)
                ):
                    self._on_black_hole(now)
                    break

    def _requeue(self, packets: list[SentPacket]) -> None:
        """Queue again what these packets carried (they are lost, or must be resent)."""
        connections = self.connections
        for packet in packets:
            for meta in packet.frames:
                tag = meta[0]
                if tag == _M_STREAM:
                    conn = connections.get(meta[1])
                    if conn is not None and not conn.reset:
                        conn.send.on_lost(meta[2], meta[3], meta[4])
                        self._mark_ready(conn)
                elif tag == _M_CONTROL:
                    self._control.append(meta[1])
                elif tag == _M_CONN_WINDOW:
                    conn = connections.get(meta[1])
                    if conn is not None:
                        self._queue_window_update(conn)
                elif tag == _M_TUNNEL_WINDOW:
                    self._tunnel_window_pending = True
                elif tag == _M_CREATE:
                    conn = connections.get(meta[1])
                    if conn is not None:
                        conn.create_pending = True
                        self._mark_ready(conn)
                elif tag == _M_MAX_CONNS:
                    self._max_conns_pending = True
                elif tag == _M_HELLO:
                    self._hello_pending = self._key_section is not None

    def _on_control(self, frame: Any, now: float) -> None:
        kind = type(frame)
        if kind is Create:
            self._on_create(frame)
        elif kind is MaxConnData:
            self._on_max_conn_data(frame.cid, frame.maximum)
        elif kind is MaxData:
            self._on_max_data(frame.maximum)
        elif kind is MaxConns:
            self._on_max_conns(frame.maximum)
        elif kind is Refuse:
            conn = self.connections.get(frame.cid)
            if conn is not None and conn.local:
                self._drop_connection(conn)
                self.endpoint._events.append(
                    events.ConnectionRefused(
                        self, frame.cid, frame.code, frame.reason.decode(errors="replace")
                    )
                )
        elif kind is Reset:
            conn = self.connections.get(frame.cid)
            if conn is not None:
                self._on_reset(conn, frame)
        elif kind is Close:
            self._enter_closing(
                DRAINING, frame.code, frame.reason.decode(errors="replace"), by_peer=True
            )
        elif kind is Hello:
            if self.is_client:
                raise RemoteProtocolError("a server sent Hello", C.ERR_PROTOCOL)
            # Repeated on every first-flight packet; the first one was judged by the endpoint.
        elif kind is HelloAck:
            if not self.is_client:
                raise RemoteProtocolError("a client sent HelloAck", C.ERR_PROTOCOL)
            if self.early_data_accepted is None:
                self.clock_skew_ms = frame.clock_skew_ms
                self.early_data_accepted = frame.early_data_accepted
                if self.identity is not None:
                    self.endpoint._learn_clock_skew(self.identity, frame.clock_skew_ms)
                if not frame.early_data_accepted:
                    self._resend_early_data()
        elif kind is Datagram:
            self.endpoint._events.append(events.DatagramReceived(self, frame.cid, frame.data))
        elif kind is PathChallenge:
            self._control.append(PathResponse(frame.data))
            self._ack_immediately = True
            if self.is_client:
                # The server sees us at a new address: move to a new TID too, so the two
                # locations cannot be linked (DESIGN §8).
                self._rekey_wanted = True
                self._maybe_rekey(now)
                # ... and the path is another one: what it carries is to be found again.
                self._pmtu_reset(now)
        elif kind is NewRecord:
            self._on_new_record(frame.record)
        elif kind is RekeyNow:
            if not self.is_client:
                raise RemoteProtocolError("a client sent RekeyNow", C.ERR_PROTOCOL)
            self._rekey_wanted = True
            self._maybe_rekey(now)
        elif kind is PathResponse:
            self._on_path_response(frame.data)
        elif kind is Ping or kind is Blocked:
            pass

    def _on_max_conn_data(self, cid: int, maximum: int) -> None:
        # For a connection the peer opened, this may arrive before its Create.
        conn = self.connections.get(cid) or self._conn_for_peer_frame(cid)
        if conn is not None and maximum > conn.send_limit:
            conn.send_limit = maximum
            self._mark_ready(conn)

    def _on_max_data(self, maximum: int) -> None:
        if maximum > self._peer_max_data:
            self._peer_max_data = maximum
            for conn in self.connections.values():
                if conn.has_data_to_send():
                    self._mark_ready(conn)

    def _on_max_conns(self, maximum: int) -> None:
        if maximum > self._peer_max_conns:
            self._peer_max_conns = maximum
            for conn in self.connections.values():
                if conn.create_pending:
                    self._mark_ready(conn)

    def _on_puzzle(self, section: bytes) -> None:
        """The server demands a puzzle before it will make our tunnel (it is under load).
        Puzzles are not authenticated, so a client solves only a few, and only before the
        server has answered."""
        if not self.is_client or self.established or self._puzzles_solved >= _MAX_PUZZLES:
            self._drop("puzzle_ignored")
            return
        limit = busy_limit(section)
        if limit is not None:
            # The server is at a tunnel limit: no tunnel now, whatever we resend. Give up at
            # once (as TCP does on a reset) rather than at the connect timeout; only who saw
            # our TID can send this, and such an attacker could as well drop our packets.
            which = "from this address" if limit == C.BUSY_SOURCE_LIMIT else "in all"
            self._enter_closing(
                DRAINING,
                C.ERR_SERVER_BUSY,
                f"the server holds all the tunnels it may {which}",
                by_peer=True,
            )
            return
        answer = solve(section, max_difficulty=self.config.max_puzzle_difficulty)
        if answer is None:
            self._drop("puzzle_too_hard")
            return
        self._puzzles_solved += 1
        self._puzzle_answer = answer
        # The server kept nothing of our first flight: send it again, with the answer.
        self._requeue(self.recovery.drop_all())
        self._hello_pending = True
        self.endpoint._touch(self)

    def refuse_version(self, version: int) -> None:
        """Server: the first packet speaks another protocol version; close with PROTOCOL."""
        self._protocol_error(
            RemoteProtocolError(f"unsupported protocol version {version}", C.ERR_PROTOCOL)
        )

    def send_record(self, record: ServerRecord) -> None:
        """Server: hand the client our current record in-band (it used an older key)."""
        self._control.append(NewRecord(record.to_bytes()))

    def _verified_record(self, raw: bytes) -> ServerRecord | None:
        try:
            record = ServerRecord.from_bytes(raw)
            record.verify(self.endpoint.wall_time(self._last_received), identity=self.identity)
        except RecordError:
            self._drop("bad_record")
            return None
        return record

    def _on_new_record(self, raw: bytes) -> None:
        if not self.is_client:
            raise RemoteProtocolError("a client sent a record", C.ERR_PROTOCOL)
        record = self._verified_record(raw)
        if record is not None:
            self.endpoint.learn_record(record, replaces=self.server_key_id)
            self.endpoint._events.append(events.RecordUpdated(self, record))

    def _on_stale_key(self, raw: bytes) -> None:
        """The server no longer holds the key we boxed our first flight to and sent its
        current record instead: redo the first flight to the new key (one round trip lost,
        nothing else)."""
        keypair = self._client_keypair
        if not self.is_client or self.established or keypair is None or self._restarts >= 2:
            self._drop("record_ignored")
            return
        record = self._verified_record(raw)
        if record is None or record.key_id == self.server_key_id:
            return
        self._restarts += 1
        self.endpoint.learn_record(record, replaces=self.server_key_id)
        shared = keypair.shared_key(record.ephemeral)
        self._shared = shared
        self._auth_binding = auth_binding(shared)
        self._send_key = DirectionKey(client_to_server_key(shared), C.DIRECTION_CLIENT_TO_SERVER)
        self._key_section = keypair.public + record.key_id
        self.server_key_id = record.key_id
        self.peer = record.address
        self.endpoint._events.append(events.RecordUpdated(self, record))
        self._requeue(self.recovery.drop_all())
        for conn in self.connections.values():
            if conn.user_key is not None:
                conn.auth_signature = b""  # signed again for the new tunnel binding
        self._hello_pending = True
        self.endpoint._touch(self)

    def _resend_early_data(self) -> None:
        """The server refused our first flight's data: everything sent so far was early and
        not acknowledged; queue it all again (no congestion signal: nothing was lost)."""
        self._requeue(self.recovery.drop_all())
        self.endpoint._events.append(events.EarlyDataRejected(self))

    def _on_create(self, frame: Create) -> None:
        if frame.cid == 0 or (frame.cid & 1) != (0 if self.is_client else 1):
            raise RemoteProtocolError(
                f"Create for connection id {frame.cid}, which is not the peer's to open",
                C.ERR_PROTOCOL,
            )
        conn = self._conn_for_peer_frame(frame.cid)
        if conn is None or conn.opened or conn.reset:
            return  # a duplicate Create, or for a connection already gone
        service = frame.service.decode(errors="replace")
        conn.service = service
        conn.retry_safe = frame.retry_safe
        if service not in self.config.services:
            self._refuse(conn, C.ERR_UNKNOWN_SERVICE, f"unknown service {service!r}")
            return
        if frame.user:
            keys = self.endpoint.server_keys
            message = auth_message(
                self._auth_binding,
                keys.identity.public if keys else b"",
                conn.cid,
                frame.service,
            )
            if not verify_signature(frame.user, message, frame.signature):
                self._refuse(conn, C.ERR_AUTH_FAILED, "user authenticator does not verify")
                return
            conn.user = frame.user
        conn.opened = True
        self.endpoint._events.append(
            events.ConnectionOpened(self, conn.cid, service, frame.retry_safe, conn.user)
        )
        self._deliver(conn)

    def _on_reset(self, conn: Connection, frame: Reset) -> None:
        recv = conn.recv
        final = frame.final_size
        if final < recv.highest or (recv.final_size is not None and final != recv.final_size):
            raise FinalSizeError(f"Reset of connection {conn.cid} changes its final size")
        if final > conn.recv_limit:
            raise FlowControlError(f"Reset of connection {conn.cid} reaches past its window")
        # Bytes the peer sent but we never got still used the tunnel window: charge them,
        # then give them back with everything else unread.
        unseen = final - recv.highest
        self._data_received += unseen
        if self._data_received > self._local_max_data:
            raise FlowControlError("peer sent past the tunnel window")
        self._credit_tunnel(unseen)
        self._drop_connection(conn)
        self.endpoint._events.append(events.ConnectionReset(self, conn.cid, frame.code))

    def _refuse(self, conn: Connection, code: int, reason: str) -> None:
        self._control.append(Refuse(conn.cid, code, reason.encode()))
        self._drop_connection(conn)

    def _conn_for_peer_frame(self, cid: int) -> Connection | None:
        """The connection a peer frame names, creating it if the peer opens it with this frame
        (its Create may arrive later: data is held until then). None if it is gone."""
        conn = self.connections.get(cid)
        if conn is not None:
            return conn
        peer_parity = 0 if self.is_client else 1
        if cid == 0 or (cid & 1) != peer_parity:
            return None  # one of ours, already closed (or never opened: ignore)
        ordinal = (cid + 1) >> 1 if peer_parity else cid >> 1
        if ordinal in self._peer_cids:
            return None  # closed already
        if ordinal > self._local_max_conns:
            raise RemoteProtocolError(
                f"peer opened connection {cid} beyond the limit", C.ERR_CONNECTION_LIMIT
            )
        self._peer_cids.add(ordinal, ordinal + 1)
        conn = Connection(
            cid,
            "",
            local=False,
            retry_safe=False,
            send_limit=C.INITIAL_CONN_WINDOW,
            recv_limit=C.INITIAL_CONN_WINDOW,
            recv_window=self.config.connection_window,
        )
        self.connections[cid] = conn
        self._peer_open += 1
        if self.config.connection_window > C.INITIAL_CONN_WINDOW:
            self._queue_window_update(conn)
        return conn

    # --- connection lifecycle ----------------------------------------------------------------

    def _maybe_finish(self, conn: Connection) -> None:
        if conn.closed or not conn.done:
            return
        conn.closed = True
        self._forget_connection(conn)
        self.endpoint._events.append(events.ConnectionClosed(self, conn.cid))

    def _drop_connection(self, conn: Connection) -> None:
        conn.reset = True
        conn.closed = True
        # Bytes the peer sent but the app never took still count as consumed for the tunnel.
        unread = conn.recv.highest - conn.consumed
        if unread > 0:
            self._credit_tunnel(unread)
        self._forget_connection(conn)

    def _forget_connection(self, conn: Connection) -> None:
        if self.connections.pop(conn.cid, None) is None:
            return
        if not conn.local:
            self._peer_open -= 1
            self._peer_conns_closed += 1
            # Let the peer open one more, keeping at most max_connections open at once.
            self._local_max_conns = self._peer_conns_closed + self.config.max_connections
            self._max_conns_pending = True

    def _mark_ready(self, conn: Connection) -> None:
        # Once in the queue at most: an application making many small writes must not grow
        # it (the queue is a list, popped from the front).
        if not conn.queued:
            conn.queued = True
            self._ready.append(conn)

    def _queue_window_update(self, conn: Connection) -> None:
        if not conn.window_update_pending:
            conn.window_update_pending = True
            self._window_updates.append(conn)

    def _writable_connection(self, cid: int) -> Connection:
        self._check_open()
        conn = self.connections.get(cid)
        if conn is None:
            raise LocalProtocolError(f"no open connection {cid}")
        if conn.send.finished:
            raise LocalProtocolError(f"connection {cid} was already ended (write after end)")
        return conn

    def _check_open(self) -> None:
        if self.state != OPEN:
            raise LocalProtocolError(f"tunnel is {self.state}")

    # --- closing -----------------------------------------------------------------------------

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        self.endpoint._count("protocol_error")
        code = getattr(exc, "code", C.ERR_PROTOCOL)
        self._close_frame = encode_frame(Close(code, str(exc).encode()[: C.MAX_REASON_SIZE]))
        self._enter_closing(CLOSING, code, str(exc), by_peer=False)

    def _enter_closing(self, state: str, code: int, reason: str, *, by_peer: bool) -> None:
        if self.state != OPEN:
            return
        self.state = state
        linger = C.CLOSE_LINGER_PTOS * self.recovery.pto_period()
        self._close_deadline = self._last_received + linger
        for conn in list(self.connections.values()):
            conn.reset = True
        self.connections.clear()
        for conn in self._ready:
            conn.queued = False
        self._ready.clear()
        self._control.clear()
        self._datagrams.clear()
        self.recovery.drop_all()
        self.endpoint._events.append(events.TunnelClosed(self, code, reason, by_peer))
        if state == DRAINING:
            # Nothing will be sent or read any more: forget the tunnel now (its keys, its
            # state: nothing to keep alive or collect for the linger), all but its TIDs, whose
            # packets the endpoint drops unread until the linger ends.
            self._finalize(linger_until=self._close_deadline)

    def _finalize(self, *, linger_until: float | None = None) -> None:
        self.state = CLOSED
        self._send_key = None  # type: ignore[assignment]
        self._recv_key = None
        self._old_recv_key = None
        self._early_recv_key = None
        self._shared = None
        self.endpoint._remove(self, linger_until=linger_until)

    def _on_new_address(self, addr: Any, size: int, now: float) -> None:
        """The newest authenticated packet came from a new address: challenge that address
        before following it (a forwarded or spoofed packet must never move the tunnel)."""
        if addr != self._path_candidate:
            self._path_candidate = addr
            self._path_challenge = self.endpoint.random(C.PATH_DATA_SIZE)
            self._path_budget = 0
            self._path_challenge_sent = -1.0
        self._path_budget += size  # amplification limit on the unproven path too
        pto = self.recovery.pto_period()
        if self._path_challenge_sent < 0 or now - self._path_challenge_sent >= pto:
            packet = self._challenge_packet(now)
            if len(packet) <= self._path_budget:
                self._path_budget -= len(packet)
                self._path_out.append(packet)
                self._path_challenge_sent = now

    def _challenge_packet(self, now: float) -> bytes:
        assert self._path_challenge is not None
        payload = encode_frame(PathChallenge(self._path_challenge))
        pn = self._next_pn
        self._next_pn += 1
        nonce = 2 * pn + self._parity
        header = build_header(self.tid, nonce)
        packet = self._send_key.seal(header, self.tid, nonce, payload)
        # Not in flight: an unanswered challenge is resent on the next packet from the new
        # address, and says nothing about congestion on the current path.
        self.recovery.on_packet_sent(SentPacket(pn, now, len(packet), False, False, []))
        self.packets_sent += 1
        self.bytes_sent += len(packet)
        return packet

    def _on_path_response(self, data: bytes) -> None:
        if self._path_challenge is None or data != self._path_challenge:
            return  # stale or forged: ignore
        old, new = self.peer, self._path_candidate
        self._path_challenge = None
        self._path_candidate = None
        self.peer = new
        self.address_validated = True
        # A new path: the base datagram size until probing proves more (first, so that the
        # congestion controller restarts from the base size's initial window), fresh RTT and
        # congestion state; what was in flight on the old one is sent again (not a congestion
        # signal).
        self._pmtu_reset(self._last_received)
        self._requeue(self.recovery.on_path_change())
        self.endpoint._events.append(events.TunnelMigrated(self, old, new))

    # --- path MTU ----------------------------------------------------------------------------

    def _maybe_start_pmtu(self, now: float) -> None:
        """A packet was filled: start probing once the tunnel is confirmed (an authenticated
        packet from the peer, the first flight over, the client's address proven)."""
        if not self.endpoint.pmtu_probing:
            self._pmtu_watch = False  # the driver cannot set the Don't-Fragment bit
            return
        if (
            self.established
            and self.address_validated
            and self._peer_has_diversifier  # server: the client switched keys
            and (self._key_section is None or not self.is_client)  # client: the server answered
        ):
            self._pmtu_watch = False
            config = self.config
            pmtu = self._pmtu = PathMtu(config.max_datagram_size, config.max_probed_datagram_size)
            pmtu.start(now)

    def _set_datagram_size(self, now: float) -> None:
        """Follow the path MTU's size: packets, congestion control and pacing."""
        pmtu = self._pmtu
        old = self._mds
        new = pmtu.size if pmtu is not None else self.config.max_datagram_size
        if new == old:
            return
        self._mds = new
        self.recovery.congestion.set_max_datagram_size(new)
        if self.pacer is not None:
            self.pacer.set_max_datagram_size(new)
        self._update_pacer()
        if self._trace:
            self._trace(
                now,
                "connectivity:mtu_updated",
                {"old": old, "new": new, "done": pmtu is None or pmtu.state != SEARCHING},
            )

    def _pmtu_reset(self, now: float) -> None:
        """A new path: the base size until probing proves more."""
        if self._pmtu is not None:
            self._pmtu.reset(now)
            self._set_datagram_size(now)

    def _on_black_hole(self, now: float) -> None:
        """Packets above the base size stopped getting through: back to the base. What is in
        flight in bigger packets is taken as lost (it goes again, in packets of the base size)
        without a congestion signal: the path dropped it for its size, not for the load."""
        pmtu = self._pmtu
        assert pmtu is not None  # (only called above the base size)
        pto = self.recovery.pto_period()
        pmtu.on_black_hole(now, pto)
        dropped = self.recovery.discard_larger_than(pmtu.base)
        self.packets_lost += len(dropped)
        self._requeue(dropped)
        self._set_datagram_size(now)

    def datagram_too_big(self, size: int, now: float) -> None:
        """The local interface refused a datagram of ``size`` bytes (EMSGSIZE). A probe: that
        size is abandoned at once. A packet of the current size (the interface shrank): the
        base size, as for a black hole."""
        pmtu = self._pmtu
        if self.state != OPEN or pmtu is None:
            return
        pn = pmtu.probe_pn
        if pn is not None and pmtu.on_too_big(size, now):
            self.recovery.discard(pn)
        elif pmtu.base < size <= self._mds:
            self._on_black_hole(now)

    # --- timers ------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` has work to do, or None."""
        if self.state != OPEN:
            return self._close_deadline
        deadline = self._last_received + self.config.idle_timeout
        loss = self.recovery.get_loss_detection_timer()
        if loss is not None and loss < deadline:
            deadline = loss
        if self._amplification_blocked():
            return deadline  # nothing can be sent until the peer sends more (or proves its path)
        if self._ack_deadline is not None and self._ack_deadline < deadline:
            deadline = self._ack_deadline
        if self._pacer_wake is not None and self._pacer_wake < deadline:
            deadline = self._pacer_wake
        pmtu = self._pmtu
        if pmtu is not None:
            if pmtu.probe_deadline is not None and pmtu.probe_deadline < deadline:
                deadline = pmtu.probe_deadline
            if pmtu.next_probe_at is not None and pmtu.next_probe_at < deadline:
                deadline = pmtu.next_probe_at
        keepalive = self.config.keepalive_interval
        if keepalive is not None and self._last_sent + keepalive < deadline:
            deadline = self._last_sent + keepalive
        interval = self.config.rekey_interval
        if self.is_client and interval is not None and self._epoch_started + interval < deadline:
            deadline = self._epoch_started + interval
        waiting = self._waiting_deadline()
        if waiting is not None and waiting < deadline:
            deadline = waiting
        return deadline

    def _waiting_deadline(self) -> float | None:
        """Client with open connections: when to send a PING if no stream data came. A client
        that only receives never sends otherwise, so after a NAT rebinding the server would keep
        sending to a dead address; the PING comes from the new one and the server's path
        challenge moves the tunnel. Backs off exponentially while nothing comes, and stops
        after half the idle timeout (an idle tunnel must be allowed to time out)."""
        if not self.is_client or not self.connections:
            return None
        pto = self.recovery.pto_period()
        deadline = self._last_stream_data + 2 * pto * (1 << min(self._waiting_pings, 12))
        if deadline >= self._last_stream_data + self.config.idle_timeout / 2:
            return None
        return deadline

    def _amplification_blocked(self) -> bool:
        return not self.address_validated and (
            self._unvalidated_received - self._unvalidated_sent < _MIN_UNVALIDATED_PACKET
        )

    def handle_timer(self, now: float) -> None:
        if self.state != OPEN:
            if self._close_deadline is not None and now >= self._close_deadline:
                self._finalize()
            return
        if now >= self._last_received + self.config.idle_timeout:
            # Silent: the peer is gone; the tunnel is forgotten at once (see _enter_closing).
            self._enter_closing(DRAINING, C.ERR_IDLE_TIMEOUT, "idle timeout", by_peer=False)
            return
        loss = self.recovery.get_loss_detection_timer()
        if loss is not None and now >= loss:
            lost, probes = self.recovery.on_loss_detection_timeout(now)
            if lost:
                self._on_packets_lost(lost, now)
            if probes:
                if self.recovery.pto_count >= 2 and self._mds > self.config.max_datagram_size:
                    # Two PTOs in a row and nothing acknowledged: if big packets no longer get
                    # through, only smaller PTO probes can (RFC 8899 §4.3). Fall back to the
                    # base; a false alarm costs one more search.
                    self._on_black_hole(now)
                self._probes = probes
                self._requeue_for_probe()
            self._update_pacer()
        pmtu = self._pmtu
        if pmtu is not None:
            self._pmtu_timers(pmtu, now)
        keepalive = self.config.keepalive_interval
        if keepalive is not None and now >= self._last_sent + keepalive:
            self._probes = max(self._probes, 1)
        waiting = self._waiting_deadline()
        if waiting is not None and now >= waiting:
            self._probes = max(self._probes, 1)
            self._waiting_pings += 1
        if self.is_client and self._rekey_due(now):
            self._epoch_started = now  # ask once per interval, whether or not it can happen now
            self._rekey_wanted = True
            self._maybe_rekey(now)
        if self._pacer_wake is not None and now >= self._pacer_wake:
            self._pacer_wake = None

    def _pmtu_timers(self, pmtu: PathMtu, now: float) -> None:
        deadline = pmtu.probe_deadline
        pn = pmtu.probe_pn
        if deadline is not None and now >= deadline and pn is not None:
            # The probe arms no PTO; it is lost one PTO after the last ack-eliciting packet
            # (as the PTO would say). While later packets go out, acknowledgements of them
            # decide (packet and time thresholds), with the RTT of the moment.
            later = self._last_sent + self.recovery.pto_period()
            if later > now:
                pmtu.probe_deadline = later
            else:
                self.recovery.discard(pn)
                pmtu.on_probe_lost(pn, now)
        if pmtu.next_probe_at is not None and now >= pmtu.next_probe_at:
            pmtu.on_timer(now)

    def _requeue_for_probe(self) -> None:
        """A PTO fired: make sure the probe carries something useful (oldest unacked data)."""
        for conn in self.connections.values():
            if conn.send.sent_offset > conn.send.acked_offset or conn.create_pending:
                self._mark_ready(conn)

    # --- output ------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """Every (datagram, address) this tunnel may send now (congestion, pacing and
        amplification allowing)."""
        peer = self.peer
        if self.state != OPEN:
            if self.state == CLOSING and not self._close_sent and self._close_frame is not None:
                self._close_sent = True
                if self._amplification_blocked():
                    return []  # even a Close waits for the client's address to be proven
                close_packet = self._seal(self._close_frame, now, ack_eliciting=False, meta=())
                return [(close_packet, peer)]
            return []
        out: list[tuple[bytes, Any]] = []
        packets = self.config.rekey_packets
        if (
            packets is not None
            and self.is_client
            and self.packets_sent - self._epoch_first_packet >= packets
        ):
            self._epoch_first_packet = self.packets_sent
            self._rekey_wanted = True
            self._maybe_rekey(now)
        if self._path_out:
            out.extend((packet, self._path_candidate) for packet in self._path_out)
            self._path_out.clear()
        pmtu = self._pmtu
        probe = self._probe_packet(pmtu, now) if pmtu is not None and pmtu.probe_due else None
        while True:
            packet = self._build_packet(now)
            if packet is None:
                break
            out.append((packet, peer))
        if probe is not None:
            out.append((probe, peer))  # last: a driver sends it on its own
        self._pmtu_hold = False
        # RFC 9002 §7.8: no window growth while the application leaves the window unused.
        congestion = self.recovery.congestion
        congestion.on_app_limited(
            self._app_limited and self.recovery.bytes_in_flight < congestion.cwnd // 2
        )
        return out

    def _header(self) -> bytes:
        pn = self._next_pn
        nonce = 2 * pn + self._parity
        if self.is_client:
            if self._key_section is not None:
                return build_header(
                    self.tid,
                    nonce,
                    client_public=self._key_section[: C.PUBLIC_KEY_SIZE],
                    key_id=self._key_section[C.PUBLIC_KEY_SIZE :],
                    puzzle=self._puzzle_answer,
                )
            return build_header(self.tid, nonce)
        if not self._peer_has_diversifier:
            return build_header(self.tid, nonce, diversifier=self._diversifier)
        return build_header(self.tid, nonce)

    def _ack_due(self, now: float) -> bool:
        if not self._ack_eliciting_unacked:
            return False
        return (
            self._ack_immediately
            or self._ack_eliciting_unacked >= C.ACK_ELICITING_THRESHOLD
            or (self._ack_deadline is not None and now >= self._ack_deadline)
            or not self._peer_has_diversifier  # server: answer a first flight at once
        )

    def _build_packet(self, now: float) -> bytes | None:
        if self._key_section is None and self._peer_has_diversifier:
            header = _PLAIN_HEADER.pack(self.tid, 2 * self._next_pn + self._parity)  # usual
        else:
            header = self._header()
        mds = self._mds
        if not self.address_validated:
            budget = self._unvalidated_received - self._unvalidated_sent
            if budget < _MIN_UNVALIDATED_PACKET:
                return None  # amplification limit: wait for the client to prove its address
            mds = min(mds, budget)
        space = mds - len(header) - _AEAD_OVERHEAD
        hello = self._hello if self._key_section is not None and self.is_client else None
        if hello is not None:
            space -= len(hello)
        recovery = self.recovery
        probe = self._probes > 0
        # May we send ack-eliciting content now? Congestion window (unless a path MTU probe is
        # waiting for room in it), then pacing.
        can_send = probe or (not self._pmtu_hold and recovery.can_send(mds))
        self._app_limited = False  # stays False if cwnd or the pacer stops us
        if can_send and not probe and self.pacer is not None:
            wake = self.pacer.next_send_time(now)
            if wake is not None and wake > now:
                can_send = False
                if self._has_pending_content():
                    self._pacer_wake = wake
        parts: list[bytes] = []
        meta: list[tuple[Any, ...]] = []
        # Reserve room for an ACK; it goes in if the packet carries anything else or is due.
        ack = self._encode_ack(now) if self._ack_eliciting_unacked and self._recv_pns else None
        if ack is not None:
            space -= len(ack)
        eliciting = False
        if can_send:
            eliciting, space = self._fill(parts, meta, space)
            if space <= _FULL_PACKET_SLACK and self._pmtu_watch:
                self._maybe_start_pmtu(now)
            if hello is not None and (eliciting or self._hello_pending or probe):
                parts.insert(0, hello)
                meta.append((_M_HELLO,))
                self._hello_pending = False
                eliciting = True
            elif not eliciting and probe:
                parts.append(_PING)
                space -= 1
                eliciting = True
        if ack is not None and (eliciting or self._ack_due(now)):
            parts.insert(0, ack)
            meta.append((_M_ACK, self._largest_recv_pn))
            self._ack_eliciting_unacked = 0
            self._ack_deadline = None
            self._ack_immediately = False
        elif not eliciting:
            self._app_limited = can_send  # we could have sent, but had nothing to send
            return None
        if self._key_section is not None and self.is_client and eliciting:
            # Packets carrying the client key are padded so that the server may answer them
            # (amplification limit) and to hide the request size.
            pad = max(0, C.MIN_FIRST_PACKET_SIZE - (mds - space))
            if pad:
                parts.append(bytes(pad))
        if eliciting and self._probes > 0:
            self._probes -= 1
        return self._seal_payload(header, parts, now, eliciting, meta)

    def _probe_packet(self, pmtu: PathMtu, now: float) -> bytes | None:
        """A path MTU probe, if congestion control and pacing let one go now: an ack-eliciting
        packet of exactly the probe size (PING, then PADDING). While the window has no room
        for it, data waits too (``_pmtu_hold``), or a busy sender would never leave enough."""
        size = pmtu.probe_size()
        if size is None:
            return None
        recovery = self.recovery
        if not recovery.can_send(size):
            # Hold data back only if the window can ever take the probe.
            self._pmtu_hold = size <= recovery.congestion.cwnd
            return None
        if self.pacer is not None:
            wake = self.pacer.next_send_time(now)
            if wake is not None and wake > now:
                self._pmtu_hold = True
                self._pacer_wake = wake
                return None
        header = self._header()  # (the plain one: the tunnel is confirmed)
        pn = self._next_pn
        padding = bytes(size - len(header) - _AEAD_OVERHEAD - len(_PING))
        meta: list[Any] = [(_M_PMTU_PROBE, size)]
        packet = self._seal_payload(header, [_PING, padding], now, False, meta, probe=True)
        pmtu.on_probe_sent(pn, size, now, recovery.pto_period())
        self.endpoint.pmtu_probes_sent += 1
        return ProbeDatagram(packet)

    def _has_pending_content(self) -> bool:
        return bool(self._control or self._ready or self._datagrams or self._window_updates)

    def _fill(
        self, parts: list[bytes], meta: list[tuple[Any, ...]], space: int
    ) -> tuple[bool, int]:
        """Append control frames, window updates, Creates and stream data that fit in ``space``."""
        eliciting = False
        control = self._control
        while control and space > 0:
            frame = control[0]
            encoded = encode_frame(frame)
            if len(encoded) > space:
                break
            control.pop(0)
            parts.append(encoded)
            meta.append((_M_CONTROL, frame))
            space -= len(encoded)
            eliciting = True
        if self._tunnel_window_pending and space > 16:
            self._tunnel_window_pending = False
            # Grant the configured window from what the application took so far (the first
            # update raises the initial window to it; later ones were raised by consume()).
            self._local_max_data = max(
                self._local_max_data, self._data_consumed + self.config.tunnel_window
            )
            encoded = encode_max_data(self._local_max_data)
            parts.append(encoded)
            meta.append((_M_TUNNEL_WINDOW,))
            space -= len(encoded)
            eliciting = True
        if self._max_conns_pending and space > 16:
            self._max_conns_pending = False
            self._local_max_conns = max(self._local_max_conns, self.config.max_connections)
            encoded = encode_max_conns(self._local_max_conns)
            parts.append(encoded)
            meta.append((_M_MAX_CONNS,))
            space -= len(encoded)
            eliciting = True
        updates = self._window_updates
        while updates and space > 16:
            conn = updates.pop(0)
            if not conn.window_update_pending or conn.closed:
                continue
            conn.window_update_pending = False
            if conn.recv.final_size is None:  # (no window to grow past a known end)
                conn.recv_limit = max(conn.recv_limit, conn.consumed + conn.recv_window)
            encoded = encode_max_conn_data(conn.cid, conn.recv_limit)
            parts.append(encoded)
            meta.append((_M_CONN_WINDOW, conn.cid))
            space -= len(encoded)
            eliciting = True
        while self._datagrams and len(self._datagrams[0]) <= space:
            encoded = self._datagrams.pop(0)
            parts.append(encoded)
            space -= len(encoded)
            eliciting = True
        ready = self._ready
        attempts = len(ready)
        while ready and attempts > 0 and space > 24:
            attempts -= 1
            conn = ready.pop(0)
            conn.queued = False
            if conn.closed or conn.reset:
                continue
            used, more = self._fill_connection(conn, parts, meta, space)
            if used:
                space -= used
                eliciting = True
            if more:
                conn.queued = True
                ready.append(conn)
        return eliciting, space

    def _fill_connection(
        self, conn: Connection, parts: list[bytes], meta: list[tuple[Any, ...]], space: int
    ) -> tuple[int, bool]:
        """Frames of one connection into ``space``: (bytes used, may have more to send)."""
        used = 0
        cid = conn.cid
        if conn.create_pending:
            if conn.local and (cid + 1) >> 1 > self._peer_max_conns:
                return 0, False  # over the peer's connection limit: MaxConns will wake us
            if not self.established and not (conn.retry_safe or conn.early_limit):
                return 0, False  # not retry-safe: wait for the server's answer (no 0-RTT)
            if conn.user_key is not None and not conn.auth_signature:
                conn.auth_signature = conn.user_key.sign(
                    auth_message(
                        self._auth_binding, self.identity or b"", cid, conn.service.encode()
                    )
                )
            encoded = encode_frame(
                Create(
                    cid,
                    conn.service.encode(),
                    conn.retry_safe,
                    conn.user or b"",
                    conn.auth_signature,
                )
            )
            if len(encoded) > space:
                return 0, True
            conn.create_pending = False
            parts.append(encoded)
            meta.append((_M_CREATE, cid))
            used += len(encoded)
            space -= len(encoded)
            if conn.recv_window > conn.recv_limit - conn.consumed:
                # Grant our larger window right behind the Create (not before: the peer
                # ignores a window for a connection it cannot know yet).
                conn.recv_limit = conn.consumed + conn.recv_window
                encoded = encode_max_conn_data(cid, conn.recv_limit)
                if len(encoded) <= space:
                    parts.append(encoded)
                    meta.append((_M_CONN_WINDOW, cid))
                    used += len(encoded)
                    space -= len(encoded)
                else:
                    self._queue_window_update(conn)
        send = conn.send
        old_sent = send.sent_offset
        tunnel_credit = self._peer_max_data - self._data_sent
        limit = min(conn.send_limit, old_sent + tunnel_credit)
        if not self.established and limit > conn.early_limit:
            limit = conn.early_limit  # only retry-safe bytes before the server answers
        if not send.has_data_to_send(limit):
            if tunnel_credit <= 0 and send.write_offset > old_sent:
                self._send_blocked()
            return used, False
        overhead = stream_overhead(cid, send.sent_offset, space)
        chunk = send.next_chunk(space - overhead, limit)
        if chunk is None:
            # No room left in this packet (say a Create took the end of it): the data waits
            # for the next packet, so the connection stays ready.
            return used, send.has_data_to_send(limit)
        offset, data, fin = chunk
        length = len(data)
        frame_header = stream_header(cid, offset, length, fin)
        parts.append(frame_header)
        parts.append(data)
        meta.append((_M_STREAM, cid, offset, length, fin))
        used += len(frame_header) + length
        end = offset + length
        if end > old_sent:
            self._data_sent += end - old_sent
        if offset < old_sent:
            self.packets_retransmitted += 1
        credit = self._peer_max_data - self._data_sent
        return used, send.has_data_to_send(min(conn.send_limit, send.sent_offset + credit))

    def _send_blocked(self) -> None:
        if self._blocked_sent_at != self._peer_max_data:
            self._blocked_sent_at = self._peer_max_data
            self._control.append(Blocked(self._peer_max_data))

    def _encode_ack(self, now: float) -> bytes:
        ranges = self._recv_pns.inclusive_descending()
        delay = int(max(0.0, now - self._largest_recv_time) * 1e6)
        return encode_ack(ranges, delay)

    def _seal_payload(
        self,
        header: bytes,
        parts: list[bytes],
        now: float,
        eliciting: bool,
        meta: list[Any],
        probe: bool = False,
    ) -> bytes:
        pn = self._next_pn
        self._next_pn += 1
        nonce = 2 * pn + self._parity
        packet = self._send_key.seal_parts(header, self.tid, nonce, parts)
        size = len(packet)
        # A path MTU probe is in flight (the window pays for it) but not ack-eliciting for
        # recovery: it arms no PTO, and its loss is no congestion signal (RFC 9000 §14.4).
        in_flight = eliciting or probe
        self.recovery.on_packet_sent(SentPacket(pn, now, size, eliciting, in_flight, meta, probe))
        if in_flight and self.pacer is not None:
            self.pacer.on_packet_sent(size, now)
        self.packets_sent += 1
        self.bytes_sent += size
        if in_flight:
            self._last_sent = now
        if not self.address_validated:
            self._unvalidated_sent += size
        if self._trace:
            data: dict[str, Any] = {"pn": pn, "size": size}
            if probe:
                data["pmtu_probe"] = True
            self._trace(now, "transport:packet_sent", data)
        return packet

    def _seal(self, payload: bytes, now: float, *, ack_eliciting: bool, meta: Any) -> bytes:
        return self._seal_payload(self._header(), [payload], now, ack_eliciting, list(meta))

    def _update_pacer(self) -> None:
        if self.pacer is not None:
            rtt = self.recovery.rtt
            self.pacer.update_rate(
                self.recovery.congestion.cwnd, rtt.smoothed_rtt, rtt_sampled=rtt.has_sample
            )

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.endpoint._count(reason)

    def __repr__(self) -> str:
        role = "client" if self.is_client else "server"
        return f"<Tunnel {role} tid={self.tid:#x} {self.state} peer={self.peer}>"
