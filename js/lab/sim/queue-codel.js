'use strict';
/**
 * CoDel active queue management (RFC 8289), on top of a byte- or packet-limited FIFO.
 *
 * CoDel watches each packet's sojourn time (time spent queued). Once the sojourn time has
 * stayed above `target` for a whole `interval`, it drops at dequeue, at a rate that grows
 * with the square root of the number of drops, until the sojourn time falls below target.
 * The code follows the pseudocode in RFC 8289 section 5.
 */

const { DropTailQueue } = require('./queue-droptail');

/** A drop-tail queue (its hard limits and enqueue) that also drops at dequeue, CoDel's way. */
class CoDelQueue extends DropTailQueue {
  /**
   * @param {object} config
   * @param {number} [config.packets] hard capacity in packets (tail drop beyond it)
   * @param {number} [config.bytes] hard capacity in bytes
   * @param {number} [config.targetMs=5] acceptable standing queue delay
   * @param {number} [config.intervalMs=100] window over which the delay must exceed target
   * @param {number} [config.mtu=1500] bytes; below one MTU queued, never drop
   */
  constructor({ packets = Infinity, bytes = Infinity, targetMs = 5, intervalMs = 100, mtu = 1500 } = {}) {
    super({ packets, bytes });
    this.target = targetMs;
    this.interval = intervalMs;
    this.mtu = mtu;
    this._firstAboveTime = 0;
    this._dropNext = 0;
    this._count = 0;
    this._lastCount = 0;
    this._dropping = false;
  }

  /**
   * @param {number} now ms
   * @param {(packet: object) => void} drop called for each packet CoDel drops
   * @returns {object|undefined} the next packet to transmit
   */
  dequeue(now, drop) {
    let r = this._doDequeue(now);
    if (this._dropping) {
      if (!r.okToDrop) {
        this._dropping = false;
      }
      while (this._dropping && now >= this._dropNext) {
        drop(r.packet);
        this._count++;
        r = this._doDequeue(now);
        if (!r.okToDrop) {
          this._dropping = false;
        } else {
          this._dropNext = this._controlLaw(this._dropNext, this._count);
        }
      }
    } else if (r.okToDrop) {
      drop(r.packet);
      r = this._doDequeue(now);
      this._dropping = true;
      // Resume near the previous drop rate if we were dropping recently.
      const delta = this._count - this._lastCount;
      this._count = delta > 1 && now - this._dropNext < 16 * this.interval ? delta : 1;
      this._dropNext = this._controlLaw(now, this._count);
      this._lastCount = this._count;
    }
    return r.packet;
  }

  _doDequeue(now) {
    const packet = this._fifo.shift();
    if (packet === undefined) {
      this._firstAboveTime = 0;
      return { packet, okToDrop: false };
    }
    const sojourn = now - packet.enqueuedAt;
    let okToDrop = false;
    if (sojourn < this.target || this._fifo.bytes <= this.mtu) {
      this._firstAboveTime = 0;
    } else if (this._firstAboveTime === 0) {
      this._firstAboveTime = now + this.interval;
    } else if (now >= this._firstAboveTime) {
      okToDrop = true;
    }
    return { packet, okToDrop };
  }

  _controlLaw(t, count) {
    return t + this.interval / Math.sqrt(count);
  }
}

module.exports = { CoDelQueue };
