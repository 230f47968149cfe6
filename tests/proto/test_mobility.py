"""Mobility: a tunnel follows its client to a new address only after a path challenge."""

from __future__ import annotations

import hashlib

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.testing.sim import Link, move

from .test_tunnel import CLIENT, SERVER, make_pair

ATTACKER = ("10.6.6.6", 6666)


def test_transfer_completes_while_the_client_changes_address_every_second():
    sim, server, client, record, server_app, client_app = make_pair(
        link=Link(delay=0.01, bandwidth=1e6), echo=False
    )
    payload = hashlib.shake_256(b"mobile").digest(5 << 20)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink")
    tunnel.send(cid, payload, end_stream=True)
    sim.keep_log = False
    addresses = [
        CLIENT,
        ("10.0.0.2", 6001),
        ("10.0.0.2", 6002),
        ("10.0.0.3", 6003),
        ("10.0.0.4", 6004),
    ]
    for old, new in zip(addresses, addresses[1:], strict=False):
        sim.run(lambda: cid in server_app.ended, timeout=1.0)
        move(sim, old, new)
    assert sim.run(lambda: cid in server_app.ended, timeout=120)
    assert bytes(server_app.data[cid]) == payload
    migrations = server_app.of(E.TunnelMigrated)
    assert [m.new for m in migrations] == addresses[1:]
    assert len(server.tunnels) == 1 and next(iter(server.tunnels.values())).peer == addresses[-1]


def test_forwarded_packets_from_an_attacker_never_move_the_tunnel():
    sim, server, client, record, server_app, client_app = make_pair(echo=True)
    copies: list[bytes] = []
    link = sim.links[(CLIENT, SERVER)]
    link.drop = lambda datagram: copies.append(datagram) or False
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hello")
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    sim.links[(CLIENT, SERVER)].delay = 1.0  # the attacker is faster than the real path
    tunnel.send(cid, b" world")
    sim.flush()
    newest = copies[-1]
    server.receive_datagram(newest, ATTACKER, sim.now)  # forwarded first, from elsewhere
    challenges = [dst for datagram, dst in server.datagrams_to_send(sim.now)]
    assert ATTACKER in challenges  # the server asks the new address...
    sim.run(timeout=5)
    stunnel = next(iter(server.tunnels.values()))
    assert stunnel.peer == CLIENT  # ...which cannot answer: the tunnel stays
    assert server_app.of(E.TunnelMigrated) == []
    for packet in copies:  # and replays from anywhere are dropped
        server.receive_datagram(packet, ATTACKER, sim.now)
    assert stunnel.peer == CLIENT
    assert bytes(client_app.data[cid]) == b"hello world"


def test_migration_restarts_congestion_state():
    config = EndpointConfig(services={"sink"})
    sim, server, client, record, server_app, client_app = make_pair(
        server_config=config, link=Link(delay=0.02), echo=False
    )
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink")
    stunnel = None
    tunnel.send(cid, bytes(1 << 20))
    sim.run(lambda: len(server_app.data.get(cid, b"")) >= 1 << 20, timeout=30)
    stunnel = next(iter(server.tunnels.values()))
    # Server-to-client data grows the server's window; then the client moves.
    stunnel.send(cid, bytes(2 << 20))
    sim.run(timeout=1)
    grown = stunnel.recovery.congestion.cwnd
    move(sim, CLIENT, ("10.0.0.7", 7000))
    tunnel.send(cid, b"moved")
    assert sim.run(lambda: server_app.of(E.TunnelMigrated), timeout=5)
    assert stunnel.recovery.congestion.cwnd < grown
    assert not stunnel.recovery.rtt.has_sample or stunnel.recovery.rtt.min_rtt > 0
