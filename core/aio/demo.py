"""``minimalt demo`` (what ``make demo`` runs): separate processes on loopback showing 0-RTT.

1. makes a server identity with ``minimalt keygen``;
2. starts ``minimalt serve`` as a child process and reads its signed record from its stdout;
3. runs the netcat-like ``minimalt connect`` as another child process;
4. times a fresh tunnel + one request/response (0-RTT: the request rides in the first packet)
   beside a fresh TCP and TLS 1.3 connection + request to a TCP/TLS echo child process;
5. moves ``size`` MB through the echo service and checks the sha256 of what comes back;
6. stops the server with SIGTERM while a connection is open: the client reads a clear
   ``TunnelClosedError``, and the server exits 0.

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

from .client import Client
from .errors import TunnelClosedError

_PY = [sys.executable, "-m", "minimalt"]
_REQUEST = b"GET /hello\n"
_STEPS = 6


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
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            return None
        done = subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            capture_output=True,
        )
        return (cert, key) if done.returncode == 0 else None
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


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
        while data := await conn.read(1 << 20):
            got_hash.update(data)
            received += len(data)
        await sender
        elapsed = time.perf_counter() - start
        stats = conn.stats
        conn.close()
        await conn.wait_closed()
    return elapsed, received == size and sent_hash.digest() == got_hash.digest(), stats


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:6.2f} ms"


# --- the demo --------------------------------------------------------------------------------


async def _demo(size_mb: int, rounds: int) -> None:
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="minimalt-demo-"))
    procs: list[asyncio.subprocess.Process] = []
    try:
        _print(
            "minimalt demo: a MinimaLT server and its clients as separate processes on 127.0.0.1\n"
        )
        key_file = workdir / "server.json"
        _step(1, "identity")
        keygen = await asyncio.create_subprocess_exec(
            *_PY,
            "keygen",
            "-o",
            str(key_file),
            "-n",
            "demo",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await keygen.communicate()
        if keygen.returncode != 0:
            raise DemoError(f"minimalt keygen failed: {err.decode().strip()}")
        _print(
            f"      minimalt keygen -> {key_file.name} (mode "
            f"{key_file.stat().st_mode & 0o777:o}), Ed25519 key {out.decode()[:16]}..."
        )

        _step(2, "server process")
        record_file = workdir / "record.txt"
        server = await asyncio.create_subprocess_exec(
            *_PY,
            "serve",
            "-i",
            str(key_file),
            "-s",
            "echo",
            "--tunnel-info",
            "-r",
            str(record_file),
            "-q",
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        procs.append(server)
        assert server.stdout is not None
        text = await _wait_line(server.stdout, 15, "minimalt serve")
        from .client import load_record

        record = load_record(text)
        _print(f"      minimalt serve (pid {server.pid}) on UDP {record.host}:{record.port}")
        _print(
            f"      signed record ({len(text)} chars, valid until "
            f"{time.strftime('%H:%M:%S', time.localtime(record.expires))}): {text[:44]}..."
        )

        _step(3, "netcat-like client process")
        line = b"hello from another process\n"
        start = time.perf_counter()
        nc = await asyncio.create_subprocess_exec(
            *_PY,
            "connect",
            str(record_file),
            "-s",
            "echo",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        procs.append(nc)
        out, err = await asyncio.wait_for(nc.communicate(line), 20)
        if nc.returncode != 0 or out != line:
            raise DemoError(f"minimalt connect failed: {err.decode().strip() or out!r}")
        _print(
            f"      echo ... | minimalt connect record.txt -> {out.decode().strip()!r} "
            f"(exit 0, {time.perf_counter() - start:.2f} s including Python start-up)"
        )

        _step(4, f"time to first response on a fresh connection (median of {rounds})")
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
        assert peer.stdout is not None
        tcp_port, tls_port = (
            int(p) for p in (await _wait_line(peer.stdout, 15, "TCP peer")).split()
        )
        mlt_times, first_packets, stats = await _time_minimalt(record, rounds)
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
            "      (a loopback round trip is ~0.1 ms, so these times are mostly CPU; on a "
            "50 ms path the same exchanges take ~50 / 100 / 150 ms)"
        )
        if zero_rtt != rounds:
            raise DemoError(f"only {zero_rtt} of {rounds} requests rode in the first packet")

        _step(5, f"transfer: {size_mb} MB through the echo service and back")
        elapsed, ok, tstats = await _transfer(record, size_mb << 20)
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

        _step(6, "clean shutdown")
        async with Client() as client:
            conn = await client.connect(record, "echo")
            conn.write(b"ping")
            await conn.readexactly(4)
            reading = asyncio.ensure_future(conn.read())
            code = await _stop(server)
            try:
                await asyncio.wait_for(reading, 10)
                raise DemoError("the open connection did not notice the shutdown")
            except TunnelClosedError as exc:
                _print(f"      SIGTERM to the server; the open connection reads: {exc}")
        if code != 0:
            raise DemoError(f"the server exited with code {code}")
        _print("      server exited with code 0")
        await _stop(peer)
        _print(f"\ndone in {time.perf_counter() - began:.1f} s")
    finally:
        for proc in procs:
            if proc.returncode is None:
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
    return 0


if __name__ == "__main__":  # the TCP/TLS comparison peer
    if len(sys.argv) >= 2 and sys.argv[1] == "peer":
        from .runner import run

        run(_peer_main(*(sys.argv[2:4] if len(sys.argv) >= 4 else (None, None))))
    else:
        sys.exit(main())
