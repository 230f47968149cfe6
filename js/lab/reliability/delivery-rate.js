'use strict';
/**
 * Delivery rate estimation (draft-cheng-iccrg-delivery-rate-estimation, as in Linux's
 * tcp_rate.c): on every acknowledgement, how fast did the network deliver data over the
 * interval ending now? Model-based controllers (BBR) need this; others may ignore it.
 *
 * Each sent packet is stamped with the connection's delivery state at send time; when it
 * is acknowledged, the difference between then and now gives a rate sample. Samples taken
 * while the sender had nothing to send are marked app-limited: they only show a lower
 * bound on the available bandwidth.
 */

class DeliveryRateEstimator {
  constructor() {
    /** Bytes acknowledged so far. */
    this.delivered = 0;
    /** When `delivered` last grew, ms. */
    this.deliveredTime = 0;
    /** Send time of the packet most recently acknowledged, ms. */
    this.firstSentTime = 0;
    /** Non-zero while app-limited: the `delivered` value at which that ends. */
    this.appLimitedUntil = 0;
  }

  /**
   * Stamp a packet being sent.
   * @param {object} packet gets delivered, deliveredTime, firstSentTime, isAppLimited
   * @param {number} now ms
   * @param {number} bytesInFlight before this packet
   */
  onPacketSent(packet, now, bytesInFlight) {
    if (bytesInFlight === 0) {
      this.firstSentTime = now;
      this.deliveredTime = now;
    }
    packet.delivered = this.delivered;
    packet.deliveredTime = this.deliveredTime;
    packet.firstSentTime = this.firstSentTime;
    packet.isAppLimited = this.appLimitedUntil !== 0;
  }

  /**
   * The sender ran out of data with room in its window.
   * @param {number} bytesInFlight
   */
  onAppLimited(bytesInFlight) {
    this.appLimitedUntil = Math.max(this.delivered + bytesInFlight, 1);
  }

  /**
   * Update on acknowledgement and produce a rate sample.
   * @param {object[]} acked newly acknowledged packets, ascending
   * @param {number} now ms
   * @param {number} minRtt ms (Infinity before the first RTT sample)
   * @returns {{deliveryRate: number, delivered: number, interval: number, isAppLimited: boolean,
   *   priorDelivered: number, newlyDelivered: number, valid: boolean}} rate in bytes/s
   */
  onAck(acked, now, minRtt) {
    let prior = null;
    let newlyDelivered = 0;
    for (const packet of acked) {
      this.delivered += packet.size;
      newlyDelivered += packet.size;
      this.deliveredTime = now;
      if (prior === null || packet.delivered >= prior.delivered) {
        prior = packet;
        this.firstSentTime = packet.timeSent;
      }
    }
    if (this.appLimitedUntil !== 0 && this.delivered > this.appLimitedUntil) {
      this.appLimitedUntil = 0;
    }
    const sample = {
      deliveryRate: 0,
      delivered: 0,
      interval: 0,
      isAppLimited: false,
      priorDelivered: 0,
      newlyDelivered,
      valid: false,
    };
    if (prior === null) return sample;
    const sendElapsed = prior.timeSent - prior.firstSentTime;
    const ackElapsed = now - prior.deliveredTime;
    sample.priorDelivered = prior.delivered;
    sample.isAppLimited = prior.isAppLimited;
    sample.delivered = this.delivered - prior.delivered;
    sample.interval = Math.max(sendElapsed, ackElapsed);
    // An interval shorter than the minimum RTT would overestimate the rate (ack
    // compression); the draft discards such samples.
    if (sample.interval > 0 && !(sample.interval < minRtt)) {
      sample.deliveryRate = (sample.delivered * 1000) / sample.interval;
      sample.valid = true;
    }
    return sample;
  }
}

module.exports = { DeliveryRateEstimator };
