"""Replayed first packets on real sockets (DESIGN §7.1, §7.2): captured off the wire by a relay
and sent again by an attacker's socket, to the same server while the tunnel lives and after it
was collected, to a replica holding the same keys, and to a restarted server. No server ever
seals two packets under one key and nonce, and a request runs at most once; a replay-cache
false positive costs one round trip and nothing else."""

from __future__ import annotations

import asyncio
import time

import pytest

import minimalt
from minimalt.proto import constants as C
from minimalt.proto import crypto
from minimalt.proto.packet import parse_header

from .netutil import (
    KeyedServer,
    Relay,
    Sink,
    closing,
    echo,
    eventually,
    load_keys,
    make_keys,
)

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

REQUEST = b"transfer 100 to bob"


@pytest.fixture
def seal_log(monkeypatch):
    """Every (key, box nonce) any endpoint of this process seals during the test."""
    log: list[tuple[bytes, bytes]] = []
    original = crypto.DirectionKey.seal
    original_parts = crypto.DirectionKey.seal_parts

    def seal(self, header, tid, nonce, plaintext):
        log.append((self.key, crypto.box_nonce(self.direction, tid, nonce)))
        return original(self, header, tid, nonce, plaintext)

    def seal_parts(self, header, tid, nonce, parts):
        log.append((self.key, crypto.box_nonce(self.direction, tid, nonce)))
        return original_parts(self, header, tid, nonce, parts)

    monkeypatch.setattr(crypto.DirectionKey, "seal", seal)
    monkeypatch.setattr(crypto.DirectionKey, "seal_parts", seal_parts)
    return log


async def _request(client: minimalt.Client, record, payload: bytes = REQUEST):
    """One retry-safe request on a new connection; returns (answer, connection)."""
    conn = await client.connect(record, "echo", retry_safe=True)
    conn.write(payload)
    conn.write_eof()
    answer = await asyncio.wait_for(conn.read(), 10)
    await conn.wait_closed()
    return answer, conn


async def test_replayed_first_packet_never_makes_a_server_reuse_a_key_and_nonce(seal_log):
    keys, secret, expires = make_keys()
    config = minimalt.EndpointConfig(services={"echo"}, idle_timeout=0.5)
    server = await KeyedServer.start(keys, echo, config)
    relay = await Relay.start(server.address)
    attacker = await Sink.bind()
    client = minimalt.Client()
    twin = None
    try:
        answer, conn = await _request(client, keys.record(*relay.address))
        assert answer == REQUEST
        (first, *_) = relay.first_packets()
        tid = parse_header(first).tid

        # 1. Replayed to the same server while the genuine tunnel lives: dropped as a replay.
        attacker.send(first, server.address)
        await eventually(lambda: server.endpoint.drops.get("replay", 0) >= 1, 5, "replay drop")

        # 2. Replayed after the server collected the tunnel (idle timeout): a new tunnel
        # answers the attacker, under a key the server never used.
        await eventually(lambda: not server.endpoint.tunnels, 5, "the tunnel collected")
        attacker.send(first, server.address)
        await eventually(lambda: attacker.bytes_from(server.address) > 0, 5, "an answer")

        # 3. Replayed to a replica holding the same keys (loaded, as replicas do, not exclusive).
        replica_keys = load_keys(keys.identity, secret, expires, keys.name)
        twin = await KeyedServer.start(replica_keys, echo, config)
        attacker.send(first, twin.address)
        await eventually(lambda: attacker.bytes_from(twin.address) > 0, 5, "the twin's answer")
    finally:
        await client.aclose()
        attacker.close()
        relay.close()
        await server.aclose()
        if twin is not None:
            await twin.aclose()

    pairs = seal_log
    assert len(set(pairs)) == len(pairs), "a (key, nonce) pair was sealed twice"
    # The three server lives answered the same first packet with the same TID and the same
    # first nonce: only the diversifier kept their keys apart.
    first_answer = crypto.box_nonce(C.DIRECTION_SERVER_TO_CLIENT, tid, 0)
    keys_for_first_answer = [key for key, nonce in seal_log if nonce == first_answer]
    assert len(keys_for_first_answer) == 3
    assert len(set(keys_for_first_answer)) == 3
    # And the request ran once, on the genuine tunnel only.
    assert len(server.opened) == 1 and not twin.opened
    assert conn.get_extra_info("early_data_accepted") is True


async def test_first_packet_replayed_1000_times_runs_the_request_once():
    runs: list[bytes] = []

    async def handler(conn: minimalt.Connection) -> None:
        request = await conn.read()
        runs.append(request)
        conn.write(request)

    relay = await Relay.start()
    config = minimalt.EndpointConfig(idle_timeout=0.5)
    server = await minimalt.serve(handler, service="echo", config=config, advertise=relay.address)
    relay.target = server.address
    attacker = await Sink.bind()
    client = minimalt.Client()
    async with closing(server, relay, attacker, client):
        answer, conn = await _request(client, server.record)
        assert answer == REQUEST and runs == [REQUEST]
        assert conn.get_extra_info("early_data_accepted") is True
        (first, *_) = relay.first_packets()
        base = server.stats()["datagrams_received"]

        def processed() -> int:
            return server.stats()["datagrams_received"] - base

        for _ in range(500):  # while the genuine tunnel lives
            attacker.send(first, server.address)
        await eventually(lambda: processed() >= 500, 5, "500 replays processed")
        await eventually(lambda: not server.tunnels, 5, "the tunnel collected")
        for burst in range(1, 11):  # after it was collected, in bursts a socket buffer holds
            for _ in range(50):
                attacker.send(first, server.address)
            await eventually(lambda n=500 + 50 * burst: processed() >= n, 5, "replays processed")
        drops = server.stats()["drops"]
    assert runs == [REQUEST]
    assert drops["replay"] >= 999
    assert drops["early_data_refused"] >= 1


async def test_restarted_server_refuses_replayed_early_data_and_serves_new_clients(tmp_path):
    keys, secret, expires = make_keys()
    # What a server persisting its ephemeral key writes (and a restart reads back).
    saved = tmp_path / "ephemeral.key"
    saved.write_bytes(secret + expires.to_bytes(8, "big"))
    config = minimalt.EndpointConfig(services={"echo"})
    first_life = await KeyedServer.start(keys, echo, config)
    relay = await Relay.start(first_life.address)
    record = keys.record(*relay.address)
    client = minimalt.Client()
    async with closing(relay, client):
        answer, conn = await _request(client, record)
        assert answer == REQUEST
        assert conn.get_extra_info("early_data_accepted") is True  # it ran, in 0-RTT
        (first, *_) = relay.first_packets()
    await first_life.aclose()
    assert len(first_life.opened) == 1

    # The restart: a new process state, the same port, the key loaded from disk.
    raw = saved.read_bytes()
    loaded = load_keys(keys.identity, raw[:32], int.from_bytes(raw[32:], "big"), keys.name)
    second_life = await KeyedServer.start(loaded, echo, config, port=first_life.address[1])
    attacker = await Sink.bind()
    client = minimalt.Client()
    async with closing(second_life, attacker, client):
        attacker.send(first, second_life.address)
        await eventually(
            lambda: attacker.bytes_from(second_life.address) > 0, 5, "the restarted server"
        )
        assert second_life.opened == []  # the replayed request ran zero times
        assert second_life.endpoint.drops["early_data_refused"] == 1
        # A new client is served at once: its early data waits one round trip, nothing lost.
        answer, conn = await _request(client, keys.record(*second_life.address), b"after")
        assert answer == b"after"
        assert conn.get_extra_info("early_data_accepted") is False
        assert len(second_life.opened) == 1


async def test_replay_cache_false_positive_costs_one_round_trip_and_runs_once():
    one_way = 0.05
    runs: list[bytes] = []

    async def handler(conn: minimalt.Connection) -> None:
        request = await conn.read()
        runs.append(request)
        conn.write(request)

    relay = await Relay.start(delay=one_way)
    server = await minimalt.serve(handler, service="echo", advertise=relay.address)
    relay.target = server.address

    async def timed_request(payload: bytes):
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "echo", retry_safe=True)
            begin = time.monotonic()
            conn.write(payload)
            conn.write_eof()
            answer = await asyncio.wait_for(conn.readexactly(len(payload)), 10)
            elapsed = time.monotonic() - begin
            accepted = conn.get_extra_info("early_data_accepted")
            await conn.wait_closed()
        return answer, elapsed, accepted

    async with closing(server, relay):
        answer, baseline, accepted = await timed_request(b"GET /one")
        assert answer == b"GET /one" and accepted is True
        cache = server.endpoint.replay_cache
        assert cache is not None
        for bloom in cache._filters:  # every first packet now looks replayed
            bloom[:] = b"\xff" * len(bloom)
        answer, refused, accepted = await timed_request(b"GET /two")
        drops = server.stats()["drops"]
    assert answer == b"GET /two" and accepted is False
    assert runs == [b"GET /one", b"GET /two"]  # each ran exactly once
    assert drops["early_data_refused"] == 1
    rtt = 2 * one_way
    assert baseline == pytest.approx(rtt, abs=0.5 * rtt)
    assert refused - baseline == pytest.approx(rtt, abs=0.5 * rtt)  # one round trip more
