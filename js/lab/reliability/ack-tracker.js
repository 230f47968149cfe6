'use strict';
/**
 * The receiver's acknowledgement policy (RFC 9000 section 13.2): remember which packet
 * numbers arrived, acknowledge every second packet, at once on reordering or a gap, and
 * otherwise within max_ack_delay.
 */

const C = require('./constants');
const { RangeSet } = require('./ranges');

/** Ranges remembered; older ones are forgotten (the sender has long since decided). */
const MAX_REMEMBERED_RANGES = 256;

class AckTracker {
  /**
   * @param {object} [options]
   * @param {number} [options.maxAckDelay=25] ms
   * @param {number} [options.ackElicitingThreshold=2] packets per acknowledgement
   * @param {number} [options.maxAckRanges=32] ranges per ACK
   */
  constructor({
    maxAckDelay = C.maxAckDelay,
    ackElicitingThreshold = C.ackElicitingThreshold,
    maxAckRanges = C.maxAckRanges,
  } = {}) {
    this.maxAckDelay = maxAckDelay;
    this.ackElicitingThreshold = ackElicitingThreshold;
    this.maxAckRanges = maxAckRanges;
    this.received = new RangeSet();
    this.largest = -1;
    this.largestTime = 0;
    this._unacked = 0;
    /** When an acknowledgement is due at the latest, or null if none is owed. */
    this.ackDeadline = null;
  }

  /**
   * Record an arriving packet.
   * @param {number} packetNumber
   * @param {number} now ms
   * @returns {boolean} true if an ACK should be sent at once
   */
  onPacket(packetNumber, now) {
    const duplicate = this.received.has(packetNumber);
    const reordered = packetNumber < this.largest;
    const gap = this.largest >= 0 && packetNumber > this.largest + 1;
    this.received.add(packetNumber, packetNumber + 1);
    this.received.keepHighest(MAX_REMEMBERED_RANGES);
    if (packetNumber > this.largest) {
      this.largest = packetNumber;
      this.largestTime = now;
    }
    this._unacked++;
    if (duplicate || reordered || gap || this._unacked >= this.ackElicitingThreshold) return true;
    if (this.ackDeadline === null) this.ackDeadline = now + this.maxAckDelay;
    return false;
  }

  /**
   * Build the ACK content and mark everything acknowledged.
   * @param {number} now ms
   * @returns {{ackDelay: number, ranges: Array<[number, number]>}} inclusive ranges, newest first
   */
  takeAck(now) {
    const ranges = [];
    const all = this.received.ranges;
    for (let i = all.length - 1; i >= 0 && ranges.length < this.maxAckRanges; i--) {
      ranges.push([all[i][0], all[i][1] - 1]);
    }
    this._unacked = 0;
    this.ackDeadline = null;
    return { ackDelay: now - this.largestTime, ranges };
  }
}

module.exports = { AckTracker };
