"""Fixtures for the real-socket attack tests: every test runs on uvloop (the runtime's default
loop, the one an attacker meets), fails on any exception that escapes into the event loop or is
logged by minimalt, and fails if it leaks a task, a socket, a thread or a child process."""

from __future__ import annotations

import asyncio
import logging

import pytest
import pytest_asyncio.plugin
import uvloop

from ..aio.leaks import no_leaked_resources, no_leaked_tasks  # noqa: F401  (autouse fixtures)

LOOP_FACTORIES = {"uvloop": uvloop.new_event_loop}

if hasattr(
    getattr(pytest_asyncio.plugin, "PytestAsyncioSpecs", None), "pytest_asyncio_loop_factories"
):

    def pytest_asyncio_loop_factories(config, item):  # type: ignore[no-untyped-def]
        """pytest-asyncio >= 1.3: uvloop only."""
        return LOOP_FACTORIES

else:  # older pytest-asyncio: the (since deprecated) loop-policy fixture does the same

    @pytest.fixture
    def event_loop_policy():  # type: ignore[no-untyped-def]
        return uvloop.EventLoopPolicy()


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
async def no_runtime_errors():
    """Runs on uvloop; nothing escapes into the loop's exception handler (a protocol callback
    that raises makes uvloop close the socket) and nothing is logged at ERROR by minimalt."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, uvloop.Loop), "security tests run on uvloop"
    escaped: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    recorder = _Recorder()
    logger = logging.getLogger("minimalt")
    logger.addHandler(recorder)
    try:
        yield
    finally:
        logger.removeHandler(recorder)
        loop.set_exception_handler(None)
    assert not escaped, f"exceptions escaped into the event loop: {escaped}"
    assert not recorder.records, [r.getMessage() for r in recorder.records]
