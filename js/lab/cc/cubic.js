'use strict';
/**
 * CUBIC (RFC 9438). After a congestion event the window follows a cubic function of the
 * time since that event: fast growth back towards the window where loss last happened
 * (W_max), a plateau around it, then accelerating probing beyond it. A Reno-friendly
 * estimate (W_est) keeps CUBIC at least as aggressive as Reno on short-RTT paths.
 *
 * Windows are in bytes here; the RFC's formulas are in segments and seconds, hence the
 * conversions by `mss` and 1000. Slow start is the standard one (no HyStart++).
 */

const { CongestionController } = require('./controller');

/** Multiplicative decrease factor. */
const kBeta = 0.7;
/** Cubic scaling constant, segments per second cubed. */
const kC = 0.4;
/** Additive increase of the Reno-friendly estimate, segments per RTT (RFC 9438 4.3). */
const kAlpha = (3 * (1 - kBeta)) / (1 + kBeta);

class Cubic extends CongestionController {
  static id = 'cubic';

  /**
   * @param {object} [options] see CongestionController, plus
   * @param {boolean} [options.fastConvergence=true] release bandwidth faster to new flows
   */
  constructor(options = {}) {
    super(options);
    this.fastConvergence = options.fastConvergence ?? true;
    /** Window before the last reduction, bytes. */
    this.wMax = 0;
    /** Start of the current congestion avoidance epoch, ms, or null. */
    this.epochStart = null;
    /** Seconds from the epoch start until W_cubic returns to wMax. */
    this.k = 0;
    /** Reno-friendly window estimate, bytes. */
    this.wEst = 0;
  }

  /**
   * W_cubic(t) of RFC 9438 eq. 1, in bytes.
   * @param {number} t seconds since the epoch start
   */
  wCubic(t) {
    return (kC * (t - this.k) ** 3 + this.wMax / this.mss) * this.mss;
  }

  onAck({ time, packets, appLimited }) {
    for (const packet of packets) {
      if (this.sentBeforeRecovery(packet.timeSent)) continue;
      this.inRecovery = false;
      if (appLimited) continue;
      if (this.cwnd < this.ssthresh) {
        this.cwnd += packet.size;
        continue;
      }
      this._congestionAvoidance(time, packet.size);
    }
  }

  _congestionAvoidance(time, ackedBytes) {
    if (this.epochStart === null) {
      this.epochStart = time;
      // Slow start ended without a loss (ssthresh reached): plateau at the current window.
      if (this.wMax < this.cwnd) this.wMax = this.cwnd;
      this.k = Math.cbrt(Math.max(0, this.wMax - this.cwnd) / this.mss / kC);
      this.wEst = this.cwnd;
    }
    const t = (time - this.epochStart) / 1000;
    const rtt = (this.smoothedRtt ?? 0) / 1000;
    const alpha = this.wEst >= this.wMax ? 1 : kAlpha;
    this.wEst += (alpha * this.mss * ackedBytes) / this.cwnd;
    if (this.wCubic(t) < this.wEst) {
      // Reno-friendly region: Reno would do better, so do as Reno.
      this.cwnd = this.wEst;
      return;
    }
    const target = Math.min(Math.max(this.wCubic(t + rtt), this.cwnd), 1.5 * this.cwnd);
    this.cwnd += ((target - this.cwnd) * ackedBytes) / this.cwnd;
  }

  onLoss({ time, packets, persistentCongestion }) {
    const newest = packets[packets.length - 1];
    if (!this.sentBeforeRecovery(newest.timeSent)) {
      this.recoveryStartTime = time;
      this.inRecovery = true;
      this.wMax =
        this.fastConvergence && this.cwnd < this.wMax ? (this.cwnd * (1 + kBeta)) / 2 : this.cwnd;
      this.ssthresh = Math.max(this.cwnd * kBeta, this.minimumWindow);
      this.cwnd = this.ssthresh;
      this.epochStart = null;
    }
    if (persistentCongestion) {
      this.cwnd = this.minimumWindow;
      this.epochStart = null;
      this.recoveryStartTime = null;
      this.inRecovery = false;
    }
  }
}

module.exports = { Cubic };
