'use strict';
/**
 * Named link configurations a scenario can start from (`"link": { "preset": "interop" }`),
 * overriding any field.
 */

const PRESETS = Object.freeze({
  /** The QUIC interop runner's ns-3 link: 10 Mbit/s, 15 ms each way, 25-packet queue. */
  interop: {
    bandwidthMbps: 10,
    delayMs: 15,
    queue: { type: 'droptail', packets: 25 },
  },
  /** The interop link with a 1000-packet queue (about one second of bufferbloat). */
  'deep-buffer': {
    bandwidthMbps: 10,
    delayMs: 15,
    queue: { type: 'droptail', packets: 1000 },
  },
  /** An intercontinental or satellite-like path: 300 ms RTT, 20 Mbit/s, a one-BDP queue. */
  'long-rtt': {
    bandwidthMbps: 20,
    delayMs: 150,
    queue: { type: 'droptail', bytes: 750000 },
  },
  /**
   * The interop link with bursty loss: Gilbert-Elliott with a mean burst of 4 packets and
   * about 2.4 % loss overall (1 in 200 in the good state, half in the bad one).
   */
  lossy: {
    bandwidthMbps: 10,
    delayMs: 15,
    queue: { type: 'droptail', packets: 25 },
    loss: { type: 'gilbert-elliott', p: 0.01, r: 0.25, lossGood: 0.005, lossBad: 0.5 },
  },
  /**
   * A cellular-like link: the bandwidth wanders between 2 and 30 Mbit/s every 200 ms (a
   * seeded random walk), 40 ms each way, and a deep queue as cellular base stations have.
   */
  cellular: {
    bandwidthMbps: 12,
    delayMs: 40,
    queue: { type: 'droptail', packets: 400 },
    variableBandwidth: { intervalMs: 200, minMbps: 2, maxMbps: 30, stepMbps: 4 },
  },
});

module.exports = { PRESETS };
