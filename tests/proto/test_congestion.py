"""Tests for minimalt.proto.congestion: NewReno, CUBIC, the registry and the pacer."""

from __future__ import annotations

import pytest

from minimalt.proto import congestion
from minimalt.proto.congestion import (
    CongestionController,
    Cubic,
    NewReno,
    Pacer,
    available_congestion_controls,
    create_congestion_control,
    register_congestion_control,
)
from minimalt.proto.recovery import LossRecovery, RttEstimator, SentPacket

MDS = 1200
C = 0.4
BETA = 0.7


def rtt_of(srtt: float) -> RttEstimator:
    rtt = RttEstimator()
    rtt.update(srtt, 0.0)
    return rtt


def ack_round(cc: CongestionController, now: float, srtt: float) -> float:
    """Ack one window's worth of packets, one at a time, spread over the next RTT.

    Each packet was sent one RTT before its ack. Returns the time at the end of the round.
    """
    rtt = rtt_of(srtt)
    total = cc.cwnd
    sizes = [MDS] * (total // MDS) + ([total % MDS] if total % MDS else [])
    for i, size in enumerate(sizes):
        t = now + srtt * (i + 1) / len(sizes)
        cc.on_packets_acked([SentPacket(0, t - srtt, size, True, True, [])], t, rtt)
    return now + srtt


def grow_to(cc: CongestionController, cwnd: int, srtt: float) -> float:
    """Slow start from time 0 until the window reaches exactly ``cwnd``; returns the time."""
    rtt = rtt_of(srtt)
    now = 0.0
    while cc.cwnd < cwnd:
        now += 0.001
        size = min(MDS, cwnd - cc.cwnd)
        cc.on_packets_acked([SentPacket(0, now - srtt, size, True, True, [])], now, rtt)
    assert cc.cwnd == cwnd
    return now


def acked(size: int, sent: float) -> list[SentPacket]:
    return [SentPacket(0, sent, size, True, True, [])]


# --- NewReno -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mds", "initial", "minimum"),
    [(1200, 12000, 2400), (1500, 14720, 3000), (9000, 18000, 18000)],
)
def test_newreno_initial_and_minimum_windows_follow_rfc9002(mds, initial, minimum):
    cc = NewReno(mds)
    assert (cc.cwnd, cc.minimum_window, cc.ssthresh) == (initial, minimum, None)


def test_newreno_slow_start_doubles_the_window_every_rtt():
    cc = NewReno(MDS)
    now = 0.0
    for expected in (24000, 48000, 96000):
        now = ack_round(cc, now, 0.1)
        assert cc.cwnd == expected


def test_newreno_loss_halves_the_window_and_sets_ssthresh():
    cc = NewReno(MDS)
    grow_to(cc, 40000, 0.1)
    cc.on_congestion_event(0.5, 1.0)
    assert cc.cwnd == 20000 and cc.ssthresh == 20000
    assert cc.in_recovery(1.0) and not cc.in_recovery(1.0001)


def test_newreno_loss_never_goes_below_minimum_window():
    cc = NewReno(MDS)
    cc.on_congestion_event(0.0, 1.0)
    cc.on_congestion_event(1.5, 2.0)
    cc.on_congestion_event(2.5, 3.0)
    assert cc.cwnd == 2 * MDS


def test_newreno_reduces_once_per_recovery_period():
    cc = NewReno(MDS)
    grow_to(cc, 40000, 0.1)
    cc.on_congestion_event(0.9, 1.0)
    cc.on_congestion_event(0.95, 1.1)  # sent before the period began: same congestion event
    cc.on_congestion_event(1.0, 1.2)
    assert cc.cwnd == 20000
    cc.on_congestion_event(1.05, 1.3)  # sent after the period began: a new event
    assert cc.cwnd == 10000


def test_newreno_acks_of_packets_sent_before_recovery_do_not_grow_the_window():
    cc = NewReno(MDS)
    cc.on_congestion_event(0.5, 1.0)
    cc.on_packets_acked(acked(MDS, 0.9), 1.1, rtt_of(0.1))
    assert cc.cwnd == 6000
    cc.on_packets_acked(acked(6000, 1.01), 1.1, rtt_of(0.1))  # sent in the new period
    assert cc.cwnd == 7200


def test_newreno_congestion_avoidance_adds_one_datagram_per_rtt():
    cc = NewReno(MDS)
    grow_to(cc, 48000, 0.1)
    cc.on_congestion_event(0.5, 1.0)
    assert cc.cwnd == 24000
    now = 1.0
    for expected in (25200, 26400, 27600, 28800):
        now = ack_round(cc, now + 0.1, 0.1)
        assert cc.cwnd == expected


def test_newreno_ignores_packets_not_in_flight():
    cc = NewReno(MDS)
    cc.on_packets_acked([SentPacket(0, 0.0, MDS, False, False, [])], 0.1, rtt_of(0.1))
    assert cc.cwnd == 12000


def test_newreno_persistent_congestion_collapses_to_minimum_and_ends_recovery():
    cc = NewReno(MDS)
    grow_to(cc, 40000, 0.1)
    cc.on_congestion_event(0.9, 1.0)
    cc.on_persistent_congestion(1.0)
    assert cc.cwnd == 2 * MDS
    assert not cc.in_recovery(0.9)
    cc.on_packets_acked(acked(MDS, 0.95), 1.1, rtt_of(0.1))
    assert cc.cwnd == 3 * MDS  # slow start again, below ssthresh 20000


def test_newreno_window_does_not_grow_while_app_limited():
    cc = NewReno(MDS)
    cc.on_app_limited(True)
    ack_round(cc, 0.0, 0.1)
    assert cc.cwnd == 12000
    cc.on_app_limited(False)
    ack_round(cc, 0.1, 0.1)
    assert cc.cwnd == 24000


def test_reset_restores_the_initial_state():
    for cc in (NewReno(MDS), Cubic(MDS)):
        grow_to(cc, 40000, 0.1)
        cc.on_congestion_event(0.5, 1.0)
        cc.reset()
        assert (cc.cwnd, cc.ssthresh, cc.recovery_start_time) == (12000, None, None)


# --- CUBIC ---------------------------------------------------------------------------------------


def test_cubic_slow_start_doubles_the_window_every_rtt():
    cc = Cubic(MDS)
    now = 0.0
    for expected in (24000, 48000, 96000):
        now = ack_round(cc, now, 0.1)
        assert cc.cwnd == expected


def test_cubic_loss_multiplies_the_window_by_beta():
    cc = Cubic(MDS)
    grow_to(cc, 100 * MDS, 0.1)
    cc.on_congestion_event(0.9, 1.0)
    assert cc.cwnd == 70 * MDS and cc.ssthresh == 70 * MDS
    assert cc.w_max == 100 * MDS
    cc.on_congestion_event(0.95, 1.05)  # same recovery period
    assert cc.cwnd == 70 * MDS


def test_cubic_window_follows_the_cubic_function_after_a_loss():
    srtt = 0.1
    cc = Cubic(MDS)
    grow_to(cc, 160 * MDS, srtt)
    now = 1.0
    cc.on_congestion_event(now - srtt / 2, now)
    w_max, cwnd_epoch = 160.0, 112.0  # segments
    k = ((w_max - cwnd_epoch) / C) ** (1 / 3)  # RFC 9438 eq. 2

    now = ack_round(cc, now, srtt)  # acks of packets sent before the loss: no growth
    assert cc.cwnd == 112 * MDS
    epoch_start = now + srtt / 112  # the first ack of a packet sent after the loss
    samples = []
    for _ in range(80):
        now = ack_round(cc, now, srtt)
        t = now - epoch_start
        expected = C * (t - k) ** 3 + w_max
        samples.append((t, cc.cwnd / MDS, expected))
    assert cc.k == pytest.approx(k)
    for t, got, expected in samples:
        assert got == pytest.approx(expected, rel=0.005), f"t={t:.2f}"
    # Concave towards W_max (plateau around t = K), convex beyond it.
    assert any(abs(t - k) < 0.1 and abs(got - w_max) < 0.5 for t, got, _ in samples)
    assert samples[-1][1] > w_max + 5


def test_cubic_fast_convergence_lowers_w_max_when_the_window_peaked_lower():
    cc = Cubic(MDS)
    grow_to(cc, 100 * MDS, 0.1)
    cc.on_congestion_event(0.9, 1.0)  # cwnd 70 segments, W_max 100
    cc.on_congestion_event(1.5, 2.0)  # lost again below W_max
    assert cc.w_max == pytest.approx(70 * MDS * (1 + BETA) / 2)
    assert cc.cwnd == int(70 * MDS * BETA)
    # K now measures the climb to the lowered W_max.
    ack_round(cc, ack_round(cc, 2.0, 0.1), 0.1)
    assert cc.k == pytest.approx(((70 * (1 + BETA) / 2 - 70 * BETA) / C) ** (1 / 3))


def test_cubic_without_fast_convergence_keeps_the_peak_window_as_w_max():
    class SlowCubic(Cubic):
        __slots__ = ()
        fast_convergence = False

    cc = SlowCubic(MDS)
    grow_to(cc, 100 * MDS, 0.1)
    cc.on_congestion_event(0.9, 1.0)
    cc.on_congestion_event(1.5, 2.0)
    assert cc.w_max == 70 * MDS


def test_cubic_reno_friendly_region_grows_like_reno_with_alpha():
    # Small RTT and small window: W_cubic climbs slower per RTT than Reno would.
    srtt = 0.01
    cc = Cubic(MDS)
    grow_to(cc, 20 * MDS, srtt)
    now = 1.0
    cc.on_congestion_event(now - srtt / 2, now)
    now = ack_round(cc, now, srtt)  # packets from before the loss
    start = cc.cwnd / MDS
    assert start == 14
    for _ in range(10):
        now = ack_round(cc, now, srtt)
    alpha = 3 * (1 - BETA) / (1 + BETA)
    grown = cc.cwnd / MDS - start
    assert grown == pytest.approx(10 * alpha, rel=0.03)
    assert cc.w_cubic(now - 1.0) / MDS < start + 1.5  # the cubic curve alone would be far lower
    # Once the estimate is back at the window before the loss, alpha becomes 1 (RFC 9438 §4.3).
    for _ in range(3):
        now = ack_round(cc, now, srtt)
    before = cc.cwnd
    for _ in range(10):
        now = ack_round(cc, now, srtt)
    assert (cc.cwnd - before) / MDS == pytest.approx(10, rel=0.03)


def test_cubic_persistent_congestion_restarts_from_minimum_with_k_zero():
    srtt = 0.1
    cc = Cubic(MDS)
    grow_to(cc, 100 * MDS, srtt)
    cc.on_congestion_event(0.9, 1.0)
    cc.on_persistent_congestion(1.0)
    assert cc.cwnd == 2 * MDS
    now = 1.0
    while cc.cwnd < cc.ssthresh:
        now = ack_round(cc, now, srtt)
    now = ack_round(cc, now, srtt)  # first congestion avoidance round starts the epoch
    assert cc.k == 0.0
    assert cc.w_max >= cc.ssthresh  # W_max is the window at the start of the epoch


def test_cubic_window_does_not_grow_while_app_limited():
    cc = Cubic(MDS)
    grow_to(cc, 50 * MDS, 0.1)
    cc.on_congestion_event(0.9, 1.0)
    cc.on_app_limited()
    now = ack_round(cc, 1.1, 0.1)
    now = ack_round(cc, now, 0.1)
    assert cc.cwnd == 35 * MDS


def test_cubic_time_spent_app_limited_does_not_count_towards_the_curve():
    srtt = 0.1
    cc = Cubic(MDS)
    grow_to(cc, 100 * MDS, srtt)
    cc.on_congestion_event(0.9, 1.0)
    now = 1.0
    for _ in range(5):
        now = ack_round(cc, now, srtt)
    cc.on_app_limited(True)
    ack_round(cc, now + 10.0, srtt)  # ten idle seconds, far past K
    cc.on_app_limited(False)
    before = cc.cwnd
    ack_round(cc, now + 20.0, srtt)
    # A curve still counting the idle time would jump towards 1.5x; a fresh epoch creeps.
    assert before < cc.cwnd < 1.05 * before


# --- Registry ------------------------------------------------------------------------------------


def test_registry_knows_newreno_and_cubic_and_defaults_to_newreno():
    assert {"newreno", "cubic"} <= set(available_congestion_controls())
    assert type(create_congestion_control()) is NewReno
    cc = create_congestion_control("cubic", 1500)
    assert type(cc) is Cubic and cc.max_datagram_size == 1500


def test_unknown_congestion_control_error_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown congestion control 'bbr'") as info:
        create_congestion_control("bbr")
    assert "cubic" in str(info.value) and "newreno" in str(info.value)


def test_a_custom_controller_can_be_registered_and_drives_recovery(monkeypatch):
    monkeypatch.setattr(congestion, "_REGISTRY", dict(congestion._REGISTRY))

    class Fixed(CongestionController):
        name = "fixed"
        __slots__ = ()

        def on_packets_acked(self, packets, now, rtt) -> None:
            pass

        def on_congestion_event(self, sent_time_of_newest_lost, now) -> None:
            pass

    register_congestion_control("fixed", Fixed)
    assert "fixed" in available_congestion_controls()
    cc = create_congestion_control("fixed", 1000)
    assert isinstance(cc, Fixed) and cc.cwnd == 10000
    lr = LossRecovery(cc)
    for pn in range(10):
        lr.on_packet_sent(SentPacket(pn, 0.0, 1000, True, True, []))
    assert not lr.can_send(1)


# --- Pacer ---------------------------------------------------------------------------------------


def test_pacer_allows_a_burst_then_spaces_packets_by_size_over_rate():
    pacer = Pacer(MDS)
    pacer.update_rate(12000, 0.1)
    rate = 1.25 * 12000 / 0.1
    assert pacer.rate == pytest.approx(rate)
    for _ in range(10):
        assert pacer.next_send_time(0.0) is None
        pacer.on_packet_sent(MDS, 0.0)
    now = 0.0
    times = []
    for _ in range(20):
        when = pacer.next_send_time(now)
        assert when is not None and when > now
        now = when
        assert pacer.next_send_time(now) is None
        pacer.on_packet_sent(MDS, now)
        times.append(now)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap == pytest.approx(MDS / rate) for gap in gaps)


def test_pacer_spacing_follows_the_size_of_each_packet():
    pacer = Pacer(MDS)
    pacer.update_rate(12000, 0.1)
    for _ in range(10):
        pacer.on_packet_sent(MDS, 0.0)
    first = pacer.next_send_time(0.0)
    pacer.on_packet_sent(300, first)
    assert pacer.next_send_time(first) == pytest.approx(first + 300 / pacer.rate)


def test_pacer_uses_no_gain_before_the_first_rtt_sample():
    pacer = Pacer(MDS)
    pacer.update_rate(12000, 0.1, rtt_sampled=False)
    assert pacer.rate == pytest.approx(120000)


def test_pacer_burst_is_capped_after_idle():
    pacer = Pacer(MDS)
    pacer.update_rate(12000, 0.1)
    pacer.on_packet_sent(MDS, 0.0)
    sent = 0
    while pacer.next_send_time(100.0) is None:
        pacer.on_packet_sent(MDS, 100.0)
        sent += 1
    assert sent == 10


def test_pacer_does_not_pace_with_a_zero_rtt():
    pacer = Pacer(MDS)
    pacer.update_rate(12000, 0.0)
    for _ in range(100):
        assert pacer.next_send_time(0.0) is None
        pacer.on_packet_sent(MDS, 0.0)
