"""Configuration of an endpoint and its tunnels: one dataclass, every attribute documented."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import constants as C


@dataclass
class EndpointConfig:
    """Settings shared by every tunnel of an ``Endpoint``. Times are seconds, sizes bytes."""

    #: Services this endpoint accepts connections for; a Create for another service is refused.
    services: set[str] = field(default_factory=set)
    #: Name of the congestion controller (see ``minimalt.proto.congestion``).
    congestion_control: str = "newreno"
    #: The base datagram size: the largest UDP payload we send until path MTU probing has
    #: proven more (always for the first flight, before the tunnel is confirmed and after a
    #: black hole), and the only one with ``pmtu_probing`` off. Every path carries 1200 bytes.
    max_datagram_size: int = C.MAX_DATAGRAM_SIZE
    #: Probe the path for bigger datagrams (RFC 8899 DPLPMTUD, docs/protocol.md §10.3) once a
    #: tunnel has bulk data to send. The runtime turns it off where it cannot set the IP
    #: Don't-Fragment bit (a fragmented probe would prove nothing).
    pmtu_probing: bool = True
    #: Largest datagram probing tries. 16384 by default: on loopback (MTU 65536) throughput
    #: stops growing there (the per-byte costs, encryption and copies, take over from the
    #: per-packet ones, and a lost datagram costs more), while jumbo-frame paths (8972) are
    #: within reach and an Ethernet path stops the search at 1472 after one failed size. At
    #: most 65527 (the largest UDP payload); at or below ``max_datagram_size``, no probing.
    max_probed_datagram_size: int = C.DEFAULT_MAX_PROBED_DATAGRAM_SIZE
    #: Flow-control window we grant each connection, and the whole tunnel.
    connection_window: int = C.DEFAULT_CONN_WINDOW
    tunnel_window: int = C.DEFAULT_TUNNEL_WINDOW
    #: Connections the peer may have open at once on one tunnel.
    max_connections: int = C.DEFAULT_MAX_CONNS
    #: A tunnel with no packet from the peer for this long is closed silently.
    idle_timeout: float = C.DEFAULT_IDLE_TIMEOUT
    #: Send a PING after this long without sending anything (None: no keep-alive).
    keepalive_interval: float | None = None
    #: Longest we delay an acknowledgement.
    max_ack_delay: float = C.DEFAULT_MAX_ACK_DELAY
    #: RTT assumed before the first sample.
    initial_rtt: float = 0.1
    #: Pace packets over the RTT instead of sending cwnd-sized bursts.
    pacing: bool = True
    #: Optional trace sink: called with (time, name, data-dict) for qlog-style events.
    trace: Callable[[float, str, dict[str, Any]], None] | None = None
    #: Tunnels this endpoint holds at most (server side); first packets beyond it are dropped.
    max_tunnels: int = 100_000
    #: Tunnels one source IP address may hold at once (server side).
    max_tunnels_per_source: int = 1_000
    #: 0-RTT freshness window (seconds): early data whose client clock is further off than
    #: this from ours is refused (and resent by the client after one round trip).
    early_data_window: float = 10.0
    #: Size of the anti-replay Bloom filters (bits per filter; two filters are kept).
    replay_cache_bits: int = 1 << 23
    #: Server: first packets per second above which new clients must solve a puzzle before
    #: any Curve25519 work (0: always; None: never).
    puzzle_threshold: float | None = 5000.0
    #: Server: puzzle difficulty (leading zero bits) at the threshold; one more bit each time
    #: the load doubles, up to ``max_puzzle_difficulty``.
    puzzle_difficulty: int = 12
    #: Client: move the tunnel to a new TID and keys after this long (None: never by time).
    rekey_interval: float | None = C.DEFAULT_REKEY_INTERVAL
    #: Client: ... or after sending this many packets (None: never by count).
    rekey_packets: int | None = C.DEFAULT_REKEY_PACKETS
    #: Client: the hardest puzzle it will solve (2**bits hashes); harder ones are ignored.
    max_puzzle_difficulty: int = 22

    def __post_init__(self) -> None:
        if not 1200 <= self.max_datagram_size <= C.MAX_UDP_PAYLOAD:
            raise ValueError(
                f"max_datagram_size must be 1200 to {C.MAX_UDP_PAYLOAD} bytes, "
                f"not {self.max_datagram_size}"
            )
        if not 1200 <= self.max_probed_datagram_size <= C.MAX_UDP_PAYLOAD:
            raise ValueError(
                f"max_probed_datagram_size must be 1200 to {C.MAX_UDP_PAYLOAD} bytes, "
                f"not {self.max_probed_datagram_size}"
            )
        if self.connection_window < C.INITIAL_CONN_WINDOW:
            raise ValueError(f"connection_window must be at least {C.INITIAL_CONN_WINDOW}")
        if self.tunnel_window < C.INITIAL_TUNNEL_WINDOW:
            raise ValueError(f"tunnel_window must be at least {C.INITIAL_TUNNEL_WINDOW}")
        if self.max_connections < C.INITIAL_MAX_CONNS:
            raise ValueError(f"max_connections must be at least {C.INITIAL_MAX_CONNS}")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
