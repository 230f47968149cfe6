"""Echo over real UDP sockets on loopback: the stream API, 0-RTT, half-close and close."""

from __future__ import annotations

import asyncio

import pytest

import minimalt

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


async def test_echo_round_trip(echo_server):
    async with minimalt.connect(echo_server.record, "echo") as conn:
        conn.write(b"hello, ")
        conn.write(b"world")
        assert await conn.readexactly(12) == b"hello, world"
        conn.write_eof()
        assert await conn.read() == b""
        assert conn.at_eof()


def upper_noting_packets(seen: list[int]):
    """A handler that answers the request in upper case, first appending to ``seen`` how many
    packets the server had received (``conn.stats``) when the request was readable."""

    async def answer(conn):
        request = await conn.read(100)
        seen.append(conn.stats["packets_received"])
        conn.write(request.upper())

    return answer


async def test_retry_safe_request_rides_in_the_first_packet():
    seen: list[int] = []
    async with minimalt.serve(upper_noting_packets(seen), service="up") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record.to_text(), "up", retry_safe=True)
            conn.write(b"get /")
            assert await conn.readexactly(5) == b"GET /"
            assert seen == [1]  # the request rode in the tunnel's first packet: 0-RTT
            assert conn.get_extra_info("early_data_accepted") is True
            conn.close()
            await conn.wait_closed()


async def test_data_not_retry_safe_waits_for_the_servers_answer():
    seen: list[int] = []
    async with minimalt.serve(upper_noting_packets(seen), service="up") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "up")
            conn.write(b"post /")
            assert await conn.readexactly(6) == b"POST /"
            assert seen[0] >= 2  # the first packet carried no data: one more round trip
            conn.close()
            await conn.wait_closed()


async def test_connections_to_one_server_share_a_tunnel(echo_server):
    async with minimalt.Client() as client:
        conns = [await client.connect(echo_server.record, "echo") for _ in range(5)]
        for i, conn in enumerate(conns):
            conn.write(b"%d" % i)
        for i, conn in enumerate(conns):
            assert await conn.readexactly(1) == b"%d" % i
        assert len(client.tunnels) == 1
        assert len(echo_server.tunnels) == 1
        assert len({conn.cid for conn in conns}) == 5
        for conn in conns:
            conn.close()
        await asyncio.gather(*(conn.wait_closed() for conn in conns))


async def test_open_connection_reader_writer_api(echo_server):
    reader, writer = await minimalt.open_connection(echo_server.record, "echo")
    writer.writelines([b"line one\n", b"line two\n", b"tail:", b"end"])
    await writer.drain()
    assert await reader.readline() == b"line one\n"
    assert await reader.readuntil(b"two\n") == b"line two\n"
    assert await reader.readuntil(b":") == b"tail:"
    writer.write_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await reader.readexactly(10)
    assert info.value.partial == b"end"
    assert reader.at_eof()
    assert writer.get_extra_info("peername") == echo_server.record.address
    assert writer.get_extra_info("service") == "echo"
    writer.close()
    await writer.wait_closed()


async def test_readline_limit_raises_value_error_like_asyncio(echo_server):
    async with minimalt.connect(echo_server.record, "echo") as conn:
        conn.write(b"x" * 70000)
        with pytest.raises(ValueError):
            await conn.readline()
        conn.write(b"\n")
        conn.write_eof()
        assert len(await conn.read()) == 70001


async def test_half_close_lets_the_server_answer_after_our_eof():
    async def count(conn):
        total = 0
        while data := await conn.read(1 << 16):
            total += len(data)
        conn.write(b"%d bytes" % total)  # written after the client's end of stream

    async with minimalt.serve(count, service="count") as server:
        async with minimalt.connect(server.record, "count") as conn:
            conn.write(b"a" * 100_000)
            conn.write_eof()
            with pytest.raises(minimalt.LocalProtocolError):
                conn.write(b"more")
            assert await conn.read() == b"100000 bytes"
            assert conn.at_eof()


async def test_close_delivers_pending_data_and_the_peer_sees_end_of_stream():
    received = asyncio.get_running_loop().create_future()

    async def collect(conn):
        received.set_result(await conn.read())

    async with minimalt.serve(collect, service="collect") as server:
        conn = await minimalt.connect(server.record, "collect")
        conn.write(b"z" * 300_000)
        conn.close()
        assert conn.is_closing()
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert await asyncio.wait_for(received, 10) == b"z" * 300_000


async def test_close_wakes_a_pending_reader_with_end_of_stream(echo_server):
    conn = await minimalt.connect(echo_server.record, "echo")
    conn.write(b"partial line")  # echoed back, but never a newline
    line = asyncio.ensure_future(conn.readline())
    chunk = asyncio.ensure_future(conn.readexactly(1))
    await asyncio.wait([chunk], timeout=5)  # a second reader fails at once
    assert not line.done()  # the first one waits for a newline that never comes
    conn.close()
    assert await asyncio.wait_for(line, 5) == b""  # closed locally: end of stream, no hang
    with pytest.raises(RuntimeError):  # two readers at once are refused, as in asyncio
        chunk.result()
    await conn.wait_closed()


async def test_data_sent_to_a_closed_connection_resets_the_sender():
    handler_error = asyncio.get_running_loop().create_future()

    async def chatter(conn):
        try:
            while True:
                conn.write(b"x" * 4096)
                await conn.drain()
        except minimalt.ConnectionReset as exc:
            handler_error.set_result(exc)

    async with minimalt.serve(chatter, service="chatter") as server:
        conn = await minimalt.connect(server.record, "chatter")
        await conn.readexactly(10)
        conn.close()
        exc = await asyncio.wait_for(handler_error, 10)
        assert isinstance(exc, ConnectionResetError)
        await conn.wait_closed()


async def test_abort_resets_the_connection_for_the_peer():
    loop = asyncio.get_running_loop()
    started, seen = loop.create_future(), loop.create_future()

    async def reader(conn):
        started.set_result(await conn.readexactly(7))
        try:
            await conn.read()
        except minimalt.ConnectionReset as exc:
            seen.set_result(exc)

    async with minimalt.serve(reader, service="r") as server:
        conn = await minimalt.connect(server.record, "r")
        conn.write(b"partial")
        assert await asyncio.wait_for(started, 10) == b"partial"
        conn.abort()
        exc = await asyncio.wait_for(seen, 10)
        assert "reset by the peer" in str(exc)
        with pytest.raises(minimalt.ConnectionReset):
            conn.write(b"after abort")


async def test_unknown_service_is_refused_with_a_clear_error(echo_server):
    async with minimalt.Client() as client:
        conn = await client.connect(echo_server.record, "no-such-service", retry_safe=True)
        conn.write(b"hello?")
        with pytest.raises(minimalt.ConnectionRefused) as info:
            await asyncio.wait_for(conn.read(), 10)
        assert "no-such-service" in str(info.value)
        assert "unknown service" in str(info.value)
        # The tunnel is fine: another service on it still works.
        ok = await client.connect(echo_server.record, "echo")
        ok.write(b"still here")
        assert await ok.readexactly(10) == b"still here"
        ok.close()
        await ok.wait_closed()


async def test_several_services_on_one_endpoint_added_and_removed_at_run_time():
    async def upper(conn):
        conn.write((await conn.read()).upper())

    async def lower(conn):
        conn.write((await conn.read()).lower())

    async with minimalt.serve(upper, service="upper") as server:
        server.add_service("lower", lower)
        assert server.services == ["lower", "upper"]
        for service, expect in (("upper", b"MIXED"), ("lower", b"mixed")):
            async with minimalt.connect(server.record, service) as conn:
                conn.write(b"MiXeD")
                conn.write_eof()
                assert await conn.read() == expect
        server.remove_service("lower")
        async with minimalt.connect(server.record, "lower") as conn:
            with pytest.raises(minimalt.ConnectionRefused):
                await conn.read()


async def test_unreliable_datagrams_on_a_connection():
    async def bounce(conn):
        await conn.readexactly(4)
        conn.write(b"ready")
        for _ in range(3):
            conn.send_datagram(b"re:" + await conn.receive_datagram())
        await conn.read()

    async with minimalt.serve(bounce, service="dgram") as server:
        async with minimalt.connect(server.record, "dgram") as conn:
            conn.write(b"open")
            assert await conn.readexactly(5) == b"ready"  # both ends know the connection now
            for i in range(3):
                conn.send_datagram(b"%d" % i)
                assert await asyncio.wait_for(conn.receive_datagram(), 10) == b"re:%d" % i
            conn.write_eof()


async def test_handler_exception_resets_the_connection_and_the_server_keeps_serving(caplog):
    async def broken(conn):
        await conn.readexactly(1)
        raise RuntimeError("bug in handler")

    async with minimalt.serve(broken, service="broken") as server:
        for _ in range(2):
            async with minimalt.connect(server.record, "broken") as conn:
                conn.write(b"x")
                with pytest.raises(minimalt.ConnectionReset):
                    await asyncio.wait_for(conn.read(), 10)
    assert "bug in handler" in caplog.text


async def test_stats_and_extra_info(echo_server):
    async with minimalt.connect(echo_server.record, "echo") as conn:
        conn.write(b"ping")
        await conn.readexactly(4)
        stats = conn.stats
        assert stats["packets_sent"] >= 1 and stats["packets_received"] >= 1
        assert stats["bytes_sent"] > 0 and stats["min_rtt"] > 0
        assert stats["service"] == "echo"
        assert conn.get_extra_info("server_identity") == echo_server.record.identity
        assert conn.get_extra_info("sockname")[1] > 0
        assert conn.get_extra_info("nonsense", 42) == 42
