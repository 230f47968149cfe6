"""Rekey (nextTid / rekeyNow): new TID, keys evolved by a hash, old keys gone, no data lost or
reordered across it."""

from __future__ import annotations

import hashlib

import pytest

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.errors import LocalProtocolError
from minimalt.testing.sim import Link, keys_held

from .test_tunnel import CLIENT, SERVER, make_pair


def _pair(**client_options):
    client_config = EndpointConfig(**client_options)
    return make_pair(
        client_config=client_config,
        link=Link(delay=0.01, loss=0.02, bandwidth=20e6),
        echo=False,
        seed=21,
    )


def _echo_answered(sim, client, record, client_app, data: bytes):
    """A tunnel from ``client`` with one retry-safe echo connection whose first ``data`` has
    come back: a tunnel both ends hold keys for. Returns the tunnel and the connection id."""
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, data)
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    return tunnel, cid


def test_rekeys_during_a_50_mb_transfer_keep_every_byte_in_order():
    sim, server, client, record, server_app, client_app = _pair(rekey_packets=4000)
    payload = hashlib.shake_256(b"rekey").digest(50 << 20)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink")
    tunnel.send(cid, payload, end_stream=True)
    sim.keep_log = False
    keys_seen: list[set[bytes]] = []

    def watch() -> bool:
        keys = keys_held(tunnel)
        if not keys_seen or keys != keys_seen[-1]:
            keys_seen.append(keys)
        return cid in server_app.ended

    assert sim.run(watch, timeout=300)
    received = bytes(server_app.data[cid])
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    rekeys = server_app.of(E.TunnelRekeyed)
    assert len(rekeys) >= 5
    assert len({event.new_tid for event in rekeys}) == len(rekeys)
    stunnel = next(iter(server.tunnels.values()))
    assert stunnel.tid == tunnel.tid and stunnel.epoch == tunnel.epoch
    sim.run(timeout=1)  # let the last switch finish
    current = keys_held(tunnel) | keys_held(stunnel)
    retired = set().union(*keys_seen[:-2]) - current
    assert len(retired) >= 8  # two directions per finished epoch
    assert not (current & retired)  # an old key is held by neither end


def test_server_asks_and_the_client_moves_to_a_new_tid():
    sim, server, client, record, server_app, client_app = make_pair(echo=True)
    tunnel, cid = _echo_answered(sim, client, record, client_app, b"before")
    old_tid = tunnel.tid
    old_keys = keys_held(tunnel)
    stunnel = next(iter(server.tunnels.values()))
    stunnel.request_rekey()
    assert sim.run(lambda: server_app.of(E.TunnelRekeyed), timeout=5)  # no data needed
    tunnel.send(cid, b" after", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"before after"
    assert tunnel.tid != old_tid and stunnel.tid == tunnel.tid
    assert not (keys_held(tunnel) & old_keys)
    assert old_tid not in server.tunnels and old_tid not in server._aliases
    assert old_tid not in client.tunnels and old_tid not in client._aliases


def test_rekey_happens_on_schedule():
    sim, server, client, record, server_app, client_app = make_pair(
        client_config=EndpointConfig(rekey_interval=10.0, keepalive_interval=4.0)
    )
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"x")
    start = sim.now
    sim.run(timeout=35)
    times = [round(t - start, 3) for t, e in client_app.events if isinstance(e, E.TunnelRekeyed)]
    assert times == [10.0, 20.0, 30.0]
    assert tunnel.epoch == 3 and next(iter(server.tunnels.values())).epoch == 3


def test_packets_under_a_retired_tid_are_dropped():
    sim, server, client, record, server_app, client_app = make_pair(echo=True)
    old_packets: list[bytes] = []
    sim.links[(CLIENT, SERVER)].drop = lambda d: old_packets.append(d) or False
    tunnel, cid = _echo_answered(sim, client, record, client_app, b"one")
    tunnel.rekey()
    tunnel.send(cid, b"two")
    assert sim.run(lambda: bytes(client_app.data[cid]) == b"onetwo", timeout=5)
    sim.run(timeout=1)
    before = server.drops.get("unknown_tunnel", 0)
    server.receive_datagram(old_packets[1], CLIENT, sim.now)
    assert server.drops.get("unknown_tunnel", 0) == before + 1


def test_only_the_client_rekeys():
    sim, server, client, record, server_app, client_app = make_pair(echo=True)
    tunnel, _ = _echo_answered(sim, client, record, client_app, b"x")
    with pytest.raises(LocalProtocolError):
        next(iter(server.tunnels.values())).rekey()
    with pytest.raises(LocalProtocolError):
        tunnel.request_rekey()
