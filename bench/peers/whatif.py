"""What-if patches for the benchmark's minimalt peers: measure a change proposed for the core or
the runtime before anyone makes it (``runtime_bench.py --what-if NAME,...``). Each patch
replaces one function of the installed ``minimalt`` at startup; none is applied unless asked,
and a patch that no longer fits the code it replaces fails loudly instead of measuring
something else.

* ``timer-floor``: ``EndpointDriver._arm_timer`` never arms a timer less than 1 ms ahead of a
  future deadline (uvloop rounds delays to whole milliseconds and runs a delay under 0.5 ms
  at once, so a near deadline is re-armed and fires again and again until it passes).
* ``hashlib-blake2b``: ``minimalt.proto.crypto.blake2b`` computed by ``hashlib.blake2b``
  (the same bytes) instead of pynacl's wrapper.
* ``gc-threshold``: ``gc.set_threshold(100_000, 50, 100)``, fewer generation-0 collections.
* ``count-timers``: changes nothing, counts the driver's timer callbacks and those that found
  no tunnel timer due (in ``COUNTERS``, reported by the server's ``stats``).
"""

from __future__ import annotations

import gc
import hashlib
import math
from collections.abc import Callable
from time import monotonic
from typing import Any


def _timer_floor() -> None:
    from minimalt.aio.driver import EndpointDriver

    original = EndpointDriver._arm_timer
    names = original.__code__.co_names
    if not {"get_timer", "_timer_at", "call_later", "_on_timer"} <= set(names):
        raise SystemExit("what-if timer-floor: EndpointDriver._arm_timer changed; update whatif.py")

    def _arm_timer(self: Any) -> None:
        deadline = self.endpoint.get_timer()
        if deadline is None or deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = deadline - monotonic()
        if delay > 0:
            delay = max(0.001, math.ceil(delay * 1000) / 1000)
        self._timer = self.loop.call_later(max(0.0, delay), self._on_timer)

    EndpointDriver._arm_timer = _arm_timer  # type: ignore[method-assign]


def _hashlib_blake2b() -> None:
    from minimalt.proto import crypto

    def blake2b(data: bytes, *, key: bytes = b"", person: bytes = b"", size: int = 32) -> bytes:
        return hashlib.blake2b(data, key=key, person=person, digest_size=size).digest()

    probe = (b"probe", b"k" * 32, b"minimalt-s2c", 32)
    if crypto.blake2b(probe[0], key=probe[1], person=probe[2], size=probe[3]) != blake2b(
        probe[0], key=probe[1], person=probe[2], size=probe[3]
    ):
        raise SystemExit("what-if hashlib-blake2b: outputs differ; update whatif.py")
    crypto.blake2b = blake2b  # module functions look the name up at call time


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
    "timer-floor": _timer_floor,
    "hashlib-blake2b": _hashlib_blake2b,
    "gc-threshold": _gc_threshold,
    "count-timers": _count_timers,
}


def apply(spec: str) -> None:
    """Apply the comma-separated patches named in ``spec`` ('' for none)."""
    for name in filter(None, spec.split(",")):
        if name not in PATCHES:
            raise SystemExit(f"unknown what-if {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
