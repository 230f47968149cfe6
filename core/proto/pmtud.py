"""Path MTU discovery for one tunnel: RFC 8899 DPLPMTUD, as QUIC does it (RFC 9000 §14.3).

No I/O and no clock: the tunnel asks what to probe, sends the probes (ack-eliciting packets of
exactly the probe size: PING and PADDING), and reports what became of them.
"""

from __future__ import annotations

from functools import lru_cache

from . import constants as C

__all__ = ["BASE", "DISABLED", "SEARCHING", "SEARCH_COMPLETE", "PathMtu"]

# States (RFC 8899 §5.2). ERROR has no state of its own: a black hole goes back to SEARCHING
# from the base size, which every path carries.
DISABLED = "disabled"  # probing off, or nothing above the base to try
BASE = "base"  # not started: the tunnel is not confirmed, or has had no bulk data yet
SEARCHING = "searching"
SEARCH_COMPLETE = "search_complete"  # until the raise timer


class PathMtu:
    """The largest datagram one path carries, found by probing.

    ``size`` is the PLPMTU: the largest datagram the tunnel may send now, ``base`` until a
    probe of a bigger size is acknowledged. The search tries the sizes of
    ``PMTU_SEARCH_LADDER`` above the base up to ``maximum`` (and ``maximum`` itself), smallest
    first. A size is abandoned after ``PMTU_MAX_PROBES`` lost probes, or at once when the
    local interface refuses it (:meth:`on_too_big`); if the gap between the largest
    acknowledged size and the abandoned one is at most ``PMTU_REFINE_SPAN``, it is halved
    until it is ``PMTU_SEARCH_GRANULARITY`` wide. One probe is outstanding at a time, and tries
    of one size are a PTO apart. ``PMTU_RAISE_TIMER`` after a search that ended below
    ``maximum``, it searches upward again.

    While ``probe_due`` the tunnel sends a probe of :meth:`probe_size` bytes when congestion
    control and pacing let it, and reports it with :meth:`on_probe_sent`; later comes
    :meth:`on_probe_acked` or :meth:`on_probe_lost` (also when ``probe_deadline`` passes: a
    probe arms no PTO, the tunnel times it out itself). ``next_probe_at`` is a timer (the next
    try of a size, the raise timer) for :meth:`on_timer`.

    Black holes (RFC 8899 §4.3): :meth:`on_large_acked` and :meth:`on_large_lost` watch the
    packets bigger than the base; when such packets keep being lost over a persistent-
    congestion period with none acknowledged, or when the tunnel sees its PTO fire twice in a
    row (:meth:`on_black_hole` directly), the size falls back to the base and the search
    starts over.
    """

    __slots__ = (
        "_candidate",
        "_ladder",
        "_large_acked_at",
        "_last_probe_at",
        "_probe_interval",
        "_refining",
        "_suspect_since",
        "_too_big",
        "_tries",
        "base",
        "black_holes",
        "maximum",
        "next_probe_at",
        "probe_deadline",
        "probe_due",
        "probe_pn",
        "probes_lost",
        "probes_sent",
        "size",
        "state",
    )

    def __init__(self, base: int, maximum: int, *, enabled: bool = True) -> None:
        if base < C.MAX_DATAGRAM_SIZE:
            raise ValueError(f"base size must be at least {C.MAX_DATAGRAM_SIZE}, not {base}")
        self.base = base
        self.maximum = max(base, min(maximum, C.MAX_UDP_PAYLOAD))
        self._ladder = _ladder(base, self.maximum)
        self.size = base
        self.state = BASE if enabled and self._ladder else DISABLED
        self.probes_sent = 0
        self.probes_lost = 0
        self.black_holes = 0
        self._restart()

    def _restart(self) -> None:
        """Forget the search (not the counters): the next one starts from ``size``."""
        self._candidate = 0  # size being probed (0: none)
        self._tries = 0  # probes of the candidate lost so far
        self._too_big = self.maximum + 1  # smallest size known not to fit
        self._refining = False
        self._last_probe_at = 0.0
        self._probe_interval = 0.0
        #: The outstanding probe's packet number (None: no probe outstanding).
        self.probe_pn: int | None = None
        #: When the outstanding probe counts as lost if not acknowledged.
        self.probe_deadline: float | None = None
        #: A probe should go as soon as congestion control and pacing allow.
        self.probe_due = False
        #: When :meth:`on_timer` has something to do (None: nothing scheduled).
        self.next_probe_at: float | None = None
        self._large_acked_at = float("-inf")  # send time of the newest acked packet > base
        self._suspect_since: float | None = None  # send time of the oldest lost one after it

    # --- driving the search ------------------------------------------------------------------

    def start(self, now: float) -> None:
        """The tunnel is confirmed and has bulk data to send: begin searching (once)."""
        if self.state == BASE:
            self.state = SEARCHING
            self._choose(now)

    def on_timer(self, now: float) -> None:
        """``next_probe_at`` has come: the next try of a size, or the raise timer."""
        at = self.next_probe_at
        if at is None or now < at:
            return
        self.next_probe_at = None
        if self.state == SEARCH_COMPLETE:  # PMTU_RAISE_TIMER: look above the current size
            self.state = SEARCHING
            self._too_big = self.maximum + 1
            self._refining = False
            self._choose(now)
        elif self.state == SEARCHING and self._candidate and self.probe_pn is None:
            self.probe_due = True

    def probe_size(self) -> int | None:
        """The size of the probe to send, while ``probe_due``; else None."""
        return self._candidate if self.probe_due and self._candidate else None

    def on_probe_sent(self, pn: int, size: int, now: float, pto: float) -> None:
        """A probe of ``size`` bytes went out as packet ``pn``; ``pto`` is the current PTO."""
        self.probe_pn = pn
        self.probe_deadline = now + pto
        self.probe_due = False
        self.probes_sent += 1
        self._last_probe_at = now
        self._probe_interval = pto

    def on_probe_acked(self, pn: int, size: int, time_sent: float, now: float) -> bool:
        """Probe ``pn`` of ``size`` bytes was acknowledged; True if that raised ``size``."""
        if pn != self.probe_pn or size != self._candidate:
            return False  # an earlier search's probe
        self.probe_pn = None
        self.probe_deadline = None
        self._tries = 0
        self.on_large_acked(time_sent)
        raised = size > self.size
        if raised:
            self.size = size
        self._choose(now)
        return raised

    def on_probe_lost(self, pn: int, now: float) -> None:
        """Probe ``pn`` was declared lost, or its deadline passed."""
        if pn != self.probe_pn:
            return  # an earlier search's probe
        self.probe_pn = None
        self.probe_deadline = None
        self.probes_lost += 1
        self._tries += 1
        if self._tries >= C.PMTU_MAX_PROBES:
            self._abandon(self._candidate, now)
            return
        at = self._last_probe_at + self._probe_interval  # tries of one size are a PTO apart
        if at <= now:
            self.probe_due = True
        else:
            self.next_probe_at = at

    def on_too_big(self, size: int, now: float) -> bool:
        """The local interface refused a datagram of ``size`` bytes (EMSGSIZE). Returns True if
        it was the outstanding probe (abandoned at once: retrying cannot help); a refused
        datagram no bigger than ``size`` calls for :meth:`on_black_hole` instead."""
        if self.probe_pn is None or size != self._candidate:
            return False
        self.probe_pn = None
        self.probe_deadline = None
        self.probes_lost += 1
        self._abandon(size, now)
        return True

    def _abandon(self, size: int, now: float) -> None:
        if size < self._too_big:
            self._too_big = size
        self._tries = 0
        if not self._refining and size - self.size <= C.PMTU_REFINE_SPAN:
            self._refining = True
        self._choose(now)

    def _choose(self, now: float) -> None:
        """The next candidate above ``size``, or the end of the search."""
        lo, hi = self.size, self._too_big
        candidate = 0
        if self._refining:
            if hi - lo > C.PMTU_SEARCH_GRANULARITY:
                candidate = (lo + hi) // 2
        else:
            for size in self._ladder:
                if lo < size < hi:
                    candidate = size
                    break
        self._candidate = candidate
        if candidate:
            self.probe_due = True
            return
        self.probe_due = False
        self.state = SEARCH_COMPLETE
        if self.size < self.maximum:
            self.next_probe_at = now + C.PMTU_RAISE_TIMER
        else:
            self.next_probe_at = None

    # --- path changes and black holes --------------------------------------------------------

    def reset(self, now: float) -> None:
        """A new path: back to the base size; search again if the search had started."""
        self.size = self.base
        self._restart()
        if self.state in (SEARCHING, SEARCH_COMPLETE):
            self.state = SEARCHING
            self._choose(now)

    def on_black_hole(self, now: float, delay: float) -> None:
        """Packets above the base stopped getting through: fall back to the base size and
        search again ``delay`` seconds from now (a PTO: once the base has been confirmed)."""
        self.black_holes += 1
        self.reset(now)
        if self.probe_due:
            self.probe_due = False
            self.next_probe_at = now + delay

    def on_large_acked(self, time_sent: float) -> None:
        """A packet bigger than the base, sent at ``time_sent``, was acknowledged."""
        if time_sent > self._large_acked_at:
            self._large_acked_at = time_sent
            since = self._suspect_since
            if since is not None and time_sent >= since:
                self._suspect_since = None

    def on_large_lost(self, time_sent: float, duration: float) -> bool:
        """A packet bigger than the base, sent at ``time_sent``, was declared lost. True when
        such losses, with no bigger-than-base packet acknowledged since, span ``duration`` (the
        persistent congestion period): a black hole, for the caller to act on."""
        if time_sent <= self._large_acked_at:
            return False  # a later big packet got through: ordinary loss
        since = self._suspect_since
        if since is None or time_sent < since:
            self._suspect_since = time_sent
            return False
        return time_sent - since > duration


@lru_cache(maxsize=64)
def _ladder(base: int, maximum: int) -> tuple[int, ...]:
    """The sizes a search tries, smallest first (one tuple per configuration, not per tunnel)."""
    sizes = {size for size in C.PMTU_SEARCH_LADDER if base < size <= maximum}
    if maximum > base:
        sizes.add(maximum)
    return tuple(sorted(sizes))
