"""Fixtures for the asyncio runtime's tests: every async test runs twice, on uvloop and on the
stdlib loop, and fails if it leaks a task, a socket, a thread or a child process."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio.plugin
import uvloop

import minimalt

from .leaks import no_leaked_resources, no_leaked_tasks  # noqa: F401  (autouse fixtures)

LOOP_FACTORIES = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}

if hasattr(
    getattr(pytest_asyncio.plugin, "PytestAsyncioSpecs", None), "pytest_asyncio_loop_factories"
):

    def pytest_asyncio_loop_factories(config, item):  # type: ignore[no-untyped-def]
        """pytest-asyncio >= 1.3: run each async test once per loop."""
        return LOOP_FACTORIES

else:  # older pytest-asyncio: the (since deprecated) loop-policy fixture does the same

    @pytest.fixture(params=list(LOOP_FACTORIES))
    def event_loop_policy(request):  # type: ignore[no-untyped-def]
        if request.param == "uvloop":
            return uvloop.EventLoopPolicy()
        return asyncio.DefaultEventLoopPolicy()


def on_uvloop() -> bool:
    return isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def echo(conn: minimalt.Connection) -> None:
    while data := await conn.read(1 << 16):
        conn.write(data)
        await conn.drain()


@pytest.fixture
async def echo_server():
    async with minimalt.serve(echo, service="echo") as server:
        yield server
