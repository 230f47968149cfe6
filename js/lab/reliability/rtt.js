'use strict';
/**
 * Round-trip time estimation as in RFC 9002 section 5: minimum, smoothed and variance,
 * with the peer's reported ack delay subtracted when that does not go below the minimum.
 */

const { kInitialRtt } = require('./constants');

class RttEstimator {
  /**
   * @param {object} [options]
   * @param {number} [options.initialRtt=333] ms, assumed until the first sample
   * @param {number} [options.maxAckDelay=25] ms, the peer's promised bound on ack delay
   */
  constructor({ initialRtt = kInitialRtt, maxAckDelay = 25 } = {}) {
    this.maxAckDelay = maxAckDelay;
    /** Most recent sample, ms (0 before the first). */
    this.latestRtt = 0;
    /** Lowest sample seen, ms (Infinity before the first). */
    this.minRtt = Infinity;
    /** Exponentially weighted mean, ms. */
    this.smoothedRtt = initialRtt;
    /** Mean deviation, ms. */
    this.rttVar = initialRtt / 2;
    /** Whether any sample has been taken. */
    this.hasSample = false;
    /** Time of the first sample (for persistent congestion), or null. */
    this.firstSampleTime = null;
  }

  /**
   * Take one RTT sample.
   * @param {number} latestRtt ms, from sending the newest acked packet to receiving its ack
   * @param {number} ackDelay ms, as reported by the peer
   * @param {number} now ms
   */
  update(latestRtt, ackDelay, now) {
    this.latestRtt = latestRtt;
    if (!this.hasSample) {
      this.hasSample = true;
      this.firstSampleTime = now;
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttVar = latestRtt / 2;
      return;
    }
    if (latestRtt < this.minRtt) this.minRtt = latestRtt;
    const delay = Math.min(ackDelay, this.maxAckDelay);
    const adjusted = latestRtt - delay >= this.minRtt ? latestRtt - delay : latestRtt;
    this.rttVar = 0.75 * this.rttVar + 0.25 * Math.abs(this.smoothedRtt - adjusted);
    this.smoothedRtt = 0.875 * this.smoothedRtt + 0.125 * adjusted;
  }
}

module.exports = { RttEstimator };
