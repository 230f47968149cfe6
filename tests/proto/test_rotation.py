"""Key rotation: previous/current/next ephemeral keys, the current record handed over in-band,
and a stale key answered with the record (one round trip more, never a failure)."""

from __future__ import annotations

import pytest

from minimalt.proto import events as E
from minimalt.proto.crypto import SeededRandom
from minimalt.testing.sim import Link

from .test_tunnel import SERVER, Peer, make_pair

INTERVAL, GRACE = 10.0, 5.0


def _rotating_pair():
    sim, server, client, record, server_app, client_app = make_pair(link=Link(delay=0.05))
    keys = server.server_keys
    keys.publish(*SERVER)
    return sim, server, client, keys, server_app, client_app


def _request(sim, client, record, app, payload=b"ping"):
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, payload, end_stream=True)
    start = sim.now
    assert sim.run(lambda: cid in app.ended, timeout=10)
    elapsed = app.first_data_at[cid] - start
    for seen in (app.ended, app.data, app.first_data_at):
        seen.clear()
    return tunnel, elapsed


def test_previous_key_is_served_and_the_current_record_handed_over_in_band():
    sim, server, client, keys, server_app, client_app = _rotating_pair()
    old_record = keys.current_record()
    keys.rotate(SeededRandom(5), server.wall_time(sim.now), interval=INTERVAL, grace=GRACE)
    new_record = keys.current_record()
    assert new_record.ephemeral != old_record.ephemeral and keys.previous is not None
    tunnel, elapsed = _request(sim, client, old_record, client_app)
    assert elapsed == pytest.approx(0.1, abs=1e-9)  # still 0-RTT: no failed attempt
    (updated,) = client_app.of(E.RecordUpdated)
    assert updated.record == new_record
    tunnel.close()
    sim.run(lambda: not client.tunnels, timeout=5)
    second, elapsed = _request(sim, client, old_record, client_app)  # the app's stale copy
    assert second.server_key_id == new_record.key_id  # the endpoint used what it learned
    assert elapsed == pytest.approx(0.1, abs=1e-9)


def test_a_key_past_its_grace_costs_one_round_trip_not_an_error():
    sim, server, client, keys, server_app, client_app = _rotating_pair()
    old_record = keys.current_record()
    random = SeededRandom(6)
    now_unix = server.wall_time(sim.now)
    keys.rotate(random, now_unix, interval=INTERVAL, grace=GRACE)
    keys.rotate(random, now_unix, interval=INTERVAL, grace=GRACE)
    keys.remove_ephemeral(old_record.key_id)  # e.g. erased after a compromise
    tunnel, elapsed = _request(sim, client, old_record, client_app)
    assert elapsed == pytest.approx(0.2, abs=1e-9)
    assert client_app.of(E.RecordUpdated)[0].record == keys.current_record()
    assert server.drops["unknown_server_key"] == 1
    assert not client_app.of(E.TunnelClosed)


def test_expired_private_keys_are_erased():
    sim, server, client, keys, *_ = _rotating_pair()
    random = SeededRandom(7)
    first = keys.current.key_id
    now = server.wall_time(sim.now)
    for i in range(4):
        keys.rotate(random, now + i * INTERVAL, interval=INTERVAL, grace=GRACE)
    made_by_rotation = [k for k in keys.key_ids if k != first]
    keys.rotate(random, now + 4000, interval=INTERVAL, grace=GRACE)  # past every expiry
    assert first not in keys.key_ids
    assert not set(made_by_rotation[:-2]) & set(keys.key_ids)
    assert len(keys.key_ids) <= 3  # previous, current, next at most


def test_clients_connecting_across_three_rotations_never_fail():
    sim = None
    sim, server, client, keys, server_app, client_app = _rotating_pair()
    random = SeededRandom(8)
    server.config.idle_timeout = 2.0
    record = keys.current_record()  # fetched once, never refreshed by the application
    next_rotation = sim.now + INTERVAL
    rotations = 0
    results: list[float] = []
    apps: list[Peer] = []
    while rotations < 3 or len(results) < 60:
        if sim.now >= next_rotation:
            keys.rotate(random, server.wall_time(sim.now), interval=INTERVAL, grace=GRACE)
            next_rotation += INTERVAL
            rotations += 1
        app = Peer()
        addr = (f"10.0.1.{len(apps) % 250 + 1}", 7000 + len(apps))
        endpoint = sim.add_endpoint(addr, handler=app.handler)
        sim.set_link(addr, SERVER, Link(delay=0.05))
        apps.append(app)
        tunnel, elapsed = _request(sim, endpoint, record, app, payload=b"%d" % len(results))
        results.append(elapsed)
        tunnel.close()
        sim.run(timeout=0.5)
    assert rotations >= 3
    assert len(results) >= 60 and max(results) <= 0.2 + 1e-9  # at worst one extra round trip
    assert all(not app.of(E.TunnelClosed) or app.of(E.TunnelClosed)[0].code == 0 for app in apps)


def test_bootstrap_by_identity_costs_one_round_trip_then_runs_as_usual():
    sim, server, client, keys, server_app, client_app = _rotating_pair()
    start = sim.now
    tunnel = client.connect_bootstrap(keys.identity.public, SERVER, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"lookup", end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    assert bytes(client_app.data[cid]) == b"lookup"
    assert client_app.first_data_at[cid] - start == pytest.approx(0.2, abs=1e-9)
    assert client_app.of(E.RecordUpdated)[0].record == keys.current_record()
    # A bootstrap to the wrong identity never completes: the record does not verify.
    other = client.connect_bootstrap(bytes(32), ("10.0.0.1", 4000), sim.now)
    assert other is not tunnel
    cid2 = other.open_connection("echo", retry_safe=True)
    other.send(cid2, b"x")
    sim.run(timeout=3)
    assert not other.established and client.drops.get("bad_record", 0) >= 1
