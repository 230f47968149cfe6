'use strict';
/**
 * The lab transport interface over a real Node `dgram` UDP socket, in real time: the clock
 * is performance.now() and the timer is setTimeout. Use it to run the lab's Sender and
 * Receiver across a real network path (or loopback).
 */

const dgram = require('node:dgram');
const { once } = require('node:events');
const { RealTimeTransport } = require('./realtime');

class UdpTransport extends RealTimeTransport {
  /**
   * @param {import('node:dgram').Socket} socket a bound socket; the transport does not own it
   * @param {{address: string, port: number}} peer datagrams go there; others are ignored
   */
  constructor(socket, peer) {
    super(socket, 'message');
    this.socket = socket;
    this.peer = peer;
    this._onSent = (error) => {
      if (error) this.sendErrors++; // e.g. ENOBUFS: just like loss
    };
  }

  /** @param {Buffer} buf */
  send(buf) {
    if (this._closed) return;
    this.socket.send(buf, this.peer.port, this.peer.address, this._onSent);
  }

  _accepts(rinfo) {
    return rinfo.port === this.peer.port && rinfo.address === this.peer.address;
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
