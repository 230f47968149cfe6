"""Run the conformance cases and write ``results.json`` and ``results.md``.

    python -m tests.conformance [--profile full|fast] [--only CASE,...] [--out DIR]

``make conformance`` runs the full profile into ``conformance/`` (committed); the fast profile
runs inside ``make test`` (tests/conformance/test_conformance.py) and, from here, writes to
``conformance/out/`` unless told otherwise. Each case runs on a new uvloop event loop with a
time limit; a case that raises anything but its own verdict fails with that error as detail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

from .cases import BY_NAME, CASES, PROFILES, Case, Profile
from .harness import CaseFailed, Unsupported

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    result: str  # "pass", "fail" or "unsupported"
    seconds: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"result": self.result, "seconds": round(self.seconds, 2), "detail": self.detail}


def run_case(case: Case, profile: Profile) -> Outcome:
    """Run one case on a fresh uvloop loop and classify what happened."""
    started = time.monotonic()

    def outcome(result: str, detail: str) -> Outcome:
        return Outcome(result, time.monotonic() - started, detail)

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            detail = runner.run(asyncio.wait_for(case.run(profile), case.timeout))
    except Unsupported as exc:
        return outcome("unsupported", str(exc))
    except CaseFailed as exc:
        return outcome("fail", str(exc))
    except TimeoutError:
        return outcome("fail", f"timed out after {case.timeout:g} s")
    except Exception as exc:  # an error in minimalt (or the case): a failure, with its name
        return outcome("fail", f"{type(exc).__name__}: {exc}")
    return outcome("pass", detail)


def _environment() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return (
        f"commit {commit or 'unknown'}, Python {platform.python_version()}, uvloop "
        f"{uvloop.__version__}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def write_results(results: dict[str, Outcome], profile: Profile, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {name: o.as_dict() for name, o in results.items()}
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    counts = {
        kind: sum(o.result == kind for o in results.values())
        for kind in ("pass", "fail", "unsupported")
    }
    lines = [
        "# Conformance results",
        "",
        f"Profile {profile.describe()}. {_environment()}.",
        "Reproduce with `make conformance` (full profile) or `python -m tests.conformance "
        "--profile fast`. Cases and criteria: docs/conformance.md.",
        "",
        f"**{counts['pass']} pass, {counts['fail']} fail, {counts['unsupported']} unsupported.**",
        "",
        "| case | result | seconds | detail |",
        "|---|---|---:|---|",
    ]
    for name, o in results.items():
        detail = o.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {o.result} | {o.seconds:.1f} | {detail} |")
    lines += ["", "## Pass criteria", ""]
    lines += [f"- **{name}**: {BY_NAME[name].criterion}" for name in results]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument(
        "--out",
        help="results directory (default: conformance/ for the full "
        "profile, conformance/out/ otherwise)",
    )
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    cases = CASES
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown cases {unknown}; known: {', '.join(BY_NAME)}")
        cases = [BY_NAME[n] for n in names]
    out = (
        Path(args.out)
        if args.out
        else ROOT / "conformance" / ("" if profile.name == "full" else "out")
    )
    print(f"conformance, profile {profile.describe()}", flush=True)
    results: dict[str, Outcome] = {}
    for case in cases:
        outcome = run_case(case, profile)
        results[case.name] = outcome
        print(
            f"{case.name:20s} {outcome.result:11s} {outcome.seconds:6.1f} s  {outcome.detail}",
            flush=True,
        )
    write_results(results, profile, out)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if any(o.result == "fail" for o in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
