"""Path MTU discovery (RFC 8899 DPLPMTUD): tunnels raise their datagram size to what the path
carries, safely: probes are not congestion, black holes and new paths go back to the base."""

from __future__ import annotations

import hashlib

import pytest

from minimalt.proto import constants as C
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.congestion import Cubic, NewReno, Pacer
from minimalt.proto.errors import LocalProtocolError
from minimalt.proto.packet import ProbeDatagram
from minimalt.proto.pmtud import BASE, DISABLED, SEARCH_COMPLETE, SEARCHING, PathMtu
from minimalt.testing.sim import Link, move

from .test_tunnel import CLIENT, SERVER, make_pair, server_tunnel

BASE_SIZE = C.MAX_DATAGRAM_SIZE


def _bulk(sim, client, record, *, service="sink", size=2 << 20):
    payload = hashlib.shake_256(b"pmtud").digest(size)
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection(service)
    tunnel.send(cid, payload, end_stream=True)
    return tunnel, cid, payload


def _searched(tunnel) -> bool:
    return tunnel.stats()["pmtu"]["state"] == SEARCH_COMPLETE


def _sizes_sent(sim, src):
    return [size for _, s, _, size in sim.log if s == src]


# --- the search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtu", "low", "high"),
    [
        (1500, 1472, 1472),  # Ethernet: the ladder's IPv4 size
        (9000, 8972, 8972),  # jumbo frames
        (1280, 1252 - C.PMTU_SEARCH_GRANULARITY, 1252),  # between the base and 1452: halving
        (1228, BASE_SIZE, BASE_SIZE),  # the base and nothing more
        (None, C.DEFAULT_MAX_PROBED_DATAGRAM_SIZE, C.DEFAULT_MAX_PROBED_DATAGRAM_SIZE),
    ],
)
def test_datagram_size_converges_to_the_largest_the_link_carries(mtu, low, high):
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=mtu), echo=False
    )
    tunnel, cid, payload = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended and _searched(tunnel), timeout=30)
    assert bytes(server_app.data[cid]) == payload
    stats = tunnel.stats()
    assert low <= stats["datagram_size"] <= high
    link = sim.links[(CLIENT, SERVER)]
    # Only probes were too big for the link: no data was ever sent above what it carries.
    assert link.too_big == stats["pmtu"]["probes_lost"]
    assert stats["packets_lost"] == 0
    if high > BASE_SIZE:
        assert max(_sizes_sent(sim, CLIENT)) >= high  # the data did use the bigger size


def test_receivers_accept_big_datagrams_whatever_their_own_settings():
    # The server sends 1200 bytes at most and never probes; the client's 16 KiB packets are
    # still received (every endpoint accepts datagrams up to MAX_UDP_PAYLOAD).
    fixed = EndpointConfig(services={"sink"}, pmtu_probing=False)
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=None), echo=False, server_config=fixed
    )
    tunnel, cid, payload = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended, timeout=30)
    assert bytes(server_app.data[cid]) == payload
    assert tunnel.stats()["datagram_size"] == C.DEFAULT_MAX_PROBED_DATAGRAM_SIZE
    assert server_tunnel(server).drops == {}
    assert max(_sizes_sent(sim, SERVER)) <= BASE_SIZE


def test_probes_are_ping_and_padding_of_exactly_the_ladder_sizes():
    trace = []
    config = EndpointConfig(trace=lambda now, name, data: trace.append((name, data)))
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=9000), echo=False, client_config=config
    )
    tunnel, cid, _ = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended and _searched(tunnel), timeout=30)
    probes = [data["size"] for name, data in trace if data.get("pmtu_probe")]
    # 1452, 1472, 8952, 8972 acknowledged; 16384 (the bound) lost PMTU_MAX_PROBES times.
    assert probes == [1452, 1472, 8952, 8972] + [16384] * C.PMTU_MAX_PROBES
    updates = [(data["old"], data["new"]) for name, data in trace if name.endswith("mtu_updated")]
    assert updates == [(1200, 1452), (1452, 1472), (1472, 8952), (8952, 8972)]


def test_a_small_exchange_sends_no_probe():
    # Probing starts only when a packet is filled (bulk data): request/response traffic never
    # pays for probes it would not use.
    sim, server, client, record, _, client_app = make_pair(link=Link(delay=0.01, mtu=None))
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"GET /" * 100, end_stream=True)
    assert sim.run(lambda: cid in client_app.ended, timeout=5)
    sim.run(timeout=5)
    assert tunnel.stats()["pmtu"]["probes_sent"] == 0
    assert server_tunnel(server).stats()["pmtu"]["probes_sent"] == 0
    assert max(size for *_, size in sim.log) <= BASE_SIZE


def test_the_first_flight_is_never_above_the_base_size():
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.05, mtu=None), echo=False
    )
    start = sim.now
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("sink", retry_safe=True)  # 0-RTT: data in the first flight
    payload = bytes(1 << 20)
    tunnel.send(cid, payload, end_stream=True)
    assert sim.run(lambda: cid in server_app.ended, timeout=30)
    # Nothing above the base before the client heard from the server (one round trip)...
    first_flight = [size for t, src, _, size in sim.log if src == CLIENT and t < start + 0.1]
    assert first_flight and max(first_flight) <= BASE_SIZE
    # ... nor from the server before the client's address was proven.
    early_answers = [size for t, src, _, size in sim.log if src == SERVER and t < start + 0.15]
    assert early_answers and max(early_answers) <= BASE_SIZE
    # and yet the transfer did go bigger afterwards.
    assert tunnel.stats()["datagram_size"] > BASE_SIZE


def test_probing_off_keeps_the_base_size():
    fixed = EndpointConfig(pmtu_probing=False)
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=None), echo=False, client_config=fixed
    )
    tunnel, cid, payload = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended, timeout=30)
    assert bytes(server_app.data[cid]) == payload
    stats = tunnel.stats()
    assert stats["datagram_size"] == BASE_SIZE
    assert stats["pmtu"]["state"] == DISABLED and stats["pmtu"]["probes_sent"] == 0
    assert max(_sizes_sent(sim, CLIENT)) == BASE_SIZE


def test_probed_size_is_bounded_by_the_configured_maximum():
    bounded = EndpointConfig(max_probed_datagram_size=4000)
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=None), echo=False, client_config=bounded
    )
    tunnel, cid, _ = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended and _searched(tunnel), timeout=30)
    assert tunnel.stats()["datagram_size"] == 4000
    assert max(_sizes_sent(sim, CLIENT)) == 4000


# --- probe loss is not congestion ------------------------------------------------------------


def test_lost_probes_leave_the_congestion_window_and_the_pto_alone():
    # An Ethernet path: the 8952-byte probes are lost, nothing else is. The window must not
    # shrink for them (no congestion event ever), and no PTO must fire, even when a probe is
    # the only packet outstanding on a quiet tunnel.
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=1500), echo=False
    )
    tunnel, cid, _ = _bulk(
        sim, client, record, size=100_000
    )  # done before the search: probes go alone
    recovery = tunnel.recovery
    worst_pto = 0

    def done() -> bool:
        nonlocal worst_pto
        worst_pto = max(worst_pto, recovery.pto_count)
        return cid in server_app.ended and _searched(tunnel)

    assert sim.run(done, timeout=30)
    stats = tunnel.stats()
    assert stats["pmtu"]["probes_lost"] == C.PMTU_MAX_PROBES
    assert sim.links[(CLIENT, SERVER)].too_big == C.PMTU_MAX_PROBES
    assert recovery.congestion.ssthresh is None  # still in slow start: no congestion event
    assert recovery.congestion.recovery_start_time is None
    assert worst_pto == 0
    assert stats["packets_lost"] == 0  # probes are not counted as lost data


@pytest.mark.parametrize("controller", ["newreno", "cubic"])
def test_a_probe_lost_among_data_is_no_congestion_event(controller):
    # Data keeps flowing behind the lost probe, so loss detection (packet threshold) declares
    # it lost, not the probe's own deadline: still no reduction.
    config = EndpointConfig(congestion_control=controller)
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=1500), echo=False, client_config=config
    )
    tunnel, cid, _ = _bulk(sim, client, record, size=8 << 20)
    cc = tunnel.recovery.congestion
    assert sim.run(lambda: cid in server_app.ended, timeout=60)
    assert tunnel.stats()["pmtu"]["probes_lost"] >= 1
    assert cc.ssthresh is None and cc.recovery_start_time is None


# --- black holes and new paths ---------------------------------------------------------------


def test_a_black_hole_mid_transfer_falls_back_to_the_base_and_the_transfer_completes():
    trace = []
    config = EndpointConfig(
        trace=lambda now, name, data: trace.append((now, data)) if "mtu" in name else None
    )
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=9000, bandwidth=20e6), echo=False, client_config=config
    )
    tunnel, cid, payload = _bulk(sim, client, record, size=16 << 20)
    sim.keep_log = False
    assert sim.run(lambda: tunnel.stats()["datagram_size"] == 8972, timeout=20)
    assert len(server_app.data.get(cid, b"")) < len(payload) // 2  # mid-transfer
    changed = sim.now
    sim.set_mtu(CLIENT, SERVER, 1500)  # a route change: big packets vanish from now on
    assert sim.run(lambda: cid in server_app.ended, timeout=60)
    assert hashlib.sha256(bytes(server_app.data[cid])).digest() == (
        hashlib.sha256(payload).digest()
    )
    stats = tunnel.stats()
    assert stats["pmtu"]["black_holes"] == 1
    after = [data["new"] for t, data in trace if t > changed]
    assert after[0] == BASE_SIZE  # back to the base first...
    assert stats["datagram_size"] == 1472  # ... then up to what the new path carries
    # The big packets swallowed by the hole were resent in smaller ones, not as congestion.
    assert tunnel.recovery.congestion.ssthresh is None


def test_migration_resets_both_ends_to_the_base_and_they_probe_again():
    sizes_at_migration = []

    def on_server_event(sim, endpoint, event):
        server_app.handler(sim, endpoint, event)
        if isinstance(event, E.TunnelMigrated):
            sizes_at_migration.append(
                (event.tunnel.stats()["datagram_size"], tunnel.stats()["datagram_size"])
            )

    sim, server, client, record, server_app, client_app = make_pair(
        link=Link(delay=0.01, mtu=9000), echo=True
    )
    sim.handlers[SERVER] = on_server_event
    tunnel, cid, payload = _bulk(sim, client, record, service="echo", size=8 << 20)
    assert sim.run(lambda: server.tunnels, timeout=5)
    stunnel = server_tunnel(server)
    assert sim.run(
        lambda: tunnel.stats()["datagram_size"] == stunnel.stats()["datagram_size"] == 8972,
        timeout=30,
    )
    move(sim, CLIENT, ("10.0.0.9", 9000))
    assert sim.run(lambda: cid in client_app.ended, timeout=60)
    assert bytes(client_app.data[cid]) == payload
    assert sizes_at_migration == [(BASE_SIZE, BASE_SIZE)]
    # The new path is probed from the base up again (both ways carry bulk data here).
    assert tunnel.stats()["datagram_size"] == stunnel.stats()["datagram_size"] == 8972


def test_the_search_goes_up_again_after_the_raise_timer():
    config = EndpointConfig(idle_timeout=60.0, keepalive_interval=10.0)
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=1500),
        echo=False,
        client_config=config,
        server_config=EndpointConfig(services={"sink"}, idle_timeout=60.0),
    )
    tunnel, cid, _ = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended and _searched(tunnel), timeout=30)
    assert tunnel.stats()["datagram_size"] == 1472
    done = sim.now
    sim.set_mtu(CLIENT, SERVER, 9000)  # the path now carries jumbo frames
    sim.run(timeout=C.PMTU_RAISE_TIMER - 10)
    assert tunnel.stats()["datagram_size"] == 1472  # not before the timer
    assert sim.run(lambda: tunnel.stats()["datagram_size"] == 8972, timeout=30)
    assert sim.now - done >= C.PMTU_RAISE_TIMER


def test_a_probe_the_local_interface_refuses_is_abandoned_at_once():
    # A driver that gets EMSGSIZE for a probe reports it: no retries of that size.
    sim, server, client, record, server_app, _ = make_pair(
        link=Link(delay=0.01, mtu=None), echo=False
    )
    refused = []

    def interface(datagram: bytes) -> bool:
        if isinstance(datagram, ProbeDatagram) and len(datagram) > 8000:
            refused.append(len(datagram))
            client.datagram_too_big(datagram, SERVER, sim.now)
            return True
        return False

    sim.links[(CLIENT, SERVER)].drop = interface
    tunnel, cid, _ = _bulk(sim, client, record)
    assert sim.run(lambda: cid in server_app.ended and _searched(tunnel), timeout=30)
    assert refused == [8952]  # once: 8952 is abandoned at once, and so is all above it
    stats = tunnel.stats()
    assert stats["datagram_size"] == 1472
    assert stats["pmtu"]["probes_lost"] == 1


def test_oversized_and_malformed_datagrams_are_dropped_and_counted():
    sim, server, client, record, server_app, _ = make_pair(link=Link(delay=0.01, mtu=None))
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hi")
    assert sim.run(lambda: cid in server_app.data, timeout=5)
    stunnel = server_tunnel(server)
    before = dict(server.drops)
    for size in (C.MAX_UDP_PAYLOAD, 65536, 1 << 17):
        header = stunnel.tid.to_bytes(8, "big") + (10**6 * 2 + 1).to_bytes(8, "big")
        server.receive_datagram(header + bytes(size - 16), CLIENT, sim.now)
        server.receive_datagram(bytes(size), CLIENT, sim.now)
    assert stunnel.drops.get("auth", 0) == 3
    assert sum(server.drops.values()) - sum(before.values()) == 6
    # Too-big reports about datagrams that are not ours change nothing.
    client.datagram_too_big(b"\x00" * 8, SERVER, sim.now)
    client.datagram_too_big(bytes(20000), SERVER, sim.now)
    assert tunnel.stats()["datagram_size"] == BASE_SIZE
    tunnel.send(cid, b" there", end_stream=True)
    assert sim.run(lambda: cid in server_app.ended, timeout=5)
    assert bytes(server_app.data[cid]) == b"hi there"


# --- the search state machine ----------------------------------------------------------------


def _probe(mtu: PathMtu, now: float = 0.0, pn: int = 1) -> int:
    size = mtu.probe_size()
    assert size is not None and mtu.probe_due
    mtu.on_probe_sent(pn, size, now, 0.1)
    return size


def _search(mtu: PathMtu, carried: int, refuse) -> list[int]:
    """Run a started search over a path that carries ``carried`` bytes: every probe up to it is
    acknowledged, every bigger one refused by ``refuse(mtu, pn, size)``. Returns the sizes tried."""
    tried = []
    pn = 0
    while mtu.probe_due:
        pn += 1
        size = _probe(mtu, pn=pn)
        tried.append(size)
        if size <= carried:
            mtu.on_probe_acked(pn, size, 0.0, 0.0)
        else:
            refuse(mtu, pn, size)
    return tried


def test_path_mtu_climbs_the_ladder_and_stops_at_the_first_size_that_fails():
    mtu = PathMtu(1200, 16384)
    assert mtu.state == BASE and mtu.probe_size() is None
    mtu.start(0.0)
    assert mtu.state == SEARCHING

    def lost(mtu: PathMtu, pn: int, size: int) -> None:
        mtu.on_probe_lost(pn, 0.0)
        if mtu.state == SEARCHING:  # the next try of this size: one PTO later
            assert not mtu.probe_due and mtu.next_probe_at == pytest.approx(0.1)
            mtu.on_timer(mtu.next_probe_at)

    tried = _search(mtu, 1472, lost)
    assert tried == [1452, 1472] + [8952] * C.PMTU_MAX_PROBES
    assert mtu.size == 1472 and mtu.state == SEARCH_COMPLETE
    assert mtu.next_probe_at == pytest.approx(C.PMTU_RAISE_TIMER)


def test_path_mtu_halves_a_narrow_gap_down_to_the_granularity():
    mtu = PathMtu(1200, 16384)
    mtu.start(0.0)

    def too_big(mtu: PathMtu, pn: int, size: int) -> None:
        assert mtu.on_too_big(size, 0.0)  # (refused at once, to keep the list short)

    tried = _search(mtu, 1252, too_big)  # a 1280-byte IPv4 path
    assert tried == [1452, 1326, 1263, 1231]
    assert mtu.size == 1231 and mtu.state == SEARCH_COMPLETE


def test_path_mtu_ignores_stale_probe_reports_and_resets_to_the_base():
    mtu = PathMtu(1200, 9000)
    mtu.start(0.0)
    _probe(mtu, pn=5)
    assert not mtu.on_probe_acked(4, 1452, 0.0, 0.0)  # not the outstanding probe
    mtu.on_probe_lost(4, 0.0)
    assert mtu.probe_pn == 5 and mtu.probes_lost == 0
    assert mtu.on_probe_acked(5, 1452, 0.0, 0.0) and mtu.size == 1452
    mtu.reset(1.0)
    assert mtu.size == 1200 and mtu.state == SEARCHING and mtu.probe_size() == 1452
    assert not mtu.on_probe_acked(5, 1452, 0.0, 0.0)


def test_path_mtu_sees_a_black_hole_in_big_losses_spanning_the_persistent_period():
    mtu = PathMtu(1200, 9000)
    mtu.start(0.0)
    assert mtu.on_probe_acked(1, _probe(mtu, pn=1), 0.0, 0.0)
    mtu.on_large_acked(1.0)
    assert not mtu.on_large_lost(0.9, 0.3)  # sent before a big packet that got through
    assert not mtu.on_large_lost(1.1, 0.3)
    assert not mtu.on_large_lost(1.3, 0.3)  # within the period
    mtu.on_large_acked(1.2)  # a big packet sent after the first suspect got through
    assert not mtu.on_large_lost(1.5, 0.3)
    assert not mtu.on_large_lost(1.7, 0.3)
    assert mtu.on_large_lost(1.81, 0.3)  # nothing big through for more than the period
    mtu.on_black_hole(2.0, 0.1)
    assert mtu.size == 1200 and mtu.black_holes == 1
    assert not mtu.probe_due and mtu.next_probe_at == pytest.approx(2.1)
    mtu.on_timer(2.1)
    assert mtu.probe_size() == 1452


def test_path_mtu_is_disabled_without_room_above_the_base():
    assert PathMtu(1200, 1200).state == DISABLED
    assert PathMtu(1500, 1200).state == DISABLED
    assert PathMtu(1200, 9000, enabled=False).state == DISABLED
    mtu = PathMtu(1200, 9000)
    mtu.start(0.0)
    tried = []
    pn = 0
    while mtu.probe_due:
        pn += 1
        tried.append(_probe(mtu, pn=pn))
        mtu.on_probe_acked(pn, tried[-1], 0.0, 0.0)
    assert tried == [1452, 1472, 8952, 8972, 9000]  # the bound itself is tried last
    assert mtu.next_probe_at is None  # at the bound: no raise timer


# --- congestion control and pacing follow the size --------------------------------------------


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_congestion_windows_follow_the_datagram_size(cls):
    cc = cls(1200)
    cc.cwnd = 3000
    if isinstance(cc, Cubic):
        cc._cwnd = 3000.0
    cc.set_max_datagram_size(8972)
    assert cc.max_datagram_size == 8972
    assert cc.minimum_window == 2 * 8972 and cc.cwnd == 2 * 8972  # a full packet can go
    assert cc.initial_window == min(10 * 8972, max(14720, 2 * 8972))
    cc.cwnd = 100_000
    if isinstance(cc, Cubic):
        cc._cwnd = 100_000.0
    cc.set_max_datagram_size(1200)  # back to the base: the window stays in bytes
    assert cc.cwnd == 100_000 and cc.minimum_window == 2400


def test_pacer_bursts_follow_the_datagram_size():
    pacer = Pacer(1200)
    pacer.set_max_datagram_size(8972)
    assert pacer.burst == 10 * 8972 and pacer.max_datagram_size == 8972


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_datagram_size", 1199),
        ("max_datagram_size", C.MAX_UDP_PAYLOAD + 1),
        ("max_probed_datagram_size", 1000),
        ("max_probed_datagram_size", 70000),
    ],
)
def test_config_refuses_impossible_datagram_sizes(field, value):
    with pytest.raises(ValueError, match=field):
        EndpointConfig(**{field: value})


def test_send_datagram_stays_within_the_wire_limit_whatever_the_base_size():
    sim, server, client, record, *_ = make_pair(
        client_config=EndpointConfig(max_datagram_size=9000)
    )
    tunnel = client.connect(record, sim.now)
    cid = tunnel.open_connection("echo")
    tunnel.send_datagram(cid, bytes(C.MAX_DATAGRAM_DATA))
    with pytest.raises(LocalProtocolError):
        tunnel.send_datagram(cid, bytes(C.MAX_DATAGRAM_DATA + 1))


def test_a_probe_gets_room_in_a_window_that_bulk_data_keeps_full():
    # cwnd-limited bulk data: every acknowledgement frees about two packets' worth, never the
    # 8952 bytes of a probe after 1472-byte packets, unless data waits while a probe is due.
    link = Link(delay=0.02, mtu=9000, bandwidth=10e6, queue_limit=200_000)
    sim, server, client, record, server_app, _ = make_pair(link=link, echo=False)
    tunnel, cid, payload = _bulk(sim, client, record, size=32 << 20)
    sim.keep_log = False
    sim.run(timeout=1.0)  # steady state: the window is full
    assert tunnel.stats()["datagram_size"] == 8972
    recovery = tunnel.recovery
    assert recovery.bytes_in_flight + 8972 > recovery.congestion.cwnd
    # The client moves: the server's path challenge tells it its path changed, so it starts
    # over from the base size (its window, unlike the server's, is not reset).
    move(sim, CLIENT, ("10.0.0.9", 9000))
    assert sim.run(lambda: tunnel.stats()["datagram_size"] == BASE_SIZE, timeout=5)
    assert sim.run(lambda: tunnel.stats()["datagram_size"] == 8972, timeout=2)
    assert sim.run(lambda: cid in server_app.ended, timeout=60)
    assert bytes(server_app.data[cid]) == payload
