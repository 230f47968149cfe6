'use strict';
/**
 * BBR version 1 (draft-cardwell-iccrg-bbr-congestion-control-00).
 *
 * BBR models the path instead of reacting to loss: BtlBw, the bottleneck bandwidth (the
 * windowed maximum delivery rate over 10 round trips) and RTprop, the round-trip
 * propagation delay (the minimum RTT over 10 s). It paces at gain x BtlBw and caps the
 * data in flight at gain x BtlBw x RTprop (the bandwidth-delay product, BDP).
 *
 * States: STARTUP (gain 2/ln 2, until the bandwidth stops growing by 25 % for three rounds),
 * DRAIN (empty the queue STARTUP built), PROBE_BW (cycle the pacing gain through
 * 1.25, 0.75, 1 x 6 to probe for more bandwidth and then drain), PROBE_RTT (every 10 s
 * without a new RTprop, hold 4 packets in flight for 200 ms to let the queue empty).
 */

const { CongestionController } = require('./controller');
const { WindowedMaxFilter } = require('./windowed-filter');

const kHighGain = 2 / Math.LN2;
const kDrainGain = 1 / kHighGain;
const kPacingGainCycle = [5 / 4, 3 / 4, 1, 1, 1, 1, 1, 1];
const kBtlBwFilterRounds = 10;
const kRtpropFilterMs = 10000;
const kProbeRttDurationMs = 200;
const kMinPipeCwndPackets = 4;

class Bbr extends CongestionController {
  static id = 'bbr';

  constructor(options = {}) {
    super(options);
    this.minPipeCwnd = kMinPipeCwndPackets * this.mss;
    this.btlBwFilter = new WindowedMaxFilter(kBtlBwFilterRounds);
    this.rtProp = Infinity;
    this.rtPropStamp = 0;
    this.rtPropExpired = false;
    this.probeRttDoneStamp = null;
    this.probeRttRoundDone = false;
    this.packetConservation = false;
    this.conservationEndsAtRound = 0;
    this.priorCwnd = 0;
    this.nextRoundDelivered = 0;
    this.roundStart = false;
    this.roundCount = 0;
    this.filledPipe = false;
    this.fullBw = 0;
    this.fullBwCount = 0;
    this.cycleIndex = 0;
    this.cycleStamp = 0;
    this._pacingRate = null;
    this._lostSinceAck = 0;
    this._enterStartup();
  }

  /** @returns {number} bottleneck bandwidth estimate, bytes per second */
  get btlBw() {
    return this.btlBwFilter.best;
  }

  get state() {
    return this.mode;
  }

  get slowStartThreshold() {
    return undefined;
  }

  get pacingRate() {
    if (this._pacingRate !== null) return this._pacingRate;
    // Before any bandwidth sample: high gain x initial window per RTT, if there is an RTT.
    if (this.smoothedRtt === null || this.smoothedRtt <= 0) return Infinity;
    return (kHighGain * this.initialWindow * 1000) / this.smoothedRtt;
  }

  /** @returns {number} gain x BtlBw x RTprop plus a few packets of slack, bytes */
  _inflight(gain) {
    if (this.rtProp === Infinity || this.btlBw === 0) return this.initialWindow;
    const bdp = (this.btlBw * this.rtProp) / 1000;
    return gain * bdp + 3 * this.mss;
  }

  onLoss({ time, packets, persistentCongestion, bytesInFlight }) {
    for (const packet of packets) this._lostSinceAck += packet.size;
    if (persistentCongestion) {
      // Like an RTO in Linux BBR: remember the window, restart from one packet.
      this._saveCwnd();
      this.cwnd = this.mss;
      return;
    }
    const newest = packets[packets.length - 1];
    if (!this.sentBeforeRecovery(newest.timeSent)) {
      // Entering loss recovery: packet conservation for one round trip.
      this.recoveryStartTime = time;
      this._saveCwnd();
      this.inRecovery = true;
      this.cwnd = Math.max(bytesInFlight + this.mss, this.minPipeCwnd);
      this.packetConservation = true;
      this.conservationEndsAtRound = this.roundCount + 1;
    }
  }

  onAck({ time, packets, bytesInFlight, rateSample, rttSample }) {
    const rs = rateSample;
    const delivered = rs.priorDelivered + rs.delivered;
    const priorInflight = bytesInFlight + rs.newlyDelivered + this._lostSinceAck;
    const lostBytes = this._lostSinceAck;
    this._lostSinceAck = 0;

    if (this.inRecovery && !this.sentBeforeRecovery(packets[packets.length - 1].timeSent)) {
      this.inRecovery = false;
      this.packetConservation = false;
      this._restoreCwnd();
    }

    // Update the model and the state machine.
    this._updateRound(rs, delivered);
    if (this.packetConservation && this.roundCount >= this.conservationEndsAtRound) {
      this.packetConservation = false;
    }
    if (rs.valid && (rs.deliveryRate >= this.btlBw || !rs.isAppLimited)) {
      this.btlBwFilter.update(rs.deliveryRate, this.roundCount);
    }
    this._checkCyclePhase(time, priorInflight, lostBytes);
    this._checkFullPipe(rs);
    this._checkDrain(time, bytesInFlight);
    this._updateRtProp(time, rttSample);
    this._checkProbeRtt(time, bytesInFlight, delivered);

    // Update the control parameters.
    const rate = this.pacingGain * this.btlBw;
    if (this.btlBw > 0 && (this.filledPipe || this._pacingRate === null || rate > this._pacingRate)) {
      this._pacingRate = rate;
    }
    this._setCwnd(bytesInFlight, rs.newlyDelivered, lostBytes, delivered);
  }

  _updateRound(rs, delivered) {
    this.roundStart = false;
    if (rs.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = delivered;
      this.roundCount++;
      this.roundStart = true;
    }
  }

  _enterStartup() {
    this.mode = 'startup';
    this.pacingGain = kHighGain;
    this.cwndGain = kHighGain;
  }

  _enterProbeBw(time) {
    this.mode = 'probe_bw';
    this.pacingGain = 1;
    this.cwndGain = 2;
    // Start at a random phase other than the draining one (index 1).
    const r = this.rng ? this.rng.nextUint32() % (kPacingGainCycle.length - 1) : 0;
    this.cycleIndex = kPacingGainCycle.length - 1 - r;
    this._advanceCyclePhase(time);
  }

  _advanceCyclePhase(time) {
    this.cycleStamp = time;
    this.cycleIndex = (this.cycleIndex + 1) % kPacingGainCycle.length;
    this.pacingGain = kPacingGainCycle[this.cycleIndex];
  }

  _checkCyclePhase(time, priorInflight, lostBytes) {
    if (this.mode !== 'probe_bw') return;
    const fullLength = time - this.cycleStamp > this.rtProp;
    let next;
    if (this.pacingGain === 1) {
      next = fullLength;
    } else if (this.pacingGain > 1) {
      next = fullLength && (lostBytes > 0 || priorInflight >= this._inflight(this.pacingGain));
    } else {
      next = fullLength || priorInflight <= this._inflight(1);
    }
    if (next) this._advanceCyclePhase(time);
  }

  _checkFullPipe(rs) {
    if (this.filledPipe || !this.roundStart || rs.isAppLimited) return;
    if (this.btlBw >= this.fullBw * 1.25) {
      this.fullBw = this.btlBw;
      this.fullBwCount = 0;
      return;
    }
    if (++this.fullBwCount >= 3) this.filledPipe = true;
  }

  _checkDrain(time, bytesInFlight) {
    if (this.mode === 'startup' && this.filledPipe) {
      this.mode = 'drain';
      this.pacingGain = kDrainGain;
      this.cwndGain = kHighGain;
    }
    if (this.mode === 'drain' && bytesInFlight <= this._inflight(1)) this._enterProbeBw(time);
  }

  _updateRtProp(time, sample) {
    this.rtPropExpired = time > this.rtPropStamp + kRtpropFilterMs;
    if (sample !== null && (sample <= this.rtProp || this.rtPropExpired)) {
      this.rtProp = sample;
      this.rtPropStamp = time;
    }
  }

  _checkProbeRtt(time, bytesInFlight, delivered) {
    if (this.mode !== 'probe_rtt' && this.rtPropExpired) {
      this._saveCwnd();
      this.mode = 'probe_rtt';
      this.pacingGain = 1;
      this.cwndGain = 1;
      this.probeRttDoneStamp = null;
    }
    if (this.mode !== 'probe_rtt') return;
    if (this.probeRttDoneStamp === null && bytesInFlight <= this.minPipeCwnd) {
      this.probeRttDoneStamp = time + kProbeRttDurationMs;
      this.probeRttRoundDone = false;
      this.nextRoundDelivered = delivered;
    } else if (this.probeRttDoneStamp !== null) {
      if (this.roundStart) this.probeRttRoundDone = true;
      if (this.probeRttRoundDone && time > this.probeRttDoneStamp) {
        this.rtPropStamp = time;
        this._restoreCwnd();
        if (this.filledPipe) this._enterProbeBw(time);
        else this._enterStartup();
      }
    }
  }

  _saveCwnd() {
    this.priorCwnd =
      this.inRecovery || this.mode === 'probe_rtt' ? Math.max(this.priorCwnd, this.cwnd) : this.cwnd;
  }

  _restoreCwnd() {
    this.cwnd = Math.max(this.cwnd, this.priorCwnd);
  }

  _setCwnd(bytesInFlight, newlyDelivered, lostBytes, delivered) {
    const target = this._inflight(this.cwndGain);
    if (lostBytes > 0) this.cwnd = Math.max(this.cwnd - lostBytes, this.mss);
    if (this.packetConservation) {
      this.cwnd = Math.max(this.cwnd, bytesInFlight + newlyDelivered);
    } else if (this.filledPipe) {
      this.cwnd = Math.min(this.cwnd + newlyDelivered, target);
    } else if (this.cwnd < target || delivered < this.initialWindow) {
      this.cwnd += newlyDelivered;
    }
    this.cwnd = Math.max(this.cwnd, this.minPipeCwnd);
    if (this.mode === 'probe_rtt') this.cwnd = Math.min(this.cwnd, this.minPipeCwnd);
  }
}

module.exports = { Bbr };
