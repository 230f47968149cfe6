"""Path MTU probing on real sockets: loopback (MTU 65536) carries big datagrams, the socket has
the Don't-Fragment bit, and a probe the interface refuses (EMSGSIZE) costs one try, not GSO."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from typing import Any

import pytest

import minimalt
from minimalt.aio import driver as driver_module
from minimalt.aio.driver import EndpointDriver
from minimalt.proto import constants as C
from minimalt.proto.endpoint import Endpoint

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

LINUX = sys.platform.startswith("linux")


async def sink(conn: minimalt.Connection) -> None:
    digest = hashlib.sha256()
    while data := await conn.read(1 << 20):
        digest.update(data)
    conn.write(digest.digest())
    await conn.drain()
    conn.close()


async def _send_checked(conn: minimalt.Connection, total: int) -> None:
    """At least ``total`` bytes to the ``sink`` service, more (up to 64 MiB) while the path MTU
    search is still on; then the end, and the server's digest must match."""
    block = os.urandom(64 << 10)
    sent = hashlib.sha256()
    written = 0
    # ("base": the search has not started yet; "disabled": there is none.)
    while written < total or (
        conn.stats["pmtu"]["state"] in ("base", "searching") and written < 64 << 20
    ):
        conn.write(block)
        sent.update(block)
        written += len(block)
        await conn.drain()
    conn.write_eof()
    assert await conn.readexactly(32) == sent.digest()


async def _transfer(
    config: minimalt.EndpointConfig | None, total: int
) -> tuple[Any, EndpointDriver, bool]:
    """At least ``total`` bytes client -> server over loopback, more (up to 64 MiB) while the
    path MTU search is still on; the client tunnel's stats, its driver, and whether that
    driver still sent with GSO at the end."""
    async with minimalt.serve(sink, service="sink") as server:
        async with minimalt.Client(config=config) as client:
            conn = await client.connect(server.record, "sink")
            await _send_checked(conn, total)
            stats = conn.stats
            driver = conn._driver
            gso = driver._sendmsg is not None
            conn.close()
            await conn.wait_closed()
    return stats, driver, gso


@pytest.mark.skipif(not LINUX, reason="Don't-Fragment via IP_MTU_DISCOVER is Linux's")
async def test_a_loopback_tunnel_probes_past_1200_bytes_and_the_transfer_completes():
    stats, driver, _ = await _transfer(None, 8 << 20)
    assert stats["datagram_size"] == C.DEFAULT_MAX_PROBED_DATAGRAM_SIZE
    assert driver.endpoint.pmtu_probing


@pytest.mark.skipif(not LINUX, reason="Don't-Fragment via IP_MTU_DISCOVER is Linux's")
async def test_a_probe_the_interface_refuses_is_abandoned_at_once_and_gso_stays_on(monkeypatch):
    # An IPv4 UDP payload is at most 65507 bytes: the 65527-byte probe fails in sendto with
    # EMSGSIZE, which ends the search there (one try) and leaves GSO alone.
    monkeypatch.setattr(EndpointDriver, "use_gso", True)
    refused: list[int] = []
    real = Endpoint.datagram_too_big

    def too_big(self: Endpoint, data: bytes, addr: Any, now: float) -> None:
        refused.append(len(data))
        real(self, data, addr, now)

    monkeypatch.setattr(Endpoint, "datagram_too_big", too_big)
    config = minimalt.EndpointConfig(max_probed_datagram_size=C.MAX_UDP_PAYLOAD)
    stats, driver, gso = await _transfer(config, 8 << 20)
    assert refused == [C.MAX_UDP_PAYLOAD]  # reported once: that size is not tried again
    assert stats["datagram_size"] == 65507
    assert stats["pmtu"]["state"] == "search_complete"
    assert gso  # still on


async def test_without_the_dont_fragment_bit_there_is_no_probing(monkeypatch):
    monkeypatch.setattr(driver_module, "set_dont_fragment", lambda sock: False)
    stats, driver, _ = await _transfer(None, 2 << 20)
    assert stats["datagram_size"] == C.MAX_DATAGRAM_SIZE
    assert stats["pmtu"]["state"] == "disabled"
    assert not driver.endpoint.pmtu_probing


@pytest.mark.skipif(not LINUX, reason="IP_MTU_DISCOVER is Linux's")
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_dont_fragment_is_set_on_linux_sockets(family):
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        assert driver_module.set_dont_fragment(sock)
        if family == socket.AF_INET:
            level, option = socket.IPPROTO_IP, driver_module._IP_MTU_DISCOVER
        else:
            level, option = socket.IPPROTO_IPV6, driver_module._IPV6_MTU_DISCOVER
        assert sock.getsockopt(level, option) == 3  # *_PMTUDISC_PROBE


def test_dont_fragment_is_refused_where_the_platform_has_no_option(monkeypatch):
    monkeypatch.setattr(driver_module.sys, "platform", "plan9")
    for name in ("IP_DONTFRAG", "IP_DONTFRAGMENT", "IPV6_DONTFRAG"):
        monkeypatch.delattr(socket, name, raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert not driver_module.set_dont_fragment(sock)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        assert not driver_module.set_dont_fragment(sock)


@pytest.mark.skipif(not LINUX, reason="Don't-Fragment via IP_MTU_DISCOVER is Linux's")
async def test_through_a_relay_that_drops_datagrams_over_1472_bytes_the_search_stops_there():
    # The loopback relay plays an Ethernet path: nothing tells the sender the limit (no
    # EMSGSIZE, no ICMP), only the probes above it go unanswered.
    from minimalt.testing.link import LinkConfig, UDPLink

    ethernet = LinkConfig(max_datagram=1472)
    async with UDPLink(("127.0.0.1", 9), ethernet) as link:
        async with minimalt.serve(sink, service="sink", advertise=link.address) as server:
            link.target = server.address
            async with minimalt.Client() as client:
                conn = await client.connect(server.record, "sink")
                await _send_checked(conn, 1 << 20)
                stats = conn.stats
                conn.close()
                await conn.wait_closed()
        dropped = link.stats()["c2s"]["too_big"]
    assert stats["datagram_size"] == 1472
    assert stats["pmtu"]["state"] == "search_complete"
    assert dropped >= 3  # the probes above 1472 that the path swallowed
