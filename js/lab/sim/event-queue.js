'use strict';
/**
 * A binary min-heap of timed events, ordered by (time, insertion order).
 *
 * Ties are broken by insertion order so that events scheduled for the same instant always
 * run in the order they were scheduled: this is what makes a simulation repeatable.
 */

class EventQueue {
  constructor() {
    /** @type {{time: number, seq: number, fn: Function, cancelled: boolean}[]} */
    this._heap = [];
    this._seq = 0;
  }

  /** @returns {number} number of queued events, cancelled ones included */
  get size() {
    return this._heap.length;
  }

  /**
   * @param {number} time
   * @param {Function} fn
   * @returns {{time: number, seq: number, fn: Function, cancelled: boolean}} the event
   */
  push(time, fn) {
    const event = { time, seq: this._seq++, fn, cancelled: false };
    const heap = this._heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = event;
    return event;
  }

  /** @returns {object|undefined} the earliest event, without removing it */
  peek() {
    return this._heap[0];
  }

  /** @returns {object|undefined} the earliest event, removed from the queue */
  pop() {
    const heap = this._heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && before(heap[r], heap[l]) ? r : l;
        if (!before(heap[child], last)) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}

function before(a, b) {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

module.exports = { EventQueue };
