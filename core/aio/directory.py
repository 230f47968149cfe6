"""The directory service on asyncio: ``serve_directory`` runs one, ``DirectoryClient`` asks one,
``Registrar`` keeps a server's record registered across key rotations.

The logic is ``minimalt.directory.protocol`` (sans I/O); this module only moves its bytes over
MinimaLT connections: one request per connection, retry-safe, so a lookup rides in the first
packet of a new tunnel once the directory's own record is known (1 RTT), and over an open
tunnel it is one round trip too. The first contact knows only the directory's address and
long-term key: ``connect_bootstrap`` fetches its record on the way (1 RTT more, once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from ..directory.config import (
    ENV_KEY,
    NOT_CONFIGURED,
    DirectoryConfig,
    format_address,
    load_directory_config,
    parse_address,
    parse_key,
)
from ..directory.errors import (
    DirectoryConfigError,
    DirectoryError,
    DirectoryUnavailable,
    RegistrationRefused,
)
from ..directory.protocol import (
    MAX_MESSAGE,
    SERVICE,
    DirectoryService,
    RecordCache,
    lookup_request,
    parse_lookup_answer,
    parse_register_answer,
    register_request,
)
from ..directory.store import Store, open_store
from ..proto.config import EndpointConfig
from ..proto.crypto import SigningKeyPair
from ..proto.records import ServerRecord
from .client import Client, _Opening
from .connection import Connection
from .errors import ConnectionRefused, ConnectionReset, TunnelClosedError
from .identity import Identity
from .server import Server, serve

logger = logging.getLogger("minimalt")

__all__ = [
    "SERVICE",
    "DirectoryClient",
    "DirectoryServer",
    "Registrar",
    "serve_directory",
]

#: Seconds a directory request may take before it fails with ``DirectoryUnavailable``.
DEFAULT_TIMEOUT = 10.0
#: Seconds the directory waits for a client to send its whole request.
REQUEST_TIMEOUT = 10.0


async def _read_message(conn: Connection) -> bytes:
    """Everything until the peer ends its side, at most ``MAX_MESSAGE`` bytes."""
    parts: list[bytes] = []
    size = 0
    while chunk := await conn.read(MAX_MESSAGE + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise DirectoryError(f"message larger than {MAX_MESSAGE} bytes", "bad_request")
    return b"".join(parts)


# --- the service -------------------------------------------------------------------------------


class DirectoryServer:
    """A running directory (see ``serve_directory``): a MinimaLT ``Server`` for service
    ``minimalt.directory`` over a ``Store``. An async context manager."""

    def __init__(self, server: Server, service: DirectoryService, *, owns_store: bool) -> None:
        #: The MinimaLT server it runs on (records, rotation, stats).
        self.server = server
        #: The sans-I/O logic and its counters.
        self.service = service
        self._owns_store = owns_store

    @property
    def store(self) -> Store:
        return self.service.store

    @property
    def identity(self) -> Identity:
        return self.server.identity

    @property
    def record(self) -> ServerRecord:
        """The directory's own signed record (clients learn it at first contact)."""
        return self.server.record

    @property
    def address(self) -> tuple[str, int]:
        """The UDP address the directory is bound to."""
        return self.server.address

    @property
    def client_config(self) -> DirectoryConfig:
        """What a client needs to use this directory: its advertised address and its key."""
        record = self.record
        return DirectoryConfig(record.host, record.port, self.identity.public)

    def stats(self) -> dict[str, Any]:
        stats = self.server.stats()
        stats["directory"] = dict(self.service.counters)
        return stats

    def close(self) -> None:
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()
        if self._owns_store:
            self.service.store.close()
            self._owns_store = False

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> DirectoryServer:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<minimalt DirectoryServer at {self.address} names={len(self.store.names())}>"


def serve_directory(
    host: str = "127.0.0.1",
    port: int = 0,
    identity: Identity | str | os.PathLike[str] | None = None,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    bindings: Mapping[str, bytes] | None = None,
    advertise: str | None = None,
    config: EndpointConfig | None = None,
    **serve_options: Any,
) -> _Opening[DirectoryServer]:
    """Run a directory on UDP ``host``:``port``.

    ``identity``: its long-term key (an ``Identity`` or an identity file; None: a throw-away
    one); clients are configured with its public key. ``store``: a ``Store``, an SQLite path,
    ``":memory:"``, or None for ``~/.config/minimalt/directory.sqlite3``. ``bindings`` reserves
    names for identities (name -> 32-byte Ed25519 public key). Other options go to ``serve``.

    ``directory = await serve_directory(...)`` or ``async with serve_directory(...) as d``.
    """

    async def open_() -> DirectoryServer:
        ident = identity if identity is not None else Identity.generate("directory")
        the_store, owned = open_store(store)
        try:
            service = DirectoryService(the_store, bindings=bindings)

            async def handle(conn: Connection) -> None:
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        request = await _read_message(conn)
                except (DirectoryError, TimeoutError):
                    conn.abort()
                    return
                conn.write(service.handle(request, conn.user, time.time()))

            server = await serve(
                handle,
                service=SERVICE,
                host=host,
                port=port,
                identity=ident,
                advertise=advertise,
                config=config,
                **serve_options,
            )
        except BaseException:
            if owned:
                the_store.close()
            raise
        return DirectoryServer(server, service, owns_store=owned)

    return _Opening(open_)


# --- the client --------------------------------------------------------------------------------


class DirectoryClient:
    """Asks one directory: ``await lookup(name)``, ``await register(record, identity)``.

    ``address`` and ``identity`` (the directory's Ed25519 public key: bytes, hex or base64url)
    come from configuration (``from_config``). ``record``: the directory's signed record if
    already known; otherwise the first request fetches it (one round trip more, once).
    Lookups are cached until the record's expiry. ``client``: the ``Client`` to use (its
    tunnels are shared); without it, one of its own, closed by ``aclose()``.
    """

    def __init__(
        self,
        address: tuple[str, int] | str,
        identity: bytes | str,
        *,
        client: Client | None = None,
        record: ServerRecord | None = None,
        cache: RecordCache | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.address: tuple[str, int] = (
            parse_address(address) if isinstance(address, str) else (address[0], int(address[1]))
        )
        self.identity = parse_key(identity) if isinstance(identity, str) else bytes(identity)
        if len(self.identity) != 32:
            raise DirectoryConfigError("a directory key is 32 bytes")
        if record is not None and record.identity != self.identity:
            raise DirectoryConfigError("the directory record is signed by another key")
        #: The directory's own record, once known (learned at first contact, refreshed in-band).
        self.record = record
        self.cache = cache if cache is not None else RecordCache()
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        #: Requests sent, by kind, and how many needed the first-contact round trip.
        self.counters: dict[str, int] = {}

    @classmethod
    def from_config(
        cls,
        config: DirectoryConfig | str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> DirectoryClient:
        """A client for the configured directory: ``config`` (a ``DirectoryConfig`` or the path
        of a client configuration file), else the environment, else ``client.json``.
        ``DirectoryConfigError`` if none is configured."""
        if not isinstance(config, DirectoryConfig):
            config = load_directory_config(config, env=env)
        if config is None:
            raise DirectoryConfigError(NOT_CONFIGURED)
        return cls(config.address, config.identity, **options)

    @property
    def label(self) -> str:
        return format_address(*self.address)

    async def lookup(self, name: str, *, use_cache: bool = True) -> ServerRecord:
        """The current record of the server called ``name``: from the cache while it has not
        expired, else from the directory (checked: signed by the identity it names, not
        expired, for this name). ``NameNotFound`` if the directory has none; ``RecordError``
        if it answers with a record that must not be used; ``DirectoryUnavailable`` if it
        cannot be reached."""
        now = time.time()
        if use_cache:
            cached = self.cache.get(name, now)
            if cached is not None:
                self._count("cache_hits")
                return cached
        answer = await self._exchange(lookup_request(name))
        record = parse_lookup_answer(answer, name, time.time())
        self.cache.put(name, record)
        self._count("lookups")
        return record

    async def register(self, record: ServerRecord, identity: Identity | SigningKeyPair) -> str:
        """Register ``record`` under its name, on a connection opened as ``identity`` (the
        record's signer). Returns ``"stored"`` or ``"unchanged"``; ``RegistrationRefused``
        (``code``: forbidden, stale, invalid, unauthenticated) otherwise."""
        signing = identity.signing if isinstance(identity, Identity) else identity
        if signing.public != record.identity:
            raise RegistrationRefused(
                "the record is signed by another identity than the one registering it",
                "unauthenticated",
            )
        answer = await self._exchange(register_request(record), user=signing)
        self._count("registrations")
        return parse_register_answer(answer)

    async def _get_client(self) -> Client:
        if self._client is None:
            self._client = Client(connect_timeout=self.timeout)
        return self._client

    async def _exchange(self, request: bytes, *, user: SigningKeyPair | None = None) -> bytes:
        client = await self._get_client()
        record = self.record
        if record is not None and time.time() >= record.expires:
            record = self.record = None
        try:
            if record is not None:
                conn = await client.connect(
                    record, SERVICE, retry_safe=True, user=user, connect_timeout=self.timeout
                )
            else:
                self._count("first_contacts")
                conn = await client.connect(
                    self.address,
                    SERVICE,
                    identity=self.identity,
                    retry_safe=True,
                    user=user,
                    connect_timeout=self.timeout,
                )
        except OSError as exc:
            raise DirectoryUnavailable(f"directory {self.label}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                conn.write(request)
                conn.write_eof()
                answer = await _read_message(conn)
        except TimeoutError as exc:  # ConnectTimeoutError too: no answer to the first flight
            hint = "" if record is not None else f", and is {ENV_KEY} its key"
            raise DirectoryUnavailable(
                f"no answer from the directory at {self.label} within {self.timeout:g} s "
                f"(is it running{hint}?)"
            ) from exc
        except ConnectionRefused as exc:
            raise DirectoryUnavailable(
                f"{self.label} is not a directory (it refused service {SERVICE!r}): {exc}"
            ) from exc
        except (ConnectionReset, TunnelClosedError) as exc:
            raise DirectoryUnavailable(f"directory {self.label}: {exc}") from exc
        finally:
            conn.close()
        learned = client.learned_record(self.identity)
        if learned is not None and (self.record is None or learned.expires > self.record.expires):
            self.record = learned
        return answer

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    async def aclose(self) -> None:
        """Close the client this directory client made (not one it was given)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "record known" if self.record is not None else "first contact pending"
        return f"<minimalt DirectoryClient {self.label} {state}, {len(self.cache)} cached>"


# --- keeping a server registered ---------------------------------------------------------------


class Registrar:
    """Keeps one server's record registered with a directory: ``await register(record)`` at
    start (refusals raise, so a taken name stops the server), then ``schedule(record)`` after
    every key rotation, retried in the background while the directory is unreachable."""

    #: Seconds between attempts while the directory cannot be reached.
    RETRY_DELAY = 2.0

    def __init__(self, directory: DirectoryClient, identity: Identity, *, owns: bool) -> None:
        self.directory = directory
        self.identity = identity
        self._owns = owns
        self._task: asyncio.Task[None] | None = None
        #: The last record the directory accepted.
        self.registered: ServerRecord | None = None

    @classmethod
    def create(
        cls, directory: DirectoryClient | DirectoryConfig | bool | str, identity: Identity
    ) -> Registrar:
        """From a ``DirectoryClient`` (kept open), or a configuration: ``True`` (the
        environment or ``client.json``), a ``DirectoryConfig`` or a client config path."""
        if isinstance(directory, DirectoryClient):
            return cls(directory, identity, owns=False)
        config = None if directory is True else directory
        return cls(DirectoryClient.from_config(config), identity, owns=True)  # type: ignore[arg-type]

    async def register(self, record: ServerRecord) -> str:
        status = await self.directory.register(record, self.identity)
        self.registered = record
        return status

    def schedule(self, record: ServerRecord) -> None:
        """Register ``record`` in the background (replacing a pending older one)."""
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._keep_trying(record))

    async def _keep_trying(self, record: ServerRecord) -> None:
        while time.time() < record.expires:
            try:
                await self.register(record)
                return
            except RegistrationRefused as exc:
                logger.error("minimalt: the directory refused %r: %s", record.name, exc)
                return
            except (DirectoryError, OSError) as exc:
                logger.warning(
                    "minimalt: registering %r with directory %s failed (%s); retrying",
                    record.name,
                    self.directory.label,
                    exc,
                )
            await asyncio.sleep(self.RETRY_DELAY)

    async def wait(self) -> None:
        """Wait for the pending background registration, if any."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._owns:
            await self.directory.aclose()
