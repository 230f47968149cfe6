"""What the attack tests share: a capturing (and optionally delaying) UDP relay, attacker and
victim sockets that count what they receive, an echo server and one request to it, server
endpoints holding given keys (a replica, or a restarted process that loaded its keys from
disk), child processes, and a bounded wait on conditions the runtime reports no event for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import minimalt
from minimalt.aio.driver import EndpointDriver
from minimalt.proto.crypto import BoxKeyPair, SigningKeyPair
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.packet import parse_header
from minimalt.proto.records import ServerKeys

LOCAL = "127.0.0.1"
PEERS_SCRIPT = Path(__file__).with_name("peers.py")


async def eventually(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Wait until ``predicate()`` holds, checking every few milliseconds; fail after
    ``timeout`` seconds. For states the runtime exposes no event for (a tunnel collected, a
    counter reached): the wait ends as soon as the state is reached, never on a guess."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.005)


def is_first_packet(datagram: bytes) -> bool:
    """A client datagram carrying the client's ephemeral key (its first flight)."""
    header = parse_header(datagram)
    return not isinstance(header, str) and header.client_public is not None


# --- sockets -----------------------------------------------------------------------------------


class Sink(asyncio.DatagramProtocol):
    """A UDP socket that sends what it is told to and counts every byte it receives, by source:
    an attacker's socket, or a victim whose address an attacker uses."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[tuple[bytes, Any]] = []
        self.sent_bytes = 0

    @classmethod
    async def bind(cls, host: str = LOCAL) -> Sink:
        loop = asyncio.get_running_loop()
        _, sink = await loop.create_datagram_endpoint(cls, local_addr=(host, 0))
        return sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.address: tuple[str, int] = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))

    def send(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)
        self.sent_bytes += len(data)

    def bytes_from(self, addr: Any) -> int:
        return sum(len(data) for data, source in self.received if source[:2] == tuple(addr[:2]))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Relay(asyncio.DatagramProtocol):
    """A UDP relay between clients and one server (``target``, settable once the server is
    bound): what a client sends goes to the server, what the server sends goes to the client
    that spoke last, each after ``delay`` seconds. Keeps every datagram with its arrival time
    (``from_client``, ``from_server``): the attacker's capture."""

    def __init__(self, target: Any = None, delay: float = 0.0) -> None:
        self.target = target
        self.delay = delay
        self.client: Any = None
        self.from_client: list[tuple[float, bytes]] = []
        self.from_server: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.TimerHandle] = set()

    @classmethod
    async def start(cls, target: Any = None, delay: float = 0.0) -> Relay:
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(
            lambda: cls(target, delay), local_addr=(LOCAL, 0)
        )
        return relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.address: tuple[str, int] = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = time.monotonic()
        if addr[:2] == tuple(self.target[:2]):
            self.from_server.append((now, data))
            dest = self.client
        else:
            self.client = addr
            self.from_client.append((now, data))
            dest = self.target
        if dest is None:
            return
        if self.delay <= 0:
            self._send(None, data, dest)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._send(handle, data, dest)

        handle = loop.call_later(self.delay, fire)
        self._pending.add(handle)

    def _send(self, handle: asyncio.TimerHandle | None, data: bytes, dest: Any) -> None:
        self._pending.discard(handle)  # type: ignore[arg-type]
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, dest)

    def first_packets(self) -> list[bytes]:
        return [data for _, data in self.from_client if is_first_packet(data)]

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self.transport is not None:
            self.transport.close()


# --- servers -----------------------------------------------------------------------------------


async def echo(conn: minimalt.Connection) -> None:
    while data := await conn.read(1 << 16):
        conn.write(data)
        await conn.drain()


async def echo_request(client: minimalt.Client, record: Any, payload: bytes, **kw: Any) -> bytes:
    """One retry-safe request to the ``echo`` service on a new connection: ``payload`` written
    and the stream ended, the answer read to its end (within 10 s), the connection closed."""
    conn = await client.connect(record, "echo", retry_safe=True, **kw)
    conn.write(payload)
    conn.write_eof()
    answer = await asyncio.wait_for(conn.read(), 10)
    await conn.wait_closed()
    return answer


def make_keys(name: str = "security") -> tuple[ServerKeys, bytes, int]:
    """A server identity with one fresh ephemeral key made by this process (exclusive: no other
    process can have accepted first packets boxed to it). Returns the keys, the ephemeral
    secret and its expiry, as a server persisting them would write them."""
    keys = ServerKeys(SigningKeyPair.generate(os.urandom), name)  # type: ignore[arg-type]
    secret = os.urandom(32)
    expires = int(time.time()) + 600
    keys.add_ephemeral(BoxKeyPair(secret), expires, created=time.time(), exclusive=True)
    return keys, secret, expires


def load_keys(identity: SigningKeyPair, secret: bytes, expires: int, name: str) -> ServerKeys:
    """``ServerKeys`` as a restarted process or a replica loads them from disk: the same
    ephemeral key, not exclusive (another process may have accepted packets boxed to it)."""
    keys = ServerKeys(identity, name)
    keys.add_ephemeral(BoxKeyPair(secret), expires, created=time.time(), exclusive=False)
    return keys


class KeyedServer:
    """A server endpoint on a real socket holding the ``ServerKeys`` it is given (``serve``
    makes its own keys, while replicas and restarted processes load theirs): the runtime's
    endpoint driver, each connection handled by ``handler``. ``opened`` lists every
    connection a client opened (how many times a request ran)."""

    def __init__(self, handler: Callable[[minimalt.Connection], Awaitable[None]]) -> None:
        self.handler = handler
        self.opened: list[minimalt.Connection] = []
        self.driver: EndpointDriver | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(
        cls,
        keys: ServerKeys,
        handler: Callable[[minimalt.Connection], Awaitable[None]],
        config: minimalt.EndpointConfig,
        *,
        port: int = 0,
    ) -> KeyedServer:
        server = cls(handler)
        endpoint = Endpoint(
            config,
            random=os.urandom,  # type: ignore[arg-type]
            server_keys=keys,
            wall_offset=time.time() - time.monotonic(),
            now=time.monotonic(),  # the replay cache remembers from the process start
        )
        server.driver = await EndpointDriver.create(
            endpoint, (LOCAL, port), on_connection=server._on_connection
        )
        return server

    @property
    def endpoint(self) -> Endpoint:
        assert self.driver is not None
        return self.driver.endpoint

    @property
    def address(self) -> tuple[str, int]:
        assert self.driver is not None
        return self.driver.sockname[:2]

    def _on_connection(self, conn: minimalt.Connection) -> None:
        self.opened.append(conn)
        task = asyncio.get_running_loop().create_task(self._run(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: minimalt.Connection) -> None:
        try:
            await self.handler(conn)
        except (minimalt.MinimaLTError, ConnectionError):
            conn.abort()
        else:
            conn.close()

    async def aclose(self) -> None:
        if self.driver is not None:
            self.driver.close("server shutting down")
            await self.driver.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def closing(*things: Any) -> AsyncIterator[None]:
    """Close sockets, relays and servers however the block ends."""
    try:
        yield
    finally:
        for thing in reversed(things):
            if isinstance(thing, (KeyedServer, minimalt.Client, minimalt.Server)):
                await thing.aclose()
            else:
                thing.close()


# --- child processes ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def child(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``peers.py`` with ``args`` in a child process (stdin/stdout piped); killed and reaped
    however the block ends."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PEERS_SCRIPT),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)


class Nat:
    """A NAT in front of one client: the client sends to ``inside`` as if it were the server
    (records name it); the server sees the NAT's ``outside`` socket, which ``rebind()``
    replaces, as a NAT does when its mapping expires. The client never learns that it moved."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.client: Any = None
        self.inside: _Side | None = None
        self.outside: _Side | None = None

    @classmethod
    async def start(cls, server: Any) -> Nat:
        nat = cls(server)
        loop = asyncio.get_running_loop()
        _, nat.inside = await loop.create_datagram_endpoint(
            lambda: _Side(nat._from_client), local_addr=(LOCAL, 0)
        )
        await nat.rebind()
        return nat

    @property
    def address(self) -> tuple[str, int]:
        assert self.inside is not None and self.inside.transport is not None
        return self.inside.transport.get_extra_info("sockname")[:2]

    async def rebind(self) -> tuple[str, int]:
        """A new outside port; what the server sends to the old one is lost."""
        loop = asyncio.get_running_loop()
        old = self.outside
        _, self.outside = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=(LOCAL, 0)
        )
        if old is not None and old.transport is not None:
            old.transport.close()
        assert self.outside.transport is not None
        return self.outside.transport.get_extra_info("sockname")[:2]

    def _from_client(self, data: bytes, addr: Any) -> None:
        self.client = addr
        if self.outside is not None and self.outside.transport is not None:
            self.outside.transport.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: Any) -> None:
        if self.client is not None and self.inside is not None and self.inside.transport:
            self.inside.transport.sendto(data, self.client)

    def close(self) -> None:
        for side in (self.inside, self.outside):
            if side is not None and side.transport is not None:
                side.transport.close()
