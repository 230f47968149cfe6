"""Latency to the first response byte on a fresh connection: minimalt against TCP, TLS and QUIC.

For each one-way delay (0.25, 1, 8, 32, 64 ms by default) and each protocol, the time from
``connect`` to the first byte of the response to a small request, median of several runs:

* ``tcp``: plain TCP (handshake, then request and response);
* ``tls12``/``tls13``: TCP + TLS 1.2 / 1.3 (Python ``ssl``, self-signed ECDSA P-256 certificate
  made at run time, verified by the client);
* ``quic``: aioquic, full handshake; ``quic-0rtt``: aioquic resuming with a session ticket from
  the previous connection, the request in 0-RTT data;
* ``minimalt``: minimalt with the server's record cached (a fresh tunnel, request in the first
  flight);
* ``minimalt+dir``: minimalt when the record must be looked up first, in the directory
  service (``minimalt.serve_directory``, ``DirectoryClient.lookup`` with the cache bypassed)
  whose own record the client holds, as it does after its first contact; then the connection
  as above. ``minimalt+dir-first``: the first contact, when the client knows only the
  directory's address and key (its record comes back on the way), then lookup and connection.

The network: with root, TUN and ``ip netns`` (tests/netem), client and servers run in two
network namespaces joined by the userspace forwarder, so every IP packet (TCP's SYN included)
crosses the emulated link. Otherwise a userspace relay per service (the UDP link emulator, and
a TCP proxy that holds the client's first bytes for one round trip to stand in for the
handshake it cannot delay). The output says which one was used.

Writes ``bench/latency.json``, the table into ``docs/latency.md`` (between markers) and the
plot ``docs/latency.svg``; ``main(argv)`` returns the figures for ``bench/run.py``.

    python bench/latency_bench.py [--delays 0.25,1,8,32,64] [--runs 7] [--network auto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from minimalt.testing.certs import self_signed_certificate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROTOCOLS = [
    "tcp",
    "tls12",
    "tls13",
    "quic",
    "quic-0rtt",
    "minimalt",
    "minimalt+dir",
    "minimalt+dir-first",
]
LABELS = {
    "tcp": "TCP + request",
    "tls12": "TCP + TLS 1.2",
    "tls13": "TCP + TLS 1.3",
    "quic": "QUIC (aioquic), full handshake",
    "quic-0rtt": "QUIC (aioquic), 0-RTT resumption",
    "minimalt": "minimalt, cached record",
    "minimalt+dir": "minimalt + directory lookup",
    "minimalt+dir-first": "minimalt + first contact with the directory",
}
#: Round trips each protocol needs in theory (connection set-up + request/response).
EXPECTED_RTTS = {
    "tcp": 2,
    "tls12": 4,
    "tls13": 3,
    "quic": 2,
    "quic-0rtt": 1,
    "minimalt": 1,
    "minimalt+dir": 2,
    "minimalt+dir-first": 3,
}
DEFAULT_DELAYS = [0.25, 1.0, 8.0, 32.0, 64.0]
REQUEST = b"GET /hello\n"
RESPONSE = b"hello from the server " + b"." * 74 + b"\n"  # 97 bytes
ALPN = "mlt-bench"
LOOKUP_NAME = "bench.minimalt.test"
TABLE_START = "<!-- latency-table:start -->"
TABLE_END = "<!-- latency-table:end -->"
MARKS = {
    "tcp": "#7f7f7f",
    "tls12": "#d62728",
    "tls13": "#ff7f0e",
    "quic": "#9467bd",
    "quic-0rtt": "#8c564b",
    "minimalt": "#2ca02c",
    "minimalt+dir": "#17becf",
    "minimalt+dir-first": "#bcbd22",
}
#: Drawn dashed: lines that would hide another one (3 RTT, like TLS 1.3).
DASHED = {"minimalt+dir-first"}


# === certificates ================================================================================


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """The bench's self-signed certificate: loopback and the namespace network's address."""
    return self_signed_certificate(directory, ["127.0.0.1", "10.77.0.2", "::1"])


# === the server process =========================================================================


async def _answer_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readline()
        writer.write(RESPONSE)
        await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def run_servers(host: str, certdir: Path, advertise: dict[str, list[Any]] | None) -> None:
    """Every server, on one loop: print their ports and the minimalt records (naming the
    ``advertise`` addresses, relays in front of them, when given), serve until stdin closes."""
    from aioquic.asyncio import serve as quic_serve
    from aioquic.quic.configuration import QuicConfiguration

    import minimalt

    cert, key = certdir / "cert.pem", certdir / "key.pem"
    loop = asyncio.get_running_loop()
    ports: dict[str, int] = {}
    closers: list[Any] = []

    for name, version in (
        ("tcp", None),
        ("tls12", ssl.TLSVersion.TLSv1_2),
        ("tls13", ssl.TLSVersion.TLSv1_3),
    ):
        context = None
        if version is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            context.minimum_version = context.maximum_version = version
            context.num_tickets = 0  # fresh handshakes only: no resumption to measure here
        server = await asyncio.start_server(_answer_stream, host, 0, ssl=context)
        ports[name] = server.sockets[0].getsockname()[1]
        closers.append(server)

    tickets: dict[bytes, Any] = {}
    quic_config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    quic_config.load_cert_chain(cert, key)

    def quic_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop.create_task(_answer_stream(reader, writer))

    quic = await quic_serve(
        host,
        0,
        configuration=quic_config,
        stream_handler=quic_stream,
        session_ticket_fetcher=tickets.pop,
        session_ticket_handler=lambda t: tickets.__setitem__(t.ticket, t),
    )
    ports["quic"] = quic._transport.get_extra_info("sockname")[1]
    closers.append(quic)

    async def bench(conn: minimalt.Connection) -> None:
        await conn.readline()
        conn.write(RESPONSE)
        conn.write_eof()

    def where(name: str) -> Any:
        return tuple(advertise[name]) if advertise else None

    target = await minimalt.serve(
        bench,
        service="bench",
        host=host,
        advertise=where("minimalt"),
        identity=minimalt.Identity.generate(LOOKUP_NAME),
    )
    ports["minimalt"] = target.port
    closers.append(target)
    directory = await minimalt.serve_directory(
        host=host, store=":memory:", advertise=where("directory")
    )
    ports["directory"] = directory.address[1]
    closers.append(directory)
    echo, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=(host, 0))
    ports["ping"] = echo.get_extra_info("sockname")[1]
    closers.append(echo)

    print(json.dumps({"ports": ports}), flush=True)
    # The relays in front of us (if any) learn where to forward; then we can register the
    # target at the directory as clients reach it (through the relay).
    await loop.run_in_executor(None, sys.stdin.readline)
    async with minimalt.DirectoryClient(
        directory.address, directory.identity.public, record=directory.record
    ) as registrar:
        await registrar.register(target.record, target.identity)
    records = {"minimalt": target.record.to_text(), "directory": directory.record.to_text()}
    print(json.dumps({"records": records}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for closer in closers:
        closer.close()
    await target.wait_closed()
    await directory.wait_closed()


# === the client process =========================================================================


async def _first_byte(reader: Any) -> None:
    data = await reader.read(1)
    if not data:
        raise ConnectionError("the server closed without answering")


async def measure_tcp(spec: dict[str, Any], name: str) -> float:
    host, port = spec["addresses"][name]
    context = None
    if name != "tcp":
        context = ssl.create_default_context(cafile=spec["cafile"])
        version = ssl.TLSVersion.TLSv1_2 if name == "tls12" else ssl.TLSVersion.TLSv1_3
        context.minimum_version = context.maximum_version = version
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname=spec["server_name"] if context else None
    )
    writer.write(REQUEST)
    await _first_byte(reader)
    took = time.perf_counter() - started
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass
    return took


class QuicClient:
    """aioquic client runs; keeps the newest session ticket for the 0-RTT runs."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.ticket: Any = None

    def _configuration(self, ticket: Any = None) -> Any:
        from aioquic.quic.configuration import QuicConfiguration

        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
        config.load_verify_locations(self.spec["cafile"])
        config.server_name = self.spec["server_name"]
        config.session_ticket = ticket
        return config

    async def run(self, zero_rtt: bool) -> float:
        from aioquic.asyncio import connect

        host, port = self.spec["addresses"]["quic"]
        ticket, self.ticket = (self.ticket, None) if zero_rtt else (None, self.ticket)
        if zero_rtt and ticket is None:
            await self.run(False)  # no ticket yet: one full connection to get one
            ticket, self.ticket = self.ticket, None
        got_ticket = asyncio.get_running_loop().create_future()

        def on_ticket(new: Any) -> None:
            self.ticket = new
            if not got_ticket.done():
                got_ticket.set_result(None)

        started = time.perf_counter()
        async with connect(
            host,
            port,
            configuration=self._configuration(ticket),
            session_ticket_handler=on_ticket,
            wait_connected=not zero_rtt,
            local_port=0,
        ) as protocol:
            reader, writer = await protocol.create_stream()
            writer.write(REQUEST)
            writer.write_eof()
            await _first_byte(reader)
            took = time.perf_counter() - started
            if zero_rtt and not protocol._quic.tls.early_data_accepted:
                raise RuntimeError("aioquic refused the 0-RTT data")
            await asyncio.wait_for(got_ticket, 5)  # the ticket for the next 0-RTT run
        return took


async def measure_minimalt(spec: dict[str, Any], lookup: str | None = None) -> float:
    """A fresh client; ``lookup``: None (record cached), "cached" (directory record known) or
    "first" (only the directory's address and key known)."""
    import minimalt

    client = minimalt.Client()
    try:
        directory = minimalt.load_record(spec["records"]["directory"])
        started = time.perf_counter()
        if lookup is not None:
            resolver = minimalt.DirectoryClient(
                (directory.host, directory.port),
                directory.identity,
                client=client,
                record=directory if lookup == "cached" else None,
            )
            record: Any = await resolver.lookup(LOOKUP_NAME, use_cache=False)
        else:
            record = spec["records"]["minimalt"]
        conn = await client.connect(record, "bench", retry_safe=True)
        conn.write(REQUEST)
        await _first_byte(conn)
        took = time.perf_counter() - started
    finally:
        await client.aclose()
    return took


class _Pinger(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def path_rtt(spec: dict[str, Any], count: int = 7) -> float:
    """Median round trip of a small UDP datagram over the same path (the baseline)."""
    loop = asyncio.get_running_loop()
    host, port = spec["addresses"]["ping"]
    transport, pinger = await loop.create_datagram_endpoint(_Pinger, remote_addr=(host, port))
    samples = []
    try:
        for _ in range(count):
            pinger.waiter = loop.create_future()
            started = time.perf_counter()
            transport.sendto(b"ping" * 8)
            try:
                await asyncio.wait_for(pinger.waiter, 2.0)
            except TimeoutError:
                continue
            samples.append(time.perf_counter() - started)
    finally:
        transport.close()
    return statistics.median(samples) if samples else float("nan")


async def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    quic = QuicClient(spec)
    measures = {
        "tcp": lambda: measure_tcp(spec, "tcp"),
        "tls12": lambda: measure_tcp(spec, "tls12"),
        "tls13": lambda: measure_tcp(spec, "tls13"),
        "quic": lambda: quic.run(False),
        "quic-0rtt": lambda: quic.run(True),
        "minimalt": lambda: measure_minimalt(spec),
        "minimalt+dir": lambda: measure_minimalt(spec, "cached"),
        "minimalt+dir-first": lambda: measure_minimalt(spec, "first"),
    }
    protocols = [p for p in PROTOCOLS if p in spec["protocols"]]
    for name in protocols:  # warm-up: imports, first contexts, first sockets
        await asyncio.wait_for(measures[name](), 30)
    rtt = await path_rtt(spec)
    runs: dict[str, list[float]] = {name: [] for name in protocols}
    errors: dict[str, str] = {}
    for _ in range(spec["runs"]):  # interleaved, so slow drifts hit every protocol alike
        for name in protocols:
            try:
                runs[name].append(await asyncio.wait_for(measures[name](), 30))
            except Exception as exc:  # reported per cell, the other cells still run
                errors[name] = f"{type(exc).__name__}: {exc}"
    return {"path_rtt": rtt, "runs": runs, "errors": errors}


# === the userspace network (fallback without namespaces) ========================================


class TcpDelayProxy:
    """A TCP proxy delaying each direction by ``delay``; the client's first bytes are held for
    one round trip after accept, standing in for the TCP handshake it cannot delay."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target = target
        self.delay = delay
        self.server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        accepted = time.monotonic()
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            self._pump(client_r, server_w, not_before=accepted + 2 * self.delay),
            self._pump(server_r, client_w, not_before=0.0),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, not_before: float
    ) -> None:
        from minimalt.testing.link import DelayLine

        line = DelayLine(asyncio.get_running_loop())
        try:
            while data := await reader.read(65536):
                at = max(time.monotonic(), not_before) + self.delay
                line.put(at, lambda d, _: writer.write(d), data, None)
            line.put(time.monotonic() + self.delay, lambda _d, _a: writer.write_eof(), b"", None)
            await asyncio.sleep(self.delay + 0.01)
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def run_network(kinds: dict[str, str], delay: float) -> None:
    """Relays for the servers (``--role network``): print their addresses (they listen before
    the servers exist, so the servers can name them in their records), then take
    ``{"targets": {name: [host, port]}}`` and ``{"delay": seconds}`` lines until stdin closes."""
    from minimalt.testing.link import LinkConfig, UDPLink

    loop = asyncio.get_running_loop()
    relays: dict[str, Any] = {}
    addresses = {}
    nowhere = ("127.0.0.1", 9)  # until the targets arrive
    for name, kind in kinds.items():
        if kind == "udp":
            relay = await UDPLink(nowhere, LinkConfig(delay=delay)).start()
            addresses[name] = list(relay.address)
        else:
            relay = TcpDelayProxy(nowhere, delay)
            addresses[name] = list(await relay.start())
        relays[name] = relay
    print(json.dumps({"addresses": addresses}), flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        for name, target in command.get("targets", {}).items():
            relays[name].target = (target[0], int(target[1]))
        if "delay" in command:
            for relay in relays.values():
                if isinstance(relay, UDPLink):
                    relay.reconfigure(LinkConfig(delay=command["delay"]))
                else:
                    relay.delay = command["delay"]
        print(json.dumps({"ok": True}), flush=True)
    for relay in relays.values():
        relay.close()


# === the orchestrator ===========================================================================


def _read_json(process: subprocess.Popen[str], key: str) -> Any:
    """``key`` of the child's next JSON line (kept, so a second key of it can be read)."""
    assert process.stdout is not None
    pending = _LINES.setdefault(process.pid, {})
    if key not in pending:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited early (code {process.wait()})")
        pending.clear()
        pending.update(json.loads(line))
    return pending.pop(key)


_LINES: dict[int, dict[str, Any]] = {}
#: The servers the server process runs (and the relays of the fallback network).
SERVERS = ["tcp", "tls12", "tls13", "quic", "minimalt", "directory", "ping"]


def _client_role(
    command: list[str], spec: dict[str, Any], timeout: float, what: str
) -> dict[str, Any]:
    """Run ``command --role client --spec SPEC`` (a benchmark's own client role, in a process
    of its own) and return the JSON line it prints last; ``what`` names the cell in errors."""
    done = subprocess.run(
        command + ["--role", "client", "--spec", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"client failed {what}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _child(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT
    )


def _stop(process: subprocess.Popen[str] | None) -> None:
    if process is None:
        return
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def measure(delays: list[float], runs: int, network: str, protocols: list[str]) -> dict[str, Any]:
    """Run the whole table; returns the raw results (see ``bench/latency.json``)."""
    from minimalt.testing.link import LinkConfig

    me = [sys.executable, str(Path(__file__).resolve())]
    tmp = Path(tempfile.mkdtemp(prefix="mlt-latency-"))
    make_certificate(tmp)
    net = server = relays = None
    used = network
    if network == "auto":
        from tests.netem.network import unavailable

        reason = unavailable()
        used = "netns" if reason is None else "proxy"
        if reason is not None:
            print(f"(no namespaces: {reason}; using userspace relays)", flush=True)
    results: dict[str, Any] = {"network": used, "cells": {}}
    try:
        if used == "netns":
            from tests.netem.network import SERVER_IP, EmulatedNetwork

            net = EmulatedNetwork(LinkConfig(delay=delays[0] / 1000)).start()
            server = _child(
                net.exec_prefix("server")
                + me
                + ["--role", "server", "--host", SERVER_IP, "--certdir", str(tmp)]
            )
            ports = _read_json(server, "ports")
            addresses = {name: [SERVER_IP, port] for name, port in ports.items()}
            prefix = net.exec_prefix("client")
        else:
            kinds = {
                name: "tcp" if name in ("tcp", "tls12", "tls13") else "udp" for name in SERVERS
            }
            relays = _child(
                me
                + [
                    "--role",
                    "network",
                    "--targets",
                    json.dumps(kinds),
                    "--delay",
                    str(delays[0] / 1000),
                ]
            )
            addresses = _read_json(relays, "addresses")
            advertise = {name: addresses[name] for name in ("minimalt", "directory")}
            server = _child(
                me
                + [
                    "--role",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--certdir",
                    str(tmp),
                    "--advertise",
                    json.dumps(advertise),
                ]
            )
            ports = _read_json(server, "ports")
            assert relays.stdin is not None
            relays.stdin.write(
                json.dumps({"targets": {name: ["127.0.0.1", port] for name, port in ports.items()}})
                + "\n"
            )
            relays.stdin.flush()
            _read_json(relays, "ok")
            prefix = []
        assert server.stdin is not None
        server.stdin.write("go\n")
        server.stdin.flush()
        records = _read_json(server, "records")
        server_name = addresses["tcp"][0]
        for delay in delays:
            if net is not None:
                net.reconfigure(LinkConfig(delay=delay / 1000))
            else:
                assert relays is not None and relays.stdin is not None
                relays.stdin.write(json.dumps({"delay": delay / 1000}) + "\n")
                relays.stdin.flush()
                _read_json(relays, "ok")
            spec = {
                "addresses": addresses,
                "records": records,
                "cafile": str(tmp / "cert.pem"),
                "server_name": server_name,
                "runs": runs,
                "protocols": protocols,
            }
            cell = _client_role(prefix + me, spec, 900, f"at {delay} ms")
            results["cells"][str(delay)] = cell
            medians = ", ".join(
                f"{p} {statistics.median(v) * 1000:.1f}" for p, v in cell["runs"].items() if v
            )
            errors = f"; errors {cell['errors']}" if cell["errors"] else ""
            print(
                f"  {delay:g} ms one way: path RTT {cell['path_rtt'] * 1000:.2f} ms; "
                f"{medians}{errors}",
                flush=True,
            )
    finally:
        _stop(server)
        _stop(relays)
        if net is not None:
            net.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summarise(raw: dict[str, Any], delays: list[float], protocols: list[str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for delay in delays:
        cell = raw["cells"][str(delay)]
        rtt_nominal = 2 * delay
        for name in protocols:
            runs = cell["runs"].get(name) or []
            if not runs:
                continue
            median = statistics.median(runs) * 1000
            table.setdefault(name, {})[str(delay)] = {
                "median_ms": round(median, 3),
                "min_ms": round(min(runs) * 1000, 3),
                "max_ms": round(max(runs) * 1000, 3),
                "runs": len(runs),
                "rtts": round(median / rtt_nominal, 2),
                "rtts_measured_path": round(median / (cell["path_rtt"] * 1000), 2),
            }
    return table


def markdown(table: dict[str, Any], raw: dict[str, Any], delays: list[float], runs: int) -> str:
    network = {
        "netns": "two network namespaces joined by TUN devices and the userspace "
        "forwarder (tests/netem): every IP packet crosses the emulated link",
        "proxy": "userspace relays (UDP link emulator; TCP proxy holding the first "
        "client bytes one RTT for the handshake)",
    }[raw["network"]]
    lines = [
        f"Network: {network}. Median of {runs} runs per cell (interleaved), fresh connection "
        f"each time; `python bench/latency_bench.py --runs {runs}` "
        f"(or `make bench-latency`). {raw['environment']}.",
        "",
        "Milliseconds from `connect` to the first response byte, and in round trips (latency "
        "divided by the nominal RTT, 2 x one-way delay):",
        "",
        "| protocol | expected RTTs | "
        + " | ".join(f"{d:g} ms ({2 * d:g} ms RTT)" for d in delays)
        + " |",
        "|---|---:|" + "---:|" * len(delays),
    ]
    for name in PROTOCOLS:
        if name not in table:
            continue
        cells = []
        for delay in delays:
            c = table[name].get(str(delay))
            cells.append("–" if c is None else f"{c['median_ms']:.1f} ms ({c['rtts']:.2f})")
        lines.append(f"| {LABELS[name]} | {EXPECTED_RTTS[name]} | " + " | ".join(cells) + " |")
    path = " | ".join(f"{raw['cells'][str(d)]['path_rtt'] * 1000:.2f} ms" for d in delays)
    lines.append(f"| *measured path RTT (UDP ping)* | | {path} |")
    lines += [
        "",
        "A least-squares line through each row, latency = fixed + slope x RTT, over the measured "
        "path RTTs: the slope is the round trips the protocol really waits for, the fixed part "
        "its processing time (CPU, crypto, wake-ups) on this machine:",
        "",
        "| protocol | expected RTTs | slope (RTTs) | fixed (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name in PROTOCOLS:
        if name not in table:
            continue
        points = [
            (raw["cells"][str(d)]["path_rtt"] * 1000, table[name][str(d)]["median_ms"])
            for d in delays
            if str(d) in table[name]
        ]
        if len(points) >= 2:
            slope, fixed = fit_line(points)
            table[name]["fit"] = {"slope_rtts": round(slope, 3), "fixed_ms": round(fixed, 3)}
            lines.append(
                f"| {LABELS[name]} | {EXPECTED_RTTS[name]} | {slope:.2f} | "
                f"{fixed if abs(fixed) >= 0.05 else 0.0:.1f} |"
            )
    errors = {d: raw["cells"][str(d)]["errors"] for d in delays if raw["cells"][str(d)]["errors"]}
    if errors:
        lines += ["", f"Errors: {errors}"]
    return "\n".join(lines)


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through ``points``."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0
    return slope, mean_y - slope * mean_x


def plot_svg(table: dict[str, Any], delays: list[float], path: Path) -> None:
    """Latency against RTT, one line per protocol: a small hand-written SVG (no matplotlib)."""
    width, height, left, right, top, bottom = 880, 460, 70, 340, 30, 55
    xs = [2 * d for d in delays]
    ymax = max(c["median_ms"] for cells in table.values() for d, c in cells.items() if d != "fit")
    step = next(s for s in (10, 20, 50, 100, 200, 500, 1000) if ymax / s <= 6)
    ticks = int(ymax / step) + 1
    ymax = ticks * step
    xmax = max(xs) * 1.05

    def sx(x: float) -> float:
        return left + x / xmax * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - y / ymax * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Time to first response byte on a fresh '
        f"connection</text>",
    ]
    for i in range(ticks + 1):
        y = step * i
        out.append(
            f'<line x1="{left}" y1="{sy(y):.1f}" x2="{width - right}" y2="{sy(y):.1f}" '
            f'stroke="#ddd"/><text x="{left - 8}" y="{sy(y) + 4:.1f}" '
            f'text-anchor="end">{y:.0f}</text>'
        )
    for x in xs:
        out.append(
            f'<line x1="{sx(x):.1f}" y1="{height - bottom}" x2="{sx(x):.1f}" '
            f'y2="{height - bottom + 5}" stroke="#333"/>'
        )
    for x in sorted({x for x in xs if x >= 16} | {0.0}):
        out.append(
            f'<text x="{sx(x):.1f}" y="{height - bottom + 18}" text-anchor="middle">{x:g}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="#333"/>'
    )
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>')
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 15}" text-anchor="middle">'
        f"round-trip time of the link (ms)</text>"
    )
    out.append(
        f'<text transform="translate(18 {(top + height - bottom) / 2}) rotate(-90)" '
        f'text-anchor="middle">latency (ms)</text>'
    )
    legend_y = top + 10
    for name in PROTOCOLS:
        if name not in table:
            continue
        colour = MARKS[name]
        points = [
            (sx(2 * d), sy(table[name][str(d)]["median_ms"]))
            for d in delays
            if str(d) in table[name]
        ]
        dash = ' stroke-dasharray="6 4"' if name in DASHED else ""
        out.append(
            '<polyline fill="none" stroke="{}" stroke-width="2"{} points="{}"/>'.format(
                colour, dash, " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            )
        )
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
        out.append(
            f'<line x1="{width - right + 15}" y1="{legend_y}" x2="{width - right + 40}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="3"{dash}/>'
            f'<text x="{width - right + 46}" y="{legend_y + 4}">{LABELS[name]}</text>'
        )
        legend_y += 20
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def write_docs(text: str, path: Path, start: str = TABLE_START, end: str = TABLE_END) -> None:
    """Replace the generated block in ``path`` (between the markers), keeping the prose."""
    block = f"{start}\n{text}\n{end}"
    if path.exists():
        doc = path.read_text()
        if start in doc and end in doc:
            head, _, rest = doc.partition(start)
            _, _, tail = rest.partition(end)
            path.write_text(head + block + tail)
            return
        path.write_text(doc.rstrip("\n") + "\n\n" + block + "\n")
        return
    path.write_text("# Latency to the first response byte\n\n" + block + "\n")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--delays",
        default=",".join(f"{d:g}" for d in DEFAULT_DELAYS),
        help="one-way delays in ms, comma-separated",
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--network", choices=("auto", "netns", "proxy"), default="auto")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--out", default=str(HERE / "latency.json"))
    parser.add_argument(
        "--docs",
        default=str(ROOT / "docs"),
        help="where latency.md (table) and latency.svg go ('' for nowhere)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="redraw the table and plot from the --out JSON of an earlier run",
    )
    parser.add_argument(
        "--role",
        choices=("orchestrator", "server", "client", "network"),
        default="orchestrator",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--advertise", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role != "orchestrator":
        import minimalt

        if args.role == "server":
            advertise = json.loads(args.advertise) if args.advertise else None
            minimalt.run(run_servers(args.host, Path(args.certdir), advertise))
        elif args.role == "client":
            result = minimalt.run(run_client(json.loads(args.spec)))
            print(json.dumps(result), flush=True)
        else:
            from minimalt.testing.link import precise_loop

            with asyncio.Runner(loop_factory=precise_loop) as runner:
                runner.run(run_network(json.loads(args.targets), args.delay))
        return {}

    delays = [float(d) for d in args.delays.split(",")]
    protocols = [p for p in args.protocols.split(",") if p]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown protocols {unknown}")
    if args.render_only:
        saved = json.loads(Path(args.out).read_text())
        delays, args.runs = saved["delays_ms"], saved["runs"]
        protocols = [p for p in PROTOCOLS if p in saved["table"]]
        raw = {
            "network": saved["network"],
            "environment": saved["environment"],
            "cells": {
                str(d): {
                    "path_rtt": saved["path_rtt_ms"][str(d)] / 1000,
                    "runs": saved["raw_runs_s"][str(d)],
                    "errors": saved["errors"][str(d)],
                }
                for d in delays
            },
        }
    else:
        raw = measure(delays, args.runs, args.network, protocols)
        raw["environment"] = (
            f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}, "
            f"{os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}"
        )
    table = summarise(raw, delays, protocols)
    text = markdown(table, raw, delays, args.runs)
    print()
    print(text)
    Path(args.out).write_text(
        json.dumps(
            {
                "network": raw["network"],
                "environment": raw["environment"],
                "runs": args.runs,
                "delays_ms": delays,
                "expected_rtts": EXPECTED_RTTS,
                "table": table,
                "path_rtt_ms": {str(d): raw["cells"][str(d)]["path_rtt"] * 1000 for d in delays},
                "raw_runs_s": {str(d): raw["cells"][str(d)]["runs"] for d in delays},
                "errors": {str(d): raw["cells"][str(d)]["errors"] for d in delays},
            },
            indent=2,
        )
        + "\n"
    )
    if args.docs:
        docs = Path(args.docs)
        write_docs(text, docs / "latency.md")
        plot_svg(table, delays, docs / "latency.svg")
    figures: dict[str, float] = {}
    for name, cells in table.items():
        for delay, c in cells.items():
            if delay == "fit":
                continue
            key = f"latency_{name.replace('+', '_').replace('-', '_')}_{float(delay):g}ms"
            figures[key + "_ms"] = c["median_ms"]
            figures[key + "_rtts"] = c["rtts"]
    return figures


if __name__ == "__main__":
    main()
