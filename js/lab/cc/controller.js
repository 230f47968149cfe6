'use strict';
/**
 * The congestion controller interface, as a base class with the bookkeeping most
 * controllers share (window bounds, RTT values, the recovery period of RFC 9002 7.3.2).
 *
 * Events in (the sender calls these; times in ms, sizes in bytes):
 *   onPacketSent({ time, packet, bytesInFlight })
 *   onRttSample({ time, rtt })                 rtt: the sender's RttEstimator (read only)
 *   onLoss({ time, packets, persistentCongestion, bytesInFlight })
 *   onAck({ time, packets, bytesInFlight, rateSample, rttSample, rtt, appLimited })
 *                                              rttSample: this ack's RTT sample (ms) or null
 *   onAppLimited({ time, bytesInFlight })      the sender had room but nothing to send
 * On one acknowledgement the order is onRttSample, onLoss, onAck (as in RFC 9002 A.7).
 * `packets` are the sender's packet records: { packetNumber, timeSent, size, ... }.
 * `rateSample` comes from reliability/delivery-rate.js.
 *
 * Out (the sender reads these after every event):
 *   congestionWindow   bytes the sender may have in flight
 *   pacingRate         bytes per second, or Infinity for no pacing
 *   state              a short name for traces: slow_start, congestion_avoidance, recovery, ...
 *
 * To add a controller: write one file that extends this class, give it a static `id`,
 * and register it in cc/index.js (or call registerController from your own code).
 */

const C = require('../reliability/constants');

class CongestionController {
  /**
   * @param {object} [options]
   * @param {number} [options.maxDatagramSize=1200] bytes (the "MSS" of the formulas)
   * @param {number} [options.initialWindow] bytes; RFC 9002's min(10 * mss, max(14720, 2 * mss))
   * @param {import('../sim/prng').Prng} [options.rng] randomness for controllers that need it
   */
  constructor({ maxDatagramSize = C.maxDatagramSize, initialWindow, rng = null } = {}) {
    this.mss = maxDatagramSize;
    this.initialWindow =
      initialWindow ?? Math.min(10 * maxDatagramSize, Math.max(14720, 2 * maxDatagramSize));
    this.minimumWindow = 2 * maxDatagramSize;
    this.cwnd = this.initialWindow;
    this.ssthresh = Infinity;
    /** Send time at or before which losses belong to the current recovery period. */
    this.recoveryStartTime = null;
    /** Whether a loss was reacted to and no packet sent since has been acknowledged. */
    this.inRecovery = false;
    this.rng = rng;
    this.smoothedRtt = null;
    this.minRtt = Infinity;
    this.latestRtt = null;
  }

  /** @returns {number} bytes */
  get congestionWindow() {
    return this.cwnd;
  }

  /**
   * Default pacing: gain x cwnd / smoothed RTT, with a gain of 2 in slow start (so pacing
   * never slows the doubling) and 1.25 otherwise (RFC 9002 7.7). No pacing before the first
   * RTT sample: the initial window leaves as a burst.
   * @returns {number} bytes per second
   */
  get pacingRate() {
    if (this.smoothedRtt === null || this.smoothedRtt <= 0) return Infinity;
    const gain = this.cwnd < this.ssthresh ? C.kSlowStartPacingGain : C.kPacingGain;
    return (gain * this.cwnd * 1000) / this.smoothedRtt;
  }

  /** @returns {string} */
  get state() {
    if (this.inRecovery) return 'recovery';
    return this.cwnd < this.ssthresh ? 'slow_start' : 'congestion_avoidance';
  }

  /** @returns {number|undefined} slow start threshold in bytes, for traces */
  get slowStartThreshold() {
    return this.ssthresh;
  }

  onPacketSent(_event) {}

  onRttSample({ rtt }) {
    this.smoothedRtt = rtt.smoothedRtt;
    this.minRtt = rtt.minRtt;
    this.latestRtt = rtt.latestRtt;
  }

  onLoss(_event) {}

  onAck(_event) {}

  onAppLimited(_event) {}

  /**
   * @param {number} timeSent of a packet
   * @returns {boolean} whether the packet was sent before the current recovery period began
   *   (its loss or acknowledgement belongs to a congestion event already reacted to)
   */
  sentBeforeRecovery(timeSent) {
    return this.recoveryStartTime !== null && timeSent <= this.recoveryStartTime;
  }
}

module.exports = { CongestionController };
