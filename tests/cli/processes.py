"""Stopping the ``minimalt`` child processes the CLI tests start (``tests/cli`` and the
directory's ``tests/directory/test_cli.py``), so that none outlives its test."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` and return the exit code; kill the process if it is not gone in 10 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
