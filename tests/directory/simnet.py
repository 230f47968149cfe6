"""A directory, servers and clients on the simulated network (``minimalt.testing.sim``): the
directory protocol's bytes (``minimalt.directory.protocol``) carried by the core's tunnels on
the virtual clock, so round trips can be counted exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minimalt.directory.protocol import (
    SERVICE,
    DirectoryService,
    RecordCache,
    lookup_request,
    parse_lookup_answer,
    parse_register_answer,
    register_request,
)
from minimalt.directory.store import MemoryStore
from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.records import ServerKeys, ServerRecord
from minimalt.proto.tunnel import Tunnel
from minimalt.testing.sim import Link, Simulation

DIRECTORY = ("10.0.0.53", 53)
ALPHA = ("10.0.0.1", 4000)
BETA = ("10.0.0.2", 4000)
ONE_WAY = 0.05
RTT = 2 * ONE_WAY

Service = Callable[[bytes, "bytes | None", float], bytes]


class App:
    """One endpoint's application. Serves ``services`` (one request per connection: the bytes
    up to the client's end of stream in, one answer out) and collects the answers to the
    requests it makes itself."""

    def __init__(self, services: dict[str, Service] | None = None) -> None:
        self.services = services or {}
        self.events: list[tuple[float, Any]] = []
        self._opened: dict[tuple[Tunnel, int], E.ConnectionOpened] = {}
        self._received: dict[tuple[Tunnel, int], bytearray] = {}
        self.answers: dict[tuple[Tunnel, int], bytes] = {}

    def handler(self, sim: Simulation, endpoint: Endpoint, event: Any) -> None:
        self.events.append((sim.now, event))
        if isinstance(event, E.ConnectionOpened):
            self._opened[(event.tunnel, event.cid)] = event
        elif isinstance(event, E.DataReceived):
            key = (event.tunnel, event.cid)
            self._received.setdefault(key, bytearray()).extend(event.data)
            event.tunnel.consume(event.cid, len(event.data))
            if not event.end_stream:
                return
            data = bytes(self._received.pop(key))
            opened = self._opened.pop(key, None)
            if opened is None:  # our own request's answer
                self.answers[key] = data
                return
            answer = self.services[opened.service](data, opened.user, endpoint.wall_time(sim.now))
            event.tunnel.send(event.cid, answer, end_stream=True)

    def of(self, kind: type) -> list[Any]:
        return [event for _, event in self.events if isinstance(event, kind)]


def exchange(
    sim: Simulation, app: App, tunnel: Tunnel, service: str, request: bytes, user: Any = None
) -> bytes:
    """Send one retry-safe request on a new connection and run until its answer has ended."""
    cid = tunnel.open_connection(service, retry_safe=True, user=user)
    tunnel.send(cid, request, end_stream=True)
    key = (tunnel, cid)
    assert sim.run(lambda: key in app.answers, timeout=30), f"no answer on {service!r}"
    return app.answers.pop(key)


def echo(request: bytes, user: bytes | None, now_unix: float) -> bytes:
    return request


class Network:
    """A directory and two echo servers, ``alpha`` and ``beta``, registered with it; every
    path has ``ONE_WAY`` seconds of delay each way."""

    def __init__(self, seed: int = 7) -> None:
        self.sim = Simulation(seed=seed)
        self.sim.default_link = Link(delay=ONE_WAY)
        self.directory_keys = self.sim.server_keys("directory")
        self.directory_keys.publish(*DIRECTORY)
        self.directory = DirectoryService(MemoryStore())
        self.directory_app = App({SERVICE: self.directory.handle})
        self.sim.add_endpoint(
            DIRECTORY,
            server_keys=self.directory_keys,
            config=EndpointConfig(services={SERVICE}),
            handler=self.directory_app.handler,
        )
        self.servers: dict[str, tuple[Endpoint, ServerKeys, App]] = {}
        for name, addr in (("alpha", ALPHA), ("beta", BETA)):
            keys = self.sim.server_keys(name)
            keys.publish(*addr)
            app = App({"echo": echo})
            endpoint = self.sim.add_endpoint(
                addr,
                server_keys=keys,
                config=EndpointConfig(services={"echo"}),
                handler=app.handler,
            )
            self.servers[name] = (endpoint, keys, app)
            assert self.register(name) == "stored"

    @property
    def directory_record(self) -> ServerRecord:
        return self.directory_keys.current_record()

    def register(self, name: str) -> str:
        """``name``'s server registers its current record (as its identity: createAuth)."""
        endpoint, keys, app = self.servers[name]
        tunnel = endpoint.connect(self.directory_record, self.sim.now)
        request = register_request(keys.current_record())
        return parse_register_answer(
            exchange(self.sim, app, tunnel, SERVICE, request, keys.identity)
        )

    def client(self, addr: tuple[str, int], *, directory_record: ServerRecord | None = None):
        app = App()
        endpoint = self.sim.add_endpoint(addr, handler=app.handler)
        return SimClient(self, endpoint, app, directory_record)


class SimClient:
    """A client configured with the directory's address and key: resolves names (cached until
    expiry) and sends one echo request to a named server."""

    def __init__(
        self, net: Network, endpoint: Endpoint, app: App, directory_record: ServerRecord | None
    ) -> None:
        self.net = net
        self.sim = net.sim
        self.endpoint = endpoint
        self.app = app
        self.directory_record = directory_record
        self.cache = RecordCache()

    def wall(self) -> float:
        return self.endpoint.wall_time(self.sim.now)

    def lookup(self, name: str) -> ServerRecord:
        cached = self.cache.get(name, self.wall())
        if cached is not None:
            return cached
        identity = self.net.directory_keys.identity.public
        if self.directory_record is not None and self.wall() >= self.directory_record.expires:
            self.directory_record = None
        if self.directory_record is None:  # first contact: address and key only
            tunnel = self.endpoint.connect_bootstrap(identity, DIRECTORY, self.sim.now)
        else:
            tunnel = self.endpoint.connect(self.directory_record, self.sim.now)
        answer = exchange(self.sim, self.app, tunnel, SERVICE, lookup_request(name))
        for event in self.app.of(E.RecordUpdated):
            if event.record.identity == identity:
                self.directory_record = event.record
        record = parse_lookup_answer(answer, name, self.wall())
        self.cache.put(name, record)
        return record

    def request(self, name: str, payload: bytes) -> tuple[bytes, float]:
        """(answer, round trips it took, from the call to the answer's end)."""
        start = self.sim.now
        record = self.lookup(name)
        tunnel = self.endpoint.connect(record, self.sim.now)
        answer = exchange(self.sim, self.app, tunnel, "echo", payload)
        return answer, (self.sim.now - start) / RTT
