"""The bridge host as a child process, driven through its pipe by a Python stand-in for Node
(``peer.BridgePeer``): handshake, requests, credit in both directions, datagrams, and the
ways it ends (pipe closed, wrong parent, SIGTERM, no common version)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from .peer import BridgePeer

pytestmark = pytest.mark.network

Spawn = Callable[..., Awaitable[BridgePeer]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Start bridge children; every one is stopped (killed if need be) after the test."""
    peers: list[BridgePeer] = []

    async def start(*args: str, **kwargs: Any) -> BridgePeer:
        peer = await BridgePeer.spawn(*args, **kwargs)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.writer.close()
        if peer.proc.poll() is None:
            peer.proc.kill()
        peer.proc.wait()


async def echo_pair(peer: BridgePeer) -> tuple[int, int, dict[str, Any]]:
    """A server for 'echo' and a connection to it: (client handle, accepted handle, listen ok)."""
    server = peer.handle()
    listening = await peer.request({"t": "listen", "h": server, "services": ["echo"]})
    assert listening["t"] == "ok", listening
    client = peer.handle()
    opened = await peer.request(
        {"t": "connect", "h": client, "record": listening["record"], "service": "echo"}
    )
    assert opened["t"] == "ok", opened
    peer.send_data(client, b"open")
    accept = await frame_of(peer, "accept")
    assert accept["h"] == server and accept["service"] == "echo"
    return client, accept["c"], listening


async def frame_of(peer: BridgePeer, kind: str, h: int | None = None) -> dict[str, Any]:
    """The next frame of type ``kind`` (for handle ``h``), skipping the others."""
    while True:
        frame = await peer.next_frame()
        if frame["t"] == kind and (h is None or frame.get("h") == h):
            return frame


async def exit_status(peer: BridgePeer, timeout: float = 10.0) -> int:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(None, peer.proc.wait), timeout)


async def test_hello_announces_the_version_the_pid_and_the_limits(spawn: Spawn) -> None:
    peer = await spawn()
    assert peer.hello["v"] == 1
    assert peer.hello["pid"] == peer.proc.pid
    assert peer.hello["window"] > 0 and peer.hello["maxData"] > 0
    assert 1000 <= peer.hello["maxDatagram"] < 1200


async def test_a_version_it_does_not_speak_is_refused_and_the_host_exits(spawn: Spawn) -> None:
    peer = await spawn(hello=False)
    peer.send({"t": "hello", "v": [99]})
    refusal = await peer.next_frame()
    assert refusal == {"t": "err", "code": "EMLTVERSION", "message": refusal["message"]}
    assert await exit_status(peer) == 0


async def test_bytes_cross_a_connection_both_ways_and_both_ends_see_end_then_closed(
    spawn: Spawn,
) -> None:
    peer = await spawn()
    client, accepted, _ = await echo_pair(peer)
    assert (await frame_of(peer, "data", accepted))["d"] == b"open"
    peer.send_data(accepted, b"back")
    assert (await frame_of(peer, "data", client))["d"] == b"back"
    peer.send({"t": "eof", "h": client})
    await frame_of(peer, "end", accepted)
    peer.send({"t": "eof", "h": accepted})
    await frame_of(peer, "end", client)
    closed = {(await frame_of(peer, "closed"))["h"], (await frame_of(peer, "closed"))["h"]}
    assert closed == {client, accepted}


async def test_data_to_node_never_exceeds_the_credit_node_granted(spawn: Spawn) -> None:
    window = 8192
    peer = await spawn(window=window)
    client, accepted, _ = await echo_pair(peer)
    total = 200_000
    peer.send_data(client, bytes(total - 4))  # "open" was the first 4 bytes
    peer.send({"t": "eof", "h": client})
    granted = window
    received = 0
    while True:
        frame = await peer.next_frame()
        if frame.get("h") != accepted:
            continue
        if frame["t"] == "end":
            break
        if frame["t"] == "data":
            received += len(frame["d"])
            assert received <= granted, "the host sent past the credit"
            if received == granted:  # all credit used: grant the next window
                peer.send({"t": "credit", "h": accepted, "n": window})
                granted += window
    assert received == total


async def test_node_data_is_granted_back_once_the_connection_has_taken_it(spawn: Spawn) -> None:
    peer = await spawn()
    client, accepted, _ = await echo_pair(peer)
    window = peer.hello["window"]
    # Fill the initial credit exactly ("open" took 4 bytes; its grant may have been skipped
    # by echo_pair): without grants back, nothing more could be sent.
    peer.send_data(client, bytes(window - 4))
    returned = 0
    delivered = 0
    while returned < window - 4 or delivered < window:
        frame = await peer.next_frame()
        if frame["t"] == "credit" and frame["h"] == client:
            returned += frame["n"]
        elif frame["t"] == "data" and frame["h"] == accepted:
            delivered += len(frame["d"])
            peer.send({"t": "credit", "h": accepted, "n": len(frame["d"])})
    assert delivered == window
    assert returned >= window - 4


async def test_bad_requests_get_an_err_reply_and_unknown_frames_without_id_are_ignored(
    spawn: Spawn,
) -> None:
    peer = await spawn()
    even = await peer.request({"t": "connect", "h": 2, "record": "mlt1:x", "service": "s"})
    assert even["t"] == "err" and even["code"] == "EMLTBRIDGE"
    unknown = await peer.request({"t": "teleport", "h": 1})
    assert unknown["t"] == "err" and "teleport" in unknown["message"]
    peer.send({"t": "from-the-future", "x": 1})  # no id: ignored
    record = await peer.request({"t": "connect", "h": 1, "record": "mlt1:AAAA", "service": "s"})
    assert record["t"] == "err" and record["code"] == "EMLTRECORD"


async def test_datagrams_cross_once_the_receiving_side_asked_for_them(spawn: Spawn) -> None:
    peer = await spawn()
    client, accepted, _ = await echo_pair(peer)
    peer.send({"t": "dgram-on", "h": accepted})
    for _ in range(50):  # unreliable: send until one arrives
        peer.send_data(client, b"ping", kind="dgram")
        try:
            frame = await asyncio.wait_for(frame_of(peer, "dgram", accepted), 0.2)
        except TimeoutError:
            continue
        assert frame["d"] == b"ping"
        return
    pytest.fail("no datagram arrived")


async def test_unlisten_answers_only_after_the_open_connections_end(spawn: Spawn) -> None:
    peer = await spawn()
    client, accepted, _ = await echo_pair(peer)
    server = 1  # the first handle the peer allocated (echo_pair listens first)
    rid = peer.next_id
    peer.next_id += 1
    peer.send({"t": "unlisten", "id": rid, "h": server})
    peer.send({"t": "eof", "h": client})
    peer.send({"t": "eof", "h": accepted})
    seen = []
    while True:
        frame = await peer.next_frame()
        seen.append((frame["t"], frame.get("h", frame.get("id"))))
        if frame["t"] == "ok" and frame["id"] == rid:
            break
    assert ("closed", accepted) in seen
    assert seen.index(("closed", accepted)) < len(seen) - 1


async def test_the_host_exits_when_its_pipe_closes_even_with_open_connections(
    spawn: Spawn,
) -> None:
    peer = await spawn("--linger", "1")
    await echo_pair(peer)
    assert await peer.close() == 0


async def test_the_host_exits_at_once_when_its_parent_is_not_the_one_named(spawn: Spawn) -> None:
    peer = await spawn("--parent-pid", "1", hello=False)  # pid 1 is not our test process
    assert await exit_status(peer) == 0


async def test_sigterm_shuts_the_host_down_cleanly(spawn: Spawn) -> None:
    peer = await spawn("--linger", "1")
    await echo_pair(peer)
    os.kill(peer.proc.pid, signal.SIGTERM)
    assert await exit_status(peer) == 0


async def test_connect_is_answered_once_the_server_has_the_connection(spawn: Spawn) -> None:
    peer = await spawn()
    server = peer.handle()
    listening = await peer.request({"t": "listen", "h": server, "services": ["echo"]})
    client = peer.handle()
    rid = peer.next_id
    peer.next_id += 1
    peer.send(
        {
            "t": "connect",
            "id": rid,
            "h": client,
            "record": listening["record"],
            "service": "echo",
            "retrySafe": True,
        }
    )
    peer.send_data(client, b"0-rtt")  # before the reply: kept, then sent in the first flight
    before = []
    while (frame := await peer.next_frame()).get("id") != rid:
        before.append(frame)
    assert frame["t"] == "ok"
    # The server had the connection before the client was told it is open ('connect').
    assert [f["h"] for f in before if f["t"] == "accept"] == [server]
    # Nothing read for the client before it is open (credit for Node's bytes may come).
    assert not [f for f in before if f.get("h") == client and f["t"] != "credit"]
    data = [f for f in before if f["t"] == "data"] or [await frame_of(peer, "data")]
    assert data[0]["d"] == b"0-rtt"


async def test_a_refused_connect_is_an_err_reply_then_closed_and_no_error_frame(
    spawn: Spawn,
) -> None:
    peer = await spawn()
    server = peer.handle()
    listening = await peer.request({"t": "listen", "h": server, "services": ["echo"]})
    client = peer.handle()
    reply = await peer.request(
        {"t": "connect", "h": client, "record": listening["record"], "service": "nope"}
    )
    assert reply["t"] == "err" and reply["code"] == "ECONNREFUSED" and reply["mlt"] == 0x10
    closed = await frame_of(peer, "closed", client)
    assert closed == {"t": "closed", "h": client}
    assert not [f for f in peer.frames if f.get("h") == client and f["t"] == "error"]


async def test_a_stream_without_credit_is_told_of_a_reset_at_once(spawn: Spawn) -> None:
    window = 4096
    peer = await spawn(window=window)
    client, accepted, _ = await echo_pair(peer)
    await frame_of(peer, "data", accepted)  # "open"
    peer.send_data(accepted, bytes(2 * window))  # more than the client's credit
    received = 0
    while received < window:
        frame = await frame_of(peer, "data", client)
        received += len(frame["d"])
    assert received == window  # no credit left: the host reads nothing more for the client
    peer.send({"t": "abort", "h": accepted})
    error = await frame_of(peer, "error", client)
    assert error["code"] == "ECONNRESET"


async def test_retry_safe_frames_are_checked_and_mark_the_data_after_them(spawn: Spawn) -> None:
    peer = await spawn()
    client, accepted, _ = await echo_pair(peer)
    bad = await peer.request({"t": "retry-safe", "h": client, "v": "yes"})
    assert bad["t"] == "err" and bad["code"] == "EMLTBRIDGE"
    peer.send({"t": "retry-safe", "h": client, "v": True})
    peer.send_data(client, b"marked")
    peer.send({"t": "retry-safe", "h": client, "v": None})
    peer.send_data(client, b"plain")
    got = b""
    while len(got) < len(b"openmarkedplain"):
        got += (await frame_of(peer, "data", accepted))["d"]
    assert got == b"openmarkedplain"


async def test_an_accepted_connection_reports_the_new_address_of_a_client_that_moved(
    spawn: Spawn,
) -> None:
    import minimalt

    peer = await spawn()
    server = peer.handle()
    listening = await peer.request({"t": "listen", "h": server, "services": ["echo"]})
    async with minimalt.Client(local_host="127.0.0.1") as client:
        conn = await client.connect(listening["record"], "echo", retry_safe=True)
        conn.write(b"before")
        accept = await frame_of(peer, "accept", server)
        assert accept["remote"] == ["127.0.0.1", conn.get_extra_info("sockname")[1]]
        _, new_port = await client.rebind()
        conn.write(b"after")  # the server checks the new path, then follows it
        moved = await frame_of(peer, "address", accept["c"])
        assert moved["remote"] == ["127.0.0.1", new_port]
        conn.abort()
