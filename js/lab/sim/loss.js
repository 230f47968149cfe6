'use strict';
/**
 * Packet loss models: none, independent random loss, and bursty Gilbert-Elliott loss.
 * Each model answers one question per packet: `lose()` -> boolean.
 */

/** Never loses. */
class NoLoss {
  lose() {
    return false;
  }
}

/** Loses each packet independently with probability `rate`. */
class RandomLoss {
  /**
   * @param {import('./prng').Prng} rng
   * @param {{rate: number}} config
   */
  constructor(rng, { rate }) {
    this.rng = rng;
    this.rate = rate;
  }

  lose() {
    return this.rng.chance(this.rate);
  }
}

/**
 * Gilbert-Elliott two-state loss: a Markov chain with a good and a bad state, each with its
 * own loss probability. Mean burst length is 1/r packets, the mean time in the good state
 * 1/p packets, and the stationary loss rate (p*lossBad + r*lossGood) / (p + r).
 */
class GilbertElliottLoss {
  /**
   * @param {import('./prng').Prng} rng
   * @param {object} config
   * @param {number} config.p probability of moving good -> bad, per packet
   * @param {number} config.r probability of moving bad -> good, per packet
   * @param {number} [config.lossGood=0] loss probability in the good state
   * @param {number} [config.lossBad=1] loss probability in the bad state
   */
  constructor(rng, { p, r, lossGood = 0, lossBad = 1 }) {
    this.rng = rng;
    this.p = p;
    this.r = r;
    this.lossGood = lossGood;
    this.lossBad = lossBad;
    this.bad = false;
  }

  lose() {
    this.bad = this.bad ? !this.rng.chance(this.r) : this.rng.chance(this.p);
    return this.rng.chance(this.bad ? this.lossBad : this.lossGood);
  }
}

/**
 * Build a loss model from its configuration.
 * @param {import('./prng').Prng} rng
 * @param {undefined|null|number|object} config a rate, or {type: 'random', rate} or
 *   {type: 'gilbert-elliott', p, r, lossGood, lossBad}
 */
function createLossModel(rng, config) {
  if (config === undefined || config === null || config === 0) return new NoLoss();
  if (typeof config === 'number') return new RandomLoss(rng, { rate: config });
  switch (config.type) {
    case 'random':
      return new RandomLoss(rng, config);
    case 'gilbert-elliott':
      return new GilbertElliottLoss(rng, config);
    default:
      throw new Error(`unknown loss model: ${config.type}`);
  }
}

module.exports = { NoLoss, RandomLoss, GilbertElliottLoss, createLossModel };
