'use strict';
/**
 * A first-in first-out queue of simulated packets that also counts their bytes.
 * Packets are objects with a `size` (bytes on the wire).
 */

class Fifo {
  constructor() {
    this._items = [];
    this._head = 0;
    /** Bytes held. */
    this.bytes = 0;
  }

  /** @returns {number} packets held */
  get length() {
    return this._items.length - this._head;
  }

  /** @param {{size: number}} packet */
  push(packet) {
    this._items.push(packet);
    this.bytes += packet.size;
  }

  /** @returns {{size: number}|undefined} the oldest packet, removed */
  shift() {
    if (this._head === this._items.length) return undefined;
    const packet = this._items[this._head];
    this._items[this._head++] = undefined;
    this.bytes -= packet.size;
    // Compact now and then instead of paying Array#shift on every packet.
    if (this._head >= 1024 && this._head * 2 >= this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
    return packet;
  }
}

module.exports = { Fifo };
