'use strict';
/**
 * Drop-tail queue: accept while there is room, drop arrivals when full.
 * The limit is in packets or in bytes, whichever the configuration gives.
 */

const { Fifo } = require('./fifo');

class DropTailQueue {
  /**
   * @param {object} config
   * @param {number} [config.packets] capacity in packets
   * @param {number} [config.bytes] capacity in bytes
   */
  constructor({ packets = Infinity, bytes = Infinity } = {}) {
    this.limitPackets = packets;
    this.limitBytes = bytes;
    this._fifo = new Fifo();
  }

  get length() {
    return this._fifo.length;
  }

  get bytes() {
    return this._fifo.bytes;
  }

  /**
   * @param {{size: number, enqueuedAt: number}} packet
   * @param {number} now ms
   * @returns {boolean} false if the packet was dropped
   */
  enqueue(packet, now) {
    if (this._fifo.length + 1 > this.limitPackets) return false;
    if (this._fifo.bytes + packet.size > this.limitBytes) return false;
    packet.enqueuedAt = now;
    this._fifo.push(packet);
    return true;
  }

  /**
   * @param {number} _now ms
   * @param {(packet: object) => void} _drop unused: drop-tail never drops on dequeue
   * @returns {object|undefined} the next packet to transmit
   */
  dequeue(_now, _drop) {
    return this._fifo.shift();
  }
}

module.exports = { DropTailQueue };
