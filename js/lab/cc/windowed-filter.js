'use strict';
/**
 * A windowed maximum (Kathleen Nichols' algorithm, as Linux's lib/win_minmax.c): the
 * largest value seen over the last `window` time units, kept with three samples.
 * BBR uses it for the bottleneck bandwidth over the last 10 round trips.
 */

class WindowedMaxFilter {
  /** @param {number} window length, in the units of the `time` passed to update */
  constructor(window) {
    this.window = window;
    this._s = [
      { time: 0, value: 0 },
      { time: 0, value: 0 },
      { time: 0, value: 0 },
    ];
  }

  /** @returns {number} the current windowed maximum */
  get best() {
    return this._s[0].value;
  }

  /**
   * @param {number} value
   * @param {number} time
   * @returns {number} the updated maximum
   */
  update(value, time) {
    const s = this._s;
    const sample = { time, value };
    if (value >= s[0].value || time - s[2].time > this.window) {
      s[0] = s[1] = s[2] = sample;
      return value;
    }
    if (value >= s[1].value) {
      s[1] = s[2] = sample;
    } else if (value >= s[2].value) {
      s[2] = sample;
    }
    const dt = time - s[0].time;
    if (dt > this.window) {
      // The best sample aged out: promote the next ones.
      s[0] = s[1];
      s[1] = s[2];
      s[2] = sample;
      if (time - s[0].time > this.window) {
        s[0] = s[1];
        s[1] = s[2];
        s[2] = sample;
      }
    } else if (s[1].time === s[0].time && dt > this.window / 4) {
      s[1] = s[2] = sample;
    } else if (s[2].time === s[1].time && dt > this.window / 2) {
      s[2] = sample;
    }
    return s[0].value;
  }
}

module.exports = { WindowedMaxFilter };
