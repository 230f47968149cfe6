"""Flow control end to end: a peer that stops reading stops the writer, with bounded memory."""

from __future__ import annotations

import asyncio

import pytest

import minimalt
from minimalt.proto import constants as C

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

CHUNK = 64 << 10


async def test_drain_blocks_while_the_peer_does_not_read_and_memory_stays_bounded():
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[minimalt.Connection] = loop.create_future()
    release = asyncio.Event()
    received = loop.create_future()

    async def lazy(conn):
        opened.set_result(conn)
        await release.wait()  # do not read until told
        total = 0
        while data := await conn.read(1 << 20):
            total += len(data)
        received.set_result(total)

    async with minimalt.serve(lazy, service="lazy") as server:
        async with minimalt.connect(server.record, "lazy") as conn:
            high, low = 256 << 10, 64 << 10
            conn.set_write_buffer_limits(high=high, low=low)
            written = 0
            blocked = False
            while written < 64 << 20:  # far more than any window: drain must block first
                conn.write(b"\0" * CHUNK)
                written += CHUNK
                try:
                    await asyncio.wait_for(conn.drain(), 1.0)
                except TimeoutError:
                    blocked = True
                    break
            assert blocked, "drain() never blocked although the server reads nothing"
            server_conn = await opened
            # Sender side: drain() waits for the low-water mark, and the unacknowledged bytes it
            # watches never grew past the high-water mark plus one write.
            assert low < conn.buffered <= high + CHUNK
            # Receiver side: unread bytes never exceed the connection window we granted.
            assert len(server_conn._buf) <= C.DEFAULT_CONN_WINDOW
            # Everything written is either buffered at the sender or received by the server.
            assert written <= C.DEFAULT_CONN_WINDOW + conn.buffered
            # Once the server reads, the writer is released and every byte arrives.
            release.set()
            await asyncio.wait_for(conn.drain(), 10)
            conn.write_eof()
            assert await asyncio.wait_for(received, 10) == written


async def test_a_slow_reader_is_not_flooded():
    """Bytes count against the window until the application reads them, not on arrival."""
    loop = asyncio.get_running_loop()
    got_some = loop.create_future()

    async def source(conn):
        # Write far more than the window without waiting: the core holds it back.
        for _ in range(8):
            conn.write(b"s" * (1 << 20))
        conn.write_eof()
        await conn.drain()

    async with minimalt.serve(source, service="source") as server:
        async with minimalt.connect(server.record, "source") as conn:
            conn.write(b"go")
            first = await conn.read(10)
            got_some.set_result(first)
            # Wait until the sender is window-limited: nothing more arrives unread than the
            # window, however long we wait for it (poll on a real event: more bytes arriving).
            for _ in range(20):
                before = len(conn._buf)
                try:
                    await asyncio.wait_for(conn._wait_readable(force=True), 0.05)
                except TimeoutError:
                    break
                assert len(conn._buf) >= before
            assert len(conn._buf) + len(first) <= C.DEFAULT_CONN_WINDOW
            total = len(first) + len(await conn.read())
            assert total == 8 << 20
