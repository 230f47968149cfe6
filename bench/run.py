"""`make bench`: run every benchmark, print one markdown table, write bench/results.json.

Each benchmark module under bench/ exposes ``main(argv) -> dict[str, float]`` and prints its
own table; this runner merges their figures into one flat JSON object of named numbers.
Machines are shared and noisy: every figure is a median over repeated runs, and comparisons
with peers (aioquic, TLS over TCP) are measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (module, arguments): cheap ones first.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("core_bench", ["--mib", "32", "--repeat", "5"]),
]
# Added by later work when present.
OPTIONAL = ["runtime_bench", "latency_bench", "badlink_bench", "node_bench"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run just this benchmark module")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    plan = list(BENCHMARKS) + [(name, []) for name in OPTIONAL if (HERE / f"{name}.py").exists()]
    if (HERE.parent / ".compiled").is_dir():  # `make compiled`: the runtime again on that build
        at = [name for name, _ in plan].index("runtime_bench") + 1
        plan.insert(at, ("runtime_bench", ["--compiled"]))
    if args.only:
        plan = [(name, argv) for name, argv in plan if name == args.only]
    results: dict[str, float] = {}
    for name, argv in plan:
        print(f"\n## {name}\n", flush=True)
        started = time.monotonic()
        results.update(importlib.import_module(name).main(argv))
        print(f"\n({name}: {time.monotonic() - started:.0f} s)", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
