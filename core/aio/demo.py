"""``minimalt demo`` (what ``make demo`` runs): a directory, servers and clients as separate
processes on loopback, showing 0-RTT.

1. makes a server identity (name ``demo``) with ``minimalt keygen``;
2. starts ``minimalt directory`` as a child process and puts an emulated 20 ms link
   (``minimalt.testing.link.UDPLink``) in front of it: the directory advertises 127.0.0.2, where
   the link listens on the directory's port and forwards to it on 127.0.0.1;
3. starts ``minimalt serve --register`` (name ``demo``, advertised the same way, behind a link of
   its own) and a second ``minimalt serve`` straight on 127.0.0.1 for the loopback timings;
4. runs the netcat-like ``minimalt connect demo`` by name: the record comes from the directory;
5. over the 40 ms round trip of the links, times from fresh clients in this process a first
   contact (directory record + lookup + request: 3 round trips) and a new tunnel to the now
   cached name (1 round trip: the request rides in the tunnel's first packet), beside what
   TCP + TLS 1.3 would cost on the same path (arithmetic; ``make bench-latency`` measures it);
6. times a fresh tunnel + one request/response on plain loopback (mostly CPU) beside a fresh
   TCP and TLS 1.3 connection + request to a TCP/TLS echo child process;
7. moves ``size`` MB through the echo service and checks the sha256 of what comes back;
8. stops the loopback server with SIGTERM while a connection is open (the client reads a clear
   ``TunnelClosedError``), then the ``demo`` server and the directory: each exits 0.

Every child process is killed on the way out, whatever happens (errors, Ctrl-C).
``python -m minimalt.aio.demo peer`` is the TCP/TLS echo child used for the comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..proto.records import ServerRecord
from ..testing.certs import self_signed_certificate
from ..testing.link import LinkConfig, UDPLink
from .client import Client
from .directory import DirectoryClient
from .errors import TunnelClosedError

_PY = [sys.executable, "-m", "minimalt"]
_REQUEST = b"GET /hello\n"
_STEPS = 8
#: The emulated path of step 5: links listen on this address and forward to 127.0.0.1.
_LINK_HOST = "127.0.0.2"
_ONE_WAY = 0.02
_RTT = 2 * _ONE_WAY
#: Fresh first contacts (each followed by a cached-name tunnel) timed over the links.
_WAN_ROUNDS = 3


class DemoError(Exception):
    pass


def _print(text: str = "") -> None:
    print(text, flush=True)


def _step(n: int, title: str) -> None:
    _print(f"[{n}/{_STEPS}] {title}")


async def _wait_line(stream: asyncio.StreamReader, timeout: float, what: str) -> str:
    try:
        line = await asyncio.wait_for(stream.readline(), timeout)
    except TimeoutError:
        raise DemoError(f"{what} did not start within {timeout:g} s") from None
    if not line:
        raise DemoError(f"{what} exited before it was ready")
    return line.decode().strip()


async def _stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> int:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1


# --- the TCP / TLS comparison peer ----------------------------------------------------------


def _make_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1/localhost, or None if we cannot make one."""
    try:
        return self_signed_certificate(directory, ["localhost", "127.0.0.1"])
    except (RuntimeError, subprocess.CalledProcessError):
        return None


async def _peer_main(cert: str | None, key: str | None) -> None:
    """TCP and TLS 1.3 echo servers; prints ``tcp_port tls_port`` and runs until stdin closes."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
    tls_port = 0
    tls = None
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert, key)
        tls = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
        tls_port = tls.sockets[0].getsockname()[1]
    print(tcp.sockets[0].getsockname()[1], tls_port, flush=True)
    loop = asyncio.get_running_loop()
    # Exit when our parent goes away (its end of our stdin closes), so we never linger.
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    tcp.close()
    if tls is not None:
        tls.close()


# --- measurements ----------------------------------------------------------------------------


async def _time_minimalt(record: Any, rounds: int) -> tuple[list[float], list[int], dict[str, Any]]:
    """Fresh client endpoint, tunnel and connection per round; the request is retry-safe, so
    it rides in the first packet. Returns the times, how many packets the server had received
    when it read each request (1 = 0-RTT), and the last tunnel's stats."""
    times = []
    first_packets = []
    stats: dict[str, Any] = {}
    for _ in range(rounds):
        async with Client() as client:
            start = time.perf_counter()
            conn = await client.connect(record, "tunnel-info", retry_safe=True)
            conn.write(_REQUEST)
            answer = await conn.readline()
            times.append(time.perf_counter() - start)
            first_packets.append(json.loads(answer)["packets_received"])
            stats = conn.stats
            conn.close()
            await conn.wait_closed()
    return times, first_packets, stats


async def _time_tcp(port: int, rounds: int, context: ssl.SSLContext | None) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None
        )
        writer.write(_REQUEST)
        await reader.readexactly(len(_REQUEST))
        times.append(time.perf_counter() - start)
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return times


async def _transfer(record: Any, size: int) -> tuple[float, bool, dict[str, Any]]:
    payload = os.urandom(1 << 20)
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    async with Client() as client:
        conn = await client.connect(record, "echo")

        async def send() -> None:
            left = size
            while left > 0:
                block = payload[: min(left, len(payload))]
                sent_hash.update(block)
                conn.write(block)
                await conn.drain()
                left -= len(block)
            conn.write_eof()

        start = time.perf_counter()
        sender = asyncio.ensure_future(send())
        received = 0
        try:
            while data := await conn.read(1 << 20):
                got_hash.update(data)
                received += len(data)
            await sender
        finally:  # interrupted (Ctrl-C, an error): the sender must not outlive us
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        elapsed = time.perf_counter() - start
        stats = conn.stats
        conn.close()
        await conn.wait_closed()
    return elapsed, received == size and sent_hash.digest() == got_hash.digest(), stats


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:6.2f} ms"


# --- the emulated path -----------------------------------------------------------------------


async def _link_in_front(stack: contextlib.AsyncExitStack, port: int, what: str) -> UDPLink:
    """A 20 ms-each-way link listening on 127.0.0.2:``port`` and forwarding to 127.0.0.1:``port``,
    where ``what`` (started with ``--advertise 127.0.0.2``) listens. The process holds the port on
    127.0.0.1, so only another holder of 127.0.0.2:``port`` could be in the way."""
    link = UDPLink(("127.0.0.1", port), LinkConfig(delay=_ONE_WAY), listen=(_LINK_HOST, port))
    try:
        await stack.enter_async_context(link)
    except OSError as exc:
        raise DemoError(
            f"cannot put a link in front of {what} on UDP {_LINK_HOST}:{port}: "
            f"{exc.strerror or exc} (the demo needs the 127.0.0.0/8 loopback range, as on Linux)"
        ) from None
    return link


async def _request(client: Client, name: str) -> tuple[float, int]:
    """Seconds from ``connect(name)`` to the answer of a retry-safe request, and how many packets
    the server had received on that tunnel when it read the request (1 = 0-RTT)."""
    start = time.perf_counter()
    conn = await client.connect(name, "tunnel-info", retry_safe=True)
    conn.write(_REQUEST)
    answer = await conn.readline()
    elapsed = time.perf_counter() - start
    conn.close()
    await conn.wait_closed()
    return elapsed, json.loads(answer)["packets_received"]


async def _time_by_name(
    address: str, key: str, rounds: int
) -> tuple[list[float], list[float], list[int], ServerRecord | None]:
    """Each round: a fresh directory resolver that knows only the directory's address and key,
    a fresh client asking for ``demo`` (first contact), then another fresh client, with the same
    resolver, asking again (the name is cached: only the new tunnel's first packet). Returns both
    times, the packet counts the server saw, and the record the directory handed out."""
    first, cached, packets = [], [], []
    record = None
    for _ in range(rounds):
        async with DirectoryClient(address, key) as directory:
            async with Client(directory=directory) as client:
                elapsed, seen = await _request(client, "demo")
            first.append(elapsed)
            packets.append(seen)
            async with Client(directory=directory) as client:
                elapsed, seen = await _request(client, "demo")
            cached.append(elapsed)
            packets.append(seen)
            record = await directory.lookup("demo")  # from the cache, as the second client did
    return first, cached, packets, record


# --- the demo --------------------------------------------------------------------------------


async def _spawn(
    procs: list[asyncio.subprocess.Process], *args: str, **kwargs: Any
) -> asyncio.subprocess.Process:
    """A ``minimalt`` child process, recorded in ``procs`` so that it is killed on every path."""
    kwargs.setdefault("stdin", asyncio.subprocess.DEVNULL)
    kwargs.setdefault("stdout", asyncio.subprocess.PIPE)
    proc = await asyncio.create_subprocess_exec(*_PY, *args, **kwargs)
    procs.append(proc)
    return proc


async def _demo(size_mb: int, rounds: int) -> None:
    from .client import load_record

    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="minimalt-demo-"))
    procs: list[asyncio.subprocess.Process] = []
    async with contextlib.AsyncExitStack() as links:
        try:
            _print(
                "minimalt demo: a MinimaLT directory, servers and clients as separate processes "
                "on loopback\n"
            )
            key_file = workdir / "server.json"
            _step(1, "identity")
            keygen = await _spawn(
                procs, "keygen", "-o", str(key_file), "-n", "demo", stderr=asyncio.subprocess.PIPE
            )
            out, err = await keygen.communicate()
            if keygen.returncode != 0:
                raise DemoError(f"minimalt keygen failed: {err.decode().strip()}")
            _print(
                f"      minimalt keygen -n demo -> {key_file.name} (mode "
                f"{key_file.stat().st_mode & 0o777:o}), Ed25519 key {out.decode()[:16]}..."
            )

            _step(2, f"directory process, behind a {_ONE_WAY * 1e3:g} ms link")
            directory = await _spawn(
                procs, "directory", "--store", ":memory:", "--advertise", _LINK_HOST, "-q"
            )
            # Started now so that their Python start-up overlaps the directory's.
            loopback = await _spawn(procs, "serve", "-n", "loopback", "--tunnel-info", "-q")
            certs = _make_certificate(workdir)
            peer_args = [str(certs[0]), str(certs[1])] if certs else []
            peer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "minimalt.aio.demo",
                "peer",
                *peer_args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            procs.append(peer)
            assert directory.stdout is not None
            env: dict[str, str] = {}
            for _ in range(2):
                name, _, value = (
                    await _wait_line(directory.stdout, 15, "minimalt directory")
                ).partition("=")
                env[name] = value
            dir_address, dir_key = env["MINIMALT_DIRECTORY"], env["MINIMALT_DIRECTORY_KEY"]
            dir_port = int(dir_address.rpartition(":")[2])
            await _link_in_front(links, dir_port, "the directory")
            _print(
                f"      minimalt directory --store :memory: --advertise {_LINK_HOST} "
                f"(pid {directory.pid}) on UDP 127.0.0.1:{dir_port}; it prints what clients need:"
            )
            _print(f"        MINIMALT_DIRECTORY={dir_address}")
            _print(f"        MINIMALT_DIRECTORY_KEY={dir_key[:16]}...")
            _print(
                f"      link: {_LINK_HOST}:{dir_port} -> 127.0.0.1:{dir_port}, "
                f"{_ONE_WAY * 1e3:g} ms each way ({_RTT * 1e3:g} ms round trip)"
            )

            _step(3, "server processes")
            server = await _spawn(
                procs,
                "serve",
                "-i",
                str(key_file),
                "-s",
                "echo",
                "--tunnel-info",
                "--register",
                "--directory",
                dir_address,
                "--directory-key",
                dir_key,
                "--advertise",
                _LINK_HOST,
                "-q",
            )
            assert server.stdout is not None and loopback.stdout is not None
            text = await _wait_line(server.stdout, 15, "minimalt serve --register")
            record = load_record(text)
            await _link_in_front(links, record.port, "the server")
            _print(
                f"      minimalt serve --register --advertise {_LINK_HOST} (pid {server.pid}) on "
                f"UDP 127.0.0.1:{record.port}, behind its own link at {record.host}:{record.port}"
            )
            _print(
                f"      registered as {record.name!r} (signed record of {len(text)} chars, valid "
                f"until {time.strftime('%H:%M:%S', time.localtime(record.expires))}): "
                f"{text[:44]}..."
            )
            loop_text = await _wait_line(loopback.stdout, 15, "minimalt serve")
            loop_record = load_record(loop_text)
            _print(
                f"      minimalt serve -n loopback (pid {loopback.pid}) straight on UDP "
                f"{loop_record.host}:{loop_record.port}, for the loopback timings of steps 6-7"
            )

            _step(4, "netcat-like client process, by name")
            line = b"hello from another process\n"
            start = time.perf_counter()
            nc = await _spawn(
                procs,
                "connect",
                "demo",
                "-s",
                "echo",
                stdin=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **env},
                cwd=workdir,  # "demo" must not name a record file by accident
            )
            out, err = await asyncio.wait_for(nc.communicate(line), 20)
            if nc.returncode != 0 or out != line:
                raise DemoError(f"minimalt connect demo failed: {err.decode().strip() or out!r}")
            _print(
                f"      echo ... | MINIMALT_DIRECTORY=... minimalt connect demo -> "
                f"{out.decode().strip()!r}"
            )
            _print(
                f"      (exit 0, {time.perf_counter() - start:.2f} s including Python start-up; "
                "given only a name, it asked the directory for the record)"
            )

            _step(5, f"0-RTT over a {_RTT * 1e3:g} ms round trip (median of {_WAN_ROUNDS})")
            first, cached, packets, looked_up = await _time_by_name(
                dir_address, dir_key, _WAN_ROUNDS
            )
            if looked_up is None or looked_up.to_text() != text:
                raise DemoError(
                    "the directory's record for 'demo' is not the one the server printed"
                )
            _print(
                "      the directory's record for 'demo' is the one the server printed (same "
                f"signed bytes, {looked_up.host}:{looked_up.port})"
            )
            for label, values in (
                ("first contact: directory record + lookup + request", first),
                ("cached name: a new tunnel, request in its first packet", cached),
            ):
                ms = statistics.median(values) * 1e3
                _print(f"      {label:56} {ms:6.1f} ms = {ms / (_RTT * 1e3):.2f} round trips")
            _print(
                f"      TCP + TLS 1.3 on this path, by arithmetic (not measured): DNS lookup + SYN "
                f"+ TLS handshake + request\n        = 4 x {_RTT * 1e3:g} = {4 * _RTT * 1e3:g} ms, "
                f"or 3 x {_RTT * 1e3:g} = {3 * _RTT * 1e3:g} ms with the DNS answer cached"
            )
            _print("      (measured side by side, with TCP, TLS and QUIC: make bench-latency)")
            if any(n != 1 for n in packets):
                raise DemoError(
                    f"the server read a request after {max(packets)} packets, not the first"
                )

            _step(6, f"time to first response on plain loopback (median of {rounds})")
            assert peer.stdout is not None
            tcp_port, tls_port = (
                int(p) for p in (await _wait_line(peer.stdout, 15, "TCP peer")).split()
            )
            mlt_times, first_packets, stats = await _time_minimalt(loop_record, rounds)
            tcp_times = await _time_tcp(tcp_port, rounds, None)
            tls_times: list[float] = []
            if certs and tls_port:
                context = ssl.create_default_context(cafile=str(certs[0]))
                context.minimum_version = ssl.TLSVersion.TLSv1_3
                tls_times = await _time_tcp(tls_port, rounds, context)
            zero_rtt = sum(1 for n in first_packets if n == 1)
            _print(
                f"      minimalt 0-RTT   {_ms(mlt_times)}   1 round trip   (in {zero_rtt}/{rounds} "
                "the server read the request from the tunnel's first packet)"
            )
            _print(f"      TCP              {_ms(tcp_times)}   2 round trips  (SYN, then request)")
            if tls_times:
                _print(
                    f"      TLS 1.3 / TCP    {_ms(tls_times)}   3 round trips  (SYN, handshake, "
                    "then request)"
                )
            else:
                _print("      TLS 1.3 / TCP    skipped (no way to make a test certificate here)")
            _print(
                f"      last tunnel: rtt {stats['min_rtt'] * 1e6:.0f} us, {stats['packets_sent']} "
                f"packets / {stats['bytes_sent']} bytes sent, {stats['packets_received']} packets "
                f"/ {stats['bytes_received']} bytes received"
            )
            _print(
                "      (a loopback round trip is ~0.1 ms, so these times are mostly CPU; step 5 "
                "shows the round trips)"
            )
            if zero_rtt != rounds:
                raise DemoError(f"only {zero_rtt} of {rounds} requests rode in the first packet")

            _step(7, f"transfer: {size_mb} MB through the echo service and back")
            elapsed, ok, tstats = await _transfer(loop_record, size_mb << 20)
            if not ok:
                raise DemoError("the echoed data does not match what was sent (sha256 differs)")
            _print(
                f"      {size_mb} MB up and {size_mb} MB back in {elapsed:.2f} s: "
                f"{size_mb * 1.048576 / elapsed:.1f} MB/s each way, sha256 match"
            )
            _print(
                f"      tunnel stats: {tstats['packets_sent']} packets sent, "
                f"{tstats['packets_received']} received, {tstats['bytes_sent'] / 1e6:.1f} MB / "
                f"{tstats['bytes_received'] / 1e6:.1f} MB on the wire, smoothed rtt "
                f"{tstats['smoothed_rtt'] * 1e3:.2f} ms, {tstats['packets_lost']} lost, "
                f"{tstats['packets_retransmitted']} retransmitted, cwnd "
                f"{tstats['cwnd'] // 1024} KiB ({tstats['congestion_control']})"
            )

            _step(8, "clean shutdown")
            async with Client() as client:
                conn = await client.connect(loop_record, "echo")
                conn.write(b"ping")
                await conn.readexactly(4)
                reading = asyncio.ensure_future(conn.read())
                try:
                    code = await _stop(loopback)
                    await asyncio.wait_for(reading, 10)
                    raise DemoError("the open connection did not notice the shutdown")
                except TunnelClosedError as exc:
                    _print(
                        f"      SIGTERM to the loopback server; the open connection reads: {exc}"
                    )
                finally:
                    reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
            if code != 0:
                raise DemoError(f"the loopback server exited with code {code}")
            codes = {"'demo' server": await _stop(server), "directory": await _stop(directory)}
            for what, code in codes.items():
                if code != 0:
                    raise DemoError(f"the {what} exited with code {code}")
            _print("      SIGTERM to the 'demo' server and the directory")
            _print("      loopback server, 'demo' server and directory exited with code 0")
            await _stop(peer)
            _print(f"\ndone in {time.perf_counter() - began:.1f} s")
        finally:
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def main(size_mb: int = 20, rounds: int = 20) -> int:
    from .runner import run

    try:
        run(_demo(size_mb, rounds))
    except DemoError as exc:
        print(f"minimalt: error: demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minimalt: demo interrupted (child processes stopped)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # the TCP/TLS comparison peer
    if len(sys.argv) >= 2 and sys.argv[1] == "peer":
        from .runner import run

        run(_peer_main(*(sys.argv[2:4] if len(sys.argv) >= 4 else (None, None))))
    else:
        sys.exit(main())
