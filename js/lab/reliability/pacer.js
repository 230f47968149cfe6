'use strict';
/**
 * A pacer (RFC 9002 section 7.7): a token bucket that refills at the pacing rate and
 * holds at most a small burst, so that a window's worth of packets is spread over the
 * round trip instead of leaving in one burst.
 */

class Pacer {
  /**
   * @param {object} options
   * @param {number} options.packetSize bytes of a full packet
   * @param {number} [options.burstPackets=2] bucket depth in packets (at least)
   * @param {number} [options.granularityMs=0] timer granularity of the transport; the
   *   bucket also holds rate x granularity so that a late timer does not lose sending time
   */
  constructor({ packetSize, burstPackets = 2, granularityMs = 0 }) {
    this.packetSize = packetSize;
    this.burstPackets = burstPackets;
    this.granularityMs = granularityMs;
    this._tokens = packetSize * burstPackets;
    this._lastTime = null;
  }

  _capacity(rate) {
    return Math.max(this.packetSize * this.burstPackets, (rate * this.granularityMs) / 1000);
  }

  _refill(now, rate) {
    if (this._lastTime !== null && now > this._lastTime) {
      this._tokens += ((now - this._lastTime) * rate) / 1000;
    }
    this._lastTime = now;
    const capacity = this._capacity(rate);
    if (this._tokens > capacity) this._tokens = capacity;
  }

  /**
   * @param {number} now ms
   * @param {number} bytes size of the packet to send
   * @param {number} rate bytes per second (Infinity: no pacing)
   * @returns {number} earliest time the packet may leave, ms (now if it may leave now)
   */
  nextSendTime(now, bytes, rate) {
    if (rate === Infinity) return now;
    this._refill(now, rate);
    if (this._tokens >= bytes) return now;
    return now + ((bytes - this._tokens) * 1000) / rate;
  }

  /**
   * @param {number} now ms
   * @param {number} bytes sent
   * @param {number} rate bytes per second
   */
  onPacketSent(now, bytes, rate) {
    if (rate === Infinity) {
      this._lastTime = now;
      return;
    }
    this._refill(now, rate);
    this._tokens -= bytes;
  }
}

module.exports = { Pacer };
