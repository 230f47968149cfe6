'use strict';
/**
 * What the lab's real-time transports share: the wall clock (performance.now()), one
 * setTimeout-based timer, and a message listener on an event emitter that `close()` removes.
 * Subclasses implement `send(buf)` and say which event carries messages and which to keep.
 */

const { performance } = require('node:perf_hooks');

class RealTimeTransport {
  /**
   * @param {import('node:events').EventEmitter} source emits `event` for each datagram
   * @param {string} event 'message' (dgram) or 'datagram' (minimalt socket)
   */
  constructor(source, event) {
    this._source = source;
    this._event = event;
    this.timerGranularityMs = 1;
    /** Datagrams that could not be sent: counted, and treated like loss. */
    this.sendErrors = 0;
    this._timer = null;
    this._callback = null;
    this._listener = null;
    this._closed = false;
  }

  /**
   * Whether a received datagram is for this transport (default: all are).
   * @param {...any} args the event's arguments after the buffer
   */
  _accepts(..._args) {
    return true;
  }

  /** @param {(buf: Buffer) => void} callback */
  onMessage(callback) {
    if (this._listener) this._source.off(this._event, this._listener);
    this._listener = (buf, ...rest) => {
      if (!this._closed && this._accepts(...rest)) callback(buf);
    };
    this._source.on(this._event, this._listener);
  }

  /** @returns {number} ms */
  now() {
    return performance.now();
  }

  /**
   * @param {number|null} at absolute time in ms (performance.now() clock), null to disarm
   * @param {() => void} callback
   */
  setTimer(at, callback) {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (at === null || this._closed) return;
    this._callback = callback;
    this._timer = setTimeout(() => {
      this._timer = null;
      this._callback();
    }, Math.max(0, at - this.now()));
  }

  /** Stop delivering datagrams and disarm the timer (the underlying socket stays open). */
  close() {
    this._closed = true;
    this.setTimer(null);
    if (this._listener) this._source.off(this._event, this._listener);
    this._listener = null;
  }
}

module.exports = { RealTimeTransport };
