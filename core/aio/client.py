"""Clients: ``connect``/``open_connection``, and the ``Client`` endpoint they run on.

A ``Client`` owns one UDP socket per address family and one core ``Endpoint`` on it; every
connection to the same server (same identity and address) shares one tunnel. The module-level
``connect`` uses a default ``Client`` per event loop, closed when the loop shuts down
(``asyncio.run``/``minimalt.run`` finalise async generators, which is the hook used).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import os
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..directory.config import DirectoryConfig
from ..directory.protocol import normalize_name
from ..proto.config import EndpointConfig
from ..proto.crypto import SigningKeyPair
from ..proto.endpoint import Endpoint
from ..proto.records import RecordError, ServerRecord
from .connection import Connection, StreamReader, StreamWriter
from .driver import EndpointDriver
from .errors import TunnelClosedError
from .identity import Identity

#: Seconds a new tunnel waits for the server's first answer before connections fail with
#: ``ConnectTimeoutError`` (a ``TimeoutError``).
DEFAULT_CONNECT_TIMEOUT = 10.0

if TYPE_CHECKING:
    from .directory import DirectoryClient

RecordLike = ServerRecord | str | bytes | os.PathLike[str]
T = TypeVar("T")


class _Default(enum.Enum):
    """Sentinel: use the client's own setting."""

    CLIENT = 0


CLIENT_DEFAULT = _Default.CLIENT


def load_record(value: RecordLike) -> ServerRecord:
    """A ``ServerRecord`` from a record, its text form (``mlt1:...``), its binary form, or a
    path to a file holding either. ``RecordError`` if it is none of these (not verified yet)."""
    if isinstance(value, ServerRecord):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if raw.lstrip().startswith(b"mlt1:"):
            return ServerRecord.from_text(raw.decode("ascii", "replace"))
        return ServerRecord.from_bytes(raw)
    if isinstance(value, os.PathLike):
        return load_record(_read_record_file(Path(value)))
    if isinstance(value, str):
        if value.strip().startswith("mlt1:"):
            return ServerRecord.from_text(value)
        if os.path.exists(value):
            return load_record(_read_record_file(Path(value)))
        raise RecordError(
            f"{value[:40]!r} is neither a record (mlt1:...) nor an existing record file"
        )
    raise TypeError(f"expected a ServerRecord, record text or bytes, not {type(value).__name__}")


def _read_record_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RecordError(f"cannot read record file {str(path)!r}: {exc.strerror}") from None


def _as_name(value: object) -> str | None:
    """``value`` if it names a server to resolve through the directory: a string that is not a
    record's text, not an existing file, and a valid name (names cannot contain ``/``)."""
    if not isinstance(value, str) or value.lstrip().startswith("mlt1:") or os.path.exists(value):
        return None
    try:
        normalize_name(value)
    except ValueError:
        return None
    return value


def _pin(identity: bytes | str | Identity | None) -> bytes | None:
    if identity is None or isinstance(identity, bytes):
        return identity
    if isinstance(identity, Identity):
        return identity.public
    try:
        key = bytes.fromhex(identity)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("identity must be a 32-byte Ed25519 public key (64 hex digits)")
    return key


async def _resolve(host: str, port: int) -> tuple[Any, int]:
    """(socket address, family) for a record's host, keeping the tuple shape the socket reports
    for incoming datagrams: the core compares them to notice a peer that moved."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host!r}: {exc.strerror}") from None
        family, _, _, _, sockaddr = infos[0]
        return (sockaddr if family == socket.AF_INET6 else sockaddr[:2]), family
    if ip.version == 6:
        return (str(ip), port, 0, 0), socket.AF_INET6
    return (str(ip), port), socket.AF_INET


class Client:
    """A client endpoint: one UDP socket per address family, tunnels shared per server.

    Use as an async context manager, or call ``close()`` and ``await wait_closed()``.
    ``config`` tunes every tunnel (idle timeout, windows, congestion control, ...).
    ``directory`` resolves server names (a ``DirectoryClient``, or a ``DirectoryConfig``; by
    default the configured one, see ``minimalt.directory.config``).
    """

    def __init__(
        self,
        *,
        config: EndpointConfig | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        local_host: str | None = None,
        directory: DirectoryClient | DirectoryConfig | None = None,
    ) -> None:
        self.config = config if config is not None else EndpointConfig()
        self.connect_timeout = connect_timeout
        self.local_host = local_host
        if isinstance(directory, DirectoryConfig):
            from .directory import DirectoryClient

            directory = DirectoryClient.from_config(directory, client=self)
        self._directory = directory
        self._drivers: dict[int, EndpointDriver] = {}
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self._loop_guard: AsyncGenerator[None, None] | None = None

    async def connect(
        self,
        record: RecordLike | tuple[str, int],
        service: str,
        *,
        retry_safe: bool = False,
        identity: bytes | str | Identity | None = None,
        connect_timeout: float | None | _Default = CLIENT_DEFAULT,
        user: Identity | SigningKeyPair | None = None,
    ) -> Connection:
        """A new ``Connection`` to ``service`` on the server ``record`` describes.

        ``record`` is a ``ServerRecord``, its text (``mlt1:...``) or bytes, or a record file; or
        a server *name*, resolved through the directory (``directory``; one round trip unless
        the name's record is cached); or a ``(host, port)`` address together with
        ``identity``: the first packet then fetches the server's record (one round trip more).

        Returns without waiting for the network: what you write goes out at once, in the tunnel's
        first flight (0-RTT) if ``retry_safe`` (safe to execute twice: the server may see a
        replayed first packet), else as soon as the server has answered (one round trip).
        Errors (refusal, timeout, ...) are raised by the next read/drain/wait_closed.
        ``identity`` pins the server's Ed25519 key (bytes, hex or ``Identity``). ``user`` opens
        the connection as that user (createAuth, an ``Identity`` or ``SigningKeyPair``): the
        server's handler sees its public key as ``conn.user``; a refused authenticator fails
        the connection with ``ConnectionRefused`` (code ``ERR_AUTH_FAILED``).
        """
        if self._closed:
            raise TunnelClosedError("this client is closed")
        pin = _pin(identity)
        signing = user.signing if isinstance(user, Identity) else user
        timeout = self.connect_timeout if connect_timeout is CLIENT_DEFAULT else connect_timeout
        if isinstance(record, tuple):
            if pin is None:
                raise ValueError("connect((host, port), ...) needs identity= (the server's key)")
            addr, family = await _resolve(str(record[0]), int(record[1]))
            driver = await self._driver(family)
            return driver.open_connection(
                None,
                addr,
                service,
                retry_safe=retry_safe,
                connect_timeout=timeout,
                user=signing,
                identity=pin,
            )
        name = _as_name(record)
        rec = await self.resolve(name) if name is not None else load_record(record)
        if pin is not None and rec.identity != pin:
            raise RecordError("record is signed by another identity than expected")
        # The signature and expiry are checked by the core when it opens a new tunnel (an open
        # tunnel to the same server is reused without checking again: it is authenticated).
        addr, family = await _resolve(rec.host, rec.port)
        driver = await self._driver(family)
        try:
            return driver.open_connection(
                rec, addr, service, retry_safe=retry_safe, connect_timeout=timeout, user=signing
            )
        except RecordError:
            if name is None or self._directory is None:
                raise
        # The record expired between the lookup and now: ask the directory again, once.
        rec = await self._directory.lookup(name, use_cache=False)
        addr, family = await _resolve(rec.host, rec.port)
        driver = await self._driver(family)
        return driver.open_connection(
            rec, addr, service, retry_safe=retry_safe, connect_timeout=timeout, user=signing
        )

    @property
    def directory(self) -> DirectoryClient | None:
        """The directory names are resolved through (made from the configuration on first use
        when none was given: ``MINIMALT_DIRECTORY``/``MINIMALT_DIRECTORY_KEY`` or
        ``~/.config/minimalt/client.json``)."""
        return self._directory

    async def resolve(self, name: str) -> ServerRecord:
        """The current record of the server called ``name`` (cached until it expires).
        ``NameNotFound`` if the directory has none, ``DirectoryConfigError`` if no directory
        is configured, ``DirectoryUnavailable`` if it cannot be reached."""
        if self._directory is None:
            from .directory import DirectoryClient

            self._directory = DirectoryClient.from_config(client=self)
        return await self._directory.lookup(name)

    def learned_record(self, identity: bytes) -> ServerRecord | None:
        """The newest record the server with this identity handed us in-band (at a bootstrap or
        after rotating its key), or None."""
        found = [d.learned_records.get(identity) for d in self._drivers.values()]
        records = [record for record in found if record is not None]
        return max(records, key=lambda record: record.expires) if records else None

    async def open_connection(
        self, record: RecordLike, service: str, **kwargs: Any
    ) -> tuple[StreamReader, StreamWriter]:
        """``(reader, writer)`` for a new connection, like ``asyncio.open_connection``."""
        conn = await self.connect(record, service, **kwargs)
        return StreamReader(conn), StreamWriter(conn)

    async def _driver(self, family: int) -> EndpointDriver:
        driver = self._drivers.get(family)
        if driver is not None and not driver.is_closing():
            return driver
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            driver = self._drivers.get(family)
            if driver is not None and not driver.is_closing():
                return driver
            if self._closed:
                raise TunnelClosedError("this client is closed")
            endpoint = Endpoint(
                self.config,
                random=os.urandom,
                wall_offset=time.time() - time.monotonic(),
            )
            host = self.local_host or ("::" if family == socket.AF_INET6 else "0.0.0.0")
            driver = await EndpointDriver.create(endpoint, (host, 0), family=family)
            self._drivers[family] = driver
            return driver

    async def rebind(self, host: str | None = None, port: int = 0) -> Any:
        """Move this client's UDP socket to a new local address, as after a NAT rebinding or a
        change of network: ``host`` (default: the address it is bound to; its family picks the
        socket to move), ``port`` (0: any free port). The old socket is closed. Open tunnels
        carry on: each moves to a new TID at once (the two locations cannot be linked) and
        each server checks the new address before following it. Returns the new address."""
        if self._closed:
            raise TunnelClosedError("this client is closed")
        if host is None:
            open_ = [(f, d) for f, d in self._drivers.items() if not d.is_closing()]
            if len(open_) != 1:
                raise ValueError("rebind() needs host= unless the client has exactly one socket")
            family, driver = open_[0]
            host = str(driver.sockname[0])
        else:
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
            found = self._drivers.get(family)
            if found is None or found.is_closing():
                raise ValueError(f"this client has no open socket of {host!r}'s address family")
            driver = found
        return await driver.rebind((host, port), family=family)

    @property
    def tunnels(self) -> list[Any]:
        """The core tunnels this client holds."""
        return [t for d in self._drivers.values() for t in d.tunnels]

    def stats(self) -> dict[str, Any]:
        """Endpoint counters and every tunnel's ``stats()``."""
        return {
            "endpoints": [d.endpoint.stats() for d in self._drivers.values()],
            "tunnels": [t.stats() for t in self.tunnels],
        }

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every tunnel (servers are told) and the sockets. Open connections fail with
        ``TunnelClosedError``."""
        self._closed = True
        for driver in self._drivers.values():
            driver.close("client closed")

    async def wait_closed(self) -> None:
        for driver in list(self._drivers.values()):
            await driver.wait_closed()

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.tunnels)} tunnels"
        return f"<minimalt.Client {state}>"


# --- the default client of each event loop ----------------------------------------------------

_default_clients: dict[asyncio.AbstractEventLoop, Client] = {}


async def default_client() -> Client:
    """The running loop's default ``Client``, created on first use."""
    loop = asyncio.get_running_loop()
    client = _default_clients.get(loop)
    if client is not None and not client.closed:
        return client
    for stale in [other for other in _default_clients if other.is_closed()]:
        del _default_clients[stale]
    client = Client()
    _default_clients[loop] = client
    # The loop finalises live async generators when asyncio.run()/Runner closes it: that is the
    # one portable hook (stdlib and uvloop) to close our socket and tell servers goodbye.
    guard = _close_with_loop(loop, client)
    client._loop_guard = guard
    await guard.asend(None)
    return client


async def _close_with_loop(
    loop: asyncio.AbstractEventLoop, client: Client
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if _default_clients.get(loop) is client:
            del _default_clients[loop]
        await client.aclose()


class _Opening(Generic[T]):
    """What ``connect``/``serve`` return: await it for the object, or use it directly as an
    async context manager (``async with minimalt.connect(...) as conn``)."""

    __slots__ = ("_factory", "_value")

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self._factory = factory
        self._value: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()

    async def _open(self) -> T:
        return await self._factory()

    async def __aenter__(self) -> T:
        self._value = await self._factory()
        return await self._value.__aenter__()  # type: ignore[attr-defined,no-any-return]

    async def __aexit__(self, *exc_info: Any) -> Any:
        assert self._value is not None
        return await self._value.__aexit__(*exc_info)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"{name!r}: this is the pending result of connect()/serve(); use `await` "
            "(or `async with`) to get the connection or server"
        )


def connect(
    record: RecordLike | tuple[str, int],
    service: str,
    *,
    retry_safe: bool = False,
    identity: bytes | str | Identity | None = None,
    connect_timeout: float | None | _Default = CLIENT_DEFAULT,
    client: Client | None = None,
    user: Identity | SigningKeyPair | None = None,
) -> _Opening[Connection]:
    """Open a connection to ``service`` on the server ``record`` describes (a ``ServerRecord``,
    its ``mlt1:`` text, its bytes, or a record file), or on the server called ``record`` (a
    name, resolved through the configured directory), or at a ``(host, port)`` address with
    ``identity``. See ``Client.connect``; this uses ``client`` or the loop's default client,
    so connections to one server share a tunnel. ``user``: open it as that user (createAuth).

    ``conn = await minimalt.connect(...)`` or ``async with minimalt.connect(...) as conn``.
    """

    async def open_() -> Connection:
        owner = client if client is not None else await default_client()
        return await owner.connect(
            record,
            service,
            retry_safe=retry_safe,
            identity=identity,
            connect_timeout=connect_timeout,
            user=user,
        )

    return _Opening(open_)


async def open_connection(
    record: RecordLike, service: str, **kwargs: Any
) -> tuple[StreamReader, StreamWriter]:
    """``(reader, writer)`` for a new connection, like ``asyncio.open_connection``."""
    conn = await connect(record, service, **kwargs)
    return StreamReader(conn), StreamWriter(conn)
