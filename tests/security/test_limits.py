"""Bounded state on real sockets (DESIGN §8): tunnels per source address and in total, bytes a
peer can make the server buffer. Hitting a limit refuses new work with a reason (the server's
drop counters; a client refused a tunnel hears so at once, a busy answer) and never breaks the
tunnels and connections already open."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

import minimalt
from minimalt.proto import constants as C

from .netutil import closing, echo, echo_request, eventually

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


async def test_tunnel_limits_per_source_and_in_total_refuse_new_tunnels_only():
    config = minimalt.EndpointConfig(max_tunnels=4, max_tunnels_per_source=2)
    server = await minimalt.serve(echo, service="echo", config=config)
    hosts = ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3")
    admitted = [minimalt.Client(local_host=host) for host in hosts]
    same_source = minimalt.Client(local_host="127.0.0.1", connect_timeout=30.0)
    over_total = minimalt.Client(local_host="127.0.0.4", connect_timeout=30.0)

    async def refused(client: minimalt.Client, reason: str, which: str) -> None:
        started = loop.time()
        with pytest.raises(minimalt.ConnectionRefused) as info:
            await echo_request(client, server.record, b"one tunnel too many")
        # At once (one round trip), not at the 30 s connect timeout, and saying why.
        assert loop.time() - started < 5
        assert "refused a new tunnel" in str(info.value) and which in str(info.value)
        assert info.value.code == C.ERR_SERVER_BUSY
        stats = server.stats()
        assert stats["drops"][reason] >= 1 and stats["busy_answers"] >= stats["drops"][reason]

    loop = asyncio.get_running_loop()

    async with closing(server, *admitted, same_source, over_total):
        for i, client in enumerate(admitted[:3]):
            assert await echo_request(client, server.record, b"hello %d" % i) == b"hello %d" % i
        await refused(same_source, "source_tunnel_limit", "from this address")  # a third
        assert await echo_request(admitted[3], server.record, b"hello 3") == b"hello 3"
        assert len(server.tunnels) == 4
        await refused(over_total, "tunnel_limit", "in all")  # a fifth in total

        # The tunnels already open carry on, and a freed slot admits a new client.
        for i, client in enumerate(admitted):
            assert await echo_request(client, server.record, b"again %d" % i) == b"again %d" % i
        await admitted[0].aclose()
        await eventually(lambda: len(server.tunnels) == 3, 5, "the closed tunnel released")
        async with minimalt.Client(local_host="127.0.0.1") as late:
            assert await echo_request(late, server.record, b"slot freed") == b"slot freed"
        assert len(server.tunnels) <= 4


async def test_a_peer_that_stops_reading_bounds_what_the_server_buffers():
    window = 256 << 10
    config = minimalt.EndpointConfig(connection_window=window, tunnel_window=1 << 20)
    resume = asyncio.Event()
    held: list[minimalt.Connection] = []

    async def stalled(conn: minimalt.Connection) -> None:
        held.append(conn)
        await resume.wait()  # the application does not read
        digest = hashlib.sha256()
        while data := await conn.read(1 << 16):
            digest.update(data)
        conn.write(digest.digest())

    server = await minimalt.serve(services={"stalled": stalled, "echo": echo}, config=config)
    upload = hashlib.shake_256(b"flow-controlled").digest(4 << 20)
    async with closing(server), minimalt.Client() as client:
        conn = await client.connect(server.record, "stalled")
        conn.write(upload)  # 4 MiB the server's application will not read for a while
        conn.write_eof()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.drain(), 1.0)  # the writer is held back...
        stats = held[0].tunnel.stats()
        # ...at the window the server granted: that is all it holds for the connection.
        assert window <= stats["bytes_received"] <= window * 1.1 + 16_000, stats
        assert conn.buffered > len(upload) - window * 1.1
        # The tunnel is not broken: another connection on it is served meanwhile.
        assert await echo_request(client, server.record, b"still served") == b"still served"
        assert len(server.tunnels) == 1
        resume.set()
        digest = await asyncio.wait_for(conn.read(), 20)
        await conn.wait_closed()
    assert digest == hashlib.sha256(upload).digest()  # nothing lost, nothing doubled
