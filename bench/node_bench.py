"""Node-to-Node goodput through two bridges against Python-to-Python goodput, same run.

Each pair is a sink server process and a client process on 127.0.0.1; the client sends
``--mib`` MiB on one connection and its time runs until the server confirms the byte count.
Node's pair is two Node processes, each with its bridge child (four processes); Python's is two
Python processes on uvloop. Runs alternate, and each figure is the median of ``--repeat``.

    python bench/node_bench.py [--mib 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_SCRIPT = HERE / "node_bench.js"
TIMEOUT = 300


# --- the Python pair (this file run with --role) ----------------------------------------------


async def _py_server() -> None:
    import minimalt

    async def sink(conn: minimalt.Connection) -> None:
        total = 0
        while data := await conn.read(1 << 18):
            total += len(data)
        conn.write(json.dumps({"bytes": total}).encode())
        await conn.drain()

    async with minimalt.serve(sink, service="sink") as server:
        print(json.dumps({"record": server.record.to_text()}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


async def _py_client(record: str, mib: int) -> None:
    import minimalt

    total = mib << 20
    chunk = b"\x5a" * (256 << 10)
    started = _now()
    async with minimalt.connect(record, "sink") as conn:
        sent = 0
        while sent < total:
            conn.write(chunk)
            sent += len(chunk)
            await conn.drain()
        conn.write_eof()
        reply = json.loads(await conn.read())
    print(json.dumps({"bytes": reply["bytes"], "seconds": _now() - started}), flush=True)


def _now() -> float:
    import time

    return time.perf_counter()


# --- orchestration ----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MINIMALT_PYTHON", sys.executable)
    return env


def _pair(server_cmd: list[str], client_cmd: list[str], mib: int) -> float:
    """Run one server/client pair; the client's goodput in MB/s (10^6 bytes)."""
    server = subprocess.Popen(
        server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark server {server_cmd} exited before its record")
        record = json.loads(line)["record"]
        done = subprocess.run(
            [*client_cmd, record, str(mib)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            timeout=TIMEOUT,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["bytes"] != mib << 20:
            raise RuntimeError(f"server counted {result['bytes']} bytes, expected {mib << 20}")
        return float(result["bytes"] / result["seconds"] / 1e6)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (median)")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node_bench needs Node.js >= 20 on PATH")
    me = [sys.executable, str(Path(__file__).resolve()), "--role"]
    node_runs: list[float] = []
    python_runs: list[float] = []
    for _ in range(args.repeat):
        python_runs.append(_pair([*me, "py-server"], [*me, "py-client"], args.mib))
        node_runs.append(
            _pair([node, str(NODE_SCRIPT), "server"], [node, str(NODE_SCRIPT), "client"], args.mib)
        )
    figures = {
        "node_bulk_MBps": round(statistics.median(node_runs), 1),
        "python_bulk_MBps": round(statistics.median(python_runs), 1),
    }
    figures["node_over_python_ratio"] = round(
        figures["node_bulk_MBps"] / figures["python_bulk_MBps"], 3
    )
    print(f"{args.mib} MiB on one connection, 127.0.0.1, median of {args.repeat} runs\n")
    print("| pair | goodput (MB/s) | runs |")
    print("|---|---:|---|")
    for label, key, runs in (
        ("Node -> Node (two bridges)", "node_bulk_MBps", node_runs),
        ("Python -> Python", "python_bulk_MBps", python_runs),
    ):
        shown = ", ".join(f"{r:.1f}" for r in runs)
        print(f"| {label} | {figures[key]:.1f} | {shown} |")
    print(f"| Node / Python | {figures['node_over_python_ratio']:.2f} | |")
    return figures


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--role":
        import minimalt

        role = sys.argv[2]
        if role == "py-server":
            minimalt.run(_py_server())
        elif role == "py-client":
            minimalt.run(_py_client(sys.argv[3], int(sys.argv[4])))
        else:
            sys.exit(f"unknown role {role!r}")
    else:
        main(sys.argv[1:])
