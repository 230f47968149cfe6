'use strict';
/**
 * The simulator's implementation of the lab transport interface (see ../transport.js):
 * datagrams go into the simulated network, time is the simulator's virtual clock.
 */

class SimTransport {
  /**
   * @param {import('./simulator').Simulator} sim
   * @param {(buf: Buffer) => void} outbound hands a datagram to the network
   */
  constructor(sim, outbound) {
    this._sim = sim;
    this._outbound = outbound;
    this._onMessage = null;
    this._timer = null;
    this._timerCallback = null;
    this._fire = this._fire.bind(this);
    this._closed = false;
    /** Timers fire exactly on time in the simulator. */
    this.timerGranularityMs = 0;
  }

  /** @param {Buffer} buf one datagram */
  send(buf) {
    if (!this._closed) this._outbound(buf);
  }

  /** @param {(buf: Buffer) => void} callback called for each arriving datagram */
  onMessage(callback) {
    this._onMessage = callback;
  }

  /** @returns {number} virtual time in ms */
  now() {
    return this._sim.now();
  }

  /**
   * Arm this endpoint's single timer, replacing any earlier one.
   * @param {number|null} at absolute time in ms, or null to disarm
   * @param {() => void} callback
   */
  setTimer(at, callback) {
    this._timerCallback = callback;
    const pending = this._timer;
    // Re-arming for the same instant is common (every ack re-arms); keep the event.
    if (pending !== null && at !== null && pending.time === at) return;
    if (pending !== null) this._sim.cancel(pending);
    this._timer = null;
    if (at === null || this._closed) return;
    this._timer = this._sim.at(at, this._fire);
  }

  _fire() {
    this._timer = null;
    this._timerCallback();
  }

  /** Stop delivering datagrams and firing the timer. */
  close() {
    this._closed = true;
    this.setTimer(null);
  }

  /** @param {Buffer} buf called by the network when a datagram arrives */
  deliver(buf) {
    if (!this._closed && this._onMessage !== null) this._onMessage(buf);
  }
}

module.exports = { SimTransport };
