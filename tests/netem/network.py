"""An emulated network for peers that are not ours (TCP, TLS): two network namespaces joined
through TUN devices by a userspace forwarder applying the link model to every IP packet.

Unlike a relay, this delays TCP's SYN and SYN-ACK too, so a TCP handshake costs its round trip.
Layout (addresses fixed, namespaces named after our pid so parallel runs never collide):

    namespace A ("client")  10.77.0.1/24 on mlt0  <-TUN->  forwarder  <-TUN->  mlt0 10.77.0.2/24
                                                    (client-to-server model, server-to-client)
                                                                        namespace B ("server")

Needs root, ``/dev/net/tun`` and ``ip netns``; ``unavailable()`` says why not when it cannot
work. Namespaces are deleted on ``close()`` (and at exit, and stale ones from dead runs at the
next start), so a crashed test does not leave them behind.

Processes run inside a namespace with ``exec_prefix(side) + argv``; the calling thread can make
sockets inside one with ``with network.inside(side): ...`` (a socket keeps its namespace).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from minimalt.testing.link import LinkConfig

from .forwarder import NETNS_DIR, netns

CLIENT_IP = "10.77.0.1"
SERVER_IP = "10.77.0.2"
DEVICE = "mlt0"
MTU = 1500
FORWARDER = Path(__file__).with_name("forwarder.py")
_NAME = re.compile(r"^mlt(\d+)([ab])$")
_STARTUP_TIMEOUT = 10.0


def unavailable() -> str | None:
    """Why the emulated network cannot run here (None: it can)."""
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root (network namespaces and TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (TUN devices)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    probe = f"mlt{os.getpid()}p"
    made = _run(["ip", "netns", "add", probe])
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run(["ip", "netns", "del", probe])
    return None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def _must(argv: list[str]) -> None:
    done = _run(argv)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces an earlier run (a process that no longer exists) left behind."""
    removed = []
    for name in _list_namespaces():
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            _run(["ip", "netns", "del", name])
            removed.append(name)
    return removed


def _list_namespaces() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else
        return True
    return True


class EmulatedNetwork:
    """The two namespaces and the forwarder (see the module docstring).

    ``c2s``/``s2c`` configure the link (``s2c`` defaults to ``c2s``). Use as a context manager
    or call ``start()`` and ``close()``.
    """

    client_ip = CLIENT_IP
    server_ip = SERVER_IP

    def __init__(
        self, c2s: LinkConfig | None = None, s2c: LinkConfig | None = None, *, seed: int = 0
    ) -> None:
        self.c2s = c2s if c2s is not None else LinkConfig()
        self.s2c = s2c if s2c is not None else self.c2s
        self.seed = seed
        tag = f"mlt{os.getpid()}"
        self.namespaces = {"client": tag + "a", "server": tag + "b"}
        self._forwarder: subprocess.Popen[str] | None = None
        self._made: list[str] = []

    # --- lifetime -------------------------------------------------------------------------------

    def start(self) -> EmulatedNetwork:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"emulated network unavailable: {reason}")
        remove_stale_namespaces()
        atexit.register(self.close)
        try:
            for name in self.namespaces.values():
                if name in _list_namespaces():  # ours from an earlier network in this process
                    _run(["ip", "netns", "del", name])
                _must(["ip", "netns", "add", name])
                self._made.append(name)
                _must(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
            config = json.dumps({"c2s": self.c2s.to_dict(), "s2c": self.s2c.to_dict()})
            self._forwarder = subprocess.Popen(
                [
                    sys.executable,
                    str(FORWARDER),
                    "--ns-a",
                    self.namespaces["client"],
                    "--ns-b",
                    self.namespaces["server"],
                    "--dev",
                    DEVICE,
                    "--config",
                    config,
                    "--seed",
                    str(self.seed),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            ready = self._read_reply(_STARTUP_TIMEOUT)
            if not ready.get("ready"):
                raise RuntimeError(f"forwarder did not start: {ready}")
            for side, ip in (("client", CLIENT_IP), ("server", SERVER_IP)):
                ns = self.namespaces[side]
                # No IPv6 on the TUN devices (router solicitations would cross the link too);
                # loopback keeps it, for dual-stack sockets.
                _run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-qw",
                        f"net.ipv6.conf.{DEVICE}.disable_ipv6=1",
                    ]
                )
                _must(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", DEVICE])
                _must(
                    ["ip", "netns", "exec", ns, "ip", "link", "set", DEVICE, "mtu", str(MTU), "up"]
                )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the forwarder and delete the namespaces. Idempotent."""
        forwarder, self._forwarder = self._forwarder, None
        if forwarder is not None:
            try:
                if forwarder.stdin is not None:
                    forwarder.stdin.close()
                forwarder.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                forwarder.kill()
                forwarder.wait(timeout=5)
            if forwarder.stdout is not None:
                forwarder.stdout.close()
        for name in self._made:
            _run(["ip", "netns", "del", name])
        self._made.clear()
        atexit.unregister(self.close)

    def __enter__(self) -> EmulatedNetwork:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- control --------------------------------------------------------------------------------

    def reconfigure(self, c2s: LinkConfig, s2c: LinkConfig | None = None) -> None:
        """Change the link from now on (the blackhole schedule restarts now)."""
        self.c2s = c2s
        self.s2c = s2c if s2c is not None else c2s
        answer = self._command({"cmd": "set", "c2s": self.c2s.to_dict(), "s2c": self.s2c.to_dict()})
        if not answer.get("ok"):
            raise RuntimeError(f"forwarder refused the configuration: {answer}")

    def stats(self) -> dict[str, Any]:
        """The forwarder's counters per direction (packets, losses, queue drops, ...)."""
        return self._command({"cmd": "stats"})

    def exec_prefix(self, side: str) -> list[str]:
        """argv prefix running a command inside the ``"client"`` or ``"server"`` namespace."""
        return ["ip", "netns", "exec", self.namespaces[side]]

    @contextmanager
    def inside(self, side: str) -> Iterator[None]:
        """The calling thread is in the ``side`` namespace for the block (make sockets here)."""
        with netns(self.namespaces[side]):
            yield

    def _command(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self._forwarder is None or self._forwarder.stdin is None:
            raise RuntimeError("the network is not running")
        self._forwarder.stdin.write(json.dumps(obj) + "\n")
        self._forwarder.stdin.flush()
        return self._read_reply(10.0)

    def _read_reply(self, timeout: float) -> dict[str, Any]:
        assert self._forwarder is not None and self._forwarder.stdout is not None
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self._forwarder.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if selector.select(deadline - time.monotonic()):
                    line = self._forwarder.stdout.readline()
                    if not line:
                        raise RuntimeError(f"forwarder exited (code {self._forwarder.poll()})")
                    return json.loads(line)  # type: ignore[no-any-return]
        raise RuntimeError(f"no answer from the forwarder within {timeout} s")
