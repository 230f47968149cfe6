"""Volume on real sockets: 100 MB with a matching sha256, 1,000 connections in one tunnel,
200 tunnels from 200 client endpoints at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import time
from typing import Any

import pytest

import minimalt
from minimalt.aio import driver as driver_module
from minimalt.aio.driver import EndpointDriver
from minimalt.proto.endpoint import Endpoint

from .conftest import echo, on_uvloop

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


async def digest(conn: minimalt.Connection) -> None:
    """Answer the sha256 and length of everything received, after the client's end of stream."""
    h = hashlib.sha256()
    total = 0
    while data := await conn.read(1 << 20):
        h.update(data)
        total += len(data)
    conn.write(b"%d %s" % (total, h.hexdigest().encode()))


@pytest.mark.slow
async def test_100_megabytes_arrive_intact():
    # 100 MB on both loops (on the stdlib loop too: the driver's own transport reads every
    # queued datagram per wake-up, so it is within ~2x of uvloop instead of ~5x slower).
    size = 100 << 20
    block = os.urandom(1 << 20)
    sent = hashlib.sha256()
    async with minimalt.serve(digest, service="digest") as server:
        async with minimalt.connect(server.record, "digest") as conn:
            start = time.perf_counter()
            left = size
            while left:
                chunk = block[: min(left, len(block))]
                sent.update(chunk)
                conn.write(chunk)
                await conn.drain()
                left -= len(chunk)
            conn.write_eof()
            answer = await asyncio.wait_for(conn.read(), 60)
            elapsed = time.perf_counter() - start
            stats = conn.stats
    assert answer == b"%d %s" % (size, sent.hexdigest().encode())
    print(
        f"\n{size >> 20} MB in {elapsed:.2f} s = {size / elapsed / 1e6:.1f} MB/s "
        f"({'uvloop' if on_uvloop() else 'asyncio'}; client and server in one process), "
        f"{stats['packets_sent']} packets, {stats['packets_lost']} lost"
    )


async def test_1000_connections_share_one_tunnel():
    async with minimalt.serve(echo, service="echo") as server:
        async with minimalt.Client() as client:

            async def one(i: int) -> bytes:
                conn = await client.connect(server.record, "echo", retry_safe=True)
                message = b"connection %04d" % i
                conn.write(message)
                conn.write_eof()
                answer = await conn.read()
                conn.close()
                await conn.wait_closed()
                return answer if answer == message else b"MISMATCH " + answer

            answers = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1000))), 60)
            assert answers == [b"connection %04d" % i for i in range(1000)]
            assert len(client.tunnels) == 1
            assert len(server.tunnels) == 1
            stats = client.tunnels[0].stats()
            assert stats["connections"] == 0  # every connection finished and was forgotten


async def test_200_tunnels_from_separate_client_endpoints_at_once():
    async with minimalt.serve(echo, service="echo") as server:
        clients = [minimalt.Client() for _ in range(200)]
        try:

            async def one(i: int, client: minimalt.Client) -> bytes:
                conn = await client.connect(server.record, "echo", retry_safe=True)
                conn.write(b"tunnel %03d" % i)
                conn.write_eof()
                answer = await conn.read()
                conn.close()
                await conn.wait_closed()
                return answer

            answers = await asyncio.wait_for(
                asyncio.gather(*(one(i, c) for i, c in enumerate(clients))), 60
            )
            assert answers == [b"tunnel %03d" % i for i in range(200)]
            assert len(server.tunnels) == 200
            ports = {c.tunnels[0].stats()["peer"] for c in clients}
            assert len(ports) == 1  # every client reached the same server address...
            assert len({c._drivers[2].sockname for c in clients}) == 200  # ...from its own socket
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))


async def test_answers_share_the_acknowledging_packet_when_first_flights_arrive_together():
    # 50 first flights (each with its request) reach the server in a burst. Each handler
    # answers at once; the server must give the handlers their first step before it flushes,
    # so each tunnel gets one packet (acknowledgement + answer), not an acknowledgement and
    # then the answer.
    async def answer(conn: minimalt.Connection) -> None:
        conn.write(await conn.readexactly(8))
        await conn.drain()

    count = 50
    async with minimalt.serve(answer, service="answer") as server:
        clients = [minimalt.Client() for _ in range(count)]
        try:
            for client in clients:  # sockets bound before the burst
                await client.connect(server.record, "answer", retry_safe=True)
            before = server.stats()["datagrams_sent"]

            async def one(i: int, client: minimalt.Client) -> bytes:
                conn = await client.connect(server.record, "answer", retry_safe=True)
                conn.write(b"req %04d" % i)  # in the first flight of the connection's Create
                return await conn.readexactly(8)

            answers = await asyncio.wait_for(
                asyncio.gather(*(one(i, c) for i, c in enumerate(clients))), 30
            )
            assert answers == [b"req %04d" % i for i in range(count)]
            sent = server.stats()["datagrams_sent"] - before
            # One per connection; a little slack for a probe on a loaded machine, far below
            # the two per connection of a server that flushes before its handlers ran.
            assert sent <= count + count // 10, sent
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))


class _TurnLoop:
    """Just enough of a loop for the driver's flush: call_soon callbacks, run turn by turn."""

    def __init__(self) -> None:
        self.ready: list[Any] = []

    def call_soon(self, callback: Any, *args: Any) -> None:
        self.ready.append((callback, args))

    def create_future(self) -> Any:
        return concurrent.futures.Future()

    def turn(self) -> None:
        ready, self.ready = self.ready, []
        for callback, args in ready:
            callback(*args)


class _CountingEndpoint(Endpoint):
    flushes = 0

    def datagrams_to_send(self, now: float) -> list[Any]:
        self.flushes += 1
        return super().datagrams_to_send(now)


def test_new_connections_every_loop_turn_delay_a_flush_a_few_turns_not_forever():
    # The flush waits for the handlers of new connections; a peer (or many) opening
    # connections on every turn must not postpone it turn after turn.
    loop = _TurnLoop()
    endpoint = _CountingEndpoint(minimalt.EndpointConfig(), random=os.urandom)  # type: ignore[arg-type]
    driver = EndpointDriver(endpoint, loop)
    driver._sendto = lambda data, addr: None
    waits = driver_module._MAX_FLUSH_DEFERRALS
    driver.schedule_flush()
    turns = 0
    while not endpoint.flushes and turns < 3 * waits:
        driver._handlers_started = True  # what _on_opened does for each new connection
        loop.turn()
        turns += 1
    assert endpoint.flushes == 1 and turns == waits + 1  # waited its few turns, then flushed
    driver._handlers_started = True
    driver.schedule_flush()
    loop.turn()
    assert endpoint.flushes == 1  # the next flush waits for new handlers again...
    loop.turn()
    assert endpoint.flushes == 2  # ...a turn, when none start meanwhile
