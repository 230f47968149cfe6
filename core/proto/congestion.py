"""Congestion controllers (NewReno per RFC 9002, CUBIC per RFC 9438), their registry, a pacer."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ._mypyc import mypyc_attr
from .constants import MAX_DATAGRAM_SIZE
from .recovery import K_INITIAL_RTT

if TYPE_CHECKING:
    from .recovery import RttEstimator, SentPacket

__all__ = [
    "CongestionController",
    "Cubic",
    "NewReno",
    "Pacer",
    "available_congestion_controls",
    "create_congestion_control",
    "register_congestion_control",
]

# RFC 9002 §7.2, §7.3.2
K_LOSS_REDUCTION_FACTOR = 0.5
K_INITIAL_WINDOW_PACKETS = 10
K_MINIMUM_WINDOW_PACKETS = 2

# RFC 9438 §4.2, §4.3, §4.6
CUBIC_C = 0.4  # segments / s**3
CUBIC_BETA = 0.7
CUBIC_ALPHA = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)

# Pacing: send at 1.25x cwnd per RTT so pacing itself does not cap throughput (RFC 9002 §7.7).
PACING_GAIN = 1.25
PACING_BURST_PACKETS = 10
# Slack when comparing tokens with a datagram's size: without it float rounding can leave a
# wake-up at the computed send time a hair short, and the caller would spin.
_TOKEN_EPSILON = 1e-3  # bytes
_INF = float("inf")


@mypyc_attr(allow_interpreted_subclasses=True)  # an extension point
class CongestionController(abc.ABC):
    """A congestion window fed by :class:`~minimalt.proto.recovery.LossRecovery`.

    Windows are in bytes. ``ssthresh`` None means infinity (slow start until the first loss).
    A recovery period starts at a congestion event; losses and acks of packets sent at or
    before its start (``in_recovery``) neither reduce nor grow the window again.
    """

    name: ClassVar[str]

    __slots__ = (
        "app_limited",
        "cwnd",
        "initial_window",
        "max_datagram_size",
        "minimum_window",
        "recovery_start_time",
        "ssthresh",
    )

    def __init__(self, max_datagram_size: int = MAX_DATAGRAM_SIZE) -> None:
        self._set_sizes(max_datagram_size)
        self.reset()

    def _set_sizes(self, max_datagram_size: int) -> None:
        if max_datagram_size <= 0:
            raise ValueError(f"max_datagram_size must be positive, not {max_datagram_size}")
        self.max_datagram_size = max_datagram_size
        self.initial_window = min(
            K_INITIAL_WINDOW_PACKETS * max_datagram_size, max(14720, 2 * max_datagram_size)
        )
        self.minimum_window = K_MINIMUM_WINDOW_PACKETS * max_datagram_size

    def reset(self) -> None:
        """Back to the initial window (a new path)."""
        self.cwnd: int = self.initial_window
        self.ssthresh: int | None = None
        self.recovery_start_time: float | None = None
        self.app_limited = False

    def set_max_datagram_size(self, max_datagram_size: int) -> None:
        """The path's datagram size changed (PMTU discovery): the window stays in bytes, the
        initial and minimum windows follow the new size (RFC 9002 §7.2), and the window is
        raised to the new minimum if below it, so that a full-size packet can always go."""
        self._set_sizes(max_datagram_size)
        if self.cwnd < self.minimum_window:
            self.cwnd = self.minimum_window

    def in_recovery(self, sent_time: float) -> bool:
        """Whether a packet sent at ``sent_time`` belongs to the current recovery period."""
        start = self.recovery_start_time
        return start is not None and sent_time <= start

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:  # noqa: B027
        """An in-flight packet left (hook; the built-in controllers need nothing here)."""

    @abc.abstractmethod
    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """Newly acknowledged packets (some may not be in flight: skip those)."""

    @abc.abstractmethod
    def on_congestion_event(self, sent_time_of_newest_lost: float, now: float) -> None:
        """Packets were lost; reduce once per recovery period (ignore if ``in_recovery``)."""

    def on_persistent_congestion(self, now: float) -> None:
        """RFC 9002 §7.6.2: collapse to the minimum window and leave recovery."""
        self.cwnd = self.minimum_window
        self.recovery_start_time = None

    def on_app_limited(self, app_limited: bool = True) -> None:
        """The sender is not using its window; it must not grow meanwhile (RFC 9002 §7.8)."""
        self.app_limited = app_limited


@mypyc_attr(allow_interpreted_subclasses=True)  # an extension point
class NewReno(CongestionController):
    """RFC 9002 §7 and appendix B: slow start, additive increase, halve once per recovery."""

    name = "newreno"

    __slots__ = ("_bytes_acked",)

    def reset(self) -> None:
        super().reset()
        self._bytes_acked = 0  # congestion avoidance: bytes acked since the last 1-mds increase

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        if self.app_limited:
            return
        start = self.recovery_start_time
        mds = self.max_datagram_size
        cwnd = self.cwnd
        ssthresh = self.ssthresh
        for packet in packets:
            if not packet.in_flight or (start is not None and packet.time_sent <= start):
                continue
            if ssthresh is None or cwnd < ssthresh:
                cwnd += packet.size
            else:
                # cwnd += mds * size / cwnd, kept exact: one mds per cwnd of bytes acked.
                acked = self._bytes_acked + packet.size
                if acked >= cwnd:
                    acked -= cwnd
                    cwnd += mds
                self._bytes_acked = acked
        self.cwnd = cwnd

    def on_congestion_event(self, sent_time_of_newest_lost: float, now: float) -> None:
        if self.in_recovery(sent_time_of_newest_lost):
            return
        self.recovery_start_time = now
        ssthresh = int(self.cwnd * K_LOSS_REDUCTION_FACTOR)
        self.ssthresh = ssthresh
        self.cwnd = max(ssthresh, self.minimum_window)
        self._bytes_acked = 0

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self._bytes_acked = 0


@mypyc_attr(allow_interpreted_subclasses=True)  # an extension point
class Cubic(CongestionController):
    """CUBIC (RFC 9438) without HyStart: Reno slow start, then the cubic window function
    ``W_cubic(t) = C*(t - K)**3 + W_max`` with a Reno-friendly floor.

    The window is kept as a float (``_cwnd``) so that per-ack fractions add up; ``cwnd`` is its
    integer part. ``w_max`` and ``k`` are public for inspection (bytes and seconds).
    """

    name = "cubic"
    fast_convergence: ClassVar[bool] = True

    __slots__ = (
        "_cwnd",
        "_cwnd_prior",
        "_epoch_start",
        "_reset_w_max",
        "_w_est",
        "k",
        "w_max",
    )

    def reset(self) -> None:
        super().reset()
        self._cwnd = float(self.cwnd)
        self.w_max = 0.0  # window before the last reduction, bytes
        self.k = 0.0  # seconds from the epoch start until W_cubic is back at w_max
        self._epoch_start: float | None = None  # start of the current congestion avoidance stage
        self._w_est = 0.0  # Reno-friendly estimate, bytes
        self._cwnd_prior = 0.0  # cwnd just before the last reduction, bytes
        self._reset_w_max = False  # after a timeout: next epoch has K = 0, W_max = cwnd

    def w_cubic(self, t: float) -> float:
        """RFC 9438 eq. 1 in bytes: the target window ``t`` seconds into the current epoch."""
        d = t - self.k
        return CUBIC_C * self.max_datagram_size * d * d * d + self.w_max

    def _set_cwnd(self, cwnd: float) -> None:
        self._cwnd = cwnd
        self.cwnd = int(cwnd)

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        if self.app_limited:
            # §5.8: no growth while the window is not used; the idle time must not count
            # towards t either, so the next epoch starts afresh from the current window.
            self._epoch_start = None
            return
        start = self.recovery_start_time
        cwnd = self._cwnd
        ssthresh = self.ssthresh
        ca_bytes = 0
        for packet in packets:
            if not packet.in_flight or (start is not None and packet.time_sent <= start):
                continue
            if ssthresh is None or cwnd < ssthresh:
                cwnd += packet.size
            else:
                ca_bytes += packet.size
        if ca_bytes:
            cwnd = self._avoid_congestion(cwnd, ca_bytes, now, rtt.smoothed_rtt)
        self._set_cwnd(cwnd)

    def _avoid_congestion(self, cwnd: float, acked: int, now: float, srtt: float) -> float:
        mds = self.max_datagram_size
        if self._epoch_start is None:
            self._epoch_start = now
            if self._reset_w_max or cwnd >= self.w_max:
                # §4.8 after a timeout, or no earlier reduction to climb back to.
                self.w_max = cwnd
                self.k = 0.0
                self._reset_w_max = False
            else:
                self.k = ((self.w_max - cwnd) / (CUBIC_C * mds)) ** (1 / 3)  # §4.2 eq. 2
            self._w_est = cwnd
        t = now - self._epoch_start

        # §4.3: Reno-friendly estimate, alpha = 1 once it is back at the pre-reduction window.
        alpha = 1.0 if self._w_est >= self._cwnd_prior else CUBIC_ALPHA
        self._w_est += alpha * acked * mds / cwnd
        if self.w_cubic(t) < self._w_est:
            return max(cwnd, self._w_est)

        # §4.4, §4.5: concave / convex region; approach W_cubic one RTT ahead, per acked segment.
        target = self.w_cubic(t + srtt)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        return cwnd + (target - cwnd) / cwnd * acked

    def on_congestion_event(self, sent_time_of_newest_lost: float, now: float) -> None:
        if self.in_recovery(sent_time_of_newest_lost):
            return
        self.recovery_start_time = now
        cwnd = self._cwnd
        # §4.7 fast convergence: a flow whose window peaks lower than last time lets go of
        # bandwidth for newcomers by aiming lower.
        if self.fast_convergence and cwnd < self.w_max:
            self.w_max = cwnd * (1 + CUBIC_BETA) / 2
        else:
            self.w_max = cwnd
        self._cwnd_prior = cwnd
        # §4.6 (with cwnd in place of flight size, as most implementations do).
        reduced = max(cwnd * CUBIC_BETA, float(self.minimum_window))
        self.ssthresh = int(reduced)
        self._set_cwnd(reduced)
        self._epoch_start = None

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self._set_cwnd(float(self.minimum_window))
        self._epoch_start = None
        self._reset_w_max = True

    def set_max_datagram_size(self, max_datagram_size: int) -> None:
        super().set_max_datagram_size(max_datagram_size)
        if self._cwnd < self.cwnd:
            self._cwnd = float(self.cwnd)
        # W_cubic counts segments of max_datagram_size: K must be recomputed for the new size,
        # so the current epoch ends here (the next ack starts one from the current window).
        self._epoch_start = None


CongestionFactory = Callable[[int], CongestionController]

_REGISTRY: dict[str, CongestionFactory] = {}


def register_congestion_control(name: str, factory: CongestionFactory) -> None:
    """Make ``factory(max_datagram_size)`` available as ``name`` (replacing any earlier one)."""
    if not name:
        raise ValueError("congestion control name must not be empty")
    _REGISTRY[name] = factory


def create_congestion_control(
    name: str = NewReno.name, max_datagram_size: int = MAX_DATAGRAM_SIZE
) -> CongestionController:
    """A new controller registered as ``name``; ValueError naming the known ones otherwise."""
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(available_congestion_controls())
        raise ValueError(f"unknown congestion control {name!r}; known: {known}")
    return factory(max_datagram_size)


def available_congestion_controls() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)


register_congestion_control(NewReno.name, NewReno)
register_congestion_control(Cubic.name, Cubic)


class Pacer:
    """Token bucket spreading a window's worth of packets over a round trip.

    Rate ``1.25 * cwnd / smoothed_rtt`` bytes per second (``cwnd / rtt`` before the first RTT
    sample); the bucket holds at most ``10 * max_datagram_size`` bytes of burst. A packet may
    go when a full datagram's worth of tokens is available.
    """

    __slots__ = ("_last", "_tokens", "burst", "max_datagram_size", "rate")

    def __init__(self, max_datagram_size: int = MAX_DATAGRAM_SIZE) -> None:
        self.max_datagram_size = max_datagram_size
        self.burst = PACING_BURST_PACKETS * max_datagram_size
        self.rate = 0.0  # bytes per second; set by update_rate before pacing applies
        self._tokens = float(self.burst)
        self._last: float | None = None
        self.update_rate(
            min(K_INITIAL_WINDOW_PACKETS * max_datagram_size, max(14720, 2 * max_datagram_size)),
            K_INITIAL_RTT,
            rtt_sampled=False,
        )

    def set_max_datagram_size(self, max_datagram_size: int) -> None:
        """The path's datagram size changed (PMTU discovery): bursts are counted in it."""
        self.max_datagram_size = max_datagram_size
        self.burst = PACING_BURST_PACKETS * max_datagram_size

    def update_rate(self, cwnd: int, smoothed_rtt: float, *, rtt_sampled: bool = True) -> None:
        """Follow the congestion window; pass ``rtt_sampled=False`` while ``smoothed_rtt`` is
        still the initial guess (no pacing gain then)."""
        if smoothed_rtt <= 0.0:
            self.rate = _INF
            return
        gain = PACING_GAIN if rtt_sampled else 1.0
        self.rate = gain * cwnd / smoothed_rtt

    def _refill(self, now: float) -> float:
        last = self._last
        tokens = self._tokens
        if last is not None and now > last:
            tokens += (now - last) * self.rate
            if tokens > self.burst:
                tokens = float(self.burst)
        return tokens

    def next_send_time(self, now: float) -> float | None:
        """When the next full-size datagram may go; None means now."""
        tokens = self._refill(now)
        mds = self.max_datagram_size
        if tokens >= mds - _TOKEN_EPSILON or self.rate == _INF:
            return None
        return now + (mds - tokens) / self.rate

    def on_packet_sent(self, size: int, now: float) -> None:
        """Spend tokens for a packet sent at ``now``."""
        if self.rate == _INF:
            self._tokens = float(self.burst)
        else:
            self._tokens = self._refill(now) - size
        if self._last is None or now > self._last:
            self._last = now
