"""One connection as an asyncio stream: ``read``/``readline``/``write``/``drain`` on a tunnel.

A ``Connection`` is fed by the endpoint driver (``minimalt.aio.driver``) with the core's events
and talks to the core's ``Tunnel`` directly for writes. Two rules make the streams honest:

* received bytes count against the flow-control window until the application reads them out of
  this object's buffer (``Tunnel.consume`` is called on read, not on arrival), so a reader that
  stops reading stops the sender;
* ``drain()`` waits while the bytes written and not yet acknowledged exceed the high-water mark,
  so a writer whose peer stops reading stops too, with bounded memory on both sides.

Closing follows TCP: ``write_eof()`` half-closes (the peer reads end-of-stream, we can still
read); ``close()`` ends our side and stops reading; data the peer sends after that aborts the
connection (the peer sees a reset), as a TCP stack answers data for a closed socket with RST.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

from ..proto import constants as C
from ..proto.errors import LocalProtocolError
from ..proto.tunnel import OPEN
from .errors import ConnectionReset

if TYPE_CHECKING:
    from ..proto.tunnel import Tunnel
    from .driver import EndpointDriver

#: ``drain()`` waits while more than this many written bytes are unacknowledged...
DEFAULT_HIGH_WATER = 1 << 20
#: ...and resumes once they drop to this many.
DEFAULT_LOW_WATER = DEFAULT_HIGH_WATER // 4
#: ``readline``/``readuntil`` give up (``LimitOverrunError``) past this many bytes, as asyncio.
DEFAULT_LIMIT = 1 << 16
#: Unreliable datagrams kept for ``receive_datagram`` before the oldest is dropped.
_DATAGRAM_QUEUE = 256


class Connection:
    """A bidirectional byte stream to one service over a tunnel (see the module docstring).

    Obtained from ``minimalt.connect`` (client) or passed to a ``serve`` handler (server).
    Usable as an async context manager: leaving it closes the connection and waits for our
    side to be delivered.
    """

    __slots__ = (
        "_accept_waiter",
        "_accepted",
        "_buf",
        "_close_waiter",
        "_closed",
        "_datagram_waiter",
        "_datagrams",
        "_done",
        "_done_waiter",
        "_drain_waiter",
        "_driver",
        "_eof",
        "_exc",
        "_exc_reported",
        "_high",
        "_limit",
        "_low",
        "_read_waiter",
        "_send_done",
        "_write_closed",
        "cid",
        "local",
        "retry_safe",
        "service",
        "tunnel",
        "user",
    )

    def __init__(
        self,
        driver: EndpointDriver,
        tunnel: Tunnel,
        cid: int,
        service: str,
        *,
        local: bool,
        retry_safe: bool,
    ) -> None:
        self._driver = driver
        #: The core ``Tunnel`` this connection runs in (shared with other connections).
        self.tunnel = tunnel
        #: Connection id inside the tunnel (odd: opened by the client).
        self.cid = cid
        #: The service name this connection was opened for.
        self.service = service
        #: True on the side that opened the connection.
        self.local = local
        #: Whether data written before the server answered may ride in the 0-RTT first flight.
        self.retry_safe = retry_safe
        #: The user's Ed25519 public key this connection was opened as (createAuth): on the
        #: server, proven by the client for this tunnel; None for an anonymous connection.
        self.user: bytes | None = None
        self._buf = bytearray()
        self._eof = False  # the peer's FIN arrived (everything before it is in _buf or read)
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._close_waiter: asyncio.Future[None] | None = None
        self._exc: BaseException | None = None  # why the connection failed, if it did
        self._exc_reported = False  # _exc was raised to the application at least once
        self._write_closed = False  # write_eof() or close() called
        self._closed = False  # close() called
        self._send_done = False  # our FIN and every byte before it acknowledged
        self._done = False  # nothing more will happen on this connection
        self._done_waiter: asyncio.Future[None] | None = None
        # The server acknowledged our Create without refusing it; a server's own connections
        # are accepted by definition.
        self._accepted = not local
        self._accept_waiter: asyncio.Future[None] | None = None
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_LOW_WATER
        self._limit = DEFAULT_LIMIT
        self._datagrams: deque[bytes] | None = None
        self._datagram_waiter: asyncio.Future[None] | None = None

    # --- reading -------------------------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, waiting until at least one is available; ``b""`` at end of stream.
        With ``n < 0``, everything until end of stream."""
        if n < 0:
            blocks: list[bytes] = []
            while True:
                block = await self.read(DEFAULT_HIGH_WATER)
                if not block:
                    return b"".join(blocks)
                blocks.append(block)
        if n == 0:
            return b""
        if self._exc is not None and not self._eof:
            self._raise_read_error()
        if not self._buf:
            await self._wait_readable()
            if not self._buf:
                return b""
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if the stream ends first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exc is not None and not self._eof:
            self._raise_read_error()
        if len(self._buf) >= n:
            return self._take(n)
        parts: list[bytes] = []
        remaining = n
        while remaining:
            block = await self.read(remaining)
            if not block:
                partial = b"".join(parts)
                raise asyncio.IncompleteReadError(partial, n)
            parts.append(block)
            remaining -= len(block)
        return b"".join(parts)

    async def readline(self) -> bytes:
        """Up to and including the next ``b"\\n"``; at end of stream, whatever is left.
        Like asyncio: ``ValueError`` if a line exceeds the limit (the data stays buffered)."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            raise ValueError(exc.args[0]) from None

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including ``separator``. ``asyncio.IncompleteReadError`` if the stream ends
        first, ``asyncio.LimitOverrunError`` if it is not found within the buffer limit."""
        if not separator:
            raise ValueError("separator should be at least one-byte string")
        seplen = len(separator)
        offset = 0
        while True:
            buf = self._buf
            found = buf.find(separator, offset)
            if found >= 0:
                end = found + seplen
                if end > self._limit:
                    raise asyncio.LimitOverrunError(
                        "separator is found, but chunk is longer than limit", found
                    )
                return self._take(end)
            offset = max(0, len(buf) + 1 - seplen)
            if offset > self._limit:
                raise asyncio.LimitOverrunError(
                    "separator is not found, and chunk exceed the limit", offset
                )
            if self._eof or self._closed or self._exc is not None:
                if self._exc is not None and not self._eof:
                    self._raise_read_error()
                partial = self._take(len(buf))
                raise asyncio.IncompleteReadError(partial, None)
            await self._wait_readable(force=True)

    def at_eof(self) -> bool:
        """The peer ended its side and every byte has been read."""
        return self._eof and not self._buf

    def _take(self, n: int) -> bytes:
        buf = self._buf
        if n >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        if data and self._exc is None and self.tunnel.state == OPEN:
            self.tunnel.consume(self.cid, len(data))
            self._driver.schedule_flush()
        return data

    async def _wait_readable(self, force: bool = False) -> None:
        """Wait until bytes are buffered (or, with ``force``, more bytes arrive), the stream
        ends, or the connection fails."""
        if self._exc is not None and not self._eof:
            self._raise_read_error()
        if self._eof or self._closed or (self._buf and not force):
            return
        if self._read_waiter is not None:
            raise RuntimeError("another coroutine is already waiting to read this connection")
        waiter = self._driver.loop.create_future()
        self._read_waiter = waiter
        try:
            await waiter
        finally:
            self._read_waiter = None
        if self._exc is not None and not self._eof:
            self._raise_read_error()

    def _raise_read_error(self) -> None:
        self._buf.clear()  # a failed connection's unread data is lost, as after a TCP reset
        self._raise()

    def _raise(self) -> None:
        """Raise why the connection failed (a fresh traceback each time it is raised)."""
        self._exc_reported = True
        assert self._exc is not None
        raise self._exc.with_traceback(None)

    # --- writing -------------------------------------------------------------------------------

    def write(
        self, data: bytes | bytearray | memoryview, *, retry_safe: bool | None = None
    ) -> None:
        """Queue ``data``; it is sent as congestion and flow control allow. Call ``drain()``.

        ``retry_safe`` (default: the flag given to ``connect``) marks these bytes as safe to
        execute twice, so they may ride in the tunnel's 0-RTT first flight (a replayed first
        packet could deliver them again to a server that lost its replay cache). Bytes not
        marked, and every byte written after them, wait until the server has answered (one
        round trip); order is always kept. Once the server has answered it makes no
        difference."""
        if self._exc is not None:
            self._raise()
        if self._write_closed:
            raise LocalProtocolError("write after write_eof() or close()")
        if data:
            # (the core copies non-bytes)
            self.tunnel.send(self.cid, data, retry_safe=retry_safe)  # type: ignore[arg-type]
            self._driver.schedule_flush()

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    async def drain(self) -> None:
        """Wait until the unacknowledged bytes written drop to the low-water mark (if they are
        above the high-water mark). Raises if the connection failed."""
        if self._exc is not None:
            self._raise()
        if self.tunnel.buffered(self.cid) <= self._high:
            return
        waiter = self._driver.loop.create_future()
        self._drain_waiter = waiter
        self._driver.drainers.add(self)
        try:
            await waiter
        finally:
            self._drain_waiter = None
            self._driver.drainers.discard(self)
        if self._exc is not None:
            self._raise()

    def _check_drain(self) -> None:
        """Called by the driver after input that may have freed send buffer."""
        if self.tunnel.buffered(self.cid) <= self._low:
            self._wake_drain()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._driver.drainers.discard(self)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the marks ``drain()`` uses (as ``asyncio.WriteTransport``)."""
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low

    def get_write_buffer_size(self) -> int:
        return self.buffered

    @property
    def buffered(self) -> int:
        """Bytes written and not yet acknowledged by the peer (what ``drain()`` watches)."""
        return self.tunnel.buffered(self.cid) if not self._done else 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close: the peer reads end-of-stream after the data written; we can still read."""
        if self._write_closed or self._exc is not None:
            self._write_closed = True
            return
        self._write_closed = True
        self.tunnel.send_eof(self.cid)
        self._driver.closing.add(self)
        self._driver.schedule_flush()

    # --- tunnel keys -----------------------------------------------------------------------------

    def rekey(self) -> None:
        """Move this connection's tunnel (and every connection in it) to a new TID and new keys,
        erasing the old ones (nextTid). On the server side this asks the client to do it
        (rekeyNow). Tunnels also rekey on their own (``EndpointConfig.rekey_interval`` and
        ``rekey_packets``); the tunnel's ``tid`` and ``epoch`` show each move."""
        if self.tunnel.is_client:
            self.tunnel.rekey(monotonic())
        else:
            self.tunnel.request_rekey()
        self._driver.schedule_flush()

    # --- unreliable datagrams ------------------------------------------------------------------

    def send_datagram(self, data: bytes) -> None:
        """Send an unreliable message on this connection (no retransmission, no ordering)."""
        if self._exc is not None:
            self._raise()
        self.tunnel.send_datagram(self.cid, data)
        self._driver.schedule_flush()

    async def receive_datagram(self) -> bytes:
        """The next unreliable message (the oldest are dropped if they are not taken)."""
        while not self._datagrams:
            if self._exc is not None:
                self._raise()
            if self._done or self._closed:
                raise LocalProtocolError("connection is closed")
            waiter = self._driver.loop.create_future()
            self._datagram_waiter = waiter
            try:
                await waiter
            finally:
                self._datagram_waiter = None
        return self._datagrams.popleft()

    # --- acceptance and completion ---------------------------------------------------------------

    @property
    def accepted(self) -> bool:
        """The server acknowledged the packet that opened this connection and did not refuse
        it (what ``net``'s ``'connect'`` means): one round trip after ``connect``, or two for
        a connection that is not retry-safe on a new tunnel (its Create waits for the server's
        first answer). Always True on the server side."""
        return self._accepted

    async def wait_accepted(self) -> None:
        """Wait until the server has accepted this connection (``accepted``); returns at once
        if it has. Raises ``ConnectionRefused`` if it refused it, ``ConnectTimeoutError`` if a
        new tunnel got no answer, ``TunnelClosedError`` if the tunnel closed first (or
        ``ConnectionReset`` if the connection was reset first). Rarely, a server whose answer
        was full of other frames refuses in a later packet: the refusal then comes after."""
        if not self._accepted and not self._done:
            if self._accept_waiter is None:
                self._accept_waiter = self._driver.loop.create_future()
            await asyncio.shield(self._accept_waiter)
        if not self._accepted:
            self._raise()

    async def wait_done(self) -> None:
        """Wait, without reading, until the connection is over: both directions ended, or it
        was reset, refused, or its tunnel closed. Never raises for that: ``exception`` says
        why it failed, if it did. Data that arrived before a clean end stays readable."""
        if not self._done:
            if self._done_waiter is None:
                self._done_waiter = self._driver.loop.create_future()
            await asyncio.shield(self._done_waiter)

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """End our side (after the data written) and stop reading. Data the peer sends after
        this aborts the connection. Idempotent; ``wait_closed()`` waits for delivery."""
        if self._closed:
            return
        self._closed = True
        if self._done:
            return
        unread = len(self._buf)
        self._buf.clear()
        if self._exc is None and self.tunnel.state == OPEN:
            if unread:
                self.tunnel.consume(self.cid, unread)
            self.write_eof()
        self._wake_reader()
        if self._datagram_waiter is not None and not self._datagram_waiter.done():
            self._datagram_waiter.set_result(None)

    def abort(self) -> None:
        """Reset the connection at once: unsent data is dropped, the peer sees a reset."""
        if self._done:
            return
        self._closed = self._write_closed = True
        if self._exc is None and self.cid in self.tunnel.connections:
            self.tunnel.reset_connection(self.cid, C.ERR_APPLICATION)
            self._driver.schedule_flush()
        exc = ConnectionReset("connection aborted locally", C.ERR_APPLICATION)
        self._fail(exc)
        self._exc_reported = True

    def is_closing(self) -> bool:
        return self._closed or self._done

    async def wait_closed(self) -> None:
        """Wait until our side is delivered (our FIN acknowledged) or the connection is over.
        Raises the connection's error if it failed before that and the error was not already
        raised to the application."""
        if not self._send_done and not self._done:
            if self._close_waiter is None:
                self._close_waiter = self._driver.loop.create_future()
            await asyncio.shield(self._close_waiter)
        if self._exc is not None and not self._send_done and not self._exc_reported:
            self._raise()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            await self.wait_closed()
        else:
            # The body failed: do not pass half its output off as complete, do not wait for
            # delivery, and do not mask its exception.
            self.abort()

    # --- information ---------------------------------------------------------------------------

    @property
    def peer(self) -> Any:
        """The peer's UDP address (it may change: tunnels follow a moving peer)."""
        return self.tunnel.peer

    @property
    def stats(self) -> dict[str, Any]:
        """The tunnel's counters (rtt, cwnd, packets, bytes, losses) and this connection's."""
        stats = self.tunnel.stats()
        stats["cid"] = self.cid
        stats["service"] = self.service
        return stats

    @property
    def exception(self) -> BaseException | None:
        """Why the connection failed, or None."""
        return self._exc

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """As asyncio transports: ``peername``, ``sockname``, ``service``, ``cid``, ``stats``,
        ``tunnel``, ``server_identity`` (the server's Ed25519 key, client side),
        ``early_data_accepted``, ``retry_safe``, ``user`` (createAuth)."""
        if name == "peername":
            return self.tunnel.peer
        if name == "sockname":
            return self._driver.sockname
        if name == "service":
            return self.service
        if name == "cid":
            return self.cid
        if name == "stats":
            return self.stats
        if name == "tunnel":
            return self.tunnel
        if name == "server_identity":
            return self.tunnel.identity
        if name == "early_data_accepted":
            return self.tunnel.early_data_accepted
        if name == "retry_safe":
            return self.retry_safe
        if name == "user":
            return self.user
        return default

    def __repr__(self) -> str:
        state = "done" if self._done else "closing" if self._closed else "open"
        return f"<minimalt.Connection {self.service!r} cid={self.cid} {state} peer={self.peer}>"

    # --- driven by the endpoint driver ---------------------------------------------------------

    def _feed(self, data: bytes, end_stream: bool) -> None:
        if self._closed:
            if data and not self._done and not end_stream:
                # Nobody will read this: tell the peer, as TCP answers with RST.
                if self.cid in self.tunnel.connections:
                    self.tunnel.reset_connection(self.cid, C.ERR_APPLICATION)
                self._fail(ConnectionReset("data arrived after close()", C.ERR_APPLICATION))
                self._exc_reported = True
            elif data and self._exc is None:
                self.tunnel.consume(self.cid, len(data))
            if end_stream:
                self._eof = True
            return
        if data:
            self._buf += data
        if end_stream:
            self._eof = True
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed_datagram(self, data: bytes) -> None:
        queue = self._datagrams
        if queue is None:
            queue = self._datagrams = deque(maxlen=_DATAGRAM_QUEUE)
        queue.append(data)
        waiter = self._datagram_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_send_done(self) -> bool:
        """Called by the driver while we wait for our FIN to be acknowledged; True when it is."""
        if self._done:
            return True
        core = self.tunnel.connections.get(self.cid)
        if core is None or core.send.all_acked:
            self._on_send_done()
            return True
        return False

    def _on_send_done(self) -> None:
        if not self._send_done:
            self._send_done = True
            self._driver.closing.discard(self)
            self._wake_closer()

    def _on_accepted(self) -> None:
        """The core reports that the server acknowledged our Create without refusing it."""
        self._accepted = True
        waiter = self._accept_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_closed(self) -> None:
        """The core reports both directions finished cleanly."""
        # Every byte we sent was acknowledged, the Create's too: the server accepted (its
        # ConnectionAccepted may come later in the same batch of events, after we are gone).
        self._accepted = True
        self._eof = True
        self._send_done = True
        self._finish()

    def _fail(self, exc: BaseException) -> None:
        """The connection is over abnormally (refused, reset, tunnel closed, timeout)."""
        if self._done:
            return
        if self._exc is None:
            self._exc = exc
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._driver.forget(self)
        self._wake_reader()
        self._wake_drain()
        self._wake_closer()
        for waiter in (self._datagram_waiter, self._accept_waiter, self._done_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_closer(self) -> None:
        waiter = self._close_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class StreamReader:
    """The reading half of a ``Connection``, shaped like ``asyncio.StreamReader``."""

    __slots__ = ("at_eof", "connection", "read", "readexactly", "readline", "readuntil")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.read = connection.read
        self.readexactly = connection.readexactly
        self.readline = connection.readline
        self.readuntil = connection.readuntil
        self.at_eof = connection.at_eof

    def exception(self) -> BaseException | None:
        return self.connection.exception

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> bytes:
        line = await self.connection.readline()
        if not line:
            raise StopAsyncIteration
        return line

    def __repr__(self) -> str:
        return f"<minimalt.StreamReader {self.connection!r}>"


class StreamWriter:
    """The writing half of a ``Connection``, shaped like ``asyncio.StreamWriter``."""

    __slots__ = (
        "can_write_eof",
        "close",
        "connection",
        "drain",
        "get_extra_info",
        "is_closing",
        "wait_closed",
        "write",
        "write_eof",
        "writelines",
    )

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.write = connection.write
        self.writelines = connection.writelines
        self.drain = connection.drain
        self.write_eof = connection.write_eof
        self.can_write_eof = connection.can_write_eof
        self.close = connection.close
        self.is_closing = connection.is_closing
        self.wait_closed = connection.wait_closed
        self.get_extra_info = connection.get_extra_info

    @property
    def transport(self) -> Connection:
        return self.connection

    def __repr__(self) -> str:
        return f"<minimalt.StreamWriter {self.connection!r}>"
