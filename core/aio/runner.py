"""``minimalt.run(main())``: ``asyncio.run`` on uvloop when it is installed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(use_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's ``new_event_loop`` if wanted and importable, else the stdlib's."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None, use_uvloop: bool = True) -> T:
    """Run ``main`` to completion on a new loop (uvloop by default) and close it, closing the
    loop's default minimalt client on the way out."""
    with asyncio.Runner(debug=debug, loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(main)
