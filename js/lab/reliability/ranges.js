'use strict';
/**
 * A set of integers kept as sorted, disjoint, non-adjacent half-open ranges [start, end).
 *
 * Used for packet numbers a receiver has seen, stream bytes acknowledged or to be resent,
 * and stream bytes received out of order. Appending just above the highest range (the
 * common case) is O(1); other updates are a binary search and a splice.
 */

class RangeSet {
  constructor() {
    /** @type {Array<[number, number]>} ascending */
    this.ranges = [];
  }

  /** @returns {number} number of disjoint ranges */
  get length() {
    return this.ranges.length;
  }

  /** @returns {boolean} */
  isEmpty() {
    return this.ranges.length === 0;
  }

  /** @returns {[number, number]|undefined} the lowest range */
  first() {
    return this.ranges[0];
  }

  /** @returns {[number, number]|undefined} the highest range */
  last() {
    return this.ranges[this.ranges.length - 1];
  }

  /**
   * Add [start, end).
   * @param {number} start
   * @param {number} end
   */
  add(start, end) {
    if (start >= end) return;
    const r = this.ranges;
    const n = r.length;
    if (n === 0 || start > r[n - 1][1]) {
      r.push([start, end]);
      return;
    }
    if (start >= r[n - 1][0]) {
      if (end > r[n - 1][1]) r[n - 1][1] = end;
      return;
    }
    const i = this._firstEndingAtOrAfter(start);
    let j = i;
    let lo = start;
    let hi = end;
    while (j < n && r[j][0] <= end) {
      if (r[j][0] < lo) lo = r[j][0];
      if (r[j][1] > hi) hi = r[j][1];
      j++;
    }
    r.splice(i, j - i, [lo, hi]);
  }

  /**
   * Remove [start, end).
   * @param {number} start
   * @param {number} end
   */
  remove(start, end) {
    if (start >= end) return;
    const r = this.ranges;
    let i = this._firstEndingAtOrAfter(start);
    if (i < r.length && r[i][1] === start) i++;
    const kept = [];
    let j = i;
    while (j < r.length && r[j][0] < end) {
      if (r[j][0] < start) kept.push([r[j][0], start]);
      if (r[j][1] > end) kept.push([end, r[j][1]]);
      j++;
    }
    if (j > i || kept.length > 0) r.splice(i, j - i, ...kept);
  }

  /**
   * @param {number} value
   * @returns {boolean} whether value is in the set
   */
  has(value) {
    return this.covers(value, value + 1);
  }

  /**
   * @param {number} start
   * @param {number} end
   * @returns {boolean} whether all of [start, end) is in the set
   */
  covers(start, end) {
    const r = this.ranges;
    const i = this._firstEndingAtOrAfter(end);
    return i < r.length && r[i][0] <= start;
  }

  /**
   * The parts of [start, end) that are not in the set.
   * @param {number} start
   * @param {number} end
   * @returns {Array<[number, number]>}
   */
  gaps(start, end) {
    const out = [];
    const r = this.ranges;
    let cursor = start;
    for (let i = this._firstEndingAtOrAfter(start); i < r.length && r[i][0] < end; i++) {
      if (r[i][0] > cursor) out.push([cursor, r[i][0]]);
      if (r[i][1] > cursor) cursor = r[i][1];
    }
    if (cursor < end) out.push([cursor, end]);
    return out;
  }

  /**
   * Forget the lowest ranges so that at most `count` remain.
   * @param {number} count
   */
  keepHighest(count) {
    if (this.ranges.length > count) this.ranges.splice(0, this.ranges.length - count);
  }

  /** Index of the first range whose end is >= value (binary search). */
  _firstEndingAtOrAfter(value) {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid][1] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

module.exports = { RangeSet };
