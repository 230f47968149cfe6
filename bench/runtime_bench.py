"""Runtime benchmark: minimalt on real sockets beside aioquic, TLS 1.3 over TCP and plain TCP.

Everything runs on loopback in one process tree and one run, each server and each client in a
process of its own (``bench/peers/``), so each side gets a core. Measured, side by side:

(a) bulk goodput of one connection (``--bulk-mb`` per run): minimalt as it comes (path MTU
    probing: loopback carries up to 64 KiB, the search stops at the configured bound), and
    again with fixed datagram sizes, no probing: 1200 bytes (the base, the size every path
    carries, and aioquic's) and ``--datagram-sizes``, to show what is paid per packet;
(b) a fresh tunnel (QUIC connection, TLS connection) + one 64-byte request/response per
    iteration, sequentially and with ``--concurrency`` in flight;
(c) server CPU time per new tunnel / handshake (server process CPU / iterations), and the
    protocol core's share of it (``peers/core_tunnels.py``: the core alone, in memory);
(d) resident memory per idle minimalt tunnel: ``--idle-tunnels`` tunnels held open by a few
    client processes, each tunnel from a client endpoint of its own; server RSS delta / tunnels.

CPU is read by each process itself (``getrusage``), RSS from ``/proc``. Every figure is a median
over ``--runs`` runs; the transports' runs are interleaved, so a noisy neighbour hurts them
alike. ``--profile DIR`` then profiles the minimalt server and client (py-spy) and the idle
server's memory (tracemalloc) and writes where the time and memory go (DIR/*.txt; *.collapsed
are flamegraph input). See docs/benchmarks.md.

    python bench/runtime_bench.py [--quick] [--runs 5] [--update bench/results.json]
                                  [--profile DIR [--native]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
sys.path.insert(0, str(PEERS))

import common  # noqa: E402  (bench/peers/common.py)
import pyspy  # noqa: E402  (bench/peers/pyspy.py)

PY = sys.executable
MB = 1_000_000

# Targets from issue 3.
TARGET_BULK_MBPS = 125.0
TARGET_BULK_VS_AIOQUIC = 4.0
TARGET_SERVER_US_PER_TUNNEL = 125.0
TARGET_VS_AIOQUIC_HANDSHAKES = 10.0
TARGET_BYTES_PER_IDLE_TUNNEL = 5000.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class PeerError(RuntimeError):
    pass


class Server:
    """A peer server process and its control channel (see ``bench/peers/common.py``)."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [PY, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PEERS
        )
        self.ready = self._read()
        if not self.ready.get("ready"):
            raise PeerError(f"{name} server did not start: {self.ready}")
        self.pid: int = self.ready["pid"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise PeerError(f"{self.name} server exited (code {self.proc.poll()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stats(self, collect: bool = False) -> dict[str, Any]:
        return self.ask("gc" if collect else "stats")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(20)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()


def core_alone(count: int, what_if: str = "") -> float:
    """Server µs per tunnel of the core alone (``peers/core_tunnels.py``, a process of its own
    like every peer, so that it runs the same build of minimalt as they do)."""
    argv = ["core_tunnels.py", "--count", str(count)] + (["--what-if", what_if] if what_if else [])
    done = subprocess.run([PY, *argv], capture_output=True, text=True, cwd=PEERS, timeout=600)
    if done.returncode != 0:
        raise PeerError(f"core_tunnels.py failed ({done.returncode}): {done.stderr[-2000:]}")
    fields = dict(item.split("=") for item in done.stdout.split("\n")[0].split())
    return float(fields["server_us_per_tunnel"])


def run_client(argv: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run([PY, *argv], capture_output=True, text=True, cwd=PEERS, timeout=timeout)
    if done.returncode != 0:
        raise PeerError(f"client {argv[:1]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Transport:
    """How to start one transport's server and clients."""

    def __init__(
        self,
        name: str,
        script: str,
        server_args: list[str],
        client_args: Callable[[Server], list[str]],
    ) -> None:
        self.name = name
        self.script = script
        self.server_args = server_args
        self.client_args = client_args
        self.server: Server | None = None

    def start(self, extra: list[str] | None = None) -> Server:
        self.server = Server(self.name, [self.script, "server", *self.server_args, *(extra or [])])
        return self.server

    def client(self, test: str, *args: str) -> list[str]:
        assert self.server is not None
        return [self.script, "client", *self.client_args(self.server), "--test", test, *args]

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


def transports(cert: Path, key: Path, what_if: str = "") -> dict[str, Transport]:
    tls = ["--tls", str(cert), str(key)]
    patches = ["--what-if", what_if] if what_if else []
    return {
        "minimalt": Transport(
            "minimalt",
            "minimalt_peer.py",
            patches,
            lambda s: ["--record", s.ready["record"], *patches],
        ),
        "aioquic": Transport(
            "aioquic", "aioquic_peer.py", tls, lambda s: ["--port", str(s.ready["port"]), *tls]
        ),
        "tls13": Transport(
            "tls13", "stream_peer.py", tls, lambda s: ["--port", str(s.ready["port"]), *tls]
        ),
        "tcp": Transport("tcp", "stream_peer.py", [], lambda s: ["--port", str(s.ready["port"])]),
    }


# --- (a) bulk ------------------------------------------------------------------------------------


def measure_bulk(
    t: Transport, nbytes: int, timeout: float, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    assert t.server is not None
    before = t.server.stats()
    result = run_client(t.client("bulk", "--bytes", str(nbytes), *extra), timeout)
    after = t.server.stats()
    server_cpu = after["cpu"] - before["cpu"]
    tunnel = result.get("tunnel") or {}
    return {
        # minimalt: the datagram size the tunnel ended with (probed, or the fixed one).
        **({"datagram_size": tunnel["datagram_size"]} if "datagram_size" in tunnel else {}),
        "MBps": result["bytes"] / result["wall"] / MB,
        "server_sys_share": (after["sys"] - before["sys"]) / server_cpu,
        "client_sys_share": result["client_sys"] / result["client_cpu"],
        "server_cpu_s_per_GB": server_cpu / result["bytes"] * 1e9,
        "client_cpu_s_per_GB": result["client_cpu"] / result["bytes"] * 1e9,
    }


# --- (b, c) fresh tunnels / handshakes -----------------------------------------------------------


def measure_rr(t: Transport, count: int, concurrency: int, timeout: float) -> dict[str, float]:
    assert t.server is not None
    before = t.server.stats()
    result = run_client(
        t.client("rr", "--count", str(count), "--concurrency", str(concurrency)), timeout
    )
    after = t.server.stats()
    counted = {  # with --what-if count-timers
        key + "_per_tunnel": (after[key] - before[key]) / result["n"]
        for key in ("timer_callbacks", "timer_callbacks_idle")
        if key in after
    }
    return {
        **counted,
        "per_s": result["n"] / result["wall"],
        "server_cpu_us": (after["cpu"] - before["cpu"]) / result["n"] * 1e6,
        "client_cpu_us": result["client_cpu"] / result["n"] * 1e6,
        "latency_ms": result["latency_median"] * 1e3,
    }


# --- (d) idle tunnels ----------------------------------------------------------------------------


def measure_idle(
    t: Transport, tunnels: int, procs: int, *, warmup: int, profile: Path | None = None
) -> dict[str, float]:
    """Server RSS delta per idle tunnel. With ``profile``, the server runs under tracemalloc
    and writes where the memory went to that file (the RSS figure is then inflated)."""
    server = t.start(["--tracemalloc", "1"] if profile else [])
    holders: list[subprocess.Popen[str]] = []
    try:
        # Warm up (imports, caches, the replay cache's filters, the allocator's arenas), then
        # let the warm-up tunnels finish closing before the baseline.
        run_client(t.client("rr", "--count", str(warmup), "--concurrency", "8"), 120)
        _wait_tunnels(server, 0, 30)
        if profile:
            server.ask("baseline")
        base = server.stats(collect=True)
        per = -(-tunnels // procs)
        started = time.perf_counter()
        for i in range(procs):
            n = min(per, tunnels - i * per)
            holders.append(
                subprocess.Popen(
                    [PY, *t.client("hold", "--count", str(n), "--concurrency", "16")],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=PEERS,
                )
            )
        opened = 0
        for proc in holders:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise PeerError(f"a hold client exited (code {proc.wait()})")
            opened += json.loads(line)["opened"]
        open_wall = time.perf_counter() - started
        time.sleep(1.0)  # acknowledgements of the last echoes settle
        held = server.stats(collect=True)
        if profile:
            server.ask(f"profile {profile} {max(1, held['tunnels'])}")
        return {
            "tunnels": held["tunnels"],
            "opened": opened,
            "rss_base": base["rss"],
            "rss_held": held["rss"],
            "bytes_per_tunnel": (held["rss"] - base["rss"]) / max(1, held["tunnels"]),
            "server_cpu_us_per_tunnel": (held["cpu"] - base["cpu"]) / max(1, opened) * 1e6,
            "open_per_s": opened / open_wall,
        }
    finally:
        for proc in holders:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in holders:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        t.stop()


def _timers(r: dict[str, float]) -> str:
    if "timer_callbacks_per_tunnel" not in r:
        return ""
    return (
        f", {r['timer_callbacks_per_tunnel']:.1f} timer callbacks per tunnel, "
        f"{r['timer_callbacks_idle_per_tunnel']:.1f} with nothing due"
    )


def _wait_tunnels(server: Server, at_most: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.stats().get("tunnels", 0) > at_most and time.monotonic() < deadline:
        time.sleep(0.2)


# --- the report ----------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and counts, 2 runs (about a minute)"
    )
    parser.add_argument("--runs", type=int, help="runs per figure; the median is reported")
    parser.add_argument("--bulk-mb", type=int, help="MB per bulk run (default 200)")
    parser.add_argument(
        "--rr-count", type=int, help="fresh tunnels per rr run (default 1000; aioquic gets a fifth)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--idle-tunnels", type=int, help="idle tunnels held (default 10000)")
    parser.add_argument("--hold-procs", type=int, default=4, help="client processes holding them")
    parser.add_argument("--only", default="abcd", help="sections to run, e.g. ab")
    parser.add_argument("--transports", default="minimalt,aioquic,tls13,tcp")
    parser.add_argument(
        "--datagram-sizes",
        default="1452,8000",
        help="bulk: minimalt again with these fixed datagram sizes, no PMTU probing "
        "(comma-separated; '' for none; fixed 1200 always runs). 1452 fits a 1500-byte "
        "Ethernet MTU; loopback takes up to 65507",
    )
    parser.add_argument(
        "--what-if",
        default="",
        metavar="PATCHES",
        help="run minimalt with these proposed changes applied (comma-separated; see "
        "bench/peers/whatif.py: gc-threshold; count-timers only counts)",
    )
    parser.add_argument(
        "--compiled",
        nargs="?",
        const=str(HERE.parent / ".compiled"),
        metavar="DIR",
        help="run minimalt with its mypyc-compiled core (`make compiled` builds DIR, default "
        ".compiled); its figures are named compiled_*",
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--update",
        metavar="PATH",
        help="merge the figures into this JSON file (e.g. bench/results.json, keeping the "
        "other benchmarks' figures)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="afterwards, profile the minimalt server (py-spy, tracemalloc) "
        "and write the summaries to DIR",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="with --profile: py-spy --native (C frames: libsodium, uvloop, "
        "system calls; pauses the process at each sample)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (2 if quick else 5)
    bulk_bytes = (args.bulk_mb or (50 if quick else 200)) * MB
    rr_count = args.rr_count or (300 if quick else 1000)
    idle = args.idle_tunnels or (2000 if quick else 10_000)
    wanted = args.transports.split(",")

    tmp = Path(tempfile.mkdtemp(prefix="minimalt-bench-"))
    cert, key = common.make_certificate(tmp)
    if args.what_if:
        print(f"**What-if run**: minimalt with {args.what_if} applied (bench/peers/whatif.py).\n")
    with build_environment(args.compiled):
        figures = _measure(args, quick, runs, bulk_bytes, rr_count, idle, wanted, cert, key, tmp)
    if args.compiled:  # its own names in results.json: both builds' figures live side by side
        figures = {f"compiled_{name}": value for name, value in figures.items()}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if args.update:
        path = Path(args.update)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update(figures)
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return figures


@contextlib.contextmanager
def build_environment(compiled: str | None) -> Iterator[None]:
    """Every peer started meanwhile runs the pure-Python minimalt, or with ``compiled`` (the
    folder ``python -m minimalt.compile`` built) the one with the mypyc-compiled core."""
    if compiled is None:
        yield
        return
    folder = Path(compiled).resolve()
    if not (folder / "minimalt").is_dir():
        raise SystemExit(f"no compiled build in {folder}: run `make compiled` first")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(folder) + (os.pathsep + saved if saved else "")
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def _measure(
    args: argparse.Namespace,
    quick: bool,
    runs: int,
    bulk_bytes: int,
    rr_count: int,
    idle: int,
    wanted: list[str],
    cert: Path,
    key: Path,
    tmp: Path,
) -> dict[str, float]:
    ts = {name: t for name, t in transports(cert, key, args.what_if).items() if name in wanted}
    figures: dict[str, float] = {}
    # (name, transport, extra client arguments): minimalt as it comes (PMTU probing), then with
    # fixed sizes and no probing: 1200 bytes (the base, which fits any path: the per-packet
    # comparison with the others) and larger ones, to show how much of the cost is per packet.
    bulk_plan: list[tuple[str, Transport, tuple[str, ...]]] = []
    for name, t in ts.items():
        bulk_plan.append((name, t, ()))
        if name == "minimalt":
            sizes = ["1200"] + [s for s in args.datagram_sizes.split(",") if s and s != "1200"]
            for size in sizes:
                bulk_plan.append((f"minimalt_{size}", t, ("--datagram-size", size)))
    bulk: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in bulk_plan}
    seq: dict[str, list[dict[str, float]]] = {name: [] for name in ts if name != "tcp"}
    conc: dict[str, list[dict[str, float]]] = {name: [] for name in ts if name != "tcp"}
    idle_result: dict[str, float] = {}
    started = time.monotonic()
    try:
        if "a" in args.only or "b" in args.only or "c" in args.only:
            for t in ts.values():
                server = t.start()
                runs_compiled = server.ready.get("compiled")
                if t.name == "minimalt" and runs_compiled != bool(args.compiled):
                    build = "compiled" if runs_compiled else "pure-Python"
                    raise PeerError(f"the minimalt server runs the {build} core, not the one asked")
        for run in range(runs):
            if "a" in args.only:
                for name, t, extra in bulk_plan:
                    # aioquic moves ~20 MB/s: a quarter of the bytes keeps its runs short.
                    n = bulk_bytes // 4 if name == "aioquic" else bulk_bytes
                    r = measure_bulk(t, n, timeout=300, extra=extra)
                    bulk[name].append(r)
                    reached = (
                        f" ({r['datagram_size']}-byte datagrams)" if "datagram_size" in r else ""
                    )
                    log(
                        f"  bulk {name} run {run + 1}/{runs}{reached}: {r['MBps']:.1f} MB/s, "
                        "server "
                        f"{r['server_cpu_s_per_GB']:.2f} s/GB, client "
                        f"{r['client_cpu_s_per_GB']:.2f} s/GB (kernel: server "
                        f"{100 * r['server_sys_share']:.0f} %, client "
                        f"{100 * r['client_sys_share']:.0f} %)"
                    )
            if "b" in args.only or "c" in args.only:
                for name in seq:
                    t = ts[name]
                    n = rr_count // 5 if name == "aioquic" else rr_count
                    r = measure_rr(t, n, 1, timeout=300)
                    seq[name].append(r)
                    log(
                        f"  rr {name} sequential run {run + 1}/{runs}: {r['per_s']:.0f}/s, "
                        f"server {r['server_cpu_us']:.0f} us, client {r['client_cpu_us']:.0f} us,"
                        f" {r['latency_ms']:.2f} ms{_timers(r)}"
                    )
                    r = measure_rr(t, n * 2, args.concurrency, timeout=300)
                    conc[name].append(r)
                    log(
                        f"  rr {name} x{args.concurrency} run {run + 1}/{runs}: "
                        f"{r['per_s']:.0f}/s, server {r['server_cpu_us']:.0f} us, client "
                        f"{r['client_cpu_us']:.0f} us, {r['latency_ms']:.2f} ms{_timers(r)}"
                    )
        for t in ts.values():
            t.stop()
        if ("b" in args.only or "c" in args.only) and "minimalt" in ts:
            core_runs = [core_alone(1000 if quick else 3000, args.what_if) for _ in range(runs)]
            figures["core_server_us_per_tunnel"] = med(core_runs)
            log(
                f"  core alone: {figures['core_server_us_per_tunnel']:.0f} us of server CPU "
                "per tunnel"
            )
        if "d" in args.only and "minimalt" in ts:
            log(f"  idle: opening {idle} tunnels from {args.hold_procs} client processes")
            idle_result = measure_idle(
                ts["minimalt"], idle, args.hold_procs, warmup=200 if quick else 500
            )
            log(
                f"  idle: {idle_result['tunnels']} tunnels, "
                f"{idle_result['bytes_per_tunnel']:.0f} B each, opened at "
                f"{idle_result['open_per_s']:.0f}/s"
            )
    finally:
        for t in ts.values():
            t.stop()

    # --- figures ----------------------------------------------------------------------------
    for name, rs in bulk.items():
        if rs:
            figures[f"bulk_MBps_{name}"] = med([r["MBps"] for r in rs])
            figures[f"bulk_server_cpu_s_per_GB_{name}"] = med(
                [r["server_cpu_s_per_GB"] for r in rs]
            )
            figures[f"bulk_client_cpu_s_per_GB_{name}"] = med(
                [r["client_cpu_s_per_GB"] for r in rs]
            )
            for side in ("server", "client"):
                figures[f"bulk_{side}_sys_share_{name}"] = med([r[f"{side}_sys_share"] for r in rs])
            sizes = [r["datagram_size"] for r in rs if "datagram_size" in r]
            if sizes:
                figures[f"bulk_datagram_size_{name}"] = min(sizes)
            # What one connection would move with a whole core for each side: the figure a
            # busy shared machine cannot spoil (wall-clock goodput also waits for the CPU).
            figures[f"bulk_cpu_bound_MBps_{name}"] = med(
                [1e3 / max(r["server_cpu_s_per_GB"], r["client_cpu_s_per_GB"]) for r in rs]
            )
    for name, rs in seq.items():
        if not rs:
            continue
        label = "tunnels" if name == "minimalt" else "handshakes"
        figures[f"{label}_per_s_{name}"] = med([r["per_s"] for r in rs])
        figures[f"{label}_per_s_{name}_concurrent"] = med([r["per_s"] for r in conc[name]])
        figures[f"server_cpu_us_per_{label[:-1]}_{name}_sequential"] = med(
            [r["server_cpu_us"] for r in rs]
        )
        figures[f"server_cpu_us_per_{label[:-1]}_{name}"] = med(
            [r["server_cpu_us"] for r in conc[name]]
        )
        figures[f"client_cpu_us_per_{label[:-1]}_{name}"] = med(
            [r["client_cpu_us"] for r in conc[name]]
        )
        figures[f"rr_latency_ms_{name}"] = med([r["latency_ms"] for r in rs])
    if "server_cpu_us_per_tunnel_minimalt" in figures:
        figures["server_cpu_us_per_tunnel"] = figures.pop("server_cpu_us_per_tunnel_minimalt")
    if idle_result:
        figures["rss_bytes_per_idle_tunnel"] = idle_result["bytes_per_tunnel"]
        figures["idle_tunnels_held"] = idle_result["tunnels"]
        figures["idle_tunnels_opened_per_s"] = idle_result["open_per_s"]

    # Ratios of wall-clock rates are medians of per-run ratios: the runs are interleaved, so
    # the two rates of one run saw the same load from the machine's other users.
    def paired(ours: list[dict[str, float]], theirs: list[dict[str, float]], key: str) -> float:
        return med([a[key] / b[key] for a, b in zip(ours, theirs, strict=False)])

    for peer in ("aioquic", "tls13", "tcp"):
        if bulk.get("minimalt") and bulk.get(peer):
            figures[f"bulk_ratio_vs_{peer}"] = paired(bulk["minimalt"], bulk[peer], "MBps")
            figures[f"bulk_cpu_bound_ratio_vs_{peer}"] = (
                figures["bulk_cpu_bound_MBps_minimalt"] / figures[f"bulk_cpu_bound_MBps_{peer}"]
            )
        if bulk.get("minimalt_1200") and bulk.get(peer):  # the same datagram size as aioquic
            figures[f"bulk_1200_ratio_vs_{peer}"] = paired(
                bulk["minimalt_1200"], bulk[peer], "MBps"
            )
            figures[f"bulk_1200_cpu_bound_ratio_vs_{peer}"] = (
                figures["bulk_cpu_bound_MBps_minimalt_1200"]
                / figures[f"bulk_cpu_bound_MBps_{peer}"]
            )
        if peer in seq and seq.get("minimalt") and seq[peer]:
            figures[f"tunnels_ratio_vs_{peer}"] = paired(seq["minimalt"], seq[peer], "per_s")
            figures[f"tunnels_ratio_vs_{peer}_concurrent"] = paired(
                conc["minimalt"], conc[peer], "per_s"
            )
    # Server capacity (new tunnels per second per core) compares server CPU, whoever was the
    # bottleneck of the run: with two cores the client process usually is.
    for peer in ("aioquic", "tls13"):
        key_ = f"server_cpu_us_per_handshake_{peer}"
        if key_ in figures and "server_cpu_us_per_tunnel" in figures:
            figures[f"server_capacity_ratio_vs_{peer}"] = (
                figures[key_] / figures["server_cpu_us_per_tunnel"]
            )
    if "server_cpu_us_per_tunnel" in figures:
        figures["server_tunnels_per_s_per_core"] = 1e6 / figures["server_cpu_us_per_tunnel"]

    if args.compiled:
        print("**minimalt build: the protocol core compiled by mypyc** (`make compiled`).\n")
    print_table(
        figures,
        runs=runs,
        bulk_bytes=bulk_bytes,
        rr_count=rr_count,
        concurrency=args.concurrency,
        idle=idle,
        elapsed=time.monotonic() - started,
    )
    if args.profile:
        profile(
            Path(args.profile),
            cert,
            key,
            quick=quick,
            idle=min(idle, 2000),
            concurrency=args.concurrency,
            native=args.native,
            what_if=args.what_if,
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return figures


def print_table(
    f: dict[str, float],
    *,
    runs: int,
    bulk_bytes: int,
    rr_count: int,
    concurrency: int,
    idle: int,
    elapsed: float,
) -> None:
    g = f.get
    nan = float("nan")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Loopback, {os.cpu_count()} cores, one process per server and per client; medians "
        f"of {runs} runs ({elapsed:.0f} s; load average at the end {load}: the machine is "
        "shared, so wall-clock figures vary more than CPU figures).\n"
    )
    if "bulk_MBps_minimalt" in f:
        print(
            f"**(a) Bulk goodput, one connection** ({bulk_bytes // MB} MB per run; aioquic "
            f"{bulk_bytes // 4 // MB} MB). *CPU-bound*: bytes per CPU-second of the busier "
            "side, i.e. the goodput with a whole core per side whatever else runs. Wall-clock "
            "ratios are medians of the runs' own ratios. minimalt as it comes probes the path "
            "MTU (loopback: 65536); *fixed* rows turn probing off (1200 bytes: the base size, "
            "aioquic's too: the per-packet comparison). *minimalt is*: probed / fixed 1200.\n"
        )
        print(
            "| transport | MB/s | minimalt is | CPU-bound MB/s | minimalt is "
            "| server CPU s/GB | client CPU s/GB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        reached = g("bulk_datagram_size_minimalt")
        labels = {
            "minimalt": "minimalt (uvloop, PMTU probed"
            + (f": reached {reached:.0f} bytes)" if reached is not None else ")")
        }
        sizes = [k.rsplit("_", 1)[1] for k in f if k.startswith("bulk_MBps_minimalt_")]
        for size in sorted(sizes, key=int):
            labels[f"minimalt_{size}"] = f"minimalt (uvloop, fixed {size}-byte datagrams)"
        labels |= {
            "aioquic": "aioquic (stdlib loop)",
            "tls13": "TLS 1.3 / TCP (uvloop streams)",
            "tcp": "TCP (uvloop streams)",
        }
        for name, label in labels.items():
            if f"bulk_MBps_{name}" not in f:
                continue
            same = name.startswith("minimalt")
            ratios = []
            cpu_ratios = []
            for ours, key in (
                ("minimalt", "bulk_ratio_vs_"),
                ("minimalt_1200", "bulk_1200_ratio_vs_"),
            ):
                ratios.append(
                    g(f"{key}{name}", g(f"bulk_MBps_{ours}", nan) / f[f"bulk_MBps_{name}"])
                )
                cpu_ratios.append(
                    g(f"bulk_cpu_bound_MBps_{ours}", nan) / f[f"bulk_cpu_bound_MBps_{name}"]
                )
            ratio = " / ".join(fmt(r, 2) + "x" for r in ratios)
            cpu_ratio = " / ".join(fmt(r, 2) + "x" for r in cpu_ratios)
            print(
                f"| {label} | {fmt(f[f'bulk_MBps_{name}'], 1)} | "
                f"{'' if same else ratio} | "
                f"{fmt(f[f'bulk_cpu_bound_MBps_{name}'], 1)} | "
                f"{'' if same else cpu_ratio} | "
                f"{fmt(f[f'bulk_server_cpu_s_per_GB_{name}'], 2)} | "
                f"{fmt(f[f'bulk_client_cpu_s_per_GB_{name}'], 2)} |"
            )
        print()
    if "tunnels_per_s_minimalt" in f:
        print(
            f"**(b, c) Fresh tunnel + one 64-byte request/response** ({rr_count} per "
            f"sequential run, {2 * rr_count} at {concurrency} in flight; aioquic a fifth). "
            "Server CPU from the concurrent runs; *capacity* = 10^6 / server µs.\n"
        )
        print(
            "| transport | sequential /s | latency ms | "
            f"{concurrency} in flight /s | server CPU µs each | server capacity /s/core "
            "| client CPU µs each |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, label in (
            ("minimalt", "tunnel"),
            ("aioquic", "handshake"),
            ("tls13", "handshake"),
        ):
            if f"{label}s_per_s_{name}" not in f:
                continue
            server_key = (
                "server_cpu_us_per_tunnel"
                if name == "minimalt"
                else f"server_cpu_us_per_handshake_{name}"
            )
            print(
                f"| {name} | {fmt(f[f'{label}s_per_s_{name}'])} | "
                f"{fmt(f[f'rr_latency_ms_{name}'], 2)} | "
                f"{fmt(f[f'{label}s_per_s_{name}_concurrent'])} | "
                f"{fmt(f[server_key])} | {fmt(1e6 / f[server_key])} | "
                f"{fmt(f[f'client_cpu_us_per_{label}_{name}'])} |"
            )
        if "core_server_us_per_tunnel" in f:
            print(
                f"| minimalt core alone (in memory, no sockets) | | | | "
                f"{fmt(f['core_server_us_per_tunnel'])} | "
                f"{fmt(1e6 / f['core_server_us_per_tunnel'])} | |"
            )
        print()
    if "rss_bytes_per_idle_tunnel" in f:
        print(
            f"**(d) Idle tunnels**: {fmt(g('idle_tunnels_held', nan))} held by one server "
            f"(opened at {fmt(g('idle_tunnels_opened_per_s', nan))}/s): server RSS "
            f"{fmt(f['rss_bytes_per_idle_tunnel'])} bytes per tunnel.\n"
        )
    print("**Targets (issue 3)**\n")
    print("| target | measured | |")
    print("|---|---:|---|")
    rows = [
        *(
            (f"{target} ({kind}, {how})", key.format(size=size, cpu=cpu), unit, digits, ok)
            for target, key, unit, digits, ok in (
                (
                    "bulk ≥ 125 MB/s",
                    "bulk{cpu}_MBps_minimalt{size}",
                    " MB/s",
                    1,
                    lambda v: v >= TARGET_BULK_MBPS,
                ),
                (
                    "bulk ≥ 4x aioquic",
                    "bulk{size}{cpu}_ratio_vs_aioquic",
                    "x",
                    2,
                    lambda v: v >= TARGET_BULK_VS_AIOQUIC,
                ),
            )
            for how, size in (("PMTU probed", ""), ("fixed 1200-byte datagrams", "_1200"))
            for kind, cpu in (("wall clock", ""), ("CPU-bound", "_cpu_bound"))
        ),
        (
            "server CPU ≤ 125 µs per new tunnel",
            "server_cpu_us_per_tunnel",
            " µs",
            0,
            lambda v: v <= TARGET_SERVER_US_PER_TUNNEL,
        ),
        (
            "≥ 10x aioquic's handshake rate (server capacity)",
            "server_capacity_ratio_vs_aioquic",
            "x",
            1,
            lambda v: v >= TARGET_VS_AIOQUIC_HANDSHAKES,
        ),
        (
            "≥ 10x aioquic's handshake rate (wall, sequential)",
            "tunnels_ratio_vs_aioquic",
            "x",
            1,
            lambda v: v >= TARGET_VS_AIOQUIC_HANDSHAKES,
        ),
        (
            f"≥ 10x aioquic's handshake rate (wall, {concurrency} in flight)",
            "tunnels_ratio_vs_aioquic_concurrent",
            "x",
            1,
            lambda v: v >= TARGET_VS_AIOQUIC_HANDSHAKES,
        ),
        (
            f"≤ 5 KB per idle tunnel ({idle:,} held)",
            "rss_bytes_per_idle_tunnel",
            " B",
            0,
            lambda v: v <= TARGET_BYTES_PER_IDLE_TUNNEL,
        ),
    ]
    for label, key, unit, digits, ok in rows:
        if key in f:
            print(f"| {label} | {fmt(f[key], digits)}{unit} | {verdict(ok(f[key]))} |")
    print()


# --- profiles ------------------------------------------------------------------------------------


def profile(
    out: Path,
    cert: Path,
    key: Path,
    *,
    quick: bool,
    idle: int,
    concurrency: int,
    native: bool,
    what_if: str = "",
) -> None:
    """Where the time and memory go, written to ``out``:

    * py-spy on the minimalt server and client during a bulk run (``bulk-{server,client}``),
      on the server during a concurrent rr run (``rr-server``): ``*.collapsed`` (flamegraph
      input) and ``*.txt`` (layers, top functions by self and inclusive samples);
    * py-spy on the core alone opening tunnels in memory, server side only (``core-tunnels``);
    * tracemalloc of the server holding idle tunnels, by allocating line (``idle-tracemalloc``).
    """
    out.mkdir(parents=True, exist_ok=True)
    t = transports(cert, key, what_if)["minimalt"]
    server = t.start()

    def spy(name: str, pid: int, raw: Path, within: tuple[str, ...] = ()) -> None:
        summary = pyspy.summarize(raw, top=30, within=within)
        (out / f"{name}.txt").write_text(summary)
        print(f"\n**py-spy{' --native' if native else ''}: {name}** ({raw})\n\n```\n{summary}```")

    try:
        argv = t.client("bulk", "--bytes", str((100 if quick else 300) * MB))
        proc = subprocess.Popen([PY, *argv], stdout=subprocess.PIPE, text=True, cwd=PEERS)
        time.sleep(0.5)  # past the client's imports
        with (
            pyspy.record(server.pid, out / "bulk-server.collapsed", native=native),
            pyspy.record(proc.pid, out / "bulk-client.collapsed", native=native),
        ):
            proc.communicate(timeout=600)
        spy("bulk-server", server.pid, out / "bulk-server.collapsed")
        spy("bulk-client", proc.pid, out / "bulk-client.collapsed")
        argv = t.client(
            "rr", "--count", str(1000 if quick else 4000), "--concurrency", str(concurrency)
        )
        with pyspy.record(server.pid, out / "rr-server.collapsed", native=native):
            run_client(argv, 600)
        spy("rr-server", server.pid, out / "rr-server.collapsed")
    finally:
        t.stop()
    exe = pyspy.executable()
    if exe is not None:
        raw = out / "core-tunnels.collapsed"
        subprocess.run(
            [
                exe,
                "record",
                "--rate",
                "1000",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                PY,
                "core_tunnels.py",
                "--count",
                str(3000 if quick else 10000),
            ],
            cwd=PEERS,
            capture_output=True,
            timeout=600,
        )
        if raw.exists():
            spy("core-tunnels", 0, raw, within=("to_server", "server_timers"))
    report = out / "idle-tracemalloc.txt"
    result = measure_idle(t, idle, 2, warmup=200, profile=report)
    print(
        f"\n**tracemalloc: the minimalt server holding {result['tunnels']} idle tunnels** "
        f"({report})\n\n```\n{report.read_text()}```"
    )


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
