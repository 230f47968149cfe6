'use strict';
/**
 * The lab transport interface over a real Node `dgram` UDP socket, in real time: the clock
 * is performance.now() and the timer is setTimeout. Use it to run the lab's Sender and
 * Receiver across a real network path (or loopback).
 */

const dgram = require('node:dgram');
const { performance } = require('node:perf_hooks');
const { once } = require('node:events');

class UdpTransport {
  /**
   * @param {import('node:dgram').Socket} socket a bound socket; the transport does not own it
   * @param {{address: string, port: number}} peer datagrams go there; others are ignored
   */
  constructor(socket, peer) {
    this.socket = socket;
    this.peer = peer;
    this.timerGranularityMs = 1;
    /** Datagrams the socket refused to send (e.g. ENOBUFS): just like loss. */
    this.sendErrors = 0;
    this._timer = null;
    this._callback = null;
    this._listener = null;
    this._closed = false;
    this._onSent = (error) => {
      if (error) this.sendErrors++;
    };
  }

  /** @param {Buffer} buf */
  send(buf) {
    if (this._closed) return;
    this.socket.send(buf, this.peer.port, this.peer.address, this._onSent);
  }

  /** @param {(buf: Buffer) => void} callback */
  onMessage(callback) {
    if (this._listener) this.socket.off('message', this._listener);
    this._listener = (msg, rinfo) => {
      if (this._closed) return;
      if (rinfo.port !== this.peer.port || rinfo.address !== this.peer.address) return;
      callback(msg);
    };
    this.socket.on('message', this._listener);
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

  /** Stop delivering datagrams and disarm the timer (the socket stays open). */
  close() {
    this._closed = true;
    this.setTimer(null);
    if (this._listener) this.socket.off('message', this._listener);
    this._listener = null;
  }
}

/**
 * Two UDP sockets on one host, each a transport aimed at the other.
 * @param {object} [options]
 * @param {string} [options.host='127.0.0.1']
 * @returns {Promise<{a: UdpTransport, b: UdpTransport, close: () => Promise<void>}>}
 *   `close()` closes both transports and both sockets
 */
async function createUdpPair({ host = '127.0.0.1' } = {}) {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const sockets = [dgram.createSocket(type), dgram.createSocket(type)];
  try {
    await Promise.all(
      sockets.map((socket) => {
        socket.bind(0, host);
        return once(socket, 'listening');
      }),
    );
  } catch (error) {
    for (const socket of sockets) socket.close();
    throw error;
  }
  const [sa, sb] = sockets;
  const a = new UdpTransport(sa, { address: host, port: sb.address().port });
  const b = new UdpTransport(sb, { address: host, port: sa.address().port });
  return {
    a,
    b,
    async close() {
      a.close();
      b.close();
      await Promise.all(sockets.map((socket) => new Promise((resolve) => socket.close(resolve))));
    },
  };
}

module.exports = { UdpTransport, createUdpPair };
