"""Tests for minimalt.proto.recovery: RTT estimation, loss detection, PTO (RFC 9002)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from minimalt.proto.congestion import NewReno
from minimalt.proto.recovery import (
    K_GRANULARITY,
    K_INITIAL_RTT,
    K_TIME_THRESHOLD,
    LossRecovery,
    RttEstimator,
    SentPacket,
)

MDS = 1200


def pkt(pn: int, t: float, size: int = MDS, *, eliciting: bool = True, in_flight: bool = True):
    return SentPacket(pn, t, size, eliciting, in_flight, [("frame", pn)])


def send(lr: LossRecovery, pns, t: float, **kw) -> list[SentPacket]:
    packets = [pkt(pn, t, **kw) for pn in pns]
    for p in packets:
        lr.on_packet_sent(p)
    return packets


def pns(packets: list[SentPacket]) -> list[int]:
    return [p.pn for p in packets]


class RecordingController(NewReno):
    """NewReno that records the calls LossRecovery makes."""

    name = "recording"
    __slots__ = ("events",)

    def reset(self) -> None:
        super().reset()
        self.events: list[tuple] = []

    def on_packets_acked(self, packets, now, rtt) -> None:
        self.events.append(("acked", [p.pn for p in packets]))
        super().on_packets_acked(packets, now, rtt)

    def on_congestion_event(self, sent_time_of_newest_lost, now) -> None:
        self.events.append(("congestion", sent_time_of_newest_lost))
        super().on_congestion_event(sent_time_of_newest_lost, now)

    def on_persistent_congestion(self, now) -> None:
        self.events.append(("persistent",))
        super().on_persistent_congestion(now)


def recovery(**kw) -> LossRecovery:
    return LossRecovery(NewReno(MDS), **kw)


# --- RttEstimator --------------------------------------------------------------------------------


def test_estimator_before_any_sample_uses_initial_rtt():
    rtt = RttEstimator(initial_rtt=0.2)
    assert not rtt.has_sample
    assert rtt.smoothed_rtt == 0.2
    assert rtt.rttvar == 0.1
    assert rtt.pto_base() == pytest.approx(0.2 + 4 * 0.1)


def test_first_sample_sets_smoothed_min_and_half_variance_ignoring_ack_delay():
    rtt = RttEstimator()
    rtt.update(0.05, ack_delay=0.02)
    assert rtt.has_sample
    assert rtt.latest_rtt == 0.05
    assert rtt.min_rtt == 0.05
    assert rtt.smoothed_rtt == 0.05
    assert rtt.rttvar == 0.025


def test_subsequent_samples_are_exponentially_weighted():
    rtt = RttEstimator()
    rtt.update(0.1, 0.0)
    rtt.update(0.2, 0.0)
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    rtt.update(0.2, 0.0)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1125 + 0.125 * 0.2)


def test_ack_delay_is_subtracted_when_the_sample_stays_above_min_rtt():
    rtt = RttEstimator(max_ack_delay=0.025)
    rtt.update(0.1, 0.0)
    rtt.update(0.15, 0.02)
    assert rtt.latest_rtt == 0.15
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.13)


def test_ack_delay_is_not_subtracted_when_it_would_go_below_min_rtt():
    rtt = RttEstimator(max_ack_delay=0.025)
    rtt.update(0.1, 0.0)
    rtt.update(0.11, 0.02)  # 0.11 - 0.02 < min_rtt 0.1
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.11)


def test_ack_delay_is_capped_by_max_ack_delay():
    rtt = RttEstimator(max_ack_delay=0.025)
    rtt.update(0.1, 0.0)
    rtt.update(0.3, 0.2)  # the peer claims 200 ms; only 25 ms count
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.275)


def test_min_rtt_is_the_smallest_raw_sample():
    rtt = RttEstimator()
    rtt.update(0.1, 0.0)
    rtt.update(0.08, 0.01)  # ack_delay does not lower min_rtt
    rtt.update(0.3, 0.0)
    assert rtt.min_rtt == 0.08


# --- RTT samples through acks --------------------------------------------------------------------


def test_ack_takes_rtt_sample_from_largest_newly_acked():
    lr = recovery()
    send(lr, [0, 1], 1.0)
    acked, lost = lr.on_ack_received([(0, 1)], 0.0, 1.04)
    assert pns(acked) == [0, 1] and lost == []
    assert lr.rtt.latest_rtt == pytest.approx(0.04)
    assert lr.rtt.smoothed_rtt == pytest.approx(0.04)
    assert lr.largest_acked == 1


def test_no_rtt_sample_when_largest_acknowledged_is_not_newly_acked():
    lr = recovery()
    send(lr, [0, 1, 2], 1.0)
    lr.on_ack_received([(2, 2)], 0.0, 1.05)
    assert lr.rtt.latest_rtt == pytest.approx(0.05)
    acked, _ = lr.on_ack_received([(0, 0), (2, 2)], 0.0, 1.5)
    assert pns(acked) == [0]
    assert lr.rtt.latest_rtt == pytest.approx(0.05)


def test_no_rtt_sample_when_only_non_ack_eliciting_packets_are_acked():
    lr = recovery()
    send(lr, [0], 1.0, eliciting=False)
    acked, _ = lr.on_ack_received([(0, 0)], 0.0, 1.07)
    assert pns(acked) == [0]
    assert not lr.rtt.has_sample


# --- Loss detection ------------------------------------------------------------------------------


def test_packet_threshold_declares_packets_three_below_largest_acked_lost():
    lr = recovery()
    send(lr, range(5), 1.0)
    acked, lost = lr.on_ack_received([(4, 4)], 0.0, 1.01)
    assert pns(acked) == [4]
    assert pns(lost) == [0, 1]
    assert lost[0].frames == [("frame", 0)]
    # 2 and 3 are within the threshold: the loss timer covers them instead.
    assert lr.get_loss_detection_timer() == pytest.approx(1.0 + K_TIME_THRESHOLD * 0.01)


def test_time_threshold_sets_loss_timer_which_then_declares_the_loss():
    lr = recovery()
    send(lr, [0], 1.0)
    send(lr, [1], 1.005)
    acked, lost = lr.on_ack_received([(1, 1)], 0.0, 1.105)  # rtt sample 0.1
    assert pns(acked) == [1] and lost == []
    deadline = lr.get_loss_detection_timer()
    assert deadline == pytest.approx(1.0 + K_TIME_THRESHOLD * 0.1)
    assert lr.on_loss_detection_timeout(deadline - 0.001) == ([], 0)  # early: nothing
    lost, probes = lr.on_loss_detection_timeout(deadline)
    assert pns(lost) == [0] and probes == 0
    assert lr.bytes_in_flight == 0
    assert lr.get_loss_detection_timer() is None


def test_time_threshold_loss_found_on_a_later_ack():
    lr = recovery()
    send(lr, [0], 1.0)
    send(lr, [1], 1.2)
    acked, lost = lr.on_ack_received([(1, 1)], 0.0, 1.3)  # 0 was sent 0.3 s ago > 9/8 * 0.1
    assert pns(acked) == [1]
    assert pns(lost) == [0]


def test_loss_time_uses_granularity_floor():
    lr = recovery()
    send(lr, [0, 1], 1.0)
    lr.on_ack_received([(1, 1)], 0.0, 1.0)  # a zero RTT sample
    assert lr.get_loss_detection_timer() == pytest.approx(1.0 + K_GRANULARITY)


def test_packets_above_largest_acked_are_never_declared_lost():
    lr = recovery()
    send(lr, [0], 1.0)
    send(lr, [1, 2, 3, 4], 5.0)
    _, lost = lr.on_ack_received([(0, 0)], 0.0, 10.0)
    assert lost == []
    assert lr.in_flight_packets() == 4


def test_pto_deadline_from_last_ack_eliciting_packet_with_exponential_backoff():
    lr = recovery(max_ack_delay=0.025)
    send(lr, [0], 1.0)
    send(lr, [1], 2.0, eliciting=False)  # not ack-eliciting: does not move the PTO base
    pto = K_INITIAL_RTT + 4 * K_INITIAL_RTT / 2 + 0.025
    first = lr.get_loss_detection_timer()
    assert first == pytest.approx(1.0 + pto)
    assert lr.on_loss_detection_timeout(first) == ([], 2)
    assert lr.pto_count == 1
    second = lr.get_loss_detection_timer()
    assert second == pytest.approx(1.0 + 2 * pto)
    lr.on_loss_detection_timeout(second)
    assert lr.get_loss_detection_timer() == pytest.approx(1.0 + 4 * pto)


def test_pto_before_its_deadline_does_nothing():
    lr = recovery()
    send(lr, [0], 1.0)
    assert lr.on_loss_detection_timeout(1.01) == ([], 0)
    assert lr.pto_count == 0


def test_pto_probes_may_exceed_cwnd_until_spent():
    lr = recovery()
    send(lr, range(10), 1.0)  # 12000 bytes: the whole initial window
    assert not lr.can_send(MDS)
    assert not lr.can_send(MDS, probe=True)
    lr.on_loss_detection_timeout(lr.get_loss_detection_timer())
    assert lr.can_send(MDS, probe=True)
    assert not lr.can_send(MDS)
    send(lr, [10], 2.0)
    assert lr.can_send(MDS, probe=True)
    send(lr, [11], 2.0)
    assert not lr.can_send(MDS, probe=True)


def test_pto_count_resets_when_an_ack_arrives():
    lr = recovery()
    send(lr, [0], 1.0)
    lr.on_loss_detection_timeout(lr.get_loss_detection_timer())
    lr.on_loss_detection_timeout(lr.get_loss_detection_timer())
    assert lr.pto_count == 2
    send(lr, [1], 2.0)
    lr.on_ack_received([(1, 1)], 0.0, 2.1)
    assert lr.pto_count == 0


def test_no_timer_without_ack_eliciting_packets_outstanding():
    lr = recovery()
    assert lr.get_loss_detection_timer() is None
    send(lr, [0], 1.0, eliciting=False)
    assert lr.get_loss_detection_timer() is None
    send(lr, [1], 1.0)
    assert lr.get_loss_detection_timer() is not None
    lr.on_ack_received([(0, 1)], 0.0, 1.1)
    assert lr.get_loss_detection_timer() is None


def test_duplicate_ack_is_ignored():
    lr = recovery()
    send(lr, [0, 1], 1.0)
    lr.on_ack_received([(0, 0)], 0.0, 1.1)
    lr.on_loss_detection_timeout(lr.get_loss_detection_timer())
    cwnd, srtt, bif = lr.congestion.cwnd, lr.rtt.smoothed_rtt, lr.bytes_in_flight
    assert lr.on_ack_received([(0, 0)], 0.0, 9.0) == ([], [])
    assert lr.pto_count == 1  # nothing new acknowledged: PTO backoff stays
    assert (lr.congestion.cwnd, lr.rtt.smoothed_rtt, lr.bytes_in_flight) == (cwnd, srtt, bif)


def test_ack_for_never_sent_or_lost_packets_is_ignored():
    lr = recovery()
    assert lr.on_ack_received([(0, 5)], 0.0, 1.0) == ([], [])
    send(lr, range(5), 1.0)
    _, lost = lr.on_ack_received([(4, 4)], 0.0, 1.1)
    assert pns(lost) == [0, 1]
    acked, lost = lr.on_ack_received([(0, 1), (50, 60)], 0.0, 1.2)
    assert acked == [] and lost == []
    assert lr.largest_acked == 4


def test_ranges_in_any_order_overlapping_or_reversed_ack_each_packet_once():
    lr = recovery()
    send(lr, range(10), 1.0)
    acked, _ = lr.on_ack_received([(8, 9), (3, 1), (2, 4), (9, 9)], 0.0, 1.1)
    assert pns(acked) == [1, 2, 3, 4, 8, 9]
    assert lr.rtt.latest_rtt == pytest.approx(0.1)


def test_huge_range_acks_a_sparse_store():
    lr = recovery()
    send(lr, range(10), 1.0)
    lr.on_ack_received([(1, 2), (4, 5), (7, 8)], 0.0, 1.01)  # 0 and 3 lost: {6, 9} remain
    acked, _ = lr.on_ack_received([(0, 10**12)], 0.0, 1.02)
    assert pns(acked) == [6, 9]
    assert lr.in_flight_packets() == 0 and lr.bytes_in_flight == 0


def test_packet_numbers_must_increase():
    lr = recovery()
    send(lr, [3], 1.0)
    with pytest.raises(ValueError):
        lr.on_packet_sent(pkt(3, 1.0))


def test_bytes_in_flight_counts_only_in_flight_packets():
    lr = recovery()
    send(lr, [0], 1.0, size=1000)
    send(lr, [1], 1.0, size=50, eliciting=False, in_flight=False)
    send(lr, [2], 1.0, size=700)
    assert lr.bytes_in_flight == 1700
    assert lr.in_flight_packets() == 2
    assert lr.can_send(lr.congestion.cwnd - 1700)
    assert not lr.can_send(lr.congestion.cwnd - 1699)
    lr.on_ack_received([(0, 1)], 0.0, 1.1)
    assert lr.bytes_in_flight == 700


# --- Feeding congestion control ------------------------------------------------------------------


def test_loss_is_reported_to_congestion_control_before_the_acks():
    cc = RecordingController(MDS)
    lr = LossRecovery(cc)
    send(lr, range(5), 1.0)
    cc.events.clear()
    lr.on_ack_received([(4, 4)], 0.0, 1.1)
    assert cc.events == [("congestion", 1.0), ("acked", [4])]


def test_acks_from_before_the_reduction_do_not_grow_the_window_again():
    lr = recovery()
    send(lr, range(10), 1.0)
    lr.on_ack_received([(3, 9)], 0.0, 1.1)  # 0 lost; 3..9 were sent before recovery began
    assert lr.congestion.cwnd == 6000


def test_one_congestion_event_per_recovery_period():
    lr = recovery()
    send(lr, range(10), 1.0)
    lr.on_ack_received([(4, 4)], 0.0, 1.1)  # 0, 1 lost: halve once
    assert lr.congestion.cwnd == 6000
    lr.on_ack_received([(6, 6)], 0.0, 1.2)  # 2, 3 lost, sent before recovery began
    assert lr.congestion.cwnd == 6000
    send(lr, range(10, 16), 1.3)
    lr.on_ack_received([(14, 15)], 0.0, 1.4)  # 10, 11 lost, sent during recovery: new period
    assert lr.congestion.cwnd == 3000


def test_persistent_congestion_collapses_cwnd_to_minimum():
    cc = RecordingController(MDS)
    lr = LossRecovery(cc, max_ack_delay=0.025)
    send(lr, [0], 0.0)
    lr.on_ack_received([(0, 0)], 0.0, 0.1)  # RTT sample: srtt 0.1, rttvar 0.05
    for i, t in enumerate([0.2, 0.5, 0.8, 1.1, 1.3]):
        send(lr, [1 + i], t)
    send(lr, [6], 1.4)
    _, lost = lr.on_ack_received([(6, 6)], 0.0, 1.5)
    assert pns(lost) == [1, 2, 3, 4, 5]
    # The span (0.2 .. 1.3) exceeds the persistent congestion duration.
    assert 1.3 - 0.2 > (lr.rtt.pto_base() + 0.025) * 3
    assert cc.events[-3:] == [("congestion", 1.3), ("persistent",), ("acked", [6])]
    # Collapsed to the minimum; persistent congestion ends recovery, so the ack of 6 (sent
    # after the sample) counts in slow start, as in RFC 9002 appendix B.
    assert cc.cwnd == 2 * MDS + MDS


def test_no_persistent_congestion_when_an_ack_splits_the_lost_span():
    cc = RecordingController(MDS)
    lr = LossRecovery(cc)
    send(lr, [0], 0.0)
    lr.on_ack_received([(0, 0)], 0.0, 0.1)
    for i, t in enumerate([0.2, 0.5, 0.8, 1.1, 1.3, 1.4]):
        send(lr, [1 + i], t)
    _, lost = lr.on_ack_received([(3, 3), (6, 6)], 0.0, 1.5)  # 3 arrived: it splits the span
    assert pns(lost) == [1, 2, 4, 5]
    assert ("persistent",) not in cc.events
    assert cc.cwnd == (cc.initial_window + MDS) // 2  # the window after acking 0, halved


def test_no_persistent_congestion_before_the_first_rtt_sample():
    cc = RecordingController(MDS)
    lr = LossRecovery(cc)
    for i, t in enumerate([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]):
        send(lr, [i], t)
    _, lost = lr.on_ack_received([(5, 5)], 0.0, 2.6)
    assert pns(lost) == [0, 1, 2, 3, 4]
    assert ("persistent",) not in cc.events


def test_path_change_returns_in_flight_packets_and_resets_state_without_congestion_event():
    cc = RecordingController(MDS)
    lr = LossRecovery(cc)
    send(lr, [0], 1.0)
    lr.on_ack_received([(0, 0)], 0.0, 1.3)
    send(lr, [1, 2], 2.0)
    send(lr, [3], 2.0, eliciting=False, in_flight=False)
    lr.on_loss_detection_timeout(lr.get_loss_detection_timer())
    cc.events.clear()
    returned = lr.on_path_change()
    assert pns(returned) == [1, 2]
    assert cc.events == []
    assert cc.ssthresh is None and cc.cwnd == cc.initial_window
    assert not lr.rtt.has_sample and lr.rtt.smoothed_rtt == K_INITIAL_RTT
    assert lr.bytes_in_flight == 0 and lr.in_flight_packets() == 0 and lr.pto_count == 0
    assert lr.get_loss_detection_timer() is None
    assert lr.on_ack_received([(1, 3)], 0.0, 3.0) == ([], [])
    send(lr, [4], 3.0)  # numbering continues
    assert lr.bytes_in_flight == MDS


def test_drop_all_forgets_everything_and_returns_what_was_in_flight():
    lr = recovery()
    send(lr, [0, 1], 1.0)
    send(lr, [2], 1.0, eliciting=False, in_flight=False)
    assert pns(lr.drop_all()) == [0, 1]
    assert lr.bytes_in_flight == 0 and lr.in_flight_packets() == 0
    assert lr.get_loss_detection_timer() is None
    assert lr.drop_all() == []


# --- Accounting under random traffic -------------------------------------------------------------


class RecoveryMachine(RuleBasedStateMachine):
    """Random sends, acks, timeouts and path changes keep the books straight."""

    def __init__(self) -> None:
        super().__init__()
        self.lr = LossRecovery(NewReno(MDS))
        self.now = 0.0
        self.next_pn = 0
        self.outstanding: dict[int, SentPacket] = {}

    def _settle(self, packets: list[SentPacket]) -> None:
        for p in packets:
            assert self.outstanding.pop(p.pn) is p  # each packet comes back exactly once

    @rule(
        size=st.integers(1, 1500),
        eliciting=st.booleans(),
        in_flight=st.booleans(),
        dt=st.floats(0.0, 0.2),
    )
    def send(self, size, eliciting, in_flight, dt):
        self.now += dt
        p = pkt(self.next_pn, self.now, size, eliciting=eliciting, in_flight=in_flight)
        self.next_pn += 1
        self.lr.on_packet_sent(p)
        self.outstanding[p.pn] = p

    @rule(
        ranges=st.lists(st.tuples(st.integers(-2, 60), st.integers(-2, 60)), max_size=4),
        ack_delay=st.floats(0.0, 0.1),
        dt=st.floats(0.0, 0.5),
    )
    def ack(self, ranges, ack_delay, dt):
        self.now += dt
        acked, lost = self.lr.on_ack_received(ranges, ack_delay, self.now)
        covered = {pn for a, b in ranges for pn in range(min(a, b), max(a, b) + 1)}
        assert all(p.pn in covered for p in acked)
        assert not {p.pn for p in lost} & covered
        self._settle(acked)
        self._settle(lost)

    @rule()
    def timeout(self):
        deadline = self.lr.get_loss_detection_timer()
        if deadline is not None:
            self.now = max(self.now, deadline)
            lost, _ = self.lr.on_loss_detection_timeout(self.now)
            self._settle(lost)

    @rule()
    def path_change(self):
        returned = self.lr.on_path_change()
        assert [p.pn for p in returned] == [p.pn for p in self.outstanding.values() if p.in_flight]
        self.outstanding.clear()

    @invariant()
    def books_balance(self):
        in_flight = [p for p in self.outstanding.values() if p.in_flight]
        assert self.lr.bytes_in_flight == sum(p.size for p in in_flight)
        assert self.lr.bytes_in_flight >= 0
        assert self.lr.in_flight_packets() == len(in_flight)
        assert self.lr.congestion.cwnd >= 2 * MDS
        timer = self.lr.get_loss_detection_timer()
        if any(p.ack_eliciting for p in self.outstanding.values()):
            assert timer is not None
        if not self.outstanding:
            assert timer is None


TestRecoveryMachine = RecoveryMachine.TestCase
TestRecoveryMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
