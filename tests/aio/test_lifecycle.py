"""When a connection is accepted and when it is over, observed without reading it:
``wait_accepted()``/``accepted`` (the server acknowledged our Create) and ``wait_done()``."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import minimalt
from minimalt.proto.records import ServerKeys

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


async def _hold(conn: minimalt.Connection) -> None:
    """A handler that keeps the connection open, silent, until the client ends it."""
    await conn.read()


async def test_accepted_only_after_the_servers_first_answer_on_a_new_and_an_open_tunnel():
    async with minimalt.serve(_hold, service="hold") as server:
        async with minimalt.Client() as client:
            for write in (b"", b"retry-safe request"):
                conn = await client.connect(server.record, "hold", retry_safe=True)
                if write:
                    conn.write(write)
                received = conn.stats["packets_received"]
                assert conn.accepted is False  # nothing has come back yet
                await asyncio.wait_for(conn.wait_accepted(), 5)
                assert conn.accepted is True
                # It took an answer from the server: a packet acknowledging our Create.
                assert conn.stats["packets_received"] > received
                await conn.wait_accepted()  # once accepted, returns at once
                conn.close()
                await conn.wait_closed()


async def test_a_server_side_connection_is_accepted_from_the_start():
    seen: list[bool] = []

    async def handler(conn: minimalt.Connection) -> None:
        seen.append(conn.accepted)
        await conn.wait_accepted()
        conn.write(b"ok")

    async with minimalt.serve(handler, service="s") as server:
        async with minimalt.connect(server.record, "s", retry_safe=True) as conn:
            conn.write(b"x")
            assert await conn.readexactly(2) == b"ok"
    assert seen == [True]


async def test_a_refused_connection_raises_from_wait_accepted_and_is_never_accepted():
    async with minimalt.serve(_hold, service="hold") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "nope", retry_safe=True)
            conn.write(b"anyone?")
            with pytest.raises(minimalt.ConnectionRefused) as info:
                await asyncio.wait_for(conn.wait_accepted(), 5)
            assert info.value.code == 0x10  # ERR_UNKNOWN_SERVICE
            assert conn.accepted is False
            # The error was raised to the application: wait_closed does not raise it again.
            await conn.wait_closed()


async def test_wait_accepted_raises_connect_timeout_for_a_silent_server():
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        port = silent.get_extra_info("sockname")[1]
        record = ServerKeys.generate(os.urandom, name="ghost", now_unix=time.time()).record(
            "127.0.0.1", port
        )
        async with minimalt.Client(connect_timeout=0.3) as client:
            conn = await client.connect(record, "echo")
            with pytest.raises(minimalt.ConnectTimeoutError):
                await asyncio.wait_for(conn.wait_accepted(), 5)
            assert conn.accepted is False
    finally:
        silent.close()


async def test_wait_accepted_raises_tunnel_closed_when_the_client_closes_first():
    async with minimalt.serve(_hold, service="hold") as server:
        client = minimalt.Client()
        conn = await client.connect(server.record, "hold")
        waiting = asyncio.ensure_future(conn.wait_accepted())
        await asyncio.sleep(0)  # let it start waiting before the tunnel goes
        client.close()
        with pytest.raises(minimalt.TunnelClosedError):
            await asyncio.wait_for(waiting, 5)
        await client.wait_closed()


async def test_wait_done_fires_on_a_peer_reset_without_reading():
    async def reset_on_request(conn: minimalt.Connection) -> None:
        await conn.readexactly(4)
        conn.abort()

    async with minimalt.serve(reset_on_request, service="r") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "r", retry_safe=True)
            conn.write(b"ping")
            await asyncio.wait_for(conn.wait_done(), 5)  # no read pending, none made
            assert isinstance(conn.exception, minimalt.ConnectionReset)
            with pytest.raises(minimalt.ConnectionReset):
                await conn.read()
            await conn.wait_done()  # over: returns at once


async def test_wait_done_fires_on_a_clean_end_and_the_data_stays_readable():
    async def answer_and_end(conn: minimalt.Connection) -> None:
        request = await conn.read()
        conn.write(request.upper())

    async with minimalt.serve(answer_and_end, service="up") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "up", retry_safe=True)
            conn.write(b"hello")
            conn.write_eof()
            await asyncio.wait_for(conn.wait_done(), 5)
            assert conn.exception is None
            assert await conn.read() == b"HELLO"
            assert conn.at_eof()
