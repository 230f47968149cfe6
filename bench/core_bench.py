"""Benchmark of the sans-IO core alone: CPU time per 1200-byte packet on each side, and goodput.

Two endpoints exchange datagrams directly in memory (no sockets, no simulated delay): the
sender's cost is ``send`` + ``datagrams_to_send`` + processing the acks it gets back; the
receiver's is ``receive_datagram`` + taking the data + sending its acks. Each side's CPU time
is measured with ``time.perf_counter`` around its own calls only.

    python bench/core_bench.py [--mib 64] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.crypto import SeededRandom
from minimalt.proto.endpoint import Endpoint
from minimalt.proto.records import ServerKeys

SERVER = ("127.0.0.1", 4000)
CLIENT = ("127.0.0.1", 5000)
WALL = 1.7e9


def run_once(total: int, *, cc: str = "newreno") -> dict[str, float]:
    keys = ServerKeys.generate(SeededRandom(1), now_unix=WALL)
    big = 64 << 20
    # Fixed 1200-byte packets (no path MTU probing, which would take this in-memory path, with
    # no MTU, to 16 KiB): the figures are per 1200-byte packet.
    server = Endpoint(
        EndpointConfig(
            services={"sink"},
            congestion_control=cc,
            connection_window=big,
            tunnel_window=big,
            pmtu_probing=False,
        ),
        random=SeededRandom(2),
        server_keys=keys,
        wall_offset=WALL,
    )
    client = Endpoint(
        EndpointConfig(congestion_control=cc, pmtu_probing=False),
        random=SeededRandom(3),
        wall_offset=WALL,
    )
    now = 0.0
    tunnel = client.connect(keys.record(*SERVER), now)
    cid = tunnel.open_connection("sink", retry_safe=True)
    chunk = bytes(1 << 20)
    written = 0
    received = 0
    send_cpu = recv_cpu = 0.0
    data_packets = 0
    perf = time.perf_counter
    wall_start = perf()
    while received < total:
        t0 = perf()
        while written < total and tunnel.buffered(cid) < (8 << 20):
            tunnel.send(cid, chunk)
            written += len(chunk)
        out = client.datagrams_to_send(now)
        t1 = perf()
        send_cpu += t1 - t0
        for datagram, _ in out:
            server.receive_datagram(datagram, CLIENT, now)
        while (event := server.next_event()) is not None:
            if type(event) is E.DataReceived:
                received += len(event.data)
                event.tunnel.consume(event.cid, len(event.data))
        acks = server.datagrams_to_send(now)
        t2 = perf()
        recv_cpu += t2 - t1
        data_packets += len(out)
        for datagram, _ in acks:
            client.receive_datagram(datagram, SERVER, now)
        while client.next_event() is not None:
            pass
        send_cpu += perf() - t2
        now += 0.0002
        timer = client.get_timer()
        if timer is not None and timer <= now:
            client.handle_timer(now)
        timer = server.get_timer()
        if timer is not None and timer <= now:
            server.handle_timer(now)
    wall = perf() - wall_start
    return {
        "send_us_per_packet": send_cpu / data_packets * 1e6,
        "recv_us_per_packet": recv_cpu / data_packets * 1e6,
        "goodput_MBps": total / (send_cpu + recv_cpu) / 1e6,
        "goodput_wall_MBps": total / wall / 1e6,
        "packets": data_packets,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32, help="bytes to transfer per run (MiB)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the median is reported")
    parser.add_argument("--cc", default="newreno", help="congestion controller")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    runs = []
    for i in range(args.repeat):
        runs.append(run_once(args.mib << 20, cc=args.cc))
        print(
            f"  run {i + 1}/{args.repeat}: "
            f"send {runs[-1]['send_us_per_packet']:.2f} us/pkt, "
            f"recv {runs[-1]['recv_us_per_packet']:.2f} us/pkt",
            file=sys.stderr,
        )
    result = {
        f"core_{key}": statistics.median(run[key] for run in runs)
        for key in ("send_us_per_packet", "recv_us_per_packet", "goodput_MBps")
    }
    print("| metric | median | target |")
    print("|---|---|---|")
    send, recv = result["core_send_us_per_packet"], result["core_recv_us_per_packet"]
    print(f"| sender CPU per 1200-byte packet | {send:.2f} µs | <= 8 µs |")
    print(f"| receiver CPU per 1200-byte packet | {recv:.2f} µs | <= 8 µs |")
    goodput = result["core_goodput_MBps"]
    print(f"| goodput, one connection, both sides on one core | {goodput:.1f} MB/s | |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
