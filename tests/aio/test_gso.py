"""UDP GSO in the driver: runs of equal-sized datagrams leave in one ``sendmsg``; the bytes that
arrive are the same with it on, off, or failing (full buffer, a kernel that refuses it)."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from typing import Any

import pytest

import minimalt
from minimalt.aio import driver as driver_module
from minimalt.aio.driver import EndpointDriver

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

CHUNK = 64 << 10
LINUX = sys.platform.startswith("linux")


async def _transfer(total: int) -> tuple[bytes, EndpointDriver]:
    """Send ``total`` pseudo-random bytes client -> server; the server's SHA-256 of what it read,
    and the client's driver. Asserts the digest matches what was written."""
    digest_sent = hashlib.sha256()
    done: Any = None

    async def sink(conn: minimalt.Connection) -> None:
        h = hashlib.sha256()
        n = 0
        while data := await conn.read(1 << 20):
            h.update(data)
            n += len(data)
        conn.write(h.digest() + n.to_bytes(8, "big"))
        await conn.drain()
        conn.close()

    block = os.urandom(CHUNK + 7)  # an odd length: chunk boundaries move through the packets
    async with minimalt.serve(sink, service="sink") as server:
        async with minimalt.connect(server.record, "sink") as conn:
            written = 0
            offset = 0
            while written < total:
                piece = (block[offset:] + block[:offset])[: min(CHUNK, total - written)]
                offset = (offset + 4099) % len(block)
                conn.write(piece)
                digest_sent.update(piece)
                written += len(piece)
                await conn.drain()
            conn.write_eof()
            answer = await conn.readexactly(40)
            done = conn._driver
    assert answer[32:] == total.to_bytes(8, "big")
    assert answer[:32] == digest_sent.digest()
    return answer[:32], done


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "no-gso"])
async def test_bulk_transfer_is_byte_identical_with_gso_on_and_off(monkeypatch, gso):
    monkeypatch.setattr(EndpointDriver, "use_gso", gso)
    calls = 0
    real_send_gso = EndpointDriver._send_gso

    def counting(self: EndpointDriver, datagrams: list[tuple[bytes, Any]]) -> None:
        nonlocal calls
        calls += 1
        real_send_gso(self, datagrams)

    monkeypatch.setattr(EndpointDriver, "_send_gso", counting)
    await _transfer(20 << 20)
    if gso and LINUX:
        assert calls > 0, "GSO on, on Linux, yet no run went through sendmsg"
    if not gso:
        assert calls == 0


@pytest.mark.skipif(not LINUX, reason="UDP GSO is Linux-only")
async def test_gso_falls_back_on_a_full_buffer_and_turns_off_when_refused(monkeypatch):
    """``sendmsg`` fails: EAGAIN / ENOBUFS now and then (the rest goes through sendto), then
    EINVAL (the kernel cannot segment: GSO off for that driver). Nothing is lost or reordered
    beyond what loss recovery handles, and the driver keeps sending with sendto."""
    attempts = 0
    turned_off: list[EndpointDriver] = []
    real_open = EndpointDriver._open_gso

    def flaky_open(self: EndpointDriver, sock: Any) -> None:
        real_open(self, sock)
        real = self._sendmsg
        if real is None:
            return

        def sendmsg(buffers: Any, cmsg: Any, flags: int, addr: Any) -> int:
            nonlocal attempts
            attempts += 1
            if attempts >= 60:
                turned_off.append(self)
                raise OSError(errno.EINVAL, "no GSO here")
            if attempts % 3 == 1:
                raise BlockingIOError(errno.EAGAIN, "full")
            if attempts % 3 == 2:
                raise OSError(errno.ENOBUFS, "no buffer space")
            return real(buffers, cmsg, flags, addr)

        self._sendmsg = sendmsg

    monkeypatch.setattr(EndpointDriver, "use_gso", True)
    monkeypatch.setattr(EndpointDriver, "_open_gso", flaky_open)
    _, driver = await _transfer(16 << 20)  # (big datagrams on loopback: fewer runs per MB)
    assert attempts >= 60
    # The client's driver was refused once and stopped trying.
    assert turned_off.count(driver) == 1


class _FakeTransport:
    def __init__(self, backlog: int = 0) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.backlog = backlog

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def get_write_buffer_size(self) -> int:
        return self.backlog


def _driver_with(transport: _FakeTransport, calls: list[tuple[list[bytes], int, Any]]) -> Any:
    drv = EndpointDriver.__new__(EndpointDriver)
    drv.transport = transport  # type: ignore[assignment]
    drv._sendto = transport.sendto
    drv._gso_cmsg = {}
    drv._gso_sock = None
    drv.sockname = None

    def sendmsg(buffers: Any, cmsg: Any, flags: int, addr: Any) -> int:
        ((level, kind, size),) = cmsg
        assert (level, kind) == (17, 103)
        calls.append((list(buffers), int.from_bytes(size, sys.byteorder), addr))
        return sum(map(len, buffers))

    drv._sendmsg = sendmsg
    return drv


def test_runs_split_on_address_size_and_limits():
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    big = driver_module.GSO_MAX_BYTES // 1200  # segments of 1200 that fit in one call
    datagrams = (
        [(b"x" * 1200, a)] * 3
        + [(b"s" * 500, a)]  # shorter: closes the run
        + [(b"y" * 1200, a)] * 2
        + [(b"z" * 1200, b)] * 2  # another address: a new run
        + [(b"w" * 100, b)]  # shorter: closes b's run
        + [(b"q" * 1300, b)]  # longer: alone
        + [(b"r" * 1200, a)] * (big + 3)  # more than one call holds
    )
    transport = _FakeTransport()
    calls: list[tuple[list[bytes], int, Any]] = []
    drv = _driver_with(transport, calls)
    drv._send_gso(datagrams)
    sent = [(d, addr) for bufs, _, addr in calls for d in bufs]
    runs = [(len(bufs), size, addr) for bufs, size, addr in calls]
    assert runs == [(4, 1200, a), (2, 1200, a), (3, 1200, b), (big, 1200, a), (3, 1200, a)]
    assert transport.sent == [(b"q" * 1300, b)]
    # Every datagram once, in order within each destination.
    everything = sent + transport.sent
    assert sorted(everything) == sorted(datagrams)
    assert [d for d in everything if d[1] == a] == [d for d in datagrams if d[1] == a]


def test_one_run_is_one_call_and_a_queued_transport_keeps_the_order():
    a = ("127.0.0.1", 1)
    datagrams = [(b"x" * 1200, a)] * 9 + [(b"t" * 77, a)]
    calls: list[tuple[list[bytes], int, Any]] = []
    drv = _driver_with(_FakeTransport(), calls)
    drv._send_gso(datagrams)
    assert [(len(bufs), size) for bufs, size, _ in calls] == [(10, 1200)]

    # A shorter datagram in the middle is not the end of a run: never one call across it.
    calls.clear()
    drv = _driver_with(_FakeTransport(), calls)
    mixed = [(b"x" * 1200, a), (b"m" * 500, a), (b"y" * 1200, a), (b"z" * 1200, a)]
    drv._send_gso(mixed)
    assert [(len(bufs), size) for bufs, size, _ in calls] == [(2, 1200), (2, 1200)]
    assert [d for bufs, _, _ in calls for d in bufs] == [d for d, _ in mixed]

    queued = _FakeTransport(backlog=1200)  # the transport has a queue: everything through it
    calls.clear()
    drv = _driver_with(queued, calls)
    drv._send_gso(datagrams)
    assert calls == [] and queued.sent == datagrams


@pytest.mark.parametrize(
    ("error", "gso_stays_on", "later_runs_use_gso"),
    [
        (errno.EAGAIN, True, False),  # buffer full: the rest through the transport's queue
        (errno.ENOBUFS, True, False),
        (errno.EINVAL, False, False),  # GSO refused: off for good
        (errno.EIO, False, False),
        (errno.ECONNREFUSED, True, True),  # that destination's trouble: sendto reports it
    ],
)
def test_a_failing_run_falls_back_to_sendto_in_order(error, gso_stays_on, later_runs_use_gso):
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    datagrams = [(b"x" * 1200, a)] * 3 + [(b"y" * 1200, b)] * 3 + [(b"z" * 1200, a)] * 3
    transport = _FakeTransport()
    calls: list[tuple[list[bytes], int, Any]] = []
    drv = _driver_with(transport, calls)
    record = drv._sendmsg

    def sendmsg(buffers: Any, cmsg: Any, flags: int, addr: Any) -> int:
        if addr == b:
            raise (BlockingIOError if error == errno.EAGAIN else OSError)(error, "test")
        return record(buffers, cmsg, flags, addr)

    drv._sendmsg = sendmsg
    drv._send_gso(datagrams)
    assert (drv._sendmsg is not None) == gso_stays_on
    via_gso = [d for bufs, _, _ in calls for d in bufs]
    assert via_gso[:3] == [b"x" * 1200] * 3
    if later_runs_use_gso:
        assert via_gso[3:] == [b"z" * 1200] * 3
        assert transport.sent == datagrams[3:6]
    else:
        assert via_gso[3:] == []
        assert transport.sent == datagrams[3:]


def test_emsgsize_on_a_gso_run_falls_back_to_sendto_and_keeps_gso():
    # A run too big for the path (a probe-sized run, or the MTU fell): sendto carries it and
    # reports the error per datagram; GSO itself stays on.
    transport = _FakeTransport()
    drv = _driver_with(transport, [])

    def sendmsg(buffers: Any, cmsg: Any, flags: int, addr: Any) -> int:
        raise OSError(errno.EMSGSIZE, "Message too long")

    drv._sendmsg = sendmsg
    a = ("127.0.0.1", 1)
    datagrams = [(b"x" * 1200, a)] * 4
    drv._send_gso(datagrams)
    assert transport.sent == datagrams
    assert drv._sendmsg is sendmsg  # still on
