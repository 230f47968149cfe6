'use strict';
/**
 * The lab transport interface over a real MinimaLT tunnel: a connection's unreliable
 * datagram channel (`socket.sendDatagram()` / 'datagram'), through the Node module and its
 * Python bridge. The datagrams are encrypted and carried in the tunnel's packets; nothing is
 * retransmitted or reordered for them, so the lab's Sender and Receiver do their own
 * reliability and congestion control on top, in real time (performance.now(), setTimeout).
 *
 * A datagram carries at most `maxDatagramSize` bytes (1100 with the default 1200-byte
 * path): give that to the Sender as its `maxDatagramSize`.
 */

const { RealTimeTransport } = require('./realtime');
const { once } = require('node:events');

/** The Node module, loaded on first use so the simulator never needs the bridge. */
function minimalt() {
  return require('../../index');
}

class MinimaltTransport extends RealTimeTransport {
  /**
   * @param {import('../../socket').Socket} socket an open minimalt connection; the
   *   transport does not own it
   */
  constructor(socket) {
    super(socket, 'datagram');
    this.socket = socket;
    /** Largest datagram `send` takes (bytes). */
    this.maxDatagramSize = socket.maxDatagramSize;
  }

  /** @param {Buffer} buf */
  send(buf) {
    if (this._closed) return;
    // Dropped before leaving (socket closed, or the bridge pipe congested): counted as loss.
    if (!this.socket.sendDatagram(buf)) this.sendErrors++;
  }
}

/**
 * A minimalt server and a connection to it on one host, each end a transport aimed at the
 * other (both tunnel ends run in this process's bridge child). With `link`, the tunnel
 * crosses the link emulator (`python -m minimalt.testing.link`, a child process): the server
 * advertises the relay's address in its record, so the client's packets go through it.
 * @param {object} [options]
 * @param {string} [options.service='lab']
 * @param {string} [options.host='127.0.0.1']
 * @param {object} [options.link] emulator settings, each the text of its flag: `delay`
 *   (one way, '20ms'), `jitter`, `loss` ('2%'), `burst`, `gilbert`, `reorder`, `reorderGap`,
 *   `duplicate`, `corrupt`, `rate` ('10mbit'), `queue` ('64k'), `blackhole` ('5s/2s'),
 *   `seed`, `loop`; 'X' applies both ways, 'UP:DOWN' is client-to-server then back
 * @param {number} [options.timeoutMs=10000] give up opening after this long
 * @returns {Promise<{a: MinimaltTransport, b: MinimaltTransport, relay: object|null,
 *   close: () => Promise<void>}>} `a` is the client end, `b` the server end; `relay` is
 *   `{ pid, address }` of the emulator (null without `link`); `close()` closes both ends,
 *   the server and the relay
 */
async function createMinimaltPair({ service = 'lab', host = '127.0.0.1', link = null, timeoutMs = 10000 } = {}) {
  const mlt = minimalt();
  const signal = AbortSignal.timeout(timeoutMs);
  const { server, relay } =
    link === null
      ? { server: await listen(mlt, { service, host, signal }), relay: null }
      : await listenBehindLink(mlt, { service, host, link, signal });
  let client = null;
  try {
    const accepted = once(server, 'connection', { signal });
    client = mlt.connect({ record: server.record(), service, retrySafe: true });
    client.write('lab'); // opens the connection at the server
    const [[serverSide]] = await Promise.all([accepted, once(client, 'connect', { signal })]);
    serverSide.resume(); // the stream carries nothing more; datagrams do the work
    const a = new MinimaltTransport(client);
    const b = new MinimaltTransport(serverSide);
    return {
      a,
      b,
      relay: relay === null ? null : { pid: relay.pid, address: relay.address },
      async close() {
        a.close();
        b.close();
        const closed = new Promise((resolve) => server.close(resolve));
        client.destroy();
        serverSide.destroy();
        try {
          await closed;
        } finally {
          if (relay !== null) await relay.close();
        }
      },
    };
  } catch (error) {
    if (client !== null) client.destroy();
    server.close();
    if (relay !== null) await relay.close();
    throw error;
  }
}

/** A listening minimalt server (closed again if it fails to listen). */
async function listen(mlt, { service, host, signal, advertise }) {
  const server = mlt.createServer({ service, advertise });
  server.listen(0, host);
  try {
    await once(server, 'listening', { signal });
    return server;
  } catch (error) {
    server.close();
    throw error;
  }
}

/**
 * A server whose record names the relay, and the relay in front of it. The record is signed
 * when the server listens, so the relay's port comes first: pick a free one, advertise it,
 * then start the relay on it aimed at the server; if another process took the port
 * meanwhile, start over with a new one.
 */
async function listenBehindLink(mlt, { service, host, link, signal }) {
  const { LinkEmulator, linkArgs, pickUdpPort } = require('./link-emulator');
  linkArgs(link); // a bad option is a TypeError now, not a failed child later
  for (let attempt = 1; ; attempt++) {
    const relayPort = await pickUdpPort(host);
    const server = await listen(mlt, { service, host, signal, advertise: { host, port: relayPort } });
    try {
      const python = mlt.bridgeInfo()?.python ?? mlt.findPython();
      const relay = await LinkEmulator.start({
        python,
        target: { host, port: server.address().port },
        listen: { host, port: relayPort },
        link,
      });
      return { server, relay };
    } catch (error) {
      server.close();
      if (error.code !== 'EADDRINUSE' || attempt === 3) throw error;
    }
  }
}

/**
 * Real mode over a real tunnel: carry a buffer from a Sender to a Receiver over a minimalt
 * connection's datagram channel on loopback (through the link emulator with `link`), and
 * hand back what arrived.
 * @param {object} options
 * @param {Buffer} options.data bytes to send
 * @param {string} [options.controller='cubic'] a registered controller name
 * @param {object} [options.link] link emulator settings (see createMinimaltPair)
 * @param {number} [options.timeoutMs=10000] give up (reject) after this long
 * @returns {Promise<{received: Buffer, elapsedMs: number, sender: object, receiver: object,
 *   relay: object|null}>} `sender` has the Sender's counters, `sendErrors` and `rttMs`
 *   ({ min, smoothed, latest }, the sender's estimates at the end)
 */
async function runMinimaltTransfer({ data, controller = 'cubic', link = null, timeoutMs = 10000 }) {
  const { Sender } = require('../reliability/sender');
  const { Receiver } = require('../reliability/receiver');
  const pair = await createMinimaltPair({ link, timeoutMs });
  let sender = null;
  let receiver = null;
  let timer = null;
  try {
    sender = new Sender({ transport: pair.a, controller, data, maxDatagramSize: pair.a.maxDatagramSize });
    receiver = new Receiver({ transport: pair.b, collect: true });
    const started = pair.a.now();
    await new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        const error = new Error(
          `minimalt transfer did not complete in ${timeoutMs} ms (${receiver.stats.bytesDelivered} of ${data.length} bytes delivered)`,
        );
        error.code = 'ERR_LAB_TIMEOUT';
        reject(error);
      }, timeoutMs);
      sender.once('complete', resolve);
      sender.start();
    });
    const { rtt } = sender;
    return {
      received: receiver.data(),
      elapsedMs: pair.a.now() - started,
      sender: {
        ...sender.stats,
        sendErrors: pair.a.sendErrors,
        rttMs: { min: rtt.minRtt, smoothed: rtt.smoothedRtt, latest: rtt.latestRtt },
      },
      receiver: { ...receiver.stats },
      relay: pair.relay,
    };
  } finally {
    clearTimeout(timer);
    if (sender !== null) sender.stop();
    if (receiver !== null) receiver.close();
    await pair.close();
  }
}

module.exports = { MinimaltTransport, createMinimaltPair, runMinimaltTransfer };
