'use strict';
/**
 * The transport interface the lab's Sender and Receiver run over: an unreliable,
 * unordered datagram channel to one peer, plus a clock and one timer.
 *
 *   send(buf)              send one datagram (it may be lost, duplicated or reordered)
 *   onMessage(callback)    callback(buf) for every datagram from the peer
 *   now()                  monotonic time in milliseconds (a float)
 *   setTimer(at, callback) arm the endpoint's single timer for absolute time `at` (ms,
 *                          same clock as now()), replacing any earlier one; at = null
 *                          disarms it
 *   close()                (optional) stop delivering and disarm the timer
 *   timerGranularityMs     (optional) how late a timer may fire; the pacer keeps that much
 *                          rate x time as burst allowance (0 in the simulator, 1 on Node)
 *
 * Implementations: sim/transport.js (virtual clock, simulated network),
 * transport/udp.js (a Node dgram socket), and any real datagram channel with these five
 * members, such as a MinimaLT tunnel's unreliable channel through the bridge.
 */

const REQUIRED = ['send', 'onMessage', 'now', 'setTimer'];

/**
 * Check that an object implements the transport interface.
 * @param {object} transport
 * @returns {object} the same object
 * @throws {TypeError} naming the missing members
 */
function assertTransport(transport) {
  const missing = REQUIRED.filter((name) => typeof transport?.[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`not a lab transport: missing ${missing.join(', ')}`);
  }
  return transport;
}

module.exports = { assertTransport };
