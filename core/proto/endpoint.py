"""The endpoint: one per UDP socket. Demultiplexes datagrams to tunnels by TID, admits new
tunnels only after their first packet authenticates, and keeps the tunnels' timers.

Drivers: ``receive_datagram(data, addr, now)``, ``handle_timer(now)`` and the tunnels' API
calls. Outputs, pulled: ``datagrams_to_send(now)``, ``get_timer()``, ``next_event()``.
Nothing here reads a clock, touches a socket or draws OS randomness: ``now`` (monotonic
seconds) and ``random`` (a callable returning bytes) come from the driver.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections import deque
from typing import Any

from . import constants as C
from ._mypyc import mypyc_attr
from .antireplay import ReplayCache, early_data_verdict
from .config import EndpointConfig
from .crypto import (
    BoxKeyPair,
    DirectionKey,
    RandomSource,
    client_to_server_key,
    is_canonical_public_key,
    key_id,
)
from .errors import FrameEncodingError, LocalProtocolError
from .events import Event
from .frames import Hello, decode_frame
from .packet import build_header, parse_header
from .puzzle import PuzzleIssuer, busy_section
from .records import RecordError, ServerKeys, ServerRecord
from .tunnel import OPEN, Tunnel

_HEADER = struct.Struct(">QQ")
# The X25519 base point: a public key no server holds, so a first packet boxed to it is
# answered with the server's record (see connect_bootstrap).
_PLACEHOLDER_KEY = (9).to_bytes(32, "little")
_MIN_PACKET = C.HEADER_SIZE + C.BOX_TAG_SIZE


@mypyc_attr(allow_interpreted_subclasses=True)  # tools and tests may extend it
class Endpoint:
    """See the module docstring.

    ``server_keys`` makes this endpoint accept tunnels (a server); without it, it only opens
    them. ``wall_offset`` maps ``now`` to Unix time (``wall = now + wall_offset``), needed to
    check record expiry and clocks in first packets. ``now``, the time the endpoint starts,
    starts a server's replay cache; without it the cache starts with the first first-packet
    (then early data to keys that are not ``exclusive`` waits out one freshness window).
    """

    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        # (Required; the None default only keeps mypyc's signature of __init__ valid.)
        random: RandomSource | None = None,
        server_keys: ServerKeys | None = None,
        wall_offset: float = 0.0,
        now: float | None = None,
    ) -> None:
        if random is None:
            raise TypeError("Endpoint() needs random=: a function of n returning n random bytes")
        self.config = config if config is not None else EndpointConfig()
        self.random: RandomSource = random
        self.server_keys = server_keys
        self.wall_offset = wall_offset
        self.tunnels: dict[int, Tunnel] = {}  # by current TID
        # Other TIDs that reach a tunnel: the next one (server, registered in advance) and the
        # previous one (client, while the server has not followed a rekey yet).
        self._aliases: dict[int, Tunnel] = {}
        self._events: deque[Event] = deque()
        self._timers: list[tuple[float, int, Tunnel]] = []
        self._timer_seq = itertools.count()
        self._dirty: dict[Tunnel, None] = {}  # tunnels that may have something to send
        # Draining tunnels (the peer closed) are forgotten at once but for their TIDs: packets
        # to those are dropped unread until the linger ends (deadline by TID, and in order).
        self._draining: dict[int, float] = {}
        self._draining_order: list[tuple[float, int]] = []
        #: Counters of dropped datagrams by reason (and protocol errors), for monitoring.
        self.drops: dict[str, int] = {}
        self.datagrams_received = 0
        self.datagrams_sent = 0
        #: Path MTU probing allowed (``config.pmtu_probing``, unless the driver cannot set the
        #: IP Don't-Fragment bit on its socket: it clears this before any tunnel starts).
        self.pmtu_probing = self.config.pmtu_probing
        #: Path MTU probes handed out so far (a driver sees at a glance whether a batch of
        #: ``datagrams_to_send`` holds one: a ``ProbeDatagram``, to be sent on its own).
        self.pmtu_probes_sent = 0
        self._clock_skew_ms: dict[bytes, int] = {}  # per server identity, learnt from HelloAck
        self._superseded: dict[bytes, ServerRecord] = {}  # old server key id -> newer record
        self._verified: set[bytes] = set()  # records (as bytes) whose signature checked out
        #: Server side: first-packet identities seen, for at-most-once early data. Made on the
        #: first first-packet, so ``started_at`` is when this endpoint began to remember.
        self.replay_cache: ReplayCache | None = None
        if server_keys is not None and now is not None:
            self._replay_cache(self.wall_time(now))
        self.puzzles: PuzzleIssuer | None = None
        if server_keys is not None and self.config.puzzle_threshold is not None:
            self.puzzles = PuzzleIssuer(
                random=random,
                threshold=self.config.puzzle_threshold,
                difficulty=self.config.puzzle_difficulty,
                max_difficulty=self.config.max_puzzle_difficulty + 2,
                now_unix=self.wall_time(now or 0.0),
            )
        self._stateless: list[tuple[bytes, Any]] = []  # puzzles: answers with no tunnel
        self._per_source: dict[Any, int] = {}  # server: tunnels per source IP address

    # --- time --------------------------------------------------------------------------------

    def wall_time(self, now: float) -> float:
        """Unix time at monotonic ``now``."""
        return now + self.wall_offset

    # --- client side -------------------------------------------------------------------------

    def connect(self, record: ServerRecord, now: float, *, addr: Any = None) -> Tunnel:
        """A tunnel to the server ``record`` describes, reusing an open one to the same server.

        Returns at once: the first packet goes out with the next ``datagrams_to_send``; data
        written before the server answers rides in it (0-RTT) when marked retry-safe.
        Raises ``LocalProtocolError`` if the record is expired or not validly signed.
        """
        wall = self.wall_time(now)
        raw = record.to_bytes()  # the whole record: a cached signature alone proves nothing
        if raw not in self._verified or wall >= record.expires:
            try:
                record.verify(wall)
            except RecordError as exc:
                raise LocalProtocolError(f"unusable server record: {exc}") from exc
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified.add(raw)  # an Ed25519 verification costs 50-150 µs
        record = self._freshest(record, self.wall_time(now))
        peer = addr if addr is not None else record.address
        for tunnel in self.tunnels.values():
            if (
                tunnel.is_client
                and tunnel.state == OPEN
                and tunnel.identity == record.identity
                and tunnel.peer == peer
            ):
                return tunnel
        return self._open(record.identity, record.ephemeral, peer, now)

    def connect_bootstrap(self, identity: bytes, addr: Any, now: float) -> Tunnel:
        """A tunnel to a server known only by its long-term identity and address (a
        directory's first contact): the first flight is boxed to a placeholder key, the server
        answers with its signed current record, and the tunnel redoes its first flight to it.
        One round trip more than ``connect``; data written meanwhile is kept and sent then."""
        for tunnel in self.tunnels.values():
            if (
                tunnel.is_client
                and tunnel.state == OPEN
                and tunnel.identity == identity
                and (tunnel.peer == addr)
            ):
                return tunnel
        return self._open(identity, _PLACEHOLDER_KEY, addr, now)

    def _open(self, identity: bytes, server_key: bytes, peer: Any, now: float) -> Tunnel:
        keypair = BoxKeyPair.generate(self.random)
        shared = keypair.shared_key(server_key)
        tid = self._new_tid()
        skew = self._clock_skew_ms.get(identity, 0)
        tunnel = Tunnel.new_client(
            self,
            tid=tid,
            peer=peer,
            now=now,
            send_key=DirectionKey(client_to_server_key(shared), C.DIRECTION_CLIENT_TO_SERVER),
            shared=shared,
            key_section=keypair.public + key_id(server_key),
            identity=identity,
            keypair=keypair,
            client_time_ms=int(self.wall_time(now) * 1000) + skew,
        )
        self.tunnels[tid] = tunnel
        self._touch(tunnel)
        self._reschedule(tunnel)
        return tunnel

    def _new_tid(self) -> int:
        while True:
            tid = int.from_bytes(self.random(8), "big") & C.TID_MASK
            if tid and not self._tid_taken(tid):
                return tid

    # --- input -------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        """Handle one UDP payload from ``addr``. Never raises for any ``data``: malformed,
        unauthenticated or unwanted datagrams are dropped and counted in ``drops``."""
        self.datagrams_received += 1
        if len(data) >= _MIN_PACKET:
            raw_tid, nonce = _HEADER.unpack_from(data, 0)
            if not raw_tid & C.FLAGS_MASK:  # the common case: no clear sections
                tunnel = self.tunnels.get(raw_tid) or self._aliases.get(raw_tid)
                if tunnel is None:
                    draining = self._is_draining(raw_tid, now)
                    self._count("draining_tunnel" if draining else "unknown_tunnel")
                    return
                tunnel.receive_plain(data, raw_tid, nonce, addr, now)
                self._dirty[tunnel] = None  # rescheduled by datagrams_to_send or get_timer
                return
        header = parse_header(data)
        if isinstance(header, str):
            self._count(header)
            return
        tunnel = self.tunnels.get(header.tid)
        if tunnel is not None:
            tunnel.receive(header, data, addr, now)
        elif self._is_draining(header.tid, now):
            self._count("draining_tunnel")  # (a first packet again: no new tunnel for it)
            return
        elif header.client_public is not None:
            tunnel = self._accept(header, data, addr, now)
            if tunnel is None:
                return
        else:
            self._count("unknown_tunnel")
            return
        self._dirty[tunnel] = None  # rescheduled by datagrams_to_send or get_timer

    def datagram_too_big(self, data: bytes, addr: Any, now: float) -> None:
        """The driver could not send ``data`` (one of ours) to ``addr``: the local interface
        refused its size (EMSGSIZE). A path MTU probe's size is abandoned at once; a packet of
        the tunnel's current size sends it back to the base size."""
        if len(data) < C.HEADER_SIZE:
            return
        tid = _HEADER.unpack_from(data, 0)[0] & C.TID_MASK
        tunnel = self.tunnels.get(tid) or self._aliases.get(tid)
        if tunnel is None:
            return
        tunnel.datagram_too_big(len(data), now)
        self._touch(tunnel)
        self._reschedule(tunnel)

    def _accept(self, header: Any, data: bytes, addr: Any, now: float) -> Tunnel | None:
        """A first packet for an unknown TID: authenticate it before allocating anything."""
        if self.server_keys is None:
            self._count("not_a_server")
            return None
        if len(data) < C.MIN_FIRST_PACKET_SIZE:
            self._count("first_packet_too_small")
            return None
        if not is_canonical_public_key(header.client_public):
            self._count("noncanonical_key")
            return None
        ephemeral = self.server_keys.lookup(header.key_id, self.wall_time(now))
        if ephemeral is None:
            self._count("unknown_server_key")
            if self.server_keys.address is not None:
                # A key we no longer hold (rotated away, or a restart): answer with our
                # current signed record, so the client retries at once, one round trip later.
                record = self.server_keys.current_record().to_bytes()
                if len(record) < len(data):
                    self._stateless.append((build_header(header.tid, 0, record=record), addr))
            return None
        if len(self.tunnels) >= self.config.max_tunnels:
            self._count("tunnel_limit")
            self._answer_busy(header.tid, addr, C.BUSY_TUNNEL_LIMIT)
            return None
        source = _source_of(addr)
        if self._per_source.get(source, 0) >= self.config.max_tunnels_per_source:
            self._count("source_tunnel_limit")
            self._answer_busy(header.tid, addr, C.BUSY_SOURCE_LIMIT)
            return None
        puzzles = self.puzzles
        if puzzles is not None:
            wall = self.wall_time(now)
            puzzles.note_attempt(wall)
            if header.puzzle is not None:
                refusal = puzzles.check(header.puzzle, header.client_public, header.key_id, wall)
                if refusal is not None:
                    puzzles.stats.refused += 1
                    self._count(refusal)
                    return None
            else:
                difficulty = puzzles.required_difficulty(wall)
                if difficulty is not None:
                    # Stateless answer, smaller than the packet it answers: a puzzle.
                    section = puzzles.puzzle_section(
                        header.client_public, header.key_id, difficulty, wall
                    )
                    self._stateless.append((build_header(header.tid, 0, puzzle=section), addr))
                    self._count("puzzle_demanded")
                    return None
        shared = ephemeral.keypair.shared_key(header.client_public)
        recv_key = DirectionKey(client_to_server_key(shared), C.DIRECTION_CLIENT_TO_SERVER)
        plaintext = recv_key.open(memoryview(data)[header.box_offset :], header.tid, header.nonce)
        if plaintext is None:
            self._count("auth")
            return None
        hello = _first_hello(plaintext)
        if hello is None:
            self._count("no_hello")
            return None
        wall = self.wall_time(now)
        refusal = early_data_verdict(
            self._replay_cache(wall),
            header.client_public,
            hello.client_time_ms,
            wall,
            ephemeral.exclusive,
        )
        if refusal is not None:
            self._count("early_data_refused")
        tunnel = Tunnel.new_server(
            self,
            tid=header.tid,
            peer=addr,
            now=now,
            shared=shared,
            recv_key=recv_key,
            diversifier=self.random(C.DIVERSIFIER_SIZE),
            key_section=header.client_public + header.key_id,
            hello=hello,
            early_refusal=refusal,
        )
        self.tunnels[header.tid] = tunnel
        if ephemeral is not self.server_keys.current and self.server_keys.address is not None:
            # Boxed to our previous key: serve it, and hand over the current record in-band.
            tunnel.send_record(self.server_keys.current_record())
        tunnel._source = source
        self._per_source[source] = self._per_source.get(source, 0) + 1
        if hello.version != C.PROTOCOL_VERSION:
            # Tell the client clearly, before acting on anything else it sent.
            self._count("unsupported_version")
            tunnel.refuse_version(hello.version)
            return tunnel
        tunnel.on_authenticated(header.nonce, plaintext, len(data), addr, now)
        return tunnel

    def _answer_busy(self, tid: int, addr: Any, limit: int) -> None:
        """Tell the client at once that no tunnel is to be had now (a stateless 37-byte busy
        answer to its 1,200-byte first packet), instead of letting it wait out its connect
        timeout. Unauthenticated, like a puzzle: only who saw the client's TID can make one."""
        self._stateless.append((build_header(tid, 0, puzzle=busy_section(limit)), addr))

    @property
    def busy_answers(self) -> int:
        """First packets answered "busy": every one refused at a tunnel limit."""
        return self.drops.get("tunnel_limit", 0) + self.drops.get("source_tunnel_limit", 0)

    def _replay_cache(self, now_unix: float) -> ReplayCache:
        if self.replay_cache is None:
            self.replay_cache = ReplayCache(
                random=self.random,
                now_unix=now_unix,
                window=self.config.early_data_window,
                bits=self.config.replay_cache_bits,
            )
        return self.replay_cache

    # --- timers ------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline of any tunnel (may be early: a spurious wake-up is harmless)."""
        for tunnel in self._dirty:  # inputs since the last datagrams_to_send
            self._reschedule(tunnel)
        timers = self._timers
        while timers:
            deadline, _, tunnel = timers[0]
            if tunnel._scheduled == deadline and self.tunnels.get(tunnel.tid) is tunnel:
                return deadline
            heapq.heappop(timers)
        return None

    def handle_timer(self, now: float) -> None:
        """Run every tunnel timer that is due at ``now``."""
        self._expire_draining(now)
        timers = self._timers
        due: list[Tunnel] = []
        while timers and timers[0][0] <= now:
            deadline, _, tunnel = heapq.heappop(timers)
            if tunnel._scheduled != deadline:
                continue  # superseded by an earlier entry that already ran
            tunnel._scheduled = None
            if self.tunnels.get(tunnel.tid) is tunnel:
                due.append(tunnel)
        # Rescheduled only after the loop: some deadlines (a due ACK, pacing) are met by the
        # next datagrams_to_send, not here, and would otherwise come round again at once.
        for tunnel in due:
            tunnel.handle_timer(now)
            self._touch(tunnel)
            self._reschedule(tunnel)

    def _reschedule(self, tunnel: Tunnel) -> None:
        deadline = tunnel.get_timer()
        if deadline is None:
            return
        scheduled = tunnel._scheduled
        if scheduled is None or deadline < scheduled:
            tunnel._scheduled = deadline
            heapq.heappush(self._timers, (deadline, next(self._timer_seq), tunnel))

    # --- output ------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """Every (datagram, address) ready to go now, from every tunnel with something to say."""
        out: list[tuple[bytes, Any]] = self._stateless
        self._stateless = []
        dirty = self._dirty
        self._dirty = {}
        for tunnel in dirty:
            if self.tunnels.get(tunnel.tid) is not tunnel:
                continue
            out.extend(tunnel.datagrams_to_send(now))
            self._reschedule(tunnel)
        self.datagrams_sent += len(out)
        return out

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    # --- bookkeeping used by tunnels ---------------------------------------------------------

    def _touch(self, tunnel: Tunnel) -> None:
        self._dirty[tunnel] = None

    def _remove(self, tunnel: Tunnel, *, linger_until: float | None = None) -> None:
        """Forget ``tunnel``. With ``linger_until``, its TIDs stay known until then, so that
        packets still on their way to it are dropped unread (a draining tunnel)."""
        tids = [tunnel.tid]
        if self.tunnels.get(tunnel.tid) is tunnel:
            del self.tunnels[tunnel.tid]
        for tid in (tunnel._old_tid, tunnel._next_tid):
            if tid is not None and self._aliases.get(tid) is tunnel:
                del self._aliases[tid]
                tids.append(tid)
        if linger_until is not None:
            for tid in tids:
                self._draining[tid] = linger_until
                heapq.heappush(self._draining_order, (linger_until, tid))
        source = tunnel._source
        tunnel._source = None  # counted once, whatever calls this again
        if source is not None:
            left = self._per_source.get(source, 1) - 1
            if left > 0:
                self._per_source[source] = left
            else:
                self._per_source.pop(source, None)

    def _is_draining(self, tid: int, now: float) -> bool:
        """``tid`` named a tunnel the peer closed, and its linger has not ended."""
        return self._draining.get(tid, -1.0) > now

    def _expire_draining(self, now: float) -> None:
        order = self._draining_order
        while order and order[0][0] <= now:
            deadline, tid = heapq.heappop(order)
            if self._draining.get(tid) == deadline:
                del self._draining[tid]

    def _tid_taken(self, tid: int) -> bool:
        """A tunnel uses ``tid`` (as its TID or an alias), or did until a linger now running."""
        return tid in self.tunnels or tid in self._aliases or tid in self._draining

    def _add_alias(self, tunnel: Tunnel, tid: int) -> bool:
        """Let ``tid`` reach ``tunnel`` too; False if some tunnel already uses it."""
        if self._tid_taken(tid):
            return False
        self._aliases[tid] = tunnel
        return True

    def _drop_alias(self, tunnel: Tunnel, tid: int) -> None:
        if self._aliases.get(tid) is tunnel:
            del self._aliases[tid]

    def _retire_tid(self, tunnel: Tunnel, old: int, new: int, *, keep_old: bool = False) -> None:
        """``tunnel`` now goes by ``new`` (already an alias); ``old`` is forgotten, or kept
        as an alias while packets under it may still come (``keep_old``)."""
        self._aliases.pop(new, None)
        if self.tunnels.get(old) is tunnel:
            del self.tunnels[old]
        self.tunnels[new] = tunnel
        if keep_old:
            self._aliases[old] = tunnel

    def _freshest(self, record: ServerRecord, now_unix: float) -> ServerRecord:
        """``record``, or the newer one its server handed us when we last used it."""
        for _ in range(8):  # follow a short chain of rotations
            newer = self._superseded.get(record.key_id)
            if newer is None or newer.identity != record.identity or newer.expires <= now_unix:
                break
            record = newer
        return record

    def learn_record(self, record: ServerRecord, replaces: bytes | None = None) -> None:
        """Remember ``record`` (already verified) as the successor of the server key whose id
        is ``replaces``: later ``connect`` calls with the old record use it instead."""
        if replaces is not None and replaces != record.key_id:
            self._superseded[replaces] = record

    def _learn_clock_skew(self, identity: bytes, skew_ms: int) -> None:
        """A server told us how far our clock is off; later first packets correct for it."""
        self._clock_skew_ms[identity] = self._clock_skew_ms.get(identity, 0) + skew_ms

    def _count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "tunnels": len(self.tunnels),
            "datagrams_received": self.datagrams_received,
            "datagrams_sent": self.datagrams_sent,
            "busy_answers": self.busy_answers,
            "drops": dict(self.drops),
        }


def _first_hello(plaintext: bytes) -> Hello | None:
    """The Hello frame a client's key-carrying packet must start with (after any ACK)."""
    pos = 0
    try:
        while pos < len(plaintext):
            frame, pos = decode_frame(plaintext, pos)
            if type(frame) is Hello:
                return frame
    except FrameEncodingError:
        return None
    return None


def _source_of(addr: Any) -> Any:
    """The part of an address that names a host (the IP of an (ip, port, ...) tuple)."""
    return addr[0] if isinstance(addr, tuple) and addr else addr
