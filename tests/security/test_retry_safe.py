"""Retry-safe marking through the asyncio API, on real sockets behind a relay adding 50 ms each
way (DESIGN §7.3): bytes marked retry-safe (by ``connect(retry_safe=True)`` or per
``write(..., retry_safe=...)``) reach the server in the first flight, one way after the write;
unmarked bytes, and everything written after them, wait until the server has answered and
arrive one round trip later, in order, with no extra call from the application."""

from __future__ import annotations

import asyncio
import time

import pytest

import minimalt

from .netutil import Relay, closing

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

ONE_WAY = 0.05


class Arrivals:
    """The server's side: every chunk it reads, with when it read it."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []

    async def handler(self, conn: minimalt.Connection) -> None:
        while data := await conn.read(1 << 16):
            self.chunks.append((time.monotonic(), data))
        conn.write(b"done")

    def before(self, deadline: float) -> bytes:
        return b"".join(data for when, data in self.chunks if when < deadline)

    def all(self) -> bytes:
        return b"".join(data for _, data in self.chunks)


async def _send(server: minimalt.Server, arrivals: Arrivals, flag: bool, writes) -> float:
    """Open a connection on a fresh client (a new tunnel: 0-RTT applies) with ``retry_safe=
    flag``, make ``writes`` ((data, retry_safe or None), ...) at once, wait for the answer;
    return when the writes were made."""
    arrivals.chunks.clear()
    async with minimalt.Client() as client:
        conn = await client.connect(server.record, "sink", retry_safe=flag)
        written_at = time.monotonic()
        for data, retry_safe in writes:
            conn.write(data, retry_safe=retry_safe)
        conn.write_eof()
        assert await asyncio.wait_for(conn.read(), 10) == b"done"
        await conn.wait_closed()
    return written_at


@pytest.fixture
async def delayed_server():
    relay = await Relay.start(delay=ONE_WAY)
    arrivals = Arrivals()
    server = await minimalt.serve(arrivals.handler, service="sink", advertise=relay.address)
    relay.target = server.address
    async with closing(server, relay):
        yield server, arrivals


async def test_connect_flag_sends_the_first_flight_and_an_unmarked_write_waits(delayed_server):
    server, arrivals = delayed_server
    at = await _send(
        server, arrivals, True, [(b"A-safe,", None), (b"B-unsafe,", False), (b"C-default", None)]
    )
    # The marked prefix arrived one way after the write (before the server could have
    # answered); the rest, in order, only after the client heard from the server.
    assert arrivals.before(at + 2 * ONE_WAY) == b"A-safe,"
    assert arrivals.chunks[0][0] - at == pytest.approx(ONE_WAY, abs=0.6 * ONE_WAY)
    assert arrivals.all() == b"A-safe,B-unsafe,C-default"
    late = [when - at for when, data in arrivals.chunks if data != b"A-safe,"]
    assert late and min(late) >= 2.5 * ONE_WAY


async def test_per_write_marking_mixes_in_order(delayed_server):
    server, arrivals = delayed_server
    at = await _send(
        server, arrivals, False, [(b"A-safe,", True), (b"B-unsafe,", None), (b"C-safe", True)]
    )
    assert arrivals.before(at + 2 * ONE_WAY) == b"A-safe,"
    assert arrivals.all() == b"A-safe,B-unsafe,C-safe"  # C waited behind B: order kept


async def test_unmarked_data_waits_one_round_trip_and_marked_data_does_not(delayed_server):
    server, arrivals = delayed_server
    at = await _send(server, arrivals, False, [(b"POST /pay", None)])
    assert arrivals.before(at + 2 * ONE_WAY) == b""
    # Held for exactly one round trip: out after the server's answer came back (2 one-way
    # delays), at the server one way later.
    assert 2.8 * ONE_WAY <= arrivals.chunks[0][0] - at < 4.5 * ONE_WAY
    at = await _send(server, arrivals, False, [(b"GET /a", True), (b" GET /b", True)])
    assert arrivals.before(at + 2 * ONE_WAY) == b"GET /a GET /b"
    assert arrivals.chunks[0][0] - at == pytest.approx(ONE_WAY, abs=0.6 * ONE_WAY)
