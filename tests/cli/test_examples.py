"""The programs in examples/ run as documented (a user copies them, so they must work)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quickstart():
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    assert "answer: HELLO, MINIMALT" in result.stdout


def test_upload_checks_its_hash():
    result = run_example("upload.py", "5")
    assert result.returncode == 0, result.stderr
    assert "5 MB in" in result.stdout and "sha256 match" in result.stdout


def test_echo_server_and_client(tmp_path):
    record = tmp_path / "record.txt"
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert (
            "echo server on UDP" in server.stdout.readline()
        )  # printed once the record is written
        result = run_example("client.py", str(record), "hello example")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello example"
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(10) == 0
        server.stdout.close()
    started = time.monotonic()
    result = run_example("client.py", str(record), "anyone?", "--timeout", "0.5")
    assert result.returncode == 1
    assert "server unreachable: no answer from" in result.stderr
    assert time.monotonic() - started < 10
