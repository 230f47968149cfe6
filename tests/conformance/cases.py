"""The conformance cases, modelled on the QUIC interop runner's test cases.

Each case is an ``async def case(profile) -> str``: it runs a real server and real clients of
``minimalt`` on loopback, through the link emulator (``minimalt.testing.link``) where a network
is involved, returns a one-line detail when its pass criterion holds, raises ``CaseFailed``
when it does not, and ``Unsupported`` when the feature it exercises does not exist yet.

Two profiles: ``full`` uses the interop runner's link (10 Mbit/s, 15 ms one way) and the sizes
and counts of the issue; ``fast`` (part of ``make test``) uses a faster link and fewer
repetitions where the count is not the point, with the same pass criteria.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import minimalt
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.events import TunnelMigrated
from minimalt.proto.tunnel import Tunnel
from minimalt.testing.link import Blackhole, LinkConfig

from .harness import (
    CaseFailed,
    Counter,
    KiB,
    MiB,
    Unsupported,
    check,
    download,
    fetch_checked,
    fresh_client,
    has_key_section,
    linked,
    observe_events,
    payload,
    serve,
    tid_of,
    wait_for,
)

FLOODER = Path(__file__).with_name("flood.py")


@dataclass(frozen=True)
class Profile:
    name: str
    #: The emulated link most cases run on.
    rate: float
    delay: float
    queue: int
    transfer_sizes: tuple[int, ...]
    multiplex_connections: int
    multiplex_limit: int
    handshakes: int
    loss_size: int
    blackhole_size: int
    blackhole: Blackhole
    rebind_size: int
    rebind_every: float
    puzzle_clients: int
    puzzle_seconds: float
    flood_rate: int
    amplification_window: float
    #: Links of the cases that need time to pass during a transfer (blackhole, rebinding).
    slow_rate: float = 10e6
    extra: dict[str, float] = field(default_factory=dict)

    def link(self, **changes: object) -> LinkConfig:
        values: dict[str, object] = {"delay": self.delay, "rate": self.rate, "queue": self.queue}
        values.update(changes)
        return LinkConfig(**values)  # type: ignore[arg-type]

    @property
    def rtt(self) -> float:
        return 2 * self.delay

    def describe(self) -> str:
        return (
            f"{self.name}: link {self.rate / 1e6:g} Mbit/s, {self.delay * 1000:g} ms one way "
            f"(RTT {self.rtt * 1000:g} ms), drop-tail queue {self.queue // 1024} KiB"
        )


FULL = Profile(
    name="full",
    rate=10e6,
    delay=0.015,
    queue=64 * KiB,
    transfer_sizes=(2 * MiB, 3 * MiB, 5 * MiB),
    multiplex_connections=2000,
    multiplex_limit=1000,
    handshakes=50,
    loss_size=2 * MiB,
    blackhole_size=10 * MiB,
    blackhole=Blackhole(period=5.0, duration=2.0),
    rebind_size=15 * MiB,
    rebind_every=5.0,
    puzzle_clients=20,
    puzzle_seconds=5.0,
    flood_rate=10000,
    amplification_window=3.0,
)
FAST = Profile(
    name="fast",
    rate=50e6,
    delay=0.005,
    queue=128 * KiB,
    transfer_sizes=(2 * MiB, 3 * MiB, 5 * MiB),
    multiplex_connections=2000,
    multiplex_limit=1000,
    handshakes=10,
    loss_size=2 * MiB,
    blackhole_size=2 * MiB,
    blackhole=Blackhole(period=1.0, duration=0.4),
    rebind_size=3 * MiB,
    rebind_every=0.6,
    puzzle_clients=5,
    puzzle_seconds=1.0,
    flood_rate=5000,
    amplification_window=1.0,
)
PROFILES = {"full": FULL, "fast": FAST}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --- handshake, transfer, multiplexing ----------------------------------------------------------


async def handshake(p: Profile) -> str:
    """One tunnel, one small download: exactly one tunnel on the wire and on each side."""
    counter = Counter()
    async with serve() as server, linked(server, p.link(), tap=counter) as (_, record):
        async with fresh_client() as client:
            started = time.monotonic()
            await fetch_checked(client, record, KiB)
            took = time.monotonic() - started
            check(len(client.tunnels) == 1, f"client holds {len(client.tunnels)} tunnels")
        tids = counter.tids("c2s")
        check(len(tids) == 1, f"{len(tids)} tunnel IDs on the wire")
        tunnels = len(server.tunnels)
        check(tunnels <= 1, f"server holds {tunnels} tunnels")
    return f"1 tunnel, 1 KiB downloaded in {_ms(took)} ({took / p.rtt:.1f} RTT)"


async def transfer(p: Profile) -> str:
    """Downloads of 2, 3 and 5 MiB at once on one tunnel, each byte-identical."""
    counter = Counter()
    async with serve() as server, linked(server, p.link(), tap=counter) as (_, record):
        async with fresh_client() as client:
            started = time.monotonic()
            await asyncio.gather(
                *(
                    fetch_checked(client, record, size, seed)
                    for seed, size in enumerate(p.transfer_sizes)
                )
            )
            took = time.monotonic() - started
            check(len(client.tunnels) == 1, f"client used {len(client.tunnels)} tunnels")
    check(len(counter.tids("c2s")) == 1, f"{len(counter.tids('c2s'))} tunnel IDs on the wire")
    total = sum(p.transfer_sizes)
    sizes = " + ".join(f"{s / MiB:g}" for s in p.transfer_sizes)
    return (
        f"{sizes} MiB byte-identical on 1 tunnel in {took:.1f} s "
        f"({total * 8 / took / 1e6:.1f} Mbit/s goodput)"
    )


async def multiplexing(p: Profile) -> str:
    """Many small downloads at once on one tunnel, the server allowing ``multiplex_limit``
    connections at a time: all complete, and the server's core never holds more open (counted
    as each new connection reaches its handler)."""
    peak = 0

    async def counted(conn: minimalt.Connection) -> None:
        nonlocal peak
        peak = max(peak, len(conn.tunnel.connections))
        await download(conn)

    config = minimalt.EndpointConfig(max_connections=p.multiplex_limit)
    counter = Counter()
    async with serve(config=config, services={"download": counted}) as server:
        async with linked(server, p.link(), tap=counter) as (_, record):
            async with fresh_client() as client:
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        fetch_checked(client, record, 32 + i % 1000, i)
                        for i in range(p.multiplex_connections)
                    )
                )
                took = time.monotonic() - started
                check(len(client.tunnels) == 1, f"client used {len(client.tunnels)} tunnels")
    check(len(counter.tids("c2s")) == 1, f"{len(counter.tids('c2s'))} tunnel IDs on the wire")
    check(
        peak <= p.multiplex_limit,
        f"server ran {peak} connections at once, limit {p.multiplex_limit}",
    )
    return (
        f"{p.multiplex_connections} connections on 1 tunnel in {took:.1f} s; at most {peak} "
        f"open at once at the server (limit {p.multiplex_limit})"
    )


# --- 0-RTT and long RTT -------------------------------------------------------------------------


async def zerortt(p: Profile) -> str:
    """A fresh tunnel from a cached record: the request rides in the first flight; what the
    client sends afterwards (acks, its FIN) is less than half the request; the answer comes
    after about one round trip."""
    request = payload(8 * KiB, 7)
    counter = Counter()
    async with serve() as server, linked(server, p.link(), tap=counter) as (_, record):
        async with fresh_client() as client:
            started = time.monotonic()
            conn = await client.connect(record, "hash", retry_safe=True)
            conn.write(request)
            conn.write_eof()
            answer = await conn.read()
            took = time.monotonic() - started
            await conn.wait_closed()
        server_tunnels = list(server.tunnels)
    check(answer == hashlib.sha256(request).digest(), "the server hashed something else")
    first_s2c = min((t for d, t, _, _ in counter.log if d == "s2c"), default=None)
    check(first_s2c is not None, "the server never answered")
    # The server's first datagram reaches the client one link delay after it reached the relay.
    cutoff = first_s2c + p.delay  # type: ignore[operator]
    flight = sum(size for d, t, size, _ in counter.log if d == "c2s" and t < cutoff)
    after = sum(size for d, t, size, _ in counter.log if d == "c2s" and t >= cutoff)
    check(
        flight >= len(request), f"first flight {flight} B cannot hold the {len(request)} B request"
    )
    check(
        after < len(request) / 2,
        f"client sent {after} B after the first flight, not less "
        f"than half the {len(request)} B request",
    )
    accepted = [getattr(t, "early_data_accepted", None) for t in server_tunnels]
    check(all(a is not False for a in accepted), "the server refused the early data")
    check(took < 2 * p.rtt + 0.05, f"answer after {_ms(took)}, {took / p.rtt:.1f} RTT")
    return (
        f"{len(request)} B request in a {flight} B first flight; {after} B from the client "
        f"afterwards; answer after {_ms(took)} ({took / p.rtt:.2f} RTT)"
    )


async def longrtt(p: Profile) -> str:
    """750 ms one way: the client's first flight is retransmitted before the answer can come
    back, and it all stays one tunnel."""
    delay = 0.75
    counter = Counter()
    link = p.link(delay=delay)
    async with serve() as server, linked(server, link, tap=counter) as (_, record):
        async with fresh_client() as client:
            started = time.monotonic()
            await fetch_checked(client, record, 16 * KiB)
            took = time.monotonic() - started
            check(len(client.tunnels) == 1, f"client used {len(client.tunnels)} tunnels")
        server_tunnels = len(server.tunnels)
    first_s2c = min(t for d, t, _, _ in counter.log if d == "s2c")
    firsts = [
        t
        for d, t, _, h in counter.log
        if d == "c2s" and has_key_section(h) and t < first_s2c + delay
    ]
    check(
        len(firsts) >= 2 and firsts[-1] - firsts[0] > 0.1,
        f"first flight not retransmitted ({len(firsts)} key-carrying datagrams)",
    )
    tids = counter.tids("c2s")
    check(len(tids) == 1, f"{len(tids)} tunnel IDs on the wire")
    check(server_tunnels <= 1, f"server made {server_tunnels} tunnels")
    sends = sorted({round(t - firsts[0], 2) for t in firsts})
    return (
        f"RTT 1.5 s: {len(firsts)} key-carrying datagrams before the answer, sent at "
        f"{', '.join(f'{t:g}' for t in sends)} s; one tunnel; 16 KiB in {took:.2f} s"
    )


# --- loss and corruption ------------------------------------------------------------------------


async def _transfer_on(p: Profile, link: LinkConfig, size: int) -> tuple[float, dict, dict]:
    async with serve() as server, linked(server, link) as (relay, record):
        async with fresh_client() as client:
            started = time.monotonic()
            await fetch_checked(client, record, size)
            took = time.monotonic() - started
            check(len(client.tunnels) == 1, f"client used {len(client.tunnels)} tunnels")
            tunnel = client.stats()["tunnels"][0]
        return took, relay.stats(), {"client": tunnel, "server": server.stats()}


def _damage(stats: dict, key: str) -> str:
    return f"{stats['c2s'][key]} + {stats['s2c'][key]}"


async def transferloss(p: Profile) -> str:
    """2 % loss each way in bursts of up to 3: a 2 MiB download completes byte-identical."""
    took, link, _ = await _transfer_on(p, p.link(loss=0.02, burst=3), p.loss_size)
    check(link["s2c"]["lost"] > 0, "the link lost nothing")
    return (
        f"{p.loss_size / MiB:g} MiB in {took:.1f} s "
        f"({p.loss_size * 8 / took / 1e6:.1f} Mbit/s); {_damage(link, 'lost')} datagrams "
        "lost (to server + to client)"
    )


async def transfercorruption(p: Profile) -> str:
    """2 % of datagrams each way have a bit flipped: the download completes byte-identical
    (every corrupted datagram is dropped by authentication, never delivered)."""
    took, link, ends = await _transfer_on(p, p.link(corrupt=0.02), p.loss_size)
    check(link["s2c"]["corrupted"] > 0, "the link corrupted nothing")
    drops = sum(ends["server"]["drops"].values()) + sum(ends["client"]["drops"].values())
    return (
        f"{p.loss_size / MiB:g} MiB in {took:.1f} s; {_damage(link, 'corrupted')} datagrams "
        f"corrupted, {drops} dropped on arrival (server endpoint + client tunnel)"
    )


async def _sequential_handshakes(p: Profile, link: LinkConfig) -> tuple[float, float, dict]:
    async with serve() as server, linked(server, link) as (relay, record):
        started = time.monotonic()
        slowest = 0.0
        for i in range(p.handshakes):
            one = time.monotonic()
            async with fresh_client(connect_timeout=60.0) as client:
                await fetch_checked(client, record, KiB, i)
            slowest = max(slowest, time.monotonic() - one)
        return time.monotonic() - started, slowest, relay.stats()


async def handshakeloss(p: Profile) -> str:
    """30 % loss each way: every one of the sequential new tunnels completes its download."""
    took, slowest, link = await _sequential_handshakes(p, p.link(loss=0.30))
    return (
        f"{p.handshakes} tunnels in {took:.1f} s (slowest {slowest:.2f} s); "
        f"{_damage(link, 'lost')} datagrams lost"
    )


async def handshakecorruption(p: Profile) -> str:
    """30 % of datagrams corrupted each way: every sequential new tunnel completes."""
    took, slowest, link = await _sequential_handshakes(p, p.link(corrupt=0.30))
    return (
        f"{p.handshakes} tunnels in {took:.1f} s (slowest {slowest:.2f} s); "
        f"{_damage(link, 'corrupted')} datagrams corrupted"
    )


# --- blackhole and rebinding --------------------------------------------------------------------


async def blackhole(p: Profile) -> str:
    """The link is dead for a while at regular intervals during a long download: it completes
    on the same tunnel."""
    hole = p.blackhole
    link = p.link(rate=p.slow_rate, blackholes=(hole,))
    async with serve() as server, linked(server, link) as (relay, record):
        async with fresh_client() as client:
            started = time.monotonic()
            conn = await client.connect(record, "download", retry_safe=True)
            tunnel = conn.tunnel
            tid = tunnel.tid
            conn.write(b"%d 5\n" % p.blackhole_size)
            conn.write_eof()
            received = bytearray()
            while chunk := await conn.read(1 << 16):
                received += chunk
            took = time.monotonic() - started
            check(
                bytes(received) == payload(p.blackhole_size, 5),
                f"received {len(received)} B, not the {p.blackhole_size} B sent",
            )
            check(client.tunnels == [tunnel], "the download moved to another tunnel")
            check(tunnel.tid == tid or hasattr(Tunnel, "rekey"), "the tunnel changed its ID")
        stats = relay.stats()
        server_tunnels = len(server.tunnels)
    outages = sum(1 for k in range(100) if hole.period * k + hole.period - hole.duration < took)
    check(
        outages >= 1 and stats["s2c"]["blackholed"] > 0,
        "the download ended before the first outage",
    )
    check(server_tunnels <= 1, f"server holds {server_tunnels} tunnels")
    return (
        f"{p.blackhole_size / MiB:g} MiB through {outages} outages of {hole.duration:g} s "
        f"(every {hole.period:g} s) in {took:.1f} s on one tunnel; "
        f"{_damage(stats, 'blackholed')} datagrams blackholed"
    )


async def rebinding(p: Profile) -> str:
    """The client's NAT rebinds (new port, then new address, alternately) during a download:
    it completes, and the server moved the tunnel to each new path only after checking it
    (a TunnelMigrated event, which the core emits when the path answers its challenge)."""
    async with serve() as server:
        migrations = observe_events(server, (TunnelMigrated,))
        link = p.link(rate=p.slow_rate)
        async with linked(server, link, rebind_every=p.rebind_every) as (relay, record):
            async with fresh_client() as client:
                started = time.monotonic()
                await fetch_checked(client, record, p.rebind_size, 3)
                took = time.monotonic() - started
                check(len(client.tunnels) == 1, f"client used {len(client.tunnels)} tunnels")
            moves = [c for c in relay.paths if c.kind != "start"]
    kinds = {c.kind for c in moves}
    check({"port", "address"} <= kinds, f"the download saw only {sorted(kinds)} rebindings")
    followed = [tuple(e.new[:2]) for e in migrations]
    wanted = [tuple(c.new[:2]) for c in moves]
    # A rebinding in the download's last moments may have had no client packet to reveal it.
    missing = [w for w in wanted[:-1] if w not in followed]
    check(not missing, f"the server never validated new paths {missing}")
    stray = [f for f in followed if f not in wanted]
    check(not stray, f"the server moved to addresses the client never used: {stray}")
    return (
        f"{p.rebind_size / MiB:g} MiB in {took:.1f} s through {len(moves)} rebindings "
        f"({', '.join(c.kind for c in moves)}); server validated and followed "
        f"{len(followed)} new paths"
    )


async def rekey(p: Profile) -> str:
    """The client rekeys (new TID and keys) in the middle of a download: it completes."""
    method = getattr(Tunnel, "rekey", None)
    if method is None:
        raise Unsupported("Tunnel.rekey does not exist yet")
    params = [n for n in inspect.signature(method).parameters if n != "self"]
    if params not in ([], ["now"]):
        raise Unsupported(f"Tunnel.rekey{inspect.signature(method)}: unknown signature")
    counter = Counter()
    size = p.loss_size
    async with serve() as server, linked(server, p.link(), tap=counter) as (_, record):
        async with fresh_client() as client:
            conn = await client.connect(record, "download", retry_safe=True)
            conn.write(b"%d 9\n" % size)
            conn.write_eof()
            received = bytearray()
            old_tid = None
            while chunk := await conn.read(1 << 16):
                received += chunk
                if old_tid is None and len(received) >= size // 2:
                    old_tid = conn.tunnel.tid
                    conn.tunnel.rekey(*([time.monotonic()] if params else []))
            check(bytes(received) == payload(size, 9), "the download is not byte-identical")
            check(old_tid is not None and conn.tunnel.tid != old_tid, "the TID did not change")
        server_tunnels = len(server.tunnels)
    tids, answers = counter.tids("c2s"), counter.tids("s2c")
    check(len(tids) >= 2, f"{len(tids)} tunnel IDs from the client: no rekey happened")
    check(len(answers) >= 2, "the server kept answering on the old tunnel ID")
    check(server_tunnels <= 1, f"server holds {server_tunnels} tunnels")
    return (
        f"{size / MiB:g} MiB byte-identical across a rekey in mid-transfer; "
        f"{len(tids)} TIDs from the client, {len(answers)} from the server, one tunnel"
    )


# --- DoS ----------------------------------------------------------------------------------------


async def puzzle(p: Profile) -> str:
    """A server demanding puzzles (threshold 0) under a flood of fake first packets from
    another process: legitimate clients solve their puzzles and complete."""
    config = minimalt.EndpointConfig(puzzle_threshold=0)
    async with serve(config=config) as server:
        record = server.record
        flood = subprocess.Popen(
            [
                sys.executable,
                str(FLOODER),
                record.host,
                str(record.port),
                record.key_id.hex(),
                "--rate",
                str(p.flood_rate),
                "--max-seconds",
                "60",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            loop = asyncio.get_running_loop()
            assert flood.stdout is not None
            ready = await wait_for(
                loop.run_in_executor(None, flood.stdout.readline), 10, "flood start"
            )
            check(ready.startswith("flooding"), f"flooder failed: {ready!r}")
            started = time.monotonic()
            done = 0
            # At least puzzle_clients, and for at least puzzle_seconds (bounded by count too).
            while done < p.puzzle_clients or (
                time.monotonic() - started < p.puzzle_seconds and done < 100 * p.puzzle_clients
            ):
                async with fresh_client(connect_timeout=30.0) as client:
                    await fetch_checked(client, record, KiB, done)
                done += 1
            took = time.monotonic() - started
        finally:
            if flood.stdin is not None:
                flood.stdin.close()
            try:
                flood.wait(timeout=10)
            except subprocess.TimeoutExpired:
                flood.kill()
                flood.wait()
            summary = flood.stdout.read() if flood.stdout else ""
            if flood.stdout is not None:
                flood.stdout.close()
        stats = server.stats()
    sent = int(summary.split()[1]) if summary.startswith("sent") else 0
    demanded = stats["drops"].get("puzzle_demanded", 0)
    check(sent > 0, "the flood sent nothing")
    check(demanded >= done, f"only {demanded} puzzles demanded for {done} clients")
    check(stats["tunnels"] <= done, f"{stats['tunnels']} tunnels: the flood got in")
    return (
        f"{done} clients in a row solved their puzzles and completed in {took:.1f} s "
        f"({took / done * 1000:.0f} ms each) while {sent} fake first packets were sent "
        f"at ~{p.flood_rate}/s; {demanded} puzzles demanded, no tunnel for the flood"
    )


class _Victim(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received += len(data)


async def amplification(p: Profile) -> str:
    """First packets 'spoofed' from other loopback ports (victims that never answer) asking for
    a large download: the server sends each victim at most as many bytes as it received."""
    loop = asyncio.get_running_loop()
    async with serve() as server:
        record = server.record
        victims: list[tuple[asyncio.DatagramTransport, _Victim, int]] = []
        try:
            for i in range(4):
                transport, victim = await loop.create_datagram_endpoint(
                    _Victim, local_addr=("127.0.0.1", 0)
                )
                # A genuine first flight, made by a sans-IO client endpoint we never run again.
                now = time.monotonic()
                core = Endpoint(
                    minimalt.EndpointConfig(), random=os.urandom, wall_offset=time.time() - now
                )
                tunnel = core.connect(record, now, addr=server.address)
                cid = tunnel.open_connection("download", retry_safe=True)
                tunnel.send(cid, b"%d %d\n" % (MiB, i), end_stream=True)
                sent = 0
                for data, _ in core.datagrams_to_send(now):
                    transport.sendto(data, server.address)
                    sent += len(data)
                victims.append((transport, victim, sent))
            # The observation window: what the server sends the victims, retransmissions included.
            await asyncio.sleep(p.amplification_window)
        finally:
            for transport, _, _ in victims:
                transport.close()
    worst = max(v.received / sent for _, v, sent in victims)
    total_in = sum(sent for _, _, sent in victims)
    total_out = sum(v.received for _, v, _ in victims)
    for _, v, sent in victims:
        check(v.received <= sent, f"server sent a victim {v.received} B for {sent} B received")
    check(total_out > 0, "the server answered no first packet (nothing was tested)")
    return (
        f"4 spoofed sources sent {total_in} B asking for 1 MiB each; the server sent them "
        f"{total_out} B in {p.amplification_window:g} s (worst ratio {worst:.2f})"
    )


async def ipv6(p: Profile) -> str:
    """The same over IPv6 (::1), through the link."""
    if not socket.has_ipv6:
        raise Unsupported("this Python has no IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        raise Unsupported(f"no ::1 on this machine: {exc}") from None
    async with serve(host="::1") as server, linked(server, p.link()) as (relay, record):
        check(record.host == "::1", f"record names {record.host}")
        async with fresh_client() as client:
            started = time.monotonic()
            await fetch_checked(client, record, MiB, 6)
            took = time.monotonic() - started
            peer = client.tunnels[0].peer
    check(":" in peer[0], f"the tunnel ran over {peer}")
    return f"1 MiB over [::1] in {took:.2f} s, one tunnel"


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Profile], Awaitable[str]]
    timeout: float  # seconds, full profile

    @property
    def criterion(self) -> str:
        doc = inspect.getdoc(self.run) or ""
        return " ".join(doc.split())


CASES = [
    Case("handshake", handshake, 30),
    Case("transfer", transfer, 120),
    Case("multiplexing", multiplexing, 120),
    Case("zerortt", zerortt, 30),
    Case("longrtt", longrtt, 60),
    Case("transferloss", transferloss, 120),
    Case("handshakeloss", handshakeloss, 300),
    Case("transfercorruption", transfercorruption, 120),
    Case("handshakecorruption", handshakecorruption, 300),
    Case("blackhole", blackhole, 180),
    Case("rebinding", rebinding, 180),
    Case("rekey", rekey, 60),
    Case("puzzle", puzzle, 120),
    Case("amplification", amplification, 60),
    Case("ipv6", ipv6, 60),
]
BY_NAME = {case.name: case for case in CASES}

__all__ = [
    "BY_NAME",
    "CASES",
    "FAST",
    "FULL",
    "PROFILES",
    "Case",
    "CaseFailed",
    "Profile",
    "Unsupported",
    "tid_of",
]
