"""Mobility on real sockets (DESIGN §8): during a 20 MB download the client moves its socket
every 2 s, to a new port and, with a second loopback address, to a new IP and back. The
transfer completes byte for byte on the one tunnel it started on; the server followed each new
address only after it answered a path challenge; the tunnel changed TID at every move, so the
old and new locations cannot be linked by it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest

import minimalt
from minimalt.proto.events import TunnelMigrated, TunnelRekeyed

from .netutil import Nat, closing, eventually

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(90)]

SIZE = 20 << 20
RATE = 2 << 20  # bytes per second the server sends at: the transfer lasts ~10 s
CHUNK = 64 << 10
MOVE_EVERY = 2.0
# Where the client moves to, in order (port 0: a fresh port).
MOVES = [("127.0.0.1", 0), ("127.0.0.2", 0), ("127.0.0.2", 0), ("127.0.0.1", 0)]


def payload(size: int = SIZE) -> bytes:
    return hashlib.shake_256(b"mobile").digest(size)


async def download(conn: minimalt.Connection) -> None:
    """Sends as many bytes as asked at RATE (an application-paced stream, so the moves fall
    inside it)."""
    size = int(await conn.read())
    data = memoryview(payload(size))
    started = time.monotonic()
    for offset in range(0, size, CHUNK):
        ahead = offset / RATE - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)  # rate limiting, not synchronisation
        conn.write(data[offset : offset + CHUNK])
        await conn.drain()
    conn.write_eof()


async def test_download_survives_port_and_address_changes_on_one_tunnel():
    server = await minimalt.serve(download, service="download")
    events: list[Any] = []
    server.on_path_event = events.append
    client = minimalt.Client(local_host="127.0.0.1")
    async with closing(server, client):
        conn = await client.connect(server.record, "download", retry_safe=True)
        conn.write(b"%d" % SIZE)
        conn.write_eof()
        digest = hashlib.sha256()
        received = 0

        async def read_all() -> None:
            nonlocal received
            while data := await conn.read(1 << 20):
                digest.update(data)
                received += len(data)

        reader = asyncio.ensure_future(read_all())
        await eventually(lambda: received > 0, 10, "the download started")
        (server_tunnel,) = server.tunnels
        origin = conn.get_extra_info("sockname")
        addresses, tids = [origin], []
        try:
            for host, port in MOVES:
                done, _ = await asyncio.wait({reader}, timeout=MOVE_EVERY)
                assert not done, f"the transfer ended before all moves ({received} bytes)"
                before = conn.tunnel.tid
                moved = await client.rebind(host, port)
                addresses.append(moved)
                migrations = sum(isinstance(e, TunnelMigrated) for e in events)
                await eventually(
                    lambda n=migrations: sum(isinstance(e, TunnelMigrated) for e in events) > n,
                    5,
                    f"the server following the client to {moved}",
                )
                tids.append((before, conn.tunnel.tid, server_tunnel.tid))
            await asyncio.wait_for(reader, 60)
        finally:
            reader.cancel()
        await conn.wait_closed()
        tunnels_at_end = server.tunnels

    assert received == SIZE and digest.digest() == hashlib.sha256(payload()).digest()
    # One tunnel throughout, the same object on the server, now at the last address.
    assert tunnels_at_end in ([], [server_tunnel])
    migrated = [e for e in events if isinstance(e, TunnelMigrated)]
    assert all(e.tunnel is server_tunnel for e in events)
    # Each new address was followed once, in order, and only after its path check (the core
    # emits TunnelMigrated when the address has answered the challenge).
    assert [(e.old, e.new) for e in migrated] == list(
        zip(addresses[:-1], addresses[1:], strict=True)
    )
    # The TID changed at every move, on both ends.
    for before, client_tid, server_tid in tids:
        assert client_tid != before and server_tid != before
    rekeys = [e for e in events if isinstance(e, TunnelRekeyed)]
    assert len(rekeys) >= len(MOVES)
    all_tids = [rekeys[0].old_tid] + [e.new_tid for e in rekeys]
    assert len(set(all_tids)) == len(all_tids)  # no TID ever came back


async def _download_through_nat(client: minimalt.Client, nat: Nat, rebinds: int, size: int):
    """A download through ``nat`` that rebinds ``rebinds`` times, once a second. Returns the
    data, the server's path events, (TID before, TID after) per rebinding and the NAT's
    outside addresses."""
    server = await minimalt.serve(download, service="download", advertise=nat.address)
    nat.server = server.address
    events: list[Any] = []
    server.on_path_event = events.append
    async with closing(server):
        conn = await client.connect(server.record, "download", retry_safe=True)
        conn.write(b"%d" % size)
        conn.write_eof()
        reader = asyncio.ensure_future(conn.read())
        tids, outside = [], []
        try:
            for _ in range(rebinds):
                done, _ = await asyncio.wait({reader}, timeout=1.0)
                assert not done, "the transfer ended before the NAT rebound"
                before = conn.tunnel.tid
                outside.append(await nat.rebind())
                count = len(events)
                await eventually(
                    lambda n=count: any(isinstance(e, TunnelMigrated) for e in events[n:]),
                    3,
                    "the server following the NAT's new port",
                )
                tids.append((before, conn.tunnel.tid))
            data = await asyncio.wait_for(reader, 30)
        finally:
            reader.cancel()
        await conn.wait_closed()
    return data, events, tids, outside


async def test_nat_rebinding_is_followed_after_a_path_check_and_the_client_rekeys():
    """The client does not know it moved (a NAT changed its outside port): its keep-alive
    reaches the server from the new port, the server's path challenge tells the client, and
    the client moves the tunnel to a new TID before answering."""
    size = 6 << 20
    nat = await Nat.start(None)
    client = minimalt.Client(config=minimalt.EndpointConfig(keepalive_interval=0.25))
    async with closing(nat, client):
        data, events, tids, outside = await _download_through_nat(client, nat, 2, size)
    assert data == payload(size)
    migrated = [e for e in events if isinstance(e, TunnelMigrated)]
    assert [e.new for e in migrated] == outside
    # Before each migration was accepted, the client had moved the tunnel to a new TID (its
    # answer to the challenge already travelled under it).
    kinds = [type(e) for e in events]
    for index in (i for i, kind in enumerate(kinds) if kind is TunnelMigrated):
        previous = max([-1] + [i for i in range(index) if kinds[i] is TunnelMigrated])
        assert TunnelRekeyed in kinds[previous + 1 : index]
    for before, after in tids:
        assert before != after


async def test_receive_only_client_behind_a_rebinding_nat_resumes_without_keepalive():
    nat = await Nat.start(None)
    client = minimalt.Client()  # the default configuration: no keep-alive
    async with closing(nat, client):
        data, *_ = await _download_through_nat(client, nat, 1, 4 << 20)
    assert data == payload(4 << 20)
