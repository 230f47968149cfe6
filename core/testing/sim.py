"""A deterministic in-memory network for sans-IO endpoints: a virtual clock and scripted links.

Used by the test suite, the benchmarks and ``minimalt demo --memory``. Endpoints are attached at
made-up addresses; each direction between two addresses has a ``Link`` (delay, jitter, loss,
bursty loss, reordering, duplication, corruption, a bandwidth limit). Every random decision
comes from one seeded ``random.Random``, so a run is a pure function of its seed.

Links have an MTU (1500 bytes, Ethernet, unless set): a datagram whose IP packet would not fit
is dropped, as on a path with the Don't-Fragment bit set. ``set_mtu`` changes it mid-run.
"""

from __future__ import annotations

import heapq
import itertools
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..proto.config import EndpointConfig
from ..proto.crypto import SeededRandom
from ..proto.endpoint import Endpoint
from ..proto.events import Event
from ..proto.records import ServerKeys

Address = tuple[str, int]
Handler = Callable[["Simulation", Endpoint, Event], None]


@dataclass
class Link:
    """What one direction of the network does to datagrams. Times in seconds."""

    delay: float = 0.01
    jitter: float = 0.0  # uniform extra delay in [0, jitter): reorders when > spacing
    loss: float = 0.0  # independent loss probability
    burst_loss: float = 0.0  # probability that a loss starts a burst...
    burst_length: int = 1  # ...of this many consecutive losses
    duplicate: float = 0.0
    corrupt: float = 0.0  # probability of flipping one random byte
    bandwidth: float | None = None  # bytes per second (serialisation delay + FIFO queue)
    queue_limit: int | None = None  # bytes waiting for the bandwidth; beyond: drop-tail
    drop: Callable[[bytes], bool] | None = None  # scripted: return True to drop this datagram
    mtu: int | None = 1500  # largest IP packet (None: no limit); bigger datagrams are dropped
    ip_overhead: int = 28  # IP and UDP headers counted against the MTU (IPv4: 20 + 8)
    # state
    _busy_until: float = field(default=0.0, repr=False)
    _burst_left: int = field(default=0, repr=False)
    delivered: int = field(default=0, repr=False)
    dropped: int = field(default=0, repr=False)
    too_big: int = field(default=0, repr=False)  # of ``dropped``: over the MTU

    @property
    def max_payload(self) -> int | None:
        """The largest UDP payload the link carries (None: no limit)."""
        return None if self.mtu is None else self.mtu - self.ip_overhead


class Simulation:
    """Endpoints, links and a virtual clock; ``run`` steps them until a condition holds."""

    def __init__(self, seed: int = 0, *, start: float = 1000.0, wall_offset: float = 1.7e9):
        self.rng = _random.Random(seed)
        self.seed = seed
        self.now = start
        self.wall_offset = wall_offset
        self.endpoints: dict[Address, Endpoint] = {}
        self.handlers: dict[Address, Handler] = {}
        self.links: dict[tuple[Address, Address], Link] = {}
        self.default_link = Link()
        self._queue: list[tuple[float, int, Address, Address, bytes]] = []
        self._seq = itertools.count()
        self.log: list[tuple[float, Address, Address, int]] = []  # (time, src, dst, size) sent
        self.keep_log = True
        self._key_seed = itertools.count(seed * 1000 + 1)

    # --- building ----------------------------------------------------------------------------

    def server_keys(self, name: str = "server") -> ServerKeys:
        return ServerKeys.generate(
            SeededRandom(next(self._key_seed)), name=name, now_unix=self.now + self.wall_offset
        )

    def add_endpoint(
        self,
        addr: Address,
        *,
        config: EndpointConfig | None = None,
        server_keys: ServerKeys | None = None,
        handler: Handler | None = None,
    ) -> Endpoint:
        endpoint = Endpoint(
            config,
            random=SeededRandom(next(self._key_seed)),
            server_keys=server_keys,
            wall_offset=self.wall_offset,
            now=self.now,
        )
        self.endpoints[addr] = endpoint
        if handler is not None:
            self.handlers[addr] = handler
        return endpoint

    def set_link(self, src: Address, dst: Address, link: Link, *, both: bool = True) -> None:
        self.links[(src, dst)] = link
        if both:
            self.links[(dst, src)] = Link(
                **{
                    k: v
                    for k, v in link.__dict__.items()
                    if not k.startswith("_") and k not in ("delivered", "dropped", "too_big")
                }
            )

    def set_mtu(self, a: Address, b: Address, mtu: int | None) -> None:
        """Change the MTU of the links between ``a`` and ``b``, both ways, from now on (a route
        change: datagrams already on their way are not affected)."""
        for key in ((a, b), (b, a)):
            link = self.links.get(key)
            if link is None:
                link = self.links[key] = Link(
                    **{
                        k: v
                        for k, v in self.default_link.__dict__.items()
                        if not k.startswith("_") and k not in ("delivered", "dropped", "too_big")
                    }
                )
            link.mtu = mtu

    def address_of(self, endpoint: Endpoint) -> Address:
        for addr, ep in self.endpoints.items():
            if ep is endpoint:
                return addr
        raise KeyError("endpoint not attached")

    # --- running -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Send whatever every endpoint has to send now, and run event handlers."""
        progress = True
        while progress:
            progress = False
            for addr, endpoint in self.endpoints.items():
                for data, dst in endpoint.datagrams_to_send(self.now):
                    self._transmit(addr, dst, data)
                handler = self.handlers.get(addr)
                while (event := endpoint.next_event()) is not None:
                    progress = True
                    if handler is not None:
                        handler(self, endpoint, event)

    def _transmit(self, src: Address, dst: Address, data: bytes) -> None:
        if self.keep_log:
            self.log.append((self.now, src, dst, len(data)))
        link = self.links.get((src, dst), self.default_link)
        rng = self.rng
        if link.mtu is not None and len(data) + link.ip_overhead > link.mtu:
            link.dropped += 1
            link.too_big += 1
            return
        if link.drop is not None and link.drop(data):
            link.dropped += 1
            return
        if link._burst_left > 0:
            link._burst_left -= 1
            link.dropped += 1
            return
        if link.loss and rng.random() < link.loss:
            link.dropped += 1
            if link.burst_loss and rng.random() < link.burst_loss:
                link._burst_left = link.burst_length - 1
            return
        depart = self.now
        if link.bandwidth:
            start = max(self.now, link._busy_until)
            if link.queue_limit is not None:
                queued = (start - self.now) * link.bandwidth
                if queued + len(data) > link.queue_limit:
                    link.dropped += 1
                    return
            depart = start + len(data) / link.bandwidth
            link._busy_until = depart
        if link.corrupt and rng.random() < link.corrupt:
            pos = rng.randrange(len(data))
            data = data[:pos] + bytes((data[pos] ^ (1 << rng.randrange(8)),)) + data[pos + 1 :]
        copies = 2 if (link.duplicate and rng.random() < link.duplicate) else 1
        for _ in range(copies):
            arrival = depart + link.delay + (rng.random() * link.jitter if link.jitter else 0.0)
            heapq.heappush(self._queue, (arrival, next(self._seq), src, dst, data))
        link.delivered += 1

    def next_time(self) -> float | None:
        times = [ep.get_timer() for ep in self.endpoints.values()]
        candidates = [t for t in times if t is not None]
        if self._queue:
            candidates.append(self._queue[0][0])
        return min(candidates) if candidates else None

    def step(self) -> bool:
        """Advance to the next packet arrival or timer and process it. False if idle."""
        self.flush()
        when = self.next_time()
        if when is None:
            return False
        if when > self.now:
            self.now = when
        while self._queue and self._queue[0][0] <= self.now:
            _, _, src, dst, data = heapq.heappop(self._queue)
            endpoint = self.endpoints.get(dst)
            if endpoint is not None:
                endpoint.receive_datagram(data, src, self.now)
        for endpoint in self.endpoints.values():
            timer = endpoint.get_timer()
            if timer is not None and timer <= self.now:
                endpoint.handle_timer(self.now)
        self.flush()
        return True

    def run(
        self,
        until: Callable[[], bool] | None = None,
        *,
        timeout: float = 60.0,
        max_steps: int = 10_000_000,
    ) -> bool:
        """Step until ``until()`` holds (True) or ``timeout`` virtual seconds pass (False).
        Without ``until``, run for ``timeout`` virtual seconds (the clock ends at the deadline)."""
        deadline = self.now + timeout
        stalled = 0
        for _ in range(max_steps):
            before = self.now
            self.flush()
            if until is not None and until():
                return True
            when = self.next_time()
            if when is None or when > deadline:
                self.now = max(self.now, deadline)  # idle until the deadline
                return True if until is None else bool(until())
            self.step()
            # A timer that keeps firing without the clock moving is a livelock in the core.
            stalled = stalled + 1 if self.now == before else 0
            if stalled > 100_000:
                raise RuntimeError(f"simulation livelocked at t={self.now}")
        raise RuntimeError("simulation exceeded max_steps")


def collect(into: list[Any]) -> Handler:
    """A handler that only records events."""

    def handler(sim: Simulation, endpoint: Endpoint, event: Event) -> None:
        into.append(event)

    return handler


def move(sim: Simulation, old: Address, new: Address) -> None:
    """The endpoint at ``old`` now sends and receives at ``new`` (a NAT rebinding or a
    network change); datagrams still in flight to ``old`` are lost, as they would be."""
    endpoint = sim.endpoints.pop(old)
    sim.endpoints[new] = endpoint
    if old in sim.handlers:
        sim.handlers[new] = sim.handlers.pop(old)
    for (src, dst), link in list(sim.links.items()):
        if src == old:
            sim.links[(new, dst)] = link
        if dst == old:
            sim.links[(src, new)] = link


def keys_held(tunnel: Any) -> set[bytes]:
    """Every packet key a tunnel object holds, in any attribute: what forward-secrecy tests
    check is gone after a rekey or a close. (``dir()``, not ``__slots__``: the
    mypyc-compiled ``Tunnel`` has no ``__slots__``.)"""
    from ..proto.crypto import DirectionKey

    values = (getattr(tunnel, name, None) for name in dir(tunnel) if not name.startswith("__"))
    return {value.key for value in values if isinstance(value, DirectionKey)}
