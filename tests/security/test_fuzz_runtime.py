"""Fuzzing the runtime on real sockets (DESIGN §15): a stranger's socket throws seeded random
and mutated datagrams at a live server and at a live client: random bytes of every length,
headers with every flag combination, first packets with the server's real key id, and bit
flips, truncations, extensions and TID swaps of genuine captured packets. Nothing raises in
the driver (no exception reaches the loop or the log), every datagram is processed, and the
tunnel that was open meanwhile keeps serving, as does a new one."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

import pytest

import minimalt
from minimalt.proto import constants as C

from .netutil import Relay, closing, echo, echo_request, eventually

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

DATAGRAMS = 20_000
BURST = 200  # sent, then waited for: a socket buffer holds this many


def mutations(rng: random.Random, genuine: list[bytes], key_id: bytes):
    """Endless hostile datagrams, drawn from ``rng``."""
    while True:
        kind = rng.randrange(6)
        if kind == 0:  # random bytes, any length (empty included)
            yield rng.randbytes(rng.choice([0, 1, 15, 16, 31, 32, 48, rng.randrange(1500)]))
        elif kind == 1:  # a header with any flags and nonce parity, then garbage
            flags = rng.choice([0, C.FLAG_KEY, C.FLAG_PUZZLE, C.FLAGS_MASK])
            tid = rng.getrandbits(62) | flags
            size = rng.choice([16, 32, 36, 52, 53, 68, 69, 77, 1199, 1200, rng.randrange(1500)])
            head = struct.pack(">QQ", tid, rng.getrandbits(64))
            yield (head + rng.randbytes(max(0, size - 16)))[:size]
        elif kind == 2:  # a first packet with the server's real key id and a random box
            head = struct.pack(">QQ", rng.getrandbits(62) | C.FLAG_KEY, rng.getrandbits(63) * 2 + 1)
            public = bytearray(rng.randbytes(32))
            public[31] &= 0x7F
            packet = head + bytes(public) + key_id
            yield packet + rng.randbytes(max(0, rng.choice([16, 1200]) - len(packet)))
        else:  # a genuine packet, damaged
            packet = bytearray(rng.choice(genuine))
            how = rng.randrange(4)
            if how == 0:
                for _ in range(rng.randrange(1, 4)):
                    packet[rng.randrange(len(packet))] ^= 1 << rng.randrange(8)
            elif how == 1:
                del packet[rng.randrange(len(packet)) :]
            elif how == 2:
                packet += rng.randbytes(rng.randrange(1, 64))
            else:
                packet[:8] = rng.choice(genuine)[:8]  # another packet's TID and flags
            yield bytes(packet)


async def test_hostile_datagrams_never_raise_in_the_driver_and_the_server_keeps_serving():
    rng = random.Random(20240611)
    relay = await Relay.start()
    server = await minimalt.serve(echo, service="echo", advertise=relay.address)
    relay.target = server.address
    # A plain socket: asyncio transports silently skip empty datagrams, and those count too.
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    client = minimalt.Client()
    async with closing(server, relay, stranger, client):
        conn = await client.connect(server.record, "echo", retry_safe=True)
        conn.write(b"before")
        assert await asyncio.wait_for(conn.readexactly(6), 10) == b"before"
        genuine = [data for _, data in relay.from_client + relay.from_server]
        client_address = ("127.0.0.1", conn.get_extra_info("sockname")[1])
        targets = [server.address, client_address]
        endpoints = [server.endpoint, conn.tunnel.endpoint]
        base = [endpoint.datagrams_received for endpoint in endpoints]
        sent = [0, 0]
        source = mutations(rng, genuine, server.record.key_id)
        for burst in range(DATAGRAMS // BURST):
            for _ in range(BURST):
                which = rng.randrange(2)
                stranger.sendto(next(source), targets[which])
                sent[which] += 1
            # The open tunnel keeps working while it is being fuzzed.
            conn.write(b"%05d" % burst)
            assert await asyncio.wait_for(conn.readexactly(5), 10) == b"%05d" % burst
            await eventually(
                lambda: all(
                    e.datagrams_received - b >= s
                    for e, b, s in zip(endpoints, base, sent, strict=True)
                ),
                5,
                "every hostile datagram processed",
            )
        conn.write_eof()
        assert await asyncio.wait_for(conn.read(), 10) == b""
        await conn.wait_closed()
        # A new tunnel is served as well.
        async with minimalt.Client() as fresh:
            assert await echo_request(fresh, server.record, b"after") == b"after"
        drops = server.stats()["drops"]
    assert sum(drops.values()) >= sent[0]  # each one turned away, and counted by reason
    assert server.is_serving() is False  # (closed by the test, not by a fault)
