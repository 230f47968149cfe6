"""Protocol constants, named as in docs/protocol.md; other modules take their numbers here."""

from __future__ import annotations

PROTOCOL_VERSION = 1

# --- Packet header (docs/protocol.md §2) -------------------------------------------------------
TID_SIZE = 8
NONCE_SIZE = 8
HEADER_SIZE = TID_SIZE + NONCE_SIZE
FLAG_KEY = (
    1 << 63
)  # client->server: client ephemeral key present; server->client: diversifier present
FLAG_PUZZLE = 1 << 62  # a puzzle (server->client) or a puzzle solution (client->server) follows
FLAGS_MASK = FLAG_KEY | FLAG_PUZZLE
TID_MASK = (1 << 62) - 1

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64  # Ed25519
KEY_ID_SIZE = (
    4  # first bytes of BLAKE2b(server ephemeral public key): which server key the client used
)
DIVERSIFIER_SIZE = (
    16  # fresh random bytes the server mixes into its send key (docs/protocol.md §3.3)
)
CLIENT_KEY_SECTION_SIZE = PUBLIC_KEY_SIZE + KEY_ID_SIZE
# Puzzles (docs/protocol.md §5): window (4) · difficulty (1) · challenge (16) [· solution (8)]
PUZZLE_WINDOW_SIZE = 4
PUZZLE_CHALLENGE_SIZE = 16
PUZZLE_SOLUTION_SIZE = 8
PUZZLE_SECTION_SIZE = PUZZLE_WINDOW_SIZE + 1 + PUZZLE_CHALLENGE_SIZE  # server -> client
PUZZLE_ANSWER_SIZE = PUZZLE_SECTION_SIZE + PUZZLE_SOLUTION_SIZE  # client -> server
PUZZLE_PERIOD = 30.0  # seconds a puzzle secret (and so a puzzle) stays valid, twice
MAX_PUZZLE_DIFFICULTY = 28  # leading zero bits; clients refuse harder puzzles
# A puzzle packet with this difficulty is a *busy* answer: the server is at a tunnel limit and no
# answer would help. The challenge's first byte says which limit (BUSY_*); the rest is zero.
BUSY_DIFFICULTY = 0xFF
BUSY_TUNNEL_LIMIT = 1  # the server holds max_tunnels tunnels
BUSY_SOURCE_LIMIT = 2  # it holds max_tunnels_per_source tunnels from the client's address
BOX_TAG_SIZE = 16  # Poly1305
BOX_NONCE_SIZE = 24

# Direction byte of the 24-byte box nonce, and the parity of the 64-bit nonce in each direction.
DIRECTION_CLIENT_TO_SERVER = 0x43  # 'C'
DIRECTION_SERVER_TO_CLIENT = 0x53  # 'S'
CLIENT_NONCE_PARITY = 1  # client nonces are odd
SERVER_NONCE_PARITY = 0  # server nonces are even
MAX_NONCE = (1 << 64) - 2  # nonces never wrap: a tunnel closes (or rekeys) before this

# --- Sizes -------------------------------------------------------------------------------------
MAX_DATAGRAM_SIZE = 1200  # the base size: every path carries it; PMTU probing may go higher
MIN_FIRST_PACKET_SIZE = 1200  # clients pad packets carrying their ephemeral key to this size
MAX_UDP_PAYLOAD = 65527  # the largest UDP payload (IPv6); every receiver accepts up to this
MAX_DATAGRAM_DATA = 1200  # data of one DATAGRAM frame (a wire limit, whatever the packet size)
MAX_SERVICE_NAME = 255
MAX_REASON_SIZE = 512

# --- Path MTU discovery (docs/protocol.md §10.3; RFC 8899 DPLPMTUD) --------------------------
DEFAULT_MAX_PROBED_DATAGRAM_SIZE = 16384  # default upper bound of the search (see config.py)
PMTU_MAX_PROBES = 3  # RFC 8899 MAX_PROBES: tries of one size before it is taken as too big
PMTU_RAISE_TIMER = 600.0  # RFC 8899 PMTU_RAISE_TIMER: search upward again after this long
# Sizes tried in turn (UDP payloads): IPv6 and IPv4 over a 1500-byte Ethernet MTU, over
# 9000-byte jumbo frames, then sizes for loopback and virtual links; the configured bound is
# tried too. Paths almost always carry one of these.
PMTU_SEARCH_LADDER = (1452, 1472, 8952, 8972, 16384, 32768, 65507, MAX_UDP_PAYLOAD)
# When a size fails and the gap down to the largest acknowledged size is at most this wide
# (1200 -> 1452: tunnels, PPPoE, VPNs), the gap is halved until it is PMTU_SEARCH_GRANULARITY.
PMTU_REFINE_SPAN = 512
PMTU_SEARCH_GRANULARITY = 32

# --- Frame types (docs/protocol.md §4) ---------------------------------------------------------
FRAME_PADDING = 0x00
FRAME_PING = 0x01
FRAME_ACK = 0x02
FRAME_HELLO = 0x03
FRAME_HELLO_ACK = 0x04
FRAME_CREATE = 0x05
FRAME_REFUSE = 0x06
FRAME_RESET = 0x07
FRAME_STREAM = 0x08
FRAME_STREAM_FIN = 0x09
FRAME_MAX_DATA = 0x0A
FRAME_MAX_CONN_DATA = 0x0B
FRAME_MAX_CONNS = 0x0C
FRAME_CLOSE = 0x0D
FRAME_DATAGRAM = 0x0E
FRAME_BLOCKED = 0x0F
FRAME_PATH_CHALLENGE = 0x10
FRAME_PATH_RESPONSE = 0x11
FRAME_REKEY_NOW = 0x12
FRAME_NEW_RECORD = 0x13
MAX_RECORD_SIZE = 1024
PATH_DATA_SIZE = 8

MAX_ACK_RANGES = (
    64  # a receiver keeps at most this many ranges; a peer's ACK with more is malformed
)

# --- Connection IDs ----------------------------------------------------------------------------
CONTROL_CONNECTION = 0  # connection 0 carries the control RPCs
# Client-initiated connections are odd, server-initiated even (> 0).

# --- Flow control (bytes) ----------------------------------------------------------------------
# Every receiver grants at least the INITIAL_* limits before saying anything; larger windows are
# granted with MAX_DATA / MAX_CONN_DATA / MAX_CONNS frames in its first packets.
INITIAL_CONN_WINDOW = 256 << 10
INITIAL_TUNNEL_WINDOW = 1 << 20
INITIAL_MAX_CONNS = 16
DEFAULT_CONN_WINDOW = 1 << 20  # 1 MiB per connection
DEFAULT_TUNNEL_WINDOW = 16 << 20  # 16 MiB per tunnel
DEFAULT_MAX_CONNS = 1000  # concurrent peer-initiated connections a tunnel accepts

# --- Timers (seconds) --------------------------------------------------------------------------
DEFAULT_REKEY_INTERVAL = 600.0  # a client moves its tunnel to a new TID and keys this often
DEFAULT_REKEY_PACKETS = 1 << 24  # ... or after sending this many packets
DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_MAX_ACK_DELAY = 0.025
ACK_ELICITING_THRESHOLD = 2  # ack at once after this many unacknowledged ack-eliciting packets
CLOSE_LINGER_PTOS = 3  # a closing tunnel answers stray packets for this many PTOs

# --- Error codes carried by CLOSE, RESET and REFUSE -------------------------------------------
ERR_NONE = 0x0
ERR_INTERNAL = 0x1
ERR_PROTOCOL = 0x2
ERR_FLOW_CONTROL = 0x3
ERR_CONNECTION_LIMIT = 0x4
ERR_IDLE_TIMEOUT = 0x5
ERR_FINAL_SIZE = 0x6
ERR_FRAME_ENCODING = 0x7
ERR_APPLICATION = 0x8
ERR_UNKNOWN_SERVICE = 0x10
ERR_REFUSED = 0x11
ERR_EARLY_DATA_REJECTED = 0x12
ERR_AUTH_FAILED = 0x13
ERR_SERVER_BUSY = 0x14  # local report of a busy answer (§2.4); never sent
