"""0-RTT safety, as Zero protocol learned it: replays never reuse a key and nonce nor run a
request twice; a stale clock, a restart or a cache false positive cost one round trip, never a
lost or doubled request; only retry-safe bytes ride in the first flight; amplification."""

from __future__ import annotations

import pytest

from minimalt.proto import constants as C
from minimalt.proto import crypto
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.crypto import BoxKeyPair, SeededRandom, SigningKeyPair
from minimalt.proto.records import ServerKeys
from minimalt.testing.sim import Link, Simulation

from .test_tunnel import CLIENT, SERVER, Peer, make_pair

ATTACKER = ("10.6.6.6", 6666)


@pytest.fixture
def seal_log(monkeypatch):
    """Every (key, box nonce, plaintext) any endpoint encrypts during the test."""
    log: list[tuple[bytes, bytes, bytes]] = []
    original = crypto.DirectionKey.seal
    original_parts = crypto.DirectionKey.seal_parts

    def seal(self, header, tid, nonce, plaintext):
        log.append((self.key, crypto.box_nonce(self.direction, tid, nonce), bytes(plaintext)))
        return original(self, header, tid, nonce, plaintext)

    def seal_parts(self, header, tid, nonce, parts):
        log.append((self.key, crypto.box_nonce(self.direction, tid, nonce), b"".join(parts)))
        return original_parts(self, header, tid, nonce, parts)

    monkeypatch.setattr(crypto.DirectionKey, "seal", seal)
    monkeypatch.setattr(crypto.DirectionKey, "seal_parts", seal_parts)
    return log


def _first_flight(sim, client, record, payload=b"transfer 100 to bob"):
    """Connect with a retry-safe request; return the captured first packet."""
    captured: list[bytes] = []
    link = sim.links[(CLIENT, SERVER)]
    link.drop = lambda datagram: captured.append(datagram) or False
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, payload, end_stream=True)
    sim.flush()
    link.drop = None
    return tunnel, cid, captured[0]


def _server_runs(app: Peer) -> int:
    return len(app.of(E.ConnectionOpened))


def test_replayed_first_packets_never_make_a_server_reuse_a_key_and_nonce(seal_log):
    config = EndpointConfig(services={"echo"}, idle_timeout=2.0)
    sim, server, client, record, server_app, client_app = make_pair(server_config=config)
    tunnel, cid, first = _first_flight(sim, client, record)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    # 1. replayed to the same server while the tunnel lives
    for _ in range(5):
        server.receive_datagram(first, ATTACKER, sim.now)
    sim.flush()
    # 2. replayed after the server collected the tunnel
    assert sim.run(lambda: not server.tunnels, timeout=10)
    server.receive_datagram(first, ATTACKER, sim.now)
    sim.flush()
    assert len(server.tunnels) == 1
    # 3. replayed to a second server instance holding the same keys
    twin = sim.add_endpoint(
        ("10.0.0.9", 4000),
        server_keys=_same_keys(sim, server),
        config=EndpointConfig(services={"echo"}),
    )
    twin.receive_datagram(first, ATTACKER, sim.now)
    sim.flush()
    assert len(twin.tunnels) == 1
    pairs = [(key, nonce) for key, nonce, _ in seal_log]
    assert len(set(pairs)) == len(pairs), "a (key, nonce) pair was used twice"
    # The three server lives all answered the same first packet with the same TID and the
    # same first nonce: only the diversifier keeps their keys apart.
    first_answer = crypto.box_nonce(C.DIRECTION_SERVER_TO_CLIENT, tunnel.tid, 0)
    keys_for_first_answer = [key for key, nonce, _ in seal_log if nonce == first_answer]
    assert len(keys_for_first_answer) == 3


def _same_keys(sim, server):
    return server.server_keys


def test_first_packet_replayed_1000_times_runs_the_request_once():
    config = EndpointConfig(services={"echo"}, idle_timeout=1.0)
    sim, server, client, record, server_app, client_app = make_pair(server_config=config)
    tunnel, cid, first = _first_flight(sim, client, record)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    for _ in range(500):  # while the genuine tunnel lives: the nonce window
        server.receive_datagram(first, ATTACKER, sim.now)
    sim.flush()
    assert sim.run(lambda: not server.tunnels, timeout=10)
    for _ in range(500):  # after it was collected: the replay cache
        server.receive_datagram(first, ATTACKER, sim.now)
        sim.run(timeout=0.01)
    assert _server_runs(server_app) == 1
    assert server.drops["early_data_refused"] >= 1


def test_restarted_server_refuses_replayed_early_data_inside_the_window():
    sim = Simulation(seed=4)
    random = SeededRandom(99)
    now_unix = sim.now + sim.wall_offset
    # Keys as a server loads them from disk: not exclusive to one process lifetime.
    keys = ServerKeys(SigningKeyPair.generate(random), "server")
    keys.add_ephemeral(BoxKeyPair.generate(random), int(now_unix) + 3600, created=now_unix - 60)
    first_app, client_app = Peer(echo=True), Peer()
    first_life = sim.add_endpoint(
        SERVER,
        server_keys=keys,
        handler=first_app.handler,
        config=EndpointConfig(services={"echo"}),
    )
    client = sim.add_endpoint(CLIENT, handler=client_app.handler)
    sim.set_link(CLIENT, SERVER, Link(delay=0.05))
    record = keys.record(*SERVER)
    sim.run(timeout=20)  # the server has been up a while: its cache vouches for new packets
    tunnel, cid, first = _first_flight(sim, client, record)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert tunnel.early_data_accepted is True
    assert _server_runs(first_app) == 1
    # Restart: a new process with the same keys and an empty replay cache.
    second_app = Peer(echo=True)
    second_life = sim.add_endpoint(
        SERVER,
        server_keys=keys,
        handler=second_app.handler,
        config=EndpointConfig(services={"echo"}),
    )
    assert second_life is not first_life
    second_life.receive_datagram(first, ATTACKER, sim.now)
    sim.run(timeout=3)
    assert _server_runs(second_app) == 0
    assert second_life.drops["early_data_refused"] == 1


def test_replay_cache_false_positive_costs_one_round_trip_and_runs_once():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.05))
    cache = server._replay_cache(server.wall_time(sim.now))
    for bloom in cache._filters:  # every identity now looks seen
        bloom[:] = b"\xff" * len(bloom)
    start = sim.now
    tunnel, cid, _ = _first_flight(sim, client, record, payload=b"GET /")
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"GET /"
    assert tunnel.early_data_accepted is False
    assert client_app.of(E.EarlyDataRejected)
    assert _server_runs(server_app) == 1
    assert bytes(server_app.data[cid]) == b"GET /"
    # Refused at 0.05, resent at 0.1 with the ack, echoed at 0.15, back at 0.2: 2 round trips.
    assert client_app.first_data_at[cid] - start == pytest.approx(0.2, abs=1e-9)


def test_client_clock_5_minutes_off_gets_0rtt_on_its_second_tunnel():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.05))
    client.wall_offset -= 300  # the client's clock is 5 minutes slow
    start = sim.now
    tunnel, cid, _ = _first_flight(sim, client, record, payload=b"one")
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert tunnel.early_data_accepted is False
    assert client_app.first_data_at[cid] - start == pytest.approx(0.2, abs=1e-9)
    assert tunnel.clock_skew_ms == pytest.approx(300_000, abs=200)
    tunnel.close()
    assert sim.run(lambda: not client.tunnels, timeout=5)
    for seen in (client_app.ended, client_app.data, client_app.first_data_at):
        seen.clear()  # the new tunnel numbers its connections from 1 again
    start = sim.now
    second, cid2, _ = _first_flight(sim, client, record, payload=b"two")
    assert second is not tunnel
    assert sim.run(lambda: cid2 in client_app.ended, timeout=5)
    assert second.early_data_accepted is True
    assert client_app.first_data_at[cid2] - start == pytest.approx(0.1, abs=1e-9)
    assert _server_runs(server_app) == 2


def test_retry_safe_and_unsafe_writes_keep_their_order():
    sim, server, client, record, server_app, client_app = make_pair(
        link=Link(delay=0.05), echo=False
    )
    start = sim.now
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink")
    tunnel.send(cid, b"A-safe,", retry_safe=True)
    tunnel.send(cid, b"B-unsafe,")
    tunnel.send(cid, b"C-safe", retry_safe=True, end_stream=True)
    arrivals: list[tuple[float, bytes]] = []
    server_app.handler_orig = server_app.handler

    assert sim.run(lambda: cid in server_app.ended, timeout=5)
    assert bytes(server_app.data[cid]) == b"A-safe,B-unsafe,C-safe"
    for when, event in server_app.events:
        if isinstance(event, E.DataReceived):
            arrivals.append((round(when - start, 6), event.data))
    # Only the retry-safe prefix rode the first flight; the rest waited one round trip.
    assert arrivals[0] == (0.05, b"A-safe,")
    assert all(when == 0.15 for when, _ in arrivals[1:])
    assert b"".join(data for _, data in arrivals[1:]) == b"B-unsafe,C-safe"


def test_server_never_sends_more_than_it_received_to_an_unproven_address():
    sim, server, client, record, server_app, client_app = make_pair(echo=False)

    def big_answer(sim_, endpoint, event):
        server_app.handler(sim_, endpoint, event)
        if isinstance(event, E.ConnectionOpened):
            event.tunnel.send(event.cid, bytes(200_000), end_stream=True)

    sim.handlers[SERVER] = big_answer
    tunnel, cid, first = _first_flight(sim, client, record)
    # The attacker sends the client's packet with its own source address; the victim is the
    # attacker's claimed address, which never acknowledges anything.
    victim = ATTACKER
    sim.links[(SERVER, victim)] = Link(delay=0.05)
    for endpoint_addr in list(sim.endpoints):
        if endpoint_addr == CLIENT:
            del sim.endpoints[endpoint_addr]  # the real client is gone: nobody proves the path
    server.receive_datagram(first, victim, sim.now)
    sim.run(timeout=30)
    sent_to_victim = sum(size for _, src, dst, size in sim.log if src == SERVER and dst == victim)
    assert 0 < sent_to_victim <= len(first)
