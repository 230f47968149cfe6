"""The emulated network for TCP peers: namespaces joined by TUN devices and the link model.

Needs root, /dev/net/tun and `ip netns`; without them every test here is skipped with the
reason. Sockets are made inside the namespaces from this process (a socket keeps the namespace
it was made in), so no child process but the forwarder is involved.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from minimalt.testing.link import LinkConfig
from tests.aio.leaks import no_leaked_resources  # noqa: F401  (autouse fixture)
from tests.netem.network import SERVER_IP, EmulatedNetwork, unavailable

REASON = unavailable()
pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(REASON is not None, reason=f"emulated network: {REASON}"),
]


@pytest.fixture
def network():
    with EmulatedNetwork(LinkConfig(delay=0.02), seed=3) as net:
        yield net
    assert not any(name in os.listdir("/var/run/netns") for name in net.namespaces.values())


def tcp_pair(net: EmulatedNetwork) -> tuple[socket.socket, socket.socket, float]:
    """(client, server-side) sockets across the link, and how long connect() took."""
    with net.inside("server"):
        listener = socket.create_server((SERVER_IP, 0))
    with net.inside("client"):
        client = socket.socket()
    client.settimeout(10)
    listener.settimeout(10)
    try:
        started = time.monotonic()
        client.connect((SERVER_IP, listener.getsockname()[1]))
        took = time.monotonic() - started
        accepted, _ = listener.accept()
    finally:
        listener.close()
    accepted.settimeout(10)
    return client, accepted, took


def recv_exactly(sock: socket.socket, size: int) -> bytearray:
    """``size`` bytes from ``sock``; fails if the peer closes first."""
    received = bytearray()
    while len(received) < size:
        chunk = sock.recv(65536)
        assert chunk, f"the peer closed after {len(received)} of {size} bytes"
        received += chunk
    return received


def transfer(sender: socket.socket, receiver: socket.socket, payload: bytes) -> bytearray:
    """``payload`` sent on one socket while the other reads it. (Both at once: a ``sendall``
    that must finish before anyone reads needs socket buffers as big as the payload, which
    Linux grows only with the congestion window: behind a slow, lossy link it may not.)"""
    failures: list[BaseException] = []

    def send() -> None:
        try:
            sender.sendall(payload)
        except BaseException as exc:  # re-raised below, in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=send, name="netem-sender")
    thread.start()
    try:
        received = recv_exactly(receiver, len(payload))
    finally:
        thread.join(timeout=20)
    if failures:
        raise failures[0]
    assert not thread.is_alive()
    return received


def test_tcp_handshake_pays_the_round_trip(network):
    client, server, took = tcp_pair(network)
    with client, server:
        assert took >= 0.04  # SYN and SYN-ACK each crossed the 20 ms link
        started = time.monotonic()
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        server.sendall(b"pong")
        assert client.recv(4) == b"pong"
        assert time.monotonic() - started >= 0.04


def test_link_changes_apply_to_every_packet(network):
    network.reconfigure(LinkConfig(delay=0.001, rate=2e6, queue=32 << 10))
    client, server, took = tcp_pair(network)
    with client, server:
        assert took < 0.04
        payload = os.urandom(256 << 10)
        started = time.monotonic()
        received = transfer(client, server, payload)
        elapsed = time.monotonic() - started
    assert bytes(received) == payload
    assert elapsed >= len(payload) * 8 / 2e6 * 0.95  # the 2 Mbit/s limit held
    stats = network.stats()
    assert stats["c2s"]["delivered_bytes"] > len(payload)


def test_loss_on_the_link_is_recovered_by_tcp(network):
    network.reconfigure(LinkConfig(delay=0.002, loss=0.05))
    client, server, _ = tcp_pair(network)
    with client, server:
        payload = os.urandom(128 << 10)
        received = transfer(client, server, payload)
    assert bytes(received) == payload
    assert network.stats()["c2s"]["lost"] > 0


def test_close_removes_the_namespaces():
    net = EmulatedNetwork().start()
    names = list(net.namespaces.values())
    assert all(name in os.listdir("/var/run/netns") for name in names)
    net.close()
    net.close()  # idempotent
    assert not any(name in os.listdir("/var/run/netns") for name in names)
