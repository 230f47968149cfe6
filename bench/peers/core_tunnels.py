"""Server CPU per new tunnel in the sans-IO core alone (no sockets, no event loop), and where
it goes (cProfile): separates the core's share of the runtime figure from the driver's,
uvloop's and the kernel's.

Each iteration is what the runtime benchmark's rr workload does on the wire: a fresh client
endpoint opens a tunnel, sends one 64-byte retry-safe request in its first packet, the server
echoes it and half-closes, the client closes the tunnel, and the server runs its timers until
it has forgotten the tunnel. Only the server endpoint's calls are timed.

    python bench/peers/core_tunnels.py [--count 3000] [--profile] [--sort tottime]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Iterator
from typing import Any

import whatif
from common import REQUEST

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.records import ServerKeys

SERVER = ("127.0.0.1", 4000)
CLIENT = ("127.0.0.1", 5000)


def run(count: int, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    wall = time.time()
    keys = ServerKeys.generate(os.urandom, now_unix=wall)  # type: ignore[arg-type]
    server = Endpoint(
        EndpointConfig(services={"echo"}, max_tunnels_per_source=1 << 30),
        random=os.urandom,  # type: ignore[arg-type]
        server_keys=keys,
        wall_offset=wall,
        now=0.0,
    )
    record = keys.record(*SERVER)
    perf = time.perf_counter
    spent = 0.0
    now = 0.0
    received = sent = 0

    @contextlib.contextmanager
    def timed() -> Iterator[None]:
        """Count the block's time as the server's (and profile it, if asked)."""
        nonlocal spent
        t0 = perf()
        if profiler:
            profiler.enable()
        try:
            yield
        finally:
            if profiler:
                profiler.disable()
            spent += perf() - t0

    def to_server(datagrams: list[tuple[bytes, Any]]) -> list[tuple[bytes, Any]]:
        """The server's part (timed): take datagrams, echo requests, answer."""
        nonlocal received, sent
        with timed():
            for data, _ in datagrams:
                server.receive_datagram(data, CLIENT, now)
            while (event := server.next_event()) is not None:
                if type(event) is E.DataReceived and event.data:
                    event.tunnel.consume(event.cid, len(event.data))
                    event.tunnel.send(event.cid, event.data, end_stream=True)
            out = server.datagrams_to_send(now)
            server.get_timer()
        received += len(datagrams)
        sent += len(out)
        return out

    def server_timers() -> list[tuple[bytes, Any]]:
        """The server's timers, if due (timed)."""
        nonlocal sent
        timer = server.get_timer()
        if timer is None or timer > now:
            return []
        with timed():
            server.handle_timer(now)
            out = server.datagrams_to_send(now)
            server.get_timer()
        sent += len(out)
        return out

    def to_client(datagrams: list[tuple[bytes, Any]]) -> None:
        for data, _ in datagrams:
            client.receive_datagram(data, SERVER, now)

    for _ in range(count):
        client = Endpoint(
            EndpointConfig(),
            random=os.urandom,  # type: ignore[arg-type]
            wall_offset=wall,
        )
        tunnel = client.connect(record, now)
        cid = tunnel.open_connection("echo", retry_safe=True)
        tunnel.send(cid, REQUEST)
        to_client(to_server(client.datagrams_to_send(now)))
        now += 0.0001
        while client.next_event() is not None:
            pass
        tunnel.close()
        to_client(to_server(client.datagrams_to_send(now)))
        now += 0.0001
        to_client(server_timers())
    # Let every closing tunnel expire.
    for _ in range(1000):
        now += 0.01
        to_client(server_timers())
        if not server.tunnels:
            break
    return {
        "server_us_per_tunnel": spent / count * 1e6,
        "datagrams_in_per_tunnel": received / count,
        "datagrams_out_per_tunnel": sent / count,
        "tunnels_left": len(server.tunnels),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--what-if", default="", help="apply these patches first (whatif.py)")
    args = parser.parse_args(argv)
    whatif.apply(args.what_if)
    run(200)  # warm up
    result = run(args.count)
    print(" ".join(f"{k}={v:.1f}" for k, v in result.items()))
    if args.profile:
        profiler = cProfile.Profile()
        run(args.count, profiler)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(args.sort).print_stats(args.top)
        print(text.getvalue())
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
