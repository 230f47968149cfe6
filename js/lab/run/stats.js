'use strict';
/**
 * Small statistics helpers for summaries: percentiles, means, Jain's fairness index.
 */

/**
 * Nearest-rank percentile.
 * @param {number[]|Float64Array} sorted ascending values
 * @param {number} p in [0, 100]
 * @returns {number|null} null for no values
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * @param {number[]} values
 * @returns {{count: number, min: number|null, mean: number|null, p50: number|null,
 *   p95: number|null, p99: number|null, max: number|null}} rounded to microseconds
 */
function describe(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (x) => (x === null ? null : round(x, 3));
  return {
    count: sorted.length,
    min: r(sorted.length ? sorted[0] : null),
    mean: r(sorted.length ? sum / sorted.length : null),
    p50: r(percentile(sorted, 50)),
    p95: r(percentile(sorted, 95)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

/**
 * Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 when all equal, 1/n when one flow
 * takes everything.
 * @param {number[]} xs throughputs
 * @returns {number|null}
 */
function jainIndex(xs) {
  if (xs.length === 0) return null;
  let sum = 0;
  let squares = 0;
  for (const x of xs) {
    sum += x;
    squares += x * x;
  }
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares);
}

/**
 * @param {number} x
 * @param {number} digits after the decimal point
 */
function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

module.exports = { percentile, describe, jainIndex, round };
