"""Servers: ``serve(handler, service=...)`` binds a UDP socket and runs ``handler(conn)`` per
connection, for as many services as you add, all on one endpoint.

The server's long-term identity signs a ``ServerRecord`` (address, port, identity key, the
current ephemeral key and its expiry): the record is what a client needs to reach the server
with 0-RTT. Ephemeral keys are made fresh at start and rotated every half lifetime (the core's
previous/current/next scheme); a client with an older record is still served, or answered with
the current record, so rotation (or a restart) never costs it more than one round trip.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..proto.config import EndpointConfig
from ..proto.endpoint import Endpoint
from ..proto.records import ServerKeys, ServerRecord
from .client import _Opening
from .connection import Connection
from .driver import EndpointDriver
from .errors import MinimaLTError
from .identity import Identity

if TYPE_CHECKING:
    from ..directory.config import DirectoryConfig
    from .directory import DirectoryClient, Registrar

logger = logging.getLogger("minimalt")

Handler = Callable[[Connection], Awaitable[Any]]

#: Lifetime of an ephemeral key (and of the records naming it), in seconds. Keys rotate every
#: half lifetime.
DEFAULT_KEY_LIFETIME = 3600
#: A rotated-out key is still accepted this many seconds past its turn as current key.
ROTATION_GRACE = 60.0


class Server:
    """A running server (see ``serve``). An async context manager; ``close()`` closes every
    tunnel (clients are told), cancels the handlers and releases the socket."""

    def __init__(
        self,
        driver: EndpointDriver,
        keys: ServerKeys,
        identity: Identity,
        services: dict[str, Handler],
        *,
        advertise: str | tuple[str, int] | None,
        key_lifetime: int,
        on_record: Callable[[ServerRecord], Any] | None,
        rotation_interval: float | None = None,
        rotation_grace: float = ROTATION_GRACE,
    ) -> None:
        self._driver = driver
        self._keys = keys
        self.identity = identity
        self._services = services
        self._advertise = advertise
        self.key_lifetime = key_lifetime
        self._rotation_interval = rotation_interval
        #: Seconds a rotated-out key is still accepted (its record's expiry).
        self.rotation_grace = rotation_grace
        #: Called with the new record after every key rotation (e.g. to republish it).
        self.on_record = on_record
        #: Keeps the record registered with a directory (``serve(directory=...)``), or None.
        self.registrar: Registrar | None = None
        self._prune: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # Publishing the address lets the core hand our current record to clients that come
        # with an older one (in-band, or in answer to a first packet boxed to a key we dropped).
        if isinstance(advertise, tuple):
            keys.publish(advertise[0], int(advertise[1]))
        else:
            keys.publish(advertise or self.address[0], self.port)
        self._rotation = driver.loop.call_later(self.rotation_interval, self._rotate_timer)
        driver.on_connection = self._on_connection

    # --- what clients need ---------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the UDP socket is bound to."""
        sockname = self._driver.sockname
        return (sockname[0], sockname[1])

    @property
    def port(self) -> int:
        return int(self._driver.sockname[1])

    @property
    def record(self) -> ServerRecord:
        """The signed record for the current ephemeral key (``to_text()``, ``to_bytes()``)."""
        return self._keys.current_record()

    @property
    def rotation_interval(self) -> float:
        """Seconds between key rotations: as given to ``serve``, else half the key lifetime."""
        if self._rotation_interval is not None:
            return self._rotation_interval
        return max(1.0, self.key_lifetime / 2)

    def rotate_keys(self) -> ServerRecord:
        """Rotate the ephemeral keys (previous <- current <- next <- fresh; expired private keys
        are erased). Clients holding the previous record are still served and handed the new
        one in-band; a client holding an older one gets it in answer to its first packet.
        Returns (and passes to ``on_record``) the new record."""
        self._keys.rotate(
            os.urandom,
            time.time(),
            interval=self.rotation_interval,
            grace=self.rotation_grace,  # expiries are rounded up: the grace never shrinks
        )
        self._schedule_prune()
        record = self._keys.current_record()
        if self.registrar is not None:
            self.registrar.schedule(record)
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _schedule_prune(self) -> None:
        """Erase each rotated-out private key the moment it expires, not at a later rotation
        (forward secrecy: an expired key is of no use to us and of much use to a thief)."""
        if self._prune is not None:
            self._prune.cancel()
            self._prune = None
        now = time.time()
        keys = self._keys
        keys.prune(now)
        expiries = [
            key.expires
            for kid in keys.key_ids
            if (key := keys.lookup(kid, now)) is not None and key is not keys.current
        ]
        if expiries:
            delay = max(0.0, min(expiries) - now)
            self._prune = self._driver.loop.call_later(delay, self._prune_keys)

    def _prune_keys(self) -> None:
        self._prune = None
        self._schedule_prune()

    def _rotate_timer(self) -> None:
        self._rotation = self._driver.loop.call_later(self.rotation_interval, self._rotate_timer)
        try:
            self.rotate_keys()
        except Exception:  # pragma: no cover - a failing on_record callback must not stop us
            logger.exception("minimalt: key rotation failed")

    # --- services ------------------------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        return sorted(self._services)

    def add_service(self, name: str, handler: Handler) -> None:
        """Accept connections to ``name``, each handled by ``await handler(conn)``."""
        if not name or len(name.encode()) > 255:
            raise ValueError("a service name is 1 to 255 bytes")
        self._services[name] = handler
        self._driver.endpoint.config.services.add(name)

    def remove_service(self, name: str) -> None:
        """Refuse new connections to ``name`` (open ones continue)."""
        self._services.pop(name, None)
        self._driver.endpoint.config.services.discard(name)

    def _on_connection(self, conn: Connection) -> None:
        handler = self._services.get(conn.service)
        if handler is None:
            conn.abort()
            return
        task = self._driver.loop.create_task(self._run(handler, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: Handler, conn: Connection) -> None:
        try:
            await handler(conn)
        except asyncio.CancelledError:
            conn.abort()
            raise
        except (MinimaLTError, ConnectionError, asyncio.IncompleteReadError) as exc:
            # The connection (or tunnel) failed under the handler: routine for a network server.
            logger.debug("minimalt: %r ended: %s", conn, exc)
            conn.abort()
        except Exception:
            logger.exception("minimalt: handler of service %r failed", conn.service)
            conn.abort()
        else:
            conn.close()

    # --- monitoring ----------------------------------------------------------------------------

    @property
    def tunnels(self) -> list[Any]:
        return self._driver.tunnels

    @property
    def endpoint(self) -> Endpoint:
        """The core ``Endpoint``: drop counters by reason (``drops``), puzzle statistics
        (``puzzles.stats``), the 0-RTT replay cache (``replay_cache``), tunnels by TID."""
        return self._driver.endpoint

    @property
    def on_path_event(self) -> Callable[[Any], Any] | None:
        """Called with each ``TunnelMigrated`` (a client's new address passed its path check)
        and ``TunnelRekeyed`` (a tunnel moved to a new TID) event, for monitoring."""
        return self._driver.on_path_event

    @on_path_event.setter
    def on_path_event(self, callback: Callable[[Any], Any] | None) -> None:
        self._driver.on_path_event = callback

    def stats(self) -> dict[str, Any]:
        """Endpoint counters (datagrams, drops by reason), tunnels and running handlers."""
        stats = self._driver.endpoint.stats()
        stats["handlers"] = len(self._tasks)
        return stats

    # --- lifetime ------------------------------------------------------------------------------

    def is_serving(self) -> bool:
        return not self._closed

    def close(self) -> None:
        """Close every tunnel (clients read ``TunnelClosedError``), cancel the handlers and
        release the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rotation.cancel()
        if self._prune is not None:
            self._prune.cancel()
        self._driver.close("server shutting down")
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        await self._driver.wait_closed()
        if self.registrar is not None:
            await self.registrar.aclose()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def serve_forever(self) -> None:
        """Wait until the server is closed (cancelling this closes it)."""
        try:
            await self._driver.wait_closed()
        except asyncio.CancelledError:
            await self.aclose()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<minimalt.Server {self.services} at {self.address} {state}>"


def serve(
    handler: Handler | None = None,
    service: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    identity: Identity | str | os.PathLike[str] | None = None,
    *,
    services: dict[str, Handler] | None = None,
    config: EndpointConfig | None = None,
    advertise: str | tuple[str, int] | None = None,
    key_lifetime: int = DEFAULT_KEY_LIFETIME,
    reuse_port: bool | None = None,
    on_record: Callable[[ServerRecord], Any] | None = None,
    rotation_interval: float | None = None,
    rotation_grace: float = ROTATION_GRACE,
    directory: DirectoryClient | DirectoryConfig | bool | str | None = None,
) -> _Opening[Server]:
    """Start a server on UDP ``host``:``port`` (0: any free port) running ``handler(conn)`` for
    each connection to ``service``; ``services`` maps more names to handlers.

    ``identity`` is an ``Identity``, the path of an identity file, or None for a throw-away one.
    ``advertise`` is the host (or ``(host, port)``, e.g. behind a NAT) put in the record when
    it is not the bound address. Ephemeral keys rotate every ``rotation_interval`` seconds
    (default: half ``key_lifetime``); a rotated-out key is accepted ``rotation_grace`` seconds
    more, then erased. ``directory``: register the record (under the identity's name) with a
    directory at start, and again after every rotation: a ``DirectoryClient``, a
    ``DirectoryConfig``, a client configuration path, or True for the configured directory;
    a refused registration (the name belongs to another identity) fails ``serve``.
    ``server = await minimalt.serve(...)`` or ``async with minimalt.serve(...) as server``.
    """
    table: dict[str, Handler] = dict(services or {})
    if handler is not None:
        if service is None:
            raise TypeError("serve(handler, service=...) needs the service name to answer")
        table[service] = handler
    if not table:
        raise TypeError("serve() needs a handler and a service name (or services={...})")

    async def open_() -> Server:
        ident = identity
        if ident is None:
            ident = Identity.generate("minimalt")
        elif not isinstance(ident, Identity):
            ident = Identity.load(ident)
        cfg = config if config is not None else EndpointConfig()
        cfg.services = set(cfg.services) | set(table)
        lifetime = key_lifetime
        if rotation_interval is not None:
            # The first key lives as long as any later one: current for one interval, then
            # previous for the grace period (not a whole key_lifetime).
            lifetime = math.ceil(rotation_interval + rotation_grace)
        keys = ident.server_keys(lifetime=lifetime)
        endpoint = Endpoint(
            cfg,
            random=os.urandom,
            server_keys=keys,
            wall_offset=time.time() - time.monotonic(),
        )
        driver = await EndpointDriver.create(endpoint, (host, port), reuse_port=reuse_port)
        advertised = advertise
        if advertised is None and ipaddress.ip_address(driver.sockname[0]).is_unspecified:
            advertised = "127.0.0.1" if ":" not in driver.sockname[0] else "::1"
            logger.warning(
                "minimalt: serving on a wildcard address; the record names %s (pass advertise=)",
                advertised,
            )
        server = Server(
            driver,
            keys,
            ident,
            table,
            advertise=advertised,
            key_lifetime=key_lifetime,
            on_record=on_record,
            rotation_interval=rotation_interval,
            rotation_grace=rotation_grace,
        )
        if directory is not None and directory is not False:
            from .directory import Registrar

            try:
                server.registrar = Registrar.create(directory, ident)
                await server.registrar.register(server.record)
            except BaseException:
                await server.aclose()
                raise
        return server

    return _Opening(open_)
