"""DoS resistance: stateless puzzles checked before any Curve25519 work, adaptive difficulty,
single-use solutions, and bounded state that refuses new work without hurting old tunnels."""

from __future__ import annotations

import os
import statistics
import time

import pytest

from minimalt.proto import constants as C
from minimalt.proto import crypto
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.crypto import BoxKeyPair, SeededRandom
from minimalt.proto.packet import build_header, parse_header
from minimalt.proto.puzzle import PuzzleIssuer, busy_limit, busy_section, solve
from minimalt.testing.sim import Link

from .test_tunnel import CLIENT, SERVER, make_pair

ATTACKER = ("10.6.6.6", 6666)


def _puzzle_pair(threshold: float = 0.0, **extra):
    config = EndpointConfig(
        services={"echo"}, puzzle_threshold=threshold, puzzle_difficulty=8, **extra
    )
    return make_pair(server_config=config, link=Link(delay=0.05))


def _fake_first_packet(random: SeededRandom, record) -> bytes:
    """A first packet as a flooder makes it: a fresh key, the right key id, garbage box."""
    client_public = BoxKeyPair.generate(random).public
    tid = int.from_bytes(random(8), "big") & C.TID_MASK
    header = build_header(tid, 1, client_public=client_public, key_id=record.key_id)
    return header + random(C.MIN_FIRST_PACKET_SIZE - len(header))


@pytest.fixture
def x25519_calls(monkeypatch):
    calls = []
    original = crypto.BoxKeyPair.shared_key

    def counting(self, peer_public):
        calls.append(peer_public)
        return original(self, peer_public)

    monkeypatch.setattr(crypto.BoxKeyPair, "shared_key", counting)
    return calls


def test_client_solves_the_puzzle_and_its_request_completes():
    sim, server, client, record, server_app, client_app = _puzzle_pair()
    start = sim.now
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"under load", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"under load"
    assert server.drops["puzzle_demanded"] == 1
    assert server.puzzles.stats.solved == 1
    # One extra round trip for the puzzle, then 0-RTT as usual.
    assert client_app.first_data_at[cid] - start == pytest.approx(0.2, abs=1e-9)


def test_fake_first_packets_cost_no_curve25519_work(x25519_calls):
    sim, server, client, record, *_ = _puzzle_pair()
    random = SeededRandom(42)
    for _ in range(2000):
        server.receive_datagram(_fake_first_packet(random, record), ATTACKER, sim.now)
    puzzles = server.datagrams_to_send(sim.now)
    assert x25519_calls == []
    assert len(puzzles) == 2000 and server.tunnels == {}
    # Every answer is far smaller than what provoked it (no amplification).
    assert max(len(datagram) for datagram, _ in puzzles) < 64


def test_server_cpu_per_fake_packet_is_below_one_curve25519_operation():
    sim, server, client, record, *_ = _puzzle_pair()
    random = SeededRandom(7)
    packets = [_fake_first_packet(random, record) for _ in range(500)]
    keypair = BoxKeyPair(os.urandom(32))
    peers = [BoxKeyPair(os.urandom(32)).public for _ in range(500)]
    fake_costs, dh_costs = [], []
    for _ in range(5):  # medians of repeated rounds: the machine is shared
        begin = time.perf_counter()
        for packet in packets:
            server.receive_datagram(packet, ATTACKER, sim.now)
        server.datagrams_to_send(sim.now)
        fake_costs.append((time.perf_counter() - begin) / len(packets))
        begin = time.perf_counter()
        for peer in peers:
            keypair.shared_key(peer)
        dh_costs.append((time.perf_counter() - begin) / len(peers))
    assert statistics.median(fake_costs) < statistics.median(dh_costs)


def test_legitimate_clients_are_served_during_a_flood():
    sim, server, client, record, server_app, client_app = _puzzle_pair(threshold=50.0)
    random = SeededRandom(3)
    flood_until = sim.now + 2.0

    def flood():
        while sim.now < flood_until:
            for _ in range(20):
                server.receive_datagram(_fake_first_packet(random, record), ATTACKER, sim.now)
            yield

    flooding = flood()
    next(flooding)
    tunnel = client.connect(record, sim.now)
    cids = []
    for i in range(5):
        cid = tunnel.open_connection("echo", retry_safe=True)
        tunnel.send(cid, f"request {i}".encode(), end_stream=True)
        cids.append(cid)

    def done():
        next(flooding, None)
        return all(cid in client_app.ended for cid in cids)

    assert sim.run(done, timeout=5)
    assert server.drops["puzzle_demanded"] > 100  # the flood met puzzles...
    assert len(server.tunnels) == 1  # ...and only the real client got a tunnel
    for i, cid in enumerate(cids):
        assert bytes(client_app.data[cid]) == f"request {i}".encode()


def test_reused_and_forged_solutions_are_refused(x25519_calls):
    config = EndpointConfig(
        services={"echo"}, puzzle_threshold=0.0, puzzle_difficulty=8, idle_timeout=1.0
    )
    sim, server, client, record, server_app, client_app = make_pair(server_config=config)
    answered: list[bytes] = []

    def keep(datagram: bytes) -> bool:
        header = parse_header(datagram)
        if not isinstance(header, str) and header.puzzle is not None and header.from_client:
            answered.append(datagram)
        return False

    sim.links[(CLIENT, SERVER)].drop = keep
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"once", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    genuine = answered[0]
    assert sim.run(lambda: not server.tunnels, timeout=10)  # the server forgot the tunnel
    calls_before = len(x25519_calls)
    server.receive_datagram(genuine, ATTACKER, sim.now)
    assert server.drops["puzzle_reused"] == 1
    header = parse_header(genuine)
    solution_at = header.box_offset - C.PUZZLE_SOLUTION_SIZE
    challenge_at = header.box_offset - C.PUZZLE_ANSWER_SIZE + C.PUZZLE_WINDOW_SIZE + 1
    for pos, reason in ((solution_at + 7, "puzzle_unsolved"), (challenge_at, "puzzle_forged")):
        forged = bytearray(genuine)
        forged[pos] ^= 0x55
        server.receive_datagram(bytes(forged), ATTACKER, sim.now)
        assert server.drops.get(reason, 0) >= 1, reason
    assert len(x25519_calls) == calls_before  # all refused before any public-key work
    assert server.tunnels == {}


def test_puzzle_difficulty_rises_with_load():
    issuer = PuzzleIssuer(random=SeededRandom(1), threshold=100.0, difficulty=10, now_unix=0.0)
    assert issuer.required_difficulty(0.5) is None
    for i in range(150):
        issuer.note_attempt(i / 150)
    issuer.note_attempt(1.0)  # closes the first second: 150/s
    assert issuer.required_difficulty(1.0) == 10
    for i in range(800):
        issuer.note_attempt(1.0 + i / 800)
    issuer.note_attempt(2.0)  # 800/s: three doublings past the threshold
    assert issuer.required_difficulty(2.0) == 13


def test_client_refuses_a_puzzle_harder_than_its_limit():
    section = bytes(4) + bytes((30,)) + bytes(16)
    assert solve(section, max_difficulty=22) is None
    answer = solve(bytes(4) + bytes((6,)) + bytes(range(16)))
    assert answer is not None and len(answer) == C.PUZZLE_ANSWER_SIZE


def _answered_tunnel_under_limits(**limits):
    """A pair whose server has tunnel ``limits`` (no puzzles), and one tunnel it answered."""
    config = EndpointConfig(services={"echo"}, puzzle_threshold=None, **limits)
    sim, server, client, record, server_app, client_app = make_pair(server_config=config)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hi")
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    return sim, server, client, record, client_app, tunnel, cid


def test_tunnel_limits_refuse_new_tunnels_and_keep_old_ones():
    sim, server, client, record, client_app, first, cid = _answered_tunnel_under_limits(
        max_tunnels_per_source=2
    )
    closed: list = []
    others = [
        sim.add_endpoint(
            ("10.0.0.2", 5001 + i), handler=lambda sim, ep, ev: closed.append((sim.now, ev))
        )
        for i in range(3)
    ]
    started = sim.now
    for other in others:  # same IP, other ports
        sim.set_link(sim.address_of(other), SERVER, Link(delay=0.05))
        tunnel = other.connect(record, sim.now)
        tunnel.send(tunnel.open_connection("echo", retry_safe=True), b"hi")
    sim.run(timeout=1)
    assert len(server.tunnels) == 2  # the same source IP holds two at most
    assert server.drops["source_tunnel_limit"] == 2 and server.busy_answers == 2
    # The two refused clients heard so one round trip after they asked (a busy answer),
    # instead of resending their first flight until a connect timeout.
    busy = [(at, ev) for at, ev in closed if isinstance(ev, E.TunnelClosed)]
    assert len(busy) == 2
    for at, ev in busy:
        assert ev.code == C.ERR_SERVER_BUSY and ev.by_peer and "from this address" in ev.reason
        assert at - started == pytest.approx(0.1, abs=1e-6)  # one round trip
    assert all(not other.tunnels for other in others[1:])
    # The established tunnel keeps working.
    first.send(cid, b" again", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"hi again"


def test_busy_answers_are_small_ignored_by_older_clients_and_only_heard_before_an_answer():
    section = busy_section(C.BUSY_TUNNEL_LIMIT)
    assert busy_limit(section) == C.BUSY_TUNNEL_LIMIT
    assert solve(section) is None  # a client that does not know it: a puzzle too hard
    sim, server, client, record, client_app, tunnel, cid = _answered_tunnel_under_limits(
        max_tunnels=1
    )
    # The server is full now: a second client's first packet gets a 37-byte answer.
    latecomer = sim.add_endpoint(("10.0.0.3", 5000))
    sim.set_link(("10.0.0.3", 5000), SERVER, Link(delay=0.05))
    answers = []
    sim.links[(SERVER, ("10.0.0.3", 5000))].drop = lambda d: answers.append(d) or False
    late = latecomer.connect(record, sim.now)
    late.send(late.open_connection("echo", retry_safe=True), b"hi")
    sim.run(timeout=1)
    assert [len(d) for d in answers] == [C.HEADER_SIZE + C.PUZZLE_SECTION_SIZE]
    assert late.state == "closed" and server.drops["tunnel_limit"] == 1
    # A busy answer for a tunnel the server already answered changes nothing, and one naming
    # a TID the client does not hold is dropped unread.
    forged = build_header(tunnel.tid, 0, puzzle=section)
    client.receive_datagram(forged, SERVER, sim.now)
    assert tunnel.state == "open" and tunnel.drops["puzzle_ignored"] == 1
    client.receive_datagram(build_header(tunnel.tid ^ 1, 0, puzzle=section), SERVER, sim.now)
    assert client.drops["unknown_tunnel"] == 1
    tunnel.send(cid, b" again", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)


def test_connection_limit_refuses_with_a_reason_and_keeps_the_tunnel():
    config = EndpointConfig(services={"echo"}, max_connections=C.INITIAL_MAX_CONNS)
    sim, server, client, record, server_app, client_app = make_pair(
        server_config=config, echo=False
    )
    tunnel = client.connect(record, sim.now)
    cids = [tunnel.open_connection("echo", retry_safe=True) for _ in range(40)]
    for cid in cids:
        tunnel.send(cid, b"x")
    sim.run(timeout=2)
    # The client waits at the server's limit instead of breaking the tunnel.
    assert len(server_app.of(E.ConnectionOpened)) == C.INITIAL_MAX_CONNS
    assert tunnel.state == "open" and not client_app.of(E.TunnelClosed)
    stunnel = next(iter(server.tunnels.values()))
    for event in server_app.of(E.ConnectionOpened)[:10]:  # the server finishes ten of them
        stunnel.reset_connection(event.cid)
    sim.run(timeout=2)
    assert len(server_app.of(E.ConnectionOpened)) == C.INITIAL_MAX_CONNS + 10
