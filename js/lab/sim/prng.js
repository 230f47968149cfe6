'use strict';
/**
 * Seeded pseudo-random numbers for the simulator (sfc32, seeded through a string hash).
 *
 * The simulator never calls Math.random(): every random choice draws from a Prng that was
 * derived from the scenario's seed. Components take their own stream with fork(label), so
 * that adding a random draw in one component (say, the loss model) does not shift the
 * numbers another component (say, the reordering) sees.
 */

/**
 * Hash a string to four 32-bit words (cyrb128).
 * @param {string} text
 * @returns {number[]} four unsigned 32-bit integers
 */
function hash128(text) {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** A deterministic random stream. Create one with {@link createPrng}. */
class Prng {
  /**
   * @param {string} seed the seed, as text; equal seeds give equal streams
   */
  constructor(seed) {
    this.seed = seed;
    [this._a, this._b, this._c, this._d] = hash128(seed);
    // Discard the first outputs: sfc32 mixes its state during the first few rounds.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** @returns {number} an unsigned 32-bit integer */
  nextUint32() {
    const t = (((this._a + this._b) | 0) + this._d) | 0;
    this._d = (this._d + 1) | 0;
    this._a = this._b ^ (this._b >>> 9);
    this._b = (this._c + (this._c << 3)) | 0;
    this._c = (this._c << 21) | (this._c >>> 11);
    this._c = (this._c + t) | 0;
    return t >>> 0;
  }

  /** @returns {number} a float uniformly distributed in [0, 1) */
  random() {
    return this.nextUint32() / 4294967296;
  }

  /**
   * @param {number} lo
   * @param {number} hi
   * @returns {number} a float uniformly distributed in [lo, hi)
   */
  uniform(lo, hi) {
    return lo + (hi - lo) * this.random();
  }

  /**
   * @param {number} probability
   * @returns {boolean} true with the given probability
   */
  chance(probability) {
    return probability > 0 && this.random() < probability;
  }

  /**
   * An independent stream derived from this one's seed and a label. Forking does not draw
   * from this stream, so the order in which components fork does not matter.
   * @param {string} label names the consumer, e.g. "link/loss"
   * @returns {Prng}
   */
  fork(label) {
    return new Prng(`${this.seed}/${label}`);
  }
}

/**
 * @param {string|number} seed
 * @returns {Prng}
 */
function createPrng(seed) {
  return new Prng(String(seed));
}

module.exports = { Prng, createPrng };
