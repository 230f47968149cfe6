'use strict';
/**
 * The sender's record of packets in flight, indexed by packet number.
 *
 * Packet numbers are dense (every number is used, in order), so the log is an array offset
 * by the oldest number still held: lookups and range walks cost no hashing, and the front
 * is trimmed as the oldest packets are acknowledged or declared lost.
 */

class SentPacketLog {
  constructor() {
    this._slots = [];
    /** Packet number of _slots[0]. */
    this._base = 0;
    /** Index of the first occupied slot (or _slots.length). */
    this._head = 0;
    /** Packets held. */
    this.count = 0;
  }

  /** @returns {number} packet number the next added packet must have */
  get nextPacketNumber() {
    return this._base + this._slots.length;
  }

  /**
   * @param {{packetNumber: number}} packet numbered {@link SentPacketLog#nextPacketNumber}
   */
  add(packet) {
    if (packet.packetNumber !== this.nextPacketNumber) {
      throw new Error(`packet ${packet.packetNumber} added out of order`);
    }
    this._slots.push(packet);
    this.count++;
  }

  /**
   * @param {number} packetNumber
   * @returns {object|undefined} the packet, if still held
   */
  get(packetNumber) {
    const i = packetNumber - this._base;
    return i >= this._head && i < this._slots.length ? this._slots[i] : undefined;
  }

  /**
   * Remove and return a packet.
   * @param {number} packetNumber
   * @returns {object|undefined}
   */
  remove(packetNumber) {
    const i = packetNumber - this._base;
    if (i < this._head || i >= this._slots.length) return undefined;
    const packet = this._slots[i];
    if (packet === undefined) return undefined;
    this._slots[i] = undefined;
    this.count--;
    if (i === this._head) this._trim();
    return packet;
  }

  /** @returns {object|undefined} the oldest packet held */
  oldest() {
    return this._slots[this._head];
  }

  /**
   * Remove every held packet numbered in [smallest, largest] and push it to `out`,
   * highest number first.
   * @param {number} smallest
   * @param {number} largest
   * @param {object[]} out
   */
  takeRange(smallest, largest, out) {
    const lo = Math.max(smallest - this._base, this._head);
    const hi = Math.min(largest - this._base, this._slots.length - 1);
    for (let i = hi; i >= lo; i--) {
      const packet = this._slots[i];
      if (packet === undefined) continue;
      this._slots[i] = undefined;
      this.count--;
      out.push(packet);
    }
    if (lo === this._head) this._trim();
  }

  /**
   * Call fn for each held packet numbered <= largest, oldest first. fn may remove the
   * packet it is given.
   * @param {number} largest
   * @param {(packet: object) => void} fn
   */
  forEachUpTo(largest, fn) {
    const hi = Math.min(largest - this._base, this._slots.length - 1);
    for (let i = this._head; i <= hi; i++) {
      const packet = this._slots[i];
      if (packet !== undefined) fn(packet);
    }
  }

  _trim() {
    const slots = this._slots;
    while (this._head < slots.length && slots[this._head] === undefined) this._head++;
    if (this._head >= 4096 && this._head * 2 >= slots.length) {
      this._slots = slots.slice(this._head);
      this._base += this._head;
      this._head = 0;
    }
  }
}

module.exports = { SentPacketLog };
