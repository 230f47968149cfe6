"""Reflection and amplification with spoofed sources, on real sockets (DESIGN §7.4): genuine
first packets reach the server from loopback sockets that never asked for anything (the
"victims" whose addresses an attacker writes into its packets). Whatever the server would like
to send — a 200 kB answer, puzzles, its record — each victim receives at most as many bytes as
came from its address."""

from __future__ import annotations

import os
import struct
import time
from typing import Any

import pytest

import minimalt
from minimalt.proto import constants as C
from minimalt.proto.endpoint import Endpoint

from .netutil import Relay, Sink, closing, echo_request, eventually, is_first_packet

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

ANSWER = 200_000


def genuine_first_flight(record: minimalt.ServerRecord, request_size: int) -> list[bytes]:
    """A real client's first flight, as an attacker that runs a client produces it: a retry-safe
    request of ``request_size`` bytes to the ``big`` service (made with the protocol core, never
    sent by the client itself)."""
    endpoint = Endpoint(random=os.urandom, wall_offset=time.time() - time.monotonic())
    tunnel = endpoint.connect(record, time.monotonic())
    cid = tunnel.open_connection("big", retry_safe=True)
    tunnel.send(cid, os.urandom(request_size), end_stream=True)
    return [data for data, _ in endpoint.datagrams_to_send(time.monotonic())]


def first_packet_to_unknown_key() -> bytes:
    """A first packet boxed to a key the server does not hold (it answers with its record)."""
    header = struct.pack(">QQ", (1 << 63) | int.from_bytes(os.urandom(7), "big"), 1)
    header += os.urandom(31) + b"\x00" + os.urandom(C.KEY_ID_SIZE)
    return header + os.urandom(C.MIN_FIRST_PACKET_SIZE - len(header))


async def test_server_never_sends_a_spoofed_source_more_than_it_received():
    handled: list[Any] = []

    async def big(conn: minimalt.Connection) -> None:
        handled.append(conn)
        await conn.read()
        conn.write(os.urandom(ANSWER))  # far more than any victim sent
        await conn.drain()

    config = minimalt.EndpointConfig(puzzle_threshold=None, idle_timeout=1.5)
    server = await minimalt.serve(big, service="big", config=config)
    puzzling = await minimalt.serve(
        big, service="big", config=minimalt.EndpointConfig(puzzle_threshold=0.0)
    )
    victims = [await Sink.bind(host) for host in ("127.0.0.1", "127.0.0.1", "127.0.0.3")]
    to_puzzler, to_unknown_key = await Sink.bind(), await Sink.bind("127.0.0.4")
    async with closing(server, puzzling, *victims, to_puzzler, to_unknown_key):
        for count, victim in enumerate(victims, start=1):
            flight = genuine_first_flight(server.record, request_size=count * 1000)
            assert len(flight) == count and all(is_first_packet(d) for d in flight)
            assert all(len(d) >= C.MIN_FIRST_PACKET_SIZE for d in flight)  # padded
            for datagram in flight:
                victim.send(datagram, server.address)
        for datagram in genuine_first_flight(puzzling.record, request_size=500):
            to_puzzler.send(datagram, puzzling.address)
        to_unknown_key.send(first_packet_to_unknown_key(), server.address)

        await eventually(lambda: len(handled) == len(victims), 5, "each request handled")
        await eventually(lambda: to_puzzler.received and to_unknown_key.received, 5, "answers")
        # The server wanted to send 200 kB to each victim until it gave up on them: by the
        # time it has collected their tunnels, it has sent everything it ever will.
        await eventually(lambda: not server.tunnels, 10, "the victims' tunnels collected")
        drops = server.stats()["drops"]

    report = []
    for victim in [*victims, to_puzzler, to_unknown_key]:
        target = puzzling if victim is to_puzzler else server
        got = victim.bytes_from(target.address)
        report.append((victim.address, victim.sent_bytes, got))
        assert 0 < got <= victim.sent_bytes, report
    assert drops["unknown_server_key"] == 1
    assert puzzling.endpoint.drops["puzzle_demanded"] == 1
    print("amplification (victim, bytes from its address, bytes the server sent it):", report)


async def test_a_real_clients_first_packets_are_padded_to_the_minimum_size():
    relay = await Relay.start()

    async def answer(conn: minimalt.Connection) -> None:
        conn.write(await conn.read())

    server = await minimalt.serve(answer, service="echo", advertise=relay.address)
    relay.target = server.address
    async with closing(server, relay), minimalt.Client() as client:
        assert await echo_request(client, server.record, b"x") == b"x"
    firsts = relay.first_packets()
    assert firsts and all(len(data) >= C.MIN_FIRST_PACKET_SIZE for data in firsts)
