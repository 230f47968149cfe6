"""Round trips by name, counted on the virtual clock: a directory and two servers in memory,
the directory protocol carried by the core exactly as the asyncio runtime carries it."""

from __future__ import annotations

import pytest

from minimalt.directory.errors import NameNotFound
from minimalt.directory.protocol import SERVICE, lookup_request
from minimalt.proto import events as E
from minimalt.proto.crypto import SeededRandom
from minimalt.proto.records import RecordError

from .simnet import ALPHA, Network

CLIENT = ("10.0.1.1", 5000)
CLIENT2 = ("10.0.1.2", 5000)


def test_first_contact_then_new_names_cost_two_round_trips_and_cached_names_one():
    net = Network()
    client = net.client(CLIENT)  # knows only the directory's address and key
    # First contact: the directory's record (1) + the lookup (1) + the request (1).
    answer, trips = client.request("alpha", b"hello alpha")
    assert answer == b"hello alpha"
    assert trips == pytest.approx(3, abs=1e-9)
    assert client.directory_record == net.directory_record  # learnt at first contact
    # A new name: the lookup (1) + the request (1).
    answer, trips = client.request("beta", b"hello beta")
    assert (answer, trips) == (b"hello beta", pytest.approx(2, abs=1e-9))
    # Cached names: the request only, 0-RTT to the server.
    for name in ("alpha", "beta", "ALPHA"):
        answer, trips = client.request(name, b"again")
        assert (answer, trips) == (b"again", pytest.approx(1, abs=1e-9))
    assert net.directory.counters == {"register_stored": 2, "lookup": 2}


def test_a_client_with_the_directory_record_cached_pays_one_round_trip_per_new_name():
    net = Network()
    # The directory's record saved from an earlier run: the lookup rides in the first packet
    # of a new tunnel to the directory (0-RTT), so it costs one round trip, no more.
    client = net.client(CLIENT2, directory_record=net.directory_record)
    answer, trips = client.request("beta", b"x")
    assert (answer, trips) == (b"x", pytest.approx(2, abs=1e-9))
    answer, trips = client.request("beta", b"y")
    assert (answer, trips) == (b"y", pytest.approx(1, abs=1e-9))


def test_unknown_names_are_a_clear_error_and_cost_one_round_trip():
    net = Network()
    client = net.client(CLIENT, directory_record=net.directory_record)
    start = net.sim.now
    with pytest.raises(NameNotFound, match="no server named 'gamma'"):
        client.lookup("gamma")
    assert net.sim.now - start == pytest.approx(0.1, abs=1e-9)
    assert "gamma" not in client.cache


def test_a_rotated_server_serves_cached_records_and_re_registers():
    net = Network()
    client = net.client(CLIENT, directory_record=net.directory_record)
    client.request("alpha", b"warm")  # caches alpha's record
    old = client.cache.get("alpha", client.wall())
    endpoint, keys, app = net.servers["alpha"]
    keys.rotate(SeededRandom(3), endpoint.wall_time(net.sim.now), interval=3600, grace=30)
    assert net.register("alpha") == "stored"  # re-registration after the rotation
    for tunnel in list(client.endpoint.tunnels.values()):
        tunnel.close()
    net.sim.run(lambda: not client.endpoint.tunnels, timeout=5)
    # The cached (previous-key) record still gets 0-RTT service, and the new record in-band.
    answer, trips = client.request("alpha", b"after rotation")
    assert (answer, trips) == (b"after rotation", pytest.approx(1, abs=1e-9))
    (updated,) = [e for e in client.app.of(E.RecordUpdated) if e.record.identity == old.identity]
    assert updated.record == keys.current_record()
    # A client that looks alpha up now gets the new record from the directory.
    fresh = net.client(CLIENT2, directory_record=net.directory_record)
    assert fresh.lookup("alpha") == keys.current_record() != old


def test_a_record_expired_in_the_directory_is_not_served_and_not_used():
    net = Network()
    client = net.client(CLIENT, directory_record=net.directory_record)
    record = client.lookup("alpha")
    net.sim.run(timeout=record.expires - client.wall() + 1)  # the server never renewed it
    assert client.cache.get("alpha", client.wall()) is None
    # (the directory itself kept rotating; the client refetches its record)
    net.directory_keys.rotate(SeededRandom(4), client.wall(), interval=3600, grace=60)
    with pytest.raises(NameNotFound, match="expired"):
        client.lookup("alpha")


def test_a_directory_answer_with_a_forged_record_is_never_used():
    net = Network()
    entry = net.directory.store.get("alpha")
    forged = bytearray(entry.record)
    forged[-10] ^= 1  # the directory (or its store) was tampered with
    net.directory.store._entries["alpha"] = type(entry)(
        "alpha", entry.identity, bytes(forged), entry.expires
    )
    client = net.client(CLIENT, directory_record=net.directory_record)
    with pytest.raises(RecordError, match="signature"):
        client.lookup("alpha")
    assert len(client.cache) == 0
    assert not [t for t in client.endpoint.tunnels.values() if t.peer == ALPHA]


def test_a_thousand_lookups_at_once_over_one_tunnel_are_all_answered():
    net = Network()
    client = net.client(CLIENT, directory_record=net.directory_record)
    client.lookup("alpha")  # the tunnel is established
    tunnel = client.endpoint.connect(net.directory_record, net.sim.now)
    pending = []
    for _ in range(1100):
        cid = tunnel.open_connection(SERVICE, retry_safe=True)
        tunnel.send(cid, lookup_request("alpha"), end_stream=True)
        pending.append((tunnel, cid))
    net.sim.run(lambda: all(key in client.app.answers for key in pending), timeout=30)
    assert sum(key in client.app.answers for key in pending) == len(pending)
