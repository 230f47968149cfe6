"""Two endpoints in memory on a virtual clock: 0-RTT, transfers under loss, multiplexing,
flow control, malformed and replayed packets, close and timeouts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from minimalt.proto import constants as C
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.errors import LocalProtocolError
from minimalt.proto.packet import parse_header
from minimalt.testing.sim import Link, Simulation

SERVER = ("10.0.0.1", 4000)
CLIENT = ("10.0.0.2", 5000)


@dataclass
class Peer:
    """What one side's application saw."""

    events: list = field(default_factory=list)
    data: dict = field(default_factory=dict)  # cid -> bytearray
    first_data_at: dict = field(default_factory=dict)  # cid -> virtual time of first bytes
    ended: set = field(default_factory=set)
    consume: bool = True
    echo: bool = False

    def handler(self, sim: Simulation, endpoint: Endpoint, event: E.Event) -> None:
        self.events.append((sim.now, event))
        if isinstance(event, E.DataReceived):
            self.data.setdefault(event.cid, bytearray()).extend(event.data)
            self.first_data_at.setdefault(event.cid, sim.now)
            if event.end_stream:
                self.ended.add(event.cid)
            if self.consume:
                event.tunnel.consume(event.cid, len(event.data))
            if self.echo and event.tunnel.state == "open" and event.cid in event.tunnel.connections:
                event.tunnel.send(event.cid, event.data, end_stream=event.end_stream)

    def of(self, kind: type) -> list:
        return [ev for _, ev in self.events if isinstance(ev, kind)]


def make_pair(
    *,
    seed: int = 1,
    link: Link | None = None,
    server_config: EndpointConfig | None = None,
    client_config: EndpointConfig | None = None,
    echo: bool = True,
):
    sim = Simulation(seed=seed)
    sim.keep_log = True
    keys = sim.server_keys()
    server_app, client_app = Peer(echo=echo), Peer()
    server = sim.add_endpoint(
        SERVER,
        server_keys=keys,
        config=server_config or EndpointConfig(services={"echo", "sink"}),
        handler=server_app.handler,
    )
    client = sim.add_endpoint(CLIENT, config=client_config, handler=client_app.handler)
    sim.set_link(CLIENT, SERVER, link or Link(delay=0.05))
    return sim, server, client, keys.record(*SERVER), server_app, client_app


def server_tunnel(server: Endpoint):
    (tunnel,) = server.tunnels.values()
    return tunnel


# --- 0-RTT -----------------------------------------------------------------------------------


def test_first_response_arrives_exactly_one_round_trip_after_connect():
    sim, server, client, record, _, client_app = make_pair(link=Link(delay=0.05))
    start = sim.now
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"GET /", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"GET /"
    assert client_app.first_data_at[cid] - start == pytest.approx(0.1, abs=1e-9)
    # Exactly one datagram went out before the answer: the padded first flight.
    first_flight = [entry for entry in sim.log if entry[0] == start]
    assert [(src, size) for _, src, _, size in first_flight] == [(CLIENT, C.MIN_FIRST_PACKET_SIZE)]


def test_data_not_marked_retry_safe_waits_one_round_trip_for_the_server():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.05))
    start = sim.now
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo")  # not retry-safe: never in the first flight
    tunnel.send(cid, b"POST /pay", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert server_app.first_data_at[cid] - start == pytest.approx(0.15, abs=1e-9)
    assert client_app.first_data_at[cid] - start == pytest.approx(0.2, abs=1e-9)


def test_connections_to_the_same_server_share_one_tunnel():
    sim, server, client, record, *_ = make_pair()
    assert client.connect(record, sim.now) is client.connect(record, sim.now)


def test_expired_record_is_refused_locally():
    sim, server, client, record, *_ = make_pair()
    with pytest.raises(LocalProtocolError, match="expired"):
        client.connect(record, record.expires - client.wall_offset + 1)


# --- transfers -------------------------------------------------------------------------------


def _transfer(sim, client, record, server_app, size: int, *, timeout: float = 900) -> bytes:
    payload = hashlib.shake_256(b"minimalt").digest(size)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink")
    tunnel.send(cid, payload, end_stream=True)
    sim.keep_log = False
    assert sim.run(lambda: cid in server_app.ended, timeout=timeout), "transfer did not finish"
    return payload, bytes(server_app.data[cid])


@pytest.mark.parametrize("loss", [0.0, 0.02, 0.10])
def test_10_mib_transfer_is_byte_identical_under_random_loss(loss):
    link = Link(delay=0.01, loss=loss, bandwidth=50e6, queue_limit=1 << 20)
    sim, server, client, record, server_app, _ = make_pair(link=link, echo=False, seed=7)
    sent, received = _transfer(sim, client, record, server_app, 10 << 20)
    assert hashlib.sha256(received).digest() == hashlib.sha256(sent).digest()
    stats = client.connect(record, sim.now).stats()
    if loss:
        assert stats["packets_lost"] > 0 and stats["packets_retransmitted"] > 0


def test_transfer_survives_reordering_duplication_and_corruption():
    link = Link(delay=0.01, jitter=0.01, duplicate=0.05, corrupt=0.02, loss=0.01)
    sim, server, client, record, server_app, _ = make_pair(link=link, echo=False, seed=11)
    sent, received = _transfer(sim, client, record, server_app, 2 << 20)
    assert received == sent
    assert server.drops.get("replay", 0) > 0  # the duplicates were seen and dropped
    assert server.drops.get("auth", 0) > 0  # so were the corrupted packets


# --- multiplexing ----------------------------------------------------------------------------


def _run_100_connections(drop_cid: int | None):
    """100 connections each send one 1000-byte message at once on a warmed-up tunnel; if
    ``drop_cid`` is set, the first packet carrying its data is lost. Returns the client
    tunnel, the time of sending, and the server app."""
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.02), echo=False, seed=3
    )
    tunnel = client.connect(record, sim.now)
    warm = tunnel.open_connection("sink")
    tunnel.send(warm, bytes(2 << 20), end_stream=True)
    assert sim.run(lambda: warm in server_app.ended, timeout=60)
    sim.run(timeout=1)  # let acks settle
    cids = [tunnel.open_connection("sink") for _ in range(100)]
    carried: dict[int, set[int]] = {}
    dropped: set[int] = set()

    def drop(datagram: bytes) -> bool:
        header = parse_header(datagram)
        if isinstance(header, str) or not header.nonce & 1:
            return False
        packet = tunnel.recovery._sent.get(header.nonce >> 1)
        cids_in = {meta[1] for meta in (packet.frames if packet else ()) if meta[0] == 0}
        carried[header.nonce >> 1] = cids_in
        if drop_cid in cids_in and not dropped:
            dropped.update(cids_in)
            return True
        return False

    sim.links[(CLIENT, SERVER)].drop = drop
    start = sim.now
    for cid in cids:
        tunnel.send(cid, bytes([cid % 256]) * 1000, end_stream=True)
    assert sim.run(lambda: all(cid in server_app.ended for cid in cids), timeout=30)
    return cids, start, server_app, dropped


def test_loss_on_one_connection_delays_no_other_connection():
    cids, start, baseline, _ = _run_100_connections(drop_cid=None)
    lossy_cids, lossy_start, lossy, dropped = _run_100_connections(drop_cid=cids[50])
    assert cids[50] in dropped
    for cid in cids:
        assert bytes(lossy.data[cid]) == bytes([cid % 256]) * 1000
        base_delay = baseline.first_data_at[cid] - start
        lossy_delay = lossy.first_data_at[cid] - lossy_start
        if cid in dropped:
            assert lossy_delay > base_delay  # its packet was lost: retransmitted later
        else:
            assert lossy_delay == pytest.approx(base_delay, abs=1e-9), f"connection {cid}"


def test_hundred_connections_in_one_tunnel_each_echo_their_own_bytes():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.01))
    tunnel = client.connect(record, sim.now)
    cids = [tunnel.open_connection("echo", retry_safe=True) for _ in range(100)]
    for cid in cids:
        tunnel.send(cid, f"message {cid}".encode() * 50, end_stream=True)
    assert sim.run(lambda: all(cid in client_app.ended for cid in cids), timeout=30)
    assert len(server.tunnels) == 1
    for cid in cids:
        assert bytes(client_app.data[cid]) == f"message {cid}".encode() * 50
    assert len(client_app.of(E.ConnectionClosed)) == 100


# --- flow control ----------------------------------------------------------------------------


def test_receiver_that_stops_reading_stops_the_sender_at_its_window():
    config = EndpointConfig(services={"sink"}, connection_window=C.INITIAL_CONN_WINDOW)
    sim, server, client, record, server_app, _ = make_pair(server_config=config, echo=False)
    server_app.consume = False
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    tunnel.send(cid, bytes(8 << 20), end_stream=True)
    sim.run(timeout=20)  # runs until nothing is left to do but the idle timer
    received = len(server_app.data.get(cid, b""))
    assert received == C.INITIAL_CONN_WINDOW  # exactly the window, not a byte more
    assert tunnel.buffered(cid) == (8 << 20) - received  # the rest waits at the sender
    assert tunnel.recovery.bytes_in_flight == 0
    packets_before = tunnel.packets_sent
    sim.run(timeout=5)
    assert tunnel.packets_sent - packets_before <= 2  # blocked: nothing but the odd probe
    # The application reads again: the window reopens and the transfer completes.
    server_app.consume = True
    stunnel = server_tunnel(server)
    stunnel.consume(cid, received)
    assert sim.run(lambda: cid in server_app.ended, timeout=60)
    assert len(server_app.data[cid]) == 8 << 20


def test_configured_windows_are_granted_in_full_before_the_application_reads():
    # Windows above the protocol's initial ones are announced in the first packets, so a
    # sender may fill them at once: a receiver that has not read a byte yet gets exactly
    # the configured window, not the initial one.
    window = 4 * C.INITIAL_CONN_WINDOW
    config = EndpointConfig(
        services={"sink"}, connection_window=window, tunnel_window=4 * C.INITIAL_TUNNEL_WINDOW
    )
    sim, server, client, record, server_app, _ = make_pair(server_config=config, echo=False)
    server_app.consume = False
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    tunnel.send(cid, bytes(8 << 20), end_stream=True)
    sim.run(timeout=20)
    assert len(server_app.data.get(cid, b"")) == window


def test_tunnel_window_bounds_the_sum_over_connections():
    config = EndpointConfig(services={"sink"}, tunnel_window=C.INITIAL_TUNNEL_WINDOW)
    sim, server, client, record, server_app, _ = make_pair(server_config=config, echo=False)
    server_app.consume = False
    tunnel = client.connect(record, sim.now)
    cids = [tunnel.open_connection("sink", retry_safe=True) for _ in range(8)]
    for cid in cids:
        tunnel.send(cid, bytes(1 << 20))
    sim.run(timeout=20)
    total = sum(len(server_app.data.get(cid, b"")) for cid in cids)
    assert total == C.INITIAL_TUNNEL_WINDOW


# --- hostile input ---------------------------------------------------------------------------


def _snapshot(endpoint: Endpoint):
    tunnels = {}
    for tid, t in endpoint.tunnels.items():
        tunnels[tid] = (
            t.state,
            t.packets_received,
            t._replay.highest,
            list(t._recv_pns),
            sorted((cid, c.recv.highest, c.recv.read_offset) for cid, c in t.connections.items()),
            t.peer,
        )
    return tunnels, len(endpoint._events)


def _capture(sim, src, dst):
    """Record every datagram src sends to dst from now on."""
    captured: list[bytes] = []
    link = sim.links[(src, dst)]

    def keep(datagram: bytes) -> bool:
        captured.append(datagram)
        return False

    link.drop = keep
    return captured


def _mutations(packet: bytes):
    for length in range(len(packet)):
        yield packet[:length]
    for pos in range(len(packet)):
        for mask in (0x01, 0x80, 0xFF):
            yield packet[:pos] + bytes((packet[pos] ^ mask,)) + packet[pos + 1 :]


def test_every_truncation_and_byte_flip_of_a_first_packet_is_dropped():
    sim, server, client, record, *_ = make_pair()
    captured = _capture(sim, CLIENT, SERVER)
    sim.links[(CLIENT, SERVER)].delay = 1000  # keep it from arriving on its own
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hello", end_stream=True)
    sim.flush()
    first = captured[0]
    for mutated in _mutations(first):
        server.receive_datagram(mutated, CLIENT, sim.now)
    assert server.tunnels == {} and server.next_event() is None
    server.receive_datagram(first, CLIENT, sim.now)
    assert len(server.tunnels) == 1
    assert isinstance(server.next_event(), E.TunnelEstablished)


@pytest.mark.parametrize("which", ["data", "ack_only", "server_first"])
def test_every_truncation_and_byte_flip_of_a_tunnel_packet_is_dropped(which):
    sim, server, client, record, server_app, client_app = make_pair(echo=True)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    if which == "server_first":
        to_client = _capture(sim, SERVER, CLIENT)
        sim.links[(SERVER, CLIENT)].delay = 1000
        tunnel.send(cid, b"ping")
        sim.run(lambda: bool(to_client), timeout=5)
        packet, receiver, src = to_client[0], client, SERVER
    else:
        tunnel.send(cid, b"warm up")
        sim.run(lambda: cid in client_app.data, timeout=5)
        sim.run(timeout=0.5)
        to_server = _capture(sim, CLIENT, SERVER)
        sim.links[(CLIENT, SERVER)].delay = 1000
        if which == "data":
            tunnel.send(cid, b"x" * 700)
        else:
            tunnel._ack_eliciting_unacked = 0
            server_tunnel(server).send(cid, b"y" * 10)
            sim.links[(SERVER, CLIENT)].delay = 0.05
        sim.run(lambda: bool(to_server), timeout=5)
        packet, receiver, src = to_server[0], server, CLIENT
        if which == "ack_only":
            assert len(packet) < 60, "expected an ack-only packet"
    before = _snapshot(receiver)
    for mutated in _mutations(packet):
        receiver.receive_datagram(mutated, src, sim.now)
        assert _snapshot(receiver) == before
    (rtunnel,) = receiver.tunnels.values()
    received = rtunnel.packets_received
    receiver.receive_datagram(packet, src, sim.now)
    assert rtunnel.packets_received == received + 1  # the genuine one is still accepted
    receiver.receive_datagram(packet, src, sim.now)  # and a replay of it is not
    assert rtunnel.packets_received == received + 1
    assert receiver.drops["replay"] >= 1


def test_replayed_old_packets_are_dropped_and_deliver_nothing_twice():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)
    captured = _capture(sim, CLIENT, SERVER)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    tunnel.send(cid, b"pay 100 to bob", end_stream=True)
    assert sim.run(lambda: cid in server_app.ended, timeout=5)
    events_before = len(server_app.events)
    for packet in captured * 3:
        server.receive_datagram(packet, CLIENT, sim.now)
    sim.flush()
    assert len(server_app.events) == events_before
    assert bytes(server_app.data[cid]) == b"pay 100 to bob"
    assert server.drops.get("replay", 0) >= len(captured)


def test_garbage_datagrams_never_raise():
    sim, server, client, record, *_ = make_pair()
    import random

    rng = random.Random(5)
    for size in list(range(0, 80)) + [1199, 1200, 1201, 4000, 65507]:
        for _ in range(5):
            server.receive_datagram(rng.randbytes(size), CLIENT, sim.now)
            client.receive_datagram(rng.randbytes(size), SERVER, sim.now)
    assert server.tunnels == {} and client.tunnels == {}
    assert sum(server.drops.values()) == server.datagrams_received


# --- lifecycle -------------------------------------------------------------------------------


def test_half_close_lets_the_other_direction_finish():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"request", end_stream=True)
    assert sim.run(lambda: cid in server_app.ended, timeout=5)
    with pytest.raises(LocalProtocolError, match="write after end"):
        tunnel.send(cid, b"more")
    stunnel = server_tunnel(server)
    stunnel.send(cid, b"response part 1, ")
    stunnel.send(cid, b"part 2", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"response part 1, part 2"
    assert sim.run(lambda: client_app.of(E.ConnectionClosed) and server_app.of(E.ConnectionClosed))


def test_unknown_service_is_refused():
    sim, server, client, record, server_app, client_app = make_pair()
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("nope", retry_safe=True)
    tunnel.send(cid, b"hi")
    assert sim.run(lambda: client_app.of(E.ConnectionRefused), timeout=5)
    (refused,) = client_app.of(E.ConnectionRefused)
    assert refused.cid == cid and refused.code == C.ERR_UNKNOWN_SERVICE
    assert "nope" in refused.reason
    assert server_app.of(E.ConnectionOpened) == []


def test_reset_aborts_the_connection_on_both_sides():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    tunnel.send(cid, b"partial")
    assert sim.run(lambda: cid in server_app.data, timeout=5)
    tunnel.reset_connection(cid, code=42)
    assert sim.run(lambda: server_app.of(E.ConnectionReset), timeout=5)
    assert server_app.of(E.ConnectionReset)[0].code == 42
    assert cid not in server_tunnel(server).connections
    with pytest.raises(LocalProtocolError):
        tunnel.send(cid, b"after reset")


def test_graceful_tunnel_close_reaches_the_peer_and_frees_both_sides():
    sim, server, client, record, server_app, client_app = make_pair()
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"bye")
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    tunnel.close(reason="done")
    assert sim.run(lambda: server_app.of(E.TunnelClosed), timeout=5)
    closed = server_app.of(E.TunnelClosed)[0]
    assert closed.by_peer and closed.reason == "done"
    assert sim.run(lambda: not server.tunnels and not client.tunnels, timeout=5)


def test_a_draining_tunnel_is_forgotten_at_once_and_its_late_packets_are_dropped_unread():
    # The peer's Close puts a tunnel in draining: nothing more is sent or read, so the
    # endpoint keeps no state for it, only its TIDs until the linger ends. A late packet (here
    # the client's first flight again) is dropped and counted, and makes no new tunnel.
    sim, server, client, record, server_app, client_app = make_pair()
    captured = _capture(sim, CLIENT, SERVER)  # (recorded, and delivered as usual)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hello")
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    first = captured[0]
    stunnel = server_tunnel(server)
    tunnel.close(reason="done")
    assert sim.run(lambda: server_app.of(E.TunnelClosed), timeout=5)
    assert server.tunnels == {} and stunnel.state == "closed"
    assert stunnel._send_key is None  # keys erased at once
    drops = server.drops.get("draining_tunnel", 0)
    server.receive_datagram(first, CLIENT, sim.now)
    assert server.drops["draining_tunnel"] == drops + 1
    assert server.tunnels == {}  # no X25519, no new tunnel for a late first packet
    # The TID the client would rekey to is remembered too (registered in advance).
    assert stunnel._next_tid is not None and not server._aliases
    server.receive_datagram(stunnel._next_tid.to_bytes(8, "big") + bytes(40), CLIENT, sim.now)
    assert server.drops["draining_tunnel"] == drops + 2
    # After the linger the TID is forgotten too.
    sim.run(timeout=5)
    server.handle_timer(sim.now)
    assert not server._draining


def test_a_close_in_the_clients_first_later_packet_leaves_no_next_tid_behind():
    # One request, then the client closes at once: its Close is its first packet under the
    # later key, the kind of packet after which the server registers the TID the client may
    # rekey to. A packet that closes the tunnel needs none: nothing extra to derive, register,
    # and then keep for the linger.
    sim, server, client, record, server_app, client_app = make_pair()
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hello")
    assert sim.run(lambda: server.tunnels, timeout=5)
    # Lose what the client sends until it closes (its acknowledgement of the answer).
    sim.links[(CLIENT, SERVER)].drop = lambda datagram: True
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    sim.run(timeout=0.2)
    stunnel = server_tunnel(server)
    assert not stunnel._peer_has_diversifier  # nothing under the later key has arrived yet
    sim.links[(CLIENT, SERVER)].drop = None
    tunnel.close(reason="done")
    assert sim.run(lambda: server_app.of(E.TunnelClosed), timeout=5)
    assert stunnel._next_tid is None
    assert list(server._draining) == [stunnel.tid] and not server._aliases


def test_idle_tunnel_times_out_silently():
    config = EndpointConfig(idle_timeout=5.0)
    sim, server, client, record, server_app, client_app = make_pair(client_config=config)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"x")
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    start = sim.now
    arrivals = []  # every datagram the client gets after the data
    sim.links[(SERVER, CLIENT)].drop = lambda d: arrivals.append(sim.now) or False
    assert sim.run(lambda: client_app.of(E.TunnelClosed), timeout=10)
    closed = client_app.of(E.TunnelClosed)[0]
    assert closed.code == C.ERR_IDLE_TIMEOUT and not closed.by_peer
    # Closed exactly one idle timeout after the last packet from the server (the acks of the
    # client's waiting PINGs, which stop after half the timeout, count as packets).
    last = arrivals[-1] + 0.05 if arrivals else start
    assert sim.now - last == pytest.approx(5.0, abs=1e-6)
    assert sim.now - start <= 1.5 * 5.0 + 0.5
    assert client.tunnels == {}


def test_keepalive_keeps_an_idle_tunnel_open():
    config = EndpointConfig(idle_timeout=5.0, keepalive_interval=2.0)
    server_config = EndpointConfig(services={"echo"}, idle_timeout=5.0)
    sim, server, client, record, server_app, client_app = make_pair(
        client_config=config, server_config=server_config
    )
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"x")
    sim.run(timeout=30)
    assert tunnel.state == "open" and len(server.tunnels) == 1
    assert client_app.of(E.TunnelClosed) == [] and server_app.of(E.TunnelClosed) == []


def test_stats_and_trace_report_what_happened():
    traced: list[tuple[float, str, dict]] = []
    config = EndpointConfig(trace=lambda t, name, data: traced.append((t, name, data)))
    link = Link(delay=0.02, loss=0.05)
    sim, server, client, record, server_app, _ = make_pair(
        client_config=config, link=link, echo=False, seed=5
    )
    _transfer(sim, client, record, server_app, 500_000)
    stats = client.connect(record, sim.now).stats()
    assert stats["packets_sent"] == sum(
        1 for _, name, _ in traced if name == "transport:packet_sent"
    )
    assert stats["packets_lost"] == sum(
        1 for _, name, _ in traced if name == "recovery:packet_lost"
    )
    assert stats["packets_lost"] > 0
    assert 0.039 < stats["min_rtt"] < 0.05
    assert stats["bytes_sent"] > 500_000
    assert stats["cwnd"] >= 2 * C.MAX_DATAGRAM_SIZE


def test_qlog_writer_emits_json_seq_records_for_each_packet():
    import io

    from minimalt.proto.qlog import QlogWriter, read_qlog

    stream = io.StringIO()
    config = EndpointConfig(trace=QlogWriter(stream, vantage_point="client"))
    sim, server, client, record, _, client_app = make_pair(client_config=config)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"traced", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    text = stream.getvalue()
    assert text.startswith("\x1e")
    records = read_qlog(text)
    assert records[0]["qlog_format"] == "JSON-SEQ"
    sent = [r for r in records[1:] if r["name"] == "transport:packet_sent"]
    assert len(sent) == tunnel.packets_sent and sent[0]["data"]["size"] == 1200
    assert [r["time"] for r in records[1:]] == sorted(r["time"] for r in records[1:])


def test_a_record_with_a_copied_signature_is_refused_even_after_a_good_one():
    from dataclasses import replace

    sim, server, client, record, *_ = make_pair()
    client.connect(record, sim.now)  # verified once (and cached)
    forged = replace(record, ephemeral=bytes(32))  # same signature, other key
    with pytest.raises(LocalProtocolError, match="signature"):
        client.connect(forged, sim.now)


def test_connection_accepted_comes_after_one_round_trip_and_never_for_a_refusal():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.05))
    start = sim.now
    tunnel = client.connect(record, sim.now)
    good = tunnel.open_connection("echo", retry_safe=True)
    bad = tunnel.open_connection("nope", retry_safe=True)
    tunnel.send(good, b"x")
    tunnel.send(bad, b"y")
    assert sim.run(lambda: client_app.of(E.ConnectionRefused), timeout=5)
    sim.run(timeout=1)
    accepted = [
        (round(t - start, 6), ev.cid)
        for t, ev in client_app.events
        if isinstance(ev, E.ConnectionAccepted)
    ]
    assert accepted == [(0.1, good)]


def test_reset_after_writing_past_the_window_aborts_only_that_connection():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)
    client_app.consume = False  # the client does not read: the server's writes back up
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    other = tunnel.open_connection("sink", retry_safe=True)
    tunnel.send(cid, b"start")
    tunnel.send(other, b"other")
    assert sim.run(lambda: cid in server_app.data and other in server_app.data, timeout=5)
    stunnel = server_tunnel(server)
    stunnel.send(cid, bytes(3 * C.DEFAULT_CONN_WINDOW))  # far more than the client allows
    sim.run(timeout=2)
    stunnel.reset_connection(cid, code=7)
    assert sim.run(lambda: client_app.of(E.ConnectionReset), timeout=5)
    assert client_app.of(E.ConnectionReset)[0].code == 7
    assert tunnel.state == "open" and not client_app.of(E.TunnelClosed)
    tunnel.send(other, b" still works", end_stream=True)
    assert sim.run(lambda: other in server_app.ended, timeout=5)


def test_many_small_writes_keep_the_send_queue_short():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    for _ in range(10_000):
        tunnel.send(cid, b"x")
    assert len(tunnel._ready) == 1
    tunnel.send(cid, b"", end_stream=True)
    assert sim.run(lambda: cid in server_app.ended, timeout=10)
    assert bytes(server_app.data[cid]) == b"x" * 10_000


def test_an_endpoint_without_a_random_source_is_refused_clearly():
    with pytest.raises(TypeError, match="random="):
        Endpoint(EndpointConfig())
