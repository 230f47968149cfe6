"""What every benchmark peer shares: the control channel, CPU/RSS readings, the workloads' sizes.

A peer is a script run as its own process (``python bench/peers/<name>.py server|client ...``)
so that the server and the client each get a core of their own. The orchestrator
(``bench/runtime_bench.py``) talks to a *server* over its stdin/stdout, one JSON object a line:

* the server prints ``{"ready": true, ...}`` (its port, or its record) once it listens;
* then answers each line it reads on stdin: ``stats`` (CPU seconds and RSS so far), ``gc``
  (``gc.collect()`` first, then the same), ``baseline`` and ``profile <path> [n]`` (with
  ``--tracemalloc``: snapshot now; later write what was allocated since, by line, per n);
  it exits when stdin closes.

A *client* runs one workload, prints one JSON object with its figures, and exits. The *hold*
workload (idle tunnels, for memory) prints ``{"opened": n}`` and then keeps its tunnels until
its stdin closes.

The workloads are the same for every transport:

* ``bulk``: one connection; the client writes an 8-byte big-endian length (so its first byte
  is 0) and then that many bytes; the server counts what it reads and answers with the count
  (8 bytes) once it has them all. No half-close needed (asyncio's TLS transport has none).
* ``rr``: a fresh tunnel / handshake per iteration, one ``REQUEST``
  (``REQUEST_SIZE`` bytes, first byte not 0) echoed back, then close; ``--concurrency``
  iterations in flight at once.

Servers that have one stream type only (QUIC, TLS, TCP) tell the two apart by the first byte.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from minimalt.testing.certs import self_signed_certificate

REQUEST_SIZE = 64
REQUEST = bytes(range(1, REQUEST_SIZE + 1))
COUNT = struct.Struct(">Q")
#: What a client writes per call in the bulk workload.
CHUNK = 64 << 10
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sys_seconds() -> float:
    """System (kernel) CPU time of this process so far: system calls, packet copies."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def rss_bytes() -> int:
    """Resident set size now (not the peak)."""
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * _PAGE


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Awaitable[Any], loop_kind: str) -> Any:
    with asyncio.Runner(loop_factory=lambda: new_loop(loop_kind)) as runner:
        return runner.run(main)  # type: ignore[arg-type]


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Control:
    """The server side of the control channel (see the module docstring).

    ``extra()`` adds figures to each ``stats`` answer (e.g. how many tunnels are open).
    """

    def __init__(self, extra: Callable[[], dict[str, Any]] | None = None) -> None:
        self.extra = extra
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending = b""

    def start(self, ready: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable, fd)
        emit({"ready": True, "pid": os.getpid(), **ready})

    def _readable(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not chunk:
            asyncio.get_running_loop().remove_reader(fd)
            if not self.done.done():
                self.done.set_result(None)
            return
        self._pending += chunk
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            self._command(line.decode().strip())

    def _command(self, line: str) -> None:
        word, _, arg = line.partition(" ")
        if word == "gc":
            gc.collect()
        if word in ("stats", "gc"):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            figures: dict[str, Any] = {
                "cpu": usage.ru_utime + usage.ru_stime,
                "sys": usage.ru_stime,
                "rss": rss_bytes(),
                "t": time.time(),
            }
            if self.extra is not None:
                figures.update(self.extra())
            emit(figures)
        elif word == "baseline":
            tracemalloc_baseline()
            emit({"baseline": True})
        elif word == "profile":
            where, _, per = arg.partition(" ")
            emit({"profile": write_tracemalloc_report(Path(where), int(per or 1))})
        elif word == "quit":
            if not self.done.done():
                self.done.set_result(None)
        else:
            emit({"error": f"unknown command {line!r}"})


def write_tracemalloc_report(path: Path, per: int = 1, top: int = 40) -> str:
    """Where the memory allocated since the baseline snapshot lives: by package, then by line
    (with the line's source), in bytes and in bytes per ``per`` (e.g. per tunnel held)."""
    import linecache
    import tracemalloc

    if not tracemalloc.is_tracing():
        return "tracemalloc is not running (start the server with --tracemalloc)"
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    baseline = BASELINE.get("snapshot")
    stats = (
        snapshot.compare_to(baseline, "lineno")
        if baseline is not None
        else snapshot.statistics("lineno")
    )

    def size(stat: Any) -> int:
        return int(getattr(stat, "size_diff", stat.size))

    def count(stat: Any) -> int:
        return int(getattr(stat, "count_diff", stat.count))

    total = sum(size(s) for s in stats)
    packages: dict[str, int] = {}
    for stat in stats:
        name = stat.traceback[0].filename
        for marker in ("/proto/", "/aio/", "asyncio/", "nacl/"):
            if marker in name:
                key = "minimalt." + marker.strip("/") if marker in ("/proto/", "/aio/") else marker
                break
        else:
            key = "other"
        packages[key] = packages.get(key, 0) + size(stat)
    lines = [f"allocated since the baseline: {total} bytes, {total / per:.0f} per tunnel", ""]
    lines.append("   B/tunnel  where")
    for key, value in sorted(packages.items(), key=lambda kv: -kv[1]):
        lines.append(f"{value / per:11.1f}  {key}")
    lines += ["", "   B/tunnel  blocks/tunnel  line"]
    for stat in stats[:top]:
        frame = stat.traceback[0]
        source = linecache.getline(frame.filename, frame.lineno).strip()
        short = "/".join(Path(frame.filename).parts[-2:])
        lines.append(
            f"{size(stat) / per:11.1f}  {count(stat) / per:13.2f}  {short}:{frame.lineno}  "
            f"{source[:70]}"
        )
    path.write_text("\n".join(lines) + "\n")
    return str(path)


#: The tracemalloc snapshot taken by ``tracemalloc_baseline`` (``profile`` diffs against it).
BASELINE: dict[str, Any] = {}


def tracemalloc_baseline() -> None:
    import tracemalloc

    if tracemalloc.is_tracing():
        gc.collect()
        BASELINE["snapshot"] = tracemalloc.take_snapshot()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert, key) paths."""
    return self_signed_certificate(directory, ["localhost", "127.0.0.1"])


class Meter:
    """Wall clock and this process's CPU (all, and the kernel's share) from its creation."""

    def __init__(self) -> None:
        self._cpu = cpu_seconds()
        self._sys = sys_seconds()
        self._wall = time.perf_counter()

    def read(self) -> dict[str, float]:
        return {
            "wall": time.perf_counter() - self._wall,
            "client_cpu": cpu_seconds() - self._cpu,
            "client_sys": sys_seconds() - self._sys,
        }


async def upload(
    write: Callable[[bytes], Any],
    drain: Callable[[], Awaitable[Any]],
    readexactly: Callable[[int], Awaitable[bytes]],
    nbytes: int,
) -> int:
    """The bulk workload's client side on an open stream: the 8-byte length, ``nbytes``
    (rounded up to whole ``CHUNK``s) in ``CHUNK`` writes each followed by ``drain()``, then
    the server's count, which must match. Returns the bytes written."""
    payload = bytes(CHUNK)
    total = -(-nbytes // CHUNK) * CHUNK
    write(COUNT.pack(total))
    written = 0
    while written < total:
        write(payload)
        written += len(payload)
        await drain()
    (count,) = COUNT.unpack(await readexactly(COUNT.size))
    if count != written:
        raise SystemExit(f"server counted {count} bytes, {written} were written")
    return written


async def run_rr(
    once: Callable[[], Awaitable[None]], count: int, concurrency: int
) -> dict[str, Any]:
    """Run ``once`` (fresh tunnel + request/response) ``count`` times, ``concurrency`` at a
    time; returns wall time, this process's CPU time and the median latency."""
    latencies: list[float] = []
    left = count
    perf = time.perf_counter

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = perf()
            await once()
            latencies.append(perf() - start)

    cpu0 = cpu_seconds()
    t0 = perf()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = perf() - t0
    latencies.sort()
    return {
        "n": len(latencies),
        "wall": wall,
        "client_cpu": cpu_seconds() - cpu0,
        "latency_median": latencies[len(latencies) // 2],
        "latency_p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def peer_parser(doc: str, *, loop: str, count: int, tests: Sequence[str] = ("bulk", "rr")) -> Any:
    """The options every peer process takes; peers add their own before parsing."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--loop", default=loop, choices=["uvloop", "asyncio"])
    parser.add_argument("--test", choices=list(tests))
    parser.add_argument("--bytes", type=int, default=200 << 20)
    parser.add_argument("--count", type=int, default=count)
    parser.add_argument("--concurrency", type=int, default=1)
    return parser


def run_peer(
    args: Any, serve: Callable[[Any], Awaitable[Any]], **tests: Callable[[Any], Any]
) -> None:
    """Run the server, or the client test ``args.test`` and print its figures."""
    if args.role == "server":
        run(serve(args), args.loop)
    else:
        emit(run(tests[args.test](args), args.loop))
