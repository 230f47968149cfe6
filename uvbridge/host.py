"""The bridge host: one pipe to Node, its frames mapped onto minimalt's asyncio API.

``BridgeHost`` is the ``asyncio.Protocol`` on the pipe. It owns one ``minimalt.Client`` (so
every connection Node opens to one server shares a tunnel), the servers Node listens with, and
one ``Stream`` per connection. Handles name them on the wire: Node allocates odd ones (its
connects and servers), the host even ones (connections a server accepts).

Memory is bounded by two credits per stream (docs/bridge.md, "Credit"):

* Node -> host: Node may send ``window`` bytes of ``data`` it has not been granted back. The host
  writes them into the minimalt connection and grants them back once the connection's unsent
  and unacknowledged bytes are at most ``HIGH_WATER`` (else after ``drain()``), so a peer that
  stops reading stops the Node writer.
* host -> Node: the host reads from the minimalt connection only as far as Node has granted.
  Reading is what opens minimalt's flow-control window, so a Node reader that stops reading
  stops the remote writer.

The host exits when the pipe closes: open connections get ``close()`` (our side ends after the
data written, as a TCP stack does for a process that exits) and ``linger`` seconds to deliver
it, then every tunnel and socket is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .. import __version__
from ..aio.client import Client
from ..aio.connection import Connection
from ..aio.server import Server, serve
from ..proto.events import TunnelMigrated
from .codec import MAX_FRAME, FrameDecoder, FrameError, encode, encode_data
from .errors import error_fields

logger = logging.getLogger("minimalt.uvbridge")

#: The version this host speaks (the ``hello`` exchange picks it).
PROTOCOL_VERSION = 1
#: Initial credit of a stream in each direction, bytes (each side may announce its own).
WINDOW = 512 << 10
#: Largest ``d`` of a ``data`` frame either side sends.
MAX_DATA = 256 << 10
#: Node's data is granted back while the connection holds at most this many unsent and
#: unacknowledged bytes; past it, after ``drain()`` brings them down to ``LOW_WATER``.
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10
#: Seconds open connections get to deliver their last bytes once the pipe has closed.
DEFAULT_LINGER = 3.0
#: Received datagrams are dropped (as on a congested link) while more than this many bytes
#: wait to be written to the pipe.
DGRAM_BACKLOG = 4 << 20
#: Datagrams Node sends on a connection that is still being opened, kept until it opens.
PENDING_DATAGRAMS = 64
#: How often the watchdog checks that the parent process is still there, seconds.
WATCHDOG_PERIOD = 1.0


class BadFrame(Exception):
    """A frame with a missing or ill-typed field: answered with ``err`` (or logged)."""


def _field(frame: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = frame.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise BadFrame(f"frame {frame.get('t')!r} needs {name!r} of type {kind}")
    return value


def _address(addr: Any) -> list[Any] | None:
    if not addr:
        return None
    return [str(addr[0]), int(addr[1])]


class Stream:
    """One connection seen from the pipe: Node's operations in, credit-bounded data out."""

    __slots__ = (
        "_credit_waiter",
        "_draining",
        "_finishing",
        "_pending",
        "_reading",
        "_want_datagrams",
        "_watcher",
        "conn",
        "connect_rid",
        "credit",
        "failed",
        "finished",
        "h",
        "host",
        "read_done",
        "retry_safe",
        "stopped",
        "ungranted",
        "write_closed",
    )

    def __init__(self, host: BridgeHost, h: int, credit: int) -> None:
        self.host = host
        self.h = h
        self.conn: Connection | None = None
        #: Node's operations that arrived before the connection existed (connect is async).
        self._pending: list[tuple[str, Any]] | None = []
        #: Bytes we may still send to Node (Node grants more as its stream is read).
        self.credit = credit
        self._credit_waiter: asyncio.Future[None] | None = None
        #: Bytes Node sent that are in the connection and not yet granted back.
        self.ungranted = 0
        self._draining = False
        self.write_closed = False  # Node sent eof, close or abort
        self.stopped = False  # Node sent close or abort: it wants nothing more from us
        self.read_done = False  # we sent end or error, or Node stopped us
        self.failed = False
        self._finishing = False
        self._reading = False
        self._want_datagrams = False
        #: The ``connect`` request still waiting for its reply: sent once the server accepted
        #: the connection, or as ``err`` if it failed first (then no ``error`` frame).
        self.connect_rid: int | None = None
        #: What Node's next ``data`` is marked as (``retry-safe`` frame); None: the connection's
        #: own flag.
        self.retry_safe: bool | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: Done when the handle is released (``closed`` sent).
        self.finished: asyncio.Future[None] = host.loop.create_future()

    # --- the connection arrives ----------------------------------------------------------------

    def attach(self, conn: Connection, *, reading: bool = True) -> None:
        """Start serving ``conn``, replaying what Node sent while it was being opened.
        ``reading`` False: Node's data flows (0-RTT) but nothing is read for Node until
        ``start_reading()`` (once the server accepted: no ``data`` before ``'connect'``)."""
        self.conn = conn
        conn.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        pending, self._pending = self._pending, None
        # A paused Node reader gives the read loop no credit, so it would not notice a reset
        # or a closed tunnel: this does, at once.
        self._watcher = self.host.spawn(self._watch())
        if reading:
            self.start_reading()
        for op, arg in pending or ():
            if op == "data":
                self.write(arg)
            elif op == "retry-safe":
                self.retry_safe = arg
            elif op == "dgram":
                self.send_datagram(arg)
            elif op == "eof":
                self.eof()
            else:
                self.close(abort=op == "abort")
        self.grant()

    def start_reading(self) -> None:
        self._reading = True
        self.host.spawn(self._read_loop())
        if self._want_datagrams:
            self.host.spawn(self._datagram_loop())

    def discard(self) -> None:
        """The connection could not be opened (Node was told with ``err``)."""
        self._pending = None
        self.read_done = True
        if not self.finished.done():
            self.finished.set_result(None)

    # --- from Node -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._pending is not None:
            self._pending.append(("data", data))
            return
        if self.failed or self.write_closed:
            return  # the connection failed (Node has been told) or Node ended it: dropped
        assert self.conn is not None
        try:
            self.conn.write(data, retry_safe=self.retry_safe)
        except Exception as exc:
            self.fail(exc)
            return
        self.ungranted += len(data)
        self.host.dirty.add(self)

    def grant(self) -> None:
        """Give Node back the credit of the bytes the connection has taken, unless it holds
        too much unacknowledged data: then after ``drain()``."""
        if self._draining or not self.ungranted or self.failed or self.stopped:
            return
        conn = self.conn
        if conn is None:
            return
        if conn.buffered > HIGH_WATER:
            self._draining = True
            self.host.spawn(self._drain())
            return
        self.host.send({"t": "credit", "h": self.h, "n": self.ungranted})
        self.ungranted = 0

    async def _drain(self) -> None:
        assert self.conn is not None
        try:
            await self.conn.drain()
        except Exception as exc:
            self.fail(exc)
            return
        finally:
            self._draining = False
        self.grant()

    def eof(self) -> None:
        if self._pending is not None:
            self._pending.append(("eof", None))
            return
        if self.write_closed:
            return
        self.write_closed = True
        if not self.failed:
            assert self.conn is not None
            self.conn.write_eof()
        self._maybe_finish()

    def close(self, abort: bool = False) -> None:
        """Node closed its socket: end our side after the data written (or reset it) and
        deliver nothing more."""
        if self._pending is not None:
            self._pending.append(("abort" if abort else "close", None))
            return
        self.write_closed = self.stopped = True
        conn = self.conn
        assert conn is not None
        if abort:
            conn.abort()
        else:
            conn.close()
        self._wake_reader()
        self._maybe_finish()

    def mark_retry_safe(self, value: bool | None) -> None:
        """Node's next ``data`` is retry-safe (True), not (False), or as the connection says."""
        if self._pending is not None:
            self._pending.append(("retry-safe", value))
        else:
            self.retry_safe = value

    def add_credit(self, n: int) -> None:
        self.credit += n
        self._wake_reader()

    def send_datagram(self, data: bytes) -> None:
        if self._pending is not None:
            if sum(op == "dgram" for op, _ in self._pending) < PENDING_DATAGRAMS:
                self._pending.append(("dgram", data))
            return
        if self.failed or self.stopped:
            return
        assert self.conn is not None
        try:
            self.conn.send_datagram(data)
        except Exception as exc:  # too large, or the connection failed: unreliable, so dropped
            self.host.datagrams_dropped += 1
            logger.debug("uvbridge: datagram on %d dropped: %s", self.h, exc)

    def want_datagrams(self) -> None:
        if self._want_datagrams:
            return
        self._want_datagrams = True
        if self._reading:
            self.host.spawn(self._datagram_loop())

    # --- to Node -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        conn = self.conn
        assert conn is not None
        host = self.host
        try:
            while True:
                while self.credit <= 0 and not (self.stopped or self.failed):
                    waiter = self._credit_waiter = host.loop.create_future()
                    try:
                        await waiter
                    finally:
                        self._credit_waiter = None
                if self.stopped or self.failed:
                    break
                data = await conn.read(min(self.credit, MAX_DATA))
                if not data:
                    if not (self.stopped or self.failed):
                        host.send({"t": "end", "h": self.h})
                    break
                self.credit -= len(data)
                host.send_data("data", self.h, data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)
        self.read_done = True
        self._maybe_finish()

    async def _datagram_loop(self) -> None:
        conn = self.conn
        assert conn is not None
        host = self.host
        try:
            while True:
                data = await conn.receive_datagram()
                if host.backlog() > DGRAM_BACKLOG:
                    host.datagrams_dropped += 1
                    continue
                host.send_data("dgram", self.h, data)
        except asyncio.CancelledError:
            raise
        except Exception:
            return  # the connection is over; the read loop reports why

    async def _watch(self) -> None:
        conn = self.conn
        assert conn is not None
        await conn.wait_done()
        if conn.exception is not None and not self._finishing:
            self.fail(conn.exception)

    def _wake_reader(self) -> None:
        waiter = self._credit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """The connection failed: tell Node once (unless it closed it), and stop."""
        if self.failed:
            return
        self.failed = True
        rid = self.connect_rid
        if rid is not None:
            # Not accepted yet: the connect request fails (its reply is due even if Node
            # closed the socket meanwhile).
            self.connect_rid = None
            self.host.send({"t": "err", "id": rid, **error_fields(exc)})
        elif not self.stopped:
            self.host.send({"t": "error", "h": self.h, **error_fields(exc)})
        if self.conn is not None:
            self.conn.abort()  # no-op when the connection is already over
        self._wake_reader()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._finishing or not self.read_done or not (self.write_closed or self.failed):
            return
        self._finishing = True
        self.host.spawn(self._finish())

    async def _finish(self) -> None:
        conn = self.conn
        assert conn is not None
        conn.close()
        try:
            await conn.wait_closed()
        except Exception:  # noqa: S110 - already reported to Node, or Node closed the socket
            pass
        if self._watcher is not None:
            self._watcher.cancel()  # the peer may keep its side open: nothing left to report
        self.host.release(self)

    def __repr__(self) -> str:
        return f"<uvbridge.Stream {self.h} {self.conn!r}>"


class ServerHandle:
    """A ``minimalt.Server`` Node listens with; hands each connection to Node as ``accept``."""

    __slots__ = ("_idle", "closing", "h", "host", "server", "streams")

    def __init__(self, host: BridgeHost, h: int) -> None:
        self.host = host
        self.h = h
        self.server: Server | None = None
        self.streams: set[Stream] = set()
        self.closing = False
        self._idle: asyncio.Future[None] | None = None

    async def handle(self, conn: Connection) -> None:
        """The ``serve`` handler of every service: lives as long as the stream."""
        host = self.host
        if self.closing or host.shutting_down:
            conn.abort()
            return
        stream = Stream(host, host.allocate(), host.window)
        host.streams[stream.h] = stream
        self.streams.add(stream)
        host.send(
            {
                "t": "accept",
                "h": self.h,
                "c": stream.h,
                "service": conn.service,
                "remote": _address(conn.get_extra_info("peername")),
                "local": _address(conn.get_extra_info("sockname")),
            }
        )
        stream.attach(conn)
        try:
            await asyncio.shield(stream.finished)
        finally:
            self.streams.discard(stream)
            if not self.streams and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    def on_path_event(self, event: Any) -> None:
        """A client's tunnel moved to a new address (it passed the path check): tell Node the
        new remote address of each connection on that tunnel."""
        if not isinstance(event, TunnelMigrated):
            return
        remote = _address(event.new)
        for stream in self.streams:
            conn = stream.conn
            if conn is not None and conn.tunnel is event.tunnel and not stream.stopped:
                self.host.send({"t": "address", "h": stream.h, "remote": remote})

    def on_record(self, record: Any) -> None:
        self.host.send({"t": "record", "h": self.h, "record": record.to_text()})

    async def close(self) -> None:
        """As ``net.Server.close``: refuse new connections, wait for the open ones to end,
        then close the server."""
        self.closing = True
        server = self.server
        assert server is not None
        for name in server.services:
            server.remove_service(name)
        while self.streams:
            self._idle = self.host.loop.create_future()
            await self._idle
        await server.aclose()


class BridgeHost(asyncio.Protocol):
    """The protocol on the pipe to Node (see the module docstring and docs/bridge.md)."""

    def __init__(self, *, linger: float = DEFAULT_LINGER, window: int = WINDOW) -> None:
        self.loop = asyncio.get_running_loop()
        self.linger = linger
        #: Our initial credit for Node's data on each stream (announced in ``hello``).
        self.host_window = window
        #: Node's initial credit for our data on each stream (from its ``hello``).
        self.window = WINDOW
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self.servers: dict[int, ServerHandle] = {}
        #: Streams that took data from Node in the current batch of frames: granted after it.
        self.dirty: set[Stream] = set()
        self.datagrams_dropped = 0
        self.shutting_down = False
        self._decoder = FrameDecoder()
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._greeted = False
        self._client: Client | None = None
        self._next_handle = 2
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shutdown_task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] = self.loop.create_future()
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "data": self._on_data,
            "credit": self._on_credit,
            "eof": self._on_eof,
            "close": self._on_close,
            "abort": self._on_abort,
            "dgram": self._on_dgram,
            "dgram-on": self._on_dgram_on,
            "retry-safe": self._on_retry_safe,
            "connect": self._on_connect,
            "listen": self._on_listen,
            "unlisten": self._on_unlisten,
            "stats": self._on_stats,
        }

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FrameError as exc:
            logger.error("uvbridge: unusable pipe (%s): shutting down", exc)
            self.begin_shutdown("protocol error")
            if self.transport is not None:
                self.transport.close()
            return
        for frame in frames:
            self._dispatch(frame)
        if self.dirty:
            dirty = self.dirty
            self.dirty = set()
            for stream in dirty:
                stream.grant()

    def eof_received(self) -> bool:
        self.begin_shutdown("pipe closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._out.clear()
        self.begin_shutdown("pipe lost")

    # --- output --------------------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Queue one frame; frames queued in one turn of the loop go out in one write."""
        if self.transport is None:
            return
        data = encode(frame)
        self._out.append(data)
        self._out_size += len(data)
        self._schedule_flush()

    def send_data(self, kind: str, h: int, data: bytes) -> None:
        if self.transport is None:
            return
        head, payload = encode_data(kind, h, data)
        self._out.append(head)
        self._out.append(payload)
        self._out_size += len(head) + len(payload)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        self._out = []
        self._out_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)

    def backlog(self) -> int:
        """Bytes waiting to be written to the pipe."""
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + self._out_size

    # --- input ---------------------------------------------------------------------------------

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame["t"]
        if not self._greeted:
            self._on_hello(frame)
            return
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise BadFrame(f"unknown frame type {kind!r}")
            handler(frame)
        except BadFrame as exc:
            rid = frame.get("id")
            if isinstance(rid, int):
                self.send({"t": "err", "id": rid, "code": "EMLTBRIDGE", "message": str(exc)})
            else:
                logger.warning("uvbridge: ignored a frame: %s", exc)

    def _on_hello(self, frame: dict[str, Any]) -> None:
        versions = frame.get("v")
        if frame["t"] != "hello" or not isinstance(versions, list):
            logger.error("uvbridge: the first frame is not hello: shutting down")
            self.begin_shutdown("no hello")
            return
        if PROTOCOL_VERSION not in versions:
            self.send(
                {
                    "t": "err",
                    "code": "EMLTVERSION",
                    "message": f"the bridge speaks {PROTOCOL_VERSION}, Node offered {versions}",
                }
            )
            self.begin_shutdown("no common version")
            return
        window = frame.get("window")
        if isinstance(window, int) and window > 0:
            self.window = window
        self._greeted = True
        self.send(
            {
                "t": "hello",
                "v": PROTOCOL_VERSION,
                "pid": os.getpid(),
                "minimalt": __version__,
                "python": sys.version.split()[0],
                "window": self.host_window,
                "maxData": MAX_DATA,
                "maxFrame": MAX_FRAME,
                "maxDatagram": _max_datagram(),
            }
        )

    def _stream(self, frame: dict[str, Any]) -> Stream | None:
        """The stream a frame names; None if it is gone (frames may cross a close)."""
        return self.streams.get(_field(frame, "h", int))

    def _on_data(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.write(_field(frame, "d", bytes))

    def _on_credit(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        n = _field(frame, "n", int)
        if stream is not None and n > 0:
            stream.add_credit(n)

    def _on_eof(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.eof()

    def _on_close(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.close()

    def _on_abort(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.close(abort=True)

    def _on_dgram(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.send_datagram(_field(frame, "d", bytes))

    def _on_dgram_on(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        if stream is not None:
            stream.want_datagrams()

    def _on_retry_safe(self, frame: dict[str, Any]) -> None:
        stream = self._stream(frame)
        value = frame.get("v")
        if value is not None and not isinstance(value, bool):
            raise BadFrame("'v' must be true, false or nil")
        if stream is not None:
            stream.mark_retry_safe(value)

    def _new_handle(self, frame: dict[str, Any]) -> int:
        h = _field(frame, "h", int)
        if h <= 0 or h % 2 == 0 or h in self.streams or h in self.servers:
            raise BadFrame(f"handle {h} is not a fresh odd handle")
        return h

    def _on_connect(self, frame: dict[str, Any]) -> None:
        rid = _field(frame, "id", int)
        h = self._new_handle(frame)
        record = _field(frame, "record", (str, bytes))
        service = _field(frame, "service", str)
        timeout = frame.get("timeout")
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise BadFrame("'timeout' must be a number of seconds")
        stream = Stream(self, h, self.window)
        self.streams[h] = stream
        self.spawn(self._connect(rid, stream, record, service, frame, timeout))

    async def _connect(
        self,
        rid: int,
        stream: Stream,
        record: str | bytes,
        service: str,
        frame: dict[str, Any],
        timeout: float | None,
    ) -> None:
        try:
            if self._client is None:
                self._client = Client()
            options: dict[str, Any] = {}
            if timeout is not None:
                options["connect_timeout"] = timeout if timeout > 0 else None
            conn = await self._client.connect(
                record,
                service,
                retry_safe=bool(frame.get("retrySafe")),
                identity=frame.get("identity"),
                **options,
            )
        except Exception as exc:
            self.streams.pop(stream.h, None)
            stream.discard()
            self.send({"t": "err", "id": rid, **error_fields(exc)})
            return
        # Node's data flows at once (0-RTT); the reply, and so 'connect', waits until the
        # server accepted the connection, as net's 'connect' waits for the SYN-ACK.
        stream.connect_rid = rid
        stream.attach(conn, reading=False)
        try:
            await conn.wait_accepted()
        except Exception as exc:
            stream.fail(exc)  # replies err (ECONNREFUSED, ETIMEDOUT, ...) unless already done
        if stream.connect_rid is not None:
            stream.connect_rid = None
            self.send(
                {
                    "t": "ok",
                    "id": rid,
                    "local": _address(conn.get_extra_info("sockname")),
                    "remote": _address(conn.get_extra_info("peername")),
                    "earlyData": conn.retry_safe,
                }
            )
        stream.start_reading()  # (a failed stream's read loop ends at once)

    def _on_listen(self, frame: dict[str, Any]) -> None:
        rid = _field(frame, "id", int)
        h = self._new_handle(frame)
        services = _field(frame, "services", list)
        if not services or not all(isinstance(name, str) and name for name in services):
            raise BadFrame("'services' must be a non-empty list of names")
        advertise = frame.get("advertise")
        if isinstance(advertise, list) and not (
            len(advertise) == 2 and isinstance(advertise[0], str) and isinstance(advertise[1], int)
        ):
            raise BadFrame("'advertise' must be a host or [host, port]")
        handle = ServerHandle(self, h)
        self.servers[h] = handle
        self.spawn(self._listen(rid, handle, services, frame))

    async def _listen(
        self, rid: int, handle: ServerHandle, services: list[str], frame: dict[str, Any]
    ) -> None:
        options: dict[str, Any] = {}
        advertise = frame.get("advertise")
        if isinstance(advertise, list):  # [host, port]: the port too (behind a NAT or a relay)
            advertise = (str(advertise[0]), advertise[1])
        if isinstance(frame.get("keyLifetime"), int):
            options["key_lifetime"] = frame["keyLifetime"]
        if frame.get("register"):
            # Register the record under the identity's name with the configured directory
            # (MINIMALT_DIRECTORY, inherited from Node), before answering, and after rotations.
            options["directory"] = True
        try:
            server = await serve(
                services={name: handle.handle for name in services},
                host=frame.get("host") or "127.0.0.1",
                port=int(frame.get("port") or 0),
                identity=frame.get("identity"),
                advertise=advertise,
                on_record=handle.on_record,
                **options,
            )
        except Exception as exc:
            self.servers.pop(handle.h, None)
            self.send({"t": "err", "id": rid, **error_fields(exc)})
            return
        handle.server = server
        server.on_path_event = handle.on_path_event
        if self.shutting_down:
            server.close()
            return
        self.send(
            {
                "t": "ok",
                "id": rid,
                "address": _address(server.address),
                "record": server.record.to_text(),
                "identity": server.identity.public.hex(),
            }
        )

    def _on_unlisten(self, frame: dict[str, Any]) -> None:
        rid = _field(frame, "id", int)
        handle = self.servers.get(_field(frame, "h", int))
        if handle is None or handle.server is None or handle.closing:
            raise BadFrame("no such server")
        self.spawn(self._unlisten(rid, handle))

    async def _unlisten(self, rid: int, handle: ServerHandle) -> None:
        try:
            await handle.close()
        finally:
            self.servers.pop(handle.h, None)
            self.send({"t": "ok", "id": rid})

    def _on_stats(self, frame: dict[str, Any]) -> None:
        rid = _field(frame, "id", int)
        h = _field(frame, "h", int)
        stream = self.streams.get(h)
        server = self.servers.get(h)
        if stream is not None and stream.conn is not None:
            stats = stream.conn.stats
        elif server is not None and server.server is not None:
            stats = server.server.stats()
        else:
            raise BadFrame(f"no open connection or server {h}")
        stats["bridge"] = {"datagramsDropped": self.datagrams_dropped, "backlog": self.backlog()}
        self.send({"t": "ok", "id": rid, "stats": stats})

    # --- handles and tasks ---------------------------------------------------------------------

    def allocate(self) -> int:
        h = self._next_handle
        self._next_handle += 2
        return h

    def release(self, stream: Stream) -> None:
        """The stream is over on both sides: free its handle and tell Node."""
        if self.streams.get(stream.h) is stream:
            del self.streams[stream.h]
            self.send({"t": "closed", "h": stream.h})
        if not stream.finished.done():
            stream.finished.set_result(None)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("uvbridge: internal error", exc_info=task.exception())

    # --- lifetime ------------------------------------------------------------------------------

    def begin_shutdown(self, why: str) -> None:
        """Stop serving Node (idempotent): see ``_shutdown``."""
        if self._shutdown_task is None:
            logger.info("uvbridge: shutting down (%s)", why)
            self._shutdown_task = self.loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        self.shutting_down = True
        # Like a process exit on TCP: each open connection ends after the data written.
        for stream in list(self.streams.values()):
            if stream.conn is not None and not stream.stopped:
                stream.close()
        waiting = [s.finished for s in self.streams.values() if not s.finished.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=self.linger)
        closing: list[Coroutine[Any, Any, None]] = []
        for handle in self.servers.values():
            if handle.server is not None:
                closing.append(handle.server.aclose())
        if self._client is not None:
            closing.append(self._client.aclose())
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if closing:
            await asyncio.wait(
                [self.loop.create_task(c) for c in closing], timeout=max(1.0, self.linger)
            )
        self._flush()
        if self.transport is not None:
            self.transport.close()
        if not self._done.done():
            self._done.set_result(None)

    async def wait_done(self) -> None:
        await self._done


def _max_datagram() -> int:
    """Largest message ``send_datagram`` takes with the default configuration."""
    from ..proto.config import EndpointConfig

    return EndpointConfig().max_datagram_size - 100


async def serve_fd(
    fd: int, *, parent_pid: int | None = None, linger: float = DEFAULT_LINGER
) -> None:
    """Serve Node on the connected Unix stream socket ``fd`` until it closes (or the parent
    process ``parent_pid`` is gone)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)
    host = BridgeHost(linger=linger)
    await loop.connect_accepted_socket(lambda: host, sock)
    watchdog: asyncio.TimerHandle | None = None

    def check_parent() -> None:
        nonlocal watchdog
        if os.getppid() != parent_pid:
            host.begin_shutdown("parent process exited")
        else:
            watchdog = loop.call_later(WATCHDOG_PERIOD, check_parent)

    if parent_pid:
        watchdog = loop.call_later(WATCHDOG_PERIOD, check_parent)
    try:
        import signal

        loop.add_signal_handler(signal.SIGTERM, host.begin_shutdown, "SIGTERM")
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
        pass
    try:
        await host.wait_done()
    finally:
        if watchdog is not None:
            watchdog.cancel()
