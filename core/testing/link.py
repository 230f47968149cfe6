"""A UDP link emulator: a relay on loopback that delays, drops, mangles and rebinds datagrams.

Kernel ``netem`` is not available on the machines this project runs on, so this module plays
the network between a client and a server: the client sends to the relay, the relay forwards to
the server from a socket of its own (as a NAT would) and back. Each direction has its own
``LinkConfig``: delay, jitter, random and bursty (Gilbert-Elliott) loss, reordering, duplication,
corruption, a bandwidth limit with a finite drop-tail queue, scheduled blackholes and a largest
datagram (a path MTU). The relay can rebind mid-flow (new source port, or new source address
from another 127.x address), and reports every path it used so tests can check that the server
followed each one.

Two layers:

* ``LinkModel`` decides what happens to each datagram of one direction, with no I/O: it takes
  ``(data, now)`` and returns ``[(deliver_at, data), ...]``. Every random decision comes from a
  ``random.Random`` seeded per direction and draws the same count of numbers per datagram, so
  the n-th datagram's fate (lost, duplicated, corrupted, reordered, its jitter) depends only on
  the seed and n. Queue drops and blackholes depend on time, as they do on a real link.
* ``UDPLink`` runs two models on asyncio (any loop; uvloop works). Timers on uvloop and on the
  stdlib epoll loop tick in whole milliseconds, so sub-millisecond delays are only accurate on
  a ``select()`` loop: ``precise_loop()`` makes one, and the CLI and the benchmarks use it.

The CLI (``python -m minimalt.testing.link --help``) runs a relay in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import math
import random as _random
import re
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "Blackhole",
    "DelayLine",
    "GilbertElliott",
    "LinkConfig",
    "LinkModel",
    "UDPLink",
    "main",
    "parse_link_args",
    "precise_loop",
]

Address = Any  # (host, port) or (host, port, flowinfo, scope_id)
#: Bytes of IP and UDP header per datagram, counted against a bandwidth limit so that a rate
#: means the same thing here as on a wire (and as in the TUN forwarder, which sees IP packets).
UDP_OVERHEAD_V4 = 28
UDP_OVERHEAD_V6 = 48
#: Client mappings one relay keeps at most (each holds a socket); more clients are dropped.
MAX_MAPPINGS = 1024
_SOCKET_BUFFER = 4 << 20


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain, stepped once per datagram (netem's ``gemodel``).

    ``p``: probability of going from the good to the bad state; ``r``: from bad to good;
    ``bad_loss`` and ``good_loss``: loss probability in each state. The mean burst in the bad
    state lasts ``1/r`` datagrams; the long-run loss is about ``p/(p+r) * bad_loss``.
    """

    p: float
    r: float
    bad_loss: float = 1.0
    good_loss: float = 0.0


@dataclass(frozen=True)
class Blackhole:
    """The link is dead (drops everything) for ``duration`` seconds every ``period`` seconds.

    The first outage starts ``offset`` seconds after the link starts (default: ``period -
    duration``, so the link is up first): dead in ``[offset + k*period, offset + k*period +
    duration)`` for k = 0, 1, ...
    """

    period: float
    duration: float
    offset: float | None = None

    def dead(self, t: float) -> bool:
        """Is the link dead at ``t`` seconds after it started?"""
        start = self.period - self.duration if self.offset is None else self.offset
        if t < start:
            return False
        return (t - start) % self.period < self.duration


@dataclass(frozen=True)
class LinkConfig:
    """What one direction of the link does to datagrams. Times in seconds, rates in bit/s.

    Order of effects for each datagram: size limit, blackhole, loss (random, bursty or
    Gilbert-Elliott), corruption, duplication, then the bandwidth queue, the delay and jitter,
    and reordering.
    """

    #: One-way propagation delay.
    delay: float = 0.0
    #: Extra delay drawn uniformly from [0, jitter). Jitter keeps datagrams in order (as a
    #: queue of varying depth does); reordering is ``reorder``'s job.
    jitter: float = 0.0
    #: Long-run fraction of datagrams lost (with ``burst`` > 1, in bursts).
    loss: float = 0.0
    #: Losses come in bursts of 1 to ``burst`` consecutive datagrams (uniform length); the
    #: chance a burst starts is chosen so the long-run loss stays ``loss``.
    burst: int = 1
    #: Gilbert-Elliott loss on top of ``loss`` (None: none).
    gilbert: GilbertElliott | None = None
    #: Probability a datagram is held back by ``reorder_gap`` so later ones overtake it.
    reorder: float = 0.0
    reorder_gap: float = 0.005
    #: Probability a datagram is delivered twice (the copy a little later).
    duplicate: float = 0.0
    #: Probability one random bit of the datagram (from byte ``corrupt_from`` on) is flipped.
    corrupt: float = 0.0
    corrupt_from: int = 0
    #: Bandwidth limit (None: unlimited) and the bytes the queue in front of it holds; a
    #: datagram that does not fit is dropped (drop-tail).
    rate: float | None = None
    queue: int = 64 << 10
    #: Per-datagram bytes counted against ``rate`` besides the payload (IP/UDP headers).
    overhead: int = 0
    #: Scheduled outages.
    blackholes: tuple[Blackhole, ...] = ()
    #: Largest UDP payload the path carries (None: any). Bigger datagrams are dropped, as a
    #: router drops a Don't-Fragment packet over its MTU: 1472 is an Ethernet path (IPv4).
    max_datagram: int | None = None

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability, not {value}")
        if self.delay < 0 or self.jitter < 0 or self.reorder_gap < 0:
            raise ValueError("delays cannot be negative")
        if self.burst < 1:
            raise ValueError("burst is at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.queue <= 0:
            raise ValueError("queue must be positive")
        if self.max_datagram is not None and self.max_datagram <= 0:
            raise ValueError("max_datagram must be positive")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (``from_dict`` reads it back)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "gilbert":
                value = {g.name: getattr(value, g.name) for g in fields(value)}
            elif f.name == "blackholes":
                value = [{g.name: getattr(b, g.name) for g in fields(b)} for b in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkConfig:
        values = dict(data)
        if values.get("gilbert") is not None:
            values["gilbert"] = GilbertElliott(**values["gilbert"])
        if "blackholes" in values:
            values["blackholes"] = tuple(Blackhole(**b) for b in values["blackholes"])
        return cls(**values)

    def describe(self) -> str:
        """The settings that differ from a perfect link, e.g. ``delay=15ms loss=2% burst=3``."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default or f.name in ("reorder_gap", "corrupt_from", "overhead"):
                continue
            if f.name == "queue" and self.rate is None:
                continue
            if f.name in ("delay", "jitter"):
                parts.append(f"{f.name}={value * 1000:g}ms")
            elif f.name in ("loss", "reorder", "duplicate", "corrupt"):
                parts.append(f"{f.name}={value * 100:g}%")
            elif f.name == "rate":
                parts.append(f"rate={value / 1e6:g}Mbit/s")
            elif f.name == "max_datagram":
                parts.append(f"max_datagram={value}B")
            elif f.name == "blackholes":
                parts.extend(f"blackhole={b.duration:g}s/{b.period:g}s" for b in value)
            else:
                parts.append(f"{f.name}={value}")
        return " ".join(parts) or "perfect"


# --- the model of one direction ---------------------------------------------------------------


@dataclass
class DirectionStats:
    """What a ``LinkModel`` did, by cause."""

    received: int = 0
    received_bytes: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    lost: int = 0
    blackholed: int = 0
    too_big: int = 0
    queue_dropped: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class LinkModel:
    """One direction of a link, with no I/O and no clock: see the module docstring.

    ``offer(data, now)`` returns the copies of ``data`` to deliver and when (possibly none).
    ``now`` is any monotonic time in seconds; ``origin`` is the time the link started (for the
    blackhole schedule).
    """

    _DRAWS = 10  # random numbers drawn per datagram, whatever happens to it

    def __init__(self, config: LinkConfig, seed: int | str = 0, *, origin: float = 0.0) -> None:
        self.config = config
        self.origin = origin
        self.rng = _random.Random(seed)
        self.stats = DirectionStats()
        self._busy_until = -math.inf  # when the bandwidth-limited wire is free
        self._last_in_order = -math.inf  # latest delivery time given to an in-order datagram
        self._burst_left = 0
        self._ge_bad = False

    def reconfigure(self, config: LinkConfig, *, origin: float | None = None) -> None:
        """Use ``config`` from now on (queue and loss state carry over); ``origin`` restarts
        the blackhole schedule."""
        self.config = config
        if origin is not None:
            self.origin = origin

    def dead(self, now: float) -> bool:
        t = now - self.origin
        return any(b.dead(t) for b in self.config.blackholes)

    def offer(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        cfg = self.config
        stats = self.stats
        stats.received += 1
        stats.received_bytes += len(data)
        u = [self.rng.random() for _ in range(self._DRAWS)]
        if cfg.max_datagram is not None and len(data) > cfg.max_datagram:
            stats.too_big += 1
            return []
        if cfg.blackholes and self.dead(now):
            stats.blackholed += 1
            return []
        if self._lose(u[0], u[1], u[2], u[9]):
            stats.lost += 1
            return []
        if cfg.corrupt and u[3] < cfg.corrupt and len(data) > cfg.corrupt_from:
            data = _flip_bit(data, cfg.corrupt_from, u[4])
            stats.corrupted += 1
        copies = [data]
        if cfg.duplicate and u[5] < cfg.duplicate:
            copies.append(data)
            stats.duplicated += 1
        out: list[tuple[float, bytes]] = []
        for index, copy in enumerate(copies):
            departs = self._enqueue(len(copy), now)
            if departs is None:
                stats.queue_dropped += 1
                continue
            at = departs + cfg.delay + u[6] * cfg.jitter
            if index == 0 and cfg.reorder and u[7] < cfg.reorder:
                at += cfg.reorder_gap
                stats.reordered += 1
            else:
                if index:  # the duplicate trails its original by a little
                    at += u[8] * max(cfg.jitter, 0.001)
                at = max(at, self._last_in_order)
                self._last_in_order = at
            out.append((at, copy))
        stats.delivered += len(out)
        stats.delivered_bytes += sum(len(d) for _, d in out)
        return out

    def _lose(self, u_loss: float, u_burst: float, u_ge: float, u_ge_loss: float) -> bool:
        cfg = self.config
        lost = False
        if self._burst_left > 0:
            self._burst_left -= 1
            lost = True
        elif cfg.loss:
            mean = (1 + cfg.burst) / 2
            start = cfg.loss / (mean * (1 - cfg.loss) + cfg.loss) if cfg.loss < 1 else 1.0
            if u_loss < start:
                lost = True
                self._burst_left = int(u_burst * cfg.burst)  # 0 .. burst-1 more
        ge = cfg.gilbert
        if ge is not None:
            # One step of the chain per datagram, whether or not it is already lost.
            if self._ge_bad:
                self._ge_bad = u_ge >= ge.r
            else:
                self._ge_bad = u_ge < ge.p
            chance = ge.bad_loss if self._ge_bad else ge.good_loss
            if not lost and u_ge_loss < chance:
                lost = True
        return lost

    def _enqueue(self, size: int, now: float) -> float | None:
        """When a datagram of ``size`` bytes has left the bandwidth limit (None: queue full)."""
        cfg = self.config
        if cfg.rate is None:
            return now
        bits = (size + cfg.overhead) * 8
        backlog = max(0.0, self._busy_until - now) * cfg.rate / 8  # bytes still queued
        if backlog + size + cfg.overhead > cfg.queue:
            return None
        start = max(now, self._busy_until)
        self._busy_until = start + bits / cfg.rate
        return self._busy_until


def _flip_bit(data: bytes, start: int, u: float) -> bytes:
    span = len(data) - start
    bit = int(u * span * 8)
    position = start + bit // 8
    mangled = bytearray(data)
    mangled[position] ^= 1 << (bit % 8)
    return bytes(mangled)


# --- delivery on asyncio ----------------------------------------------------------------------


class DelayLine:
    """Datagrams waiting for their delivery time, sent by one re-armed loop timer.

    ``put(at, send, data, addr)`` calls ``send(data, addr)`` at ``at`` (``time.monotonic()``
    seconds). Datagrams due at the same time leave in the order they were put.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Callable[[bytes, Address], None], bytes, Address]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def put(
        self, at: float, send: Callable[[bytes, Address], None], data: bytes, addr: Address
    ) -> None:
        if self._closed:
            return
        heapq.heappush(self._heap, (at, next(self._seq), send, data, addr))
        if at < self._timer_at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_later(max(0.0, at - time.monotonic()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        # Half a millisecond of slack: loops whose timers tick in milliseconds wake up to one
        # tick early, and waking again for a few hundred microseconds would only add latency.
        now = time.monotonic() + 0.0005
        while heap and heap[0][0] <= now:
            _, _, send, data, addr = heapq.heappop(heap)
            try:
                send(data, addr)
            except OSError:  # a socket closed by a rebinding, or a full buffer: like a drop
                pass
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        self._closed = True
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def precise_loop() -> asyncio.AbstractEventLoop:
    """A stdlib event loop on ``select()``, whose timeouts have microsecond resolution (epoll's
    and libuv's have milliseconds). Use it for a relay that must emulate sub-ms delays."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


# --- the UDP relay ----------------------------------------------------------------------------


class _Socket:
    """A non-blocking UDP socket read with ``loop.add_reader`` (works on uvloop and the stdlib
    loop, and binds synchronously, so a rebinding is atomic: no datagram falls between the old
    socket and the new one)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        family: int,
        local: tuple[str, int],
        on_datagram: Callable[[bytes, Address], None],
    ) -> None:
        self.loop = loop
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
                except OSError:  # pragma: no cover - capped by the OS: keep its size
                    pass
            self.sock.bind(local)
            self.address: Address = self.sock.getsockname()
            loop.add_reader(self.sock.fileno(), self._readable)
        except BaseException:
            self.sock.close()
            raise
        self.on_datagram = on_datagram
        self.closed = False

    def _readable(self) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(256):  # bounded: let the loop run timers between batches
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP unreachable reported on the socket: not a datagram
                continue
            self.on_datagram(data, addr)
            if self.closed:
                return

    def sendto(self, data: bytes, addr: Address) -> None:
        if self.closed:
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: the datagram is lost, as on a congested host

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


@dataclass
class _Mapping:
    """One client as the relay's NAT sees it: its address and our current upstream socket."""

    client: Address
    upstream: _Socket


@dataclass(frozen=True)
class PathChange:
    """The relay moved a client's traffic to a new upstream source address."""

    at: float  # seconds since the relay started
    kind: str  # "start", "port" or "address"
    client: Address
    old: Address | None
    new: Address


Tap = Callable[[str, bytes, float, Address], None]


class UDPLink:
    """A UDP relay emulating a link between clients and one server (module docstring).

    Clients send to ``address``; the relay forwards from a socket of its own per client (its
    NAT mapping) to ``target`` and relays the answers back. ``c2s`` and ``s2c`` configure the
    two directions (``s2c`` defaults to ``c2s``); ``seed`` makes their decisions repeatable.

    ``upstream_hosts``: the addresses the relay's upstream sockets bind to; an ``address``
    rebinding moves to the next one (default: 127.0.0.1, 127.0.0.2, ... for IPv4; IPv6 has
    only ::1, so only port rebinding). ``rebind_every`` rebinds every client that often,
    cycling through ``rebind_kinds``. ``tap(direction, data, now, client)`` sees every datagram
    as it reaches the relay (direction ``"c2s"`` or ``"s2c"``), before the link acts on it.

    Use as an async context manager, or ``await start()`` then ``close()``.
    """

    def __init__(
        self,
        target: tuple[str, int],
        c2s: LinkConfig | None = None,
        s2c: LinkConfig | None = None,
        *,
        seed: int = 0,
        listen: tuple[str, int] | None = None,
        upstream_hosts: Sequence[str] | None = None,
        rebind_every: float | None = None,
        rebind_kinds: Sequence[str] = ("port", "address"),
        tap: Tap | None = None,
    ) -> None:
        self.target = (target[0], target[1])
        self.ipv6 = ":" in target[0]
        overhead = UDP_OVERHEAD_V6 if self.ipv6 else UDP_OVERHEAD_V4
        c2s = c2s if c2s is not None else LinkConfig()
        s2c = s2c if s2c is not None else c2s
        self.c2s = LinkModel(_with_overhead(c2s, overhead), f"{seed}:c2s")
        self.s2c = LinkModel(_with_overhead(s2c, overhead), f"{seed}:s2c")
        self._overhead = overhead
        loopback = "::1" if self.ipv6 else "127.0.0.1"
        self.listen = listen if listen is not None else (loopback, 0)
        if upstream_hosts is None:
            upstream_hosts = ["::1"] if self.ipv6 else [f"127.0.0.{i}" for i in range(1, 255)]
        self.upstream_hosts = list(upstream_hosts)
        for kind in rebind_kinds:
            if kind not in ("port", "address"):
                raise ValueError(f"rebind kind is 'port' or 'address', not {kind!r}")
        if rebind_every is not None and "address" in rebind_kinds and len(self.upstream_hosts) < 2:
            raise ValueError("address rebinding needs two upstream hosts (IPv6 has only ::1)")
        self.rebind_every = rebind_every
        self.rebind_kinds = tuple(rebind_kinds)
        self.tap = tap
        #: Every upstream path used, in order (the first per client is kind "start").
        self.paths: list[PathChange] = []
        self.dropped_mappings = 0
        self._mappings: dict[Address, _Mapping] = {}
        self._host_index = 0
        self._rebinds = 0
        self._listener: _Socket | None = None
        self._line: DelayLine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rebind_timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._closed = False

    # --- lifetime -------------------------------------------------------------------------------

    async def start(self) -> UDPLink:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._line = DelayLine(loop)
        self._started = time.monotonic()
        self.c2s.origin = self.s2c.origin = self._started
        self._listener = _Socket(loop, self._family, self.listen, self._from_client)
        if self.rebind_every is not None:
            self._rebind_timer = loop.call_later(self.rebind_every, self._scheduled_rebind)
        return self

    @property
    def _family(self) -> int:
        return socket.AF_INET6 if self.ipv6 else socket.AF_INET

    @property
    def address(self) -> tuple[str, int]:
        """Where clients send: (host, port) of the relay's listening socket."""
        if self._listener is None:
            raise RuntimeError("the link is not started")
        sockname = self._listener.address
        return (sockname[0], sockname[1])

    def close(self) -> None:
        """Stop relaying and close every socket (datagrams still on the wire are lost)."""
        if self._closed:
            return
        self._closed = True
        if self._rebind_timer is not None:
            self._rebind_timer.cancel()
        if self._line is not None:
            self._line.close()
        for mapping in self._mappings.values():
            mapping.upstream.close()
        self._mappings.clear()
        if self._listener is not None:
            self._listener.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> UDPLink:
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    # --- control --------------------------------------------------------------------------------

    def reconfigure(self, c2s: LinkConfig, s2c: LinkConfig | None = None) -> None:
        """Change the link's behaviour from now on (queues and in-flight datagrams carry over)."""
        self.c2s.reconfigure(_with_overhead(c2s, self._overhead))
        self.s2c.reconfigure(_with_overhead(s2c if s2c is not None else c2s, self._overhead))

    def elapsed(self) -> float:
        """Seconds since the link started."""
        return time.monotonic() - self._started

    def rebind(self, kind: str = "port") -> list[PathChange]:
        """Move every client's upstream traffic to a new socket: a new port on the same address
        (``"port"``) or on the next upstream host (``"address"``). Datagrams the server sends to
        the old socket are lost, as after a NAT rebinding. Returns the changes."""
        if kind not in ("port", "address"):
            raise ValueError(f"rebind kind is 'port' or 'address', not {kind!r}")
        if kind == "address":
            if len(self.upstream_hosts) < 2:
                raise ValueError("address rebinding needs two upstream hosts")
            self._host_index = (self._host_index + 1) % len(self.upstream_hosts)
        changes = []
        for mapping in list(self._mappings.values()):
            old = mapping.upstream
            mapping.upstream = self._bind_upstream(mapping.client)
            old.close()
            change = PathChange(
                self.elapsed(), kind, mapping.client, old.address, mapping.upstream.address
            )
            self.paths.append(change)
            changes.append(change)
        return changes

    def _scheduled_rebind(self) -> None:
        assert self._loop is not None and self.rebind_every is not None
        kind = self.rebind_kinds[self._rebinds % len(self.rebind_kinds)]
        self._rebinds += 1
        self._rebind_timer = self._loop.call_later(self.rebind_every, self._scheduled_rebind)
        self.rebind(kind)

    def stats(self) -> dict[str, Any]:
        return {
            "c2s": self.c2s.stats.as_dict(),
            "s2c": self.s2c.stats.as_dict(),
            "paths": len(self.paths),
            "clients": len(self._mappings),
            "dropped_mappings": self.dropped_mappings,
        }

    # --- relaying -------------------------------------------------------------------------------

    def _bind_upstream(self, client: Address) -> _Socket:
        assert self._loop is not None
        host = self.upstream_hosts[self._host_index]
        return _Socket(
            self._loop, self._family, (host, 0), lambda data, _: self._from_server(client, data)
        )

    def _from_client(self, data: bytes, addr: Address) -> None:
        now = time.monotonic()
        mapping = self._mappings.get(addr)
        if mapping is None:
            if len(self._mappings) >= MAX_MAPPINGS:
                self.dropped_mappings += 1
                return
            mapping = self._mappings[addr] = _Mapping(addr, self._bind_upstream(addr))
            self.paths.append(
                PathChange(now - self._started, "start", addr, None, mapping.upstream.address)
            )
        if self.tap is not None:
            self.tap("c2s", data, now, addr)
        line = self._line
        assert line is not None
        for at, copy in self.c2s.offer(data, now):
            line.put(at, self._send_upstream, copy, addr)

    def _send_upstream(self, data: bytes, client: Address) -> None:
        mapping = self._mappings.get(client)
        if mapping is not None:
            mapping.upstream.sendto(data, self.target)

    def _from_server(self, client: Address, data: bytes) -> None:
        now = time.monotonic()
        if self.tap is not None:
            self.tap("s2c", data, now, client)
        line = self._line
        listener = self._listener
        if line is None or listener is None or self._closed:
            return
        for at, copy in self.s2c.offer(data, now):
            line.put(at, listener.sendto, copy, client)


def _with_overhead(config: LinkConfig, overhead: int) -> LinkConfig:
    return config if config.overhead else replace(config, overhead=overhead)


# --- parsing (CLI and benchmarks) -------------------------------------------------------------

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_RATE_UNITS = {"": 1.0, "bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20}


def parse_time(text: str) -> float:
    """``15ms``, ``0.25ms``, ``2s``, ``500us`` or plain seconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(s|ms|us)?\s*", text.lower())
    if not match:
        raise ValueError(f"not a time: {text!r} (e.g. 15ms, 2s)")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


def parse_rate(text: str) -> float:
    """``10mbit``, ``500kbit``, ``1gbit`` or plain bit/s."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(bit|kbit|mbit|gbit)?(?:/s|ps)?\s*", text.lower())
    if not match:
        raise ValueError(f"not a rate: {text!r} (e.g. 10mbit)")
    return float(match.group(1)) * _RATE_UNITS[match.group(2) or ""]


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*(b|k|kb|m|mb)?\s*", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 64k)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or ""])


def parse_fraction(text: str) -> float:
    """``2%`` or ``0.02``."""
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def _split(value: str | None) -> tuple[str | None, str | None]:
    """``X`` applies both ways; ``X:Y`` is client-to-server X, server-to-client Y."""
    if value is None:
        return None, None
    if ":" in value:
        up, down = value.split(":", 1)
        return up or None, down or None
    return value, value


def add_link_arguments(parser: argparse.ArgumentParser) -> None:
    """The link options shared by the CLI and the benchmarks."""
    both = " (X for both directions, or UP:DOWN)"
    parser.add_argument("--delay", help="one-way delay, e.g. 15ms" + both)
    parser.add_argument("--jitter", help="extra delay uniform in [0, J), order kept" + both)
    parser.add_argument("--loss", help="fraction lost, e.g. 2%%" + both)
    parser.add_argument("--burst", help="losses come in bursts of 1..N" + both)
    parser.add_argument("--gilbert", help="Gilbert-Elliott loss p,r[,bad_loss[,good_loss]]" + both)
    parser.add_argument("--reorder", help="fraction held back so later ones overtake" + both)
    parser.add_argument("--reorder-gap", help="how long a reordered datagram is held" + both)
    parser.add_argument("--duplicate", help="fraction delivered twice" + both)
    parser.add_argument("--corrupt", help="fraction with one bit flipped" + both)
    parser.add_argument("--rate", help="bandwidth, e.g. 10mbit" + both)
    parser.add_argument("--queue", help="bytes queued before the bandwidth limit, e.g. 64k" + both)
    parser.add_argument(
        "--max-datagram", help="largest UDP payload carried, e.g. 1472; bigger dropped" + both
    )
    parser.add_argument(
        "--blackhole",
        help="PERIOD/DURATION, e.g. 5s/2s: dead for DURATION every PERIOD (both directions)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random decision")


def parse_link_args(args: argparse.Namespace) -> tuple[LinkConfig, LinkConfig]:
    """(client-to-server, server-to-client) configs from ``add_link_arguments`` options."""
    configs: list[dict[str, Any]] = [{}, {}]
    converters: dict[str, Callable[[str], Any]] = {
        "delay": parse_time,
        "jitter": parse_time,
        "loss": parse_fraction,
        "burst": int,
        "reorder": parse_fraction,
        "reorder_gap": parse_time,
        "duplicate": parse_fraction,
        "corrupt": parse_fraction,
        "rate": parse_rate,
        "queue": parse_size,
        "max_datagram": parse_size,
        "gilbert": lambda t: GilbertElliott(*(float(x) for x in t.split(","))),
    }
    for name, convert in converters.items():
        for index, part in enumerate(_split(getattr(args, name, None))):
            if part is not None:
                configs[index][name] = convert(part)
    if getattr(args, "blackhole", None):
        period, _, duration = args.blackhole.partition("/")
        hole = Blackhole(parse_time(period), parse_time(duration))
        for config in configs:
            config["blackholes"] = (hole,)
    return LinkConfig(**configs[0]), LinkConfig(**configs[1])


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimalt.testing.link",
        description="Relay UDP between clients and a server through an emulated link "
        "(delay, jitter, loss, reordering, duplication, corruption, bandwidth, blackholes, "
        "NAT rebinding). Clients send to --listen; the relay forwards to --target.",
    )
    parser.add_argument("--target", required=True, help="the server, HOST:PORT ([::1]:PORT)")
    parser.add_argument(
        "--listen",
        default=None,
        help="where clients send, HOST:PORT (default: loopback, any free port)",
    )
    add_link_arguments(parser)
    parser.add_argument("--rebind", help="rebind every T (e.g. 5s), alternating port/address")
    parser.add_argument(
        "--rebind-kinds", default="port,address", help="kinds to cycle through (port, address)"
    )
    parser.add_argument("--duration", help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--stats-every", help="print counters this often, e.g. 1s")
    parser.add_argument(
        "--loop",
        choices=("select", "uvloop", "asyncio"),
        default="select",
        help="event loop; select() times sub-millisecond delays accurately",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        c2s, s2c = parse_link_args(args)
        target = _host_port(args.target)
        listen = _host_port(args.listen) if args.listen else None
        rebind = parse_time(args.rebind) if args.rebind else None
        duration = parse_time(args.duration) if args.duration else None
        stats_every = parse_time(args.stats_every) if args.stats_every else None
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> None:
        link = UDPLink(
            target,
            c2s,
            s2c,
            seed=args.seed,
            listen=listen,
            rebind_every=rebind,
            rebind_kinds=args.rebind_kinds.split(","),
        )
        async with link:
            host, port = link.address
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            print(f"relaying {shown} -> {args.target}", flush=True)
            print(f"  client->server: {c2s.describe()}", flush=True)
            print(f"  server->client: {s2c.describe()}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError):  # pragma: no cover
                    pass
            started = time.monotonic()
            while not stop.is_set():
                wait = stats_every or 3600.0
                if duration is not None:
                    wait = min(wait, max(0.0, started + duration - time.monotonic()))
                try:
                    await asyncio.wait_for(stop.wait(), wait)
                except TimeoutError:
                    pass
                if stats_every is not None:
                    print(link.stats(), flush=True)
                if duration is not None and time.monotonic() >= started + duration:
                    break
            print(link.stats(), flush=True)

    if args.loop == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    elif args.loop == "asyncio":
        factory = asyncio.new_event_loop
    else:
        factory = precise_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
