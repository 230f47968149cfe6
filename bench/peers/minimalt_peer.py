"""minimalt benchmark peer: a server (services ``sink`` and ``echo``) or a client running one
workload (``bulk``, ``rr``, ``hold``); see ``common.py`` for the workloads and the control
channel. Public API only (``minimalt.serve``, ``minimalt.Client``).

    python bench/peers/minimalt_peer.py server [--loop uvloop] [--tracemalloc]
    python bench/peers/minimalt_peer.py client --record mlt1:... --test bulk --bytes 209715200
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import common
import whatif

import minimalt
import minimalt.proto

_COUNT = common.COUNT


def datagram_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The default (path MTU probing from the 1200-byte base), or a fixed datagram size: a
    forced size means no probing, so that the figure is for that size and no other."""
    if args.datagram_size is None:
        return {}
    return {"max_datagram_size": args.datagram_size, "pmtu_probing": False}


def server_config(args: argparse.Namespace) -> minimalt.EndpointConfig:
    return minimalt.EndpointConfig(
        idle_timeout=args.idle_timeout,
        # One source address (loopback) opens every tunnel of the benchmark.
        max_tunnels_per_source=1_000_000,
        max_tunnels=1_000_000,
        puzzle_threshold=None if args.no_puzzles else minimalt.EndpointConfig.puzzle_threshold,
        **datagram_settings(args),
    )


def client_config(args: argparse.Namespace) -> minimalt.EndpointConfig:
    return minimalt.EndpointConfig(idle_timeout=args.idle_timeout, **datagram_settings(args))


async def sink(conn: minimalt.Connection) -> None:
    (expected,) = _COUNT.unpack(await conn.readexactly(_COUNT.size))
    total = 0
    read = conn.read
    while total < expected:
        block = await read(1 << 20)
        if not block:
            break
        total += len(block)
    conn.write(_COUNT.pack(total))
    await conn.drain()


async def echo(conn: minimalt.Connection) -> None:
    conn.write(await conn.readexactly(common.REQUEST_SIZE))
    await conn.drain()


async def serve(args: argparse.Namespace) -> None:
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(args.tracemalloc)
    server = await minimalt.serve(
        services={"sink": sink, "echo": echo}, host="127.0.0.1", config=server_config(args)
    )

    def extra() -> dict[str, Any]:
        stats = server.stats()
        return {
            "tunnels": stats["tunnels"],
            "drops": stats["drops"],
            "datagrams_received": stats["datagrams_received"],
            "datagrams_sent": stats["datagrams_sent"],
            **whatif.COUNTERS,
        }

    control = common.Control(extra)
    control.start({"record": server.record.to_text(), "compiled": minimalt.proto.compiled()})
    await control.done
    await server.aclose()


async def bulk(args: argparse.Namespace) -> dict[str, Any]:
    async with minimalt.Client(config=client_config(args)) as client:
        meter = common.Meter()
        conn = await client.connect(args.record, "sink", retry_safe=True)
        written = await common.upload(conn.write, conn.drain, conn.readexactly, args.bytes)
        figures = meter.read()
        stats = conn.stats
        conn.close()
    return {"bytes": written, **figures, "tunnel": _short(stats)}


def _short(stats: Any) -> Any:
    if not isinstance(stats, dict):
        return None
    keys = (
        "rtt",
        "smoothed_rtt",
        "cwnd",
        "packets_sent",
        "packets_lost",
        "retransmits",
        "bytes_sent",
        "lost",
        "packets_retransmitted",
        "datagram_size",
    )
    return {k: v for k, v in stats.items() if k in keys}


async def rr(args: argparse.Namespace) -> dict[str, Any]:
    request = common.REQUEST
    config = client_config(args)
    record = minimalt.load_record(args.record)

    async def once() -> None:
        client = minimalt.Client(config=config)
        try:
            conn = await client.connect(record, "echo", retry_safe=True)
            conn.write(request)
            if await conn.readexactly(len(request)) != request:
                raise SystemExit("echo mismatch")
        finally:
            await client.aclose()

    return await common.run_rr(once, args.count, args.concurrency)


async def hold(args: argparse.Namespace) -> None:
    """Open ``count`` tunnels, each from its own client endpoint, each proven by one echo and
    left idle (no connection open); keep them until stdin closes."""
    common.raise_fd_limit(args.count + 256)
    request = common.REQUEST
    config = client_config(args)
    record = minimalt.load_record(args.record)
    clients: list[minimalt.Client] = []
    left = args.count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            client = minimalt.Client(config=config)
            clients.append(client)
            conn = await client.connect(record, "echo", retry_safe=True)
            conn.write(request)
            await conn.readexactly(len(request))
            conn.close()
            await conn.wait_closed()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    common.emit({"opened": len(clients), "wall": time.perf_counter() - t0})
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    for client in clients:
        client.close()
    await asyncio.gather(*(c.wait_closed() for c in clients), return_exceptions=True)


async def client_main(args: argparse.Namespace) -> None:
    if args.test == "bulk":
        common.emit(await bulk(args))
    elif args.test == "rr":
        common.emit(await rr(args))
    else:
        await hold(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument("--no-puzzles", action="store_true", help="server: never demand puzzles")
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="server: trace allocations (answers `profile PATH`)",
    )
    parser.add_argument(
        "--datagram-size",
        type=int,
        default=None,
        help="send datagrams of this size at most, with no path MTU probing (default: probe "
        "from the protocol's 1200-byte base up to what the path carries)",
    )
    parser.add_argument("--record")
    parser.add_argument("--test", choices=["bulk", "rr", "hold"])
    parser.add_argument("--bytes", type=int, default=200 << 20)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--what-if", default="", help="apply these patches first (see whatif.py)")
    args = parser.parse_args()
    whatif.apply(args.what_if)
    if args.role == "server":
        common.run(serve(args), args.loop)
    else:
        common.run(client_main(args), args.loop)


if __name__ == "__main__":
    main()
