"""Sampling a peer process with py-spy, and reading its collapsed stacks back as "where the
time goes": the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), as a share of the samples in which the process was running Python.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def executable() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def record(pid: int, out: Path, rate: int = 1000, native: bool = False) -> Iterator[None]:
    """Sample ``pid`` while the block runs; collapsed stacks ("a;b;c count" lines) to ``out``.
    Without py-spy (``pip install py-spy``), or if it may not attach, writes nothing."""
    exe = executable()
    # --native (C frames: uvloop, libsodium, syscalls) must pause the process to unwind it.
    extra = ["--native"] if native else ["--nonblocking"]
    if exe is None:
        out.write_text("")
        yield
        return
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            *extra,
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not out.exists():
            out.write_text("")
            print(f"py-spy wrote nothing: {err.strip()[-300:]}", file=sys.stderr)


def _function(frame: str) -> str:
    """``name (path:line)`` -> ``name (file)``: samples of a function add up across lines."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


#: Leaf frames that mean "blocked in the kernel" in --native stacks.
IDLE = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "select"}
_SYSCALLS = ("libc.so", "libpthread")


def _layer(raw: list[str]) -> str:
    """Which layer a sample's CPU belongs to: the deepest Python frame's package, except C
    time below it that is a system call (libc) or crypto (libsodium), told apart in --native
    stacks only (without --native, C time counts for the Python function that called it)."""
    python = [i for i, f in enumerate(raw) if ".py:" in f or ".py)" in f]
    deepest = raw[python[-1]] if python else ""
    below = raw[python[-1] + 1 :] if python else raw
    if below and any(m in below[-1] for m in _SYSCALLS):
        return "system calls (recvmsg, sendmsg, ...)"
    if below and ("nacl/" in deepest or any(f.startswith("_cffi_f_") for f in below)):
        return "libsodium (X25519, XSalsa20-Poly1305, BLAKE2b)"
    if "nacl/" in deepest:
        return "pynacl's Python wrappers (and libsodium, without --native)"
    if "/proto/" in deepest:
        return "minimalt core (minimalt.proto)"
    if "/aio/" in deepest:
        return "minimalt runtime (minimalt.aio; its sendto without --native)"
    if "asyncio/" in deepest:
        return "event loop (uvloop/libuv; recvfrom, epoll without --native)"
    return "other (benchmark peer, dataclass __init__, stdlib)"


def summarize(collapsed: Path, top: int = 25, within: tuple[str, ...] = ()) -> str:
    """A text table of the top functions by self and by inclusive samples; with ``within``,
    only of the stacks through a function whose name contains one of those strings (shares
    are of those samples, counted from that frame down)."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    layer_counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [f for f in stack.split(";") if f]
        if not raw or raw[-1].split(" (", 1)[0] in IDLE:
            continue  # waiting for the kernel to have something: not CPU time
        frames = [_function(f) for f in raw]
        if within:
            cut = next((i for i, f in enumerate(frames) if any(w in f for w in within)), None)
            if cut is None:
                continue
            frames = frames[cut:]
        total += count
        self_counts[frames[-1]] += count
        layer_counts[_layer(raw)] += count
        for fn in set(frames):
            incl_counts[fn] += count
    if not total:
        return "no samples (is py-spy installed, may it attach?)\n"
    scope = f" in {' or '.join(within)}" if within else ""
    lines = [f"{total} samples{scope}", "", "self %   layer"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in layer_counts.most_common()]
    lines += ["", "self %   function (where the CPU was)"]
    lines += [f"{100 * n / total:6.1f}   {fn}" for fn, n in self_counts.most_common(top)]
    lines += ["", "incl %   function (it or its callees)"]
    lines += [f"{100 * n / total:6.1f}   {fn}" for fn, n in incl_counts.most_common(top)]
    return "\n".join(lines) + "\n"
