"""Failures a user meets: server restarts and crashes, idle tunnels, silent servers, bad records.
Each gives a typed error with a message that says what happened."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

import minimalt
from minimalt.proto.records import ServerKeys

from .conftest import echo

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


async def test_graceful_server_restart_gives_a_clear_error_and_a_new_connect_works():
    identity = minimalt.Identity.generate("restartable")
    async with minimalt.Client() as client:
        async with minimalt.serve(echo, service="echo", identity=identity) as server:
            port = server.port
            conn = await client.connect(server.record, "echo")
            conn.write(b"before")
            assert await conn.readexactly(6) == b"before"
            pending = asyncio.ensure_future(conn.read())
        # The server closed: it told the client, whose pending read fails at once.
        with pytest.raises(minimalt.TunnelClosedError) as info:
            await asyncio.wait_for(pending, 10)
        assert "closed by the peer: server shutting down" in str(info.value)
        with pytest.raises(minimalt.TunnelClosedError):
            conn.write(b"after")
        async with minimalt.serve(echo, service="echo", identity=identity, port=port) as again:
            assert again.record.identity == identity.public
            conn = await client.connect(again.record, "echo", identity=identity)
            conn.write(b"after restart")
            assert await conn.readexactly(13) == b"after restart"
            conn.close()
            await conn.wait_closed()


def _start_server(identity_file: str, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minimalt", "serve", "-i", identity_file, "-p", str(port), "-q"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    record = proc.stdout.readline().decode().strip()
    assert record.startswith("mlt1:"), "the server process did not print its record"
    return proc, record


async def test_crashed_server_idle_timeout_then_restart_on_the_same_port(tmp_path):
    key = str(tmp_path / "id.json")
    minimalt.Identity.generate("crashy").save(key)
    loop = asyncio.get_running_loop()
    proc, record = await loop.run_in_executor(None, _start_server, key)
    again = None
    try:
        config = minimalt.EndpointConfig(idle_timeout=1.0)
        async with minimalt.Client(config=config, connect_timeout=2.0) as client:
            conn = await client.connect(record, "echo")
            conn.write(b"ping")
            assert await conn.readexactly(4) == b"ping"
            proc.kill()  # no goodbye: the client can only notice the silence
            await loop.run_in_executor(None, proc.wait)
            started = time.monotonic()
            with pytest.raises(minimalt.TunnelClosedError) as info:
                await asyncio.wait_for(conn.read(), 10)
            assert "idle timeout" in str(info.value)
            assert time.monotonic() - started < 5
            port = minimalt.load_record(record).port
            again, new_record = await loop.run_in_executor(None, _start_server, key, port)
            # The old record names an ephemeral key the new process never had: the server
            # answers the first packet with its current signed record and the client redoes its
            # first flight to it, transparently (one round trip more).
            stale = await client.connect(record, "echo")
            stale.write(b"stale record")
            assert await asyncio.wait_for(stale.readexactly(12), 10) == b"stale record"
            stale.close()
            await stale.wait_closed()
            # The new record works, too.
            conn = await client.connect(new_record, "echo")
            conn.write(b"pong")
            assert await conn.readexactly(4) == b"pong"
            conn.close()
            await conn.wait_closed()
    finally:
        for p in (proc, again):
            if p is not None:
                p.kill()
                await loop.run_in_executor(None, p.wait)


async def test_idle_tunnels_close_on_both_sides_with_a_clear_error():
    loop = asyncio.get_running_loop()
    server_saw = loop.create_future()

    async def wait_forever(conn):
        try:
            await conn.read()
        except minimalt.TunnelClosedError as exc:
            server_saw.set_result(exc)

    quick = minimalt.EndpointConfig(idle_timeout=0.5)
    async with minimalt.serve(wait_forever, service="w", config=quick) as server:
        async with minimalt.Client(config=minimalt.EndpointConfig(idle_timeout=0.5)) as client:
            conn = await client.connect(server.record, "w")
            conn.write(b"x")
            started = time.monotonic()
            with pytest.raises(minimalt.TunnelClosedError) as info:
                await asyncio.wait_for(conn.read(), 10)
            assert "idle timeout (no packet from the peer for 0.5 s)" in str(info.value)
            assert 0.4 < time.monotonic() - started < 5
            assert "idle timeout" in str(await asyncio.wait_for(server_saw, 10))
            assert client.tunnels == [] or all(t.state != "open" for t in client.tunnels)


async def test_keepalive_keeps_an_idle_tunnel_open():
    quick = minimalt.EndpointConfig(idle_timeout=0.6)
    async with minimalt.serve(echo, service="echo", config=quick) as server:
        config = minimalt.EndpointConfig(idle_timeout=0.6, keepalive_interval=0.1)
        async with minimalt.Client(config=config) as client:
            conn = await client.connect(server.record, "echo")
            conn.write(b"a")
            await conn.readexactly(1)
            # Nothing to read for three idle timeouts: the keep-alives hold the tunnel open.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.read(1), 1.8)
            conn.write(b"b")
            assert await conn.readexactly(1) == b"b"
            conn.close()
            await conn.wait_closed()


async def test_connect_to_a_silent_address_times_out_with_a_clear_error():
    loop = asyncio.get_running_loop()
    # A UDP socket that never answers: the record is valid, the server just is not there.
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        keys = ServerKeys.generate(os.urandom, name="ghost", now_unix=time.time())
        record = keys.record("127.0.0.1", port)
        async with minimalt.Client(connect_timeout=0.5) as client:
            conn = await client.connect(record, "echo", retry_safe=True)  # returns at once
            conn.write(b"anyone?")
            started = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await asyncio.wait_for(conn.read(), 10)
            assert isinstance(info.value, minimalt.ConnectTimeoutError)
            assert f"no answer from server 'ghost' at 127.0.0.1:{port} within 0.5 s" in str(
                info.value
            )
            assert 0.4 < time.monotonic() - started < 3
            with pytest.raises(TimeoutError):
                await conn.drain()
    finally:
        transport.close()


async def test_bad_records_are_rejected_before_anything_is_sent(echo_server):
    record = echo_server.record
    with pytest.raises(minimalt.RecordError, match="neither a record"):
        await minimalt.connect("not a record", "echo")
    with pytest.raises(minimalt.RecordError, match="bad magic|base64|malformed|length"):
        await minimalt.connect("mlt1:AAAA", "echo")
    tampered = bytearray(record.to_bytes())
    tampered[-1] ^= 1
    with pytest.raises(minimalt.RecordError, match="signature"):
        await minimalt.connect(bytes(tampered), "echo")
    stale = ServerKeys.generate(os.urandom, name="old", now_unix=time.time() - 7200)
    with pytest.raises(minimalt.RecordError, match="expired"):
        await minimalt.connect(stale.record("127.0.0.1", 9), "echo")
    other = minimalt.Identity.generate()
    with pytest.raises(minimalt.RecordError, match="another identity"):
        await minimalt.connect(record, "echo", identity=other.public.hex())
    # and the genuine record, pinned, works
    async with minimalt.connect(record, "echo", identity=record.identity) as conn:
        conn.write(b"ok")
        assert await conn.readexactly(2) == b"ok"


async def test_closing_the_client_tells_the_server():
    loop = asyncio.get_running_loop()
    started, server_saw = loop.create_future(), loop.create_future()

    async def wait_forever(conn):
        started.set_result(None)
        try:
            await conn.read()
        except minimalt.TunnelClosedError as exc:
            server_saw.set_result(exc)

    async with minimalt.serve(wait_forever, service="w") as server:
        client = minimalt.Client()
        conn = await client.connect(server.record, "w", retry_safe=True)
        conn.write(b"hi")
        pending = asyncio.ensure_future(conn.read())
        await asyncio.wait_for(started, 10)
        await client.aclose()
        with pytest.raises(minimalt.TunnelClosedError, match="client closed"):
            await pending
        exc = await asyncio.wait_for(server_saw, 10)
        assert "closed by the peer: client closed" in str(exc)


async def test_server_close_cancels_handlers_that_ignore_errors():
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    async def stubborn(conn):
        started.set_result(None)
        await asyncio.Event().wait()  # never returns by itself

    server = await minimalt.serve(stubborn, service="s")
    conn = await minimalt.connect(server.record, "s", retry_safe=True)
    conn.write(b"x")
    await asyncio.wait_for(started, 10)
    await asyncio.wait_for(server.aclose(), 10)
    with pytest.raises(minimalt.TunnelClosedError):
        await asyncio.wait_for(conn.read(), 10)
