'use strict';
/**
 * A dumbbell network: every flow's data crosses one shared bottleneck link (the forward
 * direction); acknowledgements return over a reverse link. Each flow gets a pair of
 * endpoints that implement the lab transport interface.
 *
 *   sender 0 --\                         /--> receiver 0
 *   sender 1 ----> [queue | bottleneck] ----> receiver 1
 *   ...        <------- reverse link <-------
 */

const { Link } = require('./link');
const { SimTransport } = require('./transport');

/**
 * @typedef {object} NetworkConfig
 * @property {number} bandwidthMbps bottleneck rate
 * @property {number} delayMs one-way propagation delay (both directions)
 * @property {object} [queue] bottleneck queue, see sim/link.js
 * @property {number|object} [loss] loss on the bottleneck
 * @property {{probability: number, delayMs: number}} [reorder] reordering on the bottleneck
 * @property {number} [overheadBytes=28] per-datagram bytes below UDP (IPv4 + UDP headers)
 * @property {object} [reverse] reverse link overrides: `{ bandwidthMbps=Infinity, delayMs, loss, queue }`
 */

/**
 * @typedef {object} NetworkObserver
 * @property {(packet: object, reason: string, direction: string) => void} [onDrop]
 * @property {(packet: object, start: number, end: number) => void} [onTransmit] bottleneck only
 * @property {(packet: object) => void} [onArrive] forward direction only
 * @property {(change: object) => void} [onChange] a schedule change was applied
 */

class Network {
  /**
   * @param {import('./simulator').Simulator} sim
   * @param {NetworkConfig} config
   * @param {import('./prng').Prng} rng
   * @param {NetworkObserver} [observer]
   */
  constructor(sim, config, rng, observer = {}) {
    this.sim = sim;
    this.overheadBytes = config.overheadBytes ?? 28;
    this._observer = observer;
    const onDrop = observer.onDrop || (() => {});
    const onArrive = observer.onArrive || (() => {});
    this.forward = new Link(sim, config, rng.fork('forward'), {
      deliver: (packet) => {
        onArrive(packet);
        packet.dst.deliver(packet.payload);
      },
      onDrop: (packet, reason) => onDrop(packet, reason, 'forward'),
      onTransmit: observer.onTransmit,
    });
    const reverse = {
      bandwidthMbps: Infinity,
      delayMs: config.delayMs,
      ...(config.reverse || {}),
    };
    this.reverse = new Link(sim, reverse, rng.fork('reverse'), {
      deliver: (packet) => packet.dst.deliver(packet.payload),
      onDrop: (packet, reason) => onDrop(packet, reason, 'reverse'),
    });
  }

  /**
   * Create the two endpoints of a flow.
   * @param {number} flow flow index, carried on every packet for observers
   * @param {{extraDelayMs?: number}} [options] extra one-way delay for this flow only
   * @returns {{sender: SimTransport, receiver: SimTransport}}
   */
  attachFlow(flow, { extraDelayMs = 0 } = {}) {
    const sim = this.sim;
    const overhead = this.overheadBytes;
    let receiver = null;
    const sender = new SimTransport(sim, (payload) => {
      this.forward.send({
        flow,
        payload,
        size: payload.length + overhead,
        sentAt: sim.now(),
        extraDelayMs,
        dst: receiver,
      });
    });
    receiver = new SimTransport(sim, (payload) => {
      this.reverse.send({
        flow,
        payload,
        size: payload.length + overhead,
        sentAt: sim.now(),
        extraDelayMs,
        dst: sender,
      });
    });
    return { sender, receiver };
  }

  /**
   * Apply a schedule change now. A blackhole applies to both directions; bandwidth, delay
   * and loss changes apply to the bottleneck (forward) link, delay to both.
   * @param {{bandwidthMbps?: number, delayMs?: number, loss?: number|object, blackhole?: boolean}} change
   */
  apply(change) {
    if (change.bandwidthMbps !== undefined) this.forward.setBandwidth(change.bandwidthMbps);
    if (change.delayMs !== undefined) {
      this.forward.setDelay(change.delayMs);
      this.reverse.setDelay(change.delayMs);
    }
    if (change.loss !== undefined) this.forward.setLoss(change.loss);
    if (change.blackhole !== undefined) {
      this.forward.setBlackhole(change.blackhole);
      this.reverse.setBlackhole(change.blackhole);
    }
    if (this._observer.onChange) this._observer.onChange(change);
  }

  /**
   * Schedule a list of changes (see sim/schedule.js).
   * @param {object[]} changes each with `atMs`
   */
  schedule(changes) {
    for (const change of changes) {
      const { atMs, ...rest } = change;
      this.sim.at(atMs, () => this.apply(rest));
    }
  }
}

module.exports = { Network };
