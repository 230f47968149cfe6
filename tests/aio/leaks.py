"""Fixtures failing any test that leaves a task, a socket, a thread or a child process behind.

``no_leaked_resources`` is checked after the test's event loop is closed (it is set up before
the loop fixture), so what the loop closes on shutdown, such as the default minimalt client,
counts as cleaned up. ``no_leaked_tasks`` runs inside the loop, for async tests: a conftest
imports the ones its tests need (an autouse fixture applies where it is imported)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest


def open_sockets() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def child_processes() -> set[int]:
    """Children of this process, zombies included (a child never waited for is a leak too)."""
    me = os.getpid()
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            children.add(int(entry))
    return children


@pytest.fixture(autouse=True)
def no_leaked_resources():
    sockets = open_sockets()
    children = child_processes()
    threads = set(threading.enumerate())
    yield
    gc.collect()
    leaked_sockets = open_sockets() - sockets
    leaked_children = child_processes() - children
    leaked_threads = {t for t in threading.enumerate() if t not in threads and t.is_alive()}
    assert not leaked_sockets, f"sockets left open: {sorted(leaked_sockets)}"
    assert not leaked_children, f"child processes left behind: {sorted(leaked_children)}"
    assert not leaked_threads, f"threads left running: {leaked_threads}"


@pytest.fixture(autouse=True)
async def no_leaked_tasks():
    """Every task a test started (handlers, pumps, relays) has finished when the test ends."""
    yield
    current = asyncio.current_task()
    others = {task for task in asyncio.all_tasks() if task is not current}
    if others:
        _, pending = await asyncio.wait(others, timeout=2.0)
        for task in pending:
            task.cancel()
        assert not pending, f"tasks still running 2 s after the test: {pending}"
