"""RTT estimation and loss detection for a tunnel, after RFC 9002 (QUIC loss detection)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from .constants import DEFAULT_MAX_ACK_DELAY

if TYPE_CHECKING:
    from .congestion import CongestionController

__all__ = [
    "K_GRANULARITY",
    "K_INITIAL_RTT",
    "K_PACKET_THRESHOLD",
    "K_PERSISTENT_CONGESTION_THRESHOLD",
    "K_TIME_THRESHOLD",
    "LossRecovery",
    "RttEstimator",
    "SentPacket",
]

# RFC 9002 §6.1.1, §6.1.2, §6.2.2, §7.6.1 (names as in the RFC's appendix A.2).
K_PACKET_THRESHOLD = 3
K_TIME_THRESHOLD = 9 / 8
K_GRANULARITY = 0.001  # seconds
K_INITIAL_RTT = 0.1  # seconds; RFC 9002 says 333 ms, a tunnel to a known host can be bolder
K_PERSISTENT_CONGESTION_THRESHOLD = 3

# 2**pto_count is capped so a runaway PTO count cannot overflow a float (2**30 PTOs is decades).
_MAX_PTO_BACKOFF_EXPONENT = 30
_PROBES_PER_PTO = 2

_by_pn = attrgetter("pn")


@dataclass(slots=True)
class SentPacket:
    """What recovery remembers about one sent packet until it is acknowledged or lost."""

    pn: int  # contiguous per direction, strictly increasing
    time_sent: float  # seconds on the caller's monotonic clock
    size: int  # bytes on the wire
    ack_eliciting: bool
    in_flight: bool  # counts toward bytes_in_flight and congestion control
    frames: list  # opaque here: what the tunnel re-queues when the packet is lost
    # A PMTU probe: in flight, but its loss is no congestion signal (RFC 9000 §14.4). It is
    # sent as not ack-eliciting, so that it arms no PTO either: the tunnel times it out.
    probe: bool = False


class RttEstimator:
    """Round-trip time estimate of one path (RFC 9002 §5).

    Before the first sample ``smoothed_rtt`` is the initial RTT and ``rttvar`` half of it, as
    the RFC prescribes; ``has_sample`` says whether a real sample has arrived.
    """

    __slots__ = (
        "has_sample",
        "initial_rtt",
        "latest_rtt",
        "max_ack_delay",
        "min_rtt",
        "rttvar",
        "smoothed_rtt",
    )

    def __init__(
        self, initial_rtt: float = K_INITIAL_RTT, max_ack_delay: float = DEFAULT_MAX_ACK_DELAY
    ) -> None:
        self.initial_rtt = initial_rtt
        self.max_ack_delay = max_ack_delay
        self.reset()

    def reset(self) -> None:
        """Forget every sample (a new path)."""
        self.has_sample = False
        self.latest_rtt = 0.0
        self.min_rtt = 0.0
        self.smoothed_rtt = self.initial_rtt
        self.rttvar = self.initial_rtt / 2

    def update(self, latest_rtt: float, ack_delay: float) -> None:
        """Take one RTT sample; ``ack_delay`` is the peer's reported delay in seconds."""
        if latest_rtt < 0.0:
            latest_rtt = 0.0
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            # §5.2, §5.3: the first sample sets everything and ignores ack_delay.
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt / 2
            return
        if latest_rtt < self.min_rtt:
            self.min_rtt = latest_rtt
        # §5.3: the peer's delay is capped by its max_ack_delay and only subtracted when that
        # keeps the sample at or above min_rtt (a lying peer cannot push the RTT below it).
        if ack_delay > self.max_ack_delay:
            ack_delay = self.max_ack_delay
        adjusted = latest_rtt
        if ack_delay > 0.0 and latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.smoothed_rtt - adjusted)
        self.smoothed_rtt = 0.875 * self.smoothed_rtt + 0.125 * adjusted

    def pto_base(self) -> float:
        """``smoothed_rtt + max(4*rttvar, kGranularity)``; the caller adds max_ack_delay."""
        return self.smoothed_rtt + max(4 * self.rttvar, K_GRANULARITY)


class LossRecovery:
    """Sent-packet bookkeeping, loss detection and the loss/PTO timer of one tunnel.

    Packets are stored in an OrderedDict keyed by packet number; insertion order is
    packet-number order, which is also send-time order, so loss detection walks from the oldest
    packet and stops at the first one that is not lost. (A plain dict would do the same, but
    finding its first live entry after many deletions from the front costs a scan over the
    deleted slots until the next resize: quadratic while a large window drains.)

    Drivers: :meth:`on_packet_sent`, :meth:`on_ack_received`, :meth:`on_loss_detection_timeout`.
    Output: :meth:`get_loss_detection_timer` (an absolute deadline). No clock is read here.
    """

    __slots__ = (
        "_ack_eliciting_outstanding",
        "_first_rtt_sample_time",
        "_in_flight_count",
        "_largest_sent",
        "_loss_time",
        "_sent",
        "_time_of_last_ack_eliciting",
        "bytes_in_flight",
        "congestion",
        "largest_acked",
        "max_ack_delay",
        "probes_pending",
        "pto_count",
        "rtt",
    )

    def __init__(
        self,
        congestion: CongestionController,
        *,
        max_ack_delay: float = DEFAULT_MAX_ACK_DELAY,
        initial_rtt: float = K_INITIAL_RTT,
    ) -> None:
        self.congestion = congestion
        self.max_ack_delay = max_ack_delay
        self.rtt = RttEstimator(initial_rtt, max_ack_delay)
        self._sent: OrderedDict[int, SentPacket] = OrderedDict()
        self._largest_sent = -1
        self.largest_acked: int | None = None
        self._reset_flight()

    def _reset_flight(self) -> None:
        self.bytes_in_flight = 0
        self._in_flight_count = 0
        self._ack_eliciting_outstanding = 0
        self._time_of_last_ack_eliciting = 0.0
        self._loss_time: float | None = None
        self._first_rtt_sample_time: float | None = None
        self.pto_count = 0
        # Ack-eliciting packets the tunnel may still send past cwnd after a PTO fired.
        self.probes_pending = 0

    # --- inputs --------------------------------------------------------------------------------

    def on_packet_sent(self, packet: SentPacket) -> None:
        """Record a packet just sent. Packet numbers must be strictly increasing."""
        pn = packet.pn
        if pn <= self._largest_sent:
            raise ValueError(f"packet number {pn} not above {self._largest_sent}")
        self._largest_sent = pn
        self._sent[pn] = packet
        if packet.ack_eliciting:
            self._ack_eliciting_outstanding += 1
            self._time_of_last_ack_eliciting = packet.time_sent
            if self.probes_pending:
                self.probes_pending -= 1
        if packet.in_flight:
            self.bytes_in_flight += packet.size
            self._in_flight_count += 1
            self.congestion.on_packet_sent(packet, packet.time_sent)

    def on_ack_received(
        self, ranges: Sequence[tuple[int, int]], ack_delay: float, now: float
    ) -> tuple[list[SentPacket], list[SentPacket]]:
        """Process one ACK; returns ``(newly_acked, newly_lost)``, each in packet-number order.

        ``ranges`` are inclusive ``(first, last)`` packet numbers in any order. Numbers never
        sent, or already acknowledged or declared lost, are ignored. ``ack_delay`` is the
        peer's reported delay in seconds.
        """
        sent = self._sent
        if not sent:
            return [], []
        oldest = next(iter(sent))
        newest = self._largest_sent
        acked: list[SentPacket] = []
        append = acked.append
        frame_largest = -1
        acked_bytes = 0
        acked_in_flight = 0
        acked_eliciting = 0
        pop = sent.pop
        for first, last in ranges:
            if first > last:
                first, last = last, first
            if last > frame_largest:
                frame_largest = last
            lo = first if first > oldest else oldest
            hi = last if last < newest else newest
            if lo > hi:
                continue
            if hi - lo < len(sent):
                candidates: Iterable[int] = range(lo, hi + 1)
            else:
                # A range wider than the store (sparse store, huge range): walk the store.
                candidates = []
                for pn in sent:
                    if pn > hi:
                        break
                    if pn >= lo:
                        candidates.append(pn)
            for pn in candidates:
                packet = pop(pn, None)
                if packet is not None:
                    append(packet)
                    if packet.in_flight:
                        acked_bytes += packet.size
                        acked_in_flight += 1
                    if packet.ack_eliciting:
                        acked_eliciting += 1
        if not acked:
            return [], []
        if len(ranges) > 1:
            acked.sort(key=_by_pn)
        self.bytes_in_flight -= acked_bytes
        self._in_flight_count -= acked_in_flight
        self._ack_eliciting_outstanding -= acked_eliciting

        largest = acked[-1]
        if self.largest_acked is None or largest.pn > self.largest_acked:
            self.largest_acked = largest.pn
        # §5.1: sample only when the largest acknowledged is newly acknowledged and the ACK
        # covers something ack-eliciting (so ack_delay means what it says).
        if acked_eliciting and largest.pn == (frame_largest if frame_largest < newest else newest):
            self.rtt.update(now - largest.time_sent, ack_delay)
            if self._first_rtt_sample_time is None:
                self._first_rtt_sample_time = now

        # RFC 9002 appendix A.7 order: losses first (which may start a recovery period), then
        # acks, so acks of packets sent before the reduction do not grow the window again.
        lost = self._detect_lost(now)
        if lost:
            self._on_packets_lost(lost, now)
        self.congestion.on_packets_acked(acked, now, self.rtt)
        self.pto_count = 0
        self.probes_pending = 0
        return acked, lost

    def on_loss_detection_timeout(self, now: float) -> tuple[list[SentPacket], int]:
        """Handle the deadline from :meth:`get_loss_detection_timer`.

        Returns ``(newly_lost, probes)``. When the loss time fired: the lost packets and 0.
        When the PTO fired: no losses and 2; the tunnel then sends one or two ack-eliciting
        probes, which :meth:`can_send` lets past cwnd. Called before its deadline it does nothing.
        """
        loss_time = self._loss_time
        if loss_time is not None:
            if now < loss_time:
                return [], 0
            lost = self._detect_lost(now)
            if lost:
                self._on_packets_lost(lost, now)
            return lost, 0
        if self._ack_eliciting_outstanding == 0 or now < self._pto_deadline():
            return [], 0
        self.pto_count += 1
        self.probes_pending = _PROBES_PER_PTO
        return [], _PROBES_PER_PTO

    def on_path_change(self) -> list[SentPacket]:
        """Start over on a new path: fresh RTT and congestion state.

        Every in-flight packet is returned for retransmission; no congestion event is taken
        for them, since their fate says nothing about the new path.
        """
        in_flight = self.drop_all()
        self.rtt.reset()
        self.congestion.reset()
        return in_flight

    def discard(self, pn: int) -> SentPacket | None:
        """Forget packet ``pn`` if it is still outstanding (the tunnel gave it up: a PMTU probe
        past its deadline), with no congestion signal. Returns it, or None."""
        packet = self._sent.pop(pn, None)
        if packet is not None:
            self._forget([packet])
        return packet

    def discard_larger_than(self, size: int) -> list[SentPacket]:
        """Forget every outstanding packet bigger than ``size`` bytes, with no congestion
        signal: a black hole swallows them, whatever the load. Returns them."""
        sent = self._sent
        dropped = [packet for packet in sent.values() if packet.size > size]
        for packet in dropped:
            del sent[packet.pn]
        self._forget(dropped)
        return dropped

    def _forget(self, packets: list[SentPacket]) -> None:
        for packet in packets:
            if packet.in_flight:
                self.bytes_in_flight -= packet.size
                self._in_flight_count -= 1
            if packet.ack_eliciting:
                self._ack_eliciting_outstanding -= 1

    def drop_all(self) -> list[SentPacket]:
        """Forget every sent packet (tunnel closing); returns those that were in flight."""
        in_flight = [packet for packet in self._sent.values() if packet.in_flight]
        self._sent.clear()
        self._reset_flight()
        return in_flight

    # --- outputs -------------------------------------------------------------------------------

    def get_loss_detection_timer(self) -> float | None:
        """Absolute deadline: the loss time if set, else the PTO if ack-eliciting packets are
        outstanding, else None."""
        if self._loss_time is not None:
            return self._loss_time
        if self._ack_eliciting_outstanding == 0:
            return None
        return self._pto_deadline()

    def can_send(self, size: int, probe: bool = False) -> bool:
        """Whether congestion control admits a packet of ``size`` bytes now.

        ``probe=True`` asks for a PTO probe: admitted past cwnd while probes are pending
        (each ack-eliciting packet sent uses one up).
        """
        if probe and self.probes_pending > 0:
            return True
        return self.bytes_in_flight + size <= self.congestion.cwnd

    def persistent_congestion_period(self) -> float:
        """RFC 9002 §7.6.1: losses spanning this long, with no ack between, are persistent
        congestion (and, of big packets only, a path MTU black hole)."""
        return self.pto_period() * K_PERSISTENT_CONGESTION_THRESHOLD

    def pto_period(self) -> float:
        """One probe timeout without backoff (RFC 9002 §6.2.1): what closing lingers, path
        checks and path MTU probes are timed in."""
        return self.rtt.pto_base() + self.max_ack_delay

    def in_flight_packets(self) -> int:
        """Number of packets counted in ``bytes_in_flight``."""
        return self._in_flight_count

    # --- internals -----------------------------------------------------------------------------

    def _pto_deadline(self) -> float:
        backoff = 1 << min(self.pto_count, _MAX_PTO_BACKOFF_EXPONENT)
        return self._time_of_last_ack_eliciting + self.pto_period() * backoff

    def _detect_lost(self, now: float) -> list[SentPacket]:
        """RFC 9002 §6.1 / A.10: remove and return the packets now deemed lost, set loss time.

        The lost packets are always a prefix of the store: an older packet has both a lower
        number and an earlier send time, so once one packet survives both thresholds every
        later one does too. The scan therefore stops at the first survivor.
        """
        self._loss_time = None
        largest_acked = self.largest_acked
        sent = self._sent
        if largest_acked is None or not sent or next(iter(sent)) > largest_acked:
            # The common case with in-order acks: nothing older than the largest ack is left.
            return []
        rtt = self.rtt
        latest_rtt = rtt.latest_rtt
        smoothed_rtt = rtt.smoothed_rtt
        loss_delay = K_TIME_THRESHOLD * (latest_rtt if latest_rtt > smoothed_rtt else smoothed_rtt)
        if loss_delay < K_GRANULARITY:
            loss_delay = K_GRANULARITY
        pn_threshold = largest_acked - K_PACKET_THRESHOLD
        lost: list[SentPacket] = []
        for pn, packet in sent.items():
            if pn > largest_acked:
                break
            # Compare ``time_sent + loss_delay`` with now, the very expression stored as the
            # loss time: ``time_sent <= now - loss_delay`` can round the other way and leave a
            # timer that fires at its deadline yet never finds the packet lost.
            loss_time = packet.time_sent + loss_delay
            if pn <= pn_threshold or loss_time <= now:
                lost.append(packet)
            else:
                self._loss_time = loss_time
                break
        if lost:
            lost_bytes = 0
            lost_in_flight = 0
            lost_eliciting = 0
            for packet in lost:
                del sent[packet.pn]
                if packet.in_flight:
                    lost_bytes += packet.size
                    lost_in_flight += 1
                if packet.ack_eliciting:
                    lost_eliciting += 1
            self.bytes_in_flight -= lost_bytes
            self._in_flight_count -= lost_in_flight
            self._ack_eliciting_outstanding -= lost_eliciting
        return lost

    def _on_packets_lost(self, lost: list[SentPacket], now: float) -> None:
        """RFC 9002 A.11 / B.8: one congestion event, then the persistent-congestion check.
        PMTU probes count for neither; a lost probe does not end a run of lost packets (it is
        not acknowledged either)."""
        newest_lost_time: float | None = None
        for packet in reversed(lost):
            if packet.in_flight and not packet.probe:  # a lost PMTU probe is no congestion
                newest_lost_time = packet.time_sent
                break
        if newest_lost_time is None:
            return
        congestion = self.congestion
        congestion.on_congestion_event(newest_lost_time, now)
        if self._in_persistent_congestion(lost):
            congestion.on_persistent_congestion(now)

    def _in_persistent_congestion(self, lost: list[SentPacket]) -> bool:
        """RFC 9002 §7.6.2: two ack-eliciting packets, both sent after the first RTT sample,
        lost with nothing between them acknowledged, sent further apart than the persistent
        congestion duration.

        Only this batch of losses is examined; a gap in packet numbers (an acknowledged packet,
        or one declared lost earlier) ends a run, which errs towards not collapsing the window.
        """
        first_sample = self._first_rtt_sample_time
        if first_sample is None or len(lost) < 2:
            return False
        duration = self.persistent_congestion_period()
        start: float | None = None
        previous_pn = -2
        for packet in lost:
            if packet.pn != previous_pn + 1:
                start = None
            previous_pn = packet.pn
            if not packet.ack_eliciting or packet.time_sent <= first_sample:
                continue
            if start is None:
                start = packet.time_sent
            elif packet.time_sent - start > duration:
                return True
        return False
