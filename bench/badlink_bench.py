"""Goodput on bad links: minimalt against aioquic on the same emulated link, in the same run.

The link is the QUIC interop runner's: 10 Mbit/s, 15 ms one way (30 ms RTT), a 64 KiB
drop-tail queue. Scenarios: no loss; 2 % random loss each way; and no loss with one TCP bulk
flow (the kernel's CUBIC) competing for the same bottleneck. Each run downloads ``--mib`` MiB on
a fresh connection; goodput = payload bits / time from connect to the last byte; median of
``--runs`` runs, protocols interleaved.

The network is the TUN namespace pair of tests/netem when it is available (root, TUN, ``ip
netns``): then every IP packet, TCP included, shares one bottleneck. Without it the UDP link
emulator relays minimalt and aioquic, and the TCP scenario is skipped with the reason.

Each side runs its own loop: minimalt on uvloop (its runtime's default), aioquic on the stdlib
loop (uvloop's millisecond ``loop.time()`` costs aioquic's timers and pacing accuracy).

    python bench/badlink_bench.py [--mib 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from latency_bench import (  # noqa: E402
    ALPN,
    _child,
    _client_role,
    _read_json,
    _stop,
    make_certificate,
    write_docs,
)

RATE = 10e6
DELAY = 0.015
QUEUE = 64 << 10
SCENARIOS = {
    "clean": {"loss": 0.0, "tcp": False, "label": "0 % loss"},
    "loss2": {"loss": 0.02, "tcp": False, "label": "2 % loss each way"},
    "tcp": {"loss": 0.0, "tcp": True, "label": "0 % loss, 1 competing TCP flow"},
}
PROTOCOLS = ["minimalt", "minimalt-cubic", "aioquic"]
#: minimalt servers: congestion controller of each (the client only acknowledges).
CONTROLLERS = {"minimalt": "newreno", "minimalt-cubic": "cubic"}
LABELS = {
    "minimalt": "minimalt (NewReno, default)",
    "minimalt-cubic": "minimalt (CUBIC)",
    "aioquic": "aioquic (NewReno)",
}
GOODPUT_START = "<!-- goodput-table:start -->"
GOODPUT_END = "<!-- goodput-table:end -->"
_CHUNK = 64 << 10


def link(loss: float, *, relay: bool = False) -> Any:
    """The link of every scenario. In the namespace network the TUN devices' 1500-byte MTU
    bounds IP packets (TCP segments too); the loopback relay has none of its own, so there it
    drops UDP payloads over 1472 bytes: an Ethernet path either way, where path MTU probing
    finds 1472 bytes as it would on a real one."""
    from minimalt.testing.link import LinkConfig

    return LinkConfig(
        delay=DELAY, rate=RATE, queue=QUEUE, loss=loss, max_datagram=1472 if relay else None
    )


# === servers ====================================================================================


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


async def minimalt_server(host: str, controller: str) -> None:
    import minimalt

    async def download(conn: minimalt.Connection) -> None:
        size = int((await conn.readline()).strip())
        data = memoryview(_payload(size))
        for offset in range(0, size, _CHUNK):
            conn.write(data[offset : offset + _CHUNK])
            await conn.drain()
        conn.write_eof()

    loop = asyncio.get_running_loop()
    config = minimalt.EndpointConfig(congestion_control=controller)
    async with minimalt.serve(download, service="download", host=host, config=config) as server:
        print(json.dumps({"port": server.port}), flush=True)
        advertise = json.loads(await loop.run_in_executor(None, sys.stdin.readline))["advertise"]
        import dataclasses

        unsigned = dataclasses.replace(
            server.record, host=advertise[0], port=advertise[1], signature=b""
        )
        record = dataclasses.replace(
            unsigned, signature=server.identity.signing.sign(unsigned.signed_part())
        )
        print(json.dumps({"record": record.to_text()}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)


async def peer_servers(host: str, certdir: Path) -> None:
    """aioquic and the TCP bulk sender, on the stdlib loop."""
    from aioquic.asyncio import serve
    from aioquic.quic.configuration import QuicConfiguration

    loop = asyncio.get_running_loop()

    async def download(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int((await reader.readline()).strip())
        data = memoryview(_payload(size))
        for offset in range(0, size, _CHUNK):
            writer.write(data[offset : offset + _CHUNK])
            await writer.drain()
        writer.write_eof()

    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(certdir / "cert.pem", certdir / "key.pem")
    quic = await serve(
        host, 0, configuration=config, stream_handler=lambda r, w: loop.create_task(download(r, w))
    )

    async def bulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        block = bytes(_CHUNK)
        try:
            while True:  # until the client hangs up
                writer.write(block)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    tcp = await asyncio.start_server(bulk, host, 0)
    print(
        json.dumps(
            {
                "ports": {
                    "aioquic": quic._transport.get_extra_info("sockname")[1],
                    "tcp": tcp.sockets[0].getsockname()[1],
                }
            }
        ),
        flush=True,
    )
    await loop.run_in_executor(None, sys.stdin.read)
    quic.close()
    tcp.close()


# === clients ====================================================================================


async def fetch_minimalt(spec: dict[str, Any], size: int, name: str) -> float:
    import minimalt

    async with minimalt.Client() as client:
        started = time.perf_counter()
        conn = await client.connect(spec["records"][name], "download", retry_safe=True)
        conn.write(b"%d\n" % size)
        conn.write_eof()
        got = 0
        while chunk := await conn.read(_CHUNK):
            got += len(chunk)
        took = time.perf_counter() - started
    if got != size:
        raise RuntimeError(f"minimalt: {got} of {size} bytes")
    return took


async def fetch_aioquic(spec: dict[str, Any], size: int, name: str = "aioquic") -> float:
    from aioquic.asyncio import connect
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    config.load_verify_locations(spec["cafile"])
    host, port = spec["aioquic"]
    config.server_name = host
    started = time.perf_counter()
    async with connect(host, port, configuration=config) as protocol:
        reader, writer = await protocol.create_stream()
        writer.write(b"%d\n" % size)
        writer.write_eof()
        got = 0
        while chunk := await reader.read(_CHUNK):
            got += len(chunk)
        took = time.perf_counter() - started
    if got != size:
        raise RuntimeError(f"aioquic: {got} of {size} bytes")
    return took


class TcpFlow:
    """A competing TCP bulk download, read by a child process (``--role tcp-sink``) so that
    its reads cost the measured protocol's process no CPU."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        host, port = self.spec["tcp"]
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "tcp-sink",
                "--target",
                f"{host}:{port}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "connected"

    def mark(self) -> tuple[float, int]:
        """(time, bytes received so far) from the sink."""
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write("mark\n")
        self.process.stdin.flush()
        when, total = self.process.stdout.readline().split()
        return float(when), int(total)

    def stop(self) -> None:
        _stop(self.process)


def tcp_sink(target: str) -> None:
    """``--role tcp-sink``: read from the bulk server; answer ``mark`` lines with counters."""
    import selectors
    import socket

    host, _, port = target.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setblocking(False)
    print("connected", flush=True)
    total = 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(sys.stdin, selectors.EVENT_READ)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                if key.fileobj is sock:
                    try:
                        data = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    total += len(data)
                else:
                    line = sys.stdin.readline()
                    if not line:
                        sock.close()
                        return
                    print(f"{time.monotonic()} {total}", flush=True)


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """One scenario: interleaved runs of each protocol, each on its own loop."""
    import uvloop

    size = spec["mib"] << 20
    fetchers = {
        "minimalt": (fetch_minimalt, uvloop.new_event_loop),
        "minimalt-cubic": (fetch_minimalt, uvloop.new_event_loop),
        "aioquic": (fetch_aioquic, asyncio.new_event_loop),
    }
    out: dict[str, Any] = {name: [] for name in PROTOCOLS}
    tcp_share: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    flow = TcpFlow(spec) if spec["competing_tcp"] else None
    try:
        if flow is not None:
            flow.start()
            time.sleep(2.0)  # let TCP fill the bottleneck before the measured flow starts
        for _ in range(spec["runs"]):
            for name in PROTOCOLS:
                fetch, factory = fetchers[name]
                before = flow.mark() if flow is not None else None
                with asyncio.Runner(loop_factory=factory) as runner:
                    took = runner.run(asyncio.wait_for(fetch(spec, size, name), 300))
                out[name].append(size * 8 / took / 1e6)
                if flow is not None and before is not None:
                    after = flow.mark()
                    tcp_share[name].append(
                        (after[1] - before[1]) * 8 / (after[0] - before[0]) / 1e6
                    )
    finally:
        if flow is not None:
            flow.stop()
    return {"goodput": out, "tcp": tcp_share if flow is not None else {}}


# === orchestration ==============================================================================


def measure(mib: int, runs: int, network: str) -> dict[str, Any]:
    me = [sys.executable, str(Path(__file__).resolve())]
    tmp = Path(tempfile.mkdtemp(prefix="mlt-badlink-"))
    make_certificate(tmp)
    used = network
    if network == "auto":
        from tests.netem.network import unavailable

        reason = unavailable()
        used = "netns" if reason is None else "relay"
    else:
        reason = None if network == "netns" else "relay requested"
    results: dict[str, Any] = {"network": used, "scenarios": {}}
    net = peers = None
    relays: list[Any] = []
    servers: dict[str, Any] = {}
    try:
        if used == "netns":
            from tests.netem.network import SERVER_IP, EmulatedNetwork

            net = EmulatedNetwork(link(0.0)).start()
            server_prefix, client_prefix, host = (
                net.exec_prefix("server"),
                net.exec_prefix("client"),
                SERVER_IP,
            )
        else:
            server_prefix, client_prefix, host = [], [], "127.0.0.1"
        addresses = {}
        for name, controller in CONTROLLERS.items():
            servers[name] = _child(
                server_prefix
                + me
                + ["--role", "minimalt-server", "--host", host, "--cc", controller]
            )
            addresses[name] = [host, _read_json(servers[name], "port")]
        peers = _child(
            server_prefix + me + ["--role", "peer-servers", "--host", host, "--certdir", str(tmp)]
        )
        ports = _read_json(peers, "ports")
        addresses.update(aioquic=[host, ports["aioquic"]], tcp=[host, ports["tcp"]])
        if used != "netns":
            for name in PROTOCOLS:
                relay = _child(me + ["--role", "relay", "--target", f"{host}:{addresses[name][1]}"])
                addresses[name] = _read_json(relay, "address")
                relays.append(relay)
        records = {}
        for name, server in servers.items():
            assert server.stdin is not None
            server.stdin.write(json.dumps({"advertise": addresses[name]}) + "\n")
            server.stdin.flush()
            records[name] = _read_json(server, "record")
        for name, scenario in SCENARIOS.items():
            if scenario["tcp"] and used != "netns":
                results["scenarios"][name] = {"skipped": f"needs the namespace network ({reason})"}
                print(f"  {scenario['label']}: skipped ({reason})", flush=True)
                continue
            config = link(scenario["loss"])
            if net is not None:
                net.reconfigure(config)
            for relay in relays:
                assert relay.stdin is not None
                relay_config = link(scenario["loss"], relay=True)
                relay.stdin.write(json.dumps(relay_config.to_dict()) + "\n")
                relay.stdin.flush()
                _read_json(relay, "ok")
            spec = {
                "records": records,
                "aioquic": addresses["aioquic"],
                "tcp": addresses["tcp"],
                "cafile": str(tmp / "cert.pem"),
                "mib": mib,
                "runs": runs,
                "competing_tcp": scenario["tcp"],
            }
            cell = _client_role(client_prefix + me, spec, 1800, f"in {name}")
            results["scenarios"][name] = cell
            print(
                f"  {scenario['label']}: "
                + ", ".join(
                    f"{p} {statistics.median(v):.2f} Mbit/s" for p, v in cell["goodput"].items()
                )
                + "".join(
                    f"; TCP beside {p} {statistics.median(v):.2f} Mbit/s"
                    for p, v in cell["tcp"].items()
                ),
                flush=True,
            )
    finally:
        for server in servers.values():
            _stop(server)
        _stop(peers)
        for relay in relays:
            _stop(relay)
        if net is not None:
            net.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


async def relay_role(target: str) -> None:
    """``--role relay``: the UDP link emulator in front of one server, reconfigured by JSON
    lines (LinkConfig dicts) on stdin."""
    from minimalt.testing.link import LinkConfig, UDPLink

    host, _, port = target.rpartition(":")
    loop = asyncio.get_running_loop()
    async with UDPLink((host, int(port)), link(0.0, relay=True)) as relay:
        print(json.dumps({"address": list(relay.address)}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            relay.reconfigure(LinkConfig.from_dict(json.loads(line)))
            print(json.dumps({"ok": True}), flush=True)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=2, help="MiB per download")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--network", choices=("auto", "netns", "relay"), default="auto")
    parser.add_argument("--out", default=str(HERE / "badlink.json"))
    parser.add_argument(
        "--docs",
        default=str(ROOT / "docs"),
        help="where latency.md (the goodput table) is ('' for nowhere)",
    )
    parser.add_argument("--role", default="orchestrator", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--cc", default="newreno", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "minimalt-server":
        import minimalt

        minimalt.run(minimalt_server(args.host, args.cc))
        return {}
    if args.role == "peer-servers":
        asyncio.run(peer_servers(args.host, Path(args.certdir)))
        return {}
    if args.role == "client":
        print(json.dumps(run_client(json.loads(args.spec))), flush=True)
        return {}
    if args.role == "tcp-sink":
        tcp_sink(args.target)
        return {}
    if args.role == "relay":
        from minimalt.testing.link import precise_loop

        with asyncio.Runner(loop_factory=precise_loop) as runner:
            runner.run(relay_role(args.target))
        return {}

    print(
        f"link {RATE / 1e6:g} Mbit/s, {DELAY * 1000:g} ms one way, {QUEUE >> 10} KiB queue; "
        f"{args.mib} MiB per download, median of {args.runs}",
        flush=True,
    )
    results = measure(args.mib, args.runs, args.network)
    figures: dict[str, float] = {}
    lines = [
        f"Goodput (Mbit/s, median of {args.runs} downloads of {args.mib} MiB) on a "
        f"{RATE / 1e6:g} Mbit/s, {DELAY * 1000:g} ms one-way link ({QUEUE >> 10} KiB queue); "
        f"network: {results['network']}.",
        "",
        "| scenario | " + " | ".join(LABELS[p] for p in PROTOCOLS) + " | competing TCP flow "
        "(beside each, same order) |",
        "|---|" + "---:|" * len(PROTOCOLS) + "---:|",
    ]
    for name, scenario in SCENARIOS.items():
        cell = results["scenarios"][name]
        if "skipped" in cell:
            lines.append(
                f"| {scenario['label']} | "
                + "– | " * len(PROTOCOLS)
                + f"skipped: {cell['skipped']} |"
            )
            continue
        med = {p: statistics.median(v) for p, v in cell["goodput"].items()}
        tcp = {p: statistics.median(v) for p, v in cell["tcp"].items()}
        for p, value in med.items():
            figures[f"goodput_{name}_{p}_mbps"] = round(value, 3)
        for p, value in tcp.items():
            figures[f"goodput_{name}_tcp_beside_{p}_mbps"] = round(value, 3)
        beside = " / ".join(f"{tcp[p]:.2f}" for p in PROTOCOLS) if tcp else "–"
        lines.append(
            f"| {scenario['label']} | "
            + " | ".join(f"{med[p]:.2f}" for p in PROTOCOLS)
            + f" | {beside} |"
        )
    print()
    print("\n".join(lines))
    Path(args.out).write_text(
        json.dumps({"results": results, "figures": figures, "table": "\n".join(lines)}, indent=2)
        + "\n"
    )
    if args.docs:
        lines.append(
            f"\nReproduce: `python bench/badlink_bench.py --mib {args.mib} "
            f"--runs {args.runs}` (part of `make bench`)."
        )
        write_docs("\n".join(lines), Path(args.docs) / "latency.md", GOODPUT_START, GOODPUT_END)
    return figures


if __name__ == "__main__":
    main()
