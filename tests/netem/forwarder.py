"""The userspace forwarder of the emulated network: moves every IP packet between two TUN
devices, one in each network namespace, through the link model of ``minimalt.testing.link``.

Run by ``tests.netem.network.EmulatedNetwork`` as a child process (as root), never by hand:

    python tests/netem/forwarder.py --ns-a CLIENT_NS --ns-b SERVER_NS --dev mlt0 --config JSON

It creates a TUN device named ``--dev`` inside each namespace (entering each with ``setns``),
prints one JSON line ``{"ready": true}`` and then forwards. Packets read from A's device go
through the client-to-server model and are written to B's device, and back. Commands arrive as
JSON lines on stdin and are answered with one JSON line each:

    {"cmd": "set", "c2s": {...LinkConfig...}, "s2c": {...}}   -> {"ok": true}
    {"cmd": "stats"}                                         -> {"c2s": {...}, "s2c": {...}}

The forwarder exits when its stdin closes, so a dead parent never leaves it running. It runs
on a ``select()`` loop (``precise_loop``): sub-millisecond delays stay accurate.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import fcntl
import json
import os
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from minimalt.testing.link import DelayLine, LinkConfig, LinkModel, precise_loop

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
NETNS_DIR = "/var/run/netns"
#: A TCP/UDP header starts after the 20-byte IPv4 header: corrupting from there makes the
#: kernel's checksum drop the packet, as a real link's corruption would.
IP_HEADER = 20
#: Packets one read turn takes from a device before the loop gets to run timers.
_BATCH = 128


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the calling thread inside network namespace ``name`` (from ``ip netns add``);
    sockets and devices opened meanwhile stay in it after the thread returns."""
    libc = _libc()
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(original, CLONE_NEWNET) != 0:  # pragma: no cover - cannot happen
                err = ctypes.get_errno()
                raise OSError(err, f"setns back: {os.strerror(err)}")
    finally:
        os.close(target)
        os.close(original)


def open_tun(namespace: str, dev: str) -> int:
    """A new TUN device ``dev`` in ``namespace`` (raw IP packets, no packet info header)."""
    with netns(namespace):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
        except OSError:
            os.close(fd)
            raise
    return fd


class Forwarder:
    """Two TUN file descriptors joined through two ``LinkModel``s."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd_a: int,
        fd_b: int,
        c2s: LinkConfig,
        s2c: LinkConfig,
        seed: int,
    ) -> None:
        self.loop = loop
        self.fd_a = fd_a
        self.fd_b = fd_b
        now = time.monotonic()
        self.c2s = LinkModel(_for_ip(c2s), f"{seed}:c2s", origin=now)
        self.s2c = LinkModel(_for_ip(s2c), f"{seed}:s2c", origin=now)
        self.line = DelayLine(loop)
        self.write_errors = 0
        loop.add_reader(fd_a, self._readable, fd_a, self.c2s, fd_b)
        loop.add_reader(fd_b, self._readable, fd_b, self.s2c, fd_a)

    def reconfigure(self, c2s: LinkConfig, s2c: LinkConfig) -> None:
        now = time.monotonic()
        self.c2s.reconfigure(_for_ip(c2s), origin=now)
        self.s2c.reconfigure(_for_ip(s2c), origin=now)

    def _readable(self, fd: int, model: LinkModel, out: int) -> None:
        for _ in range(_BATCH):
            try:
                packet = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            now = time.monotonic()
            for at, copy in model.offer(packet, now):
                self.line.put(at, self._write, copy, out)

    def _write(self, packet: bytes, fd: int) -> None:
        try:
            os.write(fd, packet)
        except OSError:
            self.write_errors += 1

    def stats(self) -> dict[str, Any]:
        return {
            "c2s": self.c2s.stats.as_dict(),
            "s2c": self.s2c.stats.as_dict(),
            "queued": len(self.line),
            "write_errors": self.write_errors,
        }

    def close(self) -> None:
        self.loop.remove_reader(self.fd_a)
        self.loop.remove_reader(self.fd_b)
        self.line.close()


def _for_ip(config: LinkConfig) -> LinkConfig:
    if config.corrupt and config.corrupt_from < IP_HEADER:
        return LinkConfig.from_dict({**config.to_dict(), "corrupt_from": IP_HEADER})
    return config


async def serve(args: argparse.Namespace) -> None:
    config = json.loads(args.config)
    c2s = LinkConfig.from_dict(config.get("c2s", {}))
    s2c = LinkConfig.from_dict(config.get("s2c", config.get("c2s", {})))
    fd_a = open_tun(args.ns_a, args.dev)
    fd_b = open_tun(args.ns_b, args.dev)
    loop = asyncio.get_running_loop()
    forwarder = Forwarder(loop, fd_a, fd_b, c2s, s2c, args.seed)
    done: asyncio.Future[None] = loop.create_future()
    buffer = bytearray()

    def reply(obj: Any) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def on_stdin() -> None:
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            if not done.done():
                done.set_result(None)
            return
        buffer.extend(chunk)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            try:
                command = json.loads(line)
                if command.get("cmd") == "set":
                    forwarder.reconfigure(
                        LinkConfig.from_dict(command.get("c2s", {})),
                        LinkConfig.from_dict(command.get("s2c", command.get("c2s", {}))),
                    )
                    reply({"ok": True})
                elif command.get("cmd") == "stats":
                    reply(forwarder.stats())
                else:
                    reply({"error": f"unknown command {command!r}"})
            except (ValueError, TypeError) as exc:
                reply({"error": str(exc)})

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    reply({"ready": True, "pid": os.getpid()})
    try:
        await done
    finally:
        loop.remove_reader(sys.stdin.fileno())
        forwarder.close()
        os.close(fd_a)
        os.close(fd_b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns-a", required=True)
    parser.add_argument("--ns-b", required=True)
    parser.add_argument("--dev", default="mlt0")
    parser.add_argument("--config", default="{}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=precise_loop) as runner:
        runner.run(serve(args))


if __name__ == "__main__":
    main()
