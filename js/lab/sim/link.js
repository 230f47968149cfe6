'use strict';
/**
 * One direction of a simulated link: a queue in front of a transmitter of fixed bandwidth,
 * then a propagation delay. Packets may be lost on the wire (a loss model), held back to
 * arrive out of order (reordering), or dropped at the entrance (a blackhole).
 *
 * A packet is an object `{ size, ... }` where `size` is the bytes it occupies on the wire;
 * the link adds `enqueuedAt`/`dequeuedAt` times and hands it to `deliver` on arrival.
 */

const { DropTailQueue } = require('./queue-droptail');
const { CoDelQueue } = require('./queue-codel');
const { createLossModel } = require('./loss');

/**
 * @typedef {object} LinkConfig
 * @property {number} [bandwidthMbps=Infinity] transmit rate, megabits per second
 * @property {number} [delayMs=0] one-way propagation delay
 * @property {object} [queue] `{ type: 'droptail'|'codel', packets?, bytes?, targetMs?, intervalMs? }`
 * @property {number|object} [loss] loss model, see sim/loss.js
 * @property {{probability: number, delayMs: number}} [reorder] hold a packet back by delayMs
 */

/**
 * @param {object} [config] queue configuration
 * @returns {DropTailQueue|CoDelQueue}
 */
function createQueue(config = {}) {
  const type = config.type || 'droptail';
  if (type === 'droptail') return new DropTailQueue(config);
  if (type === 'codel') return new CoDelQueue(config);
  throw new Error(`unknown queue type: ${type}`);
}

class Link {
  /**
   * @param {import('./simulator').Simulator} sim
   * @param {LinkConfig} config
   * @param {import('./prng').Prng} rng
   * @param {object} hooks
   * @param {(packet: object) => void} hooks.deliver called when a packet arrives
   * @param {(packet: object, reason: string) => void} [hooks.onDrop]
   * @param {(packet: object, start: number, end: number) => void} [hooks.onTransmit]
   */
  constructor(sim, config, rng, hooks) {
    this.sim = sim;
    this.bandwidthMbps = config.bandwidthMbps ?? Infinity;
    this.delayMs = config.delayMs ?? 0;
    this.queue = createQueue(config.queue);
    this._rng = rng;
    this.lossModel = createLossModel(rng.fork('loss'), config.loss);
    this.reorder = config.reorder || null;
    this._reorderRng = rng.fork('reorder');
    this.blackhole = false;
    this._deliver = hooks.deliver;
    this._onDrop = hooks.onDrop || (() => {});
    this._onTransmit = hooks.onTransmit || (() => {});
    this._busy = false;
    this._transmitNext = () => this._startTransmission();
    this._dropOnDequeue = (packet) => this._onDrop(packet, 'aqm');
  }

  /** @param {number} mbps new transmit rate, from the next packet on */
  setBandwidth(mbps) {
    this.bandwidthMbps = mbps;
  }

  /** @param {number} ms new propagation delay, for packets transmitted from now on */
  setDelay(ms) {
    this.delayMs = ms;
  }

  /** @param {number|object} config new loss model */
  setLoss(config) {
    // A fresh stream per change, so earlier changes do not shift later draws.
    this.lossModel = createLossModel(this._rng.fork(`loss@${this.sim.now()}`), config);
  }

  /** @param {boolean} on drop every packet entering the link while on */
  setBlackhole(on) {
    this.blackhole = on;
  }

  /**
   * Offer a packet to the link.
   * @param {{size: number}} packet
   */
  send(packet) {
    if (this.blackhole) {
      this._onDrop(packet, 'blackhole');
      return;
    }
    const now = this.sim.now();
    if (this.bandwidthMbps === Infinity) {
      // No serialisation: no queue can build, go straight onto the wire.
      packet.enqueuedAt = now;
      this._onWire(packet, now, now);
      return;
    }
    if (!this.queue.enqueue(packet, now)) {
      this._onDrop(packet, 'queue_full');
      return;
    }
    if (!this._busy) this._startTransmission();
  }

  _startTransmission() {
    const now = this.sim.now();
    const packet = this.queue.dequeue(now, this._dropOnDequeue);
    if (packet === undefined) {
      this._busy = false;
      return;
    }
    this._busy = true;
    // megabits per second = bits per microsecond = 1000 bits per ms
    const end = now + (packet.size * 8) / (this.bandwidthMbps * 1000);
    this._onWire(packet, now, end);
    this.sim.at(end, this._transmitNext);
  }

  _onWire(packet, start, end) {
    packet.dequeuedAt = start;
    this._onTransmit(packet, start, end);
    if (this.lossModel.lose()) {
      this._onDrop(packet, 'loss');
      return;
    }
    let arrival = end + this.delayMs + (packet.extraDelayMs || 0);
    if (this.reorder && this._reorderRng.chance(this.reorder.probability)) {
      arrival += this.reorder.delayMs;
    }
    this.sim.at(arrival, () => this._deliver(packet));
  }
}

module.exports = { Link, createQueue };
