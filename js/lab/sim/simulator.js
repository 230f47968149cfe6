'use strict';
/**
 * The discrete-event simulator: a virtual clock and a queue of timed callbacks.
 *
 * Time is in milliseconds (a float) and only moves when an event runs. Nothing here reads
 * the wall clock, so a run takes as long as its events take to compute, not as long as the
 * simulated time says.
 */

const { EventQueue } = require('./event-queue');

class Simulator {
  constructor() {
    this._now = 0;
    this._queue = new EventQueue();
    /** Number of events run so far (for benchmarks and progress). */
    this.eventsRun = 0;
  }

  /** @returns {number} the virtual time, in ms */
  now() {
    return this._now;
  }

  /**
   * Schedule `fn` at absolute virtual time `time` (clamped to now).
   * @param {number} time ms
   * @param {Function} fn called with no arguments
   * @returns {object} a handle for {@link Simulator#cancel}
   */
  at(time, fn) {
    return this._queue.push(time < this._now ? this._now : time, fn);
  }

  /**
   * Schedule `fn` after `delay` ms.
   * @param {number} delay
   * @param {Function} fn
   * @returns {object} a handle for {@link Simulator#cancel}
   */
  after(delay, fn) {
    return this.at(this._now + delay, fn);
  }

  /**
   * Cancel a scheduled event; cancelling twice or after it ran is harmless.
   * @param {object} handle
   */
  cancel(handle) {
    if (handle) handle.cancelled = true;
  }

  /**
   * Run every event due at or before `time`, then set the clock to `time`.
   * @param {number} time ms
   */
  runUntil(time) {
    const queue = this._queue;
    for (;;) {
      const next = queue.peek();
      if (next === undefined || next.time > time) break;
      queue.pop();
      if (next.cancelled) continue;
      this._now = next.time;
      this.eventsRun++;
      next.fn();
    }
    if (time > this._now) this._now = time;
  }

  /**
   * Run events until `done()` returns true or the queue empties or `limit` ms is reached.
   * @param {() => boolean} done checked after every event
   * @param {number} [limit=Infinity] ms
   * @returns {boolean} whether done() became true
   */
  runWhile(done, limit = Infinity) {
    const queue = this._queue;
    while (!done()) {
      const next = queue.peek();
      if (next === undefined || next.time > limit) return false;
      queue.pop();
      if (next.cancelled) continue;
      this._now = next.time;
      this.eventsRun++;
      next.fn();
    }
    return true;
  }
}

module.exports = { Simulator };
