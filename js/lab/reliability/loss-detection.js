'use strict';
/**
 * Loss detection after RFC 9002 section 6 (one packet number space, every packet
 * ack-eliciting): acknowledgement processing, the packet and time thresholds, the probe
 * timeout (PTO) with exponential backoff, and persistent congestion (section 7.6).
 *
 * It owns the sent-packet log and the bytes in flight. It decides; the sender acts: it
 * tells the sender which packets were acknowledged and which are lost, and when its timer
 * is due.
 */

const C = require('./constants');
const { SentPacketLog } = require('./sent-packets');

class LossDetection {
  /**
   * @param {import('./rtt').RttEstimator} rtt
   */
  constructor(rtt) {
    this.rtt = rtt;
    this.sent = new SentPacketLog();
    this.bytesInFlight = 0;
    this.largestAcked = -1;
    /** Earliest time an unacked packet below largestAcked becomes lost, or null. */
    this.lossTime = null;
    /** Consecutive PTOs without an acknowledgement. */
    this.ptoCount = 0;
    this.timeOfLastAckEliciting = 0;
  }

  /**
   * Record a sent packet.
   * @param {{packetNumber: number, size: number, timeSent: number}} packet
   */
  onPacketSent(packet) {
    this.sent.add(packet);
    this.bytesInFlight += packet.size;
    this.timeOfLastAckEliciting = packet.timeSent;
  }

  /**
   * Process an ACK.
   * @param {{ackDelay: number, ranges: Array<[number, number]>}} ack
   * @param {number} now ms
   * @returns {{acked: object[], lost: object[], rttUpdated: boolean, persistentCongestion: boolean}}
   *   acked and lost packets in ascending packet number order
   */
  onAck(ack, now) {
    const acked = [];
    for (const [smallest, largest] of ack.ranges) this.sent.takeRange(smallest, largest, acked);
    if (acked.length === 0) {
      return { acked, lost: [], rttUpdated: false, persistentCongestion: false };
    }
    acked.reverse();
    const largest = ack.ranges[0][1];
    if (largest > this.largestAcked) this.largestAcked = largest;
    for (const packet of acked) this.bytesInFlight -= packet.size;

    let rttUpdated = false;
    const newest = acked[acked.length - 1];
    if (newest.packetNumber === largest) {
      this.rtt.update(now - newest.timeSent, ack.ackDelay, now);
      rttUpdated = true;
    }
    const lost = this.detectLostPackets(now);
    this.ptoCount = 0;
    return { acked, lost, rttUpdated, persistentCongestion: this._isPersistentCongestion(lost) };
  }

  /**
   * Declare lost every unacked packet below the largest acked one that is too old
   * (time threshold) or too far behind (packet threshold), and work out lossTime.
   * @param {number} now ms
   * @returns {object[]} lost packets, ascending, removed from flight, each with `lossTrigger`
   */
  detectLostPackets(now) {
    this.lossTime = null;
    const lost = [];
    if (this.largestAcked < 0) return lost;
    const rtt = this.rtt;
    const lossDelay = Math.max(
      C.kTimeThreshold * Math.max(rtt.latestRtt, rtt.smoothedRtt),
      C.kGranularity,
    );
    const largestAcked = this.largestAcked;
    this.sent.forEachUpTo(largestAcked, (packet) => {
      if (largestAcked >= packet.packetNumber + C.kPacketThreshold) {
        packet.lossTrigger = 'reordering_threshold';
      } else if (packet.timeSent + lossDelay <= now) {
        // Written this way round (not timeSent <= now - lossDelay) so that the comparison
        // agrees exactly with lossTime below, whatever the floating-point rounding.
        packet.lossTrigger = 'time_threshold';
      } else {
        const at = packet.timeSent + lossDelay;
        if (this.lossTime === null || at < this.lossTime) this.lossTime = at;
        return;
      }
      lost.push(packet);
    });
    for (const packet of lost) {
      this.sent.remove(packet.packetNumber);
      this.bytesInFlight -= packet.size;
    }
    return lost;
  }

  /** @returns {number} the current probe timeout period, ms, with backoff */
  ptoPeriod() {
    const rtt = this.rtt;
    const base = rtt.smoothedRtt + Math.max(4 * rtt.rttVar, C.kGranularity) + rtt.maxAckDelay;
    return base * 2 ** this.ptoCount;
  }

  /** @returns {number|null} when onTimeout should run, ms, or null if nothing is pending */
  deadline() {
    if (this.lossTime !== null) return this.lossTime;
    if (this.sent.count === 0) return null;
    return this.timeOfLastAckEliciting + this.ptoPeriod();
  }

  /**
   * The timer fired: either the time threshold expired (packets are lost) or the PTO did
   * (the sender must send probes).
   * @param {number} now ms
   * @returns {{lost: object[], probe: boolean}}
   */
  onTimeout(now) {
    if (this.lossTime !== null) {
      return { lost: this.detectLostPackets(now), probe: false };
    }
    this.ptoCount++;
    return { lost: [], probe: true };
  }

  /**
   * RFC 9002 7.6.2: persistent congestion if, among packets sent after the first RTT
   * sample, a run of consecutive packet numbers all lost spans more than
   * kPersistentCongestionThreshold PTO periods (without backoff).
   */
  _isPersistentCongestion(lost) {
    if (lost.length < 2 || this.rtt.firstSampleTime === null) return false;
    const rtt = this.rtt;
    const duration =
      (rtt.smoothedRtt + Math.max(4 * rtt.rttVar, C.kGranularity) + rtt.maxAckDelay) *
      C.kPersistentCongestionThreshold;
    let runStart = null;
    let previous = null;
    for (const packet of lost) {
      if (packet.timeSent <= rtt.firstSampleTime) {
        runStart = null;
        previous = null;
        continue;
      }
      if (previous === null || packet.packetNumber !== previous.packetNumber + 1) runStart = packet;
      if (packet.timeSent - runStart.timeSent > duration) return true;
      previous = packet;
    }
    return false;
  }
}

module.exports = { LossDetection };
