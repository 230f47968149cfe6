"""The ``minimalt`` command end to end, through real processes: keygen, serve, connect, record,
and one clear error line with a non-zero exit code for each kind of bad input."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .processes import close_pipes, stop_process

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

MINIMALT = [sys.executable, "-m", "minimalt"]


def run(*args: str, input: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MINIMALT, *args], input=input, capture_output=True, timeout=timeout)


def error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The one line a failing command prints."""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got: {lines}"
    assert lines[0].startswith("minimalt: error: ")
    return lines[0]


class Server:
    """``minimalt serve`` as a child process; its record is the first line of its stdout."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*MINIMALT, "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.record = self.proc.stdout.readline().decode().strip()
        if not self.record.startswith("mlt1:"):
            self.stop()
            raise AssertionError(f"server did not start: {self.proc.stderr.read().decode()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        try:
            return stop_process(self.proc, sig)
        finally:
            close_pipes(self.proc)


@pytest.fixture
def identity(tmp_path: Path) -> Path:
    path = tmp_path / "server.json"
    result = run("keygen", "-o", str(path), "-n", "cli-test")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def server(identity: Path, tmp_path: Path) -> Iterator[Server]:
    srv = Server("-i", str(identity), "-r", str(tmp_path / "record.txt"), "-q")
    yield srv
    assert srv.stop() == 0


def test_keygen_writes_a_private_file_and_refuses_to_overwrite_it(tmp_path):
    path = tmp_path / "id.json"
    result = run("keygen", "-o", str(path))
    assert result.returncode == 0
    assert len(result.stdout.decode().strip()) == 64  # the public key, hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    again = run("keygen", "-o", str(path))
    assert again.returncode != 0
    assert "already exists (use --force" in error_line(again)
    assert path.read_bytes() == before
    assert run("keygen", "-o", str(path), "--force").returncode == 0
    assert path.read_bytes() != before


def test_serve_and_connect_echo_through_separate_processes(server, tmp_path):
    result = run("connect", str(tmp_path / "record.txt"), input=b"hello over minimalt\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello over minimalt\n"


def test_connect_moves_a_few_megabytes_intact(server, tmp_path):
    data = os.urandom(3 << 20)
    source = tmp_path / "data.bin"
    source.write_bytes(data)  # a regular file as stdin (read through a thread)
    with open(source, "rb") as stdin:
        result = subprocess.run(
            [*MINIMALT, "connect", server.record, "--retry-safe"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()


def test_serve_forward_pipes_connections_to_a_tcp_service(identity, tmp_path):
    class Upper(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.read().upper())

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper)
    thread = threading.Thread(target=tcp.serve_forever)
    thread.start()
    try:
        port = tcp.server_address[1]
        srv = Server("-i", str(identity), "--forward", f"127.0.0.1:{port}", "-s", "upper", "-q")
        try:
            result = run("connect", srv.record, "-s", "upper", input=b"shout this\n")
            assert result.returncode == 0, result.stderr
            assert result.stdout == b"SHOUT THIS\n"
        finally:
            assert srv.stop() == 0
    finally:
        tcp.shutdown()
        tcp.server_close()
        thread.join()


def test_record_prints_and_verifies(server, identity, tmp_path):
    result = run("record", str(tmp_path / "record.txt"), "--identity-key", str(identity))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "signature  valid" in out and "address    127.0.0.1:" in out
    assert "name       cli-test" in out


def test_record_rejects_tampering_and_the_wrong_identity(server, tmp_path):
    text = server.record
    body = text[5:]
    flipped = "mlt1:" + body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    result = run("record", flipped)
    assert result.returncode != 0
    assert "signature" in result.stdout.decode() + result.stderr.decode()
    wrong = run("record", text, "--identity-key", "00" * 32)
    assert wrong.returncode != 0
    assert "another identity" in error_line(wrong)


def test_missing_identity_file_is_one_clear_error(tmp_path):
    result = run("serve", "-i", str(tmp_path / "missing.json"))
    assert result.returncode != 0
    assert "not found (create one with `minimalt keygen`)" in error_line(result)


def test_malformed_identity_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run("serve", "-i", str(bad))
    assert result.returncode != 0
    assert "malformed identity file" in error_line(result)


def test_malformed_record_is_one_clear_error(tmp_path):
    bad = tmp_path / "record.txt"
    bad.write_text("mlt1:this-is-not-a-record\n")
    for result in (run("connect", str(bad)), run("record", str(bad))):
        assert result.returncode != 0
        assert "malformed record" in error_line(result)
    missing = run("connect", str(tmp_path / "nope.txt"))
    assert missing.returncode != 0
    assert "no record file" in error_line(missing)


def test_port_in_use_is_one_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run("serve", "-p", str(port), "-q")
    assert result.returncode != 0
    assert f"cannot listen on UDP 127.0.0.1:{port}: address already in use" in error_line(result)


def test_unreachable_server_is_one_clear_error_after_the_timeout(server, tmp_path):
    record = server.record
    assert server.stop() == 0
    result = run("connect", record, "--timeout", "0.5", input=b"anyone there?\n")
    assert result.returncode != 0
    assert "no answer from server 'cli-test'" in error_line(result)
    server.proc.returncode = 0  # already stopped: the fixture's stop() is a no-op


def test_unknown_service_is_one_clear_error(server):
    result = run("connect", server.record, "-s", "nonexistent", input=b"x")
    assert result.returncode != 0
    assert "refused a connection to service 'nonexistent'" in error_line(result)


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0
    for command in ("keygen", "serve", "connect", "record", "demo"):
        assert command in result.stdout.decode()
    bad = run("frobnicate")
    assert bad.returncode == 2


@pytest.mark.slow
def test_demo_runs_end_to_end():
    result = run("demo", "--size", "4", "--rounds", "3", timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    out = result.stdout.decode()
    assert "1 round trip" in out and "sha256 match" in out and "exited with code 0" in out
