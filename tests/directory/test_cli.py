"""``minimalt directory`` and ``minimalt lookup`` end to end, through real processes: a server
registers with ``serve --register``, a client looks it up and connects to it by name."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..cli.processes import close_pipes, stop_process

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

MINIMALT = [sys.executable, "-m", "minimalt"]


class Child:
    """A long-running ``minimalt`` command; ``lines`` are the first stdout lines it printed."""

    def __init__(self, args: list[str], env: dict[str, str], lines: int) -> None:
        self.proc = subprocess.Popen(
            [*MINIMALT, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        self.lines = [self.proc.stdout.readline().decode().strip() for _ in range(lines)]
        if not all(self.lines):
            self.stop()
            raise AssertionError(f"{args[0]} did not start: {self.stderr}")

    def stop(self) -> int:
        try:
            return stop_process(self.proc)
        finally:
            self.stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
            close_pipes(self.proc)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no directory configured, config files under tmp_path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINIMALT_")}
    clean["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return clean


@pytest.fixture
def directory(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running ``minimalt directory``; yields the client environment it printed."""
    child = Child(["directory", "--store", str(tmp_path / "names.sqlite3"), "-q"], env, 2)
    variables = dict(line.split("=", 1) for line in child.lines)
    assert set(variables) == {"MINIMALT_DIRECTORY", "MINIMALT_DIRECTORY_KEY"}
    yield {**env, **variables}
    assert child.stop() == 0


def run(args: list[str], env: dict[str, str], input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([*MINIMALT, *args], input=input, capture_output=True, env=env, timeout=30)


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, (result.returncode, lines)
    assert lines[0].startswith("minimalt: error: ")
    return lines[0]


def keygen(path: Path, name: str, env: dict[str, str]) -> Path:
    assert run(["keygen", "-o", str(path), "-n", name], env).returncode == 0
    return path


def test_register_lookup_and_connect_by_name(directory, env, tmp_path):
    identity = keygen(tmp_path / "alpha.json", "alpha", env)
    server = Child(["serve", "-i", str(identity), "--register", "-q"], directory, 1)
    try:
        record = server.lines[0]
        found = run(["lookup", "alpha"], directory)
        assert found.returncode == 0, found.stderr
        rows = dict(line.split(None, 1) for line in found.stdout.decode().splitlines())
        assert rows["name"] == "alpha" and rows["signature"] == "valid"
        assert rows["record"] == record
        # The same directory named on the command line instead of the environment.
        flags = ["--directory", directory["MINIMALT_DIRECTORY"]]
        flags += ["--directory-key", directory["MINIMALT_DIRECTORY_KEY"]]
        as_json = run(["lookup", "ALPHA", "--json", *flags], env)
        assert as_json.returncode == 0 and b'"name": "alpha"' in as_json.stdout
        echoed = run(["connect", "alpha", "--retry-safe"], directory, input=b"by name")
        assert echoed.returncode == 0 and echoed.stdout == b"by name"
        # Another key cannot take the name: one clear line, non-zero exit.
        impostor = keygen(tmp_path / "impostor.json", "alpha", env)
        refused = run(["serve", "-i", str(impostor), "--register", "-q"], directory)
        assert "belongs to another identity" in error_line(refused)
    finally:
        assert server.stop() == 0


def test_lookup_errors_are_one_clear_line(directory, env):
    assert "no server named 'nobody'" in error_line(run(["lookup", "nobody"], directory))
    assert "not a valid name" in error_line(run(["lookup", "no such"], directory))
    assert "no directory configured" in error_line(run(["lookup", "alpha"], env))
    wrong = {**directory, "MINIMALT_DIRECTORY_KEY": "11" * 32}
    line = error_line(run(["lookup", "alpha", "-t", "0.5"], wrong))
    assert "no answer from the directory" in line and "MINIMALT_DIRECTORY_KEY" in line
    bad = {**directory, "MINIMALT_DIRECTORY_KEY": "not-a-key"}
    assert "not 64 hex digits" in error_line(run(["lookup", "alpha"], bad))
