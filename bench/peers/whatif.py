"""What-if patches for the benchmark's minimalt peers: measure a change proposed for the core or
the runtime before anyone makes it (``runtime_bench.py --what-if NAME,...``). Each patch
replaces one function of the installed ``minimalt`` at startup; none is applied unless asked,
and a patch that no longer fits the code it replaces fails loudly instead of measuring
something else.

* ``gc-threshold``: ``gc.set_threshold(100_000, 50, 100)``, fewer generation-0 collections.
* ``count-timers``: changes nothing, counts the driver's timer callbacks and those that found
  no tunnel timer due (in ``COUNTERS``, reported by the server's ``stats``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from time import monotonic
from typing import Any


def _gc_threshold() -> None:
    gc.set_threshold(100_000, 50, 100)


#: What ``count-timers`` counted: timer callbacks, and those with nothing due.
COUNTERS: dict[str, int] = {}


def _count_timers() -> None:
    from minimalt.aio.driver import EndpointDriver

    original = EndpointDriver._on_timer
    COUNTERS.update(timer_callbacks=0, timer_callbacks_idle=0)

    def _on_timer(self: Any) -> None:
        COUNTERS["timer_callbacks"] += 1
        deadline = self.endpoint.get_timer()
        if deadline is None or deadline > monotonic():
            COUNTERS["timer_callbacks_idle"] += 1
        original(self)

    EndpointDriver._on_timer = _on_timer  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "gc-threshold": _gc_threshold,
    "count-timers": _count_timers,
}


def apply(spec: str) -> None:
    """Apply the comma-separated patches named in ``spec`` ('' for none)."""
    for name in filter(None, spec.split(",")):
        if name not in PATCHES:
            raise SystemExit(f"unknown what-if {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
