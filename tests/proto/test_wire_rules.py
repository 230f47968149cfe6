"""The receiver rules of docs/protocol.md, checked against a server ``Endpoint`` driven by a
hand-made client: every packet below is built with ``build_header``, ``encode_frame`` and
``DirectionKey.seal``, so each test states exactly the bytes a peer sends."""

from __future__ import annotations

from minimalt.proto import constants as C
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.crypto import (
    BoxKeyPair,
    DirectionKey,
    SeededRandom,
    SigningKeyPair,
    auth_binding,
    client_to_server_key,
    key_id,
    server_to_client_key,
)
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.frames import (
    Ack,
    Create,
    Hello,
    Ping,
    Reset,
    Stream,
    auth_message,
    decode_frames,
    encode_frame,
)
from minimalt.proto.packet import Header, build_header, parse_header
from minimalt.proto.records import ServerKeys
from minimalt.testing.sim import Link, Simulation

UNIX = 1_700_000_000.0
START = 1000.0
TID = 0x0123456789ABCDEF
CLIENT = ("198.51.100.7", 50000)


class HandClient:
    """A client whose every packet is spelled out by the test; talks to a real server."""

    def __init__(self, *, server_config: EndpointConfig | None = None) -> None:
        server_key = BoxKeyPair(bytes(range(0x20, 0x40)))
        keys = ServerKeys(SigningKeyPair(bytes(range(0x40, 0x60))), "s")
        # Exclusive to this server: its replay cache vouches for first packets (§7.2).
        keys.add_ephemeral(server_key, int(UNIX) + 3600, created=UNIX, exclusive=True)
        self.server = Endpoint(
            server_config or EndpointConfig(services={"echo"}),
            random=SeededRandom(1),
            server_keys=keys,
            wall_offset=UNIX - START,
        )
        me = BoxKeyPair(bytes(range(32)))
        self.section = me.public + key_id(server_key.public)
        self.shared = me.shared_key(server_key.public)
        self.send_key = DirectionKey(
            client_to_server_key(self.shared), C.DIRECTION_CLIENT_TO_SERVER
        )
        self.recv_key: DirectionKey | None = None
        self.nonce = 1
        self.now = START
        self.sent_bytes = 0
        self.received: list[list] = []  # frames of each server packet
        self.received_bytes = 0

    def packet(self, frames: list, *, key_section: bool = False, pad_to: int = 0) -> bytes:
        header = build_header(
            TID,
            self.nonce,
            client_public=self.section[:32] if key_section else None,
            key_id=self.section[32:] if key_section else None,
        )
        payload = b"".join(encode_frame(f) for f in frames)
        pad = pad_to - (len(header) + C.BOX_TAG_SIZE + len(payload))
        if pad > 0:
            payload += bytes(pad)
        self.nonce += 2
        return self.send_key.seal(header, TID, self.nonce - 2, payload)

    def deliver(self, datagram: bytes, addr=CLIENT) -> None:
        self.sent_bytes += len(datagram)
        self.server.receive_datagram(datagram, addr, self.now)

    def first(self, *frames) -> None:
        """A first packet: Hello, the frames, padded to 1200 bytes."""
        hello = Hello(C.PROTOCOL_VERSION, int(UNIX * 1000))
        self.deliver(self.packet([hello, *frames], key_section=True, pad_to=1200))

    def send(self, *frames, addr=CLIENT) -> None:
        self.deliver(self.packet(list(frames)), addr)

    def pull(self, until: float | None = None) -> list[list]:
        """Every server packet sent now (and, with ``until``, on its timers until then)."""
        out: list[list] = []
        while True:
            for datagram, _addr in self.server.datagrams_to_send(self.now):
                out.append(self._open(datagram))
            deadline = self.server.get_timer()
            if until is None or deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.server.handle_timer(self.now)
        self.received += out
        return out

    def _open(self, datagram: bytes) -> list:
        self.received_bytes += len(datagram)
        header = parse_header(datagram)
        assert isinstance(header, Header)
        if header.diversifier is not None and self.recv_key is None:
            self.recv_key = DirectionKey(
                server_to_client_key(self.shared, header.diversifier),
                C.DIRECTION_SERVER_TO_CLIENT,
            )
            # From now on the client's packets use the key bound to the diversifier (§3.3).
            self.send_key = DirectionKey(
                client_to_server_key(self.shared, header.diversifier),
                C.DIRECTION_CLIENT_TO_SERVER,
            )
        assert self.recv_key is not None
        payload = self.recv_key.open(datagram[header.box_offset :], header.tid, header.nonce)
        assert payload is not None
        return decode_frames(payload)

    def events(self) -> list:
        out = []
        while (event := self.server.next_event()) is not None:
            out.append(event)
        return out

    def closed_with(self) -> int | None:
        codes = [ev.code for ev in self.events() if isinstance(ev, E.TunnelClosed)]
        return codes[0] if codes else None

    def establish(self) -> None:
        """First packet, the server's answer, and our ack of it (the address is then proven)."""
        self.first()
        assert self.pull(), "the server answered the first packet"
        self.send(Ack(((0, 0),), 0), Ping())
        self.pull()
        self.events()


def _tunnel(client: HandClient):
    (tunnel,) = client.server.tunnels.values()
    return tunnel


# --- first packets -----------------------------------------------------------------------------


def test_first_packet_below_1200_bytes_is_dropped_without_state() -> None:
    client = HandClient()
    hello = Hello(C.PROTOCOL_VERSION, int(UNIX * 1000))
    client.deliver(client.packet([hello], key_section=True, pad_to=1199))
    assert client.server.tunnels == {}
    assert client.server.drops == {"first_packet_too_small": 1}
    assert client.pull() == []


def test_first_packet_that_does_not_authenticate_is_dropped_without_state() -> None:
    client = HandClient()
    client.send_key = DirectionKey(bytes(32), C.DIRECTION_CLIENT_TO_SERVER)
    client.first()
    assert client.server.tunnels == {}
    assert client.server.drops == {"auth": 1}


def test_server_answers_a_first_packet_with_its_diversifier_within_the_bytes_received() -> None:
    client = HandClient()
    client.first()
    answer = client.pull(until=START + 5)  # timers fire: PTOs, but no ack from the client
    assert answer and client.recv_key is not None
    assert client.received_bytes <= client.sent_bytes  # amplification rule
    assert any(type(f).__name__ == "HelloAck" for f in answer[0])


def test_first_packet_early_data_runs_at_once() -> None:
    client = HandClient()
    client.first(Create(1, b"echo", True), Stream(1, 0, b"GET /"))
    events = client.events()
    assert [ev.cid for ev in events if isinstance(ev, E.ConnectionOpened)] == [1]
    assert [ev.data for ev in events if isinstance(ev, E.DataReceived)] == [b"GET /"]


# --- authenticated packets ---------------------------------------------------------------------


def test_wrong_direction_replayed_and_forged_packets_are_dropped() -> None:
    client = HandClient()
    client.establish()
    tunnel = _tunnel(client)
    before = tunnel.packets_received
    replay = client.packet([Ping()])
    client.deliver(replay)
    client.deliver(replay)  # same nonce again
    forged = bytearray(client.packet([Ping()]))
    forged[-1] ^= 1
    client.deliver(bytes(forged))
    wrong = client.send_key.seal(build_header(TID, 1000), TID, 1000, encode_frame(Ping()))
    client.deliver(wrong)  # even nonce: the server's own direction
    assert tunnel.packets_received == before + 1
    assert client.server.drops["replay"] == 1
    assert client.server.drops["auth"] == 1
    assert client.server.drops["wrong_direction"] == 1
    assert tunnel.state == "open"


def test_malformed_frames_close_the_tunnel_with_frame_encoding_error() -> None:
    client = HandClient()
    client.establish()
    client.deliver(
        client.send_key.seal(
            build_header(TID, client.nonce),
            TID,
            client.nonce,
            b"\x01\x10",  # Ping, type 0x10
        )
    )
    assert client.closed_with() == C.ERR_FRAME_ENCODING
    (close_packet,) = client.pull()
    assert [(type(f).__name__, f.code) for f in close_packet if hasattr(f, "code")] == [
        ("Close", C.ERR_FRAME_ENCODING)
    ]


def test_data_past_the_connection_window_closes_with_flow_control_error() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(1, b"echo"), Stream(1, 64 << 20, b"x"))
    assert client.closed_with() == C.ERR_FLOW_CONTROL


def test_data_past_the_final_size_closes_with_final_size_error() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(1, b"echo"), Stream(1, 0, b"0123456789", fin=True))
    client.send(Stream(1, 10, b"more"))
    assert client.closed_with() == C.ERR_FINAL_SIZE


def test_connection_beyond_the_limit_closes_with_connection_limit() -> None:
    client = HandClient(server_config=EndpointConfig(services={"echo"}, max_connections=16))
    client.establish()
    cid = 2 * C.INITIAL_MAX_CONNS + 1  # ordinal 17
    client.send(Create(cid, b"echo"))
    assert client.closed_with() == C.ERR_CONNECTION_LIMIT


def test_create_for_an_unknown_service_is_refused() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(1, b"nope"))
    refusals = [
        f
        for packet in client.pull(until=client.now + 1)
        for f in packet
        if type(f).__name__ == "Refuse"
    ]
    assert [(f.cid, f.code) for f in refusals] == [(1, C.ERR_UNKNOWN_SERVICE)]
    assert _tunnel(client).state == "open"


# --- rules the code once broke (found while writing the spec) -----------------------------------


def test_create_for_one_of_our_connection_ids_closes_with_protocol_error() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(2, b"echo"))  # even: a server-initiated id
    assert client.closed_with() == C.ERR_PROTOCOL


def test_stream_past_the_largest_offset_closes_with_frame_encoding_error() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(1, b"echo"), Stream(1, (1 << 62) - 1, b"x"))
    assert client.closed_with() == C.ERR_FRAME_ENCODING


def test_reset_below_the_received_data_closes_with_final_size_error() -> None:
    client = HandClient()
    client.establish()
    client.send(Create(1, b"echo"), Stream(1, 0, bytes(1000)))
    client.send(Reset(1, C.ERR_APPLICATION, 10))
    assert client.closed_with() == C.ERR_FINAL_SIZE


def test_a_blind_ack_from_a_spoofed_address_does_not_lift_the_amplification_limit() -> None:
    # An attacker with its own key pair spoofs the victim's address. It never sees the
    # server's diversifier, so it can only send first-flight packets (client key section,
    # early key): acknowledging the server's packet 0 blind and asking for a large response.
    victim = ("203.0.113.9", 443)
    client = HandClient()
    hello = Hello(C.PROTOCOL_VERSION, int(UNIX * 1000))
    client.deliver(client.packet([hello], key_section=True, pad_to=1200), victim)
    # The answer goes to the victim: the attacker sees nothing.
    sent_to_victim = sum(len(d) for d, _ in client.server.datagrams_to_send(client.now))
    request = [hello, Ack(((0, 0),), 0), Create(1, b"echo"), Stream(1, 0, b"GET /big")]
    client.deliver(client.packet(request, key_section=True), victim)
    tunnel = _tunnel(client)
    for event in client.events():
        if isinstance(event, E.ConnectionOpened):
            tunnel.send(event.cid, bytes(100_000))
    until = client.now + 5.0
    while True:
        sent_to_victim += sum(len(d) for d, _ in client.server.datagrams_to_send(client.now))
        deadline = client.server.get_timer()
        if deadline is None or deadline > until:
            break
        client.now = max(client.now, deadline)
        client.server.handle_timer(client.now)
    assert not tunnel.address_validated
    assert 0 < sent_to_victim <= client.sent_bytes


def test_server_initiated_connections_respect_the_clients_connection_limit() -> None:
    server_addr, client_addr = ("10.0.0.1", 4433), ("10.0.0.2", 50000)
    sim = Simulation(seed=3)
    keys = sim.server_keys()
    closed: list[int] = []

    def on_server(sim: Simulation, endpoint: Endpoint, event: E.Event) -> None:
        if isinstance(event, E.ConnectionOpened):
            for _ in range(C.INITIAL_MAX_CONNS + 1):
                cid = event.tunnel.open_connection("push")
                event.tunnel.send(cid, b"x")
        elif isinstance(event, E.TunnelClosed):
            closed.append(event.code)

    sim.add_endpoint(
        server_addr,
        server_keys=keys,
        config=EndpointConfig(services={"echo"}),
        handler=on_server,
    )
    client = sim.add_endpoint(
        client_addr,
        config=EndpointConfig(services={"push"}, max_connections=C.INITIAL_MAX_CONNS),
    )
    sim.set_link(client_addr, server_addr, Link(delay=0.01))
    tunnel = client.connect(keys.record(*server_addr), sim.now)
    tunnel.send(tunnel.open_connection("echo", retry_safe=True), b"hi")
    sim.run(timeout=2.0)
    assert closed == []


def test_first_packet_with_another_version_is_not_served() -> None:
    client = HandClient()
    hello = Hello(C.PROTOCOL_VERSION + 1, int(UNIX * 1000))
    client.deliver(
        client.packet(
            [hello, Create(1, b"echo", True), Stream(1, 0, b"GET /")], key_section=True, pad_to=1200
        )
    )
    events = client.events()
    assert not any(isinstance(ev, E.ConnectionOpened) for ev in events)
    assert [ev.code for ev in events if isinstance(ev, E.TunnelClosed)] == [C.ERR_PROTOCOL]


def test_user_authenticator_is_checked_against_this_tunnel_and_server() -> None:
    client = HandClient()
    client.establish()
    user = SigningKeyPair(bytes(range(0x80, 0xA0)))
    identity = client.server.server_keys.identity.public
    good = user.sign(auth_message(auth_binding(client.shared), identity, 1, b"echo"))
    other_tunnel = user.sign(auth_message(bytes(32), identity, 3, b"echo"))
    client.send(Create(1, b"echo", False, user.public, good))
    client.send(Create(3, b"echo", False, user.public, other_tunnel))
    opened = [ev for ev in client.events() if isinstance(ev, E.ConnectionOpened)]
    assert [(ev.cid, ev.user) for ev in opened] == [(1, user.public)]
    refusals = [
        (f.cid, f.code)
        for packet in client.pull(until=client.now + 1)
        for f in packet
        if type(f).__name__ == "Refuse"
    ]
    assert refusals == [(3, C.ERR_AUTH_FAILED)]
