'use strict';
/**
 * Real mode: carry a buffer from a Sender to a Receiver over two real UDP sockets, in real
 * time, and hand back what arrived. The same Sender and Receiver classes as in the
 * simulator; only the transport differs.
 */

const { Sender } = require('../reliability/sender');
const { Receiver } = require('../reliability/receiver');
const { createUdpPair } = require('../transport/udp');

/**
 * @param {object} options
 * @param {Buffer} options.data bytes to send
 * @param {string} [options.controller='cubic'] a registered controller name
 * @param {string} [options.host='127.0.0.1']
 * @param {number} [options.timeoutMs=10000] give up (reject) after this long
 * @returns {Promise<{received: Buffer, elapsedMs: number, sender: object, receiver: object}>}
 *   received bytes, wall time, and both endpoints' counters
 */
async function runUdpTransfer({ data, controller = 'cubic', host = '127.0.0.1', timeoutMs = 10000 }) {
  const pair = await createUdpPair({ host });
  const sender = new Sender({ transport: pair.a, controller, data });
  const receiver = new Receiver({ transport: pair.b, collect: true });
  let timer = null;
  try {
    const started = pair.a.now();
    await new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        const error = new Error(
          `UDP transfer did not complete in ${timeoutMs} ms (${receiver.stats.bytesDelivered} of ${data.length} bytes delivered)`,
        );
        error.code = 'ERR_LAB_TIMEOUT';
        reject(error);
      }, timeoutMs);
      sender.once('complete', resolve);
      sender.start();
    });
    return {
      received: receiver.data(),
      elapsedMs: pair.a.now() - started,
      sender: { ...sender.stats, sendErrors: pair.a.sendErrors },
      receiver: { ...receiver.stats },
    };
  } finally {
    clearTimeout(timer);
    sender.stop();
    receiver.close();
    await pair.close();
  }
}

module.exports = { runUdpTransfer };
